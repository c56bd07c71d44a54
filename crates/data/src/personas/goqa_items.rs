//! The GlobalOpinionQA fallback's items: the WVS-sourced GOQA questions that
//! `wvs/goqa_wvs_items.json` maps to WVS items, turned into per-country item distributions in
//! the marginals' shape.

use std::collections::{BTreeMap, BTreeSet};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::goqa::{parse_country_label, GlobalOpinionQa, GoqaSource, GOQA_SUBSET};
use crate::source::DataSource;
use crate::wvs::{GoqaWvsItems, WvsItem, WvsMarginals, GOQA_WVS_ITEMS};

use super::marginal_recoding;

/// Per-country WVS item distributions derived from the WVS-sourced GlobalOpinionQA questions
/// of `wvs/goqa_wvs_items.json`, in the marginals' shape (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GoqaPersonaItems {
    /// The mapping file as errors name it.
    pub file: String,
    /// One item per mapping entry: `id` = the WVS item, `option_codes` = the item's WVS codes
    /// ([`marginal_recoding`]), `line` = the mapping entry's line; `distributions` = the GOQA
    /// shares of the coded options renormalised to sum 1, `answered_share` = their sum (of the
    /// GOQA distribution rescaled to 1), by country.
    pub items: WvsMarginals,
    /// The GOQA question id behind each WVS item.
    pub goqa_ids: BTreeMap<String, String>,
    /// GOQA's English name of every country with data (e.g. `IRN` → `Iran`).
    pub names: BTreeMap<CountryCode, String>,
}

impl GoqaPersonaItems {
    /// Loads `wvs/goqa_wvs_items.json` and `globalopinionqa/goqa_recovered_subset.jsonl` from
    /// `data` and derives the items; `Ok(None)` when `data` holds neither file (a data
    /// directory laid out before the fallback existed). Only one of the two is an error.
    pub fn load(data: &DataSource) -> Result<Option<Self>, DataError> {
        let absent = |e: &DataError| match e {
            DataError::NotEmbedded { .. } => true,
            DataError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        };
        let mapping = GoqaWvsItems::load(data);
        let goqa = GlobalOpinionQa::load(data);
        match (mapping, goqa) {
            (Err(a), Err(b)) if absent(&a) && absent(&b) => Ok(None),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(m), Ok(g)) => Ok(Some(Self::derive(
                &data.display_path(GOQA_WVS_ITEMS),
                &m,
                &data.display_path(GOQA_SUBSET),
                &g,
            )?)),
        }
    }

    /// Derives the items. Errors (naming `mapping_file`, the entry's line and field): a
    /// `goqa_id` not in the GOQA file or not WVS-sourced; `option_codes` whose length differs
    /// from the question's options.
    pub fn derive(
        mapping_file: &str,
        mapping: &GoqaWvsItems,
        goqa_file: &str,
        goqa: &GlobalOpinionQa,
    ) -> Result<Self, DataError> {
        let mut items = Vec::with_capacity(mapping.items.len());
        let mut goqa_ids = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (i, m) in mapping.items.iter().enumerate() {
            let err = |field: &str, msg: String| {
                DataError::field(mapping_file, m.line, &format!("items[{i}].{field}"), msg)
            };
            let q = goqa
                .questions
                .iter()
                .find(|q| q.id == m.goqa_id)
                .ok_or_else(|| err("goqa_id", format!("{} is not in {goqa_file}", m.goqa_id)))?;
            if q.source != GoqaSource::Wvs {
                return Err(err(
                    "goqa_id",
                    format!(
                        "{} ({goqa_file} line {}) is not a WVS-sourced question",
                        m.goqa_id, q.line
                    ),
                ));
            }
            if m.option_codes.len() != q.options.len() {
                return Err(err(
                    "option_codes",
                    format!(
                        "{} codes for the {} options of {} ({goqa_file} line {})",
                        m.option_codes.len(),
                        q.options.len(),
                        m.goqa_id,
                        q.line
                    ),
                ));
            }
            let rec = marginal_recoding(&m.wvs_item).ok_or_else(|| {
                err(
                    "wvs_item",
                    format!("{} feeds no value dimension", m.wvs_item),
                )
            })?;
            // Position in the item's code list of each GOQA option (None: dropped).
            let mut slot: Vec<Option<usize>> = Vec::with_capacity(m.option_codes.len());
            for (j, c) in m.option_codes.iter().enumerate() {
                slot.push(match c {
                    None => None,
                    Some(c) => Some(rec.codes.iter().position(|x| x == c).ok_or_else(|| {
                        err(
                            &format!("option_codes[{j}]"),
                            format!("{c} is not a WVS code of {}", m.wvs_item),
                        )
                    })?),
                });
            }
            let options = rec
                .codes
                .iter()
                .enumerate()
                .map(|(k, code)| {
                    slot.iter()
                        .position(|s| *s == Some(k))
                        .map_or_else(|| code.to_string(), |j| q.options[j].clone())
                })
                .collect();
            let countries: BTreeSet<CountryCode> =
                q.distributions.iter().filter_map(|d| d.country).collect();
            let (mut distributions, mut answered_share) = (BTreeMap::new(), BTreeMap::new());
            for c in countries {
                let Some(d) = q.distribution_for(c) else {
                    continue;
                };
                let norm = d.normalized();
                let mut shares = vec![0.0; rec.codes.len()];
                let mut kept = 0.0;
                for (j, s) in slot.iter().enumerate() {
                    if let Some(k) = s {
                        shares[*k] += norm[j];
                        kept += norm[j];
                    }
                }
                if !(kept > 0.0 && kept.is_finite()) {
                    continue;
                }
                for s in &mut shares {
                    *s /= kept;
                }
                distributions.insert(c, shares);
                answered_share.insert(c, kept.min(1.0));
                names
                    .entry(c)
                    .or_insert_with(|| parse_country_label(&d.label).0);
            }
            goqa_ids.insert(m.wvs_item.clone(), m.goqa_id.clone());
            items.push(WvsItem {
                line: m.line,
                id: m.wvs_item.clone(),
                question: q.question.clone(),
                options,
                option_codes: rec.codes.clone(),
                distributions,
                answered_share,
            });
        }
        Ok(GoqaPersonaItems {
            file: mapping_file.to_string(),
            items: WvsMarginals { items },
            goqa_ids,
            names,
        })
    }
}
