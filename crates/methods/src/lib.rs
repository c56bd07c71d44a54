//! Steering methods behind one trait.
//!
//! A benchmark turns each of its questions into an [`Item`]: how to prompt ([`PromptSpec`]) and
//! how to read the model's choice ([`Readout`]). A [`Method`] answers a batch of items for one
//! country with a probability per option plus diagnostics. Methods only change *how* the model
//! is asked (system text, persona panels, aggregation); the benchmark keeps its own prompt frame.

pub mod disca;
pub mod gate;
pub mod palette;
pub mod readout;
pub mod vanilla;

use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_llm::{LanguageModel, LlmError};
use serde::{Deserialize, Serialize};

pub use disca::Disca;
pub use palette::{Palette, PaletteConfig, PaletteVariant};
pub use readout::{answer_from, read_options, render_prompt, score_request};
pub use vanilla::{CountryPrompt, SystemPrompt, Vanilla};

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
    /// Greedy generation of at most `max_tokens` tokens, then `parser` maps the text to one
    /// option. The answer is one-hot on the parsed option; an answer that names no option
    /// ("either", a refusal, unparsable text) has empty `probs` and is left out by the
    /// benchmarks, which report the share of such answers. `temperature` is ignored.
    Generate {
        labels: Vec<String>,
        max_tokens: usize,
        parser: AnswerParser,
    },
}

impl Readout {
    pub fn n_options(&self) -> usize {
        match self {
            Readout::NextToken { labels }
            | Readout::TopKLabels { labels, .. }
            | Readout::Generate { labels, .. } => labels.len(),
            Readout::Continuation { texts } => texts.len(),
        }
    }
}

/// Maps a generated answer to an option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnswerParser {
    /// The first character that is a digit decides: `d` in 1..=n picks option `d − 1`, any other
    /// digit or no digit at all leaves the answer unparsed (VSM13: "parse the first digit 1–5").
    FirstDigit,
    /// Prefix matching after normalisation (MultiTP's direct match, specs/multitp.md §1.5).
    PrefixMatch(PrefixMatch),
}

/// Normalisation and ordered match rules of [`AnswerParser::PrefixMatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixMatch {
    /// Keep only the text before the first occurrence of this string (e.g. ".").
    pub cut_at: String,
    /// Lowercase the text after cutting.
    pub lowercase: bool,
    /// Then keep only the text before each of these markers (e.g. "and sacrifice").
    pub cut_markers: Vec<String>,
    /// Then remove each of these leading strings, once each and in this order, when present.
    pub strip_prefixes: Vec<String>,
    /// The first rule with a candidate that is a prefix of the normalised text wins.
    pub rules: Vec<MatchRule>,
}

/// One outcome of a [`PrefixMatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRule {
    /// Outcome name recorded in the diagnostics ("left", "either", "neither", …).
    pub outcome: String,
    /// The option this outcome picks; `None` for outcomes that pick no option.
    pub option: Option<usize>,
    pub candidates: Vec<String>,
}

/// What a parser made of a generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedAnswer {
    /// Outcome name, or "unparsed".
    pub outcome: String,
    pub option: Option<usize>,
}

impl AnswerParser {
    pub fn parse(&self, text: &str, n_options: usize) -> ParsedAnswer {
        let unparsed = || ParsedAnswer {
            outcome: "unparsed".into(),
            option: None,
        };
        match self {
            AnswerParser::FirstDigit => match text.chars().find(|c| c.is_ascii_digit()) {
                Some(c) => {
                    let d = c.to_digit(10).unwrap_or(0) as usize;
                    if (1..=n_options).contains(&d) {
                        ParsedAnswer {
                            outcome: d.to_string(),
                            option: Some(d - 1),
                        }
                    } else {
                        unparsed()
                    }
                }
                None => unparsed(),
            },
            AnswerParser::PrefixMatch(m) => {
                let mut t = text
                    .split(m.cut_at.as_str())
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if m.lowercase {
                    t = t.to_lowercase();
                }
                for marker in &m.cut_markers {
                    t = t
                        .split(marker.as_str())
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                }
                for p in &m.strip_prefixes {
                    if let Some(rest) = t.strip_prefix(p.as_str()) {
                        t = rest.to_string();
                    }
                }
                m.rules
                    .iter()
                    .find(|r| {
                        r.candidates
                            .iter()
                            .any(|c| !c.is_empty() && t.starts_with(c.as_str()))
                    })
                    .map_or_else(unparsed, |r| ParsedAnswer {
                        outcome: r.outcome.clone(),
                        option: r.option.filter(|&o| o < n_options),
                    })
            }
        }
    }
}

/// The structure of a question as its benchmark built it, so that methods never parse prompt
/// text: what is asked, the options, their labels and the answer cue that ends the user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Question {
    /// The question as the user turn shows it, options included, without the answer cue
    /// (what Palette's agents discuss).
    pub stem: String,
    /// The option texts in presentation order (empty when the benchmark scores free text).
    pub options: Vec<String>,
    /// The labels the options are answered with ("A", "B"; empty when there are none).
    pub labels: Vec<String>,
    /// The answer cue that ends the user turn, verbatim ("Choice: ", "Answer:"); empty if none.
    pub cue: String,
}

/// One question of a benchmark, for one country.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Unique within (benchmark, country).
    pub id: String,
    /// The question's structure (stem, options, labels, cue).
    pub question: Question,
    pub prompt: PromptSpec,
    /// The same question under the benchmark's country-prompt baseline.
    pub country_prompt: PromptSpec,
    /// The same prompt with the two option labels exchanged and everything else in place,
    /// rendered by the benchmark in the question's own language (DISCA's positional debiasing,
    /// specs/disca.md §4.2). `None` when the benchmark has no second label order.
    pub swapped: Option<PromptSpec>,
    /// The moral dimension the question measures (MultiTP benchmarks).
    pub dimension: Option<MoralDimension>,
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
pub trait Method: Send {
    /// Name as given to `--method`.
    fn name(&self) -> &str;
    /// Options that identify the configuration (for the run manifest).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// `false` when the answer to an item does not depend on the country (vanilla): runners
    /// may then reuse one answer for every country that asks the very same item.
    fn uses_country(&self) -> bool {
        true
    }
    /// `true` when the answers depend on the run's seed (random draws, such as DISCA's
    /// importance sampling): `eval --seeds N` runs such methods once per seed.
    fn stochastic(&self) -> bool {
        false
    }
    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError>;
    /// A transform of one country's stored answers (in item order) that gives the numbers
    /// reported under the method's own name, when those are not the per-item answers
    /// themselves: DISCA's reference preset, whose headline includes the country prior (a
    /// recursion over the items). `results.jsonl` keeps the per-item answers. None by default.
    fn headline(&self) -> Option<View> {
        None
    }
    /// Further names under which the same stored answers are reported, each recomputed from a
    /// country's answers in item order (DISCA with its country prior is one: the prior is a
    /// recursion over the stored δ_micro). None by default.
    fn views(&self) -> Vec<View> {
        vec![]
    }
}

/// A derived presentation of a method's answers (see [`Method::views`]).
pub struct View {
    pub name: String,
    /// Maps one country's answers, in item order, to the view's answers.
    pub transform: Box<dyn Fn(&[Answer]) -> Result<Vec<Answer>, MethodError> + Send + Sync>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_digit_parser() {
        let p = AnswerParser::FirstDigit;
        assert_eq!(p.parse("  4. Very important", 5).option, Some(3));
        assert_eq!(p.parse("I'd say 2, maybe 3", 5).option, Some(1));
        assert_eq!(
            p.parse("7", 5),
            ParsedAnswer {
                outcome: "unparsed".into(),
                option: None
            }
        );
        assert_eq!(p.parse("0 or 1", 5).option, None, "the first digit decides");
        assert_eq!(p.parse("no idea", 5).option, None);
    }

    #[test]
    fn prefix_match_normalises_then_takes_the_first_rule() {
        let p = AnswerParser::PrefixMatch(PrefixMatch {
            cut_at: ".".into(),
            lowercase: true,
            cut_markers: vec!["and sacrifice".into()],
            strip_prefixes: vec!["i think ".into(), "the ".into()],
            rules: vec![
                MatchRule {
                    outcome: "left".into(),
                    option: Some(0),
                    candidates: vec!["dog".into()],
                },
                MatchRule {
                    outcome: "right".into(),
                    option: Some(1),
                    candidates: vec!["cat".into()],
                },
                MatchRule {
                    outcome: "neither".into(),
                    option: None,
                    candidates: vec!["neither ".into(), "As a".into()],
                },
            ],
        });
        assert_eq!(
            p.parse("I think the dog and sacrifice the cat. Because", 2)
                .option,
            Some(0)
        );
        assert_eq!(p.parse(" The cat.", 2).option, Some(1));
        assert_eq!(p.parse("Neither of them", 2).outcome, "neither");
        // Capitalised candidates never match lowercased text (MultiTP's quirk, kept).
        assert_eq!(p.parse("As a language model", 2).outcome, "unparsed");
        // Strip prefixes apply once each, in order: "the i think" keeps "i think".
        assert_eq!(p.parse("the i think dog", 2).outcome, "unparsed");
    }
}
