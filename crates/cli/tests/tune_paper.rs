//! The paper-following options of `culturesteer tune` on the real default model, CI-sized:
//! held-out items, the VSM13 constants and MAS weight, and the transfer check's interval; and
//! the constants reaching `eval vsm13`'s manifest. Generate-and-parse answers are kept to the
//! stand-in tests (eval/tests/tune_objective.rs): on this model one greedy generation takes
//! seconds, and a tuning run asks hundreds; soft-prompt generation itself is checked in
//! llm/tests/real_model.rs.

mod support;
use support::run as cs;

#[test]
fn real_model_tune_softprompt_with_held_out_items_constants_and_transfer_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("usa");
    let r = cs(&[
        "tune",
        "softprompt",
        "--country",
        "USA",
        "--pop",
        "4",
        "--generations",
        "0",
        "--held-out",
        "6",
        "--vsm13-constants",
        "PDI=50",
        "--vsm13-mas-weight",
        "25",
        "--transfer-questions",
        "2",
        "--bootstrap",
        "200",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["objective"]["vsm13"]["answer_mode"], "logits_expectation");
    assert_eq!(j["objective"]["vsm13"]["config"]["constants"][0], 50.0);
    assert_eq!(
        j["objective"]["vsm13"]["config"]["mas_second_weight"],
        "Masoud25"
    );
    let held = j["held_out"]["items"].as_array().unwrap();
    assert_eq!(held.len(), 6);
    // The objective DE reports is the in-sample loss of the best candidate.
    let gens = j["generations"].as_array().unwrap();
    assert_eq!(
        j["held_out"]["in_sample_loss"].as_f64(),
        gens.last().unwrap()["best"].as_f64()
    );
    let t = &j["transfer"];
    assert_eq!(t["questions"], 2);
    assert!(t["available"].as_u64().unwrap() >= 2);
    assert!(t["ci95"].as_array().is_some_and(|c| c.len() == 2), "{t}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for s in [
        "## Held-out VSM13 items",
        "answering all 24 items itself",
        "answer mode logits_expectation",
        "PDI=50",
        "MAS second weight 25",
        "paired bootstrap",
    ] {
        assert!(report.contains(s), "report lacks {s}: {report}");
    }
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(cp["objective"]["held_out"], j["held_out"]["items"]);
}

#[test]
fn real_model_eval_vsm13_records_the_constants_in_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e");
    let r = cs(&[
        "eval",
        "vsm13",
        "--countries",
        "USA",
        "--vsm13-constants",
        "IDV=-10,LTO=3",
        "--vsm13-mas-weight",
        "25",
        "--bootstrap",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let c = &m["benchmark_options"]["config"];
    assert_eq!(
        c["constants"],
        serde_json::json!([0.0, -10.0, 0.0, 0.0, 3.0, 0.0])
    );
    assert_eq!(c["mas_second_weight"], "Masoud25");
}

#[test]
fn bad_vsm13_flags_are_one_line_errors_naming_flag_and_token() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag, token) in [
        (
            vec!["eval", "vsm13", "--vsm13-constants", "PDI=1,XYZ=2"],
            "--vsm13-constants",
            "XYZ=2",
        ),
        (
            vec![
                "tune",
                "softprompt",
                "--country",
                "USA",
                "--vsm13-constants",
                "IVR=abc",
            ],
            "--vsm13-constants",
            "IVR=abc",
        ),
        (
            vec![
                "tune",
                "blackbox",
                "--country",
                "USA",
                "--vsm13-mas-weight",
                "30",
            ],
            "--vsm13-mas-weight",
            "30",
        ),
    ] {
        let out = dir.path().join(token.replace('=', "_"));
        let r = cs(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{err}");
        assert!(
            err.contains(flag) && err.contains(token) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
