//! What a scenario gets: a way to connect members to one backend, and what it supports.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tooz::{Coordinator, CoordinatorBuilder, Supported};

/// Every scenario gets this long before it is failed as hung.
const CASE_BUDGET: Duration = Duration::from_secs(60);

pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a scenario needs of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    Groups,
    Elections,
    SharedLocks,
    /// Locks that end when heartbeats stop.
    LeaseBoundLocks,
    /// Locks held by the kernel or a connection, not by heartbeats.
    HeldLocks,
    /// Elections, with leaderships that end when heartbeats stop.
    LeaseBoundElections,
    /// Runs only on a backend that lacks something, to check it answers `Unsupported`.
    MissingFeature,
}

pub struct Case {
    pub area: &'static str,
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn(Harness) -> CaseFuture,
}

#[derive(Clone, Debug)]
pub struct Harness {
    pub name: String,
    url: String,
    pub supported: Supported,
}

/// A backend that could not be set up: its name and why.
pub struct SetupError(pub String, pub String);

impl Harness {
    /// An in-process store of its own, with a one-second session timeout so that expiry
    /// scenarios run quickly.
    pub fn memory(name: &str, extra_options: &str) -> Result<Self, SetupError> {
        static STORE: AtomicU64 = AtomicU64::new(0);
        let n = STORE.fetch_add(1, Ordering::Relaxed);
        let url = format!(
            "memory://conformance-{}-{n}?timeout=1{extra_options}",
            std::process::id()
        );
        Self::probe(name.to_owned(), url)
    }

    /// A fresh directory under the system temp dir, with a one-second membership timeout.
    pub fn file(dir: &std::path::Path) -> Result<Self, SetupError> {
        std::fs::create_dir_all(dir).map_err(|e| SetupError("file".into(), e.to_string()))?;
        Self::probe(
            "file".to_owned(),
            format!("file://{}?timeout=1", dir.display()),
        )
    }

    /// A backend from `TOOZ_TEST_URLS`.
    pub fn url(url: &str) -> Result<Self, SetupError> {
        let scheme = url.split("://").next().unwrap_or(url);
        Self::probe(scheme.to_owned(), url.to_owned())
    }

    fn probe(name: String, url: String) -> Result<Self, SetupError> {
        let runtime = runtime();
        let supported = runtime
            .block_on(async {
                let coord = Coordinator::connect(&url, "conformance-probe").await?;
                let supported = coord.supported();
                coord.stop().await?;
                Ok::<_, tooz::Error>(supported)
            })
            .map_err(|e| SetupError(name.clone(), format!("cannot connect to {url}: {e}")))?;
        Ok(Self {
            name,
            url,
            supported,
        })
    }

    /// Runs one scenario on a runtime of its own, bounded by the case budget.
    pub fn run(self, case: fn(Self) -> CaseFuture) -> Result<(), libtest_mimic::Failed> {
        runtime().block_on(async move {
            tokio::time::timeout(CASE_BUDGET, case(self))
                .await
                .map_err(|_| format!("scenario did not finish within {CASE_BUDGET:?}").into())
        })
    }

    /// A builder for a new member of this backend.
    pub fn builder(&self, member: &str) -> CoordinatorBuilder {
        Coordinator::builder(&self.url, member)
    }

    /// A new member, heart-beating in the background.
    pub async fn member(&self, member: &str) -> Coordinator {
        self.builder(member).connect().await.expect("connect")
    }

    /// The URL with one more query option.
    pub fn url_with(&self, option: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{option}", self.url)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A name no other scenario or run uses.
pub fn unique(prefix: &str) -> String {
    let token = tooz::backend::OwnerToken::generate().to_hex();
    format!("{prefix}-{}", &token[..12])
}

/// Registers `module::scenario` as a case needing `needs`.
#[macro_export]
macro_rules! case {
    ($module:ident :: $f:ident, $needs:ident) => {
        $crate::harness::Case {
            area: stringify!($module),
            name: stringify!($f),
            needs: $crate::harness::Needs::$needs,
            run: |h| Box::pin($module::$f(h)),
        }
    };
}
