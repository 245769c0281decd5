//! Clock jumps: a holder runs under libfaketime (Debian's `faketime`) and its wall clock jumps an
//! hour ahead, then an hour behind, while it holds the lock through several leases. No backend
//! here may trust the client's wall clock: the holder must not lose its lock, and a competitor
//! polling all along must never get it. The monotonic clocks stay true (a real clock step moves
//! only the wall clock); the holder's own wall-clock readings prove the jumps took effect.

use std::path::Path;
use std::time::Duration;

use crate::checks::{Row, observer, unique};
use crate::fleet::{Launch, Worker, field};
use crate::store::FencedStore;
use crate::target::Target;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

pub(crate) async fn run(target: &Target, store: &FencedStore, scratch: &Path, row: &mut Row) {
    if !target.is_shared() {
        row.cell("clock", "n/a: one process");
        return;
    }
    match once(target, store, scratch, row).await {
        Ok(cell) => row.cell("clock", cell),
        Err(e) => row.broken("clock", e),
    }
}

async fn once(
    target: &Target,
    store: &FencedStore,
    scratch: &Path,
    row: &mut Row,
) -> Result<String, String> {
    if !Path::new(LIBFAKETIME).exists() {
        return Err(format!("{LIBFAKETIME} missing (apt install faketime)"));
    }
    let offset = scratch.join(unique("faketime"));
    let set =
        |value: &str| std::fs::write(&offset, value).map_err(|e| format!("faketime file: {e}"));
    set("+0\n")?;
    let launch = Launch {
        env: vec![
            ("LD_PRELOAD".into(), LIBFAKETIME.into()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                offset.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ],
    };
    let lock = unique("clock");
    let args = [target.url.clone(), lock.clone(), store.port().to_string()];
    let mut holder = Worker::spawn_with("hold", &args, &launch)?;
    let held = holder.expect("held", Duration::from_secs(30)).await?;
    let ttl = Duration::from_millis(field(&held, "ttl_ms")?);
    let wall_before = held["wall"].as_i64().ok_or("no wall clock in `held`")?;
    let coord = observer(target, "clock").await?;
    let competitor = coord.lock(lock.as_str());
    let (mut stolen, mut asked, mut unanswered) = (0, 0, 0);
    let mut unjumped = Vec::new();
    // Each phase lasts two leases, so renewals happen on both sides of every jump.
    for (jump, hours) in [("+1h", 1), ("-1h", -1), ("+0", 0)] {
        set(&format!("{jump}\n"))?;
        holder.say("wall").await?;
        let wall = holder.expect("wall", Duration::from_secs(5)).await?;
        let seen = wall["wall"].as_i64().ok_or("no wall clock in `wall`")? - wall_before;
        if (seen - hours * 3600).abs() > 60 {
            unjumped.push(format!("{jump} seen as {seen:+}s"));
        }
        let until = tokio::time::Instant::now() + ttl * 2;
        while tokio::time::Instant::now() < until {
            match competitor.try_acquire().await {
                Ok(Some(guard)) => {
                    stolen += 1;
                    let _ = guard.release().await;
                }
                Ok(None) => asked += 1,
                Err(_) => unanswered += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let spurious =
        u8::from(holder.seen("not_held").is_some() || holder.seen("lost_signal").is_some());
    holder.say("release").await?;
    let released = holder.expect("released", Duration::from_secs(10)).await?;
    row.require(released["ok"] == true, || {
        "clock: the holder's release failed".into()
    });
    holder.finish().await?;
    let _ = coord.stop().await;
    let _ = std::fs::remove_file(&offset);
    row.require(unjumped.is_empty(), || {
        format!(
            "clock: the jumps did not reach the holder: {}",
            unjumped.join(", ")
        )
    });
    // A rival that could not ask would never steal: it must have been refused, not silent.
    row.require(unanswered * 10 <= asked, || {
        format!("clock: the rival's attempts failed {unanswered} times (refused {asked})")
    });
    row.require(stolen == 0, || {
        format!("clock: the competitor got the lock {stolen} times while the jumped holder held it")
    });
    row.require(spurious == 0, || {
        "clock: the holder lost its lock across the wall-clock jumps".into()
    });
    Ok(format!(
        "±1h: spurious-loss {spurious} stolen {stolen} (rival refused {asked})"
    ))
}
