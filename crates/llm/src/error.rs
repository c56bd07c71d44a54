//! Errors of the model layer.

use std::path::PathBuf;

/// Everything that can go wrong at the model boundary. Messages are one line and name the
/// offending file, prompt or setting.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model file {path} not found")]
    ModelNotFound { path: PathBuf },
    #[error("{path} is not a GGUF file (bad magic bytes)")]
    NotGguf { path: PathBuf },
    #[error("llama.cpp could not load the model {path} (corrupt or unsupported GGUF)")]
    LoadFailed { path: PathBuf },
    #[error("could not create an inference context: {0}")]
    Context(String),
    #[error("prompt {index} is {tokens} tokens long, more than the per-sequence context of {limit} tokens (raise --ctx)")]
    PromptTooLong {
        index: usize,
        tokens: usize,
        limit: usize,
    },
    #[error("prompt {index} is empty after tokenisation")]
    EmptyPrompt { index: usize },
    #[error("invalid model settings: {0}")]
    Config(String),
    #[error("request {index}: {what}")]
    InvalidRequest { index: usize, what: String },
    #[error("token id {token} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange { token: i32, vocab: usize },
    #[error("tokenisation failed: {0}")]
    Tokenize(String),
    #[error("chat formatting failed: {0}")]
    ChatTemplate(String),
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    #[error("this backend does not support {0}")]
    Unsupported(&'static str),
    #[error("model fetch failed: {0}")]
    Fetch(String),
    #[error("model {value} not found: no such file, and not a known model name ({known})")]
    UnknownModel { value: String, known: String },
    #[error("server {url}: {what}")]
    Http { url: String, what: String },
    #[error("server {url} did not return log-probabilities: {hint}")]
    NoLogprobs { url: String, hint: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LlmError {
    /// True when the error comes from what the user supplied (file, prompt, option) rather than
    /// from the engine; the CLI maps these to exit code 2.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, LlmError::Decode(_) | LlmError::Context(_))
    }
}

pub type Result<T, E = LlmError> = std::result::Result<T, E>;
