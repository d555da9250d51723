#!/usr/bin/env bash
# Times fleetsim on the shipped scenarios pinned to one core and prints wall time, user
# CPU, events and peak memory (max RSS), the figures README reports. Targets: incident
# < 1 s, scale-200-clusters (2 M pods) < 15 s; the same fleet ten times larger
# (scale-2000: 2 000 clusters, 20 M pods, 400 000 nodes, every wave ten times larger;
# istiod's built-in CA signs, one per cluster, so each signer sees the same load) within
# 12x the wall and 11x the peak memory of scale-200-clusters, and under 4 GiB.
#   bash benches/scale.sh [ROUNDS]   (default 1; the two scale runs alternate per round)
# Runs use the default windowed order (each cluster's events up to the next fleet-wide
# event, then the next cluster's); FLEETSIM_BENCH_GLOBAL=1 also times both fleets in the
# global order (`run --order global`, every event in time order; the same outputs) in
# the same rounds, for the gain of the windowed order.
# Also prints each run's system CPU, and a baseline for it: the system CPU of a program
# that only touches as many fresh pages as each fleet's peak RSS.
# Measured numbers: README, "Speed and memory".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/fleetsim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rounds=${1:-1}
# Huge pages for glibc malloc's heap (glibc >= 2.35; THP in "madvise" mode, as here):
# at 2.5 GiB every pod event's first touch of its slot is a TLB miss with 4 KiB pages.
# FLEETSIM_BENCH_THP=1 runs with them, to compare (off by default: the gain has not
# shown above this machine's noise; README, "Speed and memory").
if [ "${FLEETSIM_BENCH_THP:-0}" = 1 ]; then
  export GLIBC_TUNABLES=glibc.malloc.hugetlb=1
fi
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
# scale-2000 is scale-200-clusters with count and waves x 10 (waves [1, 9, 40, 50] and
# the rest -> [10, 90, 400, 500] and the rest).
scale2000=(--set cluster.c.count=2000 --set 'rollout.waves=[10, 90, 400, 500]')
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); GLIBC_TUNABLES=${GLIBC_TUNABLES:-unset}"
printf '%-22s %10s %10s %10s %12s %12s\n' scenario wall_s user_s sys_s events max_rss_MiB
one() { # one NAME FILE ARGS...: prints a row, leaves "wall user rss events sys" in $out/NAME
  local name=$1 file=$2; shift 2
  /usr/bin/time -f '%e %U %M %S' -o "$out/time" "${pin[@]}" "$bin" run "$file" "$@" \
    --format json --out "$out/run" >"$out/summary.json" 2>/dev/null
  read -r wall user rss sys <"$out/time"
  events=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$out/summary.json")
  printf '%-22s %10s %10s %10s %12s %12d\n' "$name" "$wall" "$user" "$sys" "$events" "$((rss / 1024))"
  echo "$wall $user $rss $events $sys" >>"$out/$name"
}
for s in incident-ca-herd healthy-baseline; do
  one "$s" "scenarios/$s.toml"
done
global=${FLEETSIM_BENCH_GLOBAL:-0}
for _ in $(seq "$rounds"); do
  one scale-200-clusters scenarios/scale-200-clusters.toml
  one scale-2000 scenarios/scale-200-clusters.toml "${scale2000[@]}"
  if [ "$global" = 1 ]; then
    one scale-200-global scenarios/scale-200-clusters.toml --order global
    one scale-2000-global scenarios/scale-200-clusters.toml "${scale2000[@]}" --order global
  fi
done
ratio() { # ratio LABEL SMALL LARGE: best-of-rounds ratios of the larger run to the smaller
  python3 - "$@" <<'EOF'
import sys
label, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
a = [list(map(float, l.split())) for l in open(a)]
b = [list(map(float, l.split())) for l in open(b)]
best = lambda rows, i: min(r[i] for r in rows)
print("%s (best of %d): wall %.1fx, user CPU %.1fx, system CPU %.1fx, events %.2fx, "
      "peak RSS %.2fx (%.2f GiB)"
      % (label, len(a), best(b, 0) / best(a, 0), best(b, 1) / best(a, 1),
         best(b, 4) / max(best(a, 4), 0.01), b[0][3] / a[0][3], best(b, 2) / best(a, 2),
         best(b, 2) / 2**20))
EOF
}
ratio "scale-2000 / scale-200-clusters" "$out/scale-200-clusters" "$out/scale-2000"
if [ "$global" = 1 ]; then
  ratio "global order: scale-2000 / scale-200-clusters" "$out/scale-200-global" \
    "$out/scale-2000-global"
  python3 - "$out" <<'EOF'
import sys
d = sys.argv[1]
best = lambda n: min(float(l.split()[0]) for l in open(f"{d}/{n}"))
for s, w in (("scale-200", "scale-200-clusters"), ("scale-2000", "scale-2000")):
    g = best(s + "-global")
    print(f"{s}: global order {g:.2f} s, windowed {best(w):.2f} s: {g / best(w):.2f}x faster")
EOF
fi
# The baseline for the system CPU: a program that only touches as many fresh pages as
# each fleet's peak RSS, pinned like the runs, alternating. On a VM whose host reclaims
# the guest's freed memory, a page touched for the first time in a while costs far more
# than one freed a moment ago, and the larger run gets more of those: its system CPU
# grows faster than its memory whatever fleetsim does.
python3 - "$out" "${pin[@]}" <<'EOF'
import subprocess, sys
d, pin = sys.argv[1], sys.argv[2:]
toucher = '''
import mmap, resource, sys
n = int(sys.argv[1]) * 1024
before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
m = mmap.mmap(-1, n)
for off in range(0, n, 4096):
    m[off] = 1
print(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before)
'''
names = ("scale-200-clusters", "scale-2000")
rss = {s: min(int(l.split()[2]) for l in open(f"{d}/{s}")) for s in names}
sys_s = {s: [] for s in names}
for _ in range(2):
    for s in names:
        out = subprocess.run(pin + [sys.executable, "-c", toucher, str(rss[s])], check=True,
                             capture_output=True, text=True).stdout
        sys_s[s].append(float(out))
a, b = (min(sys_s[s]) for s in names)
print(f"baseline, fresh pages only: {rss[names[0]] // 1024} MiB took {a:.2f} s of system CPU, "
      f"{rss[names[1]] // 1024} MiB {b:.2f} s: {b / max(a, 0.01):.1f}x (best of 2)")
EOF
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
