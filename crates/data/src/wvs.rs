//! WVS wave 7 per-country answer distributions for 19 countries (`wvs/`).
//!
//! Validation: options, option codes and every distribution have the same length; shares are
//! finite and ≥ 0 and sum to 1 within [`SUM_TOLERANCE`] (they are rounded to 6 decimals);
//! `answered_share` is in [0, 1] and covers the same countries; every country is in
//! `country_codes.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::json::{numbers_of, parse_jsonl, Rec};
use crate::source::DataSource;

/// Item marginals.
pub const WVS7_MARGINALS: &str = "wvs/wvs7_country_marginals.jsonl";
/// ISO3 → name.
pub const COUNTRY_CODES: &str = "wvs/country_codes.json";
/// Accepted |Σ shares − 1|.
pub const SUM_TOLERANCE: f64 = 1e-3;

/// The WVS country list (ISO3 → name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WvsCountries {
    /// Names by code.
    pub names: BTreeMap<CountryCode, String>,
}

impl WvsCountries {
    /// Loads `wvs/country_codes.json`.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(COUNTRY_CODES)?;
        Self::parse(&source.display_path(COUNTRY_CODES), &text)
    }

    /// Parses the JSON object text.
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let raw: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| DataError::Line {
                file: file.to_string(),
                line: e.line(),
                message: e.to_string(),
            })?;
        let mut names = BTreeMap::new();
        for (k, v) in raw {
            let line = text
                .lines()
                .position(|l| l.contains(&format!("\"{k}\"")))
                .map_or(1, |i| i + 1);
            let code = k
                .parse::<CountryCode>()
                .map_err(|e| DataError::field(file, line, &k, e.to_string()))?;
            names.insert(code, v);
        }
        Ok(WvsCountries { names })
    }

    /// The name of `code`, or an error listing the 19 codes.
    pub fn name(&self, code: CountryCode) -> Result<&str, DataError> {
        self.names.get(&code).map(String::as_str).ok_or_else(|| {
            DataError::unknown_country(
                COUNTRY_CODES,
                code.as_str(),
                self.names.keys().map(|c| c.as_str()),
            )
        })
    }
}

/// One WVS item with its per-country distributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WvsItem {
    /// 1-based line in the file.
    pub line: usize,
    /// Item id, e.g. `Q1`.
    pub id: String,
    /// Question text.
    pub question: String,
    /// Option labels.
    pub options: Vec<String>,
    /// WVS answer code of each option.
    pub option_codes: Vec<i64>,
    /// Shares over the listed options (sum 1), by country.
    pub distributions: BTreeMap<CountryCode, Vec<f64>>,
    /// Fraction of all respondents who gave a listed answer, by country.
    pub answered_share: BTreeMap<CountryCode, f64>,
}

impl WvsItem {
    /// The distribution of `code`, or an error listing the countries this item covers.
    pub fn distribution(&self, code: CountryCode) -> Result<&[f64], DataError> {
        self.distributions
            .get(&code)
            .map(Vec::as_slice)
            .ok_or_else(|| {
                DataError::unknown_country(
                    &format!("{WVS7_MARGINALS} item {}", self.id),
                    code.as_str(),
                    self.distributions.keys().map(|c| c.as_str()),
                )
            })
    }
}

/// All items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WvsMarginals {
    /// Items in file order.
    pub items: Vec<WvsItem>,
}

/// Parses the marginals JSON Lines; `countries`, when given, must contain every country.
pub fn parse_wvs_marginals(
    file: &str,
    text: &str,
    countries: Option<&WvsCountries>,
) -> Result<WvsMarginals, DataError> {
    let mut items = Vec::new();
    for (line, obj) in parse_jsonl(file, text)? {
        let r = Rec::new(file, line, &obj);
        let options = r.strings("options")?;
        let codes = r.numbers("option_codes")?;
        if codes.len() != options.len() {
            return Err(r.err(
                "option_codes",
                format!("{} codes for {} options", codes.len(), options.len()),
            ));
        }
        let option_codes: Vec<i64> = codes.iter().map(|&c| c as i64).collect();
        let code_of = |key: &str, field: &str| -> Result<CountryCode, DataError> {
            let c = key
                .parse::<CountryCode>()
                .map_err(|e| r.err(field, e.to_string()))?;
            if let Some(cs) = countries {
                if !cs.names.contains_key(&c) {
                    return Err(r.err(field, format!("{c} is not in {COUNTRY_CODES}")));
                }
            }
            Ok(c)
        };
        let mut distributions = BTreeMap::new();
        for (k, v) in r.object("distributions")? {
            let field = format!("distributions.{k}");
            let c = code_of(k, &field)?;
            let shares = numbers_of(&r, &field, v)?;
            if shares.len() != options.len() {
                return Err(r.err(
                    &field,
                    format!("{} shares for {} options", shares.len(), options.len()),
                ));
            }
            if let Some((i, x)) = shares.iter().enumerate().find(|(_, x)| **x < 0.0) {
                return Err(r.err(&format!("{field}[{i}]"), format!("{x} is negative")));
            }
            let sum: f64 = shares.iter().sum();
            if (sum - 1.0).abs() > SUM_TOLERANCE {
                return Err(r.err(
                    &field,
                    format!("shares sum to {sum}, outside 1 ± {SUM_TOLERANCE}"),
                ));
            }
            distributions.insert(c, shares);
        }
        let mut answered_share = BTreeMap::new();
        for (k, v) in r.object("answered_share")? {
            let field = format!("answered_share.{k}");
            let c = code_of(k, &field)?;
            match v.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => {
                    answered_share.insert(c, x);
                }
                _ => return Err(r.err(&field, format!("{v} is not a share in [0, 1]"))),
            }
        }
        if answered_share.keys().ne(distributions.keys()) {
            return Err(r.err(
                "answered_share",
                "countries differ from those of distributions",
            ));
        }
        items.push(WvsItem {
            line,
            id: r.string("id")?,
            question: r.string("question")?,
            options,
            option_codes,
            distributions,
            answered_share,
        });
    }
    Ok(WvsMarginals { items })
}

impl WvsMarginals {
    /// Loads the marginals and checks their countries against `wvs/country_codes.json`.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let countries = WvsCountries::load(source)?;
        let text = source.read(WVS7_MARGINALS)?;
        parse_wvs_marginals(
            &source.display_path(WVS7_MARGINALS),
            &text,
            Some(&countries),
        )
    }

    /// The item with id `id` (e.g. `Q1`).
    pub fn item(&self, id: &str) -> Option<&WvsItem> {
        self.items.iter().find(|i| i.id == id)
    }
}
