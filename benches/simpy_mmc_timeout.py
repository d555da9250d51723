"""M/M/c with client patience in SimPy: the same model as
`fleetsim ca --arrival-rate R --workers C --service-mean S --timeout D [--patience-dist exp]
--on-timeout cancel|keep` (no retries).

Usage: python simpy_mmc_timeout.py RATE_PER_S WORKERS SERVICE_MEAN_S PATIENCE_S HORIZON_S SEED
                                   [constant|exp] [cancel|keep]
- cancel: a request still waiting when its patience runs out leaves the queue (reneges).
- keep: the CA serves every request; its client gave up if the work completes after the
  patience (served late). No timeout event is needed for that: the deadline is compared
  with the completion time, the cheapest way to write it in SimPy.
Prints one JSON line: arrivals, served, abandoned, p_abandon, wall_s, requests_per_s.
"""

import json
import random
import sys
import time

import simpy


def main():
    rate, workers, service_mean, patience, horizon, seed = sys.argv[1:7]
    dist = sys.argv[7] if len(sys.argv) > 7 else "constant"
    mode = sys.argv[8] if len(sys.argv) > 8 else "cancel"
    rate, service_mean, patience, horizon = map(float, (rate, service_mean, patience, horizon))
    workers, seed = int(workers), int(seed)
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=workers)
    stats = {"arrivals": 0, "served": 0, "abandoned": 0}

    def draw_patience():
        return rng.expovariate(1.0 / patience) if dist == "exp" else patience

    def cancel_customer():
        with server.request() as req:
            got = yield req | env.timeout(draw_patience())
            if req in got:
                yield env.timeout(rng.expovariate(1.0 / service_mean))
                stats["served"] += 1
            else:
                stats["abandoned"] += 1

    def keep_customer():
        deadline = env.now + draw_patience()
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / service_mean))
            if env.now > deadline:
                stats["abandoned"] += 1
            else:
                stats["served"] += 1

    customer = keep_customer if mode == "keep" else cancel_customer

    def source():
        while True:
            yield env.timeout(rng.expovariate(rate))
            stats["arrivals"] += 1
            env.process(customer())

    env.process(source())
    t0 = time.perf_counter()
    env.run(until=horizon)
    wall = time.perf_counter() - t0
    done = stats["served"] + stats["abandoned"]
    stats["p_abandon"] = stats["abandoned"] / done if done else 0.0
    stats["wall_s"] = wall
    stats["requests_per_s"] = stats["arrivals"] / wall
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
