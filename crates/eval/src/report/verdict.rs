//! Verdicts: each method's macro value, its bootstrap interval and how it stands against the
//! uniform floor and vanilla.

use super::{mean, ReportInput, View};
use culturesteer_core::CountryCode;
use serde::Serialize;

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
