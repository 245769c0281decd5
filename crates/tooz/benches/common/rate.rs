//! How the server benches measure a rate: concurrent loops for a fixed time, best of three.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long each measurement runs.
pub(crate) const SECONDS: f64 = 2.0;

/// Pairs per second over [`SECONDS`] of `tasks` concurrent loops of `pair(task)`.
pub(crate) async fn concurrent_rate<F, Fut>(tasks: usize, pair: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let pair = Arc::new(pair);
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(SECONDS);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (pair, count) = (Arc::clone(&pair), Arc::clone(&count));
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                pair(task).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The best of three [`concurrent_rate`]s.
pub(crate) async fn best_of_three<F, Fut>(tasks: usize, pair: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        best = best.max(concurrent_rate(tasks, pair.clone()).await);
    }
    best
}
