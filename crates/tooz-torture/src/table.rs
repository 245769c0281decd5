//! The report: one row per backend, the fuzzing totals, every violation, one verdict line.

use std::path::Path;

use crate::checks::{Row, Scale};

const COLUMNS: &[&str] = &[
    "exclusion",
    "storm",
    "crash",
    "pause",
    "faults",
    "clock",
    "members",
    "soak",
    "time",
];

/// The library's fuzz tests: capabilities, urls, file, redis, memcached, etcd, zookeeper, mysql.
const SUBJECTS: usize = 8;

/// The fuzzing's totals, summed from the `fuzz SUBJECT: N cases, C collisions, E escapes,
/// L leaks, P panics` lines the library's fuzz tests print.
#[derive(Debug, Default)]
pub(crate) struct Fuzz {
    subjects: usize,
    cases: u64,
    collisions: u64,
    escapes: u64,
    leaks: u64,
    panics: u64,
}

impl Fuzz {
    pub(crate) fn read(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut fuzz = Self::default();
        // libtest prints a test's output after its name: `test fuzz::x ... fuzz x: ...`.
        let summaries = text
            .lines()
            .filter_map(|l| l.find("fuzz ").map(|at| &l[at..]))
            .filter(|l| l.contains(" cases, "));
        for line in summaries {
            let Some((_, figures)) = line.split_once(": ") else {
                return Err(format!("fuzz summary line {line:?}"));
            };
            fuzz.subjects += 1;
            for figure in figures.split(", ") {
                let (count, what) = figure
                    .split_once(' ')
                    .ok_or_else(|| format!("fuzz summary figure {figure:?}"))?;
                let count: u64 = count
                    .parse()
                    .map_err(|_| format!("fuzz summary figure {figure:?}"))?;
                match what {
                    "cases" => fuzz.cases += count,
                    "collisions" => fuzz.collisions += count,
                    "escapes" => fuzz.escapes += count,
                    "leaks" => fuzz.leaks += count,
                    "panics" => fuzz.panics += count,
                    _ => return Err(format!("fuzz summary figure {figure:?}")),
                }
            }
        }
        // scripts/torture builds every feature: every subject must have run.
        if fuzz.subjects < SUBJECTS {
            return Err(format!(
                "{}: {} fuzz summary lines, expected {SUBJECTS} (capabilities, urls, and each backend's names)",
                file.display(),
                fuzz.subjects
            ));
        }
        Ok(fuzz)
    }

    fn is_clean(&self) -> bool {
        self.collisions + self.escapes + self.leaks + self.panics == 0
    }
}

/// Prints the report; whether everything passed.
pub(crate) fn print(scale: &Scale, rows: &[(String, Row)], fuzz: Option<&Fuzz>) -> bool {
    let run = if scale.long { "--long" } else { "short" };
    println!("\ntooz torture suite ({run} run)\n");
    let mut table = vec![
        std::iter::once("backend".to_owned())
            .chain(COLUMNS.iter().map(|c| (*c).to_owned()))
            .chain(std::iter::once("verdict".to_owned()))
            .collect::<Vec<_>>(),
    ];
    for (name, row) in rows {
        let mut line = vec![name.clone()];
        for column in COLUMNS {
            let cells: Vec<&str> = row
                .cells
                .iter()
                .filter(|(c, _)| c == column)
                .map(|(_, v)| v.as_str())
                .collect();
            line.push(if cells.is_empty() {
                "-".to_owned()
            } else {
                cells.join("; ")
            });
        }
        line.push(if row.violations.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL ({})", row.violations.len())
        });
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|line| line[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", cells.join(" | ").trim_end());
    }
    let mut violations: Vec<String> = rows
        .iter()
        .flat_map(|(name, row)| row.violations.iter().map(move |v| format!("{name}: {v}")))
        .collect();
    match fuzz {
        Some(f) => {
            println!(
                "\nfuzz: {} subjects, {} cases: {} collisions, {} escapes, {} leaks, {} panics",
                f.subjects, f.cases, f.collisions, f.escapes, f.leaks, f.panics
            );
            if !f.is_clean() {
                violations.push("fuzz: collisions, escapes, leaks or panics (see above)".into());
            }
        }
        None => println!("\nfuzz: not run (scripts/torture runs it)"),
    }
    if !violations.is_empty() {
        println!("\nviolations:");
        for v in &violations {
            println!("  {v}");
        }
    }
    let verdict = violations.is_empty();
    println!(
        "\ntorture: {} ({} backends, {} violations)",
        if verdict { "PASS" } else { "FAIL" },
        rows.len(),
        violations.len()
    );
    verdict
}
