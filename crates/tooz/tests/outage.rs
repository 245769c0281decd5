//! A backend that stops answering: with heartbeats running in the background, every loss
//! signal must still fire at the local deadline, before the backend's own timeout, and the
//! coordinator must recover once the backend answers again. Uses a custom backend through
//! `Coordinator::from_backend`, which also proves that path.

#[cfg(feature = "redis")]
#[path = "support/redis_url.rs"]
mod redis_url;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, timeout};
use tooz::backend::{
    Backend, BeatReport, ChangeHint, Elections, Groups, Held, LockRequest, Losses, OwnerToken,
    Started, Topic,
};
use tooz::drivers::memory::{MemoryBackend, MemoryOptions};
use tooz::{Capabilities, Coordinator, Error, FencingToken, LockName};

/// A real backend, except that while `down` is set every call fails as an unreachable server
/// would.
#[derive(Debug)]
struct Flaky {
    inner: Box<dyn Backend>,
    down: Arc<AtomicBool>,
    /// What start() was given, and the owners of granted locks: for pushing losses.
    losses: Mutex<Option<Losses>>,
    granted: Mutex<Vec<OwnerToken>>,
}

impl Flaky {
    fn new(inner: Box<dyn Backend>, down: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            down,
            losses: Mutex::new(None),
            granted: Mutex::new(Vec::new()),
        }
    }
}

impl Flaky {
    fn check(&self) -> tooz::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Connection {
                backend: "flaky",
                source: "connection refused (simulated)".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Backend for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn start(&self, losses: Losses) -> tooz::Result<Started> {
        self.check()?;
        *self.losses.lock().unwrap() = Some(losses.clone());
        self.inner.start(losses).await
    }
    async fn heartbeat(&self, held: &Held) -> tooz::Result<BeatReport> {
        self.check()?;
        self.inner.heartbeat(held).await
    }
    async fn stop(&self) -> tooz::Result<()> {
        self.inner.stop().await
    }
    async fn try_acquire(&self, request: LockRequest<'_>) -> tooz::Result<Option<FencingToken>> {
        self.check()?;
        let granted = self.inner.try_acquire(request).await?;
        if granted.is_some() {
            self.granted.lock().unwrap().push(request.owner);
        }
        Ok(granted)
    }
    async fn stop_waiting(&self, name: &LockName, owner: OwnerToken) -> tooz::Result<()> {
        self.inner.stop_waiting(name, owner).await
    }
    async fn release(&self, name: &LockName, owner: OwnerToken) -> tooz::Result<bool> {
        self.check()?;
        self.inner.release(name, owner).await
    }
    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        self.inner.change_hint(topic)
    }
    fn groups(&self) -> Option<&dyn Groups> {
        self.inner.groups()
    }
    fn elections(&self) -> Option<&dyn Elections> {
        self.inner.elections()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_memory_backend_fires_every_loss_signal_in_time() {
    let url = "memory://outage?timeout=1";
    let options = MemoryOptions::from_url(&url::Url::parse(url).unwrap()).unwrap();
    outage(Box::new(MemoryBackend::new(options, "a".into())), url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_server_fires_every_loss_signal_in_time() {
    use tooz::drivers::redis::{RedisBackend, RedisOptions};
    let Some(server) = redis_url::redis_url() else {
        eprintln!("no redis:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let server = url::Url::parse(&server).unwrap();
    let url = format!(
        "redis://{}:{}?timeout=1&namespace=outage-{}",
        server.host_str().unwrap(),
        server.port().unwrap_or(6379),
        std::process::id()
    );
    let options = RedisOptions::from_url(&url::Url::parse(&url).unwrap()).unwrap();
    outage(Box::new(RedisBackend::new(options, "a".into())), &url).await;
}

/// Member `a` on `backend` (which must use a 1 s timeout) and member `b` on `url`, the same
/// store or server.
async fn outage(backend: Box<dyn Backend>, url: &str) {
    let down = Arc::new(AtomicBool::new(false));
    let flaky = Flaky::new(backend, Arc::clone(&down));
    let a = Coordinator::from_backend(Box::new(flaky), "a")
        .await
        .unwrap();
    let b = Coordinator::connect(url, "b").await.unwrap();
    let membership = a
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = a.lock("l").acquire().await.unwrap();
    let leadership = a.campaign("g").await.unwrap();

    // Heartbeats keep everything alive well past the timeout while the backend answers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(guard.is_held() && membership.is_active() && leadership.is_held());

    down.store(true, Ordering::SeqCst);
    let outage = Instant::now();
    timeout(Duration::from_secs(2), guard.lost())
        .await
        .expect("lock loss fired");
    timeout(Duration::from_millis(300), membership.lost())
        .await
        .expect("membership loss fired");
    timeout(Duration::from_millis(300), leadership.lost())
        .await
        .expect("leadership loss fired");
    // 90% of the 1 s timeout after the last renewal sent (which came before the outage):
    // the loss fires before the backend's own timeout, counted from the outage, could end.
    assert!(
        outage.elapsed() < Duration::from_millis(1000),
        "{:?}",
        outage.elapsed()
    );
    assert!(!guard.is_held() && !membership.is_active() && !leadership.is_held());
    assert!(!a.is_live());

    // Only after the backend's own timeout can anyone else take over.
    let taken = b
        .lock("l")
        .acquire_timeout(Duration::from_secs(3))
        .await
        .unwrap();
    assert!(taken.token() > guard.token());
    assert!(
        !b.members("g").await.unwrap().contains(&"a".into()),
        "a timed out"
    );

    // The backend comes back: the coordinator starts a new session by itself.
    down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !a.is_live() {
        assert!(Instant::now() < deadline, "a did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.join_group("g", Capabilities::none())
        .await
        .expect("rejoin after recovery");
    assert!(b.members("g").await.unwrap().contains(&"a".into()));
    taken.release().await.unwrap();
    a.stop().await.unwrap();
    b.delete_group("g").await.ok();
    b.stop().await.unwrap();
}

/// A backend that learns of a loss pushes it at once (a ZooKeeper session expiry, an etcd
/// watch): the handles it names report it without waiting for a heartbeat, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_loss_fires_at_once_and_only_where_it_says() {
    let url = "memory://pushed?timeout=10";
    let options = MemoryOptions::from_url(&url::Url::parse(url).unwrap()).unwrap();
    let flaky = Arc::new(Flaky::new(
        Box::new(MemoryBackend::new(options, "a".into())),
        Arc::new(AtomicBool::new(false)),
    ));
    let a = Coordinator::from_backend(Box::new(SharedFlaky(Arc::clone(&flaky))), "a")
        .await
        .unwrap();
    let first = a.lock("first").acquire().await.unwrap();
    let second = a.lock("second").acquire().await.unwrap();
    let membership = a
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let losses = flaky.losses.lock().unwrap().clone().unwrap();
    let owners = flaky.granted.lock().unwrap().clone();

    losses.grants_lost(vec![owners[0]]);
    timeout(Duration::from_millis(200), first.lost())
        .await
        .expect("the named grant is lost at once");
    assert!(second.is_held() && membership.is_active());

    losses.session_ended();
    timeout(Duration::from_millis(200), second.lost())
        .await
        .expect("a session that ended loses every grant");
    timeout(Duration::from_millis(200), membership.lost())
        .await
        .expect("and every membership");
    assert!(!a.is_live(), "until a heartbeat renews the session");
    a.heartbeat().await.unwrap();
    assert!(a.is_live());
    a.stop().await.unwrap();
}

/// Lets the test keep a handle on the backend the coordinator owns.
#[derive(Debug)]
struct SharedFlaky(Arc<Flaky>);

#[async_trait]
impl Backend for SharedFlaky {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn start(&self, losses: Losses) -> tooz::Result<Started> {
        self.0.start(losses).await
    }
    async fn heartbeat(&self, held: &Held) -> tooz::Result<BeatReport> {
        self.0.heartbeat(held).await
    }
    async fn stop(&self) -> tooz::Result<()> {
        self.0.stop().await
    }
    async fn try_acquire(&self, request: LockRequest<'_>) -> tooz::Result<Option<FencingToken>> {
        self.0.try_acquire(request).await
    }
    async fn release(&self, name: &LockName, owner: OwnerToken) -> tooz::Result<bool> {
        self.0.release(name, owner).await
    }
    fn groups(&self) -> Option<&dyn Groups> {
        self.0.groups()
    }
}
