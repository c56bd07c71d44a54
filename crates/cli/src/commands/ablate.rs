//! `culturesteer ablate`: DISCA and its ablations and baselines on one benchmark, one table.

use super::eval::{execute, EvalArgs};
use anyhow::Result;
use clap::Args;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct AblateArgs {
    /// Everything `eval` takes; `--method` adds methods to the grid (e.g. wvs-profile).
    #[command(flatten)]
    pub eval: EvalArgs,
}

pub fn run(mut a: AblateArgs) -> Result<()> {
    // The grid: baselines, the full method and one switch off at a time (the registry says
    // which methods belong to it).
    let mut methods: Vec<String> = culturesteer_registry::METHODS
        .iter()
        .filter(|m| m.ablation_grid)
        .map(|m| m.name.to_string())
        .collect();
    for m in &a.eval.method {
        if !methods.contains(m) {
            methods.push(m.clone());
        }
    }
    a.eval.method = methods;
    let outcome = execute(&a.eval)?.outcome;
    let report = &outcome.report;
    if a.eval.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&culturesteer_eval::report::scores_json(report))?
        );
        return Ok(());
    }
    let lower = report.metric.lower_is_better;
    // method → country → value
    let mut table: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    for (m, s) in &report.scores {
        table
            .entry(m.as_str())
            .or_default()
            .insert(s.country.to_string(), s.value);
    }
    let reference = table.get("disca").cloned().unwrap_or_default();
    let countries: Vec<String> = reference.keys().cloned().collect();
    println!(
        "# {} ablation — {} ({} is better)\n",
        report.benchmark,
        report.metric.name,
        if lower { "lower" } else { "higher" }
    );
    println!(
        "| method | macro {} | Δ vs disca | countries worse than disca |",
        report.metric.name
    );
    println!("|---|---:|---:|---:|");
    let disca_macro = mean(countries.iter().filter_map(|c| reference.get(c)).copied());
    for m in &report.methods {
        let Some(row) = table.get(m.as_str()) else {
            println!("| {m} | – | – | – |");
            continue;
        };
        let vals: Vec<f64> = countries
            .iter()
            .filter_map(|c| row.get(c))
            .copied()
            .collect();
        if vals.len() != countries.len() || countries.is_empty() {
            println!("| {m} | – | – | – |");
            continue;
        }
        let mac = mean(vals.iter().copied());
        let worse = countries
            .iter()
            .filter(|c| {
                let (x, d) = (row[*c], reference[*c]);
                if lower {
                    x > d
                } else {
                    x < d
                }
            })
            .count();
        println!(
            "| {m} | {mac:.3} | {:+.3} | {worse}/{} |",
            mac - disca_macro,
            countries.len()
        );
    }
    println!(
        "\nCountries: {}. Full summary and plots in {}.",
        countries.join(", "),
        a.eval.out.display()
    );
    for (m, c, why) in &outcome.unscored {
        eprintln!("note: {m} {c} not scored: {why}");
    }
    Ok(())
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}
