//! Hofstede six-dimension scores (`hofstede/`): the merged country table, the 2015 regional
//! aggregates and the unmerged 2023 Hofstede Insights snapshot. Empty cells are `None`.

use serde::{Deserialize, Serialize};

use culturesteer_core::metrics::Vsm13Dimension;
use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::source::DataSource;
use crate::table::{Csv, Row};

/// The merged table (125 countries).
pub const SIX_DIMENSIONS: &str = "hofstede/six_dimensions.csv";
/// Regional / sub-national aggregates without ISO codes (10 rows).
pub const REGIONS_2015: &str = "hofstede/regions_2015.csv";
/// Hofstede Insights snapshot, 2023 (118 rows).
pub const INSIGHTS_SNAPSHOT_2023: &str = "hofstede/hofstede_insights_snapshot_2023.csv";

/// Scores in PDI, IDV, MAS, UAI, LTO, IVR order; `None` = no published score.
pub type HofstedeProfile = [Option<f64>; 6];

fn profile(row: &Row<'_>) -> Result<HofstedeProfile, DataError> {
    let mut p = [None; 6];
    for d in Vsm13Dimension::ALL {
        p[d.index()] = row.opt_f64(d.column())?;
    }
    Ok(p)
}

fn required<'a>(first: &[&'a str]) -> Vec<&'a str> {
    let mut v = first.to_vec();
    v.extend(Vsm13Dimension::ALL.iter().map(|d| d.column()));
    v
}

/// One country of the merged table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HofstedeCountry {
    /// ISO3 code.
    pub code: CountryCode,
    /// Country name.
    pub country: String,
    /// Scores (see [`HofstedeProfile`]).
    pub scores: HofstedeProfile,
}

/// The merged country table, sorted by code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HofstedeTable {
    /// Rows sorted by code.
    pub rows: Vec<HofstedeCountry>,
}

impl HofstedeTable {
    /// Loads `hofstede/six_dimensions.csv`.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(SIX_DIMENSIONS)?;
        Self::parse(&source.display_path(SIX_DIMENSIONS), &text)
    }

    /// Parses the CSV text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let csv = Csv::parse(file, text, &required(&["country_code", "country"]))?;
        let mut rows = Vec::with_capacity(csv.len());
        for row in csv.rows() {
            let code = row.country("country_code")?;
            if rows.iter().any(|r: &HofstedeCountry| r.code == code) {
                return Err(row.err("country_code", format!("duplicate country {code}")));
            }
            rows.push(HofstedeCountry {
                code,
                country: row.text("country")?.to_string(),
                scores: profile(&row)?,
            });
        }
        rows.sort_by_key(|r| r.code);
        Ok(HofstedeTable { rows })
    }

    /// The row of `code`, or an error listing the valid codes.
    pub fn get(&self, code: CountryCode) -> Result<&HofstedeCountry, DataError> {
        self.rows
            .binary_search_by_key(&code, |r| r.code)
            .map(|i| &self.rows[i])
            .map_err(|_| {
                DataError::unknown_country(
                    SIX_DIMENSIONS,
                    code.as_str(),
                    self.rows.iter().map(|r| r.code.as_str()),
                )
            })
    }

    /// The target profile of `code` (for [`culturesteer_core::metrics::vsm13_l1_loss`]).
    pub fn target(&self, code: CountryCode) -> Result<HofstedeProfile, DataError> {
        self.get(code).map(|r| r.scores)
    }
}

/// One regional aggregate of the 2015 research file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HofstedeRegion {
    /// Research-file code, e.g. `ARA`.
    pub hofstede_code: String,
    /// Name, e.g. "Arab countries".
    pub region: String,
    /// Scores.
    pub scores: HofstedeProfile,
}

/// Loads `hofstede/regions_2015.csv`.
pub fn load_regions(source: &DataSource) -> Result<Vec<HofstedeRegion>, DataError> {
    let text = source.read(REGIONS_2015)?;
    let file = source.display_path(REGIONS_2015);
    let csv = Csv::parse(&file, &text, &required(&["hofstede_code", "region"]))?;
    csv.rows()
        .map(|row| {
            Ok(HofstedeRegion {
                hofstede_code: row.text("hofstede_code")?.to_string(),
                region: row.text("region")?.to_string(),
                scores: profile(&row)?,
            })
        })
        .collect()
}

/// One row of the 2023 Hofstede Insights snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotCountry {
    /// ISO3 code.
    pub code: CountryCode,
    /// Country name.
    pub country: String,
    /// Scores (capped at 100 on the site).
    pub scores: HofstedeProfile,
    /// Marked as an estimate on the site.
    pub estimated: bool,
}

/// Loads `hofstede/hofstede_insights_snapshot_2023.csv`.
pub fn load_insights_snapshot(source: &DataSource) -> Result<Vec<SnapshotCountry>, DataError> {
    let text = source.read(INSIGHTS_SNAPSHOT_2023)?;
    let file = source.display_path(INSIGHTS_SNAPSHOT_2023);
    let csv = Csv::parse(
        &file,
        &text,
        &required(&["country_code", "country", "estimated"]),
    )?;
    csv.rows()
        .map(|row| {
            Ok(SnapshotCountry {
                code: row.country("country_code")?,
                country: row.text("country")?.to_string(),
                scores: profile(&row)?,
                estimated: row.bool("estimated")?,
            })
        })
        .collect()
}
