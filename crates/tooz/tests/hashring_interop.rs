//! Our HashRing against Python tooz 9.1.0's, placement for placement.
//!
//! Needs a Python with tooz installed, named by `TOOZ_PYTHON` (scripts/test makes a venv and
//! sets it, together with `TOOZ_REQUIRE_INTEROP=1` so that a missing interpreter fails the run
//! instead of skipping it). Without `TOOZ_PYTHON` (a plain `cargo test`) it prints that the
//! check was skipped and returns.

use std::collections::BTreeSet;
use std::process::Command;

#[path = "interop/python.rs"]
mod python;

use python::python;

use tooz::{HashFunction, HashRing};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the vector script"))
        .collect()
}

fn hex_list(value: &serde_json::Value) -> Vec<Vec<u8>> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| unhex(v.as_str().expect("hex string")))
        .collect()
}

#[test]
fn placements_match_python_tooz() {
    let Some(python) = python() else {
        eprintln!(
            "TOOZ_PYTHON is not set: skipping the Python interop check (scripts/test runs it)"
        );
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/hashring_vectors.py"
    );
    let output = Command::new(&python)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("running {python} {script}: {e}"));
    assert!(
        output.status.success(),
        "vector script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stderr).trim());
    let mut rings = 0;
    let mut queries = 0;
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let config: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = config["name"].as_str().unwrap();
        let partitions = config["partitions"].as_u64().unwrap() as u32;
        let hash = HashFunction::from_name(config["hash"].as_str().unwrap()).unwrap();
        let mut ring: HashRing<Vec<u8>> = HashRing::with_options(partitions, hash).unwrap();
        for op in config["ops"].as_array().unwrap() {
            let node = unhex(op[1].as_str().unwrap());
            match op[0].as_str().unwrap() {
                "add" => ring.add_node(node, op[2].as_u64().unwrap() as u32),
                "remove" => {
                    ring.remove_node(&node).unwrap();
                }
                other => panic!("unknown op {other}"),
            }
        }
        assert_eq!(
            ring.len() as u64,
            config["len"].as_u64().unwrap(),
            "{name}: ring size"
        );
        for query in config["queries"].as_array().unwrap() {
            let key = unhex(query[0].as_str().unwrap());
            let replicas = query[1].as_u64().unwrap() as usize;
            let ignore = hex_list(&query[2]);
            let expected: BTreeSet<Vec<u8>> = hex_list(&query[3]).into_iter().collect();
            let got: BTreeSet<Vec<u8>> = ring
                .get_nodes(&key, replicas, &ignore)
                .into_iter()
                .cloned()
                .collect();
            assert_eq!(
                got, expected,
                "{name}: key {} replicas {replicas} ignore {ignore:?}",
                query[0]
            );
            if replicas == 1 && ignore.is_empty() {
                assert_eq!(ring.get_node(&key).cloned(), expected.into_iter().next());
            }
            queries += 1;
        }
        rings += 1;
    }
    assert!(
        rings >= 8 && queries >= 10_000,
        "only {rings} rings / {queries} queries checked"
    );
    eprintln!("{queries} placements over {rings} rings identical to Python tooz");
}
