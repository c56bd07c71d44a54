//! Run reports: `summary.md` and SVG plots.
//!
//! [`render_summary`] turns a [`ReportInput`] into Markdown: a per-country table of the headline
//! metric (one column per method, the reference floor and the item count) closed by a macro row,
//! then per-dimension tables (model vs human) and secondary metrics where the benchmark has them.
//! [`write_report`] writes that summary and the plots listed by [`plot_file_names`] into
//! `dir/plots/`: grouped bars of the metric per country and, for scores with components, one
//! radar chart per country. The plots are drawn with plotters' SVG backend, which writes `<text>`
//! elements and so needs no system fonts. Output is deterministic (no timestamps).

use crate::{BenchError, CountryScore, MetricInfo};
use culturesteer_core::CountryCode;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReportInput {
    /// Benchmark name ("multitp", "goqa", "vsm13", ...), used in titles.
    pub benchmark: String,
    /// The headline metric and its direction.
    pub metric: MetricInfo,
    /// Model description line (file or URL, SHA-256).
    pub model: String,
    /// Methods in display order. Methods that appear in `scores` but not here are shown after
    /// these, in order of first appearance.
    pub methods: Vec<String>,
    /// (method, score) for every evaluated country. When a (method, country) pair appears more
    /// than once, the last entry wins.
    pub scores: Vec<(String, CountryScore)>,
    /// Reference predictor per country (uniform answers: the constant-0.5 floor on MultiTP).
    pub floors: Vec<(CountryCode, f64)>,
    /// Column and legend label of the floor.
    pub floor_label: String,
    /// Bootstrap replicates of the headline metric per (method, country): the items resampled
    /// with replacement, the same number of replicates for every pair. Empty: no intervals.
    #[serde(skip)]
    pub bootstrap: Vec<(String, CountryCode, Vec<f64>)>,
    /// (view, method) pairs where the view equals its method on every country of the run (a
    /// prior before its warm-up): not a separate result here.
    pub same_as_parent: Vec<(String, String)>,
}

/// The placeholder for a missing value in tables.
const MISSING: &str = "–";

/// Writes `summary.md` and the plots (into `dir/plots/`) into `dir`.
///
/// The directories are created when missing. Every failure is a [`BenchError::Io`] naming the
/// file (or directory) concerned; drawing failures are reported the same way.
pub fn write_report(dir: &Path, input: &ReportInput) -> Result<(), BenchError> {
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|source| io_err(&plots, source))?;
    let view = View::new(input);
    for plot in plot_list(input, &view) {
        let path = plots.join(&plot.file);
        let svg = match &plot.kind {
            PlotKind::Bars => bars_svg(input, &view),
            PlotKind::Radar(country) => radar_svg(input, &view, *country),
        }
        .map_err(|msg| io_err(&path, std::io::Error::other(msg)))?;
        std::fs::write(&path, svg).map_err(|source| io_err(&path, source))?;
    }
    let path = dir.join("scores.json");
    let json = serde_json::to_string_pretty(&scores_json(input))
        .map_err(|e| io_err(&path, std::io::Error::other(e)))?;
    std::fs::write(&path, json + "\n").map_err(|source| io_err(&path, source))?;
    let path = dir.join("summary.md");
    std::fs::write(&path, render(input, &view)).map_err(|source| io_err(&path, source))
}

/// The plot files [`write_report`] writes, relative to the report directory
/// (`plots/<metric>_by_country.svg`, then `plots/radar_<ISO3>.svg` per country with at least
/// three components, sorted by code). Empty when there are no scores.
pub fn plot_file_names(input: &ReportInput) -> Vec<String> {
    plot_list(input, &View::new(input))
        .into_iter()
        .map(|p| format!("plots/{}", p.file))
        .collect()
}

/// The Markdown summary: one row per country (sorted by code), one column per method plus the
/// floor and the item count, and a macro row (unweighted mean over the countries every method
/// has); the best method of each row is bold. Then per-dimension tables, secondary metrics and
/// links to the plots, when present.
pub fn render_summary(input: &ReportInput) -> String {
    render(input, &View::new(input))
}

fn io_err(path: &Path, source: std::io::Error) -> BenchError {
    BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Indexed view of the input
// ---------------------------------------------------------------------------------------------

/// The input indexed by method and country.
struct View<'a> {
    /// Display order: `input.methods` (deduplicated), then methods only found in scores.
    methods: Vec<&'a str>,
    /// Countries with a score or a floor, sorted.
    countries: Vec<CountryCode>,
    /// (method index, country) → score.
    cell: BTreeMap<(usize, CountryCode), &'a CountryScore>,
    floor: BTreeMap<CountryCode, f64>,
}

impl<'a> View<'a> {
    fn new(input: &'a ReportInput) -> Self {
        // Views equal to their method on this run are not separate results: no column.
        let mut methods: Vec<&str> = Vec::new();
        for m in input
            .methods
            .iter()
            .map(String::as_str)
            .chain(input.scores.iter().map(|(m, _)| m.as_str()))
        {
            if !methods.contains(&m) && !input.same_as_parent.iter().any(|(v, _)| v == m) {
                methods.push(m);
            }
        }
        let mut cell = BTreeMap::new();
        let mut countries = BTreeSet::new();
        for (m, s) in &input.scores {
            if let Some(i) = methods.iter().position(|x| *x == m.as_str()) {
                cell.insert((i, s.country), s);
                countries.insert(s.country);
            }
        }
        let mut floor = BTreeMap::new();
        for (c, v) in &input.floors {
            floor.insert(*c, *v);
            countries.insert(*c);
        }
        View {
            methods,
            countries: countries.into_iter().collect(),
            cell,
            floor,
        }
    }

    fn get(&self, method: usize, country: CountryCode) -> Option<&'a CountryScore> {
        self.cell.get(&(method, country)).copied()
    }

    fn has_scores(&self) -> bool {
        !self.cell.is_empty()
    }

    /// Countries with a score for every method.
    fn complete_countries(&self) -> Vec<CountryCode> {
        self.countries
            .iter()
            .copied()
            .filter(|&c| (0..self.methods.len()).all(|m| self.get(m, c).is_some()))
            .collect()
    }

    /// Component names of a country across methods, in order of first appearance.
    fn component_names(&self, country: CountryCode) -> Vec<&'a str> {
        let mut names: Vec<&str> = Vec::new();
        for m in 0..self.methods.len() {
            if let Some(s) = self.get(m, country) {
                for c in &s.components {
                    if !names.contains(&c.name.as_str()) {
                        names.push(c.name.as_str());
                    }
                }
            }
        }
        names
    }

    /// The human value of a component: the first method's that has one.
    fn human(&self, country: CountryCode, name: &str) -> Option<f64> {
        (0..self.methods.len())
            .filter_map(|m| self.get(m, country))
            .flat_map(|s| s.components.iter())
            .find(|c| c.name == name && c.human.is_some())
            .and_then(|c| c.human)
    }

    fn model(&self, method: usize, country: CountryCode, name: &str) -> Option<f64> {
        self.get(method, country)
            .and_then(|s| s.components.iter().find(|c| c.name == name))
            .map(|c| c.model)
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

fn fmt3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".to_string()
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(fmt3).unwrap_or_else(|| MISSING.to_string())
}

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `true` when `v` is strictly better than the reference floor (always, without a floor).
fn beats(v: f64, floor: Option<f64>, lower_is_better: bool) -> bool {
    match floor {
        Some(f) if lower_is_better => v < f,
        Some(f) => v > f,
        None => true,
    }
}

/// Formats a row of method values, bolding the best (ties at 3 decimals all bold) — unless it
/// does not beat the row's floor: a method no better than the uniform predictor is never bold.
fn method_cells(values: &[Option<f64>], lower_is_better: bool, floor: Option<f64>) -> Vec<String> {
    let best = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(|a, b| {
            if (lower_is_better && b < a) || (!lower_is_better && b > a) {
                b
            } else {
                a
            }
        });
    let best_txt = best.map(fmt3);
    values
        .iter()
        .map(|v| match v {
            Some(v) if Some(fmt3(*v)) == best_txt && beats(*v, floor, lower_is_better) => {
                format!("**{}**", fmt3(*v))
            }
            other => fmt_opt(*other),
        })
        .collect()
}

fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

fn direction(metric: &MetricInfo) -> &'static str {
    if metric.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    }
}

fn render(input: &ReportInput, view: &View) -> String {
    let mut s = format!("# {} — {}\n\n", input.benchmark, input.metric.name);
    let _ = writeln!(s, "Model: {}\n", input.model);
    if !view.has_scores() {
        s.push_str("No results yet: no (method, country) pair has been scored.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "Metric: **{}** ({}). Bold marks the best method in each row when it beats the reference predictor; {} marks a method without a score for that country.\n",
        input.metric.name,
        direction(&input.metric),
        MISSING
    );
    let has_floor = !view.floor.is_empty();
    if has_floor {
        let _ = writeln!(
            s,
            "Column *{}*: the score of the reference predictor on the same items (not a method, never bold).\n",
            md(&input.floor_label)
        );
    }

    // Per-country table.
    s.push_str("## Per country\n\n| Country |");
    for m in &view.methods {
        let _ = write!(s, " {} |", md(m));
    }
    if has_floor {
        let _ = write!(s, " {} |", md(&input.floor_label));
    }
    s.push_str(" n items |\n|---|");
    for _ in &view.methods {
        s.push_str("---:|");
    }
    if has_floor {
        s.push_str("---:|");
    }
    s.push_str("---:|\n");
    let lower = input.metric.lower_is_better;
    for &c in &view.countries {
        let values: Vec<Option<f64>> = (0..view.methods.len())
            .map(|m| view.get(m, c).map(|x| x.value))
            .collect();
        let _ = write!(s, "| {c} |");
        for cell in method_cells(&values, lower, view.floor.get(&c).copied()) {
            let _ = write!(s, " {cell} |");
        }
        if has_floor {
            let _ = write!(s, " {} |", fmt_opt(view.floor.get(&c).copied()));
        }
        let ns: Vec<usize> = (0..view.methods.len())
            .filter_map(|m| view.get(m, c))
            .map(|x| x.n_items)
            .collect();
        let n_txt = match (ns.iter().min(), ns.iter().max()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => MISSING.to_string(),
        };
        let _ = writeln!(s, " {n_txt} |");
    }
    // Macro row.
    let complete = view.complete_countries();
    let macro_values: Vec<Option<f64>> = (0..view.methods.len())
        .map(|m| {
            let xs: Vec<f64> = complete
                .iter()
                .filter_map(|&c| view.get(m, c))
                .map(|x| x.value)
                .collect();
            mean(&xs)
        })
        .collect();
    let macro_floor = macro_floor_of(view, &complete);
    s.push_str("| **macro** |");
    for cell in method_cells(&macro_values, lower, macro_floor) {
        let _ = write!(s, " {cell} |");
    }
    if has_floor {
        let _ = write!(s, " {} |", fmt_opt(macro_floor));
    }
    let _ = writeln!(s, " ({} countries) |\n", complete.len());
    let listed: Vec<String> = complete.iter().map(|c| c.to_string()).collect();
    if complete.is_empty() {
        s.push_str(
            "**macro**: no country has a score for every method, so there is no macro mean.\n",
        );
    } else {
        let _ = write!(
            s,
            "**macro**: unweighted mean over the {} countries that every method has ({})",
            complete.len(),
            listed.join(", ")
        );
        let excluded: Vec<String> = view
            .countries
            .iter()
            .filter(|c| !complete.contains(c))
            .map(|c| c.to_string())
            .collect();
        if !excluded.is_empty() {
            let _ = write!(
                s,
                "; left out because some method lacks them: {}",
                excluded.join(", ")
            );
        }
        s.push_str(".\n");
    }

    render_verdict(&mut s, input, &complete, macro_floor);
    render_intervals(&mut s, input, view, &complete);
    render_components(&mut s, view);
    render_secondary(&mut s, view);

    let plots = plot_list(input, view);
    if !plots.is_empty() {
        s.push_str("\n## Plots\n\n");
        for p in plots {
            let _ = writeln!(s, "- [{0}](plots/{0})", p.file);
        }
    }
    s
}

/// The bootstrap replicates of (method, country), the last ones given.
fn replicates_of<'a>(
    input: &'a ReportInput,
    method: &str,
    country: CountryCode,
) -> Option<&'a [f64]> {
    input
        .bootstrap
        .iter()
        .rev()
        .find(|(m, c, _)| m == method && *c == country)
        .map(|(_, _, r)| r.as_slice())
}

/// The 2.5th and 97.5th percentiles of bootstrap replicates (`None` for fewer than 20).
pub fn percentile_ci(reps: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = reps.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 20 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    Some((at(0.025), at(0.975)))
}

/// Bootstrap replicates of the macro mean of `method` over `countries` (replicate b averages
/// the countries' b-th replicates); `None` when a country has none.
fn macro_replicates(
    input: &ReportInput,
    method: &str,
    countries: &[CountryCode],
) -> Option<Vec<f64>> {
    let per: Vec<&[f64]> = countries
        .iter()
        .map(|&c| replicates_of(input, method, c))
        .collect::<Option<Vec<_>>>()?;
    let b = per.iter().map(|r| r.len()).min()?;
    if b == 0 || per.is_empty() {
        return None;
    }
    Some(
        (0..b)
            .map(|k| per.iter().map(|r| r[k]).sum::<f64>() / per.len() as f64)
            .collect(),
    )
}

/// One method's standing on a run (the "What the numbers say" section and `scores.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodVerdict {
    pub method: String,
    /// The method this view equals on every country of the run, if any.
    pub same_as: Option<String>,
    /// Unweighted mean over the countries every method has.
    pub macro_value: Option<f64>,
    /// Percentile bootstrap interval of the macro value.
    pub macro_ci95: Option<(f64, f64)>,
    /// Strictly better than the uniform predictor's macro value (`None` without a floor).
    pub beats_floor: Option<bool>,
    /// The whole interval is on the better side of the floor.
    pub clearly_beats_floor: Option<bool>,
    /// Relative improvement of the macro value over vanilla, in percent.
    pub gain_vs_vanilla_pct: Option<f64>,
    /// Countries where the method is better than vanilla.
    pub wins_vs_vanilla: Option<usize>,
}

/// The macro floor over the countries every method has (`None` when one lacks a floor).
fn macro_floor_of(view: &View, complete: &[CountryCode]) -> Option<f64> {
    let floors: Vec<f64> = complete
        .iter()
        .filter_map(|c| view.floor.get(c).copied())
        .collect();
    if !complete.is_empty() && floors.len() == complete.len() {
        mean(&floors)
    } else {
        None
    }
}

/// The standing of every method (display order) over the countries every method has.
pub fn verdicts(input: &ReportInput) -> Vec<MethodVerdict> {
    let view = View::new(input);
    let complete = view.complete_countries();
    let lower = input.metric.lower_is_better;
    let better = |a: f64, b: f64| if lower { a < b } else { a > b };
    let macro_of = |m: usize| {
        mean(
            &complete
                .iter()
                .filter_map(|&c| view.get(m, c))
                .map(|x| x.value)
                .collect::<Vec<_>>(),
        )
    };
    let macro_floor = macro_floor_of(&view, &complete);
    let vanilla = view.methods.iter().position(|m| *m == "vanilla");
    let same_as = input.same_as_parent.iter().map(|(v, p)| MethodVerdict {
        method: v.clone(),
        same_as: Some(p.clone()),
        macro_value: None,
        macro_ci95: None,
        beats_floor: None,
        clearly_beats_floor: None,
        gain_vs_vanilla_pct: None,
        wins_vs_vanilla: None,
    });
    view.methods
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            let macro_value = if complete.is_empty() { None } else { macro_of(mi) };
            let macro_ci95 = macro_replicates(input, m, &complete).as_deref().and_then(percentile_ci);
            let beats_floor = macro_floor.zip(macro_value).map(|(f, v)| better(v, f));
            let clearly_beats_floor = macro_floor.zip(macro_ci95).map(|(f, (a, b))| if lower { b < f } else { a > f });
            let (gain, wins) = match (vanilla, macro_value) {
                (Some(vi), Some(v)) if vi != mi => match macro_of(vi) {
                    Some(vv) if vv != 0.0 => (
                        Some(if lower { (vv - v) / vv } else { (v - vv) / vv } * 100.0),
                        Some(
                            complete
                                .iter()
                                .filter(|&&c| matches!((view.get(mi, c), view.get(vi, c)), (Some(a), Some(b)) if better(a.value, b.value)))
                                .count(),
                        ),
                    ),
                    _ => (None, None),
                },
                _ => (None, None),
            };
            MethodVerdict {
                method: m.to_string(),
                same_as: input.same_as_parent.iter().find(|(v, _)| v == m).map(|(_, p)| p.clone()),
                macro_value,
                macro_ci95,
                beats_floor,
                clearly_beats_floor,
                gain_vs_vanilla_pct: gain,
                wins_vs_vanilla: wins,
            }
        })
        .chain(same_as)
        .collect()
}

/// What the numbers mean: each method against the uniform floor and against vanilla, with the
/// bootstrap interval of the macro value, and the views that cannot differ from their method.
fn render_verdict(
    s: &mut String,
    input: &ReportInput,
    complete: &[CountryCode],
    macro_floor: Option<f64>,
) {
    if complete.is_empty() {
        return;
    }
    s.push_str("\n## What the numbers say\n\n");
    let mut any_beats = false;
    for v in verdicts(input) {
        if let Some(parent) = &v.same_as {
            let _ = writeln!(s, "- **{}** equals {} on every country of this run, so it is not a separate result here (no column).", md(&v.method), md(parent));
            continue;
        }
        let Some(value) = v.macro_value else { continue };
        let ci_txt = v
            .macro_ci95
            .map(|(a, b)| format!(" (95% CI {} – {})", fmt3(a), fmt3(b)))
            .unwrap_or_default();
        let mut line = format!(
            "- **{}**: macro {} {}{ci_txt}",
            md(&v.method),
            input.metric.name,
            fmt3(value)
        );
        if let (Some(f), Some(beats)) = (macro_floor, v.beats_floor) {
            if beats {
                any_beats = true;
                let _ = write!(line, "; better than the uniform predictor ({})", fmt3(f));
                if v.clearly_beats_floor == Some(false) {
                    line.push_str(", but its interval includes the floor");
                }
            } else {
                let _ = write!(line, "; **not better than the uniform predictor** ({}): answering 1/n on every item scores as well", fmt3(f));
            }
        }
        if let (Some(g), Some(w)) = (v.gain_vs_vanilla_pct, v.wins_vs_vanilla) {
            let _ = write!(
                line,
                "; gain vs vanilla {g:+.1}%, better than vanilla in {w}/{} countries",
                complete.len()
            );
        }
        line.push('.');
        let _ = writeln!(s, "{line}");
    }
    if macro_floor.is_some() && !any_beats {
        s.push_str("\nNo method beats the uniform predictor on this run, so no method is bold: on this model the differences between methods are not cultural alignment.\n");
    }
    if !input.bootstrap.is_empty() {
        let b = input
            .bootstrap
            .iter()
            .map(|(_, _, r)| r.len())
            .min()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "\nIntervals: 95% percentile bootstrap over items ({b} resamples per country, the macro interval resampling every country), bias-corrected: the replicates are shifted so that their mean is the point estimate, because resampling noise alone inflates a norm such as MIS."
        );
    }
}

/// Version of the `scores.json` layout; bumped on any change that breaks readers.
pub const SCORES_SCHEMA: &str = "culturesteer.scores/1";

/// The machine-readable scores of a run (`scores.json`): benchmark, metric, model, the floor,
/// and per method its verdict (macro value, interval, floor, vanilla) and per country its value,
/// interval, item count, components and diagnostics.
pub fn scores_json(input: &ReportInput) -> serde_json::Value {
    let view = View::new(input);
    let complete = view.complete_countries();
    let methods: Vec<serde_json::Value> = verdicts(input)
        .into_iter()
        .enumerate()
        .map(|(mi, v)| {
            let countries: serde_json::Map<String, serde_json::Value> = view
                .countries
                .iter()
                .filter_map(|&c| {
                    let sc = if v.same_as.is_some() {
                        None
                    } else {
                        view.get(mi, c)
                    }?;
                    let ci = replicates_of(input, &v.method, c).and_then(percentile_ci);
                    let diagnostics: serde_json::Map<String, serde_json::Value> = sc
                        .secondary
                        .iter()
                        .map(|(k, x)| (k.clone(), serde_json::json!(x)))
                        .collect();
                    Some((
                        c.to_string(),
                        serde_json::json!({
                            "value": sc.value,
                            "ci95": ci,
                            "n_items": sc.n_items,
                            "components": sc.components,
                            "diagnostics": diagnostics,
                        }),
                    ))
                })
                .collect();
            serde_json::json!({ "verdict": v, "countries": countries })
        })
        .collect();
    let floors: serde_json::Map<String, serde_json::Value> = view
        .floor
        .iter()
        .map(|(c, v)| (c.to_string(), serde_json::json!(v)))
        .collect();
    serde_json::json!({
        "schema": SCORES_SCHEMA,
        "benchmark": input.benchmark,
        "metric": input.metric,
        "model": input.model,
        "macro_countries": complete.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "floor": { "label": input.floor_label, "macro": macro_floor_of(&view, &complete), "countries": floors },
        "methods": methods,
    })
}

/// A Markdown table header: the leading columns (the first left-aligned, the others
/// right-aligned), then one right-aligned column per method.
fn method_table_header(s: &mut String, lead: &[&str], methods: &[&str]) {
    s.push('|');
    for l in lead {
        let _ = write!(s, " {l} |");
    }
    for m in methods {
        let _ = write!(s, " {} |", md(m));
    }
    s.push_str("\n|---|");
    for _ in 1..lead.len() {
        s.push_str("---:|");
    }
    for _ in methods {
        s.push_str("---:|");
    }
    s.push('\n');
}

/// Per-country bootstrap intervals of the headline metric.
fn render_intervals(s: &mut String, input: &ReportInput, view: &View, complete: &[CountryCode]) {
    if input.bootstrap.is_empty() || complete.is_empty() {
        return;
    }
    s.push_str("\n## 95% intervals per country\n\n");
    method_table_header(s, &["Country"], &view.methods);
    for &c in &view.countries {
        let _ = write!(s, "| {c} |");
        for m in &view.methods {
            let ci = replicates_of(input, m, c).and_then(percentile_ci);
            let _ = write!(
                s,
                " {} |",
                ci.map(|(a, b)| format!("{}–{}", fmt3(a), fmt3(b)))
                    .unwrap_or_else(|| MISSING.to_string())
            );
        }
        s.push('\n');
    }
}

fn render_components(s: &mut String, view: &View) {
    let with: Vec<CountryCode> = view
        .countries
        .iter()
        .copied()
        .filter(|&c| !view.component_names(c).is_empty())
        .collect();
    if with.is_empty() {
        return;
    }
    s.push_str(
        "\n## Per dimension\n\nValues on each dimension's own scale; human = the survey target.\n",
    );
    for c in with {
        let _ = write!(s, "\n### {c}\n\n");
        method_table_header(s, &["Dimension", "human"], &view.methods);
        for name in view.component_names(c) {
            let _ = write!(s, "| {} | {} |", md(name), fmt_opt(view.human(c, name)));
            for m in 0..view.methods.len() {
                let _ = write!(s, " {} |", fmt_opt(view.model(m, c, name)));
            }
            s.push('\n');
        }
    }
}

fn render_secondary(s: &mut String, view: &View) {
    let mut names: Vec<&str> = Vec::new();
    for sc in view.cell.values() {
        for (n, _) in &sc.secondary {
            if !names.contains(&n.as_str()) {
                names.push(n.as_str());
            }
        }
    }
    if names.is_empty() {
        return;
    }
    s.push_str("\n## Secondary metrics\n\n| Country | Method |");
    for n in &names {
        let _ = write!(s, " {} |", md(n));
    }
    s.push_str("\n|---|---|");
    for _ in &names {
        s.push_str("---:|");
    }
    s.push('\n');
    for &c in &view.countries {
        for (mi, m) in view.methods.iter().enumerate() {
            let Some(sc) = view.get(mi, c) else { continue };
            if sc.secondary.is_empty() {
                continue;
            }
            let _ = write!(s, "| {c} | {} |", md(m));
            for n in &names {
                let v = sc
                    .secondary
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| *v);
                let _ = write!(s, " {} |", fmt_opt(v));
            }
            s.push('\n');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------------------------

enum PlotKind {
    Bars,
    Radar(CountryCode),
}

struct Plot {
    file: String,
    kind: PlotKind,
}

/// A metric name made safe for a file name: ASCII alphanumerics, `-` and `_` kept (lowercased),
/// everything else becomes `_`.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        let c = if ch.is_ascii_alphanumeric() || ch == '-' {
            ch.to_ascii_lowercase()
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        "metric".to_string()
    } else {
        out
    }
}

/// Radars need at least three axes.
const RADAR_MIN_AXES: usize = 3;

fn plot_list(input: &ReportInput, view: &View) -> Vec<Plot> {
    if !view.has_scores() {
        return Vec::new();
    }
    let mut out = vec![Plot {
        file: format!("{}_by_country.svg", sanitize(input.metric.name)),
        kind: PlotKind::Bars,
    }];
    for &c in &view.countries {
        if view.component_names(c).len() >= RADAR_MIN_AXES {
            out.push(Plot {
                file: format!("radar_{c}.svg"),
                kind: PlotKind::Radar(c),
            });
        }
    }
    out
}

/// Fixed palette (one colour per method, in display order; it cycles after ten methods).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const INK: RGBColor = RGBColor(33, 33, 33);
const GRID: RGBColor = RGBColor(200, 200, 200);
const FONT: &str = "sans-serif";

/// Colours of `methods`, stable across runs: the common methods have fixed colours, others a
/// colour chosen by a hash of the name; a colour already taken in this plot moves to the next
/// free one (while there are free ones).
fn method_colors(methods: &[&str]) -> Vec<RGBColor> {
    let preferred = |m: &str| -> usize {
        match m {
            "vanilla" => 0,
            "country-prompt" => 1,
            "wvs-profile" => 2,
            "disca" => 3,
            "disca+prior" | "disca-no-prior" => 4,
            "palette" => 5,
            _ => culturesteer_core::hash::fnv1a64(0, m.bytes()) as usize % PALETTE.len(),
        }
    };
    let mut used = [false; PALETTE.len()];
    methods
        .iter()
        .map(|m| {
            let mut k = preferred(m);
            if used.iter().any(|u| !u) {
                while used[k] {
                    k = (k + 1) % PALETTE.len();
                }
            }
            used[k] = true;
            PALETTE[k]
        })
        .collect()
}

/// Rough width in pixels of `text` at `size` px (SVG viewers lay the text out themselves; this
/// only reserves room).
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as i32
}

/// plotters' SVG backend writes `font-size` as the requested size / 1.24; this undoes that so
/// sizes here are the rendered pixel sizes.
fn font_px(size: f64) -> f64 {
    size * 1.24
}

fn text_style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, font_px(size))
        .into_font()
        .color(&color)
        .pos(Pos::new(h, v))
}

#[derive(Clone, Copy)]
enum Swatch {
    Bar(RGBColor),
    Line(RGBColor),
    Dashed(RGBColor),
}

fn legend_width(entries: &[(String, Swatch)]) -> i32 {
    entries
        .iter()
        .map(|(l, _)| text_width(l, 13.0))
        .max()
        .unwrap_or(0)
        + 60
}

/// Draws a legend box with its top-left corner at (x, y).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    entries: &[(String, Swatch)],
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let row = 22;
    let w = legend_width(entries) - 12;
    let h = row * entries.len() as i32 + 10;
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.filled()))
        .map_err(|e| e.to_string())?;
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        GRID.stroke_width(1),
    ))
    .map_err(|e| e.to_string())?;
    for (k, (label, swatch)) in entries.iter().enumerate() {
        let cy = y + 5 + row * k as i32 + row / 2;
        let (sx0, sx1) = (x + 8, x + 32);
        match *swatch {
            Swatch::Bar(c) => area.draw(&Rectangle::new(
                [(sx0 + 4, cy - 6), (sx1 - 4, cy + 6)],
                c.filled(),
            )),
            Swatch::Line(c) => area.draw(&PathElement::new(
                vec![(sx0, cy), (sx1, cy)],
                c.stroke_width(3),
            )),
            Swatch::Dashed(c) => area.draw(&DashedPathElement::new(
                vec![(sx0, cy), (sx1, cy)],
                5,
                3,
                c.stroke_width(2),
            )),
        }
        .map_err(|e| e.to_string())?;
        area.draw(&Text::new(
            label.clone(),
            (sx1 + 8, cy),
            text_style(13.0, INK, HPos::Left, VPos::Center),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    width: i32,
) -> Result<(), String> {
    area.draw(&Text::new(
        title.to_string(),
        (width / 2, 14),
        text_style(18.0, INK, HPos::Center, VPos::Top),
    ))
    .map_err(|e| e.to_string())
}

fn bars_title(input: &ReportInput) -> String {
    format!(
        "{}: {} by country ({})",
        input.benchmark,
        input.metric.name,
        direction(&input.metric)
    )
}

/// Grouped bars of the metric per country, one colour per method, the floor as a dashed
/// segment across each group.
fn bars_svg(input: &ReportInput, view: &View) -> Result<String, String> {
    let nc = view.countries.len().max(1);
    let nm = view.methods.len().max(1);
    let group_px = (20 * nm as i32 + 30).max(80);
    let y_label_px = 70;
    let chart_w = y_label_px + 20 + nc as i32 * group_px + 20;
    let colors = method_colors(&view.methods);
    let mut legend: Vec<(String, Swatch)> = view
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| (m.to_string(), Swatch::Bar(colors[i])))
        .collect();
    if !view.floor.is_empty() {
        legend.push((input.floor_label.clone(), Swatch::Dashed(INK)));
    }
    let legend_w = legend_width(&legend) + 10;
    let title = bars_title(input);
    let width = (chart_w + legend_w)
        .max(text_width(&title, 18.0) + 60)
        .max(480);
    let title_h = 48;
    let legend_h = 22 * legend.len() as i32 + 10;
    let height = (title_h + 420).max(title_h + legend_h + 40);

    // Value range over every finite value and floor, always including 0.
    let vals = view
        .cell
        .values()
        .map(|s| s.value)
        .chain(view.floor.values().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = vals.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        hi = lo + 1.0;
    }
    let pad = 0.08 * (hi - lo);
    hi += pad;
    if lo < 0.0 {
        lo -= pad;
    }
    if !(hi - lo).is_finite() {
        // Values near f64::MAX: no usable axis; draw an empty frame rather than fail.
        (lo, hi) = (0.0, 1.0);
    }

    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_title(&root, &title, width)?;
        let (_, body) = root.split_vertically(title_h);
        let (chart_area, legend_area) = body.split_horizontally(chart_w);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(10)
            .margin_right(20)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(50)
            .y_label_area_size(y_label_px)
            .build_cartesian_2d(-0.5f64..nc as f64 - 0.5, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID.mix(0.6))
            .x_labels(0)
            .y_label_formatter(&|y: &f64| format!("{y:.2}"))
            .x_desc("Country")
            .y_desc(format!(
                "{} ({})",
                input.metric.name,
                direction(&input.metric)
            ))
            .axis_desc_style((FONT, font_px(14.0)))
            .label_style((FONT, font_px(12.0)))
            .draw()
            .map_err(|e| e.to_string())?;
        let group = 0.8;
        let bar_w = group / nm as f64;
        for (ci, &c) in view.countries.iter().enumerate() {
            let left = ci as f64 - group / 2.0;
            for mi in 0..view.methods.len() {
                let Some(s) = view.get(mi, c) else { continue };
                if !s.value.is_finite() {
                    continue;
                }
                let x0 = left + mi as f64 * bar_w + bar_w * 0.08;
                let x1 = left + (mi + 1) as f64 * bar_w - bar_w * 0.08;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, s.value)],
                        colors[mi].filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(&f) = view.floor.get(&c) {
                if f.is_finite() {
                    let seg = vec![(left - 0.04, f), (left + group + 0.04, f)];
                    chart
                        .draw_series(std::iter::once(DashedPathElement::new(
                            seg,
                            6,
                            4,
                            INK.stroke_width(2),
                        )))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Country codes under each group (the mesh's own x labels sit on round numbers).
        for (ci, c) in view.countries.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(ci as f64, lo));
            root.draw(&Text::new(
                c.to_string(),
                (x, y + 8),
                text_style(13.0, INK, HPos::Center, VPos::Top),
            ))
            .map_err(|e| e.to_string())?;
        }
        draw_legend(&legend_area, 0, 20, &legend)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// The radial scale of a radar and its number of rings: [0, 1] in quarters when every value
/// lies there, else [min(0, min), max] widened to a round step (3 to 8 rings).
fn radar_scale(values: &[f64]) -> (f64, f64, usize) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.iter().all(|v| (0.0..=1.0).contains(v)) {
        return (0.0, 1.0, 4);
    }
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(lo, f64::max);
    let span = hi - lo;
    if !span.is_finite() || span <= f64::EPSILON * hi.abs().max(1.0) {
        return (lo, lo + 1.0, 4);
    }
    // Smallest round step (1, 2, 2.5, 5 times a power of ten) giving at most 5 rings.
    let raw = span / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    let (lo_r, hi_r) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let rings = ((hi_r - lo_r) / step).round();
    if rings.is_finite() && (1.0..=8.0).contains(&rings) {
        (lo_r, hi_r, (rings as usize).max(3))
    } else {
        (lo, hi, 4)
    }
}

/// A radar (spider) chart of a country's components: the human profile and one polygon per
/// method, drawn with pixel primitives.
fn radar_svg(input: &ReportInput, view: &View, country: CountryCode) -> Result<String, String> {
    let names = view.component_names(country);
    let n = names.len();
    // Series: (label, colour, values); a series with a missing value is left out.
    // (label, colour, values, is human, dashed: coincides with an earlier series).
    let mut series: Vec<(String, RGBColor, Vec<f64>, bool, bool)> = Vec::new();
    let human: Option<Vec<f64>> = names.iter().map(|nm| view.human(country, nm)).collect();
    if let Some(h) = human {
        series.push(("human".to_string(), INK, h, true, false));
    }
    let colors = method_colors(&view.methods);
    for (mi, m) in view.methods.iter().enumerate() {
        let vals: Option<Vec<f64>> = names.iter().map(|nm| view.model(mi, country, nm)).collect();
        if let Some(v) = vals {
            // A series on top of an earlier one would hide it: dashed, and the legend says so.
            let twin = series
                .iter()
                .find(|s| {
                    s.2.len() == v.len() && s.2.iter().zip(&v).all(|(a, b)| (a - b).abs() < 5e-4)
                })
                .map(|s| s.0.clone());
            let label = match &twin {
                Some(t) => format!("{m} (= {t})"),
                None => m.to_string(),
            };
            series.push((label, colors[mi], v, false, twin.is_some()));
        }
    }
    let all: Vec<f64> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    let (lo, hi, rings) = radar_scale(&all);

    let label_size = 13.0;
    let label_w = names
        .iter()
        .map(|s| text_width(s, label_size))
        .max()
        .unwrap_or(0);
    let radius = 180;
    let margin_x = label_w + 24;
    let radar_w = 2 * (radius + margin_x);
    let title_h = 56;
    let margin_y = 44;
    let radar_h = 2 * (radius + margin_y);
    let legend: Vec<(String, Swatch)> = series
        .iter()
        .map(|(l, c, _, _, dashed)| {
            (
                l.clone(),
                if *dashed {
                    Swatch::Dashed(*c)
                } else {
                    Swatch::Line(*c)
                },
            )
        })
        .collect();
    let legend_w = legend_width(&legend) + 20;
    let title = format!("{} — {}: per-dimension profile", input.benchmark, country);
    let subtitle = format!(
        "radial scale {} to {} (centre to outer ring)",
        trim_num(lo),
        trim_num(hi)
    );
    let width = (radar_w + legend_w).max(text_width(&title, 18.0) + 60);
    let height = title_h + radar_h;
    let (cx, cy) = (margin_x + radius, title_h + margin_y + radius);

    let angle =
        |k: usize| -std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::TAU / n as f64;
    let point = |k: usize, frac: f64| {
        let a = angle(k);
        let r = radius as f64 * frac;
        (
            (cx as f64 + r * a.cos()).round() as i32,
            (cy as f64 + r * a.sin()).round() as i32,
        )
    };
    let frac = |v: f64| {
        if v.is_finite() {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };

    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_title(&root, &title, width)?;
        root.draw(&Text::new(
            subtitle,
            (width / 2, 38),
            text_style(12.0, RGBColor(90, 90, 90), HPos::Center, VPos::Top),
        ))
        .map_err(|e| e.to_string())?;
        // Grid: rings and spokes (polylines, so that polygons are the series only).
        for r in 1..=rings {
            let f = r as f64 / rings as f64;
            let mut ring: Vec<(i32, i32)> = (0..n).map(|k| point(k, f)).collect();
            ring.push(point(0, f));
            let style = if r == rings {
                GRID.stroke_width(2)
            } else {
                GRID.stroke_width(1)
            };
            root.draw(&PathElement::new(ring, style))
                .map_err(|e| e.to_string())?;
        }
        for (k, name) in names.iter().enumerate() {
            root.draw(&PathElement::new(
                vec![(cx, cy), point(k, 1.0)],
                GRID.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            let a = angle(k);
            let (dx, dy) = (a.cos(), a.sin());
            let h = if dx > 0.25 {
                HPos::Left
            } else if dx < -0.25 {
                HPos::Right
            } else {
                HPos::Center
            };
            let v = if dy < -0.5 {
                VPos::Bottom
            } else if dy > 0.5 {
                VPos::Top
            } else {
                VPos::Center
            };
            let lr = radius as f64 + 12.0;
            let pos = (
                (cx as f64 + lr * dx).round() as i32,
                (cy as f64 + lr * dy).round() as i32,
            );
            root.draw(&Text::new(
                name.to_string(),
                pos,
                text_style(label_size, INK, h, v),
            ))
            .map_err(|e| e.to_string())?;
        }
        // Series: one filled polygon each, then its outline and vertex markers.
        for (_, color, vals, human, dashed) in &series {
            let pts: Vec<(i32, i32)> = vals
                .iter()
                .enumerate()
                .map(|(k, v)| point(k, frac(*v)))
                .collect();
            let alpha = if *human { 0.10 } else { 0.14 };
            root.draw(&Polygon::new(pts.clone(), color.mix(alpha).filled()))
                .map_err(|e| e.to_string())?;
            let mut outline = pts.clone();
            if let Some(&first) = pts.first() {
                outline.push(first);
            }
            let width = if *human { 3 } else { 2 };
            if *dashed {
                root.draw(&DashedPathElement::new(
                    outline,
                    7,
                    5,
                    color.stroke_width(width),
                ))
                .map_err(|e| e.to_string())?;
                // Hollow square markers, so the twin's dots stay visible underneath.
                for (x, y) in pts {
                    root.draw(&Rectangle::new(
                        [(x - 4, y - 4), (x + 4, y + 4)],
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            } else {
                root.draw(&PathElement::new(outline, color.stroke_width(width)))
                    .map_err(|e| e.to_string())?;
                for p in pts {
                    root.draw(&Circle::new(p, 3, color.filled()))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Ring values halfway between the first two spokes, drawn over the series on a faint
        // white backdrop so they stay readable.
        for r in 1..=rings {
            let f = r as f64 / rings as f64;
            let (a, b) = (point(0, f), point(1, f));
            let label = trim_num(lo + f * (hi - lo));
            let (x, y) = ((a.0 + b.0) / 2 + 3, (a.1 + b.1) / 2);
            let w = text_width(&label, 10.0);
            root.draw(&Rectangle::new(
                [(x - 1, y - 13), (x + w + 1, y - 1)],
                WHITE.mix(0.7).filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Text::new(
                label,
                (x, y),
                text_style(10.0, RGBColor(100, 100, 100), HPos::Left, VPos::Bottom),
            ))
            .map_err(|e| e.to_string())?;
        }
        draw_legend(&root, radar_w + 4, title_h + 20, &legend)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// A short number for axis labels ("0.25", "12.5", "100").
fn trim_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod color_tests {
    use super::*;

    #[test]
    fn method_colours_are_stable_and_distinct() {
        let a = method_colors(&["vanilla", "disca", "palette"]);
        let b = method_colors(&["palette", "disca", "vanilla"]);
        assert_eq!(
            (a[0], a[1], a[2]),
            (b[2], b[1], b[0]),
            "a method keeps its colour whatever the order"
        );
        assert_eq!(a[0], PALETTE[0]);
        let many: Vec<String> = (0..10).map(|k| format!("method-{k}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let cs = method_colors(&refs);
        for i in 0..cs.len() {
            for j in 0..i {
                assert_ne!(cs[i], cs[j], "{i} and {j} share a colour");
            }
        }
    }

    #[test]
    fn coinciding_radar_series_are_dashed_and_named() {
        let usa = CountryCode::new("USA").unwrap();
        let comps = |shift: f64| -> Vec<crate::Component> {
            (0..6)
                .map(|k| crate::Component {
                    name: format!("d{k}"),
                    model: 0.3 + 0.1 * k as f64 + shift,
                    human: Some(0.5),
                })
                .collect()
        };
        let score = |shift: f64| CountryScore {
            country: usa,
            value: 0.4,
            n_items: 10,
            components: comps(shift),
            secondary: vec![],
        };
        let input = ReportInput {
            benchmark: "multitp".into(),
            metric: MetricInfo {
                name: "MIS",
                lower_is_better: true,
            },
            model: "m".into(),
            methods: vec!["vanilla".into(), "disca".into(), "disca-floor".into()],
            scores: vec![
                ("vanilla".into(), score(0.05)),
                ("disca".into(), score(0.0)),
                ("disca-floor".into(), score(0.0)),
            ],
            floors: vec![],
            floor_label: "uniform".into(),
            bootstrap: vec![],
            same_as_parent: vec![],
        };
        let view = View::new(&input);
        let svg = radar_svg(&input, &view, usa).unwrap();
        assert!(svg.contains("disca-floor (= disca)"), "{svg}");
        assert!(!svg.contains("vanilla (="));
    }
}
