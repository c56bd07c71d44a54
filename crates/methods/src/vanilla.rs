//! Baselines that change only the prompt: vanilla and the country prompt.

use crate::readout::{read_options, render_prompt};
use crate::{Answer, Country, Item, Method, MethodError};
use culturesteer_llm::LanguageModel;

/// The benchmark's own prompt, unchanged.
#[derive(Debug, Default, Clone)]
pub struct Vanilla;

impl Method for Vanilla {
    fn name(&self) -> &str {
        "vanilla"
    }
    fn answer(&mut self, lm: &mut dyn LanguageModel, _country: &Country, items: &[Item]) -> Result<Vec<Answer>, MethodError> {
        let prompts = items.iter().map(|i| render_prompt(lm, &i.prompt)).collect::<Result<Vec<_>, _>>()?;
        read_options(lm, items, prompts)
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
    fn answer(&mut self, lm: &mut dyn LanguageModel, _country: &Country, items: &[Item]) -> Result<Vec<Answer>, MethodError> {
        let prompts = items.iter().map(|i| render_prompt(lm, &i.country_prompt)).collect::<Result<Vec<_>, _>>()?;
        read_options(lm, items, prompts)
    }
}
