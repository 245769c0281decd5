//! Every statement the driver runs, written once with the table prefix in place (the prefix is
//! checked to be `[a-z_][a-z0-9_]*`, the only text ever spliced in); names, capabilities and
//! tokens always travel as parameters. Rows are keyed by the SHA-256 of their name (names are
//! up to 1 KiB, longer than an index key may be), with the name kept beside it.
//!
//! Times are the server's (`UTC_TIMESTAMP(6)`, never the session's time zone, never ours).

/// The statements for one table prefix.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) schema: Vec<String>,
    pub(super) acquire: String,
    pub(super) release: String,
    pub(super) start_member: Vec<String>,
    pub(super) beat: String,
    pub(super) renew_leader: String,
    pub(super) joined: String,
    pub(super) stop_member: String,
    pub(super) create_group: String,
    pub(super) group_exists: String,
    pub(super) delete_group: Vec<String>,
    pub(super) list_groups: String,
    pub(super) join: String,
    pub(super) join_refused: String,
    pub(super) leave: String,
    pub(super) prune: String,
    pub(super) members: String,
    pub(super) member_capabilities: String,
    pub(super) update_capabilities: String,
    pub(super) try_lead: String,
    pub(super) led: String,
    pub(super) resign: String,
    pub(super) leader: String,
}

/// A live beat row of the member in `m.member` (the column of the enclosing query).
fn beat_is_live(p: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {p}beats b WHERE b.member = m.member \
         AND b.expires > UTC_TIMESTAMP(6))"
    )
}

/// The server's clock in microseconds since 1970 (UTC): the floor of every fencing counter.
const CLOCK: &str = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))";

impl Sql {
    pub(super) fn new(p: &str) -> Self {
        let live = beat_is_live(p);
        let clock = CLOCK;
        Self {
            schema: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}locks (
                       id BINARY(32) NOT NULL PRIMARY KEY,
                       fence BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}groups (
                       id BINARY(32) NOT NULL PRIMARY KEY,
                       name VARBINARY(1024) NOT NULL) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}beats (
                       member BINARY(32) NOT NULL PRIMARY KEY,
                       expires DATETIME(6) NOT NULL) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}members (
                       grp BINARY(32) NOT NULL,
                       member BINARY(32) NOT NULL,
                       name VARBINARY(1024) NOT NULL,
                       capabilities LONGBLOB NOT NULL,
                       PRIMARY KEY (grp, member),
                       KEY {p}members_member (member)) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}leaders (
                       grp BINARY(32) NOT NULL PRIMARY KEY,
                       member VARBINARY(1024) NOT NULL,
                       owner CHAR(32) NOT NULL,
                       fence BIGINT UNSIGNED NOT NULL,
                       expires DATETIME(6) NOT NULL) ENGINE=InnoDB"
                ),
            ],
            // One round trip: the lock (waiting up to the last parameter, in seconds, on the
            // server), and its counter bumped in the same statement, while it is held. A lock
            // this session already holds (for another grant of ours, or under a name the
            // server folds to the same one) is refused, not taken again: GET_LOCK is
            // re-entrant within a session, our locks are not. The token comes back as the
            // statement's insert id (LAST_INSERT_ID(expr)); no row means not taken.
            // The counter never falls below the server's clock in microseconds, so that tokens
            // keep rising over a truncated table, a restored backup or a failover that lost the
            // last increments (each grant takes a round trip: the counter cannot outrun it).
            acquire: format!(
                "INSERT INTO {p}locks (id, fence)
                 SELECT ?, LAST_INSERT_ID({clock}) FROM DUAL
                 WHERE IF(IS_USED_LOCK(?) <=> CONNECTION_ID(), 0, GET_LOCK(?, ?)) = 1
                 ON DUPLICATE KEY UPDATE fence = LAST_INSERT_ID(GREATEST(fence + 1, {clock}))"
            ),
            release: "SELECT RELEASE_LOCK(?)".to_owned(),
            // A member id of ours whose beat ran out left rows that would come back to life
            // with a new beat: they go first (unless another process of that id is live).
            start_member: vec![
                format!("DELETE m FROM {p}members m WHERE m.member = ? AND NOT {live}"),
                format!(
                    "INSERT INTO {p}beats (member, expires)
                     VALUES (?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
                     ON DUPLICATE KEY UPDATE expires = VALUES(expires)"
                ),
            ],
            beat: format!(
                "UPDATE {p}beats SET expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
                 WHERE member = ? AND expires > UTC_TIMESTAMP(6)"
            ),
            renew_leader: format!(
                "UPDATE {p}leaders SET expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
                 WHERE grp = ? AND owner = ? AND expires > UTC_TIMESTAMP(6)"
            ),
            joined: format!("SELECT grp FROM {p}members WHERE member = ?"),
            stop_member: format!("DELETE FROM {p}beats WHERE member = ?"),
            create_group: format!("INSERT IGNORE INTO {p}groups (id, name) VALUES (?, ?)"),
            group_exists: format!("SELECT 1 FROM {p}groups WHERE id = ?"),
            // Members whose beat ran out do not keep a group alive; their rows go with it.
            delete_group: vec![
                format!(
                    "DELETE FROM {p}groups WHERE id = ?
                     AND NOT EXISTS (SELECT 1 FROM {p}members m WHERE m.grp = ? AND {live})"
                ),
                // (Only dead rows: the group may be made again and joined meanwhile.)
                format!("DELETE m FROM {p}members m WHERE m.grp = ? AND NOT {live}"),
            ],
            list_groups: format!("SELECT name FROM {p}groups"),
            join: format!(
                "INSERT IGNORE INTO {p}members (grp, member, name, capabilities)
                 SELECT ?, ?, ?, ? FROM DUAL WHERE EXISTS (SELECT 1 FROM {p}groups WHERE id = ?)"
            ),
            // Why a join inserted nothing: the group, and our row, as one statement sees them.
            join_refused: format!(
                "SELECT EXISTS (SELECT 1 FROM {p}groups WHERE id = ?),
                        EXISTS (SELECT 1 FROM {p}members WHERE grp = ? AND member = ?)"
            ),
            leave: format!("DELETE FROM {p}members WHERE grp = ? AND member = ?"),
            // Expired members are pruned as they are read (as tooz's drivers do); ourselves
            // always count as live.
            prune: format!(
                "DELETE m FROM {p}members m WHERE m.grp = ? AND m.member <> ? AND NOT {live}"
            ),
            members: format!(
                "SELECT m.name, m.capabilities FROM {p}members m
                 WHERE m.grp = ? AND (m.member = ? OR {live}) ORDER BY m.name"
            ),
            member_capabilities: format!(
                "SELECT capabilities FROM {p}members WHERE grp = ? AND member = ?"
            ),
            update_capabilities: format!(
                "UPDATE {p}members SET capabilities = ? WHERE grp = ? AND member = ?"
            ),
            // A leadership is a lease row: taken when free or expired, its term counter going
            // on from the last (a resigned or expired row is kept, never deleted).
            try_lead: format!(
                "INSERT INTO {p}leaders (grp, member, owner, fence, expires)
                 VALUES (?, ?, ?, {clock}, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
                 ON DUPLICATE KEY UPDATE
                   -- (assigned left to right: `expires`, which the others test, goes last)
                   fence = IF(expires <= UTC_TIMESTAMP(6), GREATEST(fence + 1, {clock}), fence),
                   member = IF(expires <= UTC_TIMESTAMP(6), VALUES(member), member),
                   owner = IF(expires <= UTC_TIMESTAMP(6), VALUES(owner), owner),
                   expires = IF(expires <= UTC_TIMESTAMP(6), VALUES(expires), expires)"
            ),
            led: format!("SELECT fence FROM {p}leaders WHERE grp = ? AND owner = ?"),
            resign: format!(
                "UPDATE {p}leaders SET expires = '1970-01-01'
                 WHERE grp = ? AND owner = ? AND expires > UTC_TIMESTAMP(6)"
            ),
            leader: format!(
                "SELECT member FROM {p}leaders WHERE grp = ? AND expires > UTC_TIMESTAMP(6)"
            ),
        }
    }
}
