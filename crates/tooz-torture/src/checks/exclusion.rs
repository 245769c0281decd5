//! Mutual exclusion: workers loop on one lock around a non-atomic read-modify-write of a shared
//! counter file. Any lost update, any two grants whose [start, end] overlap, any token not above
//! the one of the grant before it is a violation.

use std::path::Path;
use std::time::Duration;

use crate::checks::{Row, Scale, observer, unique};
use crate::fleet::{Worker, field};
use crate::target::Target;
use crate::worker::{Budget, Grant, grant_loop};

pub(crate) async fn run(target: &Target, scale: &Scale, scratch: &Path, row: &mut Row) {
    let budget = Budget::Grants(scale.exclusion_grants);
    match round(target, scale.exclusion_workers, budget, scratch).await {
        Ok(figures) => figures.record("exclusion", row),
        Err(e) => row.broken("exclusion", e),
    }
    if let Some(storm) = scale.storm {
        match round(target, scale.exclusion_workers, Budget::For(storm), scratch).await {
            Ok(figures) => figures.record("storm", row),
            Err(e) => row.broken("storm", e),
        }
    }
}

struct Figures {
    workers: usize,
    grants: Vec<Grant>,
    counter: u64,
    seconds: f64,
}

impl Figures {
    fn record(&self, column: &'static str, row: &mut Row) {
        let total = self.grants.len() as u64;
        let lost = total.saturating_sub(self.counter);
        let overlaps = self
            .grants
            .windows(2)
            .filter(|pair| pair[1].start < pair[0].end)
            .count();
        let disordered = self
            .grants
            .windows(2)
            .filter(|pair| pair[1].token <= pair[0].token)
            .count();
        row.cell(
            column,
            format!(
                "{}x{total} {:.0}/s lost {lost} overlap {overlaps} token-order {disordered}",
                self.workers,
                total as f64 / self.seconds
            ),
        );
        row.require(lost == 0 && self.counter == total, || {
            format!("{column}: counter {} after {total} grants", self.counter)
        });
        row.require(overlaps == 0, || {
            format!("{column}: {overlaps} grants began before the previous one ended")
        });
        row.require(disordered == 0, || {
            format!("{column}: {disordered} fencing tokens not above the previous grant's")
        });
    }
}

async fn round(
    target: &Target,
    workers: usize,
    budget: Budget,
    scratch: &Path,
) -> Result<Figures, String> {
    let lock = unique("exclusion");
    let counter = scratch.join(format!("{lock}.counter"));
    std::fs::write(&counter, "0").map_err(|e| format!("counter file: {e}"))?;
    let started = std::time::Instant::now();
    let mut grants = if target.is_shared() {
        in_processes(target, workers, budget, &lock, &counter).await?
    } else {
        in_tasks(target, workers, budget, &lock, &counter).await?
    };
    let seconds = started.elapsed().as_secs_f64();
    grants.sort_by_key(|g| g.start);
    let text = std::fs::read_to_string(&counter).map_err(|e| format!("counter file: {e}"))?;
    let counter = text
        .trim()
        .parse()
        .map_err(|e| format!("counter file holds {text:?}: {e}"))?;
    Ok(Figures {
        workers,
        grants,
        counter,
        seconds,
    })
}

async fn in_processes(
    target: &Target,
    workers: usize,
    budget: Budget,
    lock: &str,
    counter: &Path,
) -> Result<Vec<Grant>, String> {
    let args = [
        target.url.clone(),
        lock.to_owned(),
        counter.display().to_string(),
        budget.arg(),
    ];
    let mut fleet = Vec::with_capacity(workers);
    for _ in 0..workers {
        fleet.push(Worker::spawn("exclusion", &args)?);
    }
    for worker in &mut fleet {
        worker.expect("ready", Duration::from_secs(60)).await?;
    }
    for worker in &mut fleet {
        worker.say("go").await?;
    }
    let within = match budget {
        Budget::Grants(n) => Duration::from_secs(60 + n as u64),
        Budget::For(d) => d + Duration::from_secs(60),
    };
    let mut grants = Vec::new();
    for worker in &mut fleet {
        loop {
            let line = worker.next(within).await?;
            match line["ev"].as_str() {
                Some("grant") => grants.push(Grant {
                    start: field(&line, "start")?,
                    end: field(&line, "end")?,
                    token: field(&line, "token")?,
                }),
                Some("done") => break,
                _ => return Err(format!("exclusion worker: {line}")),
            }
        }
    }
    for worker in fleet {
        worker.finish().await?;
    }
    Ok(grants)
}

/// `memory://` is one process's: its contenders are tasks, each with a coordinator of its own.
async fn in_tasks(
    target: &Target,
    workers: usize,
    budget: Budget,
    lock: &str,
    counter: &Path,
) -> Result<Vec<Grant>, String> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..workers {
        let coord = observer(target, &format!("task{i}")).await?;
        let lock = lock.to_owned();
        let counter = counter.to_owned();
        tasks.spawn(async move {
            let grants = grant_loop(&coord.lock(lock.as_str()), &counter, budget).await;
            let _ = coord.stop().await;
            grants
        });
    }
    let mut grants = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        grants.extend(joined.map_err(|e| format!("task: {e}"))??);
    }
    Ok(grants)
}
