//! What a report says, as a list of blocks (headings, paragraphs, lists, tables, plots).
//!
//! `summary.md` ([`super::markdown`]) and `report.html` ([`super::html`]) are both written from
//! these blocks, so the two always show the same tables, verdicts and diagnostics.

use super::svg::plot_list;
use super::verdict::{
    macro_floor_of, replicates_of, verdicts, CiBasis, COUNTRY_BOOTSTRAP_RESAMPLES,
};
use super::{beats, direction, fmt3, fmt_opt, mean, percentile_ci, ReportInput, View, MISSING};
use culturesteer_core::CountryCode;

/// A piece of running text.
pub(super) enum Span {
    /// Text written by the report itself.
    Text(String),
    /// A name taken from the input (method, label, dimension); Markdown escapes its `|`.
    Name(String),
    Strong(Vec<Span>),
    Em(Vec<Span>),
}

/// Running text: a paragraph, a list item, a heading or a table cell.
pub(super) type Inline = Vec<Span>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

pub(super) enum Block {
    /// A heading of level 1 to 3.
    Heading(u8, Inline),
    Paragraph(Inline),
    List(Vec<Inline>),
    Table {
        align: Vec<Align>,
        header: Vec<Inline>,
        rows: Vec<Vec<Inline>>,
    },
    /// The plot files, relative to the report directory (`plots/...`).
    Plots(Vec<String>),
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

fn name(s: &str) -> Span {
    Span::Name(s.to_string())
}

fn strong(s: impl Into<String>) -> Span {
    Span::Strong(vec![text(s)])
}

/// One cell of plain text.
fn cell(s: impl Into<String>) -> Inline {
    vec![text(s)]
}

/// Column alignments: the first `left` columns left-aligned, the rest right-aligned.
fn aligns(left: usize, total: usize) -> Vec<Align> {
    (0..total)
        .map(|k| if k < left { Align::Left } else { Align::Right })
        .collect()
}

/// A row of method values, the best bold (ties at 3 decimals all bold) — unless it does not
/// beat the row's floor: a method no better than the uniform predictor is never bold.
fn method_cells(values: &[Option<f64>], lower_is_better: bool, floor: Option<f64>) -> Vec<Inline> {
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
                vec![strong(fmt3(*v))]
            }
            other => cell(fmt_opt(*other)),
        })
        .collect()
}

/// A table whose columns are the leading ones (the first left-aligned, the others
/// right-aligned), then one right-aligned column per method.
fn method_table(lead: &[&str], methods: &[&str], rows: Vec<Vec<Inline>>) -> Block {
    let mut header: Vec<Inline> = lead.iter().map(|l| cell(*l)).collect();
    header.extend(methods.iter().map(|m| vec![name(m)]));
    Block::Table {
        align: aligns(1, header.len()),
        header,
        rows,
    }
}

/// The whole report: a per-country table of the headline metric closed by a macro row, the
/// verdicts, the intervals, per-dimension tables, secondary metrics (diagnostics) and the plots.
pub(super) fn blocks(input: &ReportInput, view: &View) -> Vec<Block> {
    let mut b = vec![
        Block::Heading(
            1,
            vec![text(format!("{} — {}", input.benchmark, input.metric.name))],
        ),
        Block::Paragraph(vec![text(format!("Model: {}", input.model))]),
    ];
    if !view.has_scores() {
        b.push(Block::Paragraph(cell(
            "No results yet: no (method, country) pair has been scored.",
        )));
        return b;
    }
    b.push(Block::Paragraph(vec![
        text("Metric: "),
        strong(input.metric.name),
        text(format!(
            " ({}). Bold marks the best method in each row when it beats the reference predictor; {} marks a method without a score for that country.",
            direction(&input.metric),
            MISSING
        )),
    ]));
    let has_floor = !view.floor.is_empty();
    if has_floor {
        b.push(Block::Paragraph(vec![
            text("Column "),
            Span::Em(vec![name(&input.floor_label)]),
            text(": the score of the reference predictor on the same items (not a method, never bold)."),
        ]));
    }

    // Per-country table.
    b.push(Block::Heading(2, cell("Per country")));
    let mut header = vec![cell("Country")];
    header.extend(view.methods.iter().map(|m| vec![name(m)]));
    if has_floor {
        header.push(vec![name(&input.floor_label)]);
    }
    header.push(cell("n items"));
    let lower = input.metric.lower_is_better;
    let mut rows = Vec::new();
    for &c in &view.countries {
        let values: Vec<Option<f64>> = (0..view.methods.len())
            .map(|m| view.get(m, c).map(|x| x.value))
            .collect();
        let mut row = vec![cell(c.to_string())];
        row.extend(method_cells(&values, lower, view.floor.get(&c).copied()));
        if has_floor {
            row.push(cell(fmt_opt(view.floor.get(&c).copied())));
        }
        let ns: Vec<usize> = (0..view.methods.len())
            .filter_map(|m| view.get(m, c))
            .map(|x| x.n_items)
            .collect();
        row.push(cell(match (ns.iter().min(), ns.iter().max()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => MISSING.to_string(),
        }));
        rows.push(row);
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
    let mut row = vec![vec![strong("macro")]];
    row.extend(method_cells(&macro_values, lower, macro_floor));
    if has_floor {
        row.push(cell(fmt_opt(macro_floor)));
    }
    row.push(cell(format!("({} countries)", complete.len())));
    rows.push(row);
    b.push(Block::Table {
        align: aligns(1, header.len()),
        header,
        rows,
    });
    if complete.is_empty() {
        b.push(Block::Paragraph(vec![
            strong("macro"),
            text(": no country has a score for every method, so there is no macro mean."),
        ]));
    } else {
        let listed: Vec<String> = complete.iter().map(|c| c.to_string()).collect();
        let mut t = format!(
            ": unweighted mean over the {} countries that every method has ({})",
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
            t.push_str(&format!(
                "; left out because some method lacks them: {}",
                excluded.join(", ")
            ));
        }
        t.push('.');
        b.push(Block::Paragraph(vec![strong("macro"), text(t)]));
    }

    verdict_blocks(&mut b, input, &complete, macro_floor);
    interval_blocks(&mut b, input, view, &complete);
    component_blocks(&mut b, view);
    secondary_blocks(&mut b, view);
    drafts_blocks(&mut b, view);

    let plots = plot_list(input, view);
    if !plots.is_empty() {
        b.push(Block::Heading(2, cell("Plots")));
        b.push(Block::Plots(
            plots
                .into_iter()
                .map(|p| format!("plots/{}", p.file))
                .collect(),
        ));
    }
    b
}

/// What the numbers mean: each method against the uniform floor and against vanilla, with the
/// bootstrap interval of the macro value, and the views that cannot differ from their method.
fn verdict_blocks(
    b: &mut Vec<Block>,
    input: &ReportInput,
    complete: &[CountryCode],
    macro_floor: Option<f64>,
) {
    if complete.is_empty() {
        return;
    }
    b.push(Block::Heading(2, cell("What the numbers say")));
    let mut items = Vec::new();
    let mut any_beats = false;
    let mut any_country_ci = false;
    for v in verdicts(input) {
        if let Some(parent) = &v.same_as {
            items.push(vec![
                Span::Strong(vec![name(&v.method)]),
                text(" equals "),
                name(parent),
                text(" on every country of this run, so it is not a separate result here (no column)."),
            ]);
            continue;
        }
        let Some(value) = v.macro_value else { continue };
        let by_countries = v.ci_basis == Some(CiBasis::Countries);
        any_country_ci |= by_countries;
        let ci_txt = v
            .macro_ci95
            .map(|(a, b)| {
                let over = if by_countries {
                    ", countries resampled"
                } else {
                    ""
                };
                format!(" (95% CI {} – {}{over})", fmt3(a), fmt3(b))
            })
            .unwrap_or_default();
        let mut line = vec![
            Span::Strong(vec![name(&v.method)]),
            text(format!(
                ": macro {} {}{ci_txt}",
                input.metric.name,
                fmt3(value)
            )),
        ];
        if let (Some(f), Some(beats)) = (macro_floor, v.beats_floor) {
            if beats {
                any_beats = true;
                let mut t = format!("; better than the uniform predictor ({})", fmt3(f));
                if let (true, Some((a, b))) = (by_countries, v.floor_diff_ci95) {
                    t.push_str(&format!(
                        " by {} (95% CI of the difference {} – {})",
                        fmt3((value - f).abs()),
                        fmt3(a),
                        fmt3(b)
                    ));
                }
                if v.clearly_beats_floor == Some(false) {
                    t.push_str(if by_countries {
                        ", but the interval of its difference to the floor includes zero"
                    } else {
                        ", but its interval includes the floor"
                    });
                }
                line.push(text(t));
            } else {
                line.push(text("; "));
                line.push(strong("not better than the uniform predictor"));
                line.push(text(format!(
                    " ({}): answering 1/n on every item scores as well",
                    fmt3(f)
                )));
            }
        }
        if let (Some(g), Some(w)) = (v.gain_vs_vanilla_pct, v.wins_vs_vanilla) {
            line.push(text(format!(
                "; gain vs vanilla {g:+.1}%, better than vanilla in {w}/{} countries",
                complete.len()
            )));
            if let Some((a, b)) = v.vanilla_diff_ci95 {
                let none = if a <= 0.0 && b >= 0.0 {
                    ": no measurable difference"
                } else {
                    ""
                };
                line.push(text(format!(
                    " (95% CI of the difference to vanilla {} – {}{none})",
                    fmt3(a),
                    fmt3(b)
                )));
            }
        }
        line.push(text("."));
        items.push(line);
    }
    b.push(Block::List(items));
    if macro_floor.is_some() && !any_beats {
        b.push(Block::Paragraph(cell("No method beats the uniform predictor on this run, so no method is bold: on this model the differences between methods are not cultural alignment.")));
    }
    if any_country_ci {
        b.push(Block::Paragraph(cell(format!(
            "Intervals: a country's value here cannot be resampled over items, so the intervals resample the {} countries instead ({COUNTRY_BOOTSTRAP_RESAMPLES} resamples with replacement, the same for every method and the floor): they say how much the macro value moves with the countries drawn, and a method is called better than the uniform predictor only when the interval of its macro difference to the floor lies wholly on the better side.",
            complete.len()
        ))));
    }
    if !input.bootstrap.is_empty() {
        let n = input
            .bootstrap
            .iter()
            .map(|(_, _, r)| r.len())
            .min()
            .unwrap_or(0);
        b.push(Block::Paragraph(cell(format!(
            "Intervals: 95% percentile bootstrap over items ({n} resamples per country, the macro interval resampling every country), bias-corrected: the replicates are shifted so that their mean is the point estimate, because resampling noise alone inflates a norm such as MIS. Every method's k-th resample of a country draws the same items, so the intervals of differences to vanilla are paired; a gain is only there when that interval excludes zero."
        ))));
    }
}

/// Per-country bootstrap intervals of the headline metric.
fn interval_blocks(b: &mut Vec<Block>, input: &ReportInput, view: &View, complete: &[CountryCode]) {
    if input.bootstrap.is_empty() || complete.is_empty() {
        return;
    }
    b.push(Block::Heading(2, cell("95% intervals per country")));
    let rows = view
        .countries
        .iter()
        .map(|&c| {
            let mut row = vec![cell(c.to_string())];
            row.extend(view.methods.iter().map(|m| {
                let ci = replicates_of(input, m, c).and_then(percentile_ci);
                cell(
                    ci.map(|(a, b)| format!("{}–{}", fmt3(a), fmt3(b)))
                        .unwrap_or_else(|| MISSING.to_string()),
                )
            }));
            row
        })
        .collect();
    b.push(method_table(&["Country"], &view.methods, rows));
}

/// Per-dimension tables (model vs human), one per country with components.
fn component_blocks(b: &mut Vec<Block>, view: &View) {
    let with: Vec<CountryCode> = view
        .countries
        .iter()
        .copied()
        .filter(|&c| !view.component_names(c).is_empty())
        .collect();
    if with.is_empty() {
        return;
    }
    b.push(Block::Heading(2, cell("Per dimension")));
    b.push(Block::Paragraph(cell(
        "Values on each dimension's own scale; human = the survey target.",
    )));
    for c in with {
        b.push(Block::Heading(3, cell(c.to_string())));
        let rows = view
            .component_names(c)
            .into_iter()
            .map(|n| {
                let mut row = vec![vec![name(n)], cell(fmt_opt(view.human(c, n)))];
                row.extend((0..view.methods.len()).map(|m| cell(fmt_opt(view.model(m, c, n)))));
                row
            })
            .collect();
        b.push(method_table(&["Dimension", "human"], &view.methods, rows));
    }
}

/// Cultural Palette: one line per method with continent drafts, how many drafts ended with an
/// option the parser read, summed over countries (from the `drafts_parsed_share` and `drafts`
/// secondary metrics).
fn drafts_blocks(b: &mut Vec<Block>, view: &View) {
    let mut lines = Vec::new();
    for (mi, m) in view.methods.iter().enumerate() {
        let (mut parsed, mut total) = (0.0, 0.0);
        for &c in &view.countries {
            let Some(sc) = view.get(mi, c) else { continue };
            let get = |k: &str| {
                sc.secondary
                    .iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| *v)
            };
            if let (Some(share), Some(n)) = (get("drafts_parsed_share"), get("drafts")) {
                parsed += (share * n).round();
                total += n;
            }
        }
        if total > 0.0 {
            lines.push(vec![
                name(m),
                text(format!(
                    ": drafts parsed: {parsed:.0}/{total:.0} ({:.0}%)",
                    100.0 * parsed / total
                )),
            ]);
        }
    }
    if !lines.is_empty() {
        b.push(Block::Paragraph(cell(
            "Continent drafts whose chosen option (\"Answer: X\") was parsed, over all countries:",
        )));
        b.push(Block::List(lines));
    }
}

/// Secondary metrics (the diagnostics): one row per (country, method) that has any.
fn secondary_blocks(b: &mut Vec<Block>, view: &View) {
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
    b.push(Block::Heading(2, cell("Secondary metrics")));
    let mut header = vec![cell("Country"), cell("Method")];
    header.extend(names.iter().map(|n| vec![name(n)]));
    let mut rows = Vec::new();
    for &c in &view.countries {
        for (mi, m) in view.methods.iter().enumerate() {
            let Some(sc) = view.get(mi, c) else { continue };
            if sc.secondary.is_empty() {
                continue;
            }
            let mut row = vec![cell(c.to_string()), vec![name(m)]];
            for n in &names {
                let v = sc
                    .secondary
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| *v);
                row.push(cell(fmt_opt(v)));
            }
            rows.push(row);
        }
    }
    b.push(Block::Table {
        align: aligns(2, header.len()),
        header,
        rows,
    });
}
