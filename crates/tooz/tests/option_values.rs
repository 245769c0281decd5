//! No duration or size a caller or a URL can give panics: huge, tiny, negative, NaN, on every
//! scheme. Values beyond what a deadline can represent are refused with an error naming the
//! option, or saturate (a wait "forever").

#[cfg(feature = "redis")]
#[path = "support/redis_url.rs"]
mod redis_url;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tooz::{Coordinator, Error};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Every URL a test can reach, with `{}` where an option value goes.
fn schemes() -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tooz-option-values-{}", std::process::id()));
    let local = [
        "memory://option-values?timeout={}".to_owned(),
        format!("file://{}?timeout={{}}", dir.display()),
    ];
    local.into_iter().chain(redis_urls()).collect()
}

#[cfg(feature = "redis")]
fn redis_urls() -> Vec<String> {
    let Some(redis) = redis_url::redis_url() else {
        return Vec::new();
    };
    let base = redis.split('?').next().unwrap_or(&redis);
    ["timeout", "lock_timeout", "membership_timeout"]
        .iter()
        .map(|option| format!("{base}?namespace=option-values&{option}={{}}"))
        .collect()
}

#[cfg(not(feature = "redis"))]
fn redis_urls() -> Vec<String> {
    Vec::new()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..40).prop_map(|e| format!("1e{e}")),
        (0u32..40).prop_map(|e| format!("3e{e}ms")),
        Just("NaN".to_owned()),
        Just("-inf".to_owned()),
        Just("0.000000001".to_owned()),
    ]
}

/// Connects with `value` in the URL and uses the coordinator a little: no panic, and any
/// refusal names the option.
fn exercise(url: &str, value: &str) {
    let url = url.replace("{}", value);
    runtime().block_on(async {
        match Coordinator::connect(&url, "prober").await {
            Ok(coord) => {
                // A name of its own per case: a lock left behind (its TTL may be a century)
                // must not make the next case wait.
                let name = format!("probe-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
                let lock = coord.lock(name.as_str());
                if let Ok(guard) = lock.acquire_timeout(Duration::MAX).await {
                    guard.release().await.ok();
                }
                coord.stop().await.unwrap();
            }
            // The option given, or one derived from it (Redis's membership_timeout defaults
            // to its timeout).
            Err(Error::InvalidOption { option, .. }) => {
                assert!(option.contains("timeout"), "{url}: {option}");
            }
            Err(e) => panic!("{url}: not an option error: {e}"),
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_option_value_panics_on_any_scheme(value in value()) {
        for url in schemes() {
            exercise(&url, &value);
        }
    }
}

#[test]
fn the_values_from_the_reports_do_not_panic() {
    exercise("memory://option-values-report?timeout={}", "1e19");
    let dir = std::env::temp_dir().join(format!("tooz-option-report-{}", std::process::id()));
    exercise(&format!("file://{}?timeout={{}}", dir.display()), "3e18");
}

#[test]
fn huge_waits_and_intervals_saturate() {
    runtime().block_on(async {
        let coord = Coordinator::builder("memory://huge-waits", "a")
            .heartbeat_interval(Duration::MAX)
            .operation_timeout(Duration::MAX)
            .watch_interval(Duration::MAX)
            .connect()
            .await
            .unwrap();
        let guard = coord
            .lock("l")
            .acquire_timeout(Duration::MAX)
            .await
            .unwrap();
        let lead = coord.campaign_timeout("g", Duration::MAX).await;
        assert!(matches!(lead, Ok(_) | Err(Error::Unsupported { .. })));
        drop(lead);
        guard.release().await.unwrap();
        let zero = Coordinator::builder("memory://huge-waits", "b")
            .heartbeat_interval(Duration::ZERO)
            .connect()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(zero.is_live());
        zero.stop().await.unwrap();
        coord.stop().await.unwrap();
    });
}
