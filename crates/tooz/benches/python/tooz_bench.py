"""The Python tooz side of scripts/bench: the same workloads as our benchmarks, run through
tooz 9.1.0 on this machine, one JSON object per workload on stdout.

Usage: tooz_bench.py ring
"""
import json
import sys
import time

from tooz import hashring


def best_rate(run, count, repeat=5):
    """Operations per second of the fastest of `repeat` runs of `run()` doing `count` ops."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return count / best


def ring():
    nodes = ["node-%d" % i for i in range(10)]
    ring = hashring.HashRing(nodes)
    keys = [b"key-%d" % i for i in range(100_000)]
    get_nodes = ring.get_nodes

    def lookups():
        for key in keys:
            get_nodes(key)

    print(json.dumps({"workload": "ring_get_nodes", "per_second": best_rate(lookups, len(keys))}))


if __name__ == "__main__":
    {"ring": ring}[sys.argv[1]]()
