//! Worker processes of one workload, driven through the protocol.

use super::*;

/// One grant as a worker logged it; `worker` is the index of the process that logged it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grant {
    pub(super) worker: usize,
    pub(super) acquired: u64,
    pub(super) released: u64,
}

#[derive(serde::Deserialize)]
struct Record {
    #[allow(
        dead_code,
        reason = "logged for people reading the lines; `worker` is used"
    )]
    pid: u32,
    acquired: u64,
    released: u64,
}

/// A line from a worker's stdout, or `None` at its EOF.
type Line = (usize, Option<String>);

#[derive(Debug)]
pub(super) struct Fleet {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    lines: Receiver<Line>,
    stderr: Vec<Option<JoinHandle<String>>>,
}

impl Fleet {
    pub(super) fn spawn(commands: Vec<Command>) -> Result<Self, String> {
        let (tx, lines) = mpsc::channel();
        let mut fleet = Self {
            children: Vec::new(),
            stdins: Vec::new(),
            lines,
            stderr: Vec::new(),
        };
        for (index, mut command) in commands.into_iter().enumerate() {
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("start worker {command:?}: {e}"))?;
            fleet.stdins.push(child.stdin.take());
            let stdout = child.stdout.take().expect("stdout was piped");
            let stderr = child.stderr.take().expect("stderr was piped");
            fleet.children.push(child);
            let tx = tx.clone();
            // Threads, so a worker that hangs or floods one pipe never blocks the others.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send((index, Some(line)));
                }
                let _ = tx.send((index, None));
            });
            fleet.stderr.push(Some(std::thread::spawn(move || {
                let mut text = String::new();
                let _ = BufReader::new(stderr).read_to_string(&mut text);
                text
            })));
        }
        Ok(fleet)
    }

    /// Waits until every worker has printed `word`, collecting the grants printed before it.
    pub(super) fn until_all(&mut self, word: &str, within: Duration) -> Result<Vec<Grant>, String> {
        let deadline = Instant::now() + within;
        let mut said = vec![false; self.children.len()];
        let mut grants = Vec::new();
        while said.contains(&false) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (worker, line) = match self.lines.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no `{word}` within {within:?}")));
                }
                // Every reader has ended, each after its `None`, which already returned.
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure("every worker's stdout closed"));
                }
            };
            match line {
                Some(line) if line == word => said[worker] = true,
                Some(line) => grants.push(parse(worker, &line)?),
                None => {
                    return Err(self.failure(&format!("worker {worker} ended before `{word}`")));
                }
            }
        }
        Ok(grants)
    }

    pub(super) fn go(&mut self, start: u64, end: u64) -> Result<(), String> {
        for (worker, stdin) in self.stdins.iter_mut().enumerate() {
            let sent = stdin
                .as_mut()
                .map(|s| writeln!(s, "go {start} {end}").and_then(|()| s.flush()));
            if let Some(Err(e)) = sent {
                return Err(self.failure(&format!("send go to worker {worker}: {e}")));
            }
        }
        Ok(())
    }

    /// Closes the workers' stdin (they stop their coordinators) and waits for them to exit.
    pub(super) fn finish(mut self) -> Result<(), String> {
        self.stdins.clear();
        let deadline = Instant::now() + EXIT_WITHIN;
        for worker in 0..self.children.len() {
            loop {
                match self.children[worker].try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        return Err(self.failure(&format!("worker {worker} {status}")));
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        return Err(self.failure(&format!(
                            "worker {worker} still running {EXIT_WITHIN:?} after EOF"
                        )));
                    }
                    Err(e) => return Err(self.failure(&format!("wait: {e}"))),
                }
            }
        }
        Ok(())
    }

    /// Ends every worker and says why, with the tail of each one's stderr.
    fn failure(&mut self, why: &str) -> String {
        self.kill();
        let mut message = why.to_owned();
        for (worker, handle) in self.stderr.iter_mut().enumerate() {
            let text = handle
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(10)..] {
                message.push_str(&format!("\n  worker {worker}: {line}"));
            }
        }
        message
    }

    fn kill(&mut self) {
        self.stdins.clear();
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Fleet {
    /// No worker outlives its workload, whatever went wrong.
    fn drop(&mut self) {
        self.kill();
    }
}

fn parse(worker: usize, line: &str) -> Result<Grant, String> {
    let record: Record = serde_json::from_str(line)
        .map_err(|e| format!("worker {worker} printed {line:?}, not a grant: {e}"))?;
    Ok(Grant {
        worker,
        acquired: record.acquired,
        released: record.released,
    })
}
