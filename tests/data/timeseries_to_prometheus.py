#!/usr/bin/env python3
"""Turn one column of a fleetsim timeseries.csv into a Prometheus /api/v1/query_range
response, as a synthetic "observed" metric for `fleetsim compare` and `calibrate`.

The fleet rows (cluster "*") of COLUMN are resampled every STEP seconds (the value of the
last sample at or before each step, as Prometheus' lookback would see a gauge), shifted
to start at START (Unix seconds), and split across two "signer pods" whose values sum to
the original, so the file exercises fleetsim's summing of a result's series.

    python3 tests/data/timeseries_to_prometheus.py output/calibrate-obs/timeseries.csv \
        ca_queue signer_queue_depth > tests/data/prometheus-ca-queue.json
"""
import csv
import json
import sys

START = 1716796800  # 2024-05-27T08:00:00Z
STEP = 15


def main():
    path, column, metric = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [r for r in csv.DictReader(open(path)) if r["cluster"] == "*"]
    samples = [(float(r["time_s"]), float(r[column])) for r in rows]
    end = samples[-1][0]
    pods = ([], [])
    t, i = 0.0, 0
    while t <= end:
        while i + 1 < len(samples) and samples[i + 1][0] <= t:
            i += 1
        v = samples[i][1]
        a = int(v) // 2
        for pod, value in zip(pods, (a, v - a)):
            pod.append([START + t, f"{value:g}"])
        t += STEP
    result = [
        {
            "metric": {"__name__": metric, "job": "pca-signer", "pod": f"signer-{k}"},
            "values": values,
        }
        for k, values in enumerate(pods)
    ]
    doc = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
