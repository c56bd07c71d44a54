//! Moral Machine country-level human preferences (`moral_machine/country_preferences.csv`).
//!
//! The human vector used by MIS is the `pref_*` columns (0–1 scale). The loader checks that
//! every `pref_*` equals `(1 + amce_*)/2` (MultiTP §2.2) within [`PREF_AMCE_TOLERANCE`], so
//! both readings are the same numbers; Utilitarianism uses `amce_no_characters` (not the
//! per-count `no_characters_1..4`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use culturesteer_core::metrics::human_from_amce;
use culturesteer_core::{CountryCode, MoralDimension, MoralVector};

use crate::error::DataError;
use crate::source::DataSource;
use crate::table::Csv;

/// Path of the file, relative to the data root.
pub const COUNTRY_PREFERENCES: &str = "moral_machine/country_preferences.csv";

/// Largest accepted |pref − (1 + amce)/2|.
pub const PREF_AMCE_TOLERANCE: f64 = 1e-9;

/// Number of countries in the shipped table.
pub const N_COUNTRIES: usize = 196;

/// Awad et al.'s cultural cluster (names inferred from membership, see SOURCE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AwadCluster {
    /// Cluster 0 (USA, DEU, GBR, ...).
    Western,
    /// Cluster 1 (JPN, CHN, SAU, IND, ...).
    Eastern,
    /// Cluster 2 (FRA, ARG, HUN, CZE, ...).
    Southern,
}

/// The 13 Moral Machine AMCEs (or their standard errors) of one country.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Amces {
    /// Omission → commission.
    pub intervention: f64,
    /// Passengers → pedestrians.
    pub relation_to_av: f64,
    /// Illegal → legal.
    pub law: f64,
    /// Male → female.
    pub gender: f64,
    /// Large → fit.
    pub fitness: f64,
    /// Low → high status.
    pub social_status: f64,
    /// Elderly → young.
    pub age: f64,
    /// Fewer → more characters.
    pub no_characters: f64,
    /// Pets → humans.
    pub species: f64,
    /// 1 to 4 extra characters.
    pub no_characters_1_to_4: [f64; 4],
}

impl Amces {
    /// The AMCE behind one of the six MultiTP dimensions.
    pub fn for_dimension(&self, d: MoralDimension) -> f64 {
        match d {
            MoralDimension::Species => self.species,
            MoralDimension::Gender => self.gender,
            MoralDimension::Age => self.age,
            MoralDimension::Fitness => self.fitness,
            MoralDimension::SocialValue => self.social_status,
            MoralDimension::Utilitarianism => self.no_characters,
        }
    }
}

/// One country's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryPreference {
    /// ISO3 code.
    pub iso3: CountryCode,
    /// ISO 3166 name.
    pub country_name: String,
    /// Whether the country is in Awad et al.'s 130-country table (≥ 100 respondents).
    pub in_awad_130: bool,
    /// Awad cluster (only for the 130).
    pub awad_cluster: Option<AwadCluster>,
    /// AMCE estimates.
    pub amce: Amces,
    /// Standard errors.
    pub se: Amces,
    /// Human preference vector `h` (0–1 scale), from the `pref_*` columns.
    pub human: MoralVector,
}

/// The 196-country table, sorted by code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoralMachinePreferences {
    /// Rows sorted by ISO3.
    pub rows: Vec<CountryPreference>,
}

const AMCE_KEYS: [&str; 9] = [
    "intervention",
    "relation_to_av",
    "law",
    "gender",
    "fitness",
    "social_status",
    "age",
    "no_characters",
    "species",
];

fn read_amces(row: &crate::table::Row<'_>, prefix: &str) -> Result<Amces, DataError> {
    let mut v = [0.0; 9];
    for (slot, key) in v.iter_mut().zip(AMCE_KEYS) {
        *slot = row.f64(&format!("{prefix}_{key}"))?;
    }
    let mut extra = [0.0; 4];
    for (i, slot) in extra.iter_mut().enumerate() {
        *slot = row.f64(&format!("{prefix}_no_characters_{}", i + 1))?;
    }
    Ok(Amces {
        intervention: v[0],
        relation_to_av: v[1],
        law: v[2],
        gender: v[3],
        fitness: v[4],
        social_status: v[5],
        age: v[6],
        no_characters: v[7],
        species: v[8],
        no_characters_1_to_4: extra,
    })
}

impl MoralMachinePreferences {
    /// Loads and validates `moral_machine/country_preferences.csv`.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let file = source.display_path(COUNTRY_PREFERENCES);
        let text = source.read(COUNTRY_PREFERENCES)?;
        Self::parse(&file, &text)
    }

    /// Parses the CSV text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let mut required = vec!["iso3", "country_name", "in_awad_130", "awad_cluster"];
        let pref_cols: Vec<String> = MoralDimension::ALL
            .iter()
            .map(|d| format!("pref_{}", d.snake_key()))
            .collect();
        required.extend(pref_cols.iter().map(String::as_str));
        let csv = Csv::parse(file, text, &required)?;
        let mut rows: Vec<CountryPreference> = Vec::with_capacity(csv.len());
        let mut seen = BTreeMap::new();
        for row in csv.rows() {
            let iso3 = row.country("iso3")?;
            if let Some(prev) = seen.insert(iso3, row.line) {
                return Err(row.err(
                    "iso3",
                    format!("duplicate country {iso3} (first on line {prev})"),
                ));
            }
            let awad_cluster = match row.raw("awad_cluster").trim() {
                "" => None,
                "Western" => Some(AwadCluster::Western),
                "Eastern" => Some(AwadCluster::Eastern),
                "Southern" => Some(AwadCluster::Southern),
                other => {
                    return Err(row.err(
                        "awad_cluster",
                        format!("{other:?} is not Western, Eastern, Southern or empty"),
                    ))
                }
            };
            let amce = read_amces(&row, "amce")?;
            let se = read_amces(&row, "se")?;
            let mut human = MoralVector::default();
            for d in MoralDimension::ALL {
                let col = format!("pref_{}", d.snake_key());
                let p = row.prob(&col)?;
                let expected = human_from_amce(amce.for_dimension(d));
                if (p - expected).abs() > PREF_AMCE_TOLERANCE {
                    return Err(row.err(
                        &col,
                        format!(
                            "{p} disagrees with (1 + amce_{})/2 = {expected}",
                            d.snake_key()
                        ),
                    ));
                }
                human[d] = p;
            }
            rows.push(CountryPreference {
                iso3,
                country_name: row.text("country_name")?.to_string(),
                in_awad_130: row.bool("in_awad_130")?,
                awad_cluster,
                amce,
                se,
                human,
            });
        }
        if rows.is_empty() {
            return Err(DataError::File {
                file: file.to_string(),
                message: "no countries".into(),
            });
        }
        rows.sort_by_key(|r| r.iso3);
        Ok(MoralMachinePreferences { rows })
    }

    /// The row of `code`, or an error listing the valid codes.
    pub fn get(&self, code: CountryCode) -> Result<&CountryPreference, DataError> {
        self.rows
            .binary_search_by_key(&code, |r| r.iso3)
            .map(|i| &self.rows[i])
            .map_err(|_| {
                DataError::unknown_country(
                    COUNTRY_PREFERENCES,
                    code.as_str(),
                    self.rows.iter().map(|r| r.iso3.as_str()),
                )
            })
    }

    /// Human preference vector `h` (0–1 scale) of `code`.
    pub fn human(&self, code: CountryCode) -> Result<MoralVector, DataError> {
        self.get(code).map(|r| r.human)
    }

    /// All human vectors, keyed by country (usable as replay targets).
    pub fn human_targets(&self) -> BTreeMap<CountryCode, MoralVector> {
        self.rows.iter().map(|r| (r.iso3, r.human)).collect()
    }

    /// All country codes, sorted.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.rows.iter().map(|r| r.iso3).collect()
    }
}
