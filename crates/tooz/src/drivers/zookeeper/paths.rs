//! Where things live in ZooKeeper: Python tooz's kazoo layout, and which names can be a node.
//!
//! Under the namespace node (`/tooz`): a group is `/tooz/<group>` (persistent), a member
//! `/tooz/<group>/<member>` (ephemeral, msgpack capabilities), a lock's contenders
//! `/tooz/locks/<name>/<32 hex>__lock__<sequence>` (ephemeral sequential, the member id as
//! data; kazoo's recipe), and a group's leader lock the same under `/tooz/<group>/leader`.
//!
//! Every name is one path component, never more. Python joins names into paths as they come,
//! so its lock `a/b` lives *under* lock `a` (where a crafted name plants a contender that blocks
//! `a` for ever) and `/x` escapes the namespace. Here a name that is a node name ZooKeeper
//! accepts is used as it is (so Python and Rust share it); any other — not UTF-8, `.` or `..`,
//! holding `/` or a character ZooKeeper refuses — is written `~tooz-hex:` and its bytes in hex,
//! as is a name that itself starts with that marker, and a name that is one of the nodes tooz
//! keeps beside groups and members (the group `locks`, the locks' root; the member `leader`,
//! every group's leader lock). The mapping is one-to-one, and listings turn it back.

/// The child of the namespace that holds every lock (a group cannot have this name).
pub(crate) const LOCKS: &str = "locks";
/// The child of a group that holds its leader lock (a member cannot have this name).
pub(crate) const LEADER: &str = "leader";
/// kazoo's contender marker; a contender node is `<prefix>__lock__<10-digit sequence>`.
pub(super) const CONTENDER: &str = "__lock__";
/// kazoo's read-lock contender marker (its `ReadLock`): `<prefix>__rlock__<sequence>`.
pub(super) const SHARED_CONTENDER: &str = "__rlock__";

/// Why ZooKeeper would refuse `c` in a path (its `PathUtils.validatePath`: NUL, control
/// characters, and UTF-16 code units in the surrogate, private-use and specials ranges — so
/// any character past U+FFFF, which Java holds as two surrogates).
fn refused_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
        || u32::from(c) > 0xffff
}

/// Why `name` cannot be one node name, if it cannot.
fn component_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("it is empty".into())
    } else if name == "." || name == ".." {
        Some("ZooKeeper refuses '.' and '..' as node names".into())
    } else if name.contains('/') {
        Some("it holds '/', which would make it a path to another node".into())
    } else {
        name.chars().find(|c| refused_char(*c)).map(|c| {
            format!(
                "it holds {}, which ZooKeeper refuses in node names",
                c.escape_unicode()
            )
        })
    }
}

/// The marker of a name written in hex.
const HEX: &str = "~tooz-hex:";

/// `bytes` as one node name: as it is if it can be one (and is not `reserved`, nor starts
/// with the marker), else the marker and its bytes in hex.
fn encode(bytes: &[u8], reserved: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(name)
            if component_problem(name).is_none() && name != reserved && !name.starts_with(HEX) =>
        {
            name.to_owned()
        }
        _ => {
            let mut encoded = String::with_capacity(HEX.len() + 2 * bytes.len());
            encoded.push_str(HEX);
            for b in bytes {
                encoded.push_str(&format!("{b:02x}"));
            }
            encoded
        }
    }
}

/// The name a node name of a kind with `reserved` stands for: the inverse of the encoding
/// where the node is exactly what the encoding makes of the decoded name; any other node
/// name (another writer's, even one that looks like ours: `~tooz-hex:61` made by hand is not
/// `a`, whose node is `a`) is its own bytes.
pub(crate) fn decode(node: &str, reserved: &str) -> Vec<u8> {
    let hex = node.strip_prefix(HEX).filter(|h| h.len() % 2 == 0);
    let decoded = hex.and_then(|hex| {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
    });
    match decoded {
        Some(name) if encode(&name, reserved) == node => name,
        _ => node.as_bytes().to_vec(),
    }
}

/// A lock name as a node name.
pub(crate) fn lock(name: &[u8]) -> String {
    encode(name, "")
}

/// A group id as a node name (`locks` encoded: it is the locks' root).
pub(crate) fn group(group: &[u8]) -> String {
    encode(group, LOCKS)
}

/// A member id as a node name (`leader` encoded: it is every group's leader lock).
pub(crate) fn member(member: &[u8]) -> String {
    encode(member, LEADER)
}

/// Whether `path` is an absolute ZooKeeper path of valid components (`/a/b`), or why not.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("it does not start with '/'".into());
    };
    for part in rest.split('/') {
        if let Some(problem) = component_problem(part) {
            return Err(format!("a part of it is not a node name: {problem}"));
        }
    }
    Ok(())
}

/// Where every contender node name of grant `owner` starts: its token in 32 hex digits
/// (kazoo puts a uuid4 there), so that a contender whose creation's answer was lost is found
/// again.
pub(super) fn owner_prefix(owner: u128) -> String {
    format!("{owner:032x}")
}

/// The contender node name prefix of grant `owner`, exclusive or `shared`.
pub(super) fn contender_prefix(owner: u128, shared: bool) -> String {
    let marker = if shared { SHARED_CONTENDER } else { CONTENDER };
    format!("{}{marker}", owner_prefix(owner))
}

/// The sequence of a contender node with `marker` (kazoo's `<marker>(-?\d{10})$`), as text:
/// kazoo orders contenders by comparing it as a string, which every implementation must do
/// alike.
fn sequence_after<'c>(child: &'c str, marker: &str) -> Option<&'c str> {
    let at = child.rfind(marker)?;
    let sequence = &child[at + marker.len()..];
    let digits = sequence.strip_prefix('-').unwrap_or(sequence);
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(sequence)
}

/// The sequence of an exclusive contender (`__lock__`).
pub(super) fn contender_sequence(child: &str) -> Option<&str> {
    sequence_after(child, CONTENDER)
}

/// The sequence of a contender of either kind, and whether it is shared (`__rlock__`).
fn any_contender(child: &str) -> Option<(&str, bool)> {
    contender_sequence(child)
        .map(|s| (s, false))
        .or_else(|| sequence_after(child, SHARED_CONTENDER).map(|s| (s, true)))
}

/// Who comes before `ours` among `children` of a lock node: the contender with the greatest
/// sequence below ours that excludes us (`None`: we hold the lock). As kazoo's `WriteLock`
/// and `ReadLock`: an exclusive contender waits for every contender before it, a shared one
/// (`__rlock__`) only for the exclusive ones. `Err` if our node is not among them.
pub(super) fn predecessor<'c>(children: &'c [String], ours: &str) -> Result<Option<&'c str>, ()> {
    let Some((mine, shared)) = any_contender(ours) else {
        return Err(());
    };
    if !children.iter().any(|c| c == ours) {
        return Err(());
    }
    Ok(children
        .iter()
        .filter_map(|c| any_contender(c).map(|(s, theirs)| (s, theirs, c.as_str())))
        .filter(|(s, theirs, _)| *s < mine && !(shared && *theirs))
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(_, _, c)| c))
}

/// The first contender among `children` (the holder), by kazoo's order.
pub(super) fn first_contender(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|c| contender_sequence(c).map(|s| (s, c.as_str())))
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_name_each_one_to_one() {
        assert_eq!(lock(b"my-lock"), "my-lock");
        assert_eq!(lock("\u{e9}\u{4e2d}".as_bytes()), "\u{e9}\u{4e2d}");
        assert_eq!(group(b"locks"), "~tooz-hex:6c6f636b73");
        assert_eq!(group(b"locks2"), "locks2");
        assert_eq!(member(b"leader"), "~tooz-hex:6c6561646572");
        assert_eq!(lock(b"locks"), "locks");
        let mut seen = std::collections::HashMap::new();
        for name in [
            &b"."[..],
            b"..",
            b"a/b",
            b"/etc",
            b"../x",
            b"a\0b",
            b"a\nb",
            b"\x7f",
            b"\xff",
            "\u{1f600}".as_bytes(),
            "\u{e000}".as_bytes(),
            b"~tooz-hex:2e",
            b"~tooz-hex:",
            b"~tooz-hex",
            b"plain",
            b"2e",
        ] {
            let node = lock(name);
            assert!(
                check_path(&format!("/{node}")).is_ok(),
                "{name:?} as {node}"
            );
            assert_eq!(decode(&node, ""), name, "{node}");
            assert!(seen.insert(node.clone(), name).is_none(), "{node} twice");
        }
        // Another writer's names are themselves, even where they look like ours.
        assert_eq!(decode("~tooz-hex:zz", ""), b"~tooz-hex:zz");
        assert_eq!(decode("leader", LEADER), b"leader");
        assert_eq!(
            decode("~tooz-hex:61", LEADER),
            b"~tooz-hex:61",
            "`a` is written `a`"
        );
        assert_eq!(
            decode("~tooz-hex:2B61", ""),
            b"~tooz-hex:2B61",
            "upper case"
        );
        assert_eq!(decode("~tooz-hex:+a", ""), b"~tooz-hex:+a", "a sign");
        assert_eq!(decode(&member(b"leader"), LEADER), b"leader");
        assert_eq!(decode(&group(b"locks"), LOCKS), b"locks");
        assert!(check_path("/a/b").is_ok());
        for bad in ["a", "/", "/a/", "/a//b", "/a/../b", "/a/./b"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contenders_in_kazoo_s_order() {
        let prefix = contender_prefix(0xab, false);
        assert_eq!(prefix, format!("{}ab__lock__", "0".repeat(30)));
        assert_eq!(
            contender_prefix(0xab, true),
            format!("{}ab__rlock__", "0".repeat(30))
        );
        let children: Vec<String> = [
            "x__lock__0000000003",
            "y__lock__0000000001",
            "leader",
            "z__rlock__0000000000",
            "w__lock__000000002",
            "v__lock__0000000005",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(first_contender(&children), Some("y__lock__0000000001"));
        assert_eq!(
            predecessor(&children, "v__lock__0000000005"),
            Ok(Some("x__lock__0000000003"))
        );
        // (Behind the reader planted before it: ours are kazoo WriteLocks.)
        assert_eq!(
            predecessor(&children, "y__lock__0000000001"),
            Ok(Some("z__rlock__0000000000"))
        );
        assert_eq!(predecessor(&children, "q__lock__0000000002"), Err(()));
        // kazoo's pattern, `-?\d{10}`, whatever ZooKeeper prints past 2^31 (mirrored as is).
        assert_eq!(
            contender_sequence("a__lock__-0000000001"),
            Some("-0000000001")
        );
        assert_eq!(contender_sequence("a__lock__-000000001"), None);
        // kazoo's Lock (tooz's) and its first contender ignore read-lock contenders; our
        // exclusive contenders wait for them (kazoo's WriteLock), our shared ones only for
        // exclusive ones (its ReadLock).
        let mixed: Vec<String> = [
            "w1__lock__0000000001",
            "r2__rlock__0000000002",
            "r3__rlock__0000000003",
            "w4__lock__0000000004",
            "r5__rlock__0000000005",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            predecessor(&mixed, "r2__rlock__0000000002"),
            Ok(Some("w1__lock__0000000001"))
        );
        assert_eq!(
            predecessor(&mixed, "r3__rlock__0000000003"),
            Ok(Some("w1__lock__0000000001"))
        );
        assert_eq!(
            predecessor(&mixed, "w4__lock__0000000004"),
            Ok(Some("r3__rlock__0000000003"))
        );
        assert_eq!(
            predecessor(&mixed, "r5__rlock__0000000005"),
            Ok(Some("w4__lock__0000000004"))
        );
        assert_eq!(predecessor(&mixed[1..3], "r3__rlock__0000000003"), Ok(None));
        assert_eq!(first_contender(&mixed[1..]), Some("w4__lock__0000000004"));
        assert_eq!(contender_sequence("z__rlock__0000000000"), None);
    }
}
