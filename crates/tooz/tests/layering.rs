//! The crate's modules import only downward, layer by layer, so that a backend author reads
//! the contract and the plain values beneath it and nothing above:
//!
//! 0. plain values: ids, error, capabilities, characteristics, tokens, options, clock, the
//!    hash ring, run_to_end
//! 1. the contract: `backend.rs` (re-exporting what a driver needs)
//! 2. the drivers: `drivers/*`
//! 3. URL dispatch: `scheme.rs`
//! 4. the coordinator's machinery: session, heartbeat, wait, telemetry
//! 5. the user-facing handles: coordinator, lock, election, membership, watch, partitioner
//! 6. the blocking API over them (`blocking/`, as reqwest's)
//!
//! A module may import its own layer or any below; this test reads every `crate::` path in
//! `src/` and fails on one that reaches up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: &[&[&str]] = &[
    &[
        "ids",
        "error",
        "capabilities",
        "characteristics",
        "tokens",
        "options",
        "clock",
        "hashring",
        "run_to_end",
    ],
    &["backend"],
    &["drivers"],
    &["scheme"],
    &["session", "heartbeat", "wait", "telemetry"],
    &[
        "coordinator",
        "lock",
        "election",
        "membership",
        "watch",
        "partitioner",
    ],
    &["blocking"],
    // Tests only (`#[cfg(test)]`): the fuzz tests reach into every layer below.
    &["fuzz"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`drivers/file/locks.rs` → `drivers`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// Names `lib.rs` re-exports (`pub use lock::{Lock, LockGuard};`), by the module they come
/// from, so that `crate::Lock` counts as an import of `lock`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let flat = lib.replace('\n', " ");
    for statement in flat.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            if !item.is_empty() {
                names.insert(item.to_owned(), module.trim().to_owned());
            }
        }
    }
    names
}

/// The first segment of every path after `crate::`, braces included
/// (`use crate::{a, b::c}` gives `a` and `b`).
fn imported(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let first = item.trim().split("::").next().unwrap_or("");
                if !first.is_empty() {
                    found.push(first.to_owned());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn modules_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexported = reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            unplaced.push(module);
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        // Unit tests may reach anywhere, and doc links are not imports.
        let code: String = source
            .split("#[cfg(test)]")
            .next()
            .unwrap_or(&source)
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in imported(&code) {
            let target = reexported.get(&name).cloned().unwrap_or(name.clone());
            match layer_of(&target) {
                Some(layer) if layer > own => upward.push(format!(
                    "{} (layer {own}) imports crate::{name} ({target}, layer {layer})",
                    file.strip_prefix(&src).unwrap().display()
                )),
                Some(_) => {}
                None => unplaced.push(format!("{target} (imported as crate::{name})")),
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules not placed in a layer: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that reach up:\n{}",
        upward.join("\n")
    );
}

/// Every driver folder has the same files where they apply, so that a newcomer finds each
/// concern in the same place: `mod.rs` (start, heartbeat, stop), `options.rs` (URL options,
/// their table on the options type), `locks.rs`, and `groups.rs` / `election.rs` where the
/// backend offers them; `error.rs` where a client library's errors must be sorted into
/// `Connection` and `Backend`.
#[test]
fn every_driver_follows_the_template() {
    let drivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/drivers");
    let mut checked = 0;
    for entry in std::fs::read_dir(&drivers).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        for file in [
            "mod.rs",
            "options.rs",
            "locks.rs",
            "groups.rs",
            "election.rs",
        ] {
            assert!(path.join(file).exists(), "{} has no {file}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 3, "memory, file and redis are folders");
    for loose in std::fs::read_dir(&drivers).unwrap() {
        let path = loose.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            // Besides the folders: what several drivers share (in-process pieces, TLS).
            path.is_dir() || ["mod.rs", "shared.rs", "tls.rs"].contains(&name.as_str()),
            "a driver outside the template: {name}"
        );
    }
}
