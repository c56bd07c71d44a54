//! Helpers shared by the CLI's integration tests; a test file includes them with `mod support;`
//! (each test file is its own crate, so not every file uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `culturesteer` binary of this build.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_culturesteer"))
}

/// Runs `culturesteer ARGS` with no stdin and returns its output, whatever its exit status.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

/// Runs `culturesteer eval ARGS --out OUT` with no stdin, asserts that it succeeded (showing
/// its stderr otherwise) and returns its stdout.
pub fn eval_ok(args: &[&str], out: &Path) -> String {
    let o = bin()
        .arg("eval")
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The records of a run directory's `results.jsonl`.
pub fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `eval_ok`, then the run's records.
pub fn eval(args: &[&str], out: &Path) -> Vec<serde_json::Value> {
    eval_ok(args, out);
    records(out)
}

/// A record's option probabilities.
pub fn probs(r: &serde_json::Value) -> Vec<f64> {
    r["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
