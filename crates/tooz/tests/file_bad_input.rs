//! What others may leave in a shared directory: garbage member files, foreign files, broken
//! metadata. Each is skipped (and logged) or refused with a message naming it; none panics,
//! and nothing belonging to anyone else is damaged.

#![cfg(feature = "file")]

use std::fs;
use std::path::PathBuf;

use sha1::{Digest, Sha1};
use tooz::{Capabilities, Coordinator, Error, MemberId};

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tooz-bad-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn garbage_member_files_are_skipped_and_block_nothing_else() {
    let dir = scratch("garbage");
    let url = format!("file://{}", dir.display());
    let coord = Coordinator::connect(&url, "good").await.unwrap();
    coord
        .join_group_create("g", serde_json::json!({"ok": true}))
        .await
        .unwrap();
    let group_dir = dir.join("groups").join(sha1_hex(b"g"));
    let garbage = group_dir.join(format!("{}.raw", sha1_hex(b"intruder")));
    fs::write(&garbage, b"\xc1\xff not msgpack at all").unwrap();
    fs::write(
        group_dir.join(format!("{}.raw", sha1_hex(b"wrong-shape"))),
        b"\x93\x01\x02\x03",
    )
    .unwrap();
    fs::write(group_dir.join("README"), b"someone's notes").unwrap();

    let members = coord.members_with_capabilities("g").await.unwrap();
    assert_eq!(
        members.keys().collect::<Vec<_>>(),
        vec![&MemberId::from("good")]
    );
    assert_eq!(coord.members("g").await.unwrap().len(), 1);
    assert!(garbage.exists(), "another's file is skipped, never removed");

    // Deleting the group refuses, naming the files it cannot account for, and removes nothing.
    coord.leave_group("g").await.unwrap();
    let err = coord.delete_group("g").await.unwrap_err().to_string();
    assert!(err.contains("README") && err.contains(".raw"), "{err}");
    assert!(group_dir.join(".metadata").exists() && garbage.exists());
    assert!(coord.groups().await.unwrap().contains(&"g".into()));
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn broken_group_metadata_is_skipped_in_listings() {
    let dir = scratch("metadata");
    let url = format!("file://{}", dir.display());
    let coord = Coordinator::connect(&url, "m").await.unwrap();
    coord.create_group("fine").await.unwrap();
    let broken = dir.join("groups").join(sha1_hex(b"broken"));
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join(".metadata"), b"\x81\xa8group_id\x07").unwrap();
    fs::create_dir_all(dir.join("groups").join("not-a-group")).unwrap();
    let groups = coord.groups().await.unwrap();
    assert_eq!(groups, vec!["fine".into()]);
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn escaping_lock_names_and_symlinks_are_refused() {
    let dir = scratch("escape");
    let outside = scratch("escape-outside");
    fs::create_dir_all(&outside).unwrap();
    let url = format!("file://{}", dir.display());
    let coord = Coordinator::connect(&url, "m").await.unwrap();
    let name = format!("../{}/x", outside.file_name().unwrap().to_string_lossy());
    let err = coord.lock(name.as_str()).try_acquire().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "lock", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(&name),
        "the message names the input: {err}"
    );
    // A symlink planted inside the directory does not lead a lock outside it either.
    std::os::unix::fs::symlink(&outside, dir.join("planted")).unwrap();
    let err = coord
        .lock("planted/x")
        .try_acquire()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("planted/x"), "{err}");
    assert!(
        !outside.join("x").exists(),
        "nothing was created outside the directory"
    );
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&outside);
}

#[tokio::test]
async fn a_world_writable_directory_without_sticky_bit_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("perms");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = Coordinator::connect(&format!("file://{}", dir.display()), "m")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("writable by everyone"), "{err}");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let ok = Coordinator::connect(&format!("file://{}", dir.display()), "m")
        .await
        .unwrap();
    ok.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_python_member_file_without_our_lock_uses_the_timeout() {
    // A member file in tooz's own format (no liveness lock): judged by mtime only.
    let dir = scratch("python-form");
    let url = format!("file://{}?timeout=2", dir.display());
    let coord = Coordinator::connect(&url, "rust").await.unwrap();
    coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let member = dir
        .join("groups")
        .join(sha1_hex(b"g"))
        .join(format!("{}.raw", sha1_hex(b"py")));
    // {"capabilities": None, "member_id": b"py", "encoded": False} as msgpack.
    fs::write(
        &member,
        b"\x83\xaccapabilities\xc0\xa9member_id\xc4\x02py\xa7encoded\xc2",
    )
    .unwrap();
    assert!(
        coord.members("g").await.unwrap().contains(&"py".into()),
        "fresh mtime: alive"
    );
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(&member)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert!(
        !coord.members("g").await.unwrap().contains(&"py".into()),
        "stale mtime: dead"
    );
    assert!(
        member.exists(),
        "a Python member that is merely late is not deleted"
    );
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn lock_names_never_reach_the_directory_layout() {
    let dir = scratch("reserved");
    let url = format!("file://{}", dir.display());
    let coord = Coordinator::connect(&url, "m").await.unwrap();
    coord
        .join_group_create("g", serde_json::json!({"ok": true}))
        .await
        .unwrap();
    let group = sha1_hex(b"g");
    let names = [
        (format!("groups/{group}/.metadata"), "groups"),
        (format!("groups/{group}/{}.raw", sha1_hex(b"m")), "groups"),
        ("tmp/x".to_owned(), "tmp"),
        (".driver_lock".to_owned(), ".driver_lock"),
        (format!(".tooz-rs/leaders/{group}"), ".tooz-rs"),
    ];
    for (name, top) in &names {
        let err = coord.lock(name.as_str()).try_acquire().await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "lock", .. }),
            "{name}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("'{top}'")) && message.contains("reserved"),
            "{message}"
        );
    }
    assert_eq!(coord.groups().await.unwrap(), vec!["g".into()]);
    let members = coord.members_with_capabilities("g").await.unwrap();
    assert_eq!(
        members.get(&MemberId::from("m")).map(Capabilities::to_json),
        Some(serde_json::json!({"ok": true}))
    );
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_lock_and_locks_below_it_cannot_both_exist() {
    let dir = scratch("nesting");
    let url = format!("file://{}", dir.display());
    let coord = Coordinator::connect(&url, "m").await.unwrap();
    let file = coord.lock("a").try_acquire().await.unwrap().expect("free");
    let err = coord.lock("a/b").try_acquire().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "lock", .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("'a' is already a lock file") && message.contains("'a/b'"),
        "{message}"
    );
    file.release().await.unwrap();
    // Released, `a` is still a file: the refusal does not depend on anyone holding it.
    let err = coord.lock("a/b/c").try_acquire().await.unwrap_err();
    assert!(
        err.to_string().contains("'a' is already a lock file"),
        "{err}"
    );

    let below = coord
        .lock("c/d")
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let err = coord.lock("c").try_acquire().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "lock", .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("'c' is a directory of other locks") && message.contains("'c/...'"),
        "{message}"
    );
    below.release().await.unwrap();
    coord.stop().await.unwrap();
    let _ = fs::remove_dir_all(&dir);
}

fn nested(levels: usize) -> Capabilities {
    let mut value = rmpv::Value::Nil;
    for _ in 0..levels {
        value = rmpv::Value::Array(vec![value]);
    }
    Capabilities::new(value)
}

#[tokio::test]
async fn capabilities_a_join_accepts_are_listed_back() {
    let dir = scratch("caps-limits");
    let url = format!("file://{}", dir.display());
    // The largest capabilities `encode` accepts, and the deepest `decode` reads back.
    let big = Capabilities::new(rmpv::Value::Binary(vec![7; tooz::MAX_CAPABILITIES_LEN - 3]));
    assert_eq!(big.encode().unwrap().len(), tooz::MAX_CAPABILITIES_LEN);
    let readable = |n: &usize| Capabilities::decode(&nested(*n).encode().unwrap()).is_ok();
    let depth = (0..).take_while(readable).last().unwrap();
    let deep = nested(depth);
    let (a, b) = (
        Coordinator::connect(&url, "big").await.unwrap(),
        Coordinator::connect(&url, "deep").await.unwrap(),
    );
    a.join_group_create("g", big.clone()).await.unwrap();
    b.join_group("g", deep.clone()).await.unwrap();
    let members = a.members_with_capabilities("g").await.unwrap();
    assert_eq!(members.len(), 2, "{:?}", members.keys());
    assert!(members[&MemberId::from("big")] == big);
    assert!(members[&MemberId::from("deep")] == deep);
    assert!(b.member_capabilities("g", "big").await.unwrap() == big);
    assert_eq!(a.members("g").await.unwrap().len(), 2);

    // Deeper than any reader accepts: refused at the join, not accepted and then unlisted.
    let c = Coordinator::connect(&url, "deeper").await.unwrap();
    let err = c.join_group("g", nested(depth + 1)).await.unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err}");
    assert!(!a.members("g").await.unwrap().contains(&"deeper".into()));
    let err = b
        .update_capabilities("g", nested(depth + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err}");
    assert!(b.member_capabilities("g", "deep").await.unwrap() == deep);
    for coord in [a, b, c] {
        coord.stop().await.unwrap();
    }
    let _ = fs::remove_dir_all(&dir);
}
