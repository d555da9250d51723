"""M/M/c with a fixed client timeout (reneging from the queue) in SimPy: the same model
as `fleetsim ca --arrival-rate R --workers C --service-mean S --timeout D` (cancel).

Usage: python simpy_mmc_timeout.py RATE_PER_S WORKERS SERVICE_MEAN_S TIMEOUT_S HORIZON_S SEED
Prints one JSON line: arrivals, served, reneged, p_abandon, wall_s, requests_per_s.
"""

import json
import random
import sys
import time

import simpy


def main():
    rate, workers, service_mean, timeout, horizon, seed = sys.argv[1:7]
    rate, service_mean, timeout, horizon = map(float, (rate, service_mean, timeout, horizon))
    workers, seed = int(workers), int(seed)
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=workers)
    stats = {"arrivals": 0, "served": 0, "reneged": 0}

    def customer():
        with server.request() as req:
            got = yield req | env.timeout(timeout)
            if req in got:
                yield env.timeout(rng.expovariate(1.0 / service_mean))
                stats["served"] += 1
            else:
                stats["reneged"] += 1

    def source():
        while True:
            yield env.timeout(rng.expovariate(rate))
            stats["arrivals"] += 1
            env.process(customer())

    env.process(source())
    t0 = time.perf_counter()
    env.run(until=horizon)
    wall = time.perf_counter() - t0
    done = stats["served"] + stats["reneged"]
    stats["p_abandon"] = stats["reneged"] / done if done else 0.0
    stats["wall_s"] = wall
    stats["requests_per_s"] = stats["arrivals"] / wall
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
