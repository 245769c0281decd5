//! The URL tables of the crate docs and the README say what the registration table says:
//! every available backend has a row naming all its schemes (and, in the crate docs, its cargo
//! feature), and no row names a scheme with a status other than its registration's.

use tooz::{BackendStatus, REGISTRATIONS, Registration};

/// The rows of the markdown table under `## Backends` in `text` (lines starting with `prefix`).
fn backend_rows(text: &str, prefix: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.strip_prefix(prefix).unwrap_or(line).trim();
        if line.starts_with("## ") {
            inside = line == "## Backends";
            continue;
        }
        if inside && line.starts_with("| `") {
            rows.push(line.to_owned());
        }
    }
    rows
}

/// The schemes a row names (`redis://`, `etcd3+http://` ...).
fn schemes_in(row: &str) -> Vec<String> {
    row.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_once("://").map(|(scheme, _)| scheme.to_owned()))
        .collect()
}

fn registration(scheme: &str) -> Option<&'static Registration> {
    REGISTRATIONS.iter().find(|r| r.schemes.contains(&scheme))
}

fn check(document: &str, rows: &[String], with_feature: bool) {
    assert!(!rows.is_empty(), "{document}: no backend table found");
    for row in rows {
        for scheme in schemes_in(row) {
            let registered = registration(&scheme)
                .unwrap_or_else(|| panic!("{document}: `{scheme}://` is in no registration"));
            let status = match registered.status {
                BackendStatus::Available => "available",
                BackendStatus::Planned => "planned",
            };
            assert!(
                row.trim_end_matches('|').trim().ends_with(status),
                "{document}: the row of `{scheme}://` must say {status}: {row}"
            );
        }
    }
    for registered in REGISTRATIONS
        .iter()
        .filter(|r| r.status == BackendStatus::Available)
    {
        for scheme in registered.schemes {
            let row = rows
                .iter()
                .find(|row| schemes_in(row).iter().any(|s| s == scheme))
                .unwrap_or_else(|| panic!("{document}: no row for `{scheme}://`"));
            if with_feature && let Some(feature) = registered.feature {
                assert!(
                    row.contains(&format!("`{feature}`")),
                    "{document}: the row of `{scheme}://` must name feature `{feature}`: {row}"
                );
            }
        }
    }
}

#[test]
fn the_crate_docs_and_the_readme_match_the_registrations() {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = std::fs::read_to_string(format!("{root}/src/lib.rs")).unwrap();
    check("crate docs", &backend_rows(&lib, "//!"), true);
    let readme = std::fs::read_to_string(format!("{root}/../../README.md")).unwrap();
    check("README.md", &backend_rows(&readme, ""), false);
}
