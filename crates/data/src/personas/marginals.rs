//! Source 2: panels from the shipped WVS-7 country marginals — pooled means and quartile
//! personas `[q25, q50, q75, all]` — with the WVS items of GlobalOpinionQA
//! ([`GoqaPersonaItems`]) as the item set for countries without marginals.

use std::collections::BTreeMap;

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::source::DataSource;
use crate::wvs::{WvsCountries, WvsItem, WvsMarginals, WVS7_MARGINALS};

use super::{
    country_prompt_name, marginal_recoding, persona_text, round3, Cohort, DimensionOrigin,
    DimensionSource, GoqaPersonaItems, Persona, PersonaPanel, PersonaSourceKind, Recoding,
    ValueDimension, ValueProfile, DISCA_PANEL_SIZE,
};

/// Tolerance when comparing a cumulative share with a percentile.
const QUANTILE_EPS: f64 = 1e-9;

// ---------------------------------------------------------------------------------------------
// Source 2: the shipped marginals
// ---------------------------------------------------------------------------------------------

/// A per-dimension statistic of the pooled marginal answer distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarginalStat {
    /// The mean, rounded to 3 decimals, ≤ 0 treated as missing (as for the WVS file).
    Mean,
    /// The answer at percentile `p` ∈ (0, 1] along the dimension's named pole.
    Quantile(f64),
}

/// The shipped marginals with the country names, ready to build panels, and the fallback for
/// countries without marginals: WVS items derived from GlobalOpinionQA.
#[derive(Debug, Clone, PartialEq)]
pub struct MarginalsPersonas {
    /// The file as errors name it.
    pub file: String,
    /// The marginals.
    pub marginals: WvsMarginals,
    /// The 19 country names of `wvs/country_codes.json`.
    pub names: WvsCountries,
    /// WVS items derived from GlobalOpinionQA, used for countries without marginals (`None`
    /// when the data source holds neither `wvs/goqa_wvs_items.json` nor the GOQA subset).
    pub goqa: Option<GoqaPersonaItems>,
}

/// The quartile personas of the marginals panel: (id, percentile, label).
pub const MARGINAL_QUANTILES: [(&str, f64, &str); 3] = [
    (
        "q25",
        0.25,
        "lower quartile: the 25th-percentile answer of each value dimension",
    ),
    (
        "q50",
        0.50,
        "median: the 50th-percentile answer of each value dimension",
    ),
    (
        "q75",
        0.75,
        "upper quartile: the 75th-percentile answer of each value dimension",
    ),
];

/// The item set a country's panel is built from.
struct CountryItems<'a> {
    file: &'a str,
    items: &'a WvsMarginals,
    origin: DimensionOrigin,
    goqa_ids: Option<&'a BTreeMap<String, String>>,
}

impl MarginalsPersonas {
    /// Loads `wvs/wvs7_country_marginals.jsonl` and `wvs/country_codes.json` from `data`, and
    /// the GlobalOpinionQA fallback ([`GoqaPersonaItems::load`]).
    pub fn load(data: &DataSource) -> Result<Self, DataError> {
        Ok(MarginalsPersonas {
            file: data.display_path(WVS7_MARGINALS),
            marginals: WvsMarginals::load(data)?,
            names: WvsCountries::load(data)?,
            goqa: GoqaPersonaItems::load(data)?,
        })
    }

    /// The items of `country`: the marginals for a country of `country_codes.json` (only
    /// those, even where they lack a dimension), else the GOQA-derived items if any covers it.
    fn country_items(&self, country: CountryCode) -> Option<CountryItems<'_>> {
        if self.names.names.contains_key(&country) {
            return Some(CountryItems {
                file: &self.file,
                items: &self.marginals,
                origin: DimensionOrigin::Wvs7Marginals,
                goqa_ids: None,
            });
        }
        let g = self.goqa.as_ref()?;
        if !g.names.contains_key(&country) {
            return None;
        }
        Some(CountryItems {
            file: &g.file,
            items: &g.items,
            origin: DimensionOrigin::GlobalOpinionQa,
            goqa_ids: Some(&g.goqa_ids),
        })
    }

    /// The kind of source `country`'s panel comes from ([`PersonaSourceKind::Marginals`] or
    /// [`PersonaSourceKind::Goqa`]), or `None` when neither covers it.
    pub fn source_of(&self, country: CountryCode) -> Option<PersonaSourceKind> {
        self.country_items(country).map(|c| match c.origin {
            DimensionOrigin::GlobalOpinionQa => PersonaSourceKind::Goqa,
            _ => PersonaSourceKind::Marginals,
        })
    }

    /// Countries with a usable whole-country profile, with their names and source: the
    /// marginals countries with religiosity (names from `country_codes.json`), then every
    /// other country that the GOQA-derived items give at least one dimension (GOQA's names);
    /// sorted by code.
    pub fn country_sources(&self) -> Vec<(CountryCode, String, PersonaSourceKind)> {
        let mut out: Vec<(CountryCode, String, PersonaSourceKind)> = self
            .names
            .names
            .iter()
            .filter(|(c, _)| self.country_profile(**c).is_ok())
            .map(|(c, n)| (*c, n.clone(), PersonaSourceKind::Marginals))
            .collect();
        if let Some(g) = &self.goqa {
            out.extend(
                g.names
                    .iter()
                    .filter(|(c, _)| !self.names.names.contains_key(c))
                    .filter(|(c, _)| self.country_profile(**c).is_ok())
                    .map(|(c, n)| (*c, n.clone(), PersonaSourceKind::Goqa)),
            );
        }
        out.sort_by_key(|(c, _, _)| *c);
        out
    }

    /// [`MarginalsPersonas::country_sources`] without the source.
    pub fn countries(&self) -> Vec<(CountryCode, String)> {
        self.country_sources()
            .into_iter()
            .map(|(c, n, _)| (c, n))
            .collect()
    }

    fn no_source(&self, country: CountryCode) -> DataError {
        let all = self.country_sources();
        let list = |k: PersonaSourceKind| -> Vec<String> {
            all.iter()
                .filter(|(_, _, s)| *s == k)
                .map(|(c, _, _)| c.to_string())
                .collect()
        };
        let (m, g) = (
            list(PersonaSourceKind::Marginals),
            list(PersonaSourceKind::Goqa),
        );
        let goqa = if g.is_empty() {
            String::new()
        } else {
            format!(
                ", or one of the {} countries with WVS items in GlobalOpinionQA: {}",
                g.len(),
                g.join(", ")
            )
        };
        DataError::File {
            file: self.file.clone(),
            message: format!(
                "no persona source for {country}: pass --personas FILE (persona texts as JSON), --wvs FILE (the WVS-7 individual-level inverted CSV), or choose one of the {} countries with shipped WVS-7 marginals: {}{goqa}",
                m.len(),
                m.join(", ")
            ),
        }
    }

    /// The profile of `country` for `stat`. A country covered by neither the marginals nor
    /// the GOQA-derived items is the error that names `--personas FILE`, `--wvs FILE` and the
    /// covered countries.
    pub fn profile(
        &self,
        country: CountryCode,
        stat: MarginalStat,
    ) -> Result<ValueProfile, DataError> {
        let Some(src) = self.country_items(country) else {
            return Err(self.no_source(country));
        };
        let mut values = BTreeMap::new();
        for d in ValueDimension::ALL {
            let (pooled, _) = pooled(&src, country, d)?;
            if pooled.is_empty() {
                continue;
            }
            match stat {
                MarginalStat::Mean => {
                    let total: f64 = pooled.iter().map(|(_, w)| w).sum();
                    if total > 0.0 {
                        let mean = pooled.iter().map(|(v, w)| v * w).sum::<f64>() / total;
                        let mean = round3(mean);
                        if mean > 0.0 {
                            values.insert(d, mean);
                        }
                    }
                }
                MarginalStat::Quantile(p) => {
                    if let Some(v) = quantile_along_pole(d, &pooled, p) {
                        values.insert(d, v);
                    }
                }
            }
        }
        Ok(ValueProfile { values })
    }

    /// The whole-country profile (pooled means). Marginals countries need religiosity (Q6);
    /// GOQA-derived countries need at least one dimension.
    pub fn country_profile(&self, country: CountryCode) -> Result<ValueProfile, DataError> {
        let p = self.profile(country, MarginalStat::Mean)?;
        match self.country_items(country) {
            Some(src) if src.origin == DimensionOrigin::GlobalOpinionQa => {
                if p.values.is_empty() {
                    return Err(DataError::File {
                        file: src.file.to_string(),
                        message: format!("{country}: no value dimension has answers among the WVS items of GlobalOpinionQA, so there is no usable profile"),
                    });
                }
            }
            _ => {
                if !p.usable() {
                    return Err(DataError::File {
                        file: self.file.clone(),
                        message: format!("{country}: no religiosity (Q6) answers, so the marginals give no usable profile"),
                    });
                }
            }
        }
        Ok(p)
    }

    /// The panel `[q25, q50, q75, all]` of `country` (see the module docs), with the
    /// provenance of each dimension.
    pub fn panel(&self, country: CountryCode) -> Result<PersonaPanel, DataError> {
        let all = self.country_profile(country)?;
        let Some(src) = self.country_items(country) else {
            return Err(self.no_source(country));
        };
        let name = country_prompt_name(country);
        let mut personas = Vec::with_capacity(DISCA_PANEL_SIZE);
        for (id, p, label) in MARGINAL_QUANTILES {
            let profile = self.profile(country, MarginalStat::Quantile(p))?;
            personas.push(Persona {
                id: id.to_string(),
                label: label.to_string(),
                text: persona_text(&name, Cohort::All, &profile),
            });
        }
        personas.push(Persona {
            id: Cohort::All.id().to_string(),
            label: "whole country: the mean of each value dimension".to_string(),
            text: persona_text(&name, Cohort::All, &all),
        });
        let (mut dimensions, mut missing_dimensions) = (Vec::new(), Vec::new());
        for d in ValueDimension::ALL {
            let (pooled, items) = pooled(&src, country, d)?;
            let total: f64 = pooled.iter().map(|(_, w)| w).sum();
            if total > 0.0 {
                dimensions.push(DimensionSource {
                    dimension: d,
                    source: src.origin,
                    items,
                });
            } else {
                missing_dimensions.push(d);
            }
        }
        Ok(PersonaPanel {
            country,
            source: match src.origin {
                DimensionOrigin::GlobalOpinionQa => PersonaSourceKind::Goqa,
                _ => PersonaSourceKind::Marginals,
            },
            personas,
            dimensions,
            missing_dimensions,
        })
    }
}

/// `(inverted value, weight)` of every answer to the dimension's items in `country`, with the
/// names of the items used; weight = the item's answered share × the option's share.
fn pooled(
    src: &CountryItems<'_>,
    country: CountryCode,
    d: ValueDimension,
) -> Result<(Vec<(f64, f64)>, Vec<String>), DataError> {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for col in d.items() {
        let id = col.strip_suffix('P').unwrap_or(col);
        let Some(item) = src.items.item(id) else {
            continue;
        };
        let Some(shares) = item.distributions.get(&country) else {
            continue;
        };
        let answered = item.answered_share.get(&country).copied().unwrap_or(1.0);
        let rec = checked_recoding(src.file, item)?;
        for (i, &share) in shares.iter().enumerate() {
            if let Some(Some(v)) = rec.values.get(i) {
                out.push((*v, answered * share));
            }
        }
        used.push(match src.goqa_ids.and_then(|g| g.get(id)) {
            Some(g) => format!("{id} ({g})"),
            None => id.to_string(),
        });
    }
    Ok((out, used))
}

fn checked_recoding(file: &str, item: &WvsItem) -> Result<Recoding, DataError> {
    let rec = marginal_recoding(&item.id).ok_or_else(|| {
        DataError::field(
            file,
            item.line,
            "id",
            format!("{} feeds no value dimension", item.id),
        )
    })?;
    if item.option_codes != rec.codes {
        return Err(DataError::field(
            file,
            item.line,
            "option_codes",
            format!(
                "{} has codes {:?}; the persona recoding expects {:?}",
                item.id, item.option_codes, rec.codes
            ),
        ));
    }
    Ok(rec)
}

/// The smallest answer, ordered along `d`'s named pole, whose cumulative weight share reaches
/// `p` (within [`QUANTILE_EPS`]).
fn quantile_along_pole(d: ValueDimension, pooled: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = pooled.iter().map(|(_, w)| w).sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    // Merge equal values, then order by the normalised score (ties: by value along the pole).
    let mut by_value: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for &(v, w) in pooled {
        let key = (v * 1_000_000.0).round() as i64;
        let e = by_value.entry(key).or_insert((v, 0.0));
        e.1 += w;
    }
    let mut values: Vec<(f64, f64)> = by_value.into_values().collect();
    if !d.positive() {
        values.reverse();
    }
    let mut cum = 0.0;
    for &(v, w) in &values {
        cum += w / total;
        if cum >= p - QUANTILE_EPS {
            return Some(v);
        }
    }
    values.last().map(|(v, _)| *v)
}

/// The countries the default source builds panels for, with their names, sorted by code:
/// those of `wvs/country_codes.json` with shipped marginals and a usable profile, and the
/// other countries whose GlobalOpinionQA WVS items give at least one value dimension.
pub fn shipped_countries(data: &DataSource) -> Result<Vec<(CountryCode, String)>, DataError> {
    Ok(MarginalsPersonas::load(data)?.countries())
}

/// [`shipped_countries`] with the source of each country's panel
/// ([`PersonaSourceKind::Marginals`] or [`PersonaSourceKind::Goqa`]).
pub fn shipped_country_sources(
    data: &DataSource,
) -> Result<Vec<(CountryCode, String, PersonaSourceKind)>, DataError> {
    Ok(MarginalsPersonas::load(data)?.country_sources())
}

/// The codes of [`shipped_countries`].
pub fn marginal_countries(data: &DataSource) -> Result<Vec<CountryCode>, DataError> {
    Ok(shipped_countries(data)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}
