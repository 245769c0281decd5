//! The conformance suite (the `tooz-testkit` crate) on this crate's backends. `memory://`
//! always runs — plus a lock-only variant of it, to prove that what a backend lacks answers
//! `Unsupported`; one whose calls take a simulated round trip, so that callers can give up
//! mid-flight as on a network backend; and one reached through
//! [`tooz::Coordinator::builder_with_backend`], as a driver outside the crate would be.
//! `file://` runs when its feature is on; more backends come from `TOOZ_TEST_URLS`
//! (space-separated URLs, as in tooz). A scenario a backend cannot support is listed as
//! *ignored*, never left out. Filter as with any test: `cargo test --test conformance -- memory::locks`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tooz::drivers::memory::{MemoryBackend, MemoryOptions};
use tooz_testkit::Target;

/// An in-process store of its own, with a one-second session timeout so that expiry
/// scenarios run quickly.
fn memory_url(extra_options: &str) -> String {
    static STORE: AtomicU64 = AtomicU64::new(0);
    let n = STORE.fetch_add(1, Ordering::Relaxed);
    format!(
        "memory://conformance-{}-{n}?timeout=1{extra_options}",
        std::process::id()
    )
}

fn main() -> ExitCode {
    let custom_url = memory_url("").parse().expect("a memory URL");
    let open: tooz::OpenBackend = Arc::new(move |member| {
        let options = MemoryOptions::from_url(&custom_url)?;
        Ok(Box::new(MemoryBackend::new(options, member.clone())))
    });
    let mut targets = vec![
        Target::url("memory", memory_url("")),
        Target::url(
            "memory-locks-only",
            memory_url("&groups=false&elections=false&shared_locks=false"),
        ),
        // Every call takes a simulated round trip, so a caller can give up mid-flight (the
        // cancellation cases) as it can on a network backend.
        Target::url("memory-latency", memory_url("&latency=2ms")),
        Target::custom("memory-custom", open),
    ];
    #[cfg(feature = "file")]
    let file_dir = {
        let dir = std::env::temp_dir().join(format!("tooz-conformance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        // A one-second membership timeout, as memory's.
        targets.push(Target::url(
            "file",
            format!("file://{}?timeout=1", dir.display()),
        ));
        dir
    };
    let from_env = Target::from_env("TOOZ_TEST_URLS");
    if from_env.is_empty() {
        eprintln!("conformance: TOOZ_TEST_URLS is not set; running memory:// and file:// only");
    }
    targets.extend(from_env);
    let code = tooz_testkit::run(targets);
    #[cfg(feature = "file")]
    let _ = std::fs::remove_dir_all(&file_dir);
    code
}
