//! Every statement the driver runs, written once with the table prefix in place (the prefix is
//! checked to be `[a-z_][a-z0-9_]*`, the only text ever spliced in); names, capabilities and
//! tokens always travel as parameters.

/// Serialises the schema's creation between sessions (a key outside the range of lock keys,
/// which the server assigns from 1).
pub(super) const SCHEMA_LOCK: i64 = -7_366_521_002;

/// The statements for one table prefix.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) schema: String,
    pub(super) setup: String,
    pub(super) start_member: String,
    pub(super) key_of: String,
    pub(super) acquire: String,
    pub(super) acquire_with_tooz_keys: String,
    pub(super) release: String,
    pub(super) release_with_tooz_keys: String,
    pub(super) undo_with_tooz_keys: String,
    pub(super) heartbeat: String,
    pub(super) stop_member: String,
    pub(super) create_group: String,
    pub(super) delete_group: String,
    pub(super) list_groups: String,
    pub(super) join: String,
    pub(super) leave: String,
    pub(super) members: String,
    pub(super) member_capabilities: String,
    pub(super) update_capabilities: String,
    pub(super) group_exists: String,
    pub(super) try_lead: String,
    pub(super) resign: String,
    pub(super) leader: String,
    pub(super) lock_channel: String,
    pub(super) group_channel: String,
}

impl Sql {
    pub(super) fn new(p: &str) -> Self {
        let notify_group = format!("pg_notify('{p}group', '')");
        Self {
            schema: format!(
                "CREATE TABLE IF NOT EXISTS {p}locks (
                   name bytea PRIMARY KEY,
                   key bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                   fence bigint NOT NULL DEFAULT 0);
                 CREATE TABLE IF NOT EXISTS {p}groups (name bytea PRIMARY KEY);
                 CREATE TABLE IF NOT EXISTS {p}beats (
                   member bytea PRIMARY KEY,
                   expires timestamptz NOT NULL);
                 CREATE TABLE IF NOT EXISTS {p}members (
                   grp bytea NOT NULL REFERENCES {p}groups (name) ON DELETE CASCADE,
                   member bytea NOT NULL,
                   capabilities bytea NOT NULL,
                   PRIMARY KEY (grp, member));
                 CREATE INDEX IF NOT EXISTS {p}members_member ON {p}members (member);
                 CREATE TABLE IF NOT EXISTS {p}leaders (
                   grp bytea PRIMARY KEY,
                   member bytea NOT NULL,
                   owner text NOT NULL,
                   fence bigint NOT NULL,
                   expires timestamptz NOT NULL);"
            ),
            setup: format!("LISTEN {p}lock; LISTEN {p}group;"),
            // A member id of ours whose beat ran out left rows that would come back to life
            // with a new beat: they go first (unless another process of that id is live).
            start_member: format!(
                "WITH live AS (SELECT 1 FROM {p}beats WHERE member = $1 AND expires > now()),
                 gone AS (DELETE FROM {p}members WHERE member = $1
                          AND NOT EXISTS (SELECT 1 FROM live) RETURNING grp),
                 beat AS (INSERT INTO {p}beats (member, expires)
                          VALUES ($1, now() + $2 * interval '1 millisecond')
                          ON CONFLICT (member) DO UPDATE SET expires = EXCLUDED.expires
                          RETURNING 1)
                 SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM beat),
                        CASE WHEN EXISTS (SELECT 1 FROM gone) THEN {notify_group} END"
            ),
            key_of: format!(
                "INSERT INTO {p}locks (name) VALUES ($1)
                 ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING key"
            ),
            // The counter row is updated in the same statement, while the lock is held.
            // Whether the lock was taken, and its new token (none if its row is gone: a
            // truncated table, a restore; the caller then gives the lock back).
            acquire: format!(
                "WITH got AS MATERIALIZED (SELECT pg_try_advisory_lock($1) AS ok),
                 bumped AS (UPDATE {p}locks SET fence = fence + 1 FROM got
                            WHERE key = $1 AND got.ok RETURNING fence)
                 SELECT (SELECT ok FROM got), (SELECT fence FROM bumped)"
            ),
            acquire_with_tooz_keys: format!(
                "WITH got AS MATERIALIZED (SELECT CASE WHEN pg_try_advisory_lock($2, $3) THEN
                     CASE WHEN pg_try_advisory_lock($1) THEN true
                          ELSE NOT pg_advisory_unlock($2, $3) END
                   ELSE false END AS ok)
                 , bumped AS (UPDATE {p}locks SET fence = fence + 1 FROM got
                            WHERE key = $1 AND got.ok RETURNING fence)
                 SELECT (SELECT ok FROM got), (SELECT fence FROM bumped)"
            ),
            release: format!("SELECT pg_advisory_unlock($1), pg_notify('{p}lock', $1::text)"),
            release_with_tooz_keys: format!(
                "SELECT pg_advisory_unlock($1), pg_advisory_unlock($2, $3),
                        pg_notify('{p}lock', $1::text)"
            ),
            // After an acquire whose outcome is unknown: Python's key is released only if ours
            // was held (the acquire takes both or neither), so that another grant of ours
            // sharing Python's 16-bit key keeps it.
            undo_with_tooz_keys: format!(
                "SELECT CASE WHEN pg_advisory_unlock($1) THEN pg_advisory_unlock($2, $3)
                        ELSE false END, pg_notify('{p}lock', $1::text)"
            ),
            heartbeat: format!(
                "WITH beat AS (UPDATE {p}beats SET expires = now() + $2 * interval '1 millisecond'
                               WHERE member = $1 AND expires > now() RETURNING 1),
                 lead AS (UPDATE {p}leaders SET expires = now() + $3 * interval '1 millisecond'
                          WHERE owner = ANY($4) AND expires > now() RETURNING owner)
                 SELECT (SELECT count(*) FROM beat), ARRAY(SELECT owner FROM lead),
                        pg_backend_pid(),
                        ARRAY(SELECT grp FROM {p}members WHERE member = $1 AND grp = ANY($5))"
            ),
            stop_member: format!("DELETE FROM {p}beats WHERE member = $1"),
            create_group: format!(
                "WITH made AS (INSERT INTO {p}groups (name) VALUES ($1)
                               ON CONFLICT DO NOTHING RETURNING 1)
                 SELECT (SELECT count(*) FROM made), {notify_group}"
            ),
            // Members whose beat ran out do not keep a group alive (tooz's memcached and redis
            // drivers let them block deletion forever); their rows go with the group.
            delete_group: format!(
                "WITH live AS (SELECT count(*) AS n FROM {p}members m JOIN {p}beats b
                               ON b.member = m.member AND b.expires > now() WHERE m.grp = $1),
                 gone AS (DELETE FROM {p}groups WHERE name = $1
                          AND (SELECT n FROM live) = 0 RETURNING 1)
                 SELECT (SELECT count(*) FROM gone), (SELECT n FROM live),
                        EXISTS (SELECT 1 FROM {p}groups WHERE name = $1), {notify_group}"
            ),
            list_groups: format!("SELECT name FROM {p}groups"),
            join: format!(
                "WITH joined AS (INSERT INTO {p}members (grp, member, capabilities)
                   SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM {p}groups WHERE name = $1)
                   ON CONFLICT DO NOTHING RETURNING 1)
                 SELECT (SELECT count(*) FROM joined), {notify_group},
                   EXISTS (SELECT 1 FROM {p}groups WHERE name = $1)"
            ),
            leave: format!(
                "WITH left_ AS (DELETE FROM {p}members WHERE grp = $1 AND member = $2 RETURNING 1)
                 SELECT (SELECT count(*) FROM left_), {notify_group},
                   EXISTS (SELECT 1 FROM {p}groups WHERE name = $1)"
            ),
            // Expired members are pruned as they are read (as tooz's drivers do); ourselves
            // always count as live.
            members: format!(
                "WITH pruned AS (DELETE FROM {p}members m WHERE m.grp = $1 AND m.member <> $2
                   AND NOT EXISTS (SELECT 1 FROM {p}beats b
                                   WHERE b.member = m.member AND b.expires > now())
                   RETURNING 1)
                 SELECT EXISTS (SELECT 1 FROM {p}groups WHERE name = $1),
                   ARRAY(SELECT m.member FROM {p}members m WHERE m.grp = $1 AND (m.member = $2
                     OR EXISTS (SELECT 1 FROM {p}beats b
                                WHERE b.member = m.member AND b.expires > now()))
                     ORDER BY m.member),
                   ARRAY(SELECT m.capabilities FROM {p}members m WHERE m.grp = $1 AND (m.member = $2
                     OR EXISTS (SELECT 1 FROM {p}beats b
                                WHERE b.member = m.member AND b.expires > now()))
                     ORDER BY m.member),
                   (SELECT count(*) FROM pruned)"
            ),
            member_capabilities: format!(
                "SELECT capabilities FROM {p}members WHERE grp = $1 AND member = $2"
            ),
            update_capabilities: format!(
                "UPDATE {p}members SET capabilities = $3 WHERE grp = $1 AND member = $2
                 RETURNING 1"
            ),
            group_exists: format!("SELECT EXISTS (SELECT 1 FROM {p}groups WHERE name = $1)"),
            // A leadership is a lease row: taken when free or expired, its term counter going
            // on from the last (a resigned or expired row is kept, never deleted).
            try_lead: format!(
                "WITH led AS (INSERT INTO {p}leaders (grp, member, owner, fence, expires)
                   VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond')
                   ON CONFLICT (grp) DO UPDATE SET member = EXCLUDED.member,
                     owner = EXCLUDED.owner, fence = {p}leaders.fence + 1,
                     expires = EXCLUDED.expires
                   WHERE {p}leaders.expires <= now()
                   RETURNING fence)
                 SELECT (SELECT fence FROM led),
                        CASE WHEN EXISTS (SELECT 1 FROM led) THEN {notify_group} END"
            ),
            resign: format!(
                "WITH resigned AS (UPDATE {p}leaders SET expires = '-infinity'
                                   WHERE grp = $1 AND owner = $2 AND expires > now()
                                   RETURNING 1)
                 SELECT (SELECT count(*) FROM resigned), {notify_group}"
            ),
            leader: format!("SELECT member FROM {p}leaders WHERE grp = $1 AND expires > now()"),
            lock_channel: format!("{p}lock"),
            group_channel: format!("{p}group"),
        }
    }
}
