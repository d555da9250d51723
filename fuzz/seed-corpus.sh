#!/usr/bin/env bash
# Seeds fuzz/corpus/scenario_load/ from the shipped scenarios, the full example and the
# malformed corpora, plus a few inputs with `--set` chunks (NUL-separated), then writes
# fuzz/scenario.dict from the keys of tests/data/full.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus/scenario_load
mkdir -p "$out"
for f in scenarios/*.toml tests/data/*.toml tests/bad-scenarios/*.toml tests/bad-expect/*.toml; do
  cp "$f" "$out/$(echo "$f" | tr / _)"
done
printf '%s\0%s\0%s' "$(cat scenarios/incident-mitigated.toml)" \
  'intervention.paced-restarts.batch_size=250' 'cluster.payments.istiod.replicas=1' \
  > "$out/set-mitigated"
printf '%s\0%s\0%s' "$(cat tests/data/full.toml)" \
  'ca.pca-east.workers=16' 'expect.assert=["recovered", "p(metastable) <= 0.1 over 3 seeds"]' \
  > "$out/set-full"
printf '%s\0%s' "$(cat tests/data/full.toml)" 'cluster."web".count=2' > "$out/set-quoted"
{
  grep -oE '^[a-z_]+ *=' tests/data/full.toml | tr -d ' =' | sort -u | sed 's/.*/"&"/'
  grep -oE '^\[[^]]+\]' tests/data/full.toml | sort -u | sed 's/"/\\"/g; s/.*/"&"/'
  for w in '"="' '"["' '"]"' '"{"' '"}"' '","' '"\\"' '"."' '"10s"' '"5m"' '"1h30m"' '"250ms"' \
           '"true"' '"false"' '"p("' '"cluster.payments: "' '"cluster.*: "' '" over 10 seeds"' \
           '"recovered == true"' '"peak_crashloop_pods <= 0"' '"time_to_recover_s > 1h"' \
           '"assert = ["' '"seeds = "' '"count = "' '"1e308"' '"-0"' '"nan"' '"inf"' \
           '"18446744073709551615"' '"9223372036854775807"' '"[strategies."' '"[sweep]"' '"[expect]"'; do
    echo "$w"
  done
} > fuzz/scenario.dict
echo "corpus: $(ls "$out" | wc -l) files; dictionary: $(wc -l < fuzz/scenario.dict) entries"
