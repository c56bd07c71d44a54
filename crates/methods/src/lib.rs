//! Steering methods behind one trait.
//!
//! A benchmark turns each of its questions into an [`Item`]: how to prompt ([`PromptSpec`]) and
//! how to read the model's choice ([`Readout`]). A [`Method`] answers a batch of items for one
//! country with a probability per option plus diagnostics. Methods only change *how* the model
//! is asked (system text, persona panels, aggregation); the benchmark keeps its own prompt frame.

pub mod readout;
pub mod vanilla;

use culturesteer_core::CountryCode;
use culturesteer_llm::{LanguageModel, LlmError};
use serde::{Deserialize, Serialize};

pub use readout::{read_options, render_prompt};
pub use vanilla::{CountryPrompt, Vanilla};

/// A country as methods see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Country {
    pub code: CountryCode,
    /// English name used in prompts ("Germany", "the United States").
    pub name: String,
}

/// How an item is put to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSpec {
    /// System text. In chat mode a system turn (merged into the user turn for models without a
    /// system role); in completion mode prepended verbatim to `user`.
    pub system: Option<String>,
    /// The question as the benchmark frames it.
    pub user: String,
    /// `true`: render with the model's chat format, the answer starting at the assistant turn.
    /// `false`: raw completion text.
    pub chat: bool,
}

/// How the model's choice among the options is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Readout {
    /// Next-token log-probabilities of the option labels (e.g. "A", "B") at the answer position;
    /// each label is resolved to the first token that differs when appended to the prompt
    /// (specs/disca.md §1). Probabilities: softmax(logprob / temperature).
    NextToken { labels: Vec<String> },
    /// Whole-string log-probabilities of each option text as a continuation of the prompt.
    /// Probabilities: softmax(logprob / temperature).
    Continuation { texts: Vec<String> },
    /// Modular Pluralism's reader (specs/palette.md §2.3): softmax over the full vocabulary,
    /// keep the top `k` tokens, each label takes the probability of the first (most probable)
    /// top-k token whose whitespace-stripped text equals it, renormalise; uniform when no label
    /// is in the top k. `temperature` is ignored.
    TopKLabels { labels: Vec<String>, k: usize },
}

impl Readout {
    pub fn n_options(&self) -> usize {
        match self {
            Readout::NextToken { labels } | Readout::TopKLabels { labels, .. } => labels.len(),
            Readout::Continuation { texts } => texts.len(),
        }
    }
}

/// One question of a benchmark, for one country.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Unique within (benchmark, country).
    pub id: String,
    pub prompt: PromptSpec,
    /// The same question under the benchmark's country-prompt baseline.
    pub country_prompt: PromptSpec,
    pub readout: Readout,
    /// Decision temperature applied to the option log-probabilities.
    pub temperature: f64,
    /// Benchmark data carried into the results (dimension, preferred option, …), so scoring can
    /// be redone from results.jsonl alone.
    pub meta: serde_json::Value,
}

/// A method's answer to one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Probability of each option (sums to 1).
    pub probs: Vec<f64>,
    /// The raw option log-probabilities the probabilities came from (method-specific for
    /// aggregating methods).
    pub logprobs: Vec<f64>,
    pub diagnostics: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("item {id}: {what}")]
    Item { id: String, what: String },
    #[error("{0}")]
    Config(String),
}

/// A steering method. Implementations should pass the whole batch to the model at once so
/// shared prefixes are evaluated once.
pub trait Method {
    /// Name as given to `--method`.
    fn name(&self) -> &str;
    /// Options that identify the configuration (for the run manifest).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn answer(&mut self, lm: &mut dyn LanguageModel, country: &Country, items: &[Item]) -> Result<Vec<Answer>, MethodError>;
}
