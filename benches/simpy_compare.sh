#!/usr/bin/env bash
# Side-by-side speed of SimPy and `fleetsim ca` on the same model: M/M/c with a fixed
# client timeout (reneging from the queue), 16 workers, mean service 1 s, 15 arrivals/s
# (load 0.94), timeout 500 ms. Installs SimPy with pip into a venv under target/.
# Prints simulated requests per second of wall time for both and the ratio.
#
# The two run alternately REPEATS times (default 2) and the best rate of each is kept,
# which is fairer than one run on a machine shared with other work.
#
# Environment overrides: SIMPY_HORIZON_S (default 20000), FLEETSIM_HORIZON_S (1000000),
# SEED (1), REPEATS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=15 WORKERS=16 SERVICE_S=1 TIMEOUT_S=0.5
SIMPY_HORIZON_S=${SIMPY_HORIZON_S:-20000}
FLEETSIM_HORIZON_S=${FLEETSIM_HORIZON_S:-1000000}
SEED=${SEED:-1}
REPEATS=${REPEATS:-2}

VENV=target/simpy-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import simpy" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet simpy
fi
cargo build --release --quiet

echo "model: M/M/$WORKERS+D, arrival rate ${RATE}/s, mean service ${SERVICE_S}s, timeout ${TIMEOUT_S}s (cancel)"
simpy_runs=() fleet_runs=()
for _ in $(seq "$REPEATS"); do
  simpy_runs+=("$("$VENV/bin/python" benches/simpy_mmc_timeout.py "$RATE" "$WORKERS" "$SERVICE_S" "$TIMEOUT_S" "$SIMPY_HORIZON_S" "$SEED")")
  fleet_runs+=("$(target/release/fleetsim ca --arrival-rate "$RATE" --workers "$WORKERS" \
    --service-mean "${SERVICE_S}s" --timeout "$(python3 -c "print(int($TIMEOUT_S*1000))")ms" \
    --on-timeout cancel --horizon "${FLEETSIM_HORIZON_S}s" --warmup 0s --seed "$SEED" --format json | tr -d '\n')")
done
simpy_json=$(printf '%s\n' "${simpy_runs[@]}")
fleet_json=$(printf '%s\n' "${fleet_runs[@]}")

SIMPY_JSON="$simpy_json" FLEET_JSON="$fleet_json" "$VENV/bin/python" - <<'PY'
import json, os
simpy_runs = [json.loads(l) for l in os.environ["SIMPY_JSON"].splitlines() if l.strip()]
fleet_runs = [json.loads(l) for l in os.environ["FLEET_JSON"].splitlines() if l.strip()]
s = max(simpy_runs, key=lambda r: r["requests_per_s"])
f = max(fleet_runs, key=lambda r: r["arrivals"] / r["wall_s"])
f_rate = f["arrivals"] / f["wall_s"]
print(f"best of {len(simpy_runs)} alternating runs each")
print(f"SimPy {__import__('simpy').__version__:<8} {s['arrivals']:>10} requests in {s['wall_s']:8.3f} s = {s['requests_per_s']:>12,.0f} requests/s  (p_abandon {s['p_abandon']:.4f})")
print(f"fleetsim ca    {f['arrivals']:>10} requests in {f['wall_s']:8.3f} s = {f_rate:>12,.0f} requests/s  (p_abandon {f['p_abandon']:.4f}, theory {f['analytic']['p_abandon']:.4f})")
print(f"ratio fleetsim / SimPy = {f_rate / s['requests_per_s']:.0f}x")
PY
