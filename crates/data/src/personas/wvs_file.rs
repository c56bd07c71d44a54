//! Source 1: the WVS-7 individual-level "inverted" CSV and the paper's cohort procedure
//! (§3.1), giving `[young, middle, older, all]` panels.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;

use super::{
    country_prompt_name, persona_text, round3, Cohort, DimensionOrigin, DimensionSource, Persona,
    PersonaPanel, PersonaSourceKind, ValueDimension, ValueProfile,
};

/// Column of the ISO3 country code in the WVS-7 file.
pub const COL_COUNTRY: &str = "B_COUNTRY_ALPHA";
/// Column of the survey year.
pub const COL_SURVEY_YEAR: &str = "A_YEAR";
/// Column of the birth year.
pub const COL_BIRTH_YEAR: &str = "Q261";
/// Respondents are kept when their birth year is in this range (inclusive)…
pub const BIRTH_YEARS: (f64, f64) = (1900.0, 2010.0);
/// …and their survey year is at least this.
pub const MIN_SURVEY_YEAR: f64 = 2015.0;

// ---------------------------------------------------------------------------------------------
// Source 1: the WVS-7 individual-level file
// ---------------------------------------------------------------------------------------------

/// One cohort of one country.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CohortProfile {
    /// Respondents kept (birth/survey-year filter) in this cohort.
    pub respondents: usize,
    /// Dimension scores (means rounded to 3 decimals; ≤ 0 dropped).
    pub profile: ValueProfile,
}

/// The cohort profiles of the countries read from one WVS-7 file.
#[derive(Debug, Clone, PartialEq)]
pub struct WvsFileProfiles {
    /// The file as errors name it.
    pub file: String,
    /// Cohort profiles (all four cohorts) of every requested country present in the file.
    pub countries: BTreeMap<CountryCode, BTreeMap<Cohort, CohortProfile>>,
    /// Every `B_COUNTRY_ALPHA` value in the file, sorted.
    pub present: Vec<String>,
}

impl WvsFileProfiles {
    /// The cohorts of `country`, or an error listing the countries present in the file.
    pub fn cohorts(
        &self,
        country: CountryCode,
    ) -> Result<&BTreeMap<Cohort, CohortProfile>, DataError> {
        self.countries.get(&country).ok_or_else(|| {
            if self.present.iter().any(|c| c == country.as_str()) {
                // Present but not requested when the file was read.
                DataError::File {
                    file: self.file.clone(),
                    message: format!(
                        "{country} was not among the countries requested when the file was read"
                    ),
                }
            } else {
                DataError::unknown_country(
                    &self.file,
                    country.as_str(),
                    self.present.iter().map(String::as_str),
                )
            }
        })
    }

    pub(super) fn usable_all(&self, country: CountryCode) -> Result<&CohortProfile, DataError> {
        let cohorts = self.cohorts(country)?;
        let all = cohorts.get(&Cohort::All).ok_or_else(|| DataError::File {
            file: self.file.clone(),
            message: format!("{country}: no whole-country group"),
        })?;
        if all.respondents == 0 {
            return Err(DataError::File {
                file: self.file.clone(),
                message: format!(
                    "{country}: no respondent passes the filter ({} <= {COL_BIRTH_YEAR} <= {}, {COL_SURVEY_YEAR} >= {})",
                    BIRTH_YEARS.0, BIRTH_YEARS.1, MIN_SURVEY_YEAR
                ),
            });
        }
        if !all.profile.usable() {
            return Err(DataError::File {
                file: self.file.clone(),
                message: format!(
                    "{country}: religiosity (Q6P) has no valid answer, so the file gives no usable profile (the reference code then uses hand-written personas, which are not shipped; pass --personas FILE)"
                ),
            });
        }
        Ok(all)
    }

    /// The DISCA panel of `country`: `[young, middle, older, all]`. A cohort without a usable
    /// profile (religiosity ≤ 0, e.g. no respondents) gets the whole-country persona.
    pub fn panel(&self, country: CountryCode) -> Result<PersonaPanel, DataError> {
        let all = self.usable_all(country)?;
        let cohorts = self.cohorts(country)?;
        let name = country_prompt_name(country);
        let personas = Cohort::ALL
            .iter()
            .map(|&c| {
                let cp = cohorts.get(&c).filter(|cp| cp.profile.usable());
                match cp {
                    Some(cp) => Persona {
                        id: c.id().to_string(),
                        label: format!("{}, n = {}", c.describe(), cp.respondents),
                        text: persona_text(&name, c, &cp.profile),
                    },
                    None => Persona {
                        id: c.id().to_string(),
                        label: format!(
                            "{}: no usable answers (n = {}), whole-country persona used",
                            c.describe(),
                            cohorts.get(&c).map_or(0, |cp| cp.respondents)
                        ),
                        text: persona_text(&name, Cohort::All, &all.profile),
                    },
                }
            })
            .collect();
        let (mut dimensions, mut missing_dimensions) = (Vec::new(), Vec::new());
        for d in ValueDimension::ALL {
            if all.profile.get(d).is_some() {
                dimensions.push(DimensionSource {
                    dimension: d,
                    source: DimensionOrigin::Wvs7File,
                    items: d.items().iter().map(|s| s.to_string()).collect(),
                });
            } else {
                missing_dimensions.push(d);
            }
        }
        Ok(PersonaPanel {
            country,
            source: PersonaSourceKind::WvsFile,
            personas,
            dimensions,
            missing_dimensions,
        })
    }
}

/// Reads a WVS-7 inverted CSV from `path` (streamed; the full file is large). `countries`:
/// the countries to aggregate (`None`: every country whose code is a valid ISO3 code).
pub fn load_wvs_file(
    path: &Path,
    countries: Option<&[CountryCode]>,
) -> Result<WvsFileProfiles, DataError> {
    let f = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_wvs_csv(&path.display().to_string(), f, countries)
}

#[derive(Default, Clone, Copy)]
struct Acc {
    sum: f64,
    n: usize,
}

/// Parses a WVS-7 inverted CSV (see the module docs for the procedure).
///
/// Format: a header row with at least `B_COUNTRY_ALPHA`, `A_YEAR`, `Q261` and the 24 item
/// columns of [`ValueDimension::items`] (a missing column is an error naming it — the standard,
/// non-inverted WVS file has `Q6` instead of `Q6P` and is rejected this way); the delimiter
/// (`,`, `;` or tab) is taken from the header line; a UTF-8 byte-order mark is ignored; fields
/// may be quoted. Every record must have as many fields as the header (else an error naming
/// its line). In the rows of the requested countries, the used cells must be numbers (`"1"`,
/// `"1.0"`) or empty; an empty cell is a missing answer (an empty birth or survey year drops
/// the respondent); any other text is an error naming line and column.
pub fn parse_wvs_csv<R: Read>(
    file: &str,
    reader: R,
    countries: Option<&[CountryCode]>,
) -> Result<WvsFileProfiles, DataError> {
    let mut buf = BufReader::new(reader);
    let mut first = Vec::new();
    buf.read_until(b'\n', &mut first)
        .map_err(|source| DataError::Io {
            path: file.to_string(),
            source,
        })?;
    if first.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::File {
            file: file.to_string(),
            message: "empty file (expected a WVS-7 CSV with a header row)".into(),
        });
    }
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first.iter().filter(|b| *b == d).count())
        .unwrap_or(b',');
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(delimiter)
        .from_reader(std::io::Cursor::new(first).chain(buf));
    let headers = rdr.byte_headers().map_err(|e| csv_error(file, &e))?.clone();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = String::from_utf8_lossy(h);
        let name = name.trim_start_matches('\u{feff}').trim().to_string();
        index.entry(name).or_insert(i);
    }
    let col = |name: &str| -> Result<usize, DataError> {
        index
            .get(name)
            .copied()
            .ok_or_else(|| DataError::field(file, 1, name, "column missing from the header (expected the WVS-7 \"inverted\" CSV, e.g. WVS_Cross-National_Wave_7_inverted_csv_v6_0.csv)"))
    };
    let c_country = col(COL_COUNTRY)?;
    let c_survey = col(COL_SURVEY_YEAR)?;
    let c_birth = col(COL_BIRTH_YEAR)?;
    // (dimension index, column name, column index) for every item.
    let mut item_cols: Vec<(usize, &'static str, usize)> = Vec::new();
    for (di, d) in ValueDimension::ALL.iter().enumerate() {
        for &item in d.items() {
            item_cols.push((di, item, col(item)?));
        }
    }
    let wanted: Option<BTreeSet<CountryCode>> = countries.map(|cs| cs.iter().copied().collect());
    let mut present: BTreeSet<String> = BTreeSet::new();
    // country → cohort → per-dimension accumulator; respondents per cohort.
    let mut acc: BTreeMap<CountryCode, BTreeMap<Cohort, (usize, Vec<Acc>)>> = BTreeMap::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(file, &e)),
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let raw_country = String::from_utf8_lossy(rec.get(c_country).unwrap_or_default());
        let raw_country = raw_country.trim();
        if !present.contains(raw_country) {
            present.insert(raw_country.to_string());
        }
        let Ok(country) = raw_country.parse::<CountryCode>() else {
            continue;
        };
        if let Some(w) = &wanted {
            if !w.contains(&country) {
                continue;
            }
        }
        let cohorts = acc.entry(country).or_insert_with(|| {
            Cohort::ALL
                .iter()
                .map(|&c| (c, (0usize, vec![Acc::default(); ValueDimension::ALL.len()])))
                .collect()
        });
        let cell = |i: usize, name: &str| -> Result<Option<f64>, DataError> {
            number(file, line, name, rec.get(i))
        };
        let (Some(birth), Some(survey)) = (
            cell(c_birth, COL_BIRTH_YEAR)?,
            cell(c_survey, COL_SURVEY_YEAR)?,
        ) else {
            continue;
        };
        if birth < BIRTH_YEARS.0 || birth > BIRTH_YEARS.1 || survey < MIN_SURVEY_YEAR {
            continue;
        }
        let cohort = Cohort::of_age(survey - birth);
        let mut values: Vec<(usize, f64)> = Vec::with_capacity(item_cols.len());
        for &(di, name, ci) in &item_cols {
            if let Some(v) = cell(ci, name)? {
                if v >= 0.0 {
                    values.push((di, v));
                }
            }
        }
        for group in [cohort, Cohort::All] {
            if let Some((n, dims)) = cohorts.get_mut(&group) {
                *n += 1;
                for &(di, v) in &values {
                    dims[di].sum += v;
                    dims[di].n += 1;
                }
            }
        }
    }
    let countries = acc
        .into_iter()
        .map(|(country, cohorts)| {
            let cohorts = cohorts
                .into_iter()
                .map(|(c, (n, dims))| {
                    let scores = ValueDimension::ALL
                        .iter()
                        .zip(dims)
                        .filter(|(_, a)| a.n > 0)
                        .map(|(&d, a)| (d, round3(a.sum / a.n as f64)));
                    (
                        c,
                        CohortProfile {
                            respondents: n,
                            profile: ValueProfile::from_scores(scores),
                        },
                    )
                })
                .collect();
            (country, cohorts)
        })
        .collect();
    Ok(WvsFileProfiles {
        file: file.to_string(),
        countries,
        present: present.into_iter().filter(|s| !s.is_empty()).collect(),
    })
}

fn number(
    file: &str,
    line: usize,
    column: &str,
    raw: Option<&[u8]>,
) -> Result<Option<f64>, DataError> {
    let raw = raw.unwrap_or_default();
    let s = std::str::from_utf8(raw)
        .map_err(|_| {
            DataError::field(
                file,
                line,
                column,
                format!("{:?} is not a number", String::from_utf8_lossy(raw)),
            )
        })?
        .trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(DataError::field(
            file,
            line,
            column,
            format!("{s:?} is not a number"),
        )),
    }
}

fn csv_error(file: &str, e: &csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("record has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    DataError::Line {
        file: file.to_string(),
        line,
        message,
    }
}
