//! `scores.json`: the machine-readable scores of a run.

use super::verdict::{macro_floor_of, replicates_of};
use super::{percentile_ci, verdicts, ReportInput, View};

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
