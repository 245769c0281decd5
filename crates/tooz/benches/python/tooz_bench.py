"""The Python tooz side of scripts/bench: the same workloads as our benchmarks, run through
tooz 9.1.0 on this machine, one JSON object per workload on stdout.

Usage: tooz_bench.py ring
       tooz_bench.py file URL GROUP_100 GROUP_1000
       tooz_bench.py redis URL GROUP_1000
       tooz_bench.py memcached URL GROUP_1000
       tooz_bench.py postgresql URL
         (locks only: tooz's PostgreSQL driver has no groups; it opens a connection per acquire)
       tooz_bench.py mysql URL
         (locks only: tooz's MySQL driver has no groups; it opens a connection per acquire and
         closes it at release)
       tooz_bench.py etcd URL GROUP_1000
         (tooz's etcd3gw driver, over etcd's JSON gateway: lock pairs, each acquire granting a
         lease of its own, and members() of a 1,000-member group the Rust side populated)
       tooz_bench.py zookeeper URL GROUP_1000
         (tooz's kazoo driver: lock pairs (kazoo's lock recipe), and members() of a 1,000-member
         group the Rust side populated; its get_members_with_capabilities reads each member's
         node in turn, 1,000 round trips a call, so it is timed over 5 calls, not 20)
       tooz_bench.py contention-worker MODE URL LOCK MEMBER COUNTER HOLD_MS
         (one worker process of benches/contention.rs, which starts it and drives it)
"""
import concurrent.futures
import json
import os
import statistics
import sys
import time

from tooz import coordination
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


def emit(workload, **figures):
    print(json.dumps(dict(workload=workload, **figures)), flush=True)


def timed_for(seconds, op):
    """Calls `op` for `seconds`; returns calls per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            op()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def lock_pairs(coord):
    """Blocking acquire + release pairs per second on one lock, best of three 2 s rounds."""
    lock = coord.get_lock(b"bench-lock-python")
    lock.acquire()
    lock.release()

    def pair():
        lock.acquire()
        lock.release()

    emit("lock_pairs", per_second=max(timed_for(2.0, pair) for _ in range(3)))


def file(url, group_100, group_1000):
    coord = coordination.get_coordinator(url, b"py-bench")
    coord.start(start_heart=False)
    lock_pairs(coord)

    for group, workload in ((group_100, "members_100"), (group_1000, "members_1000")):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            members = coord.get_members(group.encode()).get()
            times.append(time.perf_counter() - start)
        emit(workload, ms=statistics.median(times) * 1000, seen=len(members))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        coord.get_members_with_capabilities(group_1000.encode()).get()
        times.append(time.perf_counter() - start)
    emit("members_caps_1000", ms=statistics.median(times) * 1000)

    join_group = b"py-join-bench"
    coord.create_group(join_group).get()
    joiners = []
    for i in range(100):
        c = coordination.get_coordinator(url, b"py-joiner-%d" % i)
        c.start(start_heart=False)
        joiners.append(c)
    start = time.perf_counter()
    for c in joiners:
        c.join_group(join_group).get()
    emit("join", mean_ms=(time.perf_counter() - start) / len(joiners) * 1000)
    with concurrent.futures.ThreadPoolExecutor(len(joiners)) as pool:
        list(pool.map(lambda c: c.stop(), joiners))

    coord.join_group(join_group).get()
    emit("heartbeat", per_second=timed_for(2.0, coord.heartbeat))
    coord.stop()


def server(url, group_1000, caps_calls=20):
    """redis, memcached, etcd and zookeeper: lock pairs, and members() of a live 1,000-member
    group that the Rust side populated (median of 20 calls; with capabilities, of
    `caps_calls`)."""
    coord = coordination.get_coordinator(url, b"py-bench")
    coord.start(start_heart=False)
    lock_pairs(coord)
    for workload, call, calls in (
            ("members_1000", coord.get_members, 20),
            ("members_caps_1000", coord.get_members_with_capabilities, caps_calls)):
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            seen = call(group_1000.encode()).get()
            times.append(time.perf_counter() - start)
        emit(workload, ms=statistics.median(times) * 1000, seen=len(seen), calls=calls)
    coord.stop()


def zookeeper(url, group_1000):
    """As server(), but kazoo's get_members_with_capabilities reads each member's node in
    turn (1,000 round trips a call): 5 calls of it."""
    server(url, group_1000, caps_calls=5)


def locks_only(url):
    """Lock pairs through a driver with locks only: tooz's (deprecated) PostgreSQL driver, or
    its MySQL driver. A deprecation warning goes to stderr, never into the figures on stdout."""
    coord = coordination.get_coordinator(url, b"py-bench")
    coord.start(start_heart=False)
    lock_pairs(coord)
    coord.stop()


def bump(path):
    """The non-atomic read-modify-write the lock must protect."""
    with open(path) as f:
        count = int(f.read())
    with open(path, "w") as f:
        f.write(str(count + 1))


def contention_worker(mode, lock_name, member, counter, hold_ms):
    """One worker of the contention bench; the protocol is in benches/contention.rs: `ready`,
    then `go START END` on stdin, a JSON line per grant (CLOCK_MONOTONIC ns, which
    time.monotonic_ns() reads on Linux), `done`, and stop at EOF on stdin."""
    if mode not in ("pingpong", "storm"):
        sys.exit("unknown mode %r (pingpong or storm)" % mode)
    # The URL comes in the environment, out of sight of `ps` (it may carry a password).
    url = os.environ["TOOZ_CONTENTION_URL"]
    coord = coordination.get_coordinator(url, member.encode())
    coord.start(start_heart=True)
    lock = coord.get_lock(lock_name.encode())
    # The first grant registers scripts and opens files: not part of the measurement.
    if not lock.acquire(blocking=True) or not lock.release():
        sys.exit("warm-up grant failed")
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 3 or line[0] != "go":
        sys.exit("expected `go START END` on stdin, got %r" % line)
    start, end = int(line[1]), int(line[2])
    hold = int(hold_ms) / 1000
    grants = []
    time.sleep(max(0, start - time.monotonic_ns()) / 1e9)
    while time.monotonic_ns() < end:
        if not lock.acquire(blocking=True):
            sys.exit("blocking acquire returned False")
        acquired = time.monotonic_ns()
        if mode == "storm":
            bump(counter)
        else:
            time.sleep(hold)
        released = time.monotonic_ns()
        if not lock.release():
            sys.exit("release returned False")
        grants.append((acquired, released))
    pid = os.getpid()
    for acquired, released in grants:
        print(json.dumps({"pid": pid, "acquired": acquired, "released": released}))
    print("done", flush=True)
    # Stay connected until the parent has read the server's counters.
    sys.stdin.read()
    coord.stop()


if __name__ == "__main__":
    {
        "ring": ring,
        "file": file,
        "redis": server,
        "memcached": server,
        "postgresql": locks_only,
        "mysql": locks_only,
        "etcd": server,
        "zookeeper": zookeeper,
        "contention-worker": contention_worker,
    }[sys.argv[1]](*sys.argv[2:])
