//! Model-free replay of released per-scenario results: per-country and macro MIS, DISCA's JSD
//! and Pearson r for the vanilla baseline and for DISCA, against human targets.
//!
//! The loader for the `disca_reference/results/<model>/` layout lives in
//! `culturesteer_data::replay`; this module only does the arithmetic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::country::CountryCode;
use crate::metrics::{disca_jsd, mis, model_preference, pearson, MetricError};
use crate::moral::{MoralDimension, MoralVector};

/// One scenario's outcome: its dimension and the probability of sparing the preferred group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    /// The scenario's moral dimension.
    pub dimension: MoralDimension,
    /// Probability of sparing the dimension's preferred side, in `[0, 1]`.
    pub p_spare_preferred: f64,
}

/// The two methods a replay compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplayMethod {
    /// The vanilla baseline (`vanilla_results_<ISO3>.csv`).
    Vanilla,
    /// DISCA (`swa_results_<ISO3>.csv`).
    Disca,
}

impl std::fmt::Display for ReplayMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplayMethod::Vanilla => "vanilla",
            ReplayMethod::Disca => "DISCA",
        })
    }
}

/// Per-scenario outcomes of one country, for whichever methods were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryRuns {
    /// The country.
    pub country: CountryCode,
    /// Vanilla outcomes, if present.
    pub vanilla: Option<Vec<ScenarioOutcome>>,
    /// DISCA outcomes, if present.
    pub disca: Option<Vec<ScenarioOutcome>>,
}

/// Everything a replay needs from a results directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayInput {
    /// A label for the run (e.g. the directory name `phi_4`).
    pub label: String,
    /// One entry per country, sorted by code.
    pub countries: Vec<CountryRuns>,
}

/// Metrics of one method in one country.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodMetrics {
    /// Number of scenarios averaged.
    pub n_scenarios: usize,
    /// Mean `p_spare_preferred` per dimension (0–1 scale).
    pub model_preference: MoralVector,
    /// MIS (L2, 0–1 scale); lower is better.
    pub mis: f64,
    /// DISCA's JSD (base-2 JS distance of the shifted, normalised 0–100 vectors).
    pub jsd: f64,
    /// Pearson r over the six dimensions; `None` if undefined (a constant vector).
    pub pearson_r: Option<f64>,
}

/// Replay results of one country.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryReplay {
    /// The country.
    pub country: CountryCode,
    /// Human preference vector used (0–1 scale).
    pub human: MoralVector,
    /// Vanilla metrics, if vanilla results were present.
    pub vanilla: Option<MethodMetrics>,
    /// DISCA metrics, if DISCA results were present.
    pub disca: Option<MethodMetrics>,
}

/// Unweighted means over the countries that have a method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacroMetrics {
    /// Countries averaged.
    pub n_countries: usize,
    /// Macro MIS (the headline number).
    pub mis: f64,
    /// Macro JSD.
    pub jsd: f64,
    /// Mean Pearson r over the countries where it is defined.
    pub pearson_r: Option<f64>,
}

/// Vanilla vs DISCA on the countries that have both.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Countries with both methods.
    pub n_countries: usize,
    /// Macro vanilla MIS over those countries.
    pub vanilla_mis: f64,
    /// Macro DISCA MIS over those countries.
    pub disca_mis: f64,
    /// Relative reduction of macro MIS, in percent (`(van − disca)/van × 100`).
    pub gain_pct: f64,
    /// Countries where DISCA's MIS is lower than vanilla's.
    pub wins: usize,
}

/// The full replay result; print it with [`render_table`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// The input's label.
    pub label: String,
    /// Per-country results, sorted by code.
    pub countries: Vec<CountryReplay>,
    /// Vanilla macro metrics, if any country has vanilla results.
    pub vanilla: Option<MacroMetrics>,
    /// DISCA macro metrics, if any country has DISCA results.
    pub disca: Option<MacroMetrics>,
    /// The paired comparison, if any country has both.
    pub paired: Option<PairedComparison>,
}

/// Why a replay failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    /// A results country has no human target.
    #[error("no human target for country {country}; targets exist for: {}", list_codes(.available))]
    MissingHuman {
        /// The country without a target.
        country: CountryCode,
        /// The countries that do have targets.
        available: Vec<CountryCode>,
    },
    /// A metric could not be computed (e.g. a dimension without scenarios).
    #[error("{country} {method}: {source}")]
    Metric {
        /// The country.
        country: CountryCode,
        /// The method.
        method: ReplayMethod,
        /// The underlying error.
        source: MetricError,
    },
    /// The input holds no results at all.
    #[error("no per-scenario results to replay")]
    Empty,
}

fn list_codes(c: &[CountryCode]) -> String {
    c.iter()
        .map(CountryCode::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Metrics of one method's outcomes against a human vector (0–1 scale).
pub fn method_metrics(
    outcomes: &[ScenarioOutcome],
    human: &MoralVector,
) -> Result<MethodMetrics, MetricError> {
    let m = model_preference(outcomes.iter().map(|o| (o.dimension, o.p_spare_preferred)))?;
    let pearson_r = match pearson(&m.0, &human.0) {
        Ok(r) => Some(r),
        Err(MetricError::ZeroVariance) => None,
        Err(e) => return Err(e),
    };
    Ok(MethodMetrics {
        n_scenarios: outcomes.len(),
        model_preference: m,
        mis: mis(&m, human),
        jsd: disca_jsd(&m, human)?,
        pearson_r,
    })
}

fn macro_of<'a>(it: impl Iterator<Item = &'a MethodMetrics>) -> Option<MacroMetrics> {
    let v: Vec<&MethodMetrics> = it.collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let rs: Vec<f64> = v.iter().filter_map(|m| m.pearson_r).collect();
    Some(MacroMetrics {
        n_countries: v.len(),
        mis: v.iter().map(|m| m.mis).sum::<f64>() / n,
        jsd: v.iter().map(|m| m.jsd).sum::<f64>() / n,
        pearson_r: (!rs.is_empty()).then(|| rs.iter().sum::<f64>() / rs.len() as f64),
    })
}

/// Computes per-country and macro metrics for every method present in `input`.
///
/// `human` maps countries to their human preference vectors on the 0–1 scale
/// (`h = (1 + AMCE)/2`); every country of `input` must have one. Model preference per
/// dimension is the plain mean of `p_spare_preferred` (DISCA's AMCE; for Utilitarianism the
/// authors' regression evaluated at the mean count difference equals this mean whenever no
/// scenario has equal counts, which holds for the released pools).
pub fn replay_summary(
    input: &ReplayInput,
    human: &BTreeMap<CountryCode, MoralVector>,
) -> Result<ReplaySummary, ReplayError> {
    if input
        .countries
        .iter()
        .all(|c| c.vanilla.is_none() && c.disca.is_none())
    {
        return Err(ReplayError::Empty);
    }
    let mut countries = Vec::with_capacity(input.countries.len());
    let mut runs: Vec<&CountryRuns> = input.countries.iter().collect();
    runs.sort_by_key(|c| c.country);
    for run in runs {
        let h = human
            .get(&run.country)
            .ok_or_else(|| ReplayError::MissingHuman {
                country: run.country,
                available: human.keys().copied().collect(),
            })?;
        let one = |rows: &Option<Vec<ScenarioOutcome>>,
                   method|
         -> Result<Option<MethodMetrics>, ReplayError> {
            rows.as_ref()
                .map(|r| {
                    method_metrics(r, h).map_err(|source| ReplayError::Metric {
                        country: run.country,
                        method,
                        source,
                    })
                })
                .transpose()
        };
        countries.push(CountryReplay {
            country: run.country,
            human: *h,
            vanilla: one(&run.vanilla, ReplayMethod::Vanilla)?,
            disca: one(&run.disca, ReplayMethod::Disca)?,
        });
    }
    let vanilla = macro_of(countries.iter().filter_map(|c| c.vanilla.as_ref()));
    let disca = macro_of(countries.iter().filter_map(|c| c.disca.as_ref()));
    let pairs: Vec<(f64, f64)> = countries
        .iter()
        .filter_map(|c| Some((c.vanilla.as_ref()?.mis, c.disca.as_ref()?.mis)))
        .collect();
    let paired = (!pairs.is_empty()).then(|| {
        let n = pairs.len() as f64;
        let v = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let d = pairs.iter().map(|p| p.1).sum::<f64>() / n;
        PairedComparison {
            n_countries: pairs.len(),
            vanilla_mis: v,
            disca_mis: d,
            gain_pct: if v != 0.0 { (v - d) / v * 100.0 } else { 0.0 },
            wins: pairs.iter().filter(|p| p.1 < p.0).count(),
        }
    });
    Ok(ReplaySummary {
        label: input.label.clone(),
        countries,
        vanilla,
        disca,
        paired,
    })
}

fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    match x {
        Some(v) => format!("{v:.prec$}"),
        None => "-".to_string(),
    }
}

/// Renders the summary as a plain-text (Markdown-compatible) table: one row per country,
/// a macro row, and the paired gain / win count.
pub fn render_table(s: &ReplaySummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replay of {} ({} countries; MIS and JSD lower is better, r higher is better)",
        s.label,
        s.countries.len()
    );
    let _ = writeln!(out);
    let header = [
        "country",
        "MIS vanilla",
        "MIS DISCA",
        "gain %",
        "JSD vanilla",
        "JSD DISCA",
        "r vanilla",
        "r DISCA",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    let gain = |v: Option<f64>, d: Option<f64>| match (v, d) {
        (Some(v), Some(d)) if v != 0.0 => Some((v - d) / v * 100.0),
        _ => None,
    };
    for c in &s.countries {
        let (v, d) = (c.vanilla.as_ref(), c.disca.as_ref());
        rows.push([
            c.country.to_string(),
            fmt_opt(v.map(|m| m.mis), 3),
            fmt_opt(d.map(|m| m.mis), 3),
            fmt_opt(gain(v.map(|m| m.mis), d.map(|m| m.mis)), 1),
            fmt_opt(v.map(|m| m.jsd), 3),
            fmt_opt(d.map(|m| m.jsd), 3),
            fmt_opt(v.and_then(|m| m.pearson_r), 3),
            fmt_opt(d.and_then(|m| m.pearson_r), 3),
        ]);
    }
    let (v, d) = (s.vanilla.as_ref(), s.disca.as_ref());
    rows.push([
        "macro".to_string(),
        fmt_opt(v.map(|m| m.mis), 3),
        fmt_opt(d.map(|m| m.mis), 3),
        fmt_opt(s.paired.map(|p| p.gain_pct), 1),
        fmt_opt(v.map(|m| m.jsd), 3),
        fmt_opt(d.map(|m| m.jsd), 3),
        fmt_opt(v.and_then(|m| m.pearson_r), 3),
        fmt_opt(d.and_then(|m| m.pearson_r), 3),
    ]);
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = width[i])
                } else {
                    format!("{c:>w$}", w = width[i])
                }
            })
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    let sep: Vec<String> = width
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "-".repeat(w + 2)
            } else {
                format!("{}:", "-".repeat(w + 1))
            }
        })
        .collect();
    let _ = writeln!(out, "|{}|", sep.join("|"));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    if let Some(p) = s.paired {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "DISCA vs vanilla on {} countries: macro MIS {:.3} -> {:.3} (gain {:+.1}%), DISCA better in {}/{}",
            p.n_countries, p.vanilla_mis, p.disca_mis, p.gain_pct, p.wins, p.n_countries
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        s.parse().unwrap()
    }

    fn outcomes(p: [f64; 6]) -> Vec<ScenarioOutcome> {
        MoralDimension::ALL
            .iter()
            .flat_map(|&d| {
                // two scenarios per dimension averaging to p[d]
                [p[d.index()] - 0.1, p[d.index()] + 0.1].map(|x| ScenarioOutcome {
                    dimension: d,
                    p_spare_preferred: x,
                })
            })
            .collect()
    }

    #[test]
    fn summary_hand_values() {
        let human = MoralVector([0.8, 0.55, 0.75, 0.6, 0.7, 0.75]);
        let van = [0.5, 0.55, 0.75, 0.6, 0.7, 0.35]; // off by 0.3 and 0.4 -> MIS 0.5
        let dis = [0.8, 0.55, 0.75, 0.6, 0.7, 0.75]; // exact -> MIS 0
        let input = ReplayInput {
            label: "toy".into(),
            countries: vec![CountryRuns {
                country: cc("USA"),
                vanilla: Some(outcomes(van)),
                disca: Some(outcomes(dis)),
            }],
        };
        let humans = BTreeMap::from([(cc("USA"), human)]);
        let s = replay_summary(&input, &humans).unwrap();
        let c = &s.countries[0];
        let v = c.vanilla.unwrap();
        assert!((v.mis - 0.5).abs() < 1e-12);
        assert_eq!(v.n_scenarios, 12);
        let d = c.disca.unwrap();
        assert!(d.mis < 1e-12 && d.jsd < 1e-6);
        assert!((d.pearson_r.unwrap() - 1.0).abs() < 1e-12);
        let p = s.paired.unwrap();
        assert_eq!(p.wins, 1);
        assert!((p.gain_pct - 100.0).abs() < 1e-9);
        let t = render_table(&s);
        assert!(t.contains("| USA "), "{t}");
        assert!(t.contains("0.500"), "{t}");
        assert!(t.contains("better in 1/1"), "{t}");
    }

    #[test]
    fn constant_model_has_no_pearson() {
        let human = MoralVector([0.8, 0.55, 0.75, 0.6, 0.7, 0.75]);
        let m = method_metrics(&outcomes([0.5; 6]), &human).unwrap();
        assert_eq!(m.pearson_r, None);
    }

    #[test]
    fn errors() {
        let input = ReplayInput {
            label: "x".into(),
            countries: vec![CountryRuns {
                country: cc("FRA"),
                vanilla: Some(outcomes([0.5; 6])),
                disca: None,
            }],
        };
        let humans = BTreeMap::from([
            (cc("USA"), MoralVector([0.5; 6])),
            (cc("DEU"), MoralVector([0.5; 6])),
        ]);
        let e = replay_summary(&input, &humans).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no human target for country FRA; targets exist for: DEU, USA"
        );
        let mut bad = outcomes([0.5; 6]);
        bad.retain(|o| o.dimension != MoralDimension::Age);
        let input = ReplayInput {
            label: "x".into(),
            countries: vec![CountryRuns {
                country: cc("USA"),
                vanilla: Some(bad),
                disca: None,
            }],
        };
        let e = replay_summary(&input, &humans).unwrap_err();
        assert!(
            e.to_string()
                .contains("USA vanilla: no scenarios for dimension Age"),
            "{e}"
        );
        let empty = ReplayInput {
            label: "x".into(),
            countries: vec![],
        };
        assert_eq!(replay_summary(&empty, &humans), Err(ReplayError::Empty));
    }
}
