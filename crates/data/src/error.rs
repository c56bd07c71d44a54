//! The loaders' error type: every variant names the file, and where possible the 1-based
//! line and the field.

/// Why a dataset could not be loaded or queried.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not compiled into this binary; read it from a data directory instead.
    #[error("{path}: not embedded in this build; pass a data directory that contains it")]
    NotEmbedded {
        /// The path that was asked for.
        path: String,
    },
    /// A field of one record is missing or invalid.
    #[error("{file} line {line} field {field}: {message}")]
    Field {
        /// File as shown to the user.
        file: String,
        /// 1-based line where the record starts.
        line: usize,
        /// Column or JSON field name (dotted for nested fields).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A whole line is malformed (bad CSV shape, invalid JSON).
    #[error("{file} line {line}: {message}")]
    Line {
        /// File as shown to the user.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file as a whole is wrong (e.g. no records, wrong file set).
    #[error("{file}: {message}")]
    File {
        /// File or directory as shown to the user.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A country that the dataset does not cover.
    #[error("unknown country {code:?} in {dataset}; valid codes: {}", .valid.join(", "))]
    UnknownCountry {
        /// The dataset that was asked.
        dataset: String,
        /// The code (or text) that was asked for.
        code: String,
        /// The codes the dataset does have, sorted.
        valid: Vec<String>,
    },
    /// The replay arithmetic failed (missing human target, missing dimension, ...).
    #[error(transparent)]
    Replay(#[from] culturesteer_core::replay::ReplayError),
}

impl DataError {
    pub(crate) fn field(file: &str, line: usize, field: &str, message: impl Into<String>) -> Self {
        DataError::Field {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn unknown_country<'a, I>(dataset: &str, code: &str, valid: I) -> Self
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut v: Vec<String> = valid.into_iter().map(str::to_string).collect();
        v.sort();
        v.dedup();
        DataError::UnknownCountry {
            dataset: dataset.to_string(),
            code: code.to_string(),
            valid: v,
        }
    }
}
