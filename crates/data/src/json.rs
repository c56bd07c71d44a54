//! JSON Lines parsing with errors that name file, line and field.

use serde_json::{Map, Value};

use crate::error::DataError;

/// A parsed JSON Lines record: (1-based line, object).
pub(crate) type JsonLine = (usize, Map<String, Value>);

/// Parses every non-blank line of `text` as a JSON object.
pub(crate) fn parse_jsonl(file: &str, text: &str) -> Result<Vec<JsonLine>, DataError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| DataError::Line {
            file: file.to_string(),
            line: n,
            message: format!("invalid JSON: {e}"),
        })?;
        match v {
            Value::Object(m) => out.push((n, m)),
            _ => {
                return Err(DataError::Line {
                    file: file.to_string(),
                    line: n,
                    message: "expected a JSON object".into(),
                })
            }
        }
    }
    Ok(out)
}

/// One JSON object with typed accessors; `prefix` dots nested field names.
pub(crate) struct Rec<'a> {
    pub file: &'a str,
    pub line: usize,
    pub obj: &'a Map<String, Value>,
    pub prefix: String,
}

impl<'a> Rec<'a> {
    pub fn new(file: &'a str, line: usize, obj: &'a Map<String, Value>) -> Self {
        Rec {
            file,
            line,
            obj,
            prefix: String::new(),
        }
    }

    /// The full (dotted) name of `field`.
    pub fn name(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{}", self.prefix, field)
        }
    }

    pub fn err(&self, field: &str, message: impl Into<String>) -> DataError {
        DataError::field(self.file, self.line, &self.name(field), message)
    }

    pub fn value(&self, field: &str) -> Result<&'a Value, DataError> {
        self.obj
            .get(field)
            .ok_or_else(|| self.err(field, "missing"))
    }

    pub fn str(&self, field: &str) -> Result<&'a str, DataError> {
        match self.value(field)? {
            Value::String(s) => Ok(s),
            other => Err(self.err(field, format!("expected a string, got {}", kind(other)))),
        }
    }

    pub fn string(&self, field: &str) -> Result<String, DataError> {
        self.str(field).map(str::to_string)
    }

    pub fn u32(&self, field: &str) -> Result<u32, DataError> {
        let v = self.value(field)?;
        v.as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| self.err(field, format!("expected a non-negative integer, got {v}")))
    }

    pub fn array(&self, field: &str) -> Result<&'a Vec<Value>, DataError> {
        match self.value(field)? {
            Value::Array(a) => Ok(a),
            other => Err(self.err(field, format!("expected an array, got {}", kind(other)))),
        }
    }

    pub fn object(&self, field: &str) -> Result<&'a Map<String, Value>, DataError> {
        match self.value(field)? {
            Value::Object(m) => Ok(m),
            other => Err(self.err(field, format!("expected an object, got {}", kind(other)))),
        }
    }

    pub fn strings(&self, field: &str) -> Result<Vec<String>, DataError> {
        self.array(field)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.err(
                    &format!("{field}[{i}]"),
                    format!("expected a string, got {}", kind(other)),
                )),
            })
            .collect()
    }

    /// An array of finite numbers.
    pub fn numbers(&self, field: &str) -> Result<Vec<f64>, DataError> {
        numbers_of(self, field, self.value(field)?)
    }
}

/// Interprets `v` (the value of `field` of `rec`) as a distribution over `n` options: `n`
/// finite shares, each ≥ 0, whose sum lies within `tolerance` of 1.
pub(crate) fn shares_of(
    rec: &Rec<'_>,
    field: &str,
    v: &Value,
    n: usize,
    tolerance: f64,
) -> Result<Vec<f64>, DataError> {
    let shares = numbers_of(rec, field, v)?;
    if shares.len() != n {
        return Err(rec.err(field, format!("{} shares for {n} options", shares.len())));
    }
    if let Some((i, x)) = shares.iter().enumerate().find(|(_, x)| **x < 0.0) {
        return Err(rec.err(&format!("{field}[{i}]"), format!("{x} is negative")));
    }
    let sum: f64 = shares.iter().sum();
    if (sum - 1.0).abs() > tolerance {
        return Err(rec.err(
            field,
            format!("shares sum to {sum}, outside 1 ± {tolerance}"),
        ));
    }
    Ok(shares)
}

/// Interprets `v` (the value of `field` of `rec`) as an array of finite numbers.
pub(crate) fn numbers_of(rec: &Rec<'_>, field: &str, v: &Value) -> Result<Vec<f64>, DataError> {
    let arr = match v {
        Value::Array(a) => a,
        other => {
            return Err(rec.err(
                field,
                format!("expected an array of numbers, got {}", kind(other)),
            ))
        }
    };
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| rec.err(&format!("{field}[{i}]"), format!("{x} is not a number")))
        })
        .collect()
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
