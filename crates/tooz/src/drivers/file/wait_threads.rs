//! Threads for kernel lock waits, kept for reuse.
//!
//! A kernel wait (`F_OFD_SETLKW`) blocks its thread for as long as the holder keeps the lock,
//! so it cannot run on tokio's blocking pool (a runtime shutting down waits for that pool).
//! Starting a thread per wait cost a `clone`, a stack mapping and its teardown on every
//! contended grant — under an 8-process storm about one thread per grant. A thread that
//! finished a wait instead stays for [`KEEP_IDLE`] to take the next one; past that it ends,
//! so an idle process keeps none. The pool is the process's, shared by every coordinator;
//! each coordinator still caps its own waits (`MAX_KERNEL_WAITS` in the driver).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a thread with no wait to run stays for the next one.
const KEEP_IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads, each by the channel it takes its next job from, and a number that names it.
static IDLE: Mutex<Vec<(u64, Sender<Job>)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn idle() -> MutexGuard<'static, Vec<(u64, Sender<Job>)>> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `job` on an idle wait thread, or on a new one if none is idle.
pub(crate) fn run(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut job: Job = Box::new(job);
    // Most recently idle first: its stack is the warmest.
    while let Some((_, thread)) = idle().pop() {
        match thread.send(job) {
            Ok(()) => return Ok(()),
            // Cannot happen while the thread lives (it holds the receiver until it is off
            // the idle list), but if it did, the job comes back and goes elsewhere.
            Err(mpsc::SendError(back)) => job = back,
        }
    }
    let (send, receive) = mpsc::channel();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("tooz-lock-wait".into())
        .spawn(move || serve(id, send, receive, job))?;
    Ok(())
}

/// A wait thread's life: run a job, offer itself again, and end once idle for [`KEEP_IDLE`].
fn serve(id: u64, me: Sender<Job>, jobs: Receiver<Job>, first: Job) {
    first();
    loop {
        idle().push((id, me.clone()));
        match jobs.recv_timeout(KEEP_IDLE) {
            Ok(job) => job(),
            Err(RecvTimeoutError::Timeout) => {
                let mut list = idle();
                if let Some(at) = list.iter().position(|(i, _)| *i == id) {
                    list.swap_remove(at);
                    return;
                }
                // Taken off the list by `run` just now: its job is on the way.
                drop(list);
                match jobs.recv() {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
            // Unreachable: this thread holds a sender of its own channel.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_finished_wait_thread_takes_the_next_job_instead_of_a_new_thread() {
        let (tell, told) = mpsc::channel();
        let mut threads = std::collections::HashSet::new();
        for _ in 0..50 {
            let tell = tell.clone();
            run(move || tell.send(std::thread::current().id()).unwrap()).unwrap();
            threads.insert(told.recv_timeout(Duration::from_secs(10)).unwrap());
            // Let the thread offer itself again before the next job (as a release, a hold
            // and a new attempt take far longer than this in a real hand-off).
            for _ in 0..1000 {
                if !idle().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Other tests of this process may run jobs at the same time (a few threads), but a
        // thread per job would be 50.
        assert!(
            threads.len() <= 8,
            "{} threads ran 50 jobs in turn",
            threads.len()
        );
    }

    #[test]
    fn jobs_at_once_each_get_a_thread() {
        let count = 6;
        let started = Arc::new(AtomicUsize::new(0));
        let (tell, told) = mpsc::channel();
        for _ in 0..count {
            let (started, tell) = (Arc::clone(&started), tell.clone());
            run(move || {
                started.fetch_add(1, Ordering::SeqCst);
                // Each job waits for all to start: a job queued behind another never would.
                let give_up = std::time::Instant::now() + Duration::from_secs(10);
                while started.load(Ordering::SeqCst) < count && std::time::Instant::now() < give_up
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tell.send(started.load(Ordering::SeqCst)).unwrap();
            })
            .unwrap();
        }
        for _ in 0..count {
            let seen = told.recv_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(seen, count, "a job ran only after another had finished");
        }
    }
}
