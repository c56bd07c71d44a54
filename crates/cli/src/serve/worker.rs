//! The model thread: one thread owns the model and runs queued jobs one after another, so
//! the async front end never blocks and requests never interleave inside the engine.

use super::api::ApiError;
use culturesteer_core::disca::DiscaConfig;
use culturesteer_core::hash::fnv1a64;
use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_data::palette::{ContinentMap, PaletteTemplates};
use culturesteer_data::personas::resolve_panel;
use culturesteer_data::DataSource;
use culturesteer_llm::{LanguageModel, LlmError, TokenId};
use culturesteer_methods::{
    Answer, Country, CountryPrompt, Disca, Item, Method, MethodError, Palette, PaletteConfig,
    PromptSpec, Question, Readout, Vanilla,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;

/// A unit of work for the model thread.
pub type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// How an answer is steered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    Vanilla,
    CountryPrompt,
    Disca,
    /// Cultural Palette (drafts, summary, decision): `/v1/choose` only.
    Palette,
}

impl Steering {
    /// The registry's servable methods (`MethodSpec::servable`; a test keeps the two in step).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "vanilla" => Ok(Steering::Vanilla),
            "country-prompt" => Ok(Steering::CountryPrompt),
            "disca" => Ok(Steering::Disca),
            "palette" => Ok(Steering::Palette),
            "soft-prompt" => Err(ApiError::invalid(
                "steering",
                "a soft prompt steers the whole server: start it with --soft-prompt FILE",
            )),
            other => Err(ApiError::invalid(
                "steering",
                format!(
                    "unknown steering {other:?} ({})",
                    culturesteer_registry::methods::names(|m| m.servable)
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Steering::Vanilla => "vanilla",
            Steering::CountryPrompt => "country-prompt",
            Steering::Disca => "disca",
            Steering::Palette => "palette",
        }
    }
}

/// The country-prompt baseline's system text (the wording of the multitp-disca protocol).
pub fn country_instruction(name: &str) -> String {
    format!("Answer as a typical respondent from {name} would.")
}

/// The `/v1/choose` question: the DISCA protocol's frame generalised to n options (labels
/// "Option A", "Option B", …). Returns the question's structure and its user turn; with
/// `swap_first_two` the labels of the first two options are exchanged and the texts stay in
/// place (the second label order DISCA debiases with).
pub fn choose_question(
    question: &str,
    options: &[String],
    swap_first_two: bool,
) -> (Question, String) {
    let letters: Vec<String> = ('A'..='Z')
        .take(options.len())
        .map(|c| c.to_string())
        .collect();
    let mut shown = letters.clone();
    if swap_first_two && shown.len() >= 2 {
        shown.swap(0, 1);
    }
    let listed: Vec<String> = options
        .iter()
        .zip(&shown)
        .map(|(o, l)| format!("Option {l}: {o}"))
        .collect();
    let (head, last) = letters.split_at(letters.len().saturating_sub(1));
    let stem = format!(
        "{question}\n\n{}\n\nIf you must choose, which option would you choose? Answer with exactly one letter: {} or {}.",
        listed.join("\n"),
        head.join(", "),
        last.first().map(String::as_str).unwrap_or("")
    );
    let user = format!("{stem}\n\n{CHOOSE_CUE}");
    (
        Question {
            stem,
            options: options.to_vec(),
            labels: letters,
            cue: CHOOSE_CUE.into(),
        },
        user,
    )
}

/// The answer cue of `/v1/choose` (as in the DISCA frame, with its trailing space).
pub const CHOOSE_CUE: &str = "Choice: ";

/// What the model thread owns.
pub struct Worker {
    pub lm: Box<dyn LanguageModel>,
    pub data: DataSource,
    pub personas: Option<PathBuf>,
    pub disca: DiscaConfig,
    pub seed: u64,
    /// Cultural Palette's settings, templates and continent map (`steering: "palette"`).
    pub palette: Option<(PaletteConfig, PaletteTemplates, ContinentMap)>,
    panels: HashMap<CountryCode, Vec<String>>,
    bos: Option<Option<TokenId>>,
}

impl Worker {
    pub fn new(
        lm: Box<dyn LanguageModel>,
        data: DataSource,
        personas: Option<PathBuf>,
        disca: DiscaConfig,
        seed: u64,
    ) -> Self {
        Self {
            lm,
            data,
            personas,
            disca,
            seed,
            palette: None,
            panels: HashMap::new(),
            bos: None,
        }
    }

    /// Runs jobs until every sender is gone. A panicking job is reported and the loop goes on.
    pub fn run(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut self))).is_err() {
                tracing::error!("a request panicked in the model thread; continuing");
            }
        }
    }

    /// Tokenises without the BOS token the model's tokenizer adds.
    pub fn tokenize(&mut self, text: &str, add_special: bool) -> Result<Vec<TokenId>, ApiError> {
        let mut t = self.lm.tokenize(text).map_err(model_error)?;
        if !add_special {
            if self.bos.is_none() {
                self.bos = Some(self.lm.tokenize("").map_err(model_error)?.first().copied());
            }
            if let (Some(Some(b)), Some(&first)) = (self.bos, t.first()) {
                if first == b {
                    t.remove(0);
                }
            }
        }
        Ok(t)
    }

    fn panel(&mut self, c: CountryCode) -> Result<Vec<String>, ApiError> {
        if let Some(p) = self.panels.get(&c) {
            return Ok(p.clone());
        }
        let panel = resolve_panel(self.personas.as_deref(), &self.data, c)
            .map_err(|e| ApiError::invalid("culture", e.to_string()))?;
        let texts: Vec<String> = panel.personas.into_iter().map(|p| p.text).collect();
        self.panels.insert(c, texts.clone());
        Ok(texts)
    }

    /// `/v1/choose`: one question, its options, one country, one steering method.
    pub fn choose(
        &mut self,
        country: Country,
        question: &str,
        options: &[String],
        steering: Steering,
        category: MoralDimension,
        seed: Option<u64>,
    ) -> Result<Answer, ApiError> {
        let (q, user) = choose_question(question, options, false);
        let base = |user: String| PromptSpec {
            system: Some(culturesteer_eval::multitp::DISCA_BASE_SYSTEM.into()),
            user,
            chat: true,
        };
        let item = Item {
            id: format!(
                "choose-{:016x}",
                fnv1a64(
                    0,
                    [question, &options.join("\u{1f}")]
                        .iter()
                        .flat_map(|p| p.bytes().chain([0]))
                )
            ),
            readout: Readout::NextToken {
                labels: q.labels.clone(),
            },
            question: q,
            prompt: base(user.clone()),
            country_prompt: PromptSpec {
                system: Some(country_instruction(&country.name)),
                user,
                chat: true,
            },
            swapped: (options.len() == 2).then(|| base(choose_question(question, options, true).1)),
            dimension: Some(category),
            temperature: 1.0,
            meta: json!({ "dimension": category }),
        };
        let mut method: Box<dyn Method> = match steering {
            Steering::Vanilla => Box::new(Vanilla),
            Steering::CountryPrompt => Box::new(CountryPrompt),
            Steering::Disca => {
                let panel = self.panel(country.code)?;
                let panels = std::iter::once((country.code, panel)).collect();
                Box::new(Disca::new(
                    "disca",
                    self.disca.clone(),
                    panels,
                    seed.unwrap_or(self.seed),
                ))
            }
            Steering::Palette => {
                let (cfg, templates, continents) = self
                    .palette
                    .clone()
                    .ok_or_else(|| ApiError::internal("palette is not configured"))?;
                continents
                    .continent_of(&country.code)
                    .map_err(|e| ApiError::invalid("culture", e.to_string()))?;
                Box::new(Palette::new(cfg, templates, continents).map_err(method_error)?)
            }
        };
        let mut answers = method
            .answer(self.lm.as_mut(), &country, std::slice::from_ref(&item))
            .map_err(method_error)?;
        answers
            .pop()
            .ok_or_else(|| ApiError::internal("the method returned no answer"))
    }
}

/// Model errors caused by the request (too long, bad token id, template) are 422; engine
/// failures 500; an unreachable upstream server 503.
pub fn model_error(e: LlmError) -> ApiError {
    match &e {
        LlmError::Decode(_) | LlmError::Context(_) => ApiError::internal(e.to_string()),
        LlmError::Http { .. } | LlmError::NoLogprobs { .. } => {
            ApiError::unavailable(format!("upstream model: {e}"))
        }
        _ => ApiError::invalid("prompt", e.to_string()),
    }
}

pub fn method_error(e: MethodError) -> ApiError {
    match e {
        MethodError::Model(m) => model_error(m),
        other => ApiError::invalid("options", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists_lettered_options() {
        let (q, f) = choose_question(
            "Tea or coffee?",
            &["tea".into(), "coffee".into(), "water".into()],
            false,
        );
        assert!(
            f.starts_with("Tea or coffee?\n\nOption A: tea\nOption B: coffee\nOption C: water\n\n")
        );
        assert!(f.contains("exactly one letter: A, B or C."));
        assert!(f.ends_with("Choice: "));
        assert_eq!(f, format!("{}\n\n{}", q.stem, q.cue));
        assert_eq!(q.labels, ["A", "B", "C"]);
        let (_, two) = choose_question("Q", &["x".into(), "y".into()], false);
        assert!(two.contains("letter: A or B."));
        // The second label order for DISCA: labels exchanged, texts and everything else in place.
        let (_, swapped) = choose_question("Q", &["x".into(), "y".into()], true);
        assert_eq!(
            swapped,
            two.replace("Option A: x\nOption B: y", "Option B: x\nOption A: y")
        );
    }

    #[test]
    fn steering_names() {
        assert_eq!(Steering::parse("disca").unwrap(), Steering::Disca);
        assert_eq!(Steering::parse("palette").unwrap(), Steering::Palette);
        assert_eq!(
            Steering::parse("soft-prompt").unwrap_err().status.as_u16(),
            422
        );
        assert!(Steering::parse("DISCA").is_err());
    }
}

#[cfg(test)]
mod steering_tests {
    use super::Steering;

    #[test]
    fn the_servable_methods_of_the_registry_are_the_steerings() {
        for m in culturesteer_registry::METHODS {
            match Steering::parse(m.name) {
                Ok(s) => {
                    assert!(m.servable, "{} is served but not marked servable", m.name);
                    assert_eq!(s.as_str(), m.name);
                }
                Err(_) => assert!(!m.servable, "{} is marked servable but not served", m.name),
            }
        }
    }
}
