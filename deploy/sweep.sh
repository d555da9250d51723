#!/bin/sh
# One pod of the sweep Job (deploy/sweep-job.yaml; kustomization.yaml mounts this file
# from the fleetsim-scripts ConfigMap). Pod I runs shard I of N into
# $DATA/$SWEEP_ID/shard-I, continuing its checkpoint if an earlier pod of the same index
# was killed (--resume). Pod 0 then waits until every shard's runs.csv is there and
# merges them into $DATA/$SWEEP_ID/merged; the Job is complete when that is written.
#
# Giving up needs no API access: when a shard fails for good (its retries used up), the
# Job controller fails the whole Job (maxFailedIndexes: 0) and stops the waiting pod 0
# with it. Shards of another sweep that sit
# in the same directory are refused, not mixed in: a shard pod's --resume and the merge
# both compare manifest.json (scenario hash, seeds, grid, shard count, fleetsim
# version) and exit 2 on a mismatch.
#
# Environment: JOB_COMPLETION_INDEX (set by the Job controller), SHARDS, SWEEP_ID,
# THREADS (the pod's CPU request), and for local use DATA (default /data), SCENARIO
# (default /scenario/scenario.toml), POLL_S (default 30). Exit codes are fleetsim's
# (0 done, 2 bad input or an IO error); a bad environment exits 2 too.
set -eu

index=${JOB_COMPLETION_INDEX:-}
shards=${SHARDS:-}
id=${SWEEP_ID:-}
data=${DATA:-/data}
scenario=${SCENARIO:-/scenario/scenario.toml}
poll=${POLL_S:-30}

fail() {
  echo "sweep.sh: $*" >&2
  exit 2
}
case $index in '' | *[!0-9]*) fail "JOB_COMPLETION_INDEX (set by the Job controller) must be a number, got '$index'" ;; esac
case $shards in '' | *[!0-9]*) fail "SHARDS must be a number, got '$shards'" ;; esac
# The id names a directory and the Job: a DNS label fragment, nothing that escapes $data.
case $id in
  '' | -* | *- | *[!a-z0-9-]*) fail "SWEEP_ID must be lowercase letters, digits and '-' (not first or last), got '$id'" ;;
esac
[ ${#id} -le 40 ] || fail "SWEEP_ID must be at most 40 characters (it names the Job), got '$id'"

root=$data/$id
mkdir -p "$root"
echo "sweep $id: shard $index/$shards into $root/shard-$index"
fleetsim sweep "$scenario" --shard "$index/$shards" --out "$root/shard-$index" \
  --threads "${THREADS:-0}" --resume

[ "$index" -eq 0 ] || exit 0

# Pod 0: wait for the other shards, then merge. Shard 0 is named first, so a foreign
# shard is reported as "not a shard of the same sweep as .../shard-0".
set --
i=0
while [ "$i" -lt "$shards" ]; do
  set -- "$@" "$root/shard-$i"
  i=$((i + 1))
done
while :; do
  finished=0
  for d in "$@"; do
    if [ -f "$d/runs.csv" ]; then finished=$((finished + 1)); fi
  done
  [ "$finished" -lt "$shards" ] || break
  echo "waiting for shards: $finished/$shards done"
  sleep "$poll"
done
exec fleetsim merge "$@" --out "$root/merged"
