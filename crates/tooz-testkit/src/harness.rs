//! What a scenario gets: a way to connect members to one backend, and what it supports.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tooz::{Coordinator, CoordinatorBuilder, OpenBackend, Supported};

/// Every scenario gets this long before it is failed as hung.
const CASE_BUDGET: Duration = Duration::from_secs(60);

pub(crate) type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a scenario needs of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    Nothing,
    /// A target reached by URL (the scenario edits the URL).
    Url,
    Groups,
    Elections,
    SharedLocks,
    /// Locks that end when heartbeats stop.
    LeaseBoundLocks,
    /// Locks held by the kernel or a connection, not by heartbeats.
    HeldLocks,
    /// Elections, with leaderships that end when heartbeats stop.
    LeaseBoundElections,
    /// Lock waiters served in arrival order.
    QueuedLockWaits,
    /// Runs only on a backend that lacks something, to check it answers `Unsupported`.
    MissingFeature,
}

impl Needs {
    /// Whether `harness` offers what the scenario needs, from what its backend reported.
    pub(crate) fn met_by(self, harness: &Harness) -> bool {
        let s = harness.supported;
        match self {
            Self::Nothing => true,
            Self::Url => harness.url().is_some(),
            Self::Groups => s.groups,
            Self::Elections => s.elections,
            Self::SharedLocks => s.shared_locks,
            Self::QueuedLockWaits => s.queued_lock_waits,
            Self::LeaseBoundLocks => s.lease_bound_locks,
            Self::HeldLocks => !s.lease_bound_locks,
            Self::LeaseBoundElections => s.elections && s.lease_bound_locks,
            Self::MissingFeature => !(s.groups && s.elections && s.shared_locks),
        }
    }
}

/// One scenario: where it belongs, what it needs, how it runs.
pub(crate) struct Case {
    pub(crate) area: &'static str,
    pub(crate) name: &'static str,
    pub(crate) needs: Needs,
    pub(crate) run: fn(Harness) -> CaseFuture,
}

/// How members of a target connect.
#[derive(Clone)]
pub(crate) enum Source {
    Url(String),
    Custom(OpenBackend),
}

impl Source {
    fn builder(&self, member: &str) -> CoordinatorBuilder {
        match self {
            Self::Url(url) => Coordinator::builder(url, member),
            Self::Custom(open) => Coordinator::builder_with_backend(Arc::clone(open), member),
        }
    }
}

/// A target that answered the probe: its name, how to connect, what it supports.
#[derive(Clone)]
pub(crate) struct Harness {
    pub(crate) name: String,
    source: Source,
    pub(crate) supported: Supported,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("name", &self.name)
            .field("supported", &self.supported)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Connects one member to learn what the backend supports; the error says why not.
    pub(crate) fn probe(name: String, source: Source) -> Result<Self, String> {
        let supported = runtime()
            .block_on(async {
                let coord = source.builder("conformance-probe").connect().await?;
                let supported = coord.supported();
                coord.stop().await?;
                Ok::<_, tooz::Error>(supported)
            })
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(Self {
            name,
            source,
            supported,
        })
    }

    /// Runs one scenario on a runtime of its own, bounded by the case budget.
    pub(crate) fn run(self, case: fn(Self) -> CaseFuture) -> Result<(), libtest_mimic::Failed> {
        runtime().block_on(async move {
            tokio::time::timeout(CASE_BUDGET, case(self))
                .await
                .map_err(|_| format!("scenario did not finish within {CASE_BUDGET:?}").into())
        })
    }

    /// A builder for a new member of this backend.
    pub(crate) fn builder(&self, member: &str) -> CoordinatorBuilder {
        self.source.builder(member)
    }

    /// A new member, heart-beating in the background.
    pub(crate) async fn member(&self, member: &str) -> Coordinator {
        self.builder(member).connect().await.expect("connect")
    }

    /// The target's URL, if it is reached by one.
    pub(crate) fn url(&self) -> Option<&str> {
        match &self.source {
            Source::Url(url) => Some(url),
            Source::Custom(_) => None,
        }
    }

    /// The URL with one more query option (scenarios that need it need [`Needs::Url`]).
    pub(crate) fn url_with(&self, option: &str) -> String {
        let url = self
            .url()
            .expect("a scenario that edits the URL needs Needs::Url");
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{option}")
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
pub(crate) fn unique(prefix: &str) -> String {
    let token = tooz::backend::OwnerToken::generate().to_hex();
    format!("{prefix}-{}", &token[..12])
}

/// Registers `module::scenario` as a case needing `needs`.
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
pub(crate) use case;
