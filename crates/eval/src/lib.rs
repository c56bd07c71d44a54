//! Benchmarks with real human data, the resumable runner and the reports.
//!
//! A [`Benchmark`] turns its questions into method-agnostic [`Item`]s for a country and scores a
//! country from the per-item records the runner wrote. The runner ([`runner`]) appends one
//! [`ItemRecord`] per answered item to `results.jsonl` (flushed as it goes), so runs can be
//! killed and resumed; scores are always recomputed from the records.

pub mod compare;
pub mod goqa;
pub mod multitp;
pub mod report;
pub mod runner;
pub mod seeds;
pub mod tune;
pub mod vsm13;

use culturesteer_core::CountryCode;
use culturesteer_data::DataError;
use culturesteer_methods::{Country, Item, MethodError};
use serde::{Deserialize, Serialize};

/// The result of one item under one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub method: String,
    pub country: CountryCode,
    pub item_id: String,
    /// Probability of each option (a NaN is written as null and read back as NaN).
    #[serde(deserialize_with = "nan_for_null")]
    pub probs: Vec<f64>,
    /// The option scores the probabilities came from (an option with probability 0 has
    /// -inf, written as null and read back as -inf).
    #[serde(deserialize_with = "neg_inf_for_null")]
    pub logprobs: Vec<f64>,
    /// The item's benchmark data (copied from [`Item::meta`]).
    pub meta: serde_json::Value,
    /// Identifies the prompt the item was asked with (a hash of the benchmark's system and
    /// user text), so a record says which prompt it answers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prompt_id: String,
    /// The option texts, in the order of `probs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Method diagnostics.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub diagnostics: serde_json::Value,
}

/// JSON has no infinities or NaN, so serde_json writes them as null; a record must read back
/// all the same (a run resumes from its records).
fn floats_or<'de, D: serde::Deserializer<'de>>(d: D, null: f64) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(null)).collect())
}

fn neg_inf_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    floats_or(d, f64::NEG_INFINITY)
}

fn nan_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    floats_or(d, f64::NAN)
}

/// One row of a per-country breakdown (e.g. a moral dimension): model vs human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub model: f64,
    pub human: Option<f64>,
}

/// A country's score on a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryScore {
    pub country: CountryCode,
    /// The benchmark's headline metric.
    pub value: f64,
    pub n_items: usize,
    /// Per-dimension breakdown (empty when the metric has none).
    pub components: Vec<Component>,
    /// Secondary metrics by name (e.g. "pearson_r", "jsd").
    #[serde(default)]
    pub secondary: Vec<(String, f64)>,
}

/// Name and direction of a benchmark's headline metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricInfo {
    pub name: &'static str,
    pub lower_is_better: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Method(#[from] MethodError),
    #[error("unknown country {code} for {bench}; valid: {valid}")]
    UnknownCountry {
        bench: String,
        code: String,
        valid: String,
    },
    #[error("{country} has no human data in {bench}")]
    NoHumanData { bench: String, country: String },
    #[error("{0}")]
    Invalid(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {what}")]
    Results {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{0}")]
    Manifest(String),
}

/// A benchmark: items per country, human targets, metric.
pub trait Benchmark {
    /// Name as given to `eval` ("multitp", "multitp-disca", "goqa", "vsm13").
    fn name(&self) -> &'static str;
    fn metric(&self) -> MetricInfo;
    /// Countries with human data.
    fn countries(&self) -> Vec<CountryCode>;
    /// Countries evaluated when the user gives none.
    fn default_countries(&self) -> Vec<CountryCode>;
    /// The country with its English name; an unknown code or one without human data is an
    /// error that lists the valid codes.
    fn country(&self, code: CountryCode) -> Result<Country, BenchError>;
    /// Items for a country, in evaluation order (`--limit N` takes the first N, so the order
    /// should mix dimensions).
    fn items(&self, country: &Country) -> Result<Vec<Item>, BenchError>;
    /// Scores a country from its records (one per item, any order).
    fn score(&self, country: &Country, records: &[ItemRecord]) -> Result<CountryScore, BenchError>;
    /// Benchmark options that change results (for the manifest).
    fn options(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Data files the benchmark reads (relative to `data/`), checksummed in the manifest.
    fn data_files(&self) -> Vec<String>;
}

/// Builds the "unknown country" error with the benchmark's valid codes.
pub fn unknown_country(bench: &dyn Benchmark, code: &str) -> BenchError {
    let valid: Vec<String> = bench.countries().iter().map(|c| c.to_string()).collect();
    BenchError::UnknownCountry {
        bench: bench.name().into(),
        code: code.into(),
        valid: valid.join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_a_zero_probability_option_reads_back() {
        let r = ItemRecord {
            method: "palette".into(),
            country: CountryCode::new("AUS").unwrap(),
            item_id: "q1".into(),
            probs: vec![0.75, 0.0, 0.25],
            logprobs: vec![-0.3, f64::NEG_INFINITY, -1.4],
            meta: serde_json::Value::Null,
            prompt_id: String::new(),
            options: vec![],
            diagnostics: serde_json::Value::Null,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("[-0.3,null,-1.4]"), "{line}");
        let back: ItemRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        let nan: ItemRecord =
            serde_json::from_str(&line.replace("[0.75,0.0,0.25]", "[0.75,null,0.25]")).unwrap();
        assert!(nan.probs[1].is_nan());
    }
}
