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
use crate::json::{parse_jsonl, shares_of, Rec};
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
            let shares = shares_of(&r, &field, v, options.len(), SUM_TOLERANCE)?;
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

// ---------------------------------------------------------------------------------------------
// GOQA question → WVS item mapping (`wvs/goqa_wvs_items.json`)
// ---------------------------------------------------------------------------------------------

/// The mapping of WVS-sourced GlobalOpinionQA questions to WVS-7 items.
pub const GOQA_WVS_ITEMS: &str = "wvs/goqa_wvs_items.json";

/// One GOQA question read as a WVS item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoqaWvsItem {
    /// 1-based line where the entry starts.
    pub line: usize,
    /// The WVS item, e.g. `Q6` (one that feeds a persona value dimension).
    pub wvs_item: String,
    /// The GOQA question id (`goqa-` + 12 hex digits).
    pub goqa_id: String,
    /// The original WVS answer code of each GOQA option; `None`: not a substantive answer
    /// (don't know, no answer, missing), dropped.
    pub option_codes: Vec<Option<i64>>,
    /// Free-text note.
    pub note: String,
}

/// The validated mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoqaWvsItems {
    /// Entries in file order.
    pub items: Vec<GoqaWvsItem>,
}

impl GoqaWvsItems {
    /// Loads and validates `wvs/goqa_wvs_items.json`.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(GOQA_WVS_ITEMS)?;
        parse_goqa_wvs_items(&source.display_path(GOQA_WVS_ITEMS), &text)
    }
}

/// Line (1-based) of the start of every element of the top-level `items` array, found by a
/// small scan of the JSON text (strings skipped).
fn element_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut line, mut in_str, mut esc) = (0usize, 1usize, false, false);
    let mut out = Vec::new();
    for ch in text.chars() {
        if ch == '\n' {
            line += 1;
        }
        if in_str {
            match (esc, ch) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '{' | '[' => {
                if depth == 2 {
                    out.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// Parses `wvs/goqa_wvs_items.json`: `{"items": [{"wvs_item": "Q6", "goqa_id": "goqa-…",
/// "option_codes": [1, 2, 3, 4, null, …], "note": "…"}, …]}`. Checks: only the key `items` at
/// the top, only those four keys per entry (`note` optional); `wvs_item` is an item with a
/// persona recoding ([`crate::personas::marginal_recoding`]) and appears once; `goqa_id` looks
/// like `goqa-` + 12 hex digits and appears once; `option_codes` has at least one code, every
/// code is one of the item's WVS codes and none repeats. Errors name the file, the entry's
/// line and the field (`items[i].option_codes`). That the GOQA question exists, is WVS-sourced
/// and has one option per code is checked when the personas are built
/// ([`crate::personas::GoqaPersonaItems::derive`]).
pub fn parse_goqa_wvs_items(file: &str, text: &str) -> Result<GoqaWvsItems, DataError> {
    use serde_json::Value;
    let root: Value = serde_json::from_str(text).map_err(|e| DataError::Line {
        file: file.to_string(),
        line: e.line(),
        message: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(root) = root else {
        return Err(DataError::File {
            file: file.to_string(),
            message: "expected a JSON object {\"items\": [...]}".into(),
        });
    };
    if let Some(k) = root.keys().find(|k| *k != "items") {
        return Err(DataError::field(
            file,
            1,
            k,
            "unknown key (expected only \"items\")",
        ));
    }
    let Some(Value::Array(entries)) = root.get("items") else {
        return Err(DataError::field(
            file,
            1,
            "items",
            "missing or not an array",
        ));
    };
    if entries.is_empty() {
        return Err(DataError::field(file, 1, "items", "no entries"));
    }
    let lines = element_lines(text);
    let mut items: Vec<GoqaWvsItem> = Vec::with_capacity(entries.len());
    for (i, v) in entries.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let Value::Object(obj) = v else {
            return Err(DataError::field(
                file,
                line,
                &format!("items[{i}]"),
                "expected an object",
            ));
        };
        let mut r = Rec::new(file, line, obj);
        r.prefix = format!("items[{i}]");
        if let Some(k) = obj
            .keys()
            .find(|k| !["wvs_item", "goqa_id", "option_codes", "note"].contains(&k.as_str()))
        {
            return Err(r.err(
                k,
                "unknown field (expected wvs_item, goqa_id, option_codes, note)",
            ));
        }
        let wvs_item = r.string("wvs_item")?;
        let rec = crate::personas::marginal_recoding(&wvs_item).ok_or_else(|| {
            r.err(
                "wvs_item",
                format!("{wvs_item} feeds no persona value dimension"),
            )
        })?;
        if let Some(prev) = items.iter().find(|x| x.wvs_item == wvs_item) {
            return Err(r.err(
                "wvs_item",
                format!("{wvs_item} is mapped twice (also at line {})", prev.line),
            ));
        }
        let goqa_id = r.string("goqa_id")?;
        let hex = goqa_id.strip_prefix("goqa-").unwrap_or("");
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(r.err(
                "goqa_id",
                format!("{goqa_id:?} is not goqa- + 12 hex digits"),
            ));
        }
        if let Some(prev) = items.iter().find(|x| x.goqa_id == goqa_id) {
            return Err(r.err(
                "goqa_id",
                format!("{goqa_id} is mapped twice (also at line {})", prev.line),
            ));
        }
        let mut option_codes = Vec::new();
        for (j, c) in r.array("option_codes")?.iter().enumerate() {
            let field = format!("option_codes[{j}]");
            match c {
                Value::Null => option_codes.push(None),
                Value::Number(n) => {
                    let code = n
                        .as_i64()
                        .ok_or_else(|| r.err(&field, format!("{n} is not an integer code")))?;
                    if !rec.codes.contains(&code) {
                        return Err(r.err(
                            &field,
                            format!(
                                "{code} is not a WVS code of {wvs_item} (expected one of {:?})",
                                rec.codes
                            ),
                        ));
                    }
                    if option_codes.contains(&Some(code)) {
                        return Err(r.err(&field, format!("code {code} repeats")));
                    }
                    option_codes.push(Some(code));
                }
                other => {
                    return Err(r.err(
                        &field,
                        format!(
                            "expected a WVS code or null, got {}",
                            crate::json::kind(other)
                        ),
                    ))
                }
            }
        }
        if option_codes.iter().all(Option::is_none) {
            return Err(r.err("option_codes", "no option has a WVS code"));
        }
        let note = match obj.get("note") {
            None => String::new(),
            Some(_) => r.string("note")?,
        };
        items.push(GoqaWvsItem {
            line,
            wvs_item,
            goqa_id,
            option_codes,
            note,
        });
    }
    Ok(GoqaWvsItems { items })
}
