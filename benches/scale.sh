#!/usr/bin/env bash
# Times fleetsim on the shipped scenarios pinned to one core and prints wall time, events
# and peak memory (max RSS), the figures README reports. Targets: incident < 3 s,
# scale-200-clusters (2 M pods) < 60 s and < 2 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/fleetsim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %10s %12s %12s\n' scenario wall_s events max_rss_MiB
for s in incident-ca-herd healthy-baseline scale-200-clusters; do
  /usr/bin/time -f '%e %M' -o "$out/time" "${pin[@]}" "$bin" run "scenarios/$s.toml" \
    --format json --out "$out/$s" >"$out/summary.json" 2>/dev/null
  read -r wall rss <"$out/time"
  events=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$out/summary.json")
  printf '%-22s %10s %12s %12d\n' "$s" "$wall" "$events" "$((rss / 1024))"
done
