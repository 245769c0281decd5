"""A Python tooz 9.1.0 peer driven over stdin/stdout, one JSON object per line each way, so a
Rust test can interleave Python and Rust operations on one backend.

Requests: {"op": "start", "url": U, "member": M}, {"op": "join", "group": G, "caps": C},
{"op": "create", "group": G}, {"op": "delete", "group": G}, {"op": "leave", "group": G},
{"op": "groups"},
{"op": "members", "group": G} (get_members_with_capabilities),
{"op": "member_ids", "group": G} (get_members: the ids only, sorted),
{"op": "caps", "group": G, "member": M},
{"op": "update", "group": G, "caps": C} (update_capabilities),
{"op": "lock", "name": N} (a non-blocking acquire: true if granted; with "blocking": true it
waits until granted), {"op": "unlock", "name": N}, {"op": "heartbeat"},
{"op": "campaign", "group": G} (one round of tooz's election: true if elected),
{"op": "leader", "group": G} (get_leader: the leader's member id, or null),
{"op": "partition", "group": G, "weight": W} (join_partitioned_group),
{"op": "owners", "objects": [...]} (after run_watchers: each object's owner),
{"op": "resign", "group": G} (stand_down_group_leader),
{"op": "pid"} (this process's id, for a test that kills it), {"op": "stop"}.
Replies: {"ok": VALUE} or {"error": "ExceptionName: message"}.

With "tagged": true, "join" and "update" read capabilities in which {"$bytes": HEX} stands for
bytes, and "members" and "caps" reply in that form (bytes as {"$bytes": HEX}, text as text),
so that a test can tell bytes from text both ways; without it capabilities are plain JSON.

ZooKeeper only (kazoo's own view of the znodes, beside tooz's): {"op": "zk_children", "path": P}
(the node's children, sorted, or null if it is missing) and {"op": "zk_node", "path": P}
({"data": text, "ephemeral": bool, "czxid": int, "cversion": int}, or null if it is missing).

Only replies go to stdout: anything else a driver or a library prints there (a deprecation
notice, a stray print) is sent to stderr instead, so it can never break the protocol. Warnings
(tooz's PostgreSQL driver is deprecated and says so) go to stderr as usual.
"""
import json
import os
import sys

# The protocol's channel, kept for replies; everything else that writes to sys.stdout writes to
# stderr from here on.
REPLIES = sys.stdout
sys.stdout = sys.stderr

from tooz import coordination


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def plain(value):
    """Capabilities as JSON: bytes become text (the test only uses text)."""
    if isinstance(value, dict):
        return {text(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return text(value)


def untag(value):
    """Capabilities from a "tagged" request: {"$bytes": HEX} becomes bytes."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def tag(value):
    """Capabilities for a "tagged" reply: bytes become {"$bytes": HEX} (a bytes key, a text
    key "$bytes:HEX"), text stays text."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {("$bytes:" + k.hex()) if isinstance(k, bytes) else k: tag(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    return value


def main():
    coord = None
    partitioner = None
    locks = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "start":
                coord = coordination.get_coordinator(request["url"], request["member"].encode())
                coord.start(start_heart=False)
                result = None
            elif op == "join":
                caps = request.get("caps")
                if request.get("tagged"):
                    caps = untag(caps)
                coord.join_group_create(request["group"].encode(), caps)
                result = None
            elif op == "create":
                result = coord.create_group(request["group"].encode()).get()
            elif op == "delete":
                result = coord.delete_group(request["group"].encode()).get()
            elif op == "leave":
                result = coord.leave_group(request["group"].encode()).get()
            elif op == "groups":
                result = sorted(text(g) for g in coord.get_groups().get())
            elif op == "members":
                members = coord.get_members_with_capabilities(request["group"].encode()).get()
                shown = tag if request.get("tagged") else plain
                result = {text(m): shown(c) for m, c in members.items()}
            elif op == "member_ids":
                members = coord.get_members(request["group"].encode()).get()
                result = sorted(text(m) for m in members)
            elif op == "update":
                caps = request.get("caps")
                if request.get("tagged"):
                    caps = untag(caps)
                result = coord.update_capabilities(request["group"].encode(), caps).get()
            elif op == "caps":
                caps = coord.get_member_capabilities(
                    request["group"].encode(), request["member"].encode()).get()
                result = tag(caps) if request.get("tagged") else plain(caps)
            elif op == "lock":
                lock = locks.setdefault(request["name"], coord.get_lock(request["name"].encode()))
                result = lock.acquire(blocking=bool(request.get("blocking", False)))
            elif op == "unlock":
                result = locks[request["name"]].release()
            elif op == "campaign":
                elected = []

                def on_elected(event):
                    elected.append(event)

                group = request["group"].encode()
                coord.watch_elected_as_leader(group, on_elected)
                coord.run_watchers()
                coord.unwatch_elected_as_leader(group, on_elected)
                result = bool(elected)
            elif op == "resign":
                result = coord.stand_down_group_leader(request["group"].encode())
            elif op == "leader":
                leader = coord.get_leader(request["group"].encode()).get()
                result = None if leader is None else text(leader)
            elif op == "partition":
                partitioner = coord.join_partitioned_group(
                    request["group"].encode(), weight=request["weight"])
                result = None
            elif op == "owners":
                coord.run_watchers()
                result = {
                    str(obj): [text(m) for m in partitioner.members_for_object(obj)]
                    for obj in request["objects"]
                }
            elif op == "heartbeat":
                coord.heartbeat()
                result = None
            elif op in ("zk_children", "zk_node"):
                # The driver's own kazoo client (tooz's KazooDriver keeps it as _coord).
                from kazoo.exceptions import NoNodeError
                try:
                    if op == "zk_children":
                        result = sorted(coord._coord.get_children(request["path"]))
                    else:
                        data, stat = coord._coord.get(request["path"])
                        result = {
                            "data": text(data),
                            "ephemeral": stat.ephemeralOwner != 0,
                            "czxid": stat.czxid,
                            "cversion": stat.cversion,
                        }
                except NoNodeError:
                    result = None
            elif op == "pid":
                result = os.getpid()
            elif op == "stop":
                coord.stop()
                result = None
            else:
                raise ValueError("unknown op %s" % op)
            reply = {"ok": result}
        except Exception as e:  # reported to the Rust side, which decides
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(reply), file=REPLIES, flush=True)


if __name__ == "__main__":
    main()
