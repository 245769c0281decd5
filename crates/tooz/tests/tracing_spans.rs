//! What a `tracing` subscriber sees: a span per connect, acquire, hold, join, leave, campaign
//! and heartbeat, with the backend, the name and the fencing token as fields — and never a
//! password.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tooz::{Capabilities, Coordinator};
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on a current-thread runtime under a subscriber that logs every span's close at
/// TRACE level; returns what it wrote.
fn traced(work: impl Future<Output = ()>) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(work));
    drop(runtime);
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn every_operation_has_a_span_with_its_names_and_token() {
    let out = traced(async {
        let url = format!("memory://spans-{}?timeout=1", std::process::id());
        let coord = Coordinator::connect(&url, "m").await.unwrap();
        let guard = coord.lock("the-lock").acquire().await.unwrap();
        guard.release().await.unwrap();
        coord
            .join_group_create("the-group", Capabilities::none())
            .await
            .unwrap();
        let leadership = coord.campaign("the-group").await.unwrap();
        coord.heartbeat().await.unwrap();
        leadership.resign().await.unwrap();
        coord.leave_group("the-group").await.unwrap();
        coord.stop().await.unwrap();
    });
    for expected in [
        "tooz.connect{backend=\"memory\" member=m}",
        "tooz.acquire{backend=\"memory\" lock=the-lock mode=Exclusive token=1",
        "tooz.hold{backend=\"memory\" lock=the-lock token=1}",
        "lock acquired",
        "handed back",
        "tooz.join{backend=\"memory\" group=the-group}",
        "tooz.campaign{backend=\"memory\" group=the-group token=",
        "tooz.lead{backend=\"memory\" group=the-group token=",
        "tooz.heartbeat{backend=\"memory\"",
        "tooz.leave{backend=\"memory\" group=the-group}",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    // A healthy run says nothing above DEBUG.
    for level in [" INFO ", " WARN ", " ERROR "] {
        assert!(!out.contains(level), "{level} in:\n{out}");
    }
}

// A failed Redis connect is where a careless field would print the URL.
#[cfg(feature = "redis")]
#[test]
fn a_password_in_the_url_never_reaches_a_span_or_an_event() {
    use std::time::Duration;
    let out = traced(async {
        // Nobody listens on port 1: connecting fails after the URL is parsed and the backend
        // opened (where a careless field would print it).
        let url = "redis://user:hunter2@127.0.0.1:1/?timeout=1&socket_timeout=1";
        let err = tokio::time::timeout(Duration::from_secs(10), Coordinator::connect(url, "m"))
            .await
            .expect("connecting gives up");
        let err = err.expect_err("nobody listens on port 1");
        tracing::warn!(error = %err, "connect failed");
        let coord = Coordinator::connect(&format!("memory://pw-{}", std::process::id()), "m")
            .await
            .unwrap();
        coord
            .lock("l")
            .acquire()
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        coord.stop().await.unwrap();
    });
    assert!(out.contains("connect failed"), "{out}");
    assert!(!out.contains("hunter2"), "the password leaked:\n{out}");
}
