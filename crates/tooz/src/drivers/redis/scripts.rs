//! The Lua scripts: each operation is one atomic round trip.

use std::sync::LazyLock;

use redis::Script;

/// The next fencing token of the counter at KEYS[2]: one more than the last, and never less
/// than the server's clock in microseconds. A counter lost to a restart without persistence,
/// or to a failover onto a replica that missed the last increment, would start again from 1;
/// the clock carries the sequence on past every token handed out before, as long as the
/// server's clock does not step back.
const NEXT_FENCE: &str = r"
redis.replicate_commands()
local function next_fence(key)
  local n = redis.call('INCR', key)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if n < now then
    n = now
    redis.call('SET', key, string.format('%d', n))
  end
  return n
end
";

/// A lock's queue of waiters: a sorted set of owner tokens by arrival (server microseconds),
/// beside a hash of, per waiter, until when (server milliseconds) it counts as alive, the id
/// of the coordinator it waits in, and the lock TTL that coordinator renews within
/// (`<ms> <id> <ttl ms>`: a lock handed to it lives by its own TTL, which its heartbeats
/// keep up with, not by the releaser's). A waiter renews its entry on every
/// attempt; one that stopped (crashed, paused, gave up without saying) drops out once its
/// entry lapses, so that nobody waits behind it for long.
///
/// A lock that comes free while someone waits is never left free: `hand_off` grants it to the
/// first live waiter in the same step (its key, its TTL, its next fencing token) and tells that
/// waiter's coordinator alone, on its own channel (`<prefix><id>`), `g:<owner>:<token>`, so
/// the waiter holds the lock without another round trip. Needs `NEXT_FENCE`.
const QUEUE: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function first_waiter(queue, alive, now)
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local entry = redis.call('HGET', alive, head) or ''
    local until_ms, id, ttl = string.match(entry, '^(%d+) (%x+) (%d+)$')
    if until_ms and tonumber(until_ms) > now then return head, id, ttl end
    redis.call('ZREM', queue, head)
    redis.call('HDEL', alive, head)
  end
end
local function hand_off(lock, fence, queue, alive, prefix, now)
  local head, id, ttl = first_waiter(queue, alive, now)
  if not head then
    redis.call('DEL', lock)
    return
  end
  redis.call('SET', lock, head, 'PX', ttl)
  redis.call('ZREM', queue, head)
  redis.call('HDEL', alive, head)
  redis.call('PUBLISH', prefix .. id, 'g:' .. head .. ':' .. string.format('%d', next_fence(fence)))
end
";

/// Take a lock and, in the same round trip, its next fencing token — unless others queued
/// for it first: then a free lock goes to the first of them (handed off), and a waiting caller
/// joins the queue (or renews its place). A caller the lock was already handed to gets that
/// grant's token. KEYS: lock, fence, queue, waiting. ARGV: token, ttl ms, wait ('1' or '0'),
/// how long a queue entry lives (ms), grant channel prefix, our coordinator id. Returns the
/// token, or 0.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NEXT_FENCE}{QUEUE}{}",
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not holder then
  local head = first_waiter(KEYS[3], KEYS[4], now)
  if not head or head == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    if head then
      redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('HDEL', KEYS[4], ARGV[1])
    end
    return next_fence(KEYS[2])
  end
  -- Freed without a hand-off (expired, or released by Python tooz): the first waiter's.
  hand_off(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[5], now)
end
if ARGV[3] == '1' then
  local life = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[3], 'NX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], string.format('%d %s %s', now + life, ARGV[6], ARGV[2]))
  redis.call('PEXPIRE', KEYS[3], 2 * life)
  redis.call('PEXPIRE', KEYS[4], 2 * life)
end
return 0"
    ))
});

/// Release a lock if it is still ours (what redis-py's lock does), handing it to the first
/// live waiter. KEYS: lock, fence, queue, waiting. ARGV: token, grant channel prefix.
/// Returns 1 or 0.
pub(crate) static RELEASE_LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NEXT_FENCE}{QUEUE}{}",
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  hand_off(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], now_ms())
  return 1
end
return 0"
    ))
});

/// A waiter gives up: off the queue; if the lock was handed to it meanwhile (the grant crossed
/// its giving up), or if the lock is free, it goes on to the next waiter. KEYS: lock, fence,
/// queue, waiting. ARGV: token, grant channel prefix. Returns 1.
pub(crate) static LEAVE_QUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NEXT_FENCE}{QUEUE}{}",
        r"
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  hand_off(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], now_ms())
end
return 1"
    ))
});

/// Resign a leadership if it is still ours, and announce it to everyone campaigning.
/// KEYS: leader lock, leader name. ARGV: token, channel. Returns 1 or 0.
pub(crate) static RESIGN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0",
    )
});

/// Become a group's leader: tooz's election lock, its term counter, and who we are.
/// KEYS: leader lock, leader fence, leader name. ARGV: token, ttl ms, member. Returns the
/// term, or 0.
pub(crate) static LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NEXT_FENCE}{}",
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[3], ARGV[1] .. ' ' .. ARGV[3])
  return next_fence(KEYS[2])
end
return 0"
    ))
});

/// Who leads: the member recorded with the current election token; '' if the holder recorded
/// none (a Python tooz member); nil if nobody leads. KEYS: leader lock, leader name.
pub(crate) static LEADER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local token = redis.call('GET', KEYS[1])
if not token then return false end
local name = redis.call('GET', KEYS[2])
if name and string.sub(name, 1, #token + 1) == token .. ' ' then
  return string.sub(name, #token + 2)
end
return ''",
    )
});

/// One heartbeat in one round trip: refresh our beat key, extend every grant still ours, and
/// check every membership. A beat key that already expired is a session that ended: peers
/// may have pruned us, so nothing carried survives and a new session begins. Grants still ours
/// are neither renewed nor deleted: deleting them now would free them while their holder, not
/// yet told, still believes it holds them; left alone they expire after its local lease.
/// KEYS: beat, grants..., groups.... ARGV: beat ms,
/// grant ms, member, number of grants, their tokens.... Returns 1 if the session restarted
/// (else 0), then 1/0 per grant, then 1/0 per group.
pub(crate) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local restarted = 0
if not redis.call('SET', KEYS[1], 'Not dead!', 'PX', ARGV[1], 'XX') then
  redis.call('SET', KEYS[1], 'Not dead!', 'PX', ARGV[1])
  restarted = 1
end
local grants = tonumber(ARGV[4])
local result = {restarted}
for i = 1, grants do
  local key = KEYS[1 + i]
  if redis.call('GET', key) ~= ARGV[4 + i] or restarted == 1 then
    result[#result + 1] = 0
  else
    redis.call('PEXPIRE', key, ARGV[2])
    result[#result + 1] = 1
  end
end
for j = 2 + grants, #KEYS do
  result[#result + 1] = redis.call('HEXISTS', KEYS[j], ARGV[3])
end
return result",
    )
});

/// tooz's create_group. KEYS: group, groups. ARGV: group id, channel. 1 created, 0 existed.
pub(crate) static CREATE_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], '__created__', '1')
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1",
    )
});

/// Delete a group with no live member; members whose heartbeat expired are pruned first (they
/// block deletion forever in tooz). KEYS: group, groups. ARGV: beats prefix, group id,
/// channel. 1 deleted, -1 missing, -3 not empty.
pub(crate) static DELETE_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local live = 0
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  if m ~= '__created__' then
    if redis.call('EXISTS', ARGV[1] .. m) == 1 then live = live + 1
    else redis.call('HDEL', KEYS[1], m) end
  end
end
if live > 0 then return -3 end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1",
    )
});

/// Join without overwriting anyone (tooz overwrites, then reports MemberAlreadyExist).
/// KEYS: group. ARGV: member, capabilities, channel. 1 joined, 0 already, -1 no group.
pub(crate) static JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1",
    )
});

/// KEYS: group. ARGV: member, channel. 1 left, 0 not a member, -1 no group.
pub(crate) static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local left = redis.call('HDEL', KEYS[1], ARGV[1])
if left == 1 then redis.call('PUBLISH', ARGV[2], KEYS[1]) end
return left",
    )
});

/// tooz's update_capabilities. KEYS: group. ARGV: member, capabilities. 1, -1 no group, -2
/// not a member.
pub(crate) static UPDATE_CAPABILITIES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1",
    )
});

/// The live members in one round trip, pruning those whose heartbeat key expired (as tooz's
/// get_members does, keeping the caller). KEYS: group. ARGV: beats prefix, caller, 'ids' or
/// 'all'. Returns {0} if the group is missing, else {1, member, caps, ...} (caps omitted for
/// 'ids').
pub(crate) static MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local all = redis.call('HGETALL', KEYS[1])
local out = {1}
for i = 1, #all, 2 do
  local m = all[i]
  if m ~= '__created__' then
    if m == ARGV[2] or redis.call('EXISTS', ARGV[1] .. m) == 1 then
      out[#out + 1] = m
      if ARGV[3] == 'all' then out[#out + 1] = all[i + 1] end
    else
      redis.call('HDEL', KEYS[1], m)
    end
  end
end
return out",
    )
});

/// One member's capabilities. KEYS: group. ARGV: member. {0} no group, {1} no member, {2, caps}.
pub(crate) static MEMBER_CAPABILITIES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local caps = redis.call('HGET', KEYS[1], ARGV[1])
if not caps then return {1} end
return {2, caps}",
    )
});
