//! The blocking API's row of the file and redis benches.

/// Lock acquire+release pairs per second through `tooz::blocking` (best of three rounds of
/// about a second), with manual heartbeats as the async rows have. On a thread of its own: the
/// blocking API refuses to run inside the bench's runtime.
pub(crate) fn blocking_pairs(url: &str, member: &str, lock: &str) -> f64 {
    let (url, member, lock) = (url.to_owned(), member.to_owned(), lock.to_owned());
    std::thread::spawn(move || {
        let coord = tooz::blocking::Coordinator::builder(&url, member.as_str())
            .manual_heartbeat()
            .connect()
            .expect("blocking connect");
        let lock = coord.lock(lock.as_str());
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let mut count = 0u64;
            while start.elapsed().as_secs_f64() < 1.0 {
                for _ in 0..100 {
                    lock.acquire().unwrap().release().unwrap();
                }
                count += 100;
            }
            best = best.max(count as f64 / start.elapsed().as_secs_f64());
        }
        coord.stop().unwrap();
        best
    })
    .join()
    .expect("the blocking bench thread")
}

/// The line under a bench's table that compares the blocking API with the async one (issue
/// 18: within 15%).
pub(crate) fn print_blocking(asynchronous: f64, blocking: f64) {
    let ratio = blocking / asynchronous;
    let verdict = if ratio >= 0.85 { "PASS" } else { "MISS" };
    println!(
        "blocking API lock pairs/s: {blocking:.0} = {ratio:.2}x the async API's {asynchronous:.0} \
         ({verdict}: target >= 0.85x)"
    );
}
