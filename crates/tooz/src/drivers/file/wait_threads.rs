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

    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == name)
            .count()
    }

    #[test]
    fn a_finished_wait_thread_takes_the_next_job_instead_of_a_new_thread() {
        let done = Arc::new(AtomicUsize::new(0));
        let (tell, told) = mpsc::channel();
        for _ in 0..50 {
            let (done, tell) = (Arc::clone(&done), tell.clone());
            run(move || {
                done.fetch_add(1, Ordering::SeqCst);
                tell.send(()).unwrap();
            })
            .unwrap();
            told.recv_timeout(Duration::from_secs(5)).unwrap();
            // Let the thread offer itself again before the next job (as a release, a hold
            // and a new attempt take far longer than this in a real hand-off).
            for _ in 0..1000 {
                if !idle().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(done.load(Ordering::SeqCst), 50);
        // Other tests of this process may run waits at the same time; one thread per job
        // would leave far more than a few.
        let threads = threads_named("tooz-lock-wait");
        assert!(threads <= 8, "{threads} wait threads for 50 jobs in turn");
    }

    #[test]
    fn jobs_at_once_each_get_a_thread() {
        let count = 6;
        let barrier = Arc::new(std::sync::Barrier::new(count + 1));
        for _ in 0..count {
            let barrier = Arc::clone(&barrier);
            run(move || {
                barrier.wait();
            })
            .unwrap();
        }
        // Every job blocks until all run: a job queued behind another would hang here.
        barrier.wait();
    }
}
