//! Several seeds of one run: the spread of a stochastic method's score over its random draws.
//!
//! `eval --seeds N` runs the stochastic methods (those whose answers depend on the seed, such as
//! DISCA's importance sampling) once per seed, the others once, and summarises each method's
//! headline metric as mean ± sample standard deviation over the seeds, per country and macro.
//! Written as `seeds.md` and `seeds.json` (schema [`SEEDS_SCHEMA`]) beside the first run.

use crate::report::{verdicts, ReportInput};
use culturesteer_core::CountryCode;
use std::collections::BTreeMap;

/// Version of the `seeds.json` layout; bumped on any change that breaks readers.
pub const SEEDS_SCHEMA: &str = "culturesteer.seeds/1";

/// One run of the series: its seed and its report.
pub struct SeedRun {
    pub seed: u64,
    pub report: ReportInput,
}

/// Mean, sample standard deviation (`None` for one value) and count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Spread {
    pub fn of(xs: &[f64]) -> Option<Spread> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = (n > 1)
            .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Spread { mean, std, n })
    }

    fn cell(&self) -> String {
        match self.std {
            Some(s) => format!("{:.3} ± {:.3}", self.mean, s),
            None => format!("{:.3}", self.mean),
        }
    }
}

/// Per method (in first-seen order): macro spread and per-country spreads.
pub struct SeedSummary {
    pub seeds: Vec<u64>,
    pub countries: Vec<CountryCode>,
    pub methods: Vec<(String, Option<Spread>, BTreeMap<CountryCode, Spread>)>,
}

/// Summarises the runs. A method's values come from every run that reports it (a view equal to
/// its parent on a run is left out, as in the reports).
pub fn summarize(runs: &[SeedRun]) -> SeedSummary {
    let mut order: Vec<String> = Vec::new();
    let mut macros: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut per_country: BTreeMap<(String, CountryCode), Vec<f64>> = BTreeMap::new();
    let mut countries: Vec<CountryCode> = Vec::new();
    for run in runs {
        for v in verdicts(&run.report) {
            if v.same_as.is_some() {
                continue;
            }
            if !order.contains(&v.method) {
                order.push(v.method.clone());
            }
            if let Some(m) = v.macro_value {
                macros.entry(v.method.clone()).or_default().push(m);
            }
        }
        for (method, sc) in &run.report.scores {
            if !order.contains(method) {
                continue;
            }
            if !countries.contains(&sc.country) {
                countries.push(sc.country);
            }
            per_country
                .entry((method.clone(), sc.country))
                .or_default()
                .push(sc.value);
        }
    }
    let methods = order
        .into_iter()
        .map(|m| {
            let by_country = countries
                .iter()
                .filter_map(|&c| {
                    per_country
                        .get(&(m.clone(), c))
                        .and_then(|xs| Spread::of(xs))
                        .map(|s| (c, s))
                })
                .collect();
            let macro_spread = macros.get(&m).and_then(|xs| Spread::of(xs));
            (m, macro_spread, by_country)
        })
        .collect();
    SeedSummary {
        seeds: runs.iter().map(|r| r.seed).collect(),
        countries,
        methods,
    }
}

/// `seeds.md`: one table, mean ± standard deviation over the seeds.
pub fn render_seeds(runs: &[SeedRun]) -> String {
    let s = summarize(runs);
    let metric = runs.first().map_or("score", |r| r.report.metric.name);
    let mut out = String::new();
    out.push_str(&format!(
        "## Across seeds ({} runs; seeds {})\n\n",
        s.seeds.len(),
        s.seeds
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "{metric}: mean ± sample standard deviation over the seeds for methods whose answers depend on \
         the seed; one value where a method was run once (its answers do not depend on the seed).\n\n"
    ));
    out.push_str("| method | runs | macro |");
    for c in &s.countries {
        out.push_str(&format!(" {c} |"));
    }
    out.push_str("\n|---|---:|---:|");
    for _ in &s.countries {
        out.push_str("---:|");
    }
    out.push('\n');
    for (m, macro_spread, by_country) in &s.methods {
        let runs = by_country.values().map(|x| x.n).max().unwrap_or(0);
        out.push_str(&format!(
            "| {m} | {runs} | {} |",
            macro_spread.map_or("–".into(), |x| x.cell())
        ));
        for c in &s.countries {
            out.push_str(&format!(
                " {} |",
                by_country.get(c).map_or("–".into(), |x| x.cell())
            ));
        }
        out.push('\n');
    }
    out
}

/// `seeds.json`.
pub fn seeds_json(runs: &[SeedRun]) -> serde_json::Value {
    let s = summarize(runs);
    let methods: Vec<serde_json::Value> = s
        .methods
        .iter()
        .map(|(m, macro_spread, by_country)| {
            let countries: serde_json::Map<String, serde_json::Value> = by_country
                .iter()
                .map(|(c, x)| (c.to_string(), serde_json::json!(x)))
                .collect();
            serde_json::json!({ "method": m, "macro": macro_spread, "countries": countries })
        })
        .collect();
    serde_json::json!({
        "schema": SEEDS_SCHEMA,
        "benchmark": runs.first().map(|r| r.report.benchmark.clone()),
        "metric": runs.first().map(|r| r.report.metric),
        "seeds": s.seeds,
        "methods": methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CountryScore, MetricInfo};

    fn run(seed: u64, methods: &[(&str, f64, f64)]) -> SeedRun {
        let usa = CountryCode::new("USA").unwrap();
        let deu = CountryCode::new("DEU").unwrap();
        let score = |country, value| CountryScore {
            country,
            value,
            n_items: 10,
            components: vec![],
            secondary: vec![],
        };
        SeedRun {
            seed,
            report: ReportInput {
                benchmark: "multitp".into(),
                metric: MetricInfo {
                    name: "MIS",
                    lower_is_better: true,
                },
                model: "m".into(),
                methods: methods.iter().map(|m| m.0.to_string()).collect(),
                scores: methods
                    .iter()
                    .flat_map(|&(m, a, b)| {
                        [
                            (m.to_string(), score(usa, a)),
                            (m.to_string(), score(deu, b)),
                        ]
                    })
                    .collect(),
                floors: vec![],
                floor_label: "uniform".into(),
                bootstrap: vec![],
                same_as_parent: vec![],
            },
        }
    }

    #[test]
    fn stochastic_methods_get_a_spread_and_deterministic_ones_one_value() {
        let runs = [
            run(42, &[("vanilla", 0.5, 0.7), ("disca", 0.4, 0.6)]),
            run(43, &[("disca", 0.5, 0.6)]),
            run(44, &[("disca", 0.6, 0.6)]),
        ];
        let s = summarize(&runs);
        assert_eq!(s.seeds, vec![42, 43, 44]);
        let (name, macro_v, usa) = &s.methods[0];
        assert_eq!(name, "vanilla");
        assert_eq!(macro_v.unwrap().n, 1);
        assert!((macro_v.unwrap().mean - 0.6).abs() < 1e-12);
        assert_eq!(usa.len(), 2);
        let (name, macro_v, by_country) = &s.methods[1];
        assert_eq!(name, "disca");
        let usa = by_country[&CountryCode::new("USA").unwrap()];
        assert!((usa.mean - 0.5).abs() < 1e-12 && (usa.std.unwrap() - 0.1).abs() < 1e-12);
        let deu = by_country[&CountryCode::new("DEU").unwrap()];
        assert_eq!(deu.std, Some(0.0));
        // Macro per seed: 0.5, 0.55, 0.6.
        assert!((macro_v.unwrap().mean - 0.55).abs() < 1e-12);
        assert_eq!(macro_v.unwrap().n, 3);
        let md = render_seeds(&runs);
        assert!(
            md.contains("| disca | 3 | 0.550 ± 0.050 | 0.500 ± 0.100 | 0.600 ± 0.000 |"),
            "{md}"
        );
        assert!(
            md.contains("| vanilla | 1 | 0.600 | 0.500 | 0.700 |"),
            "{md}"
        );
        let js = seeds_json(&runs);
        assert_eq!(js["schema"], SEEDS_SCHEMA);
        assert_eq!(js["methods"][1]["macro"]["n"], 3);
    }

    #[test]
    fn spread_is_mean_and_sample_std() {
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert!((s.std.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(s.n, 4);
        assert_eq!(Spread::of(&[0.7]).unwrap().std, None);
        assert!(Spread::of(&[]).is_none());
        assert_eq!(
            Spread::of(&[0.5, 0.5]).unwrap().cell(),
            "0.500 ± 0.000",
            "two equal draws have zero spread, shown as such"
        );
    }
}
