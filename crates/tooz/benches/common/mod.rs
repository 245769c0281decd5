//! What the benchmarks share: running the Python tooz side of a workload.

use std::process::Command;

/// Runs `benches/python/tooz_bench.py ARGS...` with the interpreter in `TOOZ_PYTHON` and
/// returns its figures by workload name; `None` (said on stderr) if it cannot.
pub(crate) fn python_figures(args: &[&str]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let python = std::env::var("TOOZ_PYTHON").ok()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/tooz_bench.py");
    let out = Command::new(python).arg(script).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "python bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let mut figures = serde_json::Map::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        figures.insert(value["workload"].as_str()?.to_owned(), value);
    }
    Some(figures)
}
