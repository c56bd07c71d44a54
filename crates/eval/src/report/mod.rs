//! Run reports: `summary.md`, `report.html`, `scores.json` and SVG plots.
//!
//! [`render_summary`] turns a [`ReportInput`] into Markdown: a per-country table of the headline
//! metric (one column per method, the reference floor and the item count) closed by a macro row,
//! then per-dimension tables (model vs human) and secondary metrics where the benchmark has them.
//! [`write_report`] writes that summary and the plots listed by [`plot_file_names`] into
//! `dir/plots/`: grouped bars of the metric per country and, for scores with components, one
//! radar chart per country. The plots are drawn with plotters' SVG backend, which writes `<text>`
//! elements and so needs no system fonts. `report.html` shows the same content as the summary
//! on one self-contained page, the plots inline. Output is deterministic (no timestamps).
//!
//! The rooms: `content` decides what a report says (blocks of headings, paragraphs, lists and
//! tables); `markdown` and `html` write those blocks; `svg` draws the plots; `verdict` ranks the
//! methods with their bootstrap intervals; `json` writes `scores.json`.

mod content;
mod html;
mod json;
mod markdown;
mod svg;
mod verdict;

pub use json::{scores_json, SCORES_SCHEMA};
pub use verdict::{
    country_bootstrap, percentile_ci, verdicts, CiBasis, MethodVerdict, COUNTRY_BOOTSTRAP_MIN,
    COUNTRY_BOOTSTRAP_RESAMPLES,
};

use crate::{BenchError, CountryScore, MetricInfo};
use culturesteer_core::CountryCode;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use svg::{bars_svg, plot_list, radar_svg, PlotKind};

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
    /// with replacement, the same number of replicates for every pair, replicate k of every
    /// method on a country drawn from the same items (paired). Empty: the verdicts resample
    /// the countries instead.
    #[serde(skip)]
    pub bootstrap: Vec<(String, CountryCode, Vec<f64>)>,
    /// (view, method) pairs where the view equals its method on every country of the run (a
    /// prior before its warm-up): not a separate result here.
    pub same_as_parent: Vec<(String, String)>,
}

/// The placeholder for a missing value in tables.
pub(super) const MISSING: &str = "–";

/// Writes `summary.md`, `report.html`, `scores.json` and the plots (into `dir/plots/`) into
/// `dir`.
///
/// The directories are created when missing. Every failure is a [`BenchError::Io`] naming the
/// file (or directory) concerned; drawing failures are reported the same way.
pub fn write_report(dir: &Path, input: &ReportInput) -> Result<(), BenchError> {
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|source| io_err(&plots, source))?;
    let view = View::new(input);
    let mut svgs = Vec::new();
    for plot in plot_list(input, &view) {
        let path = plots.join(&plot.file);
        let svg = match &plot.kind {
            PlotKind::Bars => bars_svg(input, &view),
            PlotKind::Radar(country) => radar_svg(input, &view, *country),
        }
        .map_err(|msg| io_err(&path, std::io::Error::other(msg)))?;
        std::fs::write(&path, &svg).map_err(|source| io_err(&path, source))?;
        svgs.push((format!("plots/{}", plot.file), svg));
    }
    let path = dir.join("scores.json");
    let json = serde_json::to_string_pretty(&scores_json(input))
        .map_err(|e| io_err(&path, std::io::Error::other(e)))?;
    std::fs::write(&path, json + "\n").map_err(|source| io_err(&path, source))?;
    let path = dir.join("summary.md");
    std::fs::write(&path, markdown::render(input, &view))
        .map_err(|source| io_err(&path, source))?;
    let path = dir.join("report.html");
    std::fs::write(&path, html::render(input, &view, &svgs)).map_err(|source| io_err(&path, source))
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
    markdown::render(input, &View::new(input))
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
pub(super) struct View<'a> {
    /// Display order: `input.methods` (deduplicated), then methods only found in scores.
    pub(super) methods: Vec<&'a str>,
    /// Countries with a score or a floor, sorted.
    pub(super) countries: Vec<CountryCode>,
    /// (method index, country) → score.
    pub(super) cell: BTreeMap<(usize, CountryCode), &'a CountryScore>,
    pub(super) floor: BTreeMap<CountryCode, f64>,
}

impl<'a> View<'a> {
    pub(super) fn new(input: &'a ReportInput) -> Self {
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

    pub(super) fn get(&self, method: usize, country: CountryCode) -> Option<&'a CountryScore> {
        self.cell.get(&(method, country)).copied()
    }

    pub(super) fn has_scores(&self) -> bool {
        !self.cell.is_empty()
    }

    /// Countries with a score for every method.
    pub(super) fn complete_countries(&self) -> Vec<CountryCode> {
        self.countries
            .iter()
            .copied()
            .filter(|&c| (0..self.methods.len()).all(|m| self.get(m, c).is_some()))
            .collect()
    }

    /// Component names of a country across methods, in order of first appearance.
    pub(super) fn component_names(&self, country: CountryCode) -> Vec<&'a str> {
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
    pub(super) fn human(&self, country: CountryCode, name: &str) -> Option<f64> {
        (0..self.methods.len())
            .filter_map(|m| self.get(m, country))
            .flat_map(|s| s.components.iter())
            .find(|c| c.name == name && c.human.is_some())
            .and_then(|c| c.human)
    }

    pub(super) fn model(&self, method: usize, country: CountryCode, name: &str) -> Option<f64> {
        self.get(method, country)
            .and_then(|s| s.components.iter().find(|c| c.name == name))
            .map(|c| c.model)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared formatting
// ---------------------------------------------------------------------------------------------

pub(super) fn fmt3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".to_string()
    }
}

pub(super) fn fmt_opt(v: Option<f64>) -> String {
    v.map(fmt3).unwrap_or_else(|| MISSING.to_string())
}

/// `true` when `v` is strictly better than the reference floor (always, without a floor).
pub(super) fn beats(v: f64, floor: Option<f64>, lower_is_better: bool) -> bool {
    match floor {
        Some(f) if lower_is_better => v < f,
        Some(f) => v > f,
        None => true,
    }
}

/// Formats a row of method values, bolding the best (ties at 3 decimals all bold) — unless it
pub(super) fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

pub(super) fn direction(metric: &MetricInfo) -> &'static str {
    if metric.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    }
}
