//! `culturesteer tune softprompt` on the real default model with a CI-sized budget, and the
//! tuned soft prompt used by other commands through `--soft-prompt`.

mod support;
use support::run as cs;

#[test]
fn real_model_tune_softprompt_writes_report_resumes_and_feeds_other_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("usa");
    let o = out.to_str().unwrap();
    let base = [
        "tune",
        "softprompt",
        "--country",
        "USA",
        "--pop",
        "4",
        "--transfer-questions",
        "2",
        "--out",
        o,
    ];
    let r = cs(&[&base[..], &["--generations", "1"]].concat());
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for row in [
        "**target**",
        "| naive |",
        "| country prompt |",
        "| tuned soft prompt",
        "S_align",
    ] {
        assert!(report.contains(row), "report lacks {row}: {report}");
    }
    assert!(std::fs::read_to_string(out.join("loss.svg"))
        .unwrap()
        .starts_with("<svg"));
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(
        cp["reports"].as_array().unwrap().len(),
        2,
        "initial population + 1 generation"
    );
    // The tuned loss is the best DE saw, never worse than θ₀ (which is in the population).
    let best: Vec<f64> = cp["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["best"].as_f64().unwrap())
        .collect();
    assert!(best[1] <= best[0]);
    // "Tuned" only when DE beat its initial population; otherwise the report says so.
    let not_improved = report.contains("did not improve on its initial population");
    assert_eq!(not_improved, best[1] >= best[0], "{report}");
    assert_eq!(
        report.contains("| tuned soft prompt (not improved"),
        not_improved,
        "{report}"
    );

    // The same --out without --resume is refused; --resume extends the run.
    let again = cs(&[&base[..], &["--generations", "1"]].concat());
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let r = cs(&[&base[..], &["--generations", "2", "--resume", "--json"]].concat());
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // --json prints the results for programs.
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).expect("tune --json prints JSON");
    let names: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"naive") && names.contains(&"country prompt"),
        "{j}"
    );
    assert_eq!(j["generations"].as_array().unwrap().len(), 3);
    assert!(j["improved"].is_boolean(), "{j}");
    assert_eq!(j["country"], "USA");
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(cp["reports"].as_array().unwrap().len(), 3);

    // The soft prompt changes what `score` reads; a soft prompt for another model is refused.
    let soft = out.join("soft_prompt.json");
    let score = |extra: &[&str]| -> serde_json::Value {
        let r = cs(&[
            &[
                "score",
                "--chat",
                "--prompt",
                "Is family important? Answer yes or no.",
                "--top-k",
                "3",
                "--json",
            ][..],
            extra,
        ]
        .concat());
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        serde_json::from_slice(&r.stdout).unwrap()
    };
    let (plain, tuned) = (
        score(&[]),
        score(&["--soft-prompt", soft.to_str().unwrap()]),
    );
    assert_ne!(plain["top_k"][0]["logprob"], tuned["top_k"][0]["logprob"]);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&soft).unwrap()).unwrap();
    v["manifest"]["embedding_size"] = 5.into();
    v["manifest"]["rows"] = 1.into();
    v["values"] = serde_json::json!([0.0, 0.0, 0.0, 0.0, 0.0]);
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, v.to_string()).unwrap();
    let r = cs(&[
        "score",
        "--prompt",
        "x",
        "--soft-prompt",
        wrong.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("wrong.json") && err.trim().lines().count() == 1,
        "{err}"
    );

    // Unknown country: one line naming it.
    let r = cs(&[
        "tune",
        "softprompt",
        "--country",
        "XXX",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("XXX"), "{err}");
}

#[test]
fn real_model_tune_blackbox_searches_persona_texts_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sau");
    let o = out.to_str().unwrap();
    let r = cs(&[
        "tune",
        "blackbox",
        "--country",
        "SAU",
        "--pop",
        "4",
        "--generations",
        "1",
        "--transfer-questions",
        "0",
        "--out",
        o,
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    // stderr is not a terminal: the progress comes as plain lines, one at least for the end.
    assert!(
        stderr.contains("tune: 2/2 generations (best loss "),
        "no final progress line in {stderr}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for row in [
        "**target**",
        "| naive |",
        "| country prompt |",
        "| start persona |",
        "| tuned persona",
        "black box",
    ] {
        assert!(report.contains(row), "report lacks {row}: {report}");
    }
    let persona: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("persona.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(out.join("persona.txt")).unwrap();
    assert_eq!(text.trim_end(), persona["text"].as_str().unwrap());
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap())
            .unwrap();
    let best: Vec<f64> = cp["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["best"].as_f64().unwrap())
        .collect();
    assert_eq!(best.len(), 2);
    // The reported persona is the best DE saw, and its loss is what DE was told.
    assert!(best[1] <= best[0]);
    assert!(
        (persona["loss"].as_f64().unwrap() - best[1]).abs() < 1e-9,
        "{persona} vs {best:?}"
    );

    // Soft prompts belong to the other tuner; HTTP models to this one.
    let r = cs(&[
        "tune",
        "blackbox",
        "--country",
        "SAU",
        "--soft-prompt",
        "x.json",
        "--out",
        dir.path().join("a").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--soft-prompt"));
    let r = cs(&[
        "tune",
        "softprompt",
        "--country",
        "SAU",
        "--model-url",
        "http://127.0.0.1:9/v1",
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tune blackbox") && err.trim().lines().count() == 1,
        "{err}"
    );
}
