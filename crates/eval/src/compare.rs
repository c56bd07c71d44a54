//! Several runs in one table: `scores.json` files read back and merged into one report.
//!
//! Each run's methods become columns `<label>: <method>` (views that equal their method on a
//! run are left out, as in that run's own summary). Runs must be of one benchmark and one
//! metric; the uniform floor is the first run's, and the comparison says when the runs' floors
//! differ (other items or limits).

use crate::report::{CiBasis, ReportInput, SCORES_SCHEMA};
use crate::{BenchError, Component, CountryScore, MetricInfo};
use culturesteer_core::CountryCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A `scores.json` as written by [`crate::report::write_report`].
#[derive(Debug, Clone, Deserialize)]
pub struct ScoresFile {
    pub schema: String,
    pub benchmark: String,
    pub metric: MetricFile,
    pub model: String,
    pub floor: FloorFile,
    pub methods: Vec<MethodFile>,
    /// The countries the macro values average over.
    #[serde(default)]
    pub macro_countries: Vec<CountryCode>,
    /// The run's benchmark options (`benchmark_options` of the `manifest.json` beside the
    /// scores, when there is one): what the metric measured, e.g. GOQA's S_align variant.
    #[serde(skip)]
    pub benchmark_options: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricFile {
    pub name: String,
    pub lower_is_better: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FloorFile {
    pub label: String,
    #[serde(default)]
    pub countries: BTreeMap<CountryCode, f64>,
    /// The floor's mean over the run's macro countries.
    #[serde(default, rename = "macro")]
    pub macro_value: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MethodFile {
    pub verdict: VerdictFile,
    #[serde(default)]
    pub countries: BTreeMap<CountryCode, CountryFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerdictFile {
    pub method: String,
    #[serde(default)]
    pub same_as: Option<String>,
    #[serde(default)]
    pub macro_value: Option<f64>,
    #[serde(default)]
    pub macro_ci95: Option<(f64, f64)>,
    #[serde(default)]
    pub ci_basis: Option<CiBasis>,
    #[serde(default)]
    pub floor_diff_ci95: Option<(f64, f64)>,
    #[serde(default)]
    pub beats_floor: Option<bool>,
    #[serde(default)]
    pub clearly_beats_floor: Option<bool>,
    #[serde(default)]
    pub gain_vs_vanilla_pct: Option<f64>,
    #[serde(default)]
    pub wins_vs_vanilla: Option<usize>,
    #[serde(default)]
    pub vanilla_diff_ci95: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CountryFile {
    pub value: f64,
    pub n_items: usize,
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default)]
    pub diagnostics: BTreeMap<String, f64>,
}

/// Reads `dir/scores.json`; errors name the file.
pub fn load_scores(dir: &Path) -> Result<ScoresFile, BenchError> {
    let path = dir.join("scores.json");
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BenchError::Invalid(format!(
            "{} has no scores.json (eval and ablate write one; re-run the run's command in that directory to add it)",
            dir.display()
        )),
        _ => BenchError::Invalid(format!("{}: {e}", path.display())),
    })?;
    let mut file: ScoresFile = serde_json::from_str(&text).map_err(|e| {
        BenchError::Invalid(format!(
            "{}: not a culturesteer scores file ({e})",
            path.display()
        ))
    })?;
    if file.schema != SCORES_SCHEMA {
        return Err(BenchError::Invalid(format!(
            "{}: schema {} (this culturesteer reads {SCORES_SCHEMA})",
            path.display(),
            file.schema
        )));
    }
    let manifest = dir.join("manifest.json");
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        let m: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| BenchError::Invalid(format!("{}: not JSON ({e})", manifest.display())))?;
        file.benchmark_options = m.get("benchmark_options").cloned();
    }
    Ok(file)
}

/// The metric name as the benchmarks spell it (report titles want a `&'static str`).
fn metric_name(name: &str) -> &'static str {
    match name {
        "MIS" => "MIS",
        "S_align" => "S_align",
        "L1" => "L1",
        _ => "metric",
    }
}

/// Merges labelled runs into one report input. Refuses runs of different benchmarks or
/// metrics. Returns the input and notes for the reader (e.g. floors that differ).
pub fn compare_runs(
    runs: &[(String, ScoresFile)],
) -> Result<(ReportInput, Vec<String>), BenchError> {
    let (first_label, first) = runs
        .first()
        .ok_or_else(|| BenchError::Invalid("no run to compare".into()))?;
    for (label, r) in &runs[1..] {
        if r.benchmark != first.benchmark {
            return Err(BenchError::Invalid(format!(
                "{label} holds {} results and {first_label} {}: compare runs of one benchmark",
                r.benchmark, first.benchmark
            )));
        }
        if r.metric.name != first.metric.name
            || r.metric.lower_is_better != first.metric.lower_is_better
        {
            return Err(BenchError::Invalid(format!(
                "{label} reports {} and {first_label} {}: compare runs of one metric",
                r.metric.name, first.metric.name
            )));
        }
    }
    let mut notes = Vec::new();
    if runs
        .iter()
        .any(|(_, r)| r.floor.countries != first.floor.countries)
    {
        notes.push(format!(
            "The runs' uniform floors differ (other items or --limit), so their numbers are not on the same items; the floor column is {first_label}'s."
        ));
    }
    let mut methods = Vec::new();
    let mut scores = Vec::new();
    for (label, r) in runs {
        for m in r.methods.iter().filter(|m| m.verdict.same_as.is_none()) {
            let column = format!("{label}: {}", m.verdict.method);
            for (code, c) in &m.countries {
                scores.push((
                    column.clone(),
                    CountryScore {
                        country: *code,
                        value: c.value,
                        n_items: c.n_items,
                        components: c.components.clone(),
                        secondary: c.diagnostics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    },
                ));
            }
            methods.push(column);
        }
    }
    let models: Vec<String> = runs
        .iter()
        .map(|(l, r)| format!("{l} = {}", r.model))
        .collect();
    let input = ReportInput {
        benchmark: first.benchmark.clone(),
        metric: MetricInfo {
            name: metric_name(&first.metric.name),
            lower_is_better: first.metric.lower_is_better,
        },
        model: models.join("; "),
        methods,
        scores,
        floors: first
            .floor
            .countries
            .iter()
            .map(|(c, v)| (*c, *v))
            .collect(),
        floor_label: first.floor.label.clone(),
        bootstrap: vec![],
        same_as_parent: vec![],
    };
    Ok((input, notes))
}

/// One cell of a cross-model table: a value with its interval, marked against the floor.
fn grid_cell(v: &VerdictFile, floor: Option<f64>, lower: bool) -> String {
    let Some(value) = v.macro_value else {
        return "–".into();
    };
    let mut s = match v.macro_ci95 {
        Some((a, b)) => format!("{value:.3} [{a:.3}, {b:.3}]"),
        None => format!("{value:.3}"),
    };
    if v.ci_basis == Some(CiBasis::Countries) {
        s.push_str(" ᶜ");
    }
    // The whole interval on the better side of the floor: bold. Includes the floor: "≈ floor".
    // Entirely on the worse side: "< floor". A country bootstrap is judged by the interval of
    // the difference to the floor on the same resamples (the floor differs by country).
    let worse = match (floor, v.macro_ci95, v.floor_diff_ci95) {
        (Some(_), _, Some((a, b))) => Some(if lower { a > 0.0 } else { b < 0.0 }),
        (Some(f), Some((a, b)), None) => Some(if lower { a > f } else { b < f }),
        _ => None,
    };
    match worse {
        Some(_) if v.clearly_beats_floor == Some(true) => s = format!("**{s}**"),
        Some(true) => s.push_str(" < floor"),
        Some(false) => s.push_str(" ≈ floor"),
        // No interval (too few countries for a country bootstrap): never bold, and where its
        // point value sits against its run's floor is said in words.
        None if v.macro_ci95.is_none() => s.push_str(match v.beats_floor {
            Some(true) => " (no interval; ahead of floor by point value)",
            Some(false) => " (no interval; not ahead of floor)",
            None => " (no interval)",
        }),
        None => {}
    }
    s
}

/// Several runs across models in one markdown table: a block of rows per benchmark (its
/// uniform floor first, then every method any model ran), one column per model label. Cells
/// are the macro value with its 95% bootstrap interval; bold when the whole interval is on the
/// better side of that run's floor, "≈ floor" when it includes the floor (no better than
/// chance), "< floor" when it lies entirely on the worse side. Runs of one benchmark under one
/// label are merged (a costly method may run on fewer items in a directory of its own; the
/// table notes it); one method twice under one label is refused.
pub fn grid_markdown(runs: &[(String, ScoresFile)]) -> Result<String, BenchError> {
    let mut models: Vec<&str> = Vec::new();
    let mut benches: Vec<&str> = Vec::new();
    // Runs of one benchmark under one label are merged (e.g. a costly method run on fewer
    // items in its own directory); a method may appear in only one of them.
    let mut cell: BTreeMap<(String, String), Vec<&ScoresFile>> = BTreeMap::new();
    for (label, r) in runs {
        if !models.contains(&label.as_str()) {
            models.push(label);
        }
        if !benches.contains(&r.benchmark.as_str()) {
            benches.push(&r.benchmark);
        }
        // One row, one measure: every run of a benchmark (any label) must report the same
        // metric with the same benchmark options.
        if let Some((other, o)) = runs.iter().find(|(_, o)| o.benchmark == r.benchmark) {
            if o.metric.name != r.metric.name
                || o.metric.lower_is_better != r.metric.lower_is_better
            {
                return Err(BenchError::Invalid(format!(
                    "{} runs report {} ({other}) and {} ({label}): one table row must measure one thing",
                    r.benchmark, o.metric.name, r.metric.name
                )));
            }
            if let (Some(a), Some(b)) = (&o.benchmark_options, &r.benchmark_options) {
                if a != b {
                    return Err(BenchError::Invalid(format!(
                        "{} runs differ in benchmark options ({other}: {a}; {label}: {b}): one table row must measure one thing, so tabulate them apart",
                        r.benchmark
                    )));
                }
            }
        }
        let group = cell
            .entry((label.clone(), r.benchmark.clone()))
            .or_default();
        for v in r.methods.iter().filter(|v| v.verdict.same_as.is_none()) {
            let m = &v.verdict.method;
            // A method in two runs of one label: fine when the runs cover other countries
            // (vanilla run again beside a method restricted to some countries, to compare on
            // the same ones); the first run's value is shown, the other's noted. On the same
            // countries it is two results for one cell: refused.
            if let Some(o) = group.iter().find(|o| {
                o.methods
                    .iter()
                    .any(|w| w.verdict.method == *m && w.verdict.same_as.is_none())
            }) {
                if o.macro_countries == r.macro_countries {
                    return Err(BenchError::Invalid(format!(
                        "two {} runs labelled {label} both hold {m} on the same countries: give each model one result per method",
                        r.benchmark
                    )));
                }
            }
        }
        group.push(r);
    }
    let mut out = format!("| benchmark | method | {} |\n", models.join(" | "));
    out.push_str(&format!("|---|---|{}\n", "---|".repeat(models.len())));
    let mut notes = Vec::new();
    for b in &benches {
        let key = |m: &str| (m.to_string(), b.to_string());
        let of = |m: &str| -> &[&ScoresFile] { cell.get(&key(m)).map_or(&[], Vec::as_slice) };
        let Some(first) = models.iter().find_map(|m| of(m).first().copied()) else {
            continue;
        };
        let lower = first.metric.lower_is_better;
        let title = format!(
            "{b} ({} {})",
            first.metric.name,
            if lower { "↓" } else { "↑" }
        );
        let floor_row: Vec<String> = models
            .iter()
            .map(|m| {
                of(m)
                    .first()
                    .and_then(|r| r.floor.macro_value)
                    .map_or("–".into(), |f| format!("{f:.3}"))
            })
            .collect();
        out.push_str(&format!(
            "| {title} | uniform floor | {} |\n",
            floor_row.join(" | ")
        ));
        let mut methods: Vec<&str> = Vec::new();
        for m in &models {
            for v in of(m).iter().flat_map(|r| &r.methods) {
                if v.verdict.same_as.is_none() && !methods.contains(&v.verdict.method.as_str()) {
                    methods.push(&v.verdict.method);
                }
            }
        }
        for method in &methods {
            let cells: Vec<String> = models
                .iter()
                .map(|m| {
                    of(m)
                        .iter()
                        .find_map(|r| {
                            r.methods
                                .iter()
                                .find(|v| {
                                    v.verdict.method == *method && v.verdict.same_as.is_none()
                                })
                                .map(|v| grid_cell(&v.verdict, r.floor.macro_value, lower))
                        })
                        .unwrap_or_else(|| "–".into())
                })
                .collect();
            out.push_str(&format!("| | {method} | {} |\n", cells.join(" | ")));
        }
        for m in &models {
            let group = of(m);
            if let Some((head, rest)) = group.split_first() {
                for (k, r) in rest.iter().enumerate() {
                    for v in r.methods.iter().filter(|v| v.verdict.same_as.is_none()) {
                        let earlier = group[..=k].iter().any(|o| {
                            o.methods.iter().any(|w| {
                                w.verdict.method == v.verdict.method && w.verdict.same_as.is_none()
                            })
                        });
                        if earlier {
                            notes.push(format!(
                                "{b} on {m}: {} also ran beside {} on their {} countries (macro {}); the table shows its run on {} countries, and the comparisons to vanilla are made within each run.",
                                v.verdict.method,
                                r.methods
                                    .iter()
                                    .filter(|w| w.verdict.same_as.is_none() && w.verdict.method != v.verdict.method)
                                    .map(|w| w.verdict.method.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                r.macro_countries.len(),
                                v.verdict.macro_value.map_or("–".into(), |x| format!("{x:.3}")),
                                group
                                    .iter()
                                    .find(|o| o.methods.iter().any(|w| w.verdict.method == v.verdict.method))
                                    .map_or(0, |o| o.macro_countries.len())
                            ));
                        }
                    }
                    if r.floor.countries != head.floor.countries {
                        let names: Vec<&str> = r
                            .methods
                            .iter()
                            .filter(|v| v.verdict.same_as.is_none())
                            .map(|v| v.verdict.method.as_str())
                            .collect();
                        notes.push(format!(
                            "{b} on {m}: {} ran on other items (its own uniform floor {}; each cell is marked against its own run's floor).",
                            names.join(", "),
                            r.floor.macro_value.map_or("–".into(), |f| format!("{f:.3}"))
                        ));
                    }
                }
            }
        }
        if models
            .iter()
            .flat_map(|m| of(m))
            .flat_map(|r| &r.methods)
            .any(|v| v.verdict.ci_basis == Some(CiBasis::Countries))
        {
            notes.push(format!(
                "{b}: ᶜ marks intervals that resample the countries (a country's value cannot be resampled over items here); such a cell is judged by the interval of its difference to the floor on the same resamples."
            ));
        }
        let sets: Vec<(&str, usize)> = models
            .iter()
            .filter_map(|m| of(m).first().map(|r| (*m, r.macro_countries.len())))
            .collect();
        if models
            .iter()
            .filter_map(|m| of(m).first())
            .any(|r| r.macro_countries != first.macro_countries)
        {
            notes.push(format!(
                "{b}: the models' macro values average over different countries ({}).",
                sets.iter()
                    .map(|(m, n)| format!("{m}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    // What the table says, in words: per model and benchmark, the methods whose whole interval
    // is on the better side of the floor, or a plain sentence that none is.
    out.push_str("\n");
    for m in &models {
        for b in &benches {
            let Some(group) = cell.get(&(m.to_string(), b.to_string())) else {
                continue;
            };
            // A method that ran again in a later run of the group counts once (the cell's).
            let mut verdicts: Vec<&VerdictFile> = Vec::new();
            for v in group
                .iter()
                .flat_map(|r| &r.methods)
                .map(|v| &v.verdict)
                .filter(|v| v.same_as.is_none())
            {
                if verdicts.iter().all(|w| w.method != v.method) {
                    verdicts.push(v);
                }
            }
            if verdicts.iter().all(|v| v.macro_ci95.is_none()) {
                // No interval to judge by (e.g. VSM13's indices cannot be resampled over items).
                let ahead: Vec<&str> = verdicts
                    .iter()
                    .filter(|v| v.beats_floor == Some(true))
                    .map(|v| v.method.as_str())
                    .collect();
                out.push_str(&format!(
                    "- {m}, {b}: no intervals, so no method can be called better than chance; by point value ahead of the uniform floor: {}.\n",
                    if ahead.is_empty() { "none".to_string() } else { ahead.join(", ") }
                ));
                continue;
            }
            let clear: Vec<&str> = verdicts
                .iter()
                .filter(|v| v.clearly_beats_floor == Some(true))
                .map(|v| v.method.as_str())
                .collect();
            let mut line = if clear.is_empty() {
                format!("- {m}, {b}: no method is clearly better than the uniform floor (chance)")
            } else {
                format!(
                    "- {m}, {b}: clearly better than the uniform floor: {}",
                    clear.join(", ")
                )
            };
            // Against vanilla: the paired interval of the difference, where the run has one.
            let lower = group[0].metric.lower_is_better;
            // A gain is named with its size (a tiny one can be clear), as the interval of the
            // gain in the metric's own units, better direction positive.
            let gains: Vec<(&VerdictFile, (f64, f64))> = verdicts
                .iter()
                .filter_map(|v| {
                    let (a, b) = v.vanilla_diff_ci95?;
                    Some((*v, if lower { (-b, -a) } else { (a, b) }))
                })
                .collect();
            if !gains.is_empty() {
                let metric = &group[0].metric.name;
                let ahead: Vec<String> = gains
                    .iter()
                    .filter(|(_, (lo, _))| *lo > 0.0)
                    .map(|(v, (lo, hi))| {
                        let pct = v
                            .gain_vs_vanilla_pct
                            .map_or(String::new(), |p| format!("{p:+.1}%, "));
                        format!("{} ({pct}gain {lo:.3} to {hi:.3} {metric})", v.method)
                    })
                    .collect();
                line.push_str(&if ahead.is_empty() {
                    "; none clearly better than vanilla".to_string()
                } else {
                    format!(
                        "; clearly better than vanilla (95% interval of the gain): {}",
                        ahead.join(", ")
                    )
                });
            }
            // Methods without an interval in a group that has some (e.g. a costly method run
            // on too few countries for a country bootstrap) are named, never judged.
            let bare: Vec<String> = verdicts
                .iter()
                .filter(|v| v.macro_ci95.is_none() && v.macro_value.is_some())
                .map(|v| {
                    let side = match v.beats_floor {
                        Some(true) => "ahead of",
                        Some(false) => "not ahead of",
                        None => "unknown against",
                    };
                    format!("{} ({side} its run's floor by point value)", v.method)
                })
                .collect();
            if !bare.is_empty() {
                line.push_str(&format!(
                    "; no interval, so not judged: {}",
                    bare.join(", ")
                ));
            }
            out.push_str(&line);
            out.push_str(".\n");
        }
    }
    for n in notes {
        out.push_str(&format!("\n{n}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::write_report;

    fn run(bench: &str, floor: f64, methods: &[(&str, f64)]) -> ReportInput {
        let usa = CountryCode::new("USA").unwrap();
        ReportInput {
            benchmark: bench.into(),
            metric: MetricInfo {
                name: "MIS",
                lower_is_better: true,
            },
            model: "m.gguf".into(),
            methods: methods.iter().map(|(m, _)| m.to_string()).collect(),
            scores: methods
                .iter()
                .map(|(m, v)| {
                    (
                        m.to_string(),
                        CountryScore {
                            country: usa,
                            value: *v,
                            n_items: 30,
                            components: vec![],
                            secondary: vec![("jsd".into(), 0.1)],
                        },
                    )
                })
                .collect(),
            floors: vec![(usa, floor)],
            floor_label: "uniform (p = 1/n)".into(),
            bootstrap: vec![],
            same_as_parent: vec![("disca+prior".into(), "disca".into())],
        }
    }

    fn written(input: &ReportInput) -> (tempfile::TempDir, ScoresFile) {
        let dir = tempfile::tempdir().unwrap();
        write_report(dir.path(), input).unwrap();
        let s = load_scores(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn runs_of_one_benchmark_share_a_table_and_mixes_are_refused() {
        let (_a, a) = written(&run(
            "multitp-disca",
            0.5,
            &[("vanilla", 0.55), ("disca", 0.46), ("disca+prior", 0.46)],
        ));
        let (_b, b) = written(&run("multitp-disca", 0.5, &[("vanilla", 0.44)]));
        let (input, notes) =
            compare_runs(&[("gemma".into(), a.clone()), ("smol".into(), b)]).unwrap();
        assert_eq!(
            input.methods,
            ["gemma: vanilla", "gemma: disca", "smol: vanilla"],
            "views equal to their method are left out"
        );
        assert!(notes.is_empty());
        let md = crate::report::render_summary(&input);
        assert!(
            md.contains("| USA | 0.550 | 0.460 | **0.440** | 0.500 | 30 |"),
            "{md}"
        );
        let (_c, c) = written(&run("goqa", 0.9, &[("vanilla", 0.8)]));
        let e = compare_runs(&[("gemma".into(), a.clone()), ("g".into(), c)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("g holds goqa results and gemma multitp-disca"),
            "{e}"
        );
        let (_d, d) = written(&run("multitp-disca", 0.45, &[("vanilla", 0.5)]));
        assert_eq!(
            compare_runs(&[("gemma".into(), a), ("other".into(), d)])
                .unwrap()
                .1
                .len(),
            1,
            "differing floors are noted"
        );
        let e = load_scores(Path::new("/nonexistent-run-dir"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no scores.json"), "{e}");
    }

    #[test]
    fn grid_puts_models_in_columns_and_marks_cells_against_the_floor() {
        let (_a, a) = written(&run(
            "multitp-disca",
            0.5,
            &[("vanilla", 0.55), ("disca", 0.46)],
        ));
        let (_b, b) = written(&run("multitp-disca", 0.5, &[("vanilla", 0.44)]));
        let (_c, c) = written(&run("goqa", 0.9, &[("vanilla", 0.8)]));
        let md = grid_markdown(&[
            ("gemma".into(), a.clone()),
            ("smol".into(), b),
            ("gemma".into(), c),
        ])
        .unwrap();
        assert!(
            md.starts_with("| benchmark | method | gemma | smol |"),
            "{md}"
        );
        assert!(
            md.contains("| multitp-disca (MIS ↓) | uniform floor | 0.500 | 0.500 |"),
            "{md}"
        );
        assert!(
            md.contains("| | disca | 0.460 (no interval; ahead of floor by point value) | – |"),
            "{md}"
        );
        assert!(
            md.contains("- smol, multitp-disca: no intervals, so no method can be called better than chance; by point value ahead of the uniform floor: vanilla."),
            "runs without intervals are never called better than chance: {md}"
        );
        assert!(
            md.contains("| goqa (MIS ↓) | uniform floor | 0.900 | – |"),
            "{md}"
        );
        let mut sure = a.clone();
        let disca = &mut sure.methods[1].verdict;
        assert_eq!(disca.method, "disca");
        (disca.macro_ci95, disca.clearly_beats_floor) = (Some((0.42, 0.48)), Some(true));
        disca.vanilla_diff_ci95 = Some((-0.12, -0.02));
        let md = grid_markdown(&[("gemma".into(), sure.clone())]).unwrap();
        assert!(
            md.contains("; clearly better than vanilla (95% interval of the gain): disca (")
                && md.contains("%, gain 0.020 to 0.120 MIS); no interval, so not judged: vanilla (not ahead of its run's floor by point value)."),
            "a gain is named with its size; a method without an interval beside ones with is named, not judged: {md}"
        );
        sure.methods[1].verdict.vanilla_diff_ci95 = Some((-0.12, 0.02));
        let md = grid_markdown(&[("gemma".into(), sure)]).unwrap();
        assert!(md.contains("; none clearly better than vanilla;"), "{md}");
        assert!(
            md.contains("| | disca | **0.460 [0.420, 0.480]** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- gemma, multitp-disca: clearly better than the uniform floor: disca; none"
            ),
            "{md}"
        );
        let (_p, p) = written(&run("multitp-disca", 0.45, &[("palette", 0.47)]));
        let md = grid_markdown(&[("gemma".into(), a.clone()), ("gemma".into(), p)]).unwrap();
        assert!(
            md.contains("| | palette | 0.470 (no interval; not ahead of floor) |"),
            "judged against its own run's floor (0.45), not the table's (0.5): {md}"
        );
        assert!(
            md.contains(
                "multitp-disca on gemma: palette ran on other items (its own uniform floor 0.450"
            ),
            "{md}"
        );
        let e = grid_markdown(&[("gemma".into(), a.clone()), ("gemma".into(), a.clone())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "two multitp-disca runs labelled gemma both hold vanilla on the same countries"
            ),
            "{e}"
        );
        // Vanilla again beside a method run on other countries: shown once, the other noted.
        let (_w, mut w) = written(&run(
            "multitp-disca",
            0.5,
            &[("vanilla", 0.45), ("wvs-profile", 0.47)],
        ));
        w.macro_countries = vec![CountryCode::new("DEU").unwrap()];
        let md = grid_markdown(&[("gemma".into(), a.clone()), ("gemma".into(), w)]).unwrap();
        assert!(
            md.contains("| | vanilla | 0.550 (no interval; not ahead of floor) |"),
            "{md}"
        );
        assert!(
            md.contains("| | wvs-profile | 0.470 (no interval; ahead of floor by point value) |"),
            "{md}"
        );
        assert!(
            md.contains("multitp-disca on gemma: vanilla also ran beside wvs-profile on their 1 countries (macro 0.450)"),
            "{md}"
        );
        assert!(
            md.contains("- gemma, multitp-disca: no intervals, so no method can be called better than chance; by point value ahead of the uniform floor: disca, wvs-profile."),
            "each method named once: {md}"
        );

        // Runs of one benchmark measured with other options are not one row.
        let (_o, mut o) = written(&run("multitp-disca", 0.5, &[("disca", 0.4)]));
        let mut a2 = a.clone();
        a2.benchmark_options = Some(serde_json::json!({"s_align": "jsd"}));
        o.benchmark_options = Some(serde_json::json!({"s_align": "argmax"}));
        let e = grid_markdown(&[("gemma".into(), a2), ("smol".into(), o)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("multitp-disca runs differ in benchmark options"),
            "{e}"
        );

        let v = |value: f64, ci: (f64, f64), clearly: bool| VerdictFile {
            method: "m".into(),
            same_as: None,
            macro_value: Some(value),
            macro_ci95: Some(ci),
            ci_basis: None,
            floor_diff_ci95: None,
            beats_floor: None,
            clearly_beats_floor: Some(clearly),
            gain_vs_vanilla_pct: None,
            wins_vs_vanilla: None,
            vanilla_diff_ci95: None,
        };
        assert_eq!(
            grid_cell(&v(0.4, (0.35, 0.45), true), Some(0.5), true),
            "**0.400 [0.350, 0.450]**"
        );
        assert_eq!(
            grid_cell(&v(0.48, (0.4, 0.55), false), Some(0.5), true),
            "0.480 [0.400, 0.550] ≈ floor"
        );
        assert_eq!(
            grid_cell(&v(0.6, (0.55, 0.65), false), Some(0.5), true),
            "0.600 [0.550, 0.650] < floor"
        );
        assert_eq!(
            grid_cell(&v(0.5, (0.45, 0.55), false), Some(0.5), false),
            "0.500 [0.450, 0.550] ≈ floor"
        );
        assert_eq!(
            grid_cell(&v(0.35, (0.3, 0.4), false), Some(0.5), false),
            "0.350 [0.300, 0.400] < floor"
        );
        // A country bootstrap is judged by its difference to the floor, not by the macro
        // interval (which here includes the floor's point value).
        let by_countries = |diff: (f64, f64), clearly: bool| VerdictFile {
            ci_basis: Some(CiBasis::Countries),
            floor_diff_ci95: Some(diff),
            ..v(280.0, (250.0, 310.0), clearly)
        };
        assert_eq!(
            grid_cell(&by_countries((-12.0, -3.0), true), Some(288.0), true),
            "**280.000 [250.000, 310.000] ᶜ**"
        );
        assert_eq!(
            grid_cell(&by_countries((-12.0, 3.0), false), Some(288.0), true),
            "280.000 [250.000, 310.000] ᶜ ≈ floor"
        );
        assert_eq!(
            grid_cell(&by_countries((2.0, 9.0), false), Some(288.0), true),
            "280.000 [250.000, 310.000] ᶜ < floor"
        );
        // Too few countries for a country bootstrap: no interval, never bold, the point value's
        // side of the floor in words.
        let bare = |beats: bool| VerdictFile {
            macro_ci95: None,
            beats_floor: Some(beats),
            clearly_beats_floor: None,
            ..v(325.0, (0.0, 0.0), false)
        };
        assert_eq!(
            grid_cell(&bare(false), Some(321.5), true),
            "325.000 (no interval; not ahead of floor)"
        );
        assert_eq!(
            grid_cell(&bare(true), Some(330.0), true),
            "325.000 (no interval; ahead of floor by point value)"
        );
    }
}
