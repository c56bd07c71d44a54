//! The generate-and-parse readers end to end on the real default model.

use std::process::{Command, Stdio};

#[test]
fn real_model_vsm13_generate_parse_records_every_answer_and_its_parse() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "eval",
            "vsm13",
            "--vsm13-answer-mode",
            "generate_parse",
            "--countries",
            "USA",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run culturesteer");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    for r in &lines {
        let d = &r["diagnostics"];
        assert!(d["generated"].is_string(), "{r}");
        let parsed = d["parsed"].as_str().unwrap();
        let probs = r["probs"].as_array().unwrap();
        // A parsed digit k is one-hot on option k; anything else leaves the answer out.
        match parsed.parse::<usize>() {
            Ok(k) => assert_eq!(probs[k - 1], 1.0, "{r}"),
            Err(_) => assert!(probs.is_empty(), "{r}"),
        }
    }
    // The summary states the parse failures instead of inventing a score.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let failures = lines
        .iter()
        .filter(|r| r["probs"].as_array().unwrap().is_empty())
        .count();
    if failures > 0 {
        assert!(
            err.contains("had no digit 1-5") || summary.contains("parse_failure_rate"),
            "{err}\n{summary}"
        );
    }
}
