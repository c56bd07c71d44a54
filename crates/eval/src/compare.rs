//! Several runs in one table: `scores.json` files read back and merged into one report.
//!
//! Each run's methods become columns `<label>: <method>` (views that equal their method on a
//! run are left out, as in that run's own summary). Runs must be of one benchmark and one
//! metric; the uniform floor is the first run's, and the comparison says when the runs' floors
//! differ (other items or limits).

use crate::report::{ReportInput, SCORES_SCHEMA};
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
    let file: ScoresFile = serde_json::from_str(&text).map_err(|e| {
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
}
