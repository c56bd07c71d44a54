//! Baselines that change only the prompt: vanilla and the country prompt.

use crate::readout::{read_options, render_prompt};
use crate::{Answer, Country, Item, Method, MethodError, PromptSpec};
use culturesteer_llm::LanguageModel;

/// Renders the prompt `pick` chooses for every item and reads the options in one batch.
fn answer_with(
    lm: &mut dyn LanguageModel,
    items: &[Item],
    pick: fn(&Item) -> &PromptSpec,
) -> Result<Vec<Answer>, MethodError> {
    let prompts = items
        .iter()
        .map(|i| render_prompt(lm, pick(i)))
        .collect::<Result<Vec<_>, _>>()?;
    read_options(lm, items, prompts)
}

/// The benchmark's own prompt, unchanged.
#[derive(Debug, Default, Clone)]
pub struct Vanilla;

impl Method for Vanilla {
    fn name(&self) -> &str {
        "vanilla"
    }
    fn uses_country(&self) -> bool {
        false
    }
    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        _country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        answer_with(lm, items, |i| &i.prompt)
    }
}

/// The benchmark's country-prompt baseline ("answer as a typical person from X"; the exact
/// wording is the benchmark's, see each benchmark's docs).
#[derive(Debug, Default, Clone)]
pub struct CountryPrompt;

impl Method for CountryPrompt {
    fn name(&self) -> &str {
        "country-prompt"
    }
    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        _country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        answer_with(lm, items, |i| &i.country_prompt)
    }
}

/// A per-country system text in place of the benchmark's own (e.g. the "WVS profile" baseline:
/// one prompt with the country's aggregate value descriptors).
#[derive(Debug, Clone)]
pub struct SystemPrompt {
    name: String,
    texts: std::collections::BTreeMap<culturesteer_core::CountryCode, String>,
}

impl SystemPrompt {
    pub fn new(
        name: impl Into<String>,
        texts: std::collections::BTreeMap<culturesteer_core::CountryCode, String>,
    ) -> Self {
        Self {
            name: name.into(),
            texts,
        }
    }
}

impl Method for SystemPrompt {
    fn name(&self) -> &str {
        &self.name
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "system_texts": self.texts })
    }
    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        let text = self.texts.get(&country.code).ok_or_else(|| {
            MethodError::Config(format!(
                "{}: no system text for {}",
                self.name, country.code
            ))
        })?;
        let prompts = items
            .iter()
            .map(|i| {
                render_prompt(
                    lm,
                    &PromptSpec {
                        system: Some(text.clone()),
                        ..i.prompt.clone()
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        read_options(lm, items, prompts)
    }
}
