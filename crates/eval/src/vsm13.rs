//! Hofstede's Values Survey Module 2013 (`vsm13`): the 24 scored items, six cultural
//! dimensions, L1 loss against a country's published Hofstede scores (lower is better).
//!
//! * **Items**: the 24 content items of the VSM 2013 with their answer scales, as in the
//!   VSM 2013 manual (Hofstede & Minkov 2013, © Geert Hofstede BV, research use;
//!   specs/vsm13.md §2–§3). They are the same for every country; only the country-prompt
//!   baseline differs. The manual's blocks are rendered as one question per item
//!   ([`item_question`]): items 1–10 continue the "ideal job" stem as one sentence, items
//!   11–14 follow the "private life" stem after its colon, items 21–24 follow the agreement
//!   stem on a new line.
//! * **Prompt** ([`item_prompt`]), chat mode: the question, the five answers as
//!   `"1. of utmost importance"` … one per line, and `"Answer with the number of your choice
//!   (1-5) only."`. Vanilla has no system text; the country-prompt baseline's system text is
//!   [`country_system_text`]: `"Act as a person from {country}. Answer the following survey
//!   question as that person would."` (`{country}` = the Hofstede table's name).
//! * **Readout**: next-token log-probabilities of the digits `"1"`…`"5"` at the start of the
//!   answer, softmax at temperature 1.
//! * **Answer modes** ([`Vsm13AnswerMode`], specs/softprompt_de.md §2): `logits_expectation`
//!   (default; item answer Σ k·p_k), `logits_argmax` (the most probable digit; ties → the
//!   lower digit) or `generate_parse` (greedy answer, first digit 1–5; answers without one are
//!   left out of the item means and counted).
//! * **Score**: item means m1..m24 (the mean over a country's records of each item; one
//!   record per item in a normal run) → the six indices with [`vsm13_scores`] (constants C and
//!   the MAS switch from [`Vsm13Options::config`], default C = 0 and the manual's 35) → L1
//!   loss Σ|d_i − t_i| with [`vsm13_l1_loss`] against `hofstede/six_dimensions.csv`.
//!   Dimensions without a published score are left out of the sum (component `human` = None;
//!   secondary `dims_compared` says how many entered). Scoring **needs all 24 items**: every
//!   dimension is a difference of item means, so a partial set gives no meaningful index; a
//!   run with `--limit` below 24 gets a clear error at scoring time.

use std::fmt;
use std::str::FromStr;

use crate::{
    unknown_country, BenchError, Benchmark, Component, CountryScore, ItemRecord, MetricInfo,
};
use culturesteer_core::metrics::{vsm13_l1_loss, vsm13_scores, Vsm13Config, Vsm13Dimension};
use culturesteer_core::CountryCode;
use culturesteer_data::hofstede::{HofstedeTable, SIX_DIMENSIONS};
use culturesteer_data::DataSource;
use culturesteer_methods::{AnswerParser, Country, Item, PromptSpec, Question, Readout};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Number of scored items.
pub const N_ITEMS: usize = 24;

/// Stem of items 1–10 (continued by the item text).
pub const STEM_IDEAL_JOB: &str = "Please think of an ideal job, disregarding your present job, if you have one. In choosing an ideal job, how important would it be to you to";
/// Stem of items 11–14.
pub const STEM_PRIVATE_LIFE: &str =
    "In your private life, how important is each of the following to you:";
/// Stem of items 21–24.
pub const STEM_AGREEMENT: &str =
    "To what extent do you agree or disagree with each of the following statements?";
/// Closing instruction of every item prompt.
/// Most generated tokens per item in `generate_parse` mode (the answer is one digit).
pub const GENERATE_MAX_TOKENS: usize = 8;

pub const ANSWER_INSTRUCTION: &str = "Answer with the number of your choice (1-5) only.";

/// The answer scales of the VSM 2013 (vsm13.md §2); codes 1..5 in label order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vsm13Scale {
    /// Scale A: of utmost importance … of very little or no importance.
    Importance,
    /// Scale B: always … never.
    Frequency,
    /// Scale C: yes, always … no, never.
    Prevention,
    /// Scale D: very good … very poor.
    Health,
    /// Scale E: very proud … not proud at all.
    Pride,
    /// Scale F (item 20): never … always (opposite direction to B).
    ReversedFrequency,
    /// Scale G: strongly agree … strongly disagree.
    Agreement,
}

impl Vsm13Scale {
    /// The five answer labels for codes 1..5.
    pub fn labels(self) -> [&'static str; 5] {
        match self {
            Vsm13Scale::Importance => [
                "of utmost importance",
                "very important",
                "of moderate importance",
                "of little importance",
                "of very little or no importance",
            ],
            Vsm13Scale::Frequency => ["always", "usually", "sometimes", "seldom", "never"],
            Vsm13Scale::Prevention => [
                "yes, always",
                "yes, usually",
                "sometimes",
                "no, seldom",
                "no, never",
            ],
            Vsm13Scale::Health => ["very good", "good", "fair", "poor", "very poor"],
            Vsm13Scale::Pride => [
                "very proud",
                "fairly proud",
                "somewhat proud",
                "not very proud",
                "not proud at all",
            ],
            Vsm13Scale::ReversedFrequency => ["never", "seldom", "sometimes", "usually", "always"],
            Vsm13Scale::Agreement => [
                "strongly agree",
                "agree",
                "undecided",
                "disagree",
                "strongly disagree",
            ],
        }
    }
}

/// Which block of the questionnaire an item belongs to (decides how it is worded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vsm13Block {
    /// Items 1–10: "… how important would it be to you to {item}?"
    IdealJob,
    /// Items 11–14: "In your private life, how important is each of the following to you: {item}"
    PrivateLife,
    /// Items 15–20: stand-alone questions.
    Single,
    /// Items 21–24: statements to agree or disagree with.
    Agreement,
}

/// One scored VSM 2013 item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vsm13Item {
    /// Item number, 1..=24.
    pub number: usize,
    /// Questionnaire block.
    pub block: Vsm13Block,
    /// The item text as in the questionnaire.
    pub text: &'static str,
    /// Answer scale.
    pub scale: Vsm13Scale,
}

const fn it(number: usize, block: Vsm13Block, text: &'static str, scale: Vsm13Scale) -> Vsm13Item {
    Vsm13Item {
        number,
        block,
        text,
        scale,
    }
}

use Vsm13Block as B;
use Vsm13Scale as S;

/// The 24 scored items (VSM 2013 manual; wording as in specs/vsm13.md §3).
pub const ITEMS: [Vsm13Item; N_ITEMS] = [
    it(1, B::IdealJob, "have sufficient time for your personal or home life", S::Importance),
    it(2, B::IdealJob, "have a boss (direct superior) you can respect", S::Importance),
    it(3, B::IdealJob, "get recognition for good performance", S::Importance),
    it(4, B::IdealJob, "have security of employment", S::Importance),
    it(5, B::IdealJob, "have pleasant people to work with", S::Importance),
    it(6, B::IdealJob, "do work that is interesting", S::Importance),
    it(7, B::IdealJob, "be consulted by your boss in decisions involving your work", S::Importance),
    it(8, B::IdealJob, "live in a desirable area", S::Importance),
    it(9, B::IdealJob, "have a job respected by your family and friends", S::Importance),
    it(10, B::IdealJob, "have chances for promotion", S::Importance),
    it(11, B::PrivateLife, "keeping time free for fun", S::Importance),
    it(12, B::PrivateLife, "moderation: having few desires", S::Importance),
    it(13, B::PrivateLife, "doing a service to a friend", S::Importance),
    it(14, B::PrivateLife, "thrift (not spending more than needed)", S::Importance),
    it(15, B::Single, "How often do you feel nervous or tense?", S::Frequency),
    it(16, B::Single, "Are you a happy person?", S::Frequency),
    it(17, B::Single, "Do other people or circumstances ever prevent you from doing what you really want to?", S::Prevention),
    it(18, B::Single, "All in all, how would you describe your state of health these days?", S::Health),
    it(19, B::Single, "How proud are you to be a citizen of your country?", S::Pride),
    it(
        20,
        B::Single,
        "How often, in your experience, are subordinates afraid to contradict their boss (or students their teacher)?",
        S::ReversedFrequency,
    ),
    it(
        21,
        B::Agreement,
        "One can be a good manager without having a precise answer to every question that a subordinate may raise about his or her work.",
        S::Agreement,
    ),
    it(22, B::Agreement, "Persistent efforts are the surest way to results.", S::Agreement),
    it(
        23,
        B::Agreement,
        "An organization structure in which certain subordinates have two bosses should be avoided at all cost.",
        S::Agreement,
    ),
    it(
        24,
        B::Agreement,
        "A company's or organization's rules should not be broken — not even when the employee thinks breaking the rule would be in the organization's best interest.",
        S::Agreement,
    ),
];

/// The question of an item with its block stem.
pub fn item_question(item: &Vsm13Item) -> String {
    match item.block {
        Vsm13Block::IdealJob => format!("{STEM_IDEAL_JOB} {}?", item.text),
        Vsm13Block::PrivateLife => format!("{STEM_PRIVATE_LIFE} {}", item.text),
        Vsm13Block::Single => item.text.to_string(),
        Vsm13Block::Agreement => format!("{STEM_AGREEMENT}\n{}", item.text),
    }
}

/// The full user text of an item: question, numbered answers, instruction.
pub fn item_prompt(item: &Vsm13Item) -> String {
    let mut s = item_question(item);
    for (k, l) in item.scale.labels().iter().enumerate() {
        s.push_str(&format!("\n{}. {l}", k + 1));
    }
    s.push('\n');
    s.push_str(ANSWER_INSTRUCTION);
    s
}

/// System text of the country-prompt baseline.
pub fn country_system_text(country: &str) -> String {
    format!("Act as a person from {country}. Answer the following survey question as that person would.")
}

/// How an item's answer code is read from the digit probabilities (softprompt_de.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vsm13AnswerMode {
    /// Σ k·p_k over the digits 1..5 (deterministic, smooth).
    #[default]
    LogitsExpectation,
    /// The most probable digit (ties → the lower digit).
    LogitsArgmax,
    /// Greedy generation, the first digit 1–5 of the answer is the code; answers without one
    /// are missing and left out of the item means (the manual's rule), and the parse-failure
    /// rate is reported.
    GenerateParse,
}

impl Vsm13AnswerMode {
    /// Every mode.
    pub const ALL: [Vsm13AnswerMode; 3] = [
        Vsm13AnswerMode::LogitsExpectation,
        Vsm13AnswerMode::LogitsArgmax,
        Vsm13AnswerMode::GenerateParse,
    ];

    /// Name as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Vsm13AnswerMode::LogitsExpectation => "logits_expectation",
            Vsm13AnswerMode::LogitsArgmax => "logits_argmax",
            Vsm13AnswerMode::GenerateParse => "generate_parse",
        }
    }

    /// The answer code (1..5) of one item from its five digit probabilities.
    pub fn answer(self, probs: &[f64]) -> Result<f64, BenchError> {
        if probs.len() != 5 || probs.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return Err(BenchError::Invalid(format!(
                "VSM13 needs five finite non-negative probabilities, got {probs:?}"
            )));
        }
        match self {
            Vsm13AnswerMode::LogitsExpectation => {
                let mass: f64 = probs.iter().sum();
                if mass <= 0.0 {
                    return Err(BenchError::Invalid(
                        "VSM13 probabilities have zero mass".into(),
                    ));
                }
                Ok(probs
                    .iter()
                    .enumerate()
                    .map(|(k, p)| (k + 1) as f64 * p)
                    .sum::<f64>()
                    / mass)
            }
            Vsm13AnswerMode::LogitsArgmax => {
                let (best, _) =
                    probs
                        .iter()
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &p)| {
                            if p > bv {
                                (i, p)
                            } else {
                                (bi, bv)
                            }
                        });
                Ok((best + 1) as f64)
            }
            // One-hot on the parsed digit.
            Vsm13AnswerMode::GenerateParse => Vsm13AnswerMode::LogitsArgmax.answer(probs),
        }
    }
}

impl fmt::Display for Vsm13AnswerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vsm13AnswerMode {
    type Err = BenchError;
    /// `logits_expectation`, `logits_argmax` or `generate_parse` (`-` may replace `_`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.replace('-', "_");
        Vsm13AnswerMode::ALL.into_iter().find(|m| m.as_str() == norm).ok_or_else(|| {
            BenchError::Invalid(format!("unknown VSM13 answer mode {s:?} (logits_expectation, logits_argmax, generate_parse)"))
        })
    }
}

/// Options of the `vsm13` benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Vsm13Options {
    /// How item answers are read (default `logits_expectation`).
    pub answer_mode: Vsm13AnswerMode,
    /// Index constants C and the MAS second weight (default C = 0, manual's 35).
    pub config: Vsm13Config,
}

/// What each item carries into `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vsm13Meta {
    /// Item number, 1..=24.
    pub item: usize,
    /// Answer scale.
    pub scale: Vsm13Scale,
}

fn meta_of(r: &ItemRecord) -> Result<Vsm13Meta, BenchError> {
    let m: Vsm13Meta = serde_json::from_value(r.meta.clone()).map_err(|e| {
        BenchError::Invalid(format!(
            "vsm13 record {} of {}: bad meta ({e})",
            r.item_id, r.country
        ))
    })?;
    if !(1..=N_ITEMS).contains(&m.item) {
        return Err(BenchError::Invalid(format!(
            "vsm13 record {} of {}: item {} is not 1..=24",
            r.item_id, r.country, m.item
        )));
    }
    Ok(m)
}

/// The item means of a country's VSM13 records: for each item the mean answer code over its
/// records (`None`: no record, or in `generate_parse` mode no parsed answer), and how many
/// generated answers had no digit 1–5.
#[derive(Debug, Clone, PartialEq)]
pub struct Vsm13ItemMeans {
    /// m1..m24 (index 0 = item 1).
    pub means: [Option<f64>; N_ITEMS],
    /// Generated answers without a digit 1–5 (always 0 in the logits modes).
    pub failures: usize,
    /// Records read.
    pub records: usize,
}

/// Reads the item means of `country`'s records under `options`' answer mode.
pub fn vsm13_item_means(
    country: CountryCode,
    records: &[ItemRecord],
    options: &Vsm13Options,
) -> Result<Vsm13ItemMeans, BenchError> {
    let mut sums = [0.0; N_ITEMS];
    let mut counts = [0usize; N_ITEMS];
    let mut failures = 0usize;
    for r in records {
        if r.country != country {
            return Err(BenchError::Invalid(format!(
                "vsm13 record {} is for {}, not {country}",
                r.item_id, r.country
            )));
        }
        let m = meta_of(r)?;
        if r.probs.is_empty() && options.answer_mode == Vsm13AnswerMode::GenerateParse {
            failures += 1;
            continue;
        }
        let a = options.answer_mode.answer(&r.probs).map_err(|e| {
            BenchError::Invalid(format!("vsm13 record {} of {country}: {e}", r.item_id))
        })?;
        sums[m.item - 1] += a;
        counts[m.item - 1] += 1;
    }
    let mut means = [None; N_ITEMS];
    for k in 0..N_ITEMS {
        if counts[k] > 0 {
            means[k] = Some(sums[k] / counts[k] as f64);
        }
    }
    Ok(Vsm13ItemMeans {
        means,
        failures,
        records: records.len(),
    })
}

/// Scores a country's VSM13 records against a Hofstede profile (PDI..IVR, `None` = no
/// published score).
pub fn score_vsm13(
    country: CountryCode,
    records: &[ItemRecord],
    target: &[Option<f64>; 6],
    options: &Vsm13Options,
) -> Result<CountryScore, BenchError> {
    let read = vsm13_item_means(country, records, options)?;
    let missing: Vec<String> = (0..N_ITEMS)
        .filter(|&k| read.means[k].is_none())
        .map(|k| (k + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(BenchError::Invalid(format!(
            "{country}: VSM13 scoring needs all 24 items; missing item(s) {} ({})",
            missing.join(", "),
            if read.failures > 0 {
                format!("{} generated answers had no digit 1-5", read.failures)
            } else {
                "run without --limit or with --limit 24".to_string()
            }
        )));
    }
    let means = read.means.map(|m| m.unwrap_or(f64::NAN));
    score_vsm13_means(country, &means, &read, target, options)
}

/// Scores item means m1..m24 (all answered) against a Hofstede profile; `read` gives the
/// record and parse-failure counts reported with the score.
pub fn score_vsm13_means(
    country: CountryCode,
    means: &[f64; N_ITEMS],
    read: &Vsm13ItemMeans,
    target: &[Option<f64>; 6],
    options: &Vsm13Options,
) -> Result<CountryScore, BenchError> {
    let scores = vsm13_scores(means, &options.config)
        .map_err(|e| BenchError::Invalid(format!("{country}: VSM13 scores: {e}")))?;
    let loss = vsm13_l1_loss(&scores, target);
    if loss.dims_compared == 0 {
        return Err(BenchError::NoHumanData {
            bench: "vsm13".into(),
            country: country.to_string(),
        });
    }
    let components = Vsm13Dimension::ALL
        .iter()
        .map(|&d| Component {
            name: d.abbrev().to_string(),
            model: scores.get(d),
            human: target[d.index()],
        })
        .collect();
    let mut secondary = vec![("dims_compared".to_string(), loss.dims_compared as f64)];
    if options.answer_mode == Vsm13AnswerMode::GenerateParse {
        secondary.push((
            "parse_failure_rate".to_string(),
            read.failures as f64 / read.records.max(1) as f64,
        ));
    }
    if let Some(m) = loss.mean() {
        secondary.push(("l1_mean".to_string(), m));
    }
    Ok(CountryScore {
        country,
        value: loss.total,
        n_items: read.records,
        components,
        secondary,
    })
}

/// The VSM 2013 benchmark.
pub struct Vsm13 {
    table: HofstedeTable,
    options: Vsm13Options,
}

impl Vsm13 {
    /// Loads the Hofstede table.
    pub fn load(source: &DataSource, options: Vsm13Options) -> Result<Self, BenchError> {
        Self::from_table(HofstedeTable::load(source)?, options)
    }

    /// Builds the benchmark from an already loaded table.
    pub fn from_table(table: HofstedeTable, options: Vsm13Options) -> Result<Self, BenchError> {
        Ok(Self { table, options })
    }

    /// The options in use.
    pub fn vsm13_options(&self) -> Vsm13Options {
        self.options
    }

    /// The same benchmark under other options.
    pub fn with_options(&self, options: Vsm13Options) -> Self {
        Self {
            table: self.table.clone(),
            options,
        }
    }

    /// The country's Hofstede profile (PDI..IVR; `None` where no score is published).
    pub fn target(&self, code: CountryCode) -> Result<[Option<f64>; 6], BenchError> {
        if !self.has_target(code) {
            return Err(unknown_country(self, code.as_str()));
        }
        Ok(self.table.target(code)?)
    }

    fn has_target(&self, code: CountryCode) -> bool {
        self.table
            .get(code)
            .is_ok_and(|r| r.scores.iter().any(Option::is_some))
    }
}

impl Benchmark for Vsm13 {
    fn name(&self) -> &'static str {
        "vsm13"
    }
    fn metric(&self) -> MetricInfo {
        MetricInfo {
            name: "L1",
            lower_is_better: true,
        }
    }
    fn countries(&self) -> Vec<CountryCode> {
        self.table
            .rows
            .iter()
            .filter(|r| r.scores.iter().any(Option::is_some))
            .map(|r| r.code)
            .collect()
    }
    fn default_countries(&self) -> Vec<CountryCode> {
        ["SAU", "USA", "CHN", "IND", "DEU", "JPN"]
            .iter()
            .filter_map(|c| CountryCode::new(c).ok())
            .filter(|c| self.has_target(*c))
            .collect()
    }
    fn country(&self, code: CountryCode) -> Result<Country, BenchError> {
        match self.table.get(code) {
            Ok(r) if r.scores.iter().any(Option::is_some) => Ok(Country {
                code,
                name: r.country.clone(),
            }),
            _ => Err(unknown_country(self, code.as_str())),
        }
    }
    fn items(&self, country: &Country) -> Result<Vec<Item>, BenchError> {
        if !self.has_target(country.code) {
            return Err(unknown_country(self, country.code.as_str()));
        }
        let system = country_system_text(&country.name);
        let labels: Vec<String> = (1..=5).map(|k| k.to_string()).collect();
        Ok(ITEMS
            .iter()
            .map(|item| {
                let user = item_prompt(item);
                Item {
                    id: format!("q{:02}", item.number),
                    question: Question {
                        stem: user.clone(),
                        options: item.scale.labels().iter().map(|l| l.to_string()).collect(),
                        labels: labels.clone(),
                        cue: String::new(),
                    },
                    prompt: PromptSpec {
                        system: None,
                        user: user.clone(),
                        chat: true,
                    },
                    country_prompt: PromptSpec {
                        system: Some(system.clone()),
                        user,
                        chat: true,
                    },
                    swapped: None,
                    dimension: None,
                    readout: match self.options.answer_mode {
                        Vsm13AnswerMode::GenerateParse => Readout::Generate {
                            labels: labels.clone(),
                            max_tokens: GENERATE_MAX_TOKENS,
                            parser: AnswerParser::FirstDigit,
                        },
                        _ => Readout::NextToken {
                            labels: labels.clone(),
                        },
                    },
                    temperature: 1.0,
                    meta: json!(Vsm13Meta {
                        item: item.number,
                        scale: item.scale
                    }),
                }
            })
            .collect())
    }
    fn score(&self, country: &Country, records: &[ItemRecord]) -> Result<CountryScore, BenchError> {
        let target = self.table.target(country.code)?;
        score_vsm13(country.code, records, &target, &self.options)
    }
    fn options(&self) -> serde_json::Value {
        json!(self.options)
    }
    fn data_files(&self) -> Vec<String> {
        vec![SIX_DIMENSIONS.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usa() -> CountryCode {
        CountryCode::new("USA").unwrap()
    }

    /// Records whose probabilities put the mean `m` (in [1, 5]) on item k by mixing the two
    /// neighbouring digits.
    fn records(means: &[f64]) -> Vec<ItemRecord> {
        means
            .iter()
            .enumerate()
            .map(|(k, &m)| {
                let lo = (m.floor() as usize).min(4);
                let frac = m - lo as f64;
                let mut probs = vec![0.0; 5];
                probs[lo - 1] = 1.0 - frac;
                probs[lo] += frac;
                ItemRecord {
                    method: "vanilla".into(),
                    country: usa(),
                    item_id: format!("q{:02}", k + 1),
                    logprobs: probs.iter().map(|p: &f64| p.ln()).collect(),
                    probs,
                    meta: json!(Vsm13Meta {
                        item: k + 1,
                        scale: ITEMS[k].scale
                    }),
                    prompt_id: String::new(),
                    options: vec![],
                    diagnostics: serde_json::Value::Null,
                }
            })
            .collect()
    }

    #[test]
    fn items_are_numbered_and_worded() {
        for (k, it) in ITEMS.iter().enumerate() {
            assert_eq!(it.number, k + 1);
        }
        assert_eq!(
            item_prompt(&ITEMS[0]),
            "Please think of an ideal job, disregarding your present job, if you have one. In choosing an ideal job, how important would it be to you to have sufficient time for your personal or home life?\n1. of utmost importance\n2. very important\n3. of moderate importance\n4. of little importance\n5. of very little or no importance\nAnswer with the number of your choice (1-5) only."
        );
        assert!(item_prompt(&ITEMS[19])
            .contains("\n1. never\n2. seldom\n3. sometimes\n4. usually\n5. always\n"));
        assert!(item_question(&ITEMS[21]).starts_with("To what extent do you agree or disagree with each of the following statements?\nPersistent"));
        assert_eq!(item_question(&ITEMS[10]), "In your private life, how important is each of the following to you: keeping time free for fun");
    }

    #[test]
    fn one_hot_records_reproduce_spec_vector() {
        // vsm13.md §5 row 3 (integer answers).
        let m = [
            2., 1., 2., 3., 2., 1., 3., 2., 3., 2., 2., 3., 2., 2., 3., 2., 3., 2., 2., 4., 2., 2.,
            2., 2.,
        ];
        let target = [Some(0.0); 6];
        for mode in [
            Vsm13AnswerMode::LogitsExpectation,
            Vsm13AnswerMode::LogitsArgmax,
        ] {
            let opts = Vsm13Options {
                answer_mode: mode,
                ..Default::default()
            };
            let s = score_vsm13(usa(), &records(&m), &target, &opts).unwrap();
            let got: Vec<f64> = s.components.iter().map(|c| c.model).collect();
            for (g, w) in got.iter().zip([120.0, 105.0, 0.0, -40.0, 0.0, 75.0]) {
                assert!((g - w).abs() < 1e-9, "{mode}: {got:?}");
            }
            assert!((s.value - 340.0).abs() < 1e-9);
        }
    }

    #[test]
    fn expectation_reproduces_fractional_vector_and_us_loss() {
        let m = [
            1.4, 1.8, 2.0, 1.6, 1.9, 1.7, 2.2, 2.4, 2.6, 2.0, 2.1, 2.9, 1.9, 2.5, 3.1, 2.2, 3.0,
            2.1, 1.8, 3.3, 2.4, 1.9, 2.8, 2.6,
        ];
        let b = Vsm13::load(&DataSource::Embedded, Vsm13Options::default()).unwrap();
        let c = b.country(usa()).unwrap();
        let s = b.score(&c, &records(&m)).unwrap();
        assert!((s.value - 269.0).abs() < 1e-9, "{}", s.value);
        let want = [26.5, 38.5, 10.5, -45.0, -26.5, 60.0];
        for (comp, w) in s.components.iter().zip(want) {
            assert!((comp.model - w).abs() < 1e-9);
        }
        assert_eq!(s.components[0].human, Some(40.0));
        assert_eq!(s.n_items, 24);
    }

    #[test]
    fn partial_runs_and_bad_modes_are_clear_errors() {
        let recs = records(&[3.0; 24]);
        let e = score_vsm13(
            usa(),
            &recs[..20],
            &[Some(0.0); 6],
            &Vsm13Options::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs all 24 items") && e.contains("21, 22, 23, 24"),
            "{e}"
        );
        // Generated answers without a digit are left out; an item with none at all is missing.
        let gen = Vsm13Options {
            answer_mode: Vsm13AnswerMode::GenerateParse,
            ..Default::default()
        };
        let mut g = records(&[3.0; 24]);
        g.extend(records(&[3.0; 24]).into_iter().map(|mut r| {
            r.probs.clear();
            r
        }));
        let s = score_vsm13(usa(), &g, &[Some(0.0); 6], &gen).unwrap();
        assert_eq!(
            s.secondary
                .iter()
                .find(|x| x.0 == "parse_failure_rate")
                .unwrap()
                .1,
            0.5
        );
        assert_eq!(s.value, 0.0);
        let e = score_vsm13(usa(), &g[24..], &[Some(0.0); 6], &gen)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no digit 1-5"), "{e}");
        assert_eq!(
            "logits-argmax".parse::<Vsm13AnswerMode>().unwrap(),
            Vsm13AnswerMode::LogitsArgmax
        );
        assert!("x".parse::<Vsm13AnswerMode>().is_err());
        // Missing target dimensions are excluded from the sum.
        let s = score_vsm13(
            usa(),
            &recs,
            &[Some(10.0), None, None, None, None, Some(-5.0)],
            &Vsm13Options::default(),
        )
        .unwrap();
        assert!((s.value - 15.0).abs() < 1e-12);
        assert_eq!(s.components[1].human, None);
        assert!(matches!(
            score_vsm13(usa(), &recs, &[None; 6], &Vsm13Options::default()),
            Err(BenchError::NoHumanData { .. })
        ));
    }

    #[test]
    fn answer_modes() {
        let p = [0.1, 0.2, 0.4, 0.2, 0.1];
        assert!((Vsm13AnswerMode::LogitsExpectation.answer(&p).unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(Vsm13AnswerMode::LogitsArgmax.answer(&p).unwrap(), 3.0);
        assert_eq!(
            Vsm13AnswerMode::LogitsArgmax
                .answer(&[0.4, 0.4, 0.2, 0.0, 0.0])
                .unwrap(),
            1.0
        );
        assert!(Vsm13AnswerMode::LogitsExpectation
            .answer(&[0.5, 0.5])
            .is_err());
    }
}
