//! Loader for per-scenario results in the `disca_reference/results/<model>/` layout, and the
//! glue to [`culturesteer_core::replay`].
//!
//! A results directory holds any of `vanilla_results_<ISO3>.csv`, `swa_results_<ISO3>.csv`
//! (DISCA, with its diagnostics) and `comparison.csv` (the authors' own per-country
//! metrics). In the vanilla files `p_spare_preferred` is `p_right` when the preferred group is
//! on the right and `p_left` otherwise (`p_left + p_right` is not renormalised: the logged
//! values are rounded, sums differ from 1 by up to 0.002); the replay uses the
//! `p_spare_preferred` column of both files as is.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use culturesteer_core::replay::{
    render_table, replay_summary, ReplayInput, ReplayMethod, ReplaySummary,
};
use culturesteer_core::replay::{CountryRuns, ScenarioOutcome};
use culturesteer_core::{CountryCode, MoralDimension};

use crate::error::DataError;
use crate::source::{rel_join, DataSource};
use crate::table::{Csv, Row};

/// The embedded Phi-4 headline run, relative to the data root.
pub const PHI4_RESULTS: &str = "disca_reference/results/phi_4";

/// One row of `vanilla_results_<ISO3>.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VanillaRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Country column.
    pub country: CountryCode,
    /// Scenario index in the pool.
    pub scenario_idx: u32,
    /// The dimension.
    pub dimension: MoralDimension,
    /// Whether the preferred group is on the right.
    pub preferred_on_right: bool,
    /// P(A) = P(left) at T_dec = 0.5.
    pub p_left: f64,
    /// P(B) = P(right).
    pub p_right: f64,
    /// Probability of sparing the preferred group.
    pub p_spare_preferred: f64,
}

/// One row of `swa_results_<ISO3>.csv`: the DISCA output and its logged diagnostics
/// (disca.md §4 names; kept for the arithmetic replay of §9 item 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwaRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Country column.
    pub country: CountryCode,
    /// Scenario index in the pool.
    pub scenario_idx: u32,
    /// The dimension.
    pub dimension: MoralDimension,
    /// Whether the preferred group is on the right.
    pub preferred_on_right: bool,
    /// DISCA's probability of sparing the preferred group.
    pub p_spare_preferred: f64,
    /// T_cat used for this scenario.
    pub logit_temp_used: f64,
    /// δ̄: mean debiased persona gap.
    pub delta_consensus: f64,
    /// Mean persona gap minus base gap (δ̄ − δ_base).
    pub agent_reward_mean: f64,
    /// Spread of the persona rewards.
    pub agent_reward_std: f64,
    /// δ*₁ of the first IS pass.
    pub delta_star_1: f64,
    /// δ*₂ of the second IS pass.
    pub delta_star_2: f64,
    /// ESS ratio of pass 1.
    pub ess_pass1: f64,
    /// ESS ratio of pass 2.
    pub ess_pass2: f64,
    /// Reliability gate r.
    pub reliability_r: f64,
    /// V_r = (δ*₁ − δ*₂)².
    pub bootstrap_var: f64,
    /// α_ess of the anchor blend.
    pub ess_anchor_alpha: f64,
    /// δ_micro.
    pub delta_opt_micro: f64,
    /// Country prior state δ_country (before the update).
    pub delta_country: f64,
    /// Prior weight α_h.
    pub alpha_h: f64,
    /// Prior step counter k as logged (4 on the first row, 313 on the last); `alpha_h` of the
    /// same row is `1 − exp(−(k − 50)/100)` for k ≥ 50, else 0.
    pub prior_step: u32,
    /// Positional bias b.
    pub positional_bias: f64,
    /// Whether sign(δ̄) ≠ sign(δ_final).
    pub mppi_flipped: bool,
}

impl SwaRow {
    /// δ_base = δ̄ − agent_reward_mean.
    pub fn delta_base(&self) -> f64 {
        self.delta_consensus - self.agent_reward_mean
    }
}

/// One row of `comparison.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Model id.
    pub model: String,
    /// Method tag (`baseline_vanilla`, or the DISCA run name).
    pub method: String,
    /// Country.
    pub country: CountryCode,
    /// MIS.
    pub align_mis: f64,
    /// DISCA JSD.
    pub align_jsd: f64,
    /// Pearson r (empty when undefined).
    pub align_pearson_r: Option<f64>,
    /// Flip rate (DISCA only).
    pub flip_rate: Option<f64>,
    /// Scenarios evaluated.
    pub n_scenarios: u32,
}

impl ComparisonRow {
    /// Vanilla if the method tag contains "vanilla", DISCA otherwise.
    pub fn replay_method(&self) -> ReplayMethod {
        if self.method.contains("vanilla") {
            ReplayMethod::Vanilla
        } else {
            ReplayMethod::Disca
        }
    }
}

/// A loaded results directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsDir {
    /// The directory's name (e.g. `phi_4`).
    pub label: String,
    /// Vanilla rows per country.
    pub vanilla: BTreeMap<CountryCode, Vec<VanillaRow>>,
    /// DISCA rows per country.
    pub swa: BTreeMap<CountryCode, Vec<SwaRow>>,
    /// `comparison.csv`, if present.
    pub comparison: Option<Vec<ComparisonRow>>,
}

fn common(
    row: &Row<'_>,
    file_country: CountryCode,
) -> Result<(CountryCode, u32, MoralDimension, bool), DataError> {
    let c = row.country("country")?;
    if c != file_country {
        return Err(row.err(
            "country",
            format!("{c} does not match the file name's country {file_country}"),
        ));
    }
    Ok((
        c,
        row.u32("scenario_idx")?,
        row.dimension("phenomenon_category")?,
        row.bool("preferred_on_right")?,
    ))
}

const COMMON: [&str; 5] = [
    "country",
    "scenario_idx",
    "phenomenon_category",
    "preferred_on_right",
    "p_spare_preferred",
];

/// Parses a `vanilla_results_<ISO3>.csv`.
pub fn parse_vanilla(
    file: &str,
    text: &str,
    country: CountryCode,
) -> Result<Vec<VanillaRow>, DataError> {
    let mut req = COMMON.to_vec();
    req.extend(["p_left", "p_right"]);
    let csv = Csv::parse(file, text, &req)?;
    csv.rows()
        .map(|row| {
            let (country, scenario_idx, dimension, preferred_on_right) = common(&row, country)?;
            Ok(VanillaRow {
                line: row.line,
                country,
                scenario_idx,
                dimension,
                preferred_on_right,
                p_left: row.prob("p_left")?,
                p_right: row.prob("p_right")?,
                p_spare_preferred: row.prob("p_spare_preferred")?,
            })
        })
        .collect()
}

const SWA_FLOATS: [&str; 16] = [
    "logit_temp_used",
    "delta_consensus",
    "agent_reward_mean",
    "agent_reward_std",
    "delta_star_1",
    "delta_star_2",
    "ess_pass1",
    "ess_pass2",
    "reliability_r",
    "bootstrap_var",
    "ess_anchor_alpha",
    "delta_opt_micro",
    "delta_country",
    "alpha_h",
    "positional_bias",
    "prior_step",
];

/// Parses a `swa_results_<ISO3>.csv`.
pub fn parse_swa(file: &str, text: &str, country: CountryCode) -> Result<Vec<SwaRow>, DataError> {
    let mut req = COMMON.to_vec();
    req.extend(SWA_FLOATS);
    req.push("mppi_flipped");
    let csv = Csv::parse(file, text, &req)?;
    csv.rows()
        .map(|row| {
            let (country, scenario_idx, dimension, preferred_on_right) = common(&row, country)?;
            Ok(SwaRow {
                line: row.line,
                country,
                scenario_idx,
                dimension,
                preferred_on_right,
                p_spare_preferred: row.prob("p_spare_preferred")?,
                logit_temp_used: row.f64("logit_temp_used")?,
                delta_consensus: row.f64("delta_consensus")?,
                agent_reward_mean: row.f64("agent_reward_mean")?,
                agent_reward_std: row.f64("agent_reward_std")?,
                delta_star_1: row.f64("delta_star_1")?,
                delta_star_2: row.f64("delta_star_2")?,
                ess_pass1: row.f64("ess_pass1")?,
                ess_pass2: row.f64("ess_pass2")?,
                reliability_r: row.f64("reliability_r")?,
                bootstrap_var: row.f64("bootstrap_var")?,
                ess_anchor_alpha: row.f64("ess_anchor_alpha")?,
                delta_opt_micro: row.f64("delta_opt_micro")?,
                delta_country: row.f64("delta_country")?,
                alpha_h: row.f64("alpha_h")?,
                prior_step: row.u32("prior_step")?,
                positional_bias: row.f64("positional_bias")?,
                mppi_flipped: row.bool("mppi_flipped")?,
            })
        })
        .collect()
}

/// Parses a `comparison.csv`.
pub fn parse_comparison(file: &str, text: &str) -> Result<Vec<ComparisonRow>, DataError> {
    let csv = Csv::parse(
        file,
        text,
        &[
            "model",
            "method",
            "country",
            "align_mis",
            "align_jsd",
            "align_pearson_r",
            "n_scenarios",
        ],
    )?;
    csv.rows()
        .map(|row| {
            Ok(ComparisonRow {
                line: row.line,
                model: row.text("model")?.to_string(),
                method: row.text("method")?.to_string(),
                country: row.country("country")?,
                align_mis: row.f64("align_mis")?,
                align_jsd: row.f64("align_jsd")?,
                align_pearson_r: row.opt_f64("align_pearson_r")?,
                flip_rate: row.opt_f64("flip_rate")?,
                n_scenarios: row.u32("n_scenarios")?,
            })
        })
        .collect()
}

fn country_of(name: &str, prefix: &str) -> Option<CountryCode> {
    name.strip_prefix(prefix)?
        .strip_suffix(".csv")?
        .parse()
        .ok()
}

impl ResultsDir {
    /// Loads the results directory `rel_dir` of `source` (use `""` for the root of a
    /// [`DataSource::Dir`]). Fails if it holds no vanilla or DISCA results file.
    pub fn load(source: &DataSource, rel_dir: &str, label: &str) -> Result<Self, DataError> {
        let mut vanilla = BTreeMap::new();
        let mut swa = BTreeMap::new();
        let mut comparison = None;
        for name in source.list(rel_dir)? {
            let rel = rel_join(rel_dir, &name);
            if let Some(c) = country_of(&name, "vanilla_results_") {
                let text = source.read(&rel)?;
                vanilla.insert(c, parse_vanilla(&source.display_path(&rel), &text, c)?);
            } else if let Some(c) = country_of(&name, "swa_results_") {
                let text = source.read(&rel)?;
                swa.insert(c, parse_swa(&source.display_path(&rel), &text, c)?);
            } else if name == "comparison.csv" {
                let text = source.read(&rel)?;
                comparison = Some(parse_comparison(&source.display_path(&rel), &text)?);
            }
        }
        if vanilla.is_empty() && swa.is_empty() {
            return Err(DataError::File {
                file: source.display_path(rel_dir),
                message: "no vanilla_results_<ISO3>.csv or swa_results_<ISO3>.csv files".into(),
            });
        }
        Ok(ResultsDir {
            label: label.to_string(),
            vanilla,
            swa,
            comparison,
        })
    }

    /// The embedded Phi-4 headline run (`disca_reference/results/phi_4`).
    pub fn embedded_phi4() -> Result<Self, DataError> {
        Self::load(&DataSource::Embedded, PHI4_RESULTS, "phi_4")
    }

    /// Countries with any results, sorted.
    pub fn countries(&self) -> Vec<CountryCode> {
        let mut v: Vec<CountryCode> = self
            .vanilla
            .keys()
            .chain(self.swa.keys())
            .copied()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The outcomes the replay needs (dimension and `p_spare_preferred` per scenario).
    pub fn replay_input(&self) -> ReplayInput {
        let countries = self
            .countries()
            .into_iter()
            .map(|c| CountryRuns {
                country: c,
                vanilla: self.vanilla.get(&c).map(|rows| {
                    rows.iter()
                        .map(|r| ScenarioOutcome {
                            dimension: r.dimension,
                            p_spare_preferred: r.p_spare_preferred,
                        })
                        .collect()
                }),
                disca: self.swa.get(&c).map(|rows| {
                    rows.iter()
                        .map(|r| ScenarioOutcome {
                            dimension: r.dimension,
                            p_spare_preferred: r.p_spare_preferred,
                        })
                        .collect()
                }),
            })
            .collect();
        ReplayInput {
            label: self.label.clone(),
            countries,
        }
    }
}

/// Loads a results directory from the file system (any directory in the
/// `disca_reference/results/<model>/` format). The label is the directory's name.
pub fn load_results_dir(path: &Path) -> Result<ResultsDir, DataError> {
    let label = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("results")
        .to_string();
    ResultsDir::load(&DataSource::Dir(path.to_path_buf()), "", &label)
}

/// Replays `results` against the DISCA authors' 20-country targets
/// (`disca_reference/human_targets_20.csv`, read from `source`). These are the targets that
/// reproduce the published numbers (Phi-4: vanilla 0.454, DISCA 0.346); they equal
/// `country_preferences.csv`'s `pref_*` for the same countries to 1e-15.
pub fn replay_with_disca_targets(
    results: &ResultsDir,
    source: &DataSource,
) -> Result<ReplaySummary, DataError> {
    let targets = crate::disca::DiscaHumanTargets::load(source)?;
    Ok(replay_summary(&results.replay_input(), &targets.targets)?)
}

/// Replays `results` against the 196-country Moral Machine table (`pref_*` columns), for
/// results of countries outside the DISCA 20.
pub fn replay_with_moral_machine(
    results: &ResultsDir,
    source: &DataSource,
) -> Result<ReplaySummary, DataError> {
    let mm = crate::moral_machine::MoralMachinePreferences::load(source)?;
    Ok(replay_summary(
        &results.replay_input(),
        &mm.human_targets(),
    )?)
}
