//! palette-modular on the real default model: each continent agent's options are read after
//! its own draft on llama.cpp's generate-then-score path, P_gen is their mean, the summary
//! counts the parsed drafts, and the manifest records the target country's continent and its
//! source. The logic is tested on the stand-in (`crates/eval/tests/palette_standin.rs`).

mod support;

use support::{eval_ok, probs, records};

#[test]
fn real_model_palette_modular_averages_the_agents_and_the_run_records_continent_sources() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = eval_ok(
        &[
            "goqa",
            "--countries",
            "RUS",
            "--limit",
            "1",
            "--palette-draft-tokens",
            "12",
            "--method",
            "palette-modular",
        ],
        &out,
    );
    assert!(
        stdout.contains("palette-modular: drafts parsed: "),
        "{stdout}"
    );
    let r = &records(&out)[0];
    let d = &r["diagnostics"];
    assert_eq!(
        d["continent"], "Asia",
        "CultureSPA's grouping puts RUS in Asia"
    );
    assert_eq!(d["continent_source"], "culturespa");
    let probs = probs(r);
    let agents = d["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 5);
    for (j, p) in probs.iter().enumerate() {
        let mean = agents
            .iter()
            .map(|a| a["probs"][j].as_f64().unwrap())
            .sum::<f64>()
            / 5.0;
        assert!((p - mean).abs() < 1e-12, "option {j}: {p} vs {mean}");
    }
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let text = manifest.to_string();
    assert!(
        text.contains(r#""target_continents":{"RUS":{"continent":"Asia","source":"culturespa"}}"#),
        "{text}"
    );
}
