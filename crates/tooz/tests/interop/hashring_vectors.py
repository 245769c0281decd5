"""Placement vectors from Python tooz's HashRing, for the Rust ring to reproduce bit for bit.

Prints one JSON object per ring configuration: the operations that built the ring (node names
hex-encoded, with whether each was given as str or bytes), and queries with their results.
Run by tests/hashring_interop.rs with the interpreter named in TOOZ_PYTHON.
"""
import importlib.metadata
import json
import random
import sys

from tooz import hashring


def as_hex(value):
    return (value.encode("utf-8") if isinstance(value, str) else value).hex()


def emit(name, partitions, hash_function, ops, keys, query_shapes):
    ring = hashring.HashRing([], partitions=partitions, hash_function=hash_function)
    for op in ops:
        if op[0] == "add":
            ring.add_node(op[1], weight=op[2])
        else:
            ring.remove_node(op[1])
    nodes = list(ring.nodes)
    queries = []
    for i, key in enumerate(keys):
        replicas, ignore_count = query_shapes[i % len(query_shapes)]
        ignore = nodes[:ignore_count] if ignore_count else []
        got = ring.get_nodes(key, ignore_nodes=ignore, replicas=replicas)
        queries.append([key.hex(), replicas, [as_hex(n) for n in ignore],
                        sorted(as_hex(n) for n in got)])
    print(json.dumps({
        "name": name,
        "partitions": partitions,
        "hash": hash_function,
        "ops": [[op[0], as_hex(op[1])] + list(op[2:]) for op in ops],
        "len": len(ring),
        "queries": queries,
    }))


def main():
    rng = random.Random(20261125)
    keys = [b"key-%d" % i for i in range(2500)]
    keys += [("ключ-%d" % i).encode() for i in range(50)]
    keys += [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))) for _ in range(200)]
    shapes = [(1, 0), (2, 0), (3, 0), (5, 0), (2, 1), (3, 2), (1, 1)]

    emit("three-nodes", 32, "md5",
         [("add", "node%d" % i, 1) for i in (1, 2, 3)], keys, shapes)
    emit("ten-weighted", 32, "md5",
         [("add", "n%d" % i, 1 + i % 3) for i in range(10)], keys, shapes)
    emit("bytes-and-unicode", 16, "md5",
         [("add", b"\xff\xfe", 1), ("add", "café", 2), ("add", b"plain", 1),
          ("add", "узел", 1)], keys, shapes)
    emit("repeated-names-collide", 32, "md5",
         [("add", "a", 1), ("add", "aa", 2), ("add", "aaa", 1), ("add", "b", 1)], keys, shapes)
    emit("add-then-remove", 24, "md5",
         [("add", "w%d" % i, 1 + i % 2) for i in range(12)]
         + [("remove", "w3"), ("remove", "w7"), ("remove", "w0")], keys, shapes)
    emit("sha256-odd-partitions", 7, "sha256",
         [("add", "s%d" % i, 1 + i % 4) for i in range(6)], keys, shapes)
    emit("sha1-many-nodes", 32, "sha1",
         [("add", "host-%03d" % i, 1) for i in range(40)], keys, shapes)
    emit("reweighted", 32, "md5",
         [("add", "x", 1), ("add", "y", 1), ("add", "x", 3), ("add", "z", 2)], keys, shapes)
    print("vectors from tooz %s" % importlib.metadata.version("tooz"), file=sys.stderr)


if __name__ == "__main__":
    main()
