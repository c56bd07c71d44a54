//! Tests of the run report: Markdown summary and SVG plots.

use culturesteer_core::CountryCode;
use culturesteer_eval::report::{plot_file_names, render_summary, write_report, ReportInput};
use culturesteer_eval::{Component, CountryScore, MetricInfo};

fn code(s: &str) -> CountryCode {
    CountryCode::new(s).expect("valid code")
}

const DIMS: [&str; 6] = [
    "Species_Humans",
    "Gender_Female",
    "Age_Young",
    "Fitness_Fit",
    "SocialValue_High",
    "Utilitarianism_More",
];

fn score(country: &str, value: f64, n: usize, shift: f64) -> CountryScore {
    CountryScore {
        country: code(country),
        value,
        n_items: n,
        components: DIMS
            .iter()
            .enumerate()
            .map(|(k, d)| Component {
                name: d.to_string(),
                model: (0.2 + 0.1 * k as f64 + shift).min(1.0),
                human: Some(0.5 + 0.05 * k as f64),
            })
            .collect(),
        secondary: vec![("pearson_r".into(), 0.5 + shift), ("jsd".into(), 0.1)],
    }
}

/// Two methods, three countries; `disca` has no score for VNM.
fn input() -> ReportInput {
    ReportInput {
        benchmark: "multitp".into(),
        metric: MetricInfo {
            name: "MIS",
            lower_is_better: true,
        },
        model: "gemma.gguf (SHA-256 abc)".into(),
        methods: vec!["vanilla".into(), "disca".into()],
        scores: vec![
            ("vanilla".into(), score("USA", 0.30, 60, 0.0)),
            ("disca".into(), score("USA", 0.20, 60, 0.05)),
            ("vanilla".into(), score("DEU", 0.40, 60, 0.1)),
            ("disca".into(), score("DEU", 0.45, 60, 0.02)),
            ("vanilla".into(), score("VNM", 0.90, 60, 0.2)),
        ],
        floors: vec![(code("USA"), 0.5), (code("DEU"), 0.6), (code("VNM"), 0.7)],
        floor_label: "uniform (p = 1/n)".into(),
        bootstrap: vec![],
        same_as_parent: vec![],
    }
}

/// Also writes the report under `$REPORT_TEST_KEEP/<name>` when set, to look at the plots.
fn keep(name: &str, inp: &ReportInput) {
    if let Ok(dir) = std::env::var("REPORT_TEST_KEEP") {
        write_report(&std::path::Path::new(&dir).join(name), inp).expect("report");
    }
}

fn row<'a>(md: &'a str, first_cell: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with(&format!("| {first_cell} |")))
        .unwrap_or_else(|| panic!("no row {first_cell} in\n{md}"))
}

#[test]
fn report_summary_has_macro_bold_missing_and_floor() {
    let md = render_summary(&input());
    assert!(md.starts_with("# multitp — MIS\n"));
    assert!(md.contains("Model: gemma.gguf (SHA-256 abc)"));
    // Header: methods in display order, then the floor, then n.
    assert!(
        md.contains("| Country | vanilla | disca | uniform (p = 1/n) | n items |"),
        "{md}"
    );
    // Countries sorted by code.
    let deu = md.find("| DEU |").expect("DEU row");
    let usa = md.find("| USA |").expect("USA row");
    let vnm = md.find("| VNM |").expect("VNM row");
    assert!(deu < usa && usa < vnm);
    // Lower is better: disca wins USA, vanilla wins DEU.
    assert_eq!(row(&md, "USA"), "| USA | 0.300 | **0.200** | 0.500 | 60 |");
    assert_eq!(row(&md, "DEU"), "| DEU | **0.400** | 0.450 | 0.600 | 60 |");
    // Missing method/country: the only method present is worse than the floor, so not bold.
    assert_eq!(row(&md, "VNM"), "| VNM | 0.900 | – | 0.700 | 60 |");
    // Macro over DEU and USA only: vanilla (0.4+0.3)/2 = 0.35, disca (0.45+0.2)/2 = 0.325,
    // floor (0.6+0.5)/2 = 0.55.
    assert_eq!(
        row(&md, "**macro**"),
        "| **macro** | 0.350 | **0.325** | 0.550 | (2 countries) |"
    );
    assert!(
        md.contains("unweighted mean over the 2 countries that every method has (DEU, USA)"),
        "{md}"
    );
    assert!(md.contains("VNM"));
    // Per-dimension section and secondary metrics.
    assert!(md.contains("## Per dimension"));
    assert!(md.contains("### USA"));
    assert!(
        md.contains("| Species_Humans | 0.500 | 0.200 | 0.250 |"),
        "{md}"
    );
    assert!(md.contains("| Dimension | human | vanilla | disca |"));
    assert!(md.contains("## Secondary metrics"));
    assert!(md.contains("| Country | Method | pearson_r | jsd |"));
    assert!(md.contains("| USA | disca | 0.550 | 0.100 |"), "{md}");
    // Deterministic.
    assert_eq!(md, render_summary(&input()));
}

#[test]
fn report_higher_is_better_bolds_the_max() {
    let mut inp = input();
    inp.metric = MetricInfo {
        name: "S_align",
        lower_is_better: false,
    };
    // Below a higher-is-better floor nothing is bold.
    assert_eq!(
        row(&render_summary(&inp), "USA"),
        "| USA | 0.300 | 0.200 | 0.500 | 60 |"
    );
    inp.floors = vec![(code("USA"), 0.1), (code("DEU"), 0.1), (code("VNM"), 0.1)];
    let md = render_summary(&inp);
    assert_eq!(row(&md, "USA"), "| USA | **0.300** | 0.200 | 0.100 | 60 |");
    assert_eq!(
        row(&md, "**macro**"),
        "| **macro** | **0.350** | 0.325 | 0.100 | (2 countries) |"
    );
}

#[test]
fn report_summary_without_floors_or_components() {
    let mut inp = input();
    inp.floors.clear();
    for (_, s) in &mut inp.scores {
        s.components.clear();
        s.secondary.clear();
    }
    let md = render_summary(&inp);
    assert!(
        md.contains("| Country | vanilla | disca | n items |"),
        "{md}"
    );
    assert_eq!(row(&md, "USA"), "| USA | 0.300 | **0.200** | 60 |");
    assert!(!md.contains("## Per dimension"));
    assert!(!md.contains("## Secondary metrics"));
}

#[test]
fn report_empty_scores_say_no_results() {
    let mut inp = input();
    inp.scores.clear();
    let md = render_summary(&inp);
    assert!(md.contains("No results yet"), "{md}");
    assert!(plot_file_names(&inp).is_empty());
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path(), &inp).expect("report");
    assert!(dir.path().join("summary.md").is_file());
    assert!(dir.path().join("plots").is_dir());
}

#[test]
fn report_write_writes_summary_and_svgs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inp = input();
    write_report(dir.path(), &inp).expect("report");
    keep("basic", &inp);
    let md = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary");
    assert_eq!(md, render_summary(&inp));
    let names = plot_file_names(&inp);
    assert_eq!(
        names,
        [
            "plots/mis_by_country.svg",
            "plots/radar_DEU.svg",
            "plots/radar_USA.svg",
            "plots/radar_VNM.svg"
        ]
    );
    for n in &names {
        let svg = std::fs::read_to_string(dir.path().join(n)).expect("svg");
        assert!(svg.starts_with("<svg"), "{n}");
        assert!(svg.trim_end().ends_with("</svg>"), "{n}");
        assert!(md.contains(n.as_str()), "summary links {n}");
    }
    let bars = std::fs::read_to_string(dir.path().join("plots/mis_by_country.svg")).expect("bars");
    assert!(bars.contains("multitp: MIS by country (lower is better)"));
    assert!(bars.contains("uniform (p = 1/n)"), "floor in the legend");
    // 5 bars plus 2 legend swatches (and the background / legend box).
    assert!(bars.matches("<rect").count() >= 7);
    // USA: human + 2 methods; VNM: human + vanilla.
    let usa = std::fs::read_to_string(dir.path().join("plots/radar_USA.svg")).expect("radar");
    assert_eq!(usa.matches("<polygon").count(), 3);
    for d in DIMS {
        assert!(usa.contains(d), "axis label {d}");
    }
    let vnm = std::fs::read_to_string(dir.path().join("plots/radar_VNM.svg")).expect("radar");
    assert_eq!(vnm.matches("<polygon").count(), 2);
}

#[test]
fn report_write_names_the_failing_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where the plots directory should go.
    std::fs::write(dir.path().join("plots"), "x").expect("write");
    match write_report(dir.path(), &input()) {
        Err(culturesteer_eval::BenchError::Io { path, .. }) => {
            assert!(path.ends_with("plots"), "{path}")
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn report_odd_values_do_not_panic() {
    let mut inp = input();
    inp.metric = MetricInfo {
        name: "L1 loss / VSM",
        lower_is_better: true,
    };
    inp.scores[0].1.value = f64::NAN;
    inp.scores[1].1.components[0].model = 250.0;
    inp.scores[1].1.components[1].model = -40.0;
    inp.scores[1].1.components[2].human = None;
    inp.floors.push((code("USA"), f64::INFINITY));
    inp.scores[2].1.value = f64::MAX;
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path(), &inp).expect("report");
    keep("odd", &inp);
    assert!(dir
        .path()
        .join("plots/l1_loss_vsm_by_country.svg")
        .is_file());
    let md = render_summary(&inp);
    assert!(md.contains("n/a"));
}

#[test]
fn report_many_countries_and_methods() {
    let codes = [
        "ARG", "BRA", "CHN", "DEU", "EGY", "FRA", "GBR", "IND", "JPN", "KOR", "MEX", "NGA", "RUS",
        "USA", "VNM",
    ];
    let methods = [
        "vanilla",
        "prompt-country",
        "disca-k4",
        "disca-k8 long name",
    ];
    let mut scores = Vec::new();
    for (ci, c) in codes.iter().enumerate() {
        for (mi, m) in methods.iter().enumerate() {
            scores.push((
                m.to_string(),
                score(
                    c,
                    0.1 + 0.05 * ((ci * 7 + mi * 3) % 11) as f64,
                    40,
                    0.03 * mi as f64,
                ),
            ));
        }
    }
    let inp = ReportInput {
        benchmark: "multitp".into(),
        metric: MetricInfo {
            name: "MIS",
            lower_is_better: true,
        },
        model: "m".into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        scores,
        floors: codes.iter().map(|c| (code(c), 0.6)).collect(),
        floor_label: "uniform (p = 1/n)".into(),
        bootstrap: vec![],
        same_as_parent: vec![],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path(), &inp).expect("report");
    keep("many", &inp);
    let bars = std::fs::read_to_string(dir.path().join("plots/mis_by_country.svg")).expect("bars");
    assert!(bars.matches("<rect").count() >= codes.len() * methods.len() + methods.len());
    let md = render_summary(&inp);
    assert!(md.contains(&format!("({} countries)", codes.len())));
    let radar = std::fs::read_to_string(dir.path().join("plots/radar_VNM.svg")).expect("radar");
    assert_eq!(radar.matches("<polygon").count(), 1 + methods.len());
}

#[test]
fn report_says_when_no_method_beats_the_floor_and_gives_intervals() {
    // Every method worse than the floor: nothing bold, a verdict per method.
    let mut inp = input();
    inp.floors = vec![(code("USA"), 0.1), (code("DEU"), 0.1), (code("VNM"), 0.1)];
    inp.scores.retain(|(_, s)| s.country != code("VNM"));
    let md = render_summary(&inp);
    assert!(
        !row(&md, "USA").contains("**") && !row(&md, "**macro**").contains("**0."),
        "{md}"
    );
    assert!(
        md.contains(
            "- **disca**: macro MIS 0.325; **not better than the uniform predictor** (0.100)"
        ),
        "{md}"
    );
    assert!(
        md.contains("gain vs vanilla +7.1%, better than vanilla in 1/2 countries"),
        "{md}"
    );
    assert!(
        md.contains("No method beats the uniform predictor on this run"),
        "{md}"
    );

    // A method better than the floor is bold and its interval is stated.
    let mut inp = input();
    inp.scores.retain(|(_, s)| s.country != code("VNM"));
    let reps = |lo: f64| {
        (0..100)
            .map(|k| lo + 0.001 * k as f64)
            .collect::<Vec<f64>>()
    };
    inp.bootstrap = vec![
        ("disca".into(), code("USA"), reps(0.15)),
        ("disca".into(), code("DEU"), reps(0.40)),
        ("vanilla".into(), code("USA"), reps(0.25)),
        ("vanilla".into(), code("DEU"), reps(0.35)),
    ];
    let md = render_summary(&inp);
    assert!(row(&md, "USA").contains("**0.200**"), "{md}");
    assert!(md.contains("- **disca**: macro MIS 0.325 (95% CI 0.277 – 0.372); better than the uniform predictor (0.550)"), "{md}");
    assert!(md.contains("## 95% intervals per country"), "{md}");
    assert!(md.contains("| USA | 0.252–0.347 | 0.152–0.247 |"), "{md}");
    assert!(!md.contains("No method beats"));

    // A view equal to its method is named as such, not as a result.
    let mut inp = input();
    inp.methods.push("disca+prior".into());
    let copies: Vec<(String, CountryScore)> = inp
        .scores
        .iter()
        .filter(|(m, _)| m == "disca")
        .map(|(_, s)| ("disca+prior".into(), s.clone()))
        .collect();
    inp.scores.extend(copies);
    inp.same_as_parent = vec![("disca+prior".into(), "disca".into())];
    let md = render_summary(&inp);
    assert!(md.contains("- **disca+prior** equals disca on every country of this run, so it is not a separate result here (no column)."), "{md}");
    assert!(
        md.contains("| Country | vanilla | disca | uniform (p = 1/n) | n items |"),
        "{md}"
    );
}

#[test]
fn scores_json_is_written_and_versioned() {
    let mut inp = input();
    inp.bootstrap = vec![(
        "disca".into(),
        code("USA"),
        (0..50).map(|k| 0.15 + 0.002 * k as f64).collect(),
    )];
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path(), &inp).expect("report");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("scores.json")).unwrap())
            .unwrap();
    assert_eq!(v["schema"], culturesteer_eval::report::SCORES_SCHEMA);
    assert_eq!(v["metric"]["name"], "MIS");
    assert_eq!(v["macro_countries"], serde_json::json!(["DEU", "USA"]));
    assert!((v["floor"]["macro"].as_f64().unwrap() - 0.55).abs() < 1e-12);
    let disca = v["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["verdict"]["method"] == "disca")
        .unwrap();
    assert!((disca["verdict"]["macro_value"].as_f64().unwrap() - 0.325).abs() < 1e-12);
    assert_eq!(disca["verdict"]["beats_floor"], true);
    assert_eq!(disca["verdict"]["wins_vs_vanilla"], 1);
    assert_eq!(disca["countries"]["USA"]["n_items"], 60);
    assert!(disca["countries"]["USA"]["ci95"].is_array());
    assert!(disca["countries"]["DEU"]["ci95"].is_null());
    assert_eq!(disca["countries"]["USA"]["diagnostics"]["jsd"], 0.1);
    assert!(disca["countries"].get("VNM").is_none());
}

/// Ten countries without item replicates (as VSM13 reports them): `paired` is the floor minus
/// 20 everywhere, `noisy` is the floor ± 30 in turn.
fn country_run(n: usize) -> ReportInput {
    let codes = [
        "USA", "DEU", "FRA", "JPN", "CHN", "IND", "BRA", "NGA", "MEX", "KOR",
    ];
    let mut inp = input();
    inp.benchmark = "vsm13".into();
    inp.metric = MetricInfo {
        name: "L1",
        lower_is_better: true,
    };
    inp.methods = vec!["paired".into(), "noisy".into()];
    inp.scores.clear();
    inp.floors.clear();
    for (k, c) in codes.iter().take(n).enumerate() {
        let floor = 200.0 + 40.0 * k as f64;
        inp.floors.push((code(c), floor));
        inp.scores
            .push(("paired".into(), score(c, floor - 20.0, 24, 0.0)));
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        inp.scores
            .push(("noisy".into(), score(c, floor + sign * 30.0, 24, 0.0)));
    }
    inp
}

#[test]
fn runs_without_item_intervals_resample_countries_paired_with_the_floor() {
    use culturesteer_eval::report::{verdicts, CiBasis};
    let inp = country_run(10);
    let v = verdicts(&inp);
    let paired = v.iter().find(|v| v.method == "paired").unwrap();
    assert_eq!(paired.ci_basis, Some(CiBasis::Countries));
    // The floors spread from 200 to 560, so the macro interval is wide; the difference to
    // the floor is -20 on every resample.
    let (lo, hi) = paired.macro_ci95.unwrap();
    assert!(hi - lo > 100.0, "{lo} {hi}");
    assert_eq!(paired.floor_diff_ci95, Some((-20.0, -20.0)));
    assert_eq!(paired.clearly_beats_floor, Some(true));
    let noisy = v.iter().find(|v| v.method == "noisy").unwrap();
    let (a, b) = noisy.floor_diff_ci95.unwrap();
    assert!(a < 0.0 && b > 0.0, "{a} {b}");
    assert_eq!(noisy.clearly_beats_floor, Some(false));
    // The same resamples for every method: deterministic and paired across methods.
    assert_eq!(verdicts(&inp), v);
    let md = render_summary(&inp);
    assert!(md.contains("countries resampled)"), "{md}");
    assert!(
        md.contains("the intervals resample the 10 countries instead"),
        "{md}"
    );
    // Against vanilla on the same resamples: -50 and +10 in turn, -20 on average.
    let mut inp = country_run(10);
    for (m, _) in inp.scores.iter_mut() {
        if m == "noisy" {
            *m = "vanilla".into();
        }
    }
    inp.methods = vec!["vanilla".into(), "paired".into()];
    let v = verdicts(&inp);
    let (a, b) = v[1].vanilla_diff_ci95.unwrap();
    assert!(a < -20.0 && -20.0 < b && b < 0.0, "{a} {b}");
    assert_eq!(v[0].vanilla_diff_ci95, None);
    assert!(
        render_summary(&inp).contains("(95% CI of the difference to vanilla -"),
        "{}",
        render_summary(&inp)
    );
    // Too few countries: no interval at all, and nothing is called clearly better.
    let v = verdicts(&country_run(7));
    assert!(v
        .iter()
        .all(|v| v.macro_ci95.is_none() && v.ci_basis.is_none()));
    assert!(v.iter().all(|v| v.clearly_beats_floor.is_none()));
}
