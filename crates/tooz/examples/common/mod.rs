//! What every example shares: `--url URL`, or by default `file://` on a fresh temporary
//! directory that is removed afterwards.

use std::path::PathBuf;

/// A coordination URL for an example run.
pub(crate) struct ExampleUrl {
    /// The URL.
    pub(crate) url: String,
    scratch: Option<PathBuf>,
}

impl ExampleUrl {
    /// From `--url URL`, or a temporary `file://` directory with `timeout` seconds.
    pub(crate) fn from_args(example: &str, timeout: u32) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [] => {
                let dir =
                    std::env::temp_dir().join(format!("tooz-{example}-{}", std::process::id()));
                Self {
                    url: format!("file://{}?timeout={timeout}", dir.display()),
                    scratch: Some(dir),
                }
            }
            [flag, url] if flag == "--url" => Self {
                url: url.clone(),
                scratch: None,
            },
            _ => {
                eprintln!(
                    "usage: {example} [--url URL]   (default: file:// on a temporary directory)"
                );
                std::process::exit(2);
            }
        }
    }
}

impl Drop for ExampleUrl {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs an example's body, printing its error and exiting non-zero on failure.
pub(crate) fn finish(result: tooz::Result<()>) {
    if let Err(e) = result {
        eprintln!("example failed: {e}");
        std::process::exit(1);
    }
}
