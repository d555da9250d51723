#!/usr/bin/env python3
"""Writes the hand-made sample CSVs the report tests draw: timeseries.csv and curves.csv.

Not simulation output: a plausible story shaped by hand. Three clusters upgraded in two
waves; payments-prod (40 istiod replicas, its own CA) collapses into CrashLoopBackOff
~25 min in and is mitigated at 70 min (istiod 40 -> 1, failed CSRs deleted, paced
restarts). Deterministic: run `python3 tests/data/gen_samples.py` from the repository root.
"""
import math
import random

random.seed(7)
DT, END = 10, 7200

def ramp(t, t0, t1):
    return 0.0 if t <= t0 else 1.0 if t >= t1 else (t - t0) / (t1 - t0)

def rollout(t, nodes, t0, t1):
    new = round(nodes * ramp(t, t0, t1))
    return nodes - new, new

def healthy(name, pods, nodes, istiod, t0, t1, ca, blip=0):
    """A clean rollout; `blip` pods briefly crash-loop while the shared CA is busy."""
    rows = []
    for t in range(0, END + 1, DT):
        old, new = rollout(t, nodes, t0, t1)
        draining = t0 < t < t1 + 60
        pending = random.randint(0, max(1, pods // 40)) if draining else 0
        backoff = round(blip * math.sin(math.pi * ramp(t, 1800, 2700))) if blip else 0
        ready = pods - pending - backoff
        ist = istiod - (1 if draining and random.random() < 0.1 else 0)
        queue = random.randint(0, 3) if draining else 0
        util = min(1.0, 0.05 + (0.25 + 0.1 * random.random() if draining else 0.0))
        rows.append(dict(t=t, c=name, ready=ready, pending=pending, backoff=backoff, desired=pods,
                         old=old, new=new, istiod=ist, queue=queue, util=util,
                         inflight=queue + (random.randint(0, 4) if draining else 0), failed=0, ca=ca))
    return rows

def incident(name, pods, nodes, t0, t1):
    rows = []
    failed = 0.0
    backoff = 0.0
    for t in range(0, END + 1, DT):
        old, new = rollout(t, nodes, t0, t1)
        mitigated = t >= 4200
        istiod = 40 if t < 4200 else 1
        if t0 < t < 4200:
            # Collapse: restarted pods pile into backoff as the CA melts down.
            target = 0.45 * pods * ramp(t, t0 + 300, t1)
            backoff += (target - backoff) * 0.02 + random.uniform(-4, 4)
            failed += 40 * ramp(t, t0 + 200, t1) + random.uniform(0, 25)
            queue = 350 + 250 * ramp(t, t0, t1) + random.uniform(-30, 30)
            util = 1.0
        elif mitigated:
            if t == 4320:
                failed = 0.0  # kubectl delete csr --field-selector ... (failed)
            else:
                failed = failed * 0.97 if t < 4320 else failed + random.uniform(0, 2)
            backoff = max(0.0, backoff - 6 - random.uniform(0, 4) if t > 4380 else backoff)
            queue = max(0.0, 600 * math.exp(-(t - 4200) / 300) + random.uniform(0, 6))
            util = max(0.08, min(1.0, 0.95 * math.exp(-(t - 4200) / 1500)) + 0.03 * random.random())
        else:
            queue, util = 0.0, 0.05
        backoff = max(0.0, min(backoff, pods))
        pending = random.randint(0, 30) if t0 < t < t1 else 0
        ready = max(0, pods - round(backoff) - pending)
        rows.append(dict(t=t, c=name, ready=ready, pending=pending, backoff=round(backoff),
                         desired=pods, old=old, new=new, istiod=istiod, queue=round(queue),
                         util=util, inflight=round(queue * 1.3) if queue else 0,
                         failed=round(failed), ca="pca-payments"))
    return rows

clusters = [
    healthy("search-staging", 180, 6, 2, 0, 900, "pca-shared"),
    healthy("checkout-prod", 720, 24, 3, 1200, 3300, "pca-shared", blip=60),
    incident("payments-prod", 1600, 40, 1200, 3600),
]

cols = ["time_s", "cluster", "pods_ready", "pods_pending", "pods_backoff", "pods_desired",
        "nodes_old", "nodes_new", "istiod_ready", "ca_queue", "ca_utilization",
        "csr_in_flight", "csr_failed_objects"]
keys = ["t", "c", "ready", "pending", "backoff", "desired", "old", "new", "istiod", "queue",
        "util", "inflight", "failed"]

def fmt(row):
    return ",".join(f"{row[k]:.2f}" if k == "util" else str(row[k]) for k in keys)

with open("tests/data/timeseries.csv", "w") as f:
    f.write(",".join(cols) + "\n")
    for i in range(len(clusters[0])):
        rows = [c[i] for c in clusters]
        # Fleet totals: sums; the CA queue summed once per CA; utilization of the busiest CA.
        per_ca = {}
        for r in rows:
            per_ca[r["ca"]] = (r["queue"], r["util"])
        total = {k: sum(r[k] for r in rows) for k in keys[2:]}
        total.update(t=rows[0]["t"], c="*", queue=sum(q for q, _ in per_ca.values()),
                     util=max(u for _, u in per_ca.values()))
        for r in rows + [total]:
            f.write(fmt(r) + "\n")

# curves.csv: strategies x CA rate, 50 seeds each, failure probability with 95 % Wilson.
Z = 1.959963984540054
def wilson(k, n):
    p = k / n
    d = 1 + Z * Z / n
    c = (p + Z * Z / (2 * n)) / d
    h = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d
    return p, (0.0 if k == 0 else c - h), (1.0 if k == n else c + h)

strategies = [("all-at-once", 60), ("fixed-batches", 25), ("token-bucket", 15), ("adaptive-aimd", 9)]
rates = [5, 10, 20, 40, 80, 160, 320]
seeds = 50
with open("tests/data/curves.csv", "w") as f:
    f.write("ca_rate_per_s,strategy,runs,failures,failure_p,failure_lo,failure_hi,"
            "time_to_recover_s_mean,time_to_recover_s_p50,time_to_recover_s_p95\n")
    for name, knee in strategies:
        for rate in rates:
            p_true = 1 / (1 + math.exp(2.2 * (math.log(rate) - math.log(knee))))
            k = sum(random.random() < p_true for _ in range(seeds))
            p, lo, hi = wilson(k, seeds)
            ttr = 300 + 3000 * p_true + random.uniform(0, 120)
            f.write(f"{rate},{name},{seeds},{k},{p:.4f},{lo:.4f},{hi:.4f},"
                    f"{ttr:.1f},{ttr * 0.9:.1f},{ttr * 1.6:.1f}\n")
