//! Cultural Palette on the real default model: `eval goqa` runs the pipeline and its ablations
//! next to the baselines, and results.jsonl shows every intermediate text.

use std::process::{Command, Stdio};

fn eval(args: &[&str], out: &std::path::Path) -> (String, Vec<serde_json::Value>) {
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args(["eval", "goqa", "--countries", "NGA", "--limit", "1", "--palette-draft-tokens", "12", "--palette-summary-tokens", "12"])
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let records = std::fs::read_to_string(out.join("results.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), records)
}

fn record<'a>(records: &'a [serde_json::Value], method: &str) -> &'a serde_json::Value {
    records.iter().find(|r| r["method"] == method).unwrap_or_else(|| panic!("no {method} record"))
}

#[test]
fn palette_and_its_ablations_run_next_to_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, records) = eval(&["--method", "palette,palette-cd,palette-sr,vanilla,country-prompt"], &dir.path().join("run"));
    for m in ["palette", "palette-cd", "palette-sr", "vanilla", "country-prompt"] {
        assert!(summary.contains(m), "summary lacks {m}: {summary}");
        let p: f64 = record(&records, m)["probs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-9, "{m}");
    }
    let full = &record(&records, "palette")["diagnostics"];
    let drafts = full["drafts"].as_array().unwrap();
    assert_eq!(drafts.len(), 5);
    let continents: Vec<&str> = drafts.iter().map(|d| d["continent"].as_str().unwrap()).collect();
    assert_eq!(continents, ["Africa", "America", "Asia", "Europe", "Oceania"]);
    assert!(drafts.iter().all(|d| !d["text"].as_str().unwrap().is_empty()));
    assert!(!full["summary"].as_str().unwrap().is_empty());
    assert_eq!(full["continent"], "Africa");
    assert!(full["decision_system"].as_str().unwrap().contains(full["summary"].as_str().unwrap()));

    // Without cultural drafts: no drafts, a summary all the same.
    let cd = &record(&records, "palette-cd")["diagnostics"];
    assert!(cd["drafts"].as_array().unwrap().is_empty());
    assert!(!cd["summary"].as_str().unwrap().is_empty());
    // Without self-regulation: drafts, no summary, and the drafts are in the decision prompt.
    let sr = &record(&records, "palette-sr")["diagnostics"];
    assert!(sr["summary"].is_null());
    let first = sr["drafts"][0]["text"].as_str().unwrap();
    assert!(sr["decision_system"].as_str().unwrap().contains(first));
    // Greedy drafts are the same whichever variant asks for them.
    assert_eq!(sr["drafts"], full["drafts"]);

    // A continent override is applied and recorded; an unknown continent is a one-line error.
    let (_, over) = eval(&["--method", "palette", "--continents", "NGA=Europe"], &dir.path().join("over"));
    assert_eq!(record(&over, "palette")["diagnostics"]["continent"], "Europe");
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args(["eval", "goqa", "--countries", "NGA", "--limit", "1", "--method", "palette", "--continents", "NGA=Atlantis"])
        .args(["--out", dir.path().join("bad").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Atlantis") && err.trim().lines().count() == 1, "{err}");
}
