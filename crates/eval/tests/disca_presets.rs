//! `paper` and `reference` presets on a pool longer than the country prior's warm-up, through
//! the runner, on a scripted stand-in model (no llama.cpp): the reference headline includes the
//! prior, walked in pool order from the released runner's step 3.

use culturesteer_core::disca::{CountryPrior, DiscaConfig, PriorConfig};
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::runner::{run, NoProgress, RunConfig};
use culturesteer_eval::CountryScore;
use culturesteer_llm::standin::StandIn;
use culturesteer_methods::{Disca, Method, Vanilla};
use std::collections::BTreeMap;

/// The stand-in model scripted to answer "A"/"B" with log-probs that are a fixed function of
/// the prompt text: z_B − z_A in [−3, 3], plus a bias toward "A" as small models have.
fn scripted() -> StandIn {
    StandIn::new().with_logprobs(|prompt, piece| {
        let h = prompt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let gap = (h % 6001) as f64 / 1000.0 - 3.0 - 0.5;
        match piece {
            "A" => -gap / 2.0 - 1.0,
            "B" => gap / 2.0 - 1.0,
            _ => -20.0,
        }
    })
}

fn scores(preset: DiscaConfig, limit: usize) -> BTreeMap<String, CountryScore> {
    let dir = tempfile::tempdir().unwrap();
    let usa = CountryCode::new("USA").unwrap();
    let bench = MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap();
    let panel = vec![
        "persona one".to_string(),
        "persona two".into(),
        "persona three".into(),
        "persona four".into(),
    ];
    let mut methods: Vec<Box<dyn Method>> = vec![
        Box::new(Vanilla),
        Box::new(Disca::new(
            "disca",
            preset,
            BTreeMap::from([(usa, panel)]),
            42,
        )),
    ];
    let cfg = RunConfig {
        out_dir: dir.path().to_path_buf(),
        countries: vec![usa],
        limit: Some(limit),
        batch_size: 16,
        seed: 42,
        bootstrap: 0,
        invocation: serde_json::Value::Null,
    };
    let out = run(
        &bench,
        &mut methods,
        &mut scripted(),
        "stand-in",
        &DataSource::Embedded,
        &cfg,
        &mut NoProgress,
    )
    .unwrap();
    assert!(out.unscored.is_empty(), "{:?}", out.unscored);
    out.report.scores.into_iter().map(|(m, s)| (m, s)).collect()
}

#[test]
fn reference_headline_includes_the_prior_and_paper_does_not() {
    let paper = scores(DiscaConfig::paper(), 60);
    let reference = scores(DiscaConfig::reference(), 60);
    let mis = |s: &BTreeMap<String, CountryScore>, m: &str| {
        s.get(m)
            .unwrap_or_else(|| panic!("no {m}: {:?}", s.keys()))
            .value
    };
    // 60 rows: the prior has weight from the 48th item on (k = 51 after the warm start of 3).
    assert!(
        (mis(&paper, "disca") - mis(&reference, "disca")).abs() > 1e-6,
        "the presets must differ"
    );
    assert_eq!(mis(&reference, "disca"), mis(&paper, "disca+prior"));
    assert_eq!(mis(&reference, "disca-no-prior"), mis(&paper, "disca"));
    assert!(!reference.contains_key("disca+prior") && !paper.contains_key("disca-no-prior"));
    // Within the warm-up the two presets cannot differ.
    let (p, r) = (
        scores(DiscaConfig::paper(), 40),
        scores(DiscaConfig::reference(), 40),
    );
    assert_eq!(mis(&p, "disca"), mis(&r, "disca"));
}

#[test]
fn the_prior_starts_where_the_released_runner_starts_it() {
    let cfg = PriorConfig::reference();
    let micros: Vec<f64> = (0..60)
        .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0)
        .collect();
    let steps = CountryPrior::walk(&cfg, &micros);
    assert_eq!(
        steps[0].k, 3,
        "three debug predictions before the main loop"
    );
    // The state before the first row has absorbed rows 0–2.
    let warm = micros[..3].iter().fold(0.0, |d, m| 0.9 * d + 0.1 * m);
    assert!((steps[0].delta_country - warm).abs() < 1e-15);
    assert_eq!(
        steps.iter().position(|s| s.alpha_h > 0.0),
        Some(48),
        "k = 51 is the first step past the warm-up of 50"
    );
}

#[test]
fn the_runner_gives_bootstrap_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let usa = CountryCode::new("USA").unwrap();
    let bench = MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap();
    let panel = vec!["persona one".to_string(), "persona two".into()];
    let mut methods: Vec<Box<dyn Method>> = vec![
        Box::new(Vanilla),
        Box::new(Disca::new(
            "disca",
            DiscaConfig::paper(),
            BTreeMap::from([(usa, panel)]),
            42,
        )),
    ];
    let cfg = RunConfig {
        out_dir: dir.path().to_path_buf(),
        countries: vec![usa],
        limit: Some(30),
        batch_size: 16,
        seed: 7,
        bootstrap: 40,
        invocation: serde_json::Value::Null,
    };
    let out = run(
        &bench,
        &mut methods,
        &mut scripted(),
        "stand-in",
        &DataSource::Embedded,
        &cfg,
        &mut NoProgress,
    )
    .unwrap();
    let names: Vec<&str> = out
        .report
        .bootstrap
        .iter()
        .map(|(m, _, _)| m.as_str())
        .collect();
    assert_eq!(names, ["vanilla", "disca", "disca+prior"]);
    for (m, _, reps) in &out.report.bootstrap {
        assert_eq!(reps.len(), 40, "{m}");
        // Bias-corrected: the replicates are centred on the point estimate.
        let point = out
            .report
            .scores
            .iter()
            .find(|(n, _)| n == m)
            .unwrap()
            .1
            .value;
        assert!(
            (reps.iter().sum::<f64>() / 40.0 - point).abs() < 1e-9,
            "{m}"
        );
    }
    let disca = &out
        .report
        .scores
        .iter()
        .find(|(n, _)| n == "disca")
        .unwrap()
        .1;
    let get = |k: &str| {
        disca
            .secondary
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| *v)
    };
    let (lo, hi) = (
        get("content_r_ci_lo").unwrap(),
        get("content_r_ci_hi").unwrap(),
    );
    assert!(lo < hi && (-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi));
    assert!(std::fs::read_to_string(dir.path().join("summary.md"))
        .unwrap()
        .contains("95% CI"));
}
