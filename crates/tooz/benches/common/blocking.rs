//! The blocking API's row of the file and redis benches.

use std::sync::mpsc;
use std::time::Instant;

/// Rounds of about a second each side.
const ROUNDS: usize = 3;

/// Pairs per second of one round of `pair` calls, about a second long.
pub(crate) async fn async_round<F, Fut>(mut pair: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < 1.0 {
        for _ in 0..100 {
            pair().await;
        }
        count += 100;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Lock acquire+release pairs per second through the async API (`async_pairs`, one round per
/// call) and through `tooz::blocking` on lock `lock`, measured in alternating rounds so that
/// the machine's drift falls on both alike; the best round of each. The blocking side runs on
/// a thread of its own (the blocking API refuses to run inside the bench's runtime), with
/// manual heartbeats as the async rows have.
pub(crate) async fn compare<F, Fut>(
    url: &str,
    member: &str,
    lock: &str,
    mut async_pairs: F,
) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = f64>,
{
    let (url, member, lock) = (url.to_owned(), member.to_owned(), lock.to_owned());
    let (go, rounds) = mpsc::channel::<()>();
    let (report, rates) = mpsc::channel::<f64>();
    let thread = std::thread::spawn(move || {
        let coord = tooz::blocking::Coordinator::builder(&url, member.as_str())
            .manual_heartbeat()
            .connect()
            .expect("blocking connect");
        let lock = coord.lock(lock.as_str());
        for () in rounds {
            let start = Instant::now();
            let mut count = 0u64;
            while start.elapsed().as_secs_f64() < 1.0 {
                for _ in 0..100 {
                    lock.acquire().unwrap().release().unwrap();
                }
                count += 100;
            }
            let _ = report.send(count as f64 / start.elapsed().as_secs_f64());
        }
        coord.stop().unwrap();
    });
    let (mut best_async, mut best_blocking) = (0.0_f64, 0.0_f64);
    for _ in 0..ROUNDS {
        best_async = best_async.max(async_pairs().await);
        go.send(()).expect("the blocking bench thread");
        // The bench's runtime has nothing else to run meanwhile.
        best_blocking = best_blocking.max(rates.recv().expect("a blocking round"));
    }
    drop(go);
    thread.join().expect("the blocking bench thread");
    (best_async, best_blocking)
}

/// The line under a bench's table that compares the blocking API with the async one (issue
/// 18: within 15%).
pub(crate) fn print_blocking(asynchronous: f64, blocking: f64) {
    let ratio = blocking / asynchronous;
    let verdict = if ratio >= 0.85 { "PASS" } else { "MISS" };
    println!(
        "blocking API lock pairs/s: {blocking:.0} = {ratio:.2}x the async API's {asynchronous:.0} \
         in alternating rounds ({verdict}: target >= 0.85x)"
    );
}
