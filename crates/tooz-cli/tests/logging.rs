//! The `tooz` binary's log lines on stderr: the library's warnings are shown by default, as
//! text or JSON; `-q`, `-v`, `-vv` and `RUST_LOG` set the level; exit codes and the one-line
//! errors stay as they are.

mod common;

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::Duration;

use common::*;

/// What the file driver logs when it skips a member file it cannot decode.
const SKIPPED: &str = "skipping a member file that cannot be read";
/// What the file driver logs (at info) when it removes the file of a member that died.
const COLLECTED: &str = "collecting the file of a member that died";

/// The directory of the one group under `env`'s `file://` directory.
fn group_dir(env: &Env) -> PathBuf {
    let mut groups = std::fs::read_dir(env.dir.join("groups"))
        .expect("the groups directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir());
    let dir = groups.next().expect("one group");
    assert!(groups.next().is_none(), "exactly one group");
    dir
}

/// The garbage member file's name, as tooz names a member's file: `sha1hex("ghost").raw`.
const GARBAGE: &str = "c4745785181de931cfd5bd79294cb1687d82aea9.raw";

/// Creates `group` and plants a member file that is not a msgpack member record (0xc1 is
/// never used in msgpack): listing members skips it, with a warning.
fn group_with_a_garbage_member(env: &Env, group: &str) {
    let out = env.run(&["group", "create", group]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    std::fs::write(
        group_dir(env).join(GARBAGE),
        b"\xc1 this is not a member record",
    )
    .unwrap();
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", stderr(out));
    assert!(!stderr(out).contains("panicked"), "{what}: {}", stderr(out));
}

#[test]
fn a_library_warning_is_shown_on_stderr_by_default() {
    let env = Env::new("log-warn");
    group_with_a_garbage_member(&env, "g");
    let out = env.run(&["group", "members", "g"]);
    assert_exit(&out, 0, "members with a garbage member file");
    assert_eq!(stdout(&out), "", "the garbage file lists no member");
    let err = stderr(&out);
    assert!(err.contains("WARN"), "{err}");
    assert!(err.contains(SKIPPED), "{err}");
    assert!(err.contains(GARBAGE), "the warning names the file: {err}");
    assert!(!err.contains("tooz: "), "a warning is no error line: {err}");
    // `-q`: errors only.
    let quiet = env.run(&["-q", "group", "members", "g"]);
    assert_exit(&quiet, 0, "-q members");
    assert!(stderr(&quiet).is_empty(), "-q: {}", stderr(&quiet));
}

#[test]
fn json_log_format_writes_the_warning_as_one_json_object_per_line() {
    let env = Env::new("log-json");
    group_with_a_garbage_member(&env, "g");
    // A global flag: before or after the subcommand.
    for args in [
        &["--log-format", "json", "group", "members", "g"][..],
        &["group", "members", "g", "--log-format=json"],
    ] {
        let out = env.run(args);
        assert_exit(&out, 0, &format!("{args:?}"));
        let err = stderr(&out);
        let lines: Vec<serde_json::Value> = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{args:?}: not a JSON line ({e}): {l:?}"))
            })
            .collect();
        let warning = lines
            .iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.contains(SKIPPED)))
            .unwrap_or_else(|| panic!("{args:?}: no JSON warning in {err}"));
        assert_eq!(warning["level"], "WARN", "{warning}");
        assert!(
            warning["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("tooz::drivers::file")),
            "{warning}"
        );
        // flatten_event: the event's fields sit beside the message.
        assert!(
            warning["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(GARBAGE)),
            "{warning}"
        );
        assert!(warning["error"].is_string(), "{warning}");
    }
}

#[test]
fn healthy_commands_print_nothing_on_stderr() {
    let env = Env::new("log-quiet");
    let out = env.run(&["group", "create", "g"]);
    assert_exit(&out, 0, "group create");
    assert!(stderr(&out).is_empty(), "group create: {}", stderr(&out));
    let commands: [&[&str]; 5] = [
        &["group", "list"],
        &["group", "members", "g"],
        &["info"],
        &["ring", "--node", "a", "k"],
        &["lock", "healthy", "--", "true"],
    ];
    let no_flags: &[&str] = &[];
    for command in commands {
        for flags in [no_flags, &["-q"], &["--log-format", "json"]] {
            let args: Vec<&str> = flags.iter().chain(command).copied().collect();
            let out = env.run(&args);
            assert_exit(&out, 0, &format!("{args:?}"));
            assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
        }
    }
    // An empty RUST_LOG counts as unset.
    let out = env
        .tooz(&["group", "members", "g"])
        .env("RUST_LOG", "")
        .output()
        .unwrap();
    assert_exit(&out, 0, "RUST_LOG=''");
    assert!(stderr(&out).is_empty(), "RUST_LOG='': {}", stderr(&out));
}

#[test]
fn an_unknown_log_format_is_a_usage_error() {
    let env = Env::new("log-bad-format");
    for args in [
        &["--log-format", "yaml", "group", "list"][..],
        &["group", "list", "--log-format=yaml"],
        // Checked before anything is connected: no backend listens there.
        &[
            "--url",
            "redis://127.0.0.1:1",
            "--log-format",
            "yaml",
            "info",
        ],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_exit(&out, 2, &format!("{args:?}"));
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(err.starts_with("tooz: "), "{args:?}: {err}");
        assert!(
            err.contains("yaml") && err.contains("--log-format"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn errors_stay_one_plain_line_whatever_the_log_format() {
    let env = Env::new("log-error-line");
    let no_flags: &[&str] = &[];
    for flags in [no_flags, &["--log-format", "json"], &["-v"]] {
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["group", "members", "never-created"])
            .collect();
        let out = env.run(&args);
        let err = stderr(&out);
        assert_exit(&out, 1, &format!("{args:?}"));
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(err.starts_with("tooz: "), "{args:?}: {err}");
        assert!(err.contains("never-created"), "{args:?}: {err}");
    }
}

/// A member of `group` whose process was SIGKILLed: its file stays, its liveness lock is
/// gone, so the next listing collects the file (an info event).
fn dead_member(env: &Env, group: &str, member: &str) {
    let mut holder: Child = env.spawn(&["--member", member, "group", "join", group]);
    let joined = eventually(Duration::from_secs(5), || {
        stdout(&env.run(&["group", "members", group]))
            .lines()
            .any(|l| l == member)
    });
    holder.kill().unwrap(); // SIGKILL: no leave, the file stays
    let _ = holder.wait();
    assert!(joined, "{member} joined {group}");
    assert!(member_file(&env.dir).is_some(), "{member}'s file stayed");
}

#[test]
fn verbosity_flags_and_rust_log_set_the_level() {
    let env = Env::new("log-verbose");
    // Default: the info event of a collected member is not shown.
    dead_member(&env, "g", "m1");
    let out = env.run(&["group", "members", "g"]);
    assert_exit(&out, 0, "default");
    assert!(stderr(&out).is_empty(), "default: {}", stderr(&out));
    assert!(
        member_file(&env.dir).is_none(),
        "the dead member's file was collected"
    );
    // -v shows it.
    dead_member(&env, "g", "m2");
    let out = env.run(&["-v", "group", "members", "g"]);
    assert_exit(&out, 0, "-v");
    let err = stderr(&out);
    assert!(err.contains("INFO") && err.contains(COLLECTED), "-v: {err}");
    // RUST_LOG takes precedence over the flags, -q included.
    dead_member(&env, "g", "m3");
    let out = env
        .tooz(&["-q", "group", "members", "g"])
        .env("RUST_LOG", "tooz=info")
        .output()
        .unwrap();
    assert_exit(&out, 0, "RUST_LOG=tooz=info -q");
    let err = stderr(&out);
    assert!(
        err.contains("INFO") && err.contains(COLLECTED),
        "RUST_LOG=tooz=info -q: {err}"
    );
    // Debug and trace: whatever the library emits there, nothing may break.
    for flags in [&["-vv"][..], &["-vvv"], &["-v", "-v", "-q"]] {
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["group", "members", "g"])
            .collect();
        let out = env.run(&args);
        assert_exit(&out, 0, &format!("{args:?}"));
    }
    for rust_log in ["debug", "trace", "tooz=debug,warn"] {
        let out = env
            .tooz(&["group", "members", "g"])
            .env("RUST_LOG", rust_log)
            .output()
            .unwrap();
        assert_exit(&out, 0, &format!("RUST_LOG={rust_log}"));
    }
}

#[test]
fn double_verbose_is_the_debug_level() {
    let env = Env::new("log-debug");
    let run = |flags: &[&str], rust_log: Option<&str>| {
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["lock", "debugged", "--", "true"])
            .collect();
        let mut cmd = env.tooz(&args);
        if let Some(rust_log) = rust_log {
            cmd.env("RUST_LOG", rust_log);
        }
        let out = cmd.output().unwrap();
        assert_exit(&out, 0, &format!("{args:?}, RUST_LOG={rust_log:?}"));
        stderr(&out)
    };
    // The library reports each grant at debug level: -vv shows it, as RUST_LOG=debug does.
    let debug = run(&[], Some("debug"));
    let vv = run(&["-vv"], None);
    for out in [&debug, &vv] {
        assert!(
            out.contains("DEBUG") && out.contains("lock acquired") && out.contains("debugged"),
            "RUST_LOG=debug:\n{debug}\n-vv:\n{vv}"
        );
    }
    assert!(!vv.contains("TRACE"), "-vv is not trace: {vv}");
    let v = run(&["-v"], None);
    assert!(!v.contains("DEBUG") && !v.contains("TRACE"), "-v: {v}");
    let plain = run(&[], None);
    assert!(plain.is_empty(), "default: {plain}");
    run(&["-vvv"], None);
}

#[test]
fn an_invalid_rust_log_falls_back_to_the_flags_with_one_warning() {
    let env = Env::new("log-bad-rust-log");
    let out = env
        .tooz(&["ring", "--node", "a", "k"])
        .env("RUST_LOG", "tooz=notalevel")
        .output()
        .unwrap();
    assert_exit(&out, 0, "RUST_LOG=tooz=notalevel");
    assert_eq!(stdout(&out), "k: a\n");
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one warning, got {err:?}");
    assert!(err.contains("WARN") && err.contains("RUST_LOG"), "{err}");
    // The flags' level applies: the library's warnings still show.
    group_with_a_garbage_member(&env, "g");
    let out = env
        .tooz(&["group", "members", "g"])
        .env("RUST_LOG", "tooz=notalevel")
        .output()
        .unwrap();
    assert_exit(&out, 0, "members, RUST_LOG=tooz=notalevel");
    let err = stderr(&out);
    assert!(err.contains("RUST_LOG") && err.contains(SKIPPED), "{err}");
}
