//! DISCA reference data: the 20-country human targets and the frozen 310-scenario pools
//! (`disca_reference/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use culturesteer_core::{CountryCode, MoralDimension, MoralVector};

use crate::error::DataError;
use crate::source::{rel_join, DataSource};
use crate::table::Csv;

/// Path of the human targets, relative to the data root.
pub const HUMAN_TARGETS_20: &str = "disca_reference/human_targets_20.csv";
/// Directory of the scenario pools, relative to the data root.
pub const SCENARIOS_DIR: &str = "disca_reference/scenarios";
/// Scenarios per released pool.
pub const SCENARIOS_PER_POOL: usize = 310;

/// The DISCA authors' human targets: 20 countries × 6 dimensions, stored on the 0–100 scale
/// (`(1 + AMCE)/2 × 100`) and exposed here on the 0–1 scale used by MIS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscaHumanTargets {
    /// Human vector per country (0–1 scale).
    pub targets: BTreeMap<CountryCode, MoralVector>,
}

impl DiscaHumanTargets {
    /// Loads and validates `disca_reference/human_targets_20.csv` (long format
    /// `country, dimension, human_amce`; every country needs all six dimensions once).
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let file = source.display_path(HUMAN_TARGETS_20);
        let text = source.read(HUMAN_TARGETS_20)?;
        Self::parse(&file, &text)
    }

    /// Parses the CSV text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let csv = Csv::parse(file, text, &["country", "dimension", "human_amce"])?;
        let mut partial: BTreeMap<CountryCode, [Option<f64>; 6]> = BTreeMap::new();
        for row in csv.rows() {
            let c = row.country("country")?;
            let d = row.dimension("dimension")?;
            let v = row.f64_in("human_amce", 0.0, 100.0)?;
            let slot = &mut partial.entry(c).or_default()[d.index()];
            if slot.is_some() {
                return Err(row.err("dimension", format!("duplicate {d} for {c}")));
            }
            *slot = Some(v / 100.0);
        }
        if partial.is_empty() {
            return Err(DataError::File {
                file: file.to_string(),
                message: "no targets".into(),
            });
        }
        let mut targets = BTreeMap::new();
        for (c, vals) in partial {
            let mut v = MoralVector::default();
            for d in MoralDimension::ALL {
                v[d] = vals[d.index()].ok_or_else(|| DataError::File {
                    file: file.to_string(),
                    message: format!("country {c} has no {} target", d.criterion()),
                })?;
            }
            targets.insert(c, v);
        }
        Ok(DiscaHumanTargets { targets })
    }

    /// The target of `code`, or an error listing the 20 valid codes.
    pub fn get(&self, code: CountryCode) -> Result<MoralVector, DataError> {
        self.targets.get(&code).copied().ok_or_else(|| {
            DataError::unknown_country(
                HUMAN_TARGETS_20,
                code.as_str(),
                self.targets.keys().map(|c| c.as_str()),
            )
        })
    }

    /// The countries, sorted.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.targets.keys().copied().collect()
    }
}

/// One scenario of a frozen pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Row order in the pool (0-based; the results files join on it).
    pub scenario_idx: u32,
    /// The moral dimension (`phenomenon_category`).
    pub dimension: MoralDimension,
    /// Whether the preferred group is Option B (right).
    pub preferred_on_right: bool,
    /// Characters on the left.
    pub n_left: u32,
    /// Characters on the right.
    pub n_right: u32,
    /// The rendered scenario text.
    pub prompt: String,
}

/// One country's frozen scenario pool (`scenarios/<ISO3>_<lang>.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioPool {
    /// The country.
    pub country: CountryCode,
    /// Language code from the file name (8 pools fall back to English text regardless).
    pub lang: String,
    /// Scenarios in file order.
    pub scenarios: Vec<Scenario>,
}

/// A pool file: its country, language and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFile {
    /// Country from the file name.
    pub country: CountryCode,
    /// Language from the file name.
    pub lang: String,
    /// File name inside [`SCENARIOS_DIR`].
    pub file_name: String,
}

/// The pool files present in `source`, sorted by country.
pub fn list_scenario_pools(source: &DataSource) -> Result<Vec<PoolFile>, DataError> {
    let mut out = Vec::new();
    for name in source.list(SCENARIOS_DIR)? {
        let Some(stem) = name.strip_suffix(".csv") else {
            continue;
        };
        let Some((iso, lang)) = stem.split_once('_') else {
            continue;
        };
        let Ok(country) = iso.parse::<CountryCode>() else {
            continue;
        };
        out.push(PoolFile {
            country,
            lang: lang.to_string(),
            file_name: name.clone(),
        });
    }
    out.sort_by_key(|p| p.country);
    Ok(out)
}

/// Loads the pool of `country`, or errors listing the countries that have one.
pub fn load_scenario_pool(
    source: &DataSource,
    country: CountryCode,
) -> Result<ScenarioPool, DataError> {
    let pools = list_scenario_pools(source)?;
    let pf = pools.iter().find(|p| p.country == country).ok_or_else(|| {
        DataError::unknown_country(
            SCENARIOS_DIR,
            country.as_str(),
            pools.iter().map(|p| p.country.as_str()),
        )
    })?;
    let rel = rel_join(SCENARIOS_DIR, &pf.file_name);
    let text = source.read(&rel)?;
    parse_scenario_pool(&source.display_path(&rel), &text, country, &pf.lang)
}

/// Loads every pool present in `source`.
pub fn load_all_scenario_pools(source: &DataSource) -> Result<Vec<ScenarioPool>, DataError> {
    list_scenario_pools(source)?
        .into_iter()
        .map(|pf| {
            let rel = rel_join(SCENARIOS_DIR, &pf.file_name);
            let text = source.read(&rel)?;
            parse_scenario_pool(&source.display_path(&rel), &text, pf.country, &pf.lang)
        })
        .collect()
}

/// Parses a pool CSV (`scenario_idx, phenomenon_category, preferred_on_right, n_left,
/// n_right, Prompt`).
pub fn parse_scenario_pool(
    file: &str,
    text: &str,
    country: CountryCode,
    lang: &str,
) -> Result<ScenarioPool, DataError> {
    let csv = Csv::parse(
        file,
        text,
        &[
            "scenario_idx",
            "phenomenon_category",
            "preferred_on_right",
            "n_left",
            "n_right",
            "Prompt",
        ],
    )?;
    let mut scenarios = Vec::with_capacity(csv.len());
    for row in csv.rows() {
        let scenario_idx = row.u32("scenario_idx")?;
        if scenario_idx as usize != scenarios.len() {
            return Err(row.err(
                "scenario_idx",
                format!("expected {} (rows must be in order)", scenarios.len()),
            ));
        }
        scenarios.push(Scenario {
            scenario_idx,
            dimension: row.dimension("phenomenon_category")?,
            preferred_on_right: row.bool("preferred_on_right")?,
            n_left: row.u32("n_left")?,
            n_right: row.u32("n_right")?,
            prompt: row.text("Prompt")?.to_string(),
        });
    }
    if scenarios.is_empty() {
        return Err(DataError::File {
            file: file.to_string(),
            message: "no scenarios".into(),
        });
    }
    Ok(ScenarioPool {
        country,
        lang: lang.to_string(),
        scenarios,
    })
}
