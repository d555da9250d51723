#!/usr/bin/env python3
"""Regenerates the tables of docs/incident.md (README shows the first) from real runs of
the shipped incident scenarios: the three fixes, what must be true, and what the
webhook's endpoints depend on:

    cargo build --release && python3 output/examples/incident-tables.py [--seeds 10]

Every row is `fleetsim run SCENARIO --seed N --set ... --format json` over seeds 1..N;
the script only counts and averages what the runs report (payments' figures).
"""
import argparse, itertools, json, os, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "fleetsim")
INCIDENT = os.path.join(ROOT, "scenarios", "incident-ca-herd.toml")
MITIGATED = os.path.join(ROOT, "scenarios", "incident-mitigated.toml")
NO_ENDPOINTS = os.path.join(ROOT, "scenarios", "incident-no-endpoints.toml")
CLUSTER = "payments"
ACTION_AT_S = 32 * 60  # the mitigation's first action (incident-mitigated.toml)

# The three actions of incident-mitigated.toml; a fix "off" moves it past the horizon.
ACTIONS = {
    "scale istiod 40 -> 1": "intervention.scale-istiod-down.at",
    "delete Failed CSRs": "intervention.delete-failed-csrs.at",
    "paced restarts": "intervention.paced-restarts.at",
}
OFF = '"200h"'


def run(scenario, seed, sets):
    cmd = [BIN, "run", scenario, "--seed", str(seed), "--format", "json"]
    for s in sets:
        cmd += ["--set", s]
    # Each run writes its own output set (runs in parallel must not share a folder).
    with tempfile.TemporaryDirectory(prefix="incident-tables-") as tmp:
        out = subprocess.run(cmd + ["--out", tmp], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.strip()}")
    doc = json.loads(out.stdout)
    return next(c for c in doc["clusters"] if c["name"] == CLUSTER)


def rows(scenario, variants, seeds, pool):
    jobs = {(name, seed): pool.submit(run, scenario, seed, sets)
            for name, sets in variants for seed in seeds}
    for name, _ in variants:
        yield name, [jobs[(name, s)].result() for s in seeds]


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt_min(s):
    return "—" if s is None else f"{s / 60:.0f} min"


def figure(runs, key):
    return mean([r.get(key) for r in runs])


# The three actions with one of their choices changed (docs/incident.md).
ALL_THREE_VARIANTS = [
    ("all three, restarts paced 25 every 30 s", ["intervention.paced-restarts.batch_size=25"]),
    ("all three, restarts of crashlooping pods only", ['intervention.paced-restarts.pods="crashlooping"']),
    ("all three, restarts at 36 min (the orphaned CSRs still queued)", ['intervention.paced-restarts.at="36m"']),
    ("all three, 12 min earlier (20 and 30 min, node drains still running)",
     ['intervention.scale-istiod-down.at="20m"', 'intervention.delete-failed-csrs.at="20m"',
      'intervention.paced-restarts.at="30m"']),
]


def fixes_table(pool, seeds):
    variants = []
    names = list(ACTIONS)
    for k in range(len(names) + 1):
        for on in itertools.combinations(names, k):
            sets = [f"{ACTIONS[n]}={OFF}" for n in names if n not in on]
            variants.append((" + ".join(on) if on else "none", sets))
    variants += ALL_THREE_VARIANTS
    print(f"| fixes applied (scale and delete at 32 min, restarts at 42 min) | recovered (of {len(seeds)}) | time to recover after the first action (mean) | crashloop pod-hours (mean) | Failed CSRs peak (mean) | apiserver 429s (mean) |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows(MITIGATED, variants, seeds, pool):
        ok = [r for r in runs if r["recovered"]]
        first = ACTION_AT_S if "12 min earlier" not in name else 20 * 60
        ttr = mean([r["time_to_recover_s"] - first for r in ok])
        rej = figure(runs, "apiserver_rejections")
        print(f"| {name} | {len(ok)} | {fmt_min(ttr) if ok else 'never'} | "
              f"{figure(runs, 'crashloop_pod_seconds') / 3600:.0f} | "
              f"{figure(runs, 'csr_failed_objects_peak'):.0f} | "
              f"{'—' if rej is None else f'{rej:.0f}'} |")


# One mechanism of the certificate path at a time, switched to its alternative.
MUST_BE_TRUE = [
    ("as shipped (Istio 1.15.0, 40 replicas, deferred Delete, controller-runtime signer 1 worker, PCA poll 1 s)", []),
    ("istiod never deletes its CSRs (assumption)", ["cluster.payments.istiod.delete_csr_on_give_up=false"]),
    ("istiod 1.15.4 (~65 s wait)", ['cluster.payments.istiod.version="1.15.4"']),
    ("istiod 1.22.0 (60 s wait, startup probe)", ['cluster.payments.istiod.version="1.22.0"']),
    ("istiod replicas 1", ["cluster.payments.istiod.replicas=1"]),
    ("signer workers 5", ["cluster.payments.signer.workers=5"]),
    ("signer client 5 QPS / 10 burst", ["cluster.payments.signer.client_qps=5", "cluster.payments.signer.client_burst=10"]),
    ("PCA GetCertificate poll 200 ms (unconfirmed parameter)", ['ca.pca-payments.poll_interval="200ms"']),
    ("PCA IssueCertificate quota 5/s", ["ca.pca-payments.issue_rate_per_s=5"]),
    ("apiserver limits halved (200 + 100)", ["cluster.payments.apiserver.max_requests_inflight=200", "cluster.payments.apiserver.max_mutating_requests_inflight=100"]),
    ("istiod's own certificate through the signer too (PILOT_CERT_PROVIDER=k8s.io/...)", ['cluster.payments.istiod.pilot_cert_provider="k8s.io/clusterissuers.cert-manager.io/istio-system"']),
    ("no holdApplicationUntilProxyStarts (pods stay Running, NotReady)", ["cluster.payments.agent.hold_application_until_proxy_starts=false"]),
]


def must_be_true_table(pool, seeds):
    print(f"| mechanism switched | collapses (not recovered, of {len(seeds)}) | time to recover (mean, recovered runs) | peak crashloop (mean) | istiod timeouts (mean) |")
    print("|---|---|---|---|---|")
    for name, runs in rows(INCIDENT, MUST_BE_TRUE, seeds, pool):
        ok = [r for r in runs if r["recovered"]]
        print(f"| {name} | {len(runs) - len(ok)} | {fmt_min(mean([r['time_to_recover_s'] for r in ok]))} | "
              f"{figure(runs, 'peak_crashloop_pods'):.0f} | {figure(runs, 'csr_timeouts'):.0f} |")


# incident-no-endpoints.toml, one of its setup choices switched back at a time.
WEBHOOK = [
    ("as shipped (istiod's certificate through the signer, node groups together, system group 4 nodes at once, PDB, EKS force)", []),
    ("node groups one after another", ['rollout.node_groups="in_order"']),
    ("system group one node at a time", ["cluster.payments.node_group.system.max_unavailable=1"]),
    ("istiod signs its own certificate (PILOT_CERT_PROVIDER=istiod, the chart's default)", ['cluster.payments.istiod.pilot_cert_provider="istiod"']),
    ("no PDB for istiod", ["cluster.payments.istiod.pdb=false"]),
    ("no EKS force on the system group", ["cluster.payments.node_group.system.force=false"]),
    ("istiod 1.15.4 (~65 s wait)", ['cluster.payments.istiod.version="1.15.4"']),
]


def webhook_table(pool, seeds):
    print(f"| setup | webhook without endpoints (runs of {len(seeds)}) | no istiod ready (mean s) | refused creates (mean) | collapses (not recovered, of {len(seeds)}) | upgrade failed (of {len(seeds)}) |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows(NO_ENDPOINTS, WEBHOOK, seeds, pool):
        lost = [r for r in runs if r["webhook_failures"] > 0]
        print(f"| {name} | {len(lost)} | {figure(runs, 'istiod_unready_s'):.0f} | "
              f"{figure(runs, 'webhook_failures'):.0f} | {sum(not r['recovered'] for r in runs)} | "
              f"{sum(bool(r['upgrade_failed']) for r in runs)} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("table", nargs="?", choices=["fixes", "must-be-true", "webhook", "all"], default="all")
    a = ap.parse_args()
    seeds = range(1, a.seeds + 1)
    with ThreadPoolExecutor(a.jobs) as pool:
        if a.table in ("fixes", "all"):
            fixes_table(pool, seeds)
            print()
        if a.table in ("must-be-true", "all"):
            must_be_true_table(pool, seeds)
            print()
        if a.table in ("webhook", "all"):
            webhook_table(pool, seeds)


if __name__ == "__main__":
    main()
