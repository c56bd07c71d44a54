//! Verdicts: each method's macro value, its bootstrap interval and how it stands against the
//! uniform floor and vanilla.

use super::{mean, ReportInput, View};
use culturesteer_core::hash::fnv1a64;
use culturesteer_core::CountryCode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// What a macro interval resamples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiBasis {
    /// Each country's items, with replacement (the runner's bootstrap): how much the value
    /// moves with the items drawn, on these countries.
    Items,
    /// The countries, with replacement, paired across methods and the floor: used where a
    /// country's value cannot be resampled over items (VSM13's indices need every item); says
    /// how much the macro value moves with the countries drawn.
    Countries,
}

/// The fewest countries a country bootstrap is run on: fewer give intervals too coarse to
/// read (each resample repeats most countries).
pub const COUNTRY_BOOTSTRAP_MIN: usize = 8;

/// Resamples of a country bootstrap.
pub const COUNTRY_BOOTSTRAP_RESAMPLES: usize = 2000;

/// A paired country bootstrap of macro means: the same `COUNTRY_BOOTSTRAP_RESAMPLES` draws of
/// the countries (seeded by `label`) for every call, so methods, vanilla and the floor are
/// compared on the same resamples. Returns the interval of the macro value and, with a
/// reference (the floor or vanilla, per country), of the macro value minus the reference's. `None` below [`COUNTRY_BOOTSTRAP_MIN`] countries.
pub fn country_bootstrap(
    values: &[f64],
    reference: Option<&[f64]>,
    label: &str,
) -> Option<((f64, f64), Option<(f64, f64)>)> {
    let n = values.len();
    if n < COUNTRY_BOOTSTRAP_MIN || reference.is_some_and(|r| r.len() != n) {
        return None;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(fnv1a64(0, label.bytes()));
    let (mut reps, mut diffs) = (Vec::new(), Vec::new());
    for _ in 0..COUNTRY_BOOTSTRAP_RESAMPLES {
        let (mut v, mut f) = (0.0, 0.0);
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            v += values[i];
            f += reference.map_or(0.0, |r| r[i]);
        }
        reps.push(v / n as f64);
        diffs.push((v - f) / n as f64);
    }
    Some((
        percentile_ci(&reps)?,
        reference.and_then(|_| percentile_ci(&diffs)),
    ))
}

/// The bootstrap replicates of (method, country), the last ones given.
pub(super) fn replicates_of<'a>(
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

/// Replicates of the macro difference `method − other` (replicate k averages the countries'
/// k-th replicate differences): paired, as the runner draws replicate k of every method on a
/// country from the same items.
fn macro_diff_replicates(
    input: &ReportInput,
    method: &str,
    other: &str,
    countries: &[CountryCode],
) -> Option<Vec<f64>> {
    let a = macro_replicates(input, method, countries)?;
    let b = macro_replicates(input, other, countries)?;
    Some(a.iter().zip(&b).map(|(x, y)| x - y).collect())
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
    /// What that interval resamples (`None` without one).
    pub ci_basis: Option<CiBasis>,
    /// With a country bootstrap: the interval of the macro value minus the macro floor on the
    /// same resamples (the floor differs by country, so the macro interval alone cannot be
    /// held against the floor's point value).
    pub floor_diff_ci95: Option<(f64, f64)>,
    /// Strictly better than the uniform predictor's macro value (`None` without a floor).
    pub beats_floor: Option<bool>,
    /// The whole interval is on the better side of the floor.
    pub clearly_beats_floor: Option<bool>,
    /// Relative improvement of the macro value over vanilla, in percent.
    pub gain_vs_vanilla_pct: Option<f64>,
    /// Countries where the method is better than vanilla.
    pub wins_vs_vanilla: Option<usize>,
    /// The interval of the macro value minus vanilla's on the same resamples (of items or of
    /// countries): a gain is only there when it excludes zero.
    pub vanilla_diff_ci95: Option<(f64, f64)>,
}

/// The macro floor over the countries every method has (`None` when one lacks a floor).
pub(super) fn macro_floor_of(view: &View, complete: &[CountryCode]) -> Option<f64> {
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
    let floors: Vec<f64> = complete
        .iter()
        .filter_map(|c| view.floor.get(c).copied())
        .collect();
    // Each method's values on the complete countries (for the country bootstrap).
    let values: Vec<Vec<f64>> = (0..view.methods.len())
        .map(|m| {
            complete
                .iter()
                .filter_map(|&c| view.get(m, c))
                .map(|x| x.value)
                .collect()
        })
        .collect();
    let vanilla = view.methods.iter().position(|m| *m == "vanilla");
    let same_as = input.same_as_parent.iter().map(|(v, p)| MethodVerdict {
        method: v.clone(),
        same_as: Some(p.clone()),
        macro_value: None,
        macro_ci95: None,
        ci_basis: None,
        floor_diff_ci95: None,
        beats_floor: None,
        clearly_beats_floor: None,
        gain_vs_vanilla_pct: None,
        wins_vs_vanilla: None,
        vanilla_diff_ci95: None,
    });
    view.methods
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            let macro_value = if complete.is_empty() { None } else { macro_of(mi) };
            let item_ci = macro_replicates(input, m, &complete).as_deref().and_then(percentile_ci);
            // A run without item replicates (VSM13's indices need every item; `--bootstrap 0`)
            // resamples the countries instead; one basis per run.
            let country_ci = match input.bootstrap.is_empty() {
                false => None,
                true => country_bootstrap(
                    &values[mi],
                    macro_floor.map(|_| floors.as_slice()),
                    &input.benchmark,
                ),
            };
            let macro_ci95 = item_ci.or(country_ci.map(|(ci, _)| ci));
            let ci_basis = match (item_ci, country_ci) {
                (Some(_), _) => Some(CiBasis::Items),
                (None, Some(_)) => Some(CiBasis::Countries),
                _ => None,
            };
            let floor_diff_ci95 = country_ci.and_then(|(_, d)| d);
            let vanilla_diff_ci95 = match (item_ci, country_ci, vanilla) {
                (_, _, Some(vi)) if vi == mi => None,
                (Some(_), _, Some(vi)) => {
                    macro_diff_replicates(input, m, view.methods[vi], &complete)
                        .as_deref()
                        .and_then(percentile_ci)
                }
                (None, Some(_), Some(vi)) => {
                    country_bootstrap(&values[mi], Some(&values[vi]), &input.benchmark)
                        .and_then(|(_, d)| d)
                }
                _ => None,
            };
            let beats_floor = macro_floor.zip(macro_value).map(|(f, v)| better(v, f));
            let clearly_beats_floor = match floor_diff_ci95 {
                Some((a, b)) => Some(if lower { b < 0.0 } else { a > 0.0 }),
                None => macro_floor.zip(item_ci).map(|(f, (a, b))| if lower { b < f } else { a > f }),
            };
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
                ci_basis,
                floor_diff_ci95,
                beats_floor,
                clearly_beats_floor,
                gain_vs_vanilla_pct: gain,
                wins_vs_vanilla: wins,
                vanilla_diff_ci95,
            }
        })
        .chain(same_as)
        .collect()
}
