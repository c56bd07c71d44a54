//! CSV parsing with errors that name file, line and column.

use std::collections::HashMap;
use std::str::FromStr;

use culturesteer_core::{CountryCode, MoralDimension};

use crate::error::DataError;

/// A parsed CSV file: header and records, each record with its starting line.
pub(crate) struct Csv {
    pub file: String,
    index: HashMap<String, usize>,
    records: Vec<(usize, csv::StringRecord)>,
}

impl Csv {
    /// Parses `text`; every name in `required` must be a header column.
    pub fn parse(file: &str, text: &str, required: &[&str]) -> Result<Self, DataError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers = rdr.headers().map_err(|e| csv_error(file, &e))?.clone();
        let index: HashMap<String, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_string(), i))
            .collect();
        for col in required {
            if !index.contains_key(*col) {
                return Err(DataError::field(
                    file,
                    1,
                    col,
                    "column missing from the header",
                ));
            }
        }
        let mut records = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(file, &e))?;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            records.push((line, rec));
        }
        Ok(Csv {
            file: file.to_string(),
            index,
            records,
        })
    }

    /// The records, in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.records.iter().map(move |(line, rec)| Row {
            file: &self.file,
            line: *line,
            rec,
            index: &self.index,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

fn csv_error(file: &str, e: &csv::Error) -> DataError {
    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("record has {len} fields, the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    DataError::Line {
        file: file.to_string(),
        line,
        message,
    }
}

/// One CSV record with typed, error-reporting accessors.
pub(crate) struct Row<'a> {
    pub file: &'a str,
    pub line: usize,
    rec: &'a csv::StringRecord,
    index: &'a HashMap<String, usize>,
}

impl<'a> Row<'a> {
    /// An error about `field` of this record.
    pub fn err(&self, field: &str, message: impl Into<String>) -> DataError {
        DataError::field(self.file, self.line, field, message)
    }

    /// The raw text of `field` (an absent column reads as empty).
    pub fn raw(&self, field: &str) -> &'a str {
        self.index
            .get(field)
            .and_then(|&i| self.rec.get(i))
            .unwrap_or("")
    }

    /// The text of `field`, which must not be empty.
    pub fn text(&self, field: &str) -> Result<&'a str, DataError> {
        let s = self.raw(field);
        if s.trim().is_empty() {
            Err(self.err(field, "is empty"))
        } else {
            Ok(s)
        }
    }

    /// A finite number.
    pub fn f64(&self, field: &str) -> Result<f64, DataError> {
        let s = self.raw(field);
        parse_f64(s).ok_or_else(|| self.err(field, format!("{s:?} is not a number")))
    }

    /// A finite number, or `None` for an empty cell.
    pub fn opt_f64(&self, field: &str) -> Result<Option<f64>, DataError> {
        if self.raw(field).trim().is_empty() {
            Ok(None)
        } else {
            self.f64(field).map(Some)
        }
    }

    /// A number within `[lo, hi]`.
    pub fn f64_in(&self, field: &str, lo: f64, hi: f64) -> Result<f64, DataError> {
        let x = self.f64(field)?;
        if x < lo || x > hi {
            return Err(self.err(field, format!("{x} is outside [{lo}, {hi}]")));
        }
        Ok(x)
    }

    /// A probability in `[0, 1]`.
    pub fn prob(&self, field: &str) -> Result<f64, DataError> {
        self.f64_in(field, 0.0, 1.0)
    }

    /// A non-negative integer; `"4.0"` is accepted (pandas writes some integer columns as
    /// floats).
    pub fn u32(&self, field: &str) -> Result<u32, DataError> {
        let s = self.raw(field).trim();
        if let Ok(v) = s.parse::<u32>() {
            return Ok(v);
        }
        match parse_f64(s) {
            Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => Ok(x as u32),
            _ => Err(self.err(field, format!("{s:?} is not a non-negative integer"))),
        }
    }

    /// `0`/`1` (also `false`/`true`, `False`/`True`).
    pub fn bool(&self, field: &str) -> Result<bool, DataError> {
        match self.raw(field).trim() {
            "1" | "true" | "True" | "TRUE" | "1.0" => Ok(true),
            "0" | "false" | "False" | "FALSE" | "0.0" => Ok(false),
            s => Err(self.err(field, format!("{s:?} is not a boolean (0/1, True/False)"))),
        }
    }

    /// An ISO3 country code.
    pub fn country(&self, field: &str) -> Result<CountryCode, DataError> {
        let s = self.raw(field);
        CountryCode::from_str(s.trim()).map_err(|e| self.err(field, e.to_string()))
    }

    /// A moral dimension label.
    pub fn dimension(&self, field: &str) -> Result<MoralDimension, DataError> {
        let s = self.raw(field);
        MoralDimension::parse_label(s.trim()).map_err(|e| self.err(field, e.to_string()))
    }
}

/// Parses a finite `f64` (surrounding spaces allowed).
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}
