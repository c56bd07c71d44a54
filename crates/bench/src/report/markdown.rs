//! `summary.md`: the report as Markdown.

use super::svg::plot_list;
use super::verdict::{macro_floor_of, replicates_of, verdicts};
use super::{beats, direction, fmt3, fmt_opt, mean, percentile_ci, ReportInput, View, MISSING};
use culturesteer_core::CountryCode;
use std::fmt::Write as _;

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

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

pub(super) fn render(input: &ReportInput, view: &View) -> String {
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
