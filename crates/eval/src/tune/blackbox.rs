//! The black-box variant of VSM13 tuning (issue #7, item 4): for models behind an HTTP API,
//! which take no input embeddings, DE searches a persona template's discrete choices instead
//! of a soft prompt.
//!
//! The template is one country line (one of [`BlackBoxConfig::country_lines`]) followed by one
//! sentence for each of the ten WVS value dimensions of the DISCA persona template (data
//! crate, `ValueDimension`), each at one of its four descriptor levels or left out. Each
//! choice is one gene in [0, 1); a gene g selects option ⌊g·n⌋ of its n options (so DE's
//! continuous moves become index changes). The objective is the same VSM13 L1 loss as the
//! soft-prompt tuner's, with the persona as the system text.
//!
//! The start (member 0 of the population) is the country's WVS-7 profile when the shipped
//! marginals have the country (every dimension at the level the survey gives it), otherwise
//! the first country line alone. Identical personas are scored once per run.

use super::{optimize, Candidate, TunerConfig, Vsm13Eval, Vsm13Objective};
use crate::BenchError;
use culturesteer_core::de::{BoundHandling, DeConfig, GenerationReport, Init, Space, StopReason};
use culturesteer_data::personas::{ValueDimension, ValueProfile};
use culturesteer_llm::LanguageModel;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Options of one value dimension: its four levels, then "left out".
const DIMENSION_OPTIONS: usize = 5;

/// Settings of the black-box tuner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlackBoxConfig {
    /// The country line's options; `{country}` becomes the country's name, and an empty
    /// option means no country line.
    pub country_lines: Vec<String>,
    pub de: DeConfig,
}

impl Default for BlackBoxConfig {
    /// Three country lines (none, "You are a person from {country}.", "You grew up in
    /// {country} and share the values most people there hold."); DE/rand/1/bin with NP 20,
    /// F dithered in (0.5, 1), CR 0.9, genes in [0, 1] (bounce-back), the rest of the initial
    /// population uniform over the box, 20 generations.
    fn default() -> Self {
        Self {
            country_lines: vec![
                String::new(),
                "You are a person from {country}.".into(),
                "You grew up in {country} and share the values most people there hold.".into(),
            ],
            de: DeConfig {
                dither: Some((0.5, 1.0)),
                bounds: Some((0.0, 1.0)),
                bound_handling: BoundHandling::BounceBack,
                init: Init::Uniform,
                max_generations: 20,
                ..DeConfig::default()
            },
        }
    }
}

impl TunerConfig for BlackBoxConfig {
    fn de(&self) -> &DeConfig {
        &self.de
    }
    fn de_mut(&mut self) -> &mut DeConfig {
        &mut self.de
    }
}

/// One point of the template: the country line's index and each dimension's level (0 is the
/// strongest positive pole, as in `ValueDimension::descriptors`; `None` = left out).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersonaChoice {
    pub country_line: usize,
    pub levels: [Option<usize>; 10],
}

/// The option a gene selects among `n`.
fn option_of(gene: f64, n: usize) -> usize {
    ((gene.clamp(0.0, 1.0) * n as f64).floor() as usize).min(n - 1)
}

/// The gene at the middle of option `i`'s interval among `n`.
fn gene_of(i: usize, n: usize) -> f64 {
    (i as f64 + 0.5) / n as f64
}

impl PersonaChoice {
    /// The start: the country's WVS profile (dimensions it lacks left out) after country
    /// line `line`.
    pub fn from_profile(line: usize, profile: Option<&ValueProfile>) -> Self {
        let mut levels = [None; 10];
        if let Some(p) = profile {
            for (k, d) in ValueDimension::ALL.iter().enumerate() {
                levels[k] = p.get(*d).map(|v| ValueDimension::quartile(d.normalise(v)));
            }
        }
        Self {
            country_line: line,
            levels,
        }
    }

    /// The choice a gene vector (1 + 10 genes) selects; missing genes read as 0.
    pub fn decode(genes: &[f64], lines: usize) -> Self {
        let mut levels = [None; 10];
        for (k, g) in genes.iter().skip(1).enumerate().take(10) {
            let o = option_of(*g, DIMENSION_OPTIONS);
            levels[k] = (o < 4).then_some(o);
        }
        Self {
            country_line: option_of(genes.first().copied().unwrap_or(0.0), lines.max(1)),
            levels,
        }
    }

    /// Genes that decode to this choice (each at the middle of its option's interval).
    pub fn encode(&self, lines: usize) -> Vec<f64> {
        let mut g = vec![gene_of(self.country_line, lines)];
        g.extend(
            self.levels
                .iter()
                .map(|l| gene_of(l.unwrap_or(4), DIMENSION_OPTIONS)),
        );
        g
    }

    /// The persona text: the country line, then one sentence per chosen dimension.
    pub fn text(&self, config: &BlackBoxConfig, country_name: &str) -> String {
        let mut parts = Vec::new();
        let line = config
            .country_lines
            .get(self.country_line)
            .map_or(String::new(), |l| l.replace("{country}", country_name));
        if !line.trim().is_empty() {
            parts.push(line.trim().to_string());
        }
        for (d, level) in ValueDimension::ALL.iter().zip(self.levels) {
            if let Some(l) = level {
                parts.push(d.sentence(d.descriptors()[l]));
            }
        }
        parts.join(" ")
    }
}

/// The candidate of a persona text (no text = the naive model).
pub fn candidate_of(text: &str) -> Candidate {
    if text.is_empty() {
        Candidate::Plain
    } else {
        Candidate::System(text.to_string())
    }
}

/// The finished black-box run.
#[derive(Debug, Clone)]
pub struct BlackBoxOutcome {
    pub choice: PersonaChoice,
    pub text: String,
    /// The tuned persona answering all 24 items itself.
    pub eval: Vsm13Eval,
    /// The tuned persona under the objective (held-out items at the start persona's
    /// answers); equals `eval` without held-out items.
    pub in_sample: Vsm13Eval,
    pub reports: Vec<GenerationReport>,
    pub stop: Option<StopReason>,
    pub evaluations: usize,
    /// Distinct personas sent to the model in this process (repeats are answered from a cache).
    pub model_evaluations: usize,
}

impl BlackBoxOutcome {
    /// The run paragraph of the report.
    pub fn describe(&self, config: &BlackBoxConfig) -> String {
        format!(
            "{} (black box: 1 country line of {} options + 10 WVS value dimensions × 4 levels or left out; {} distinct personas scored by the model in this process).",
            super::de_summary(&self.reports, self.evaluations, self.stop, &config.de),
            config.country_lines.len(),
            self.model_evaluations,
        )
    }
}

/// DE over persona-template choices.
pub struct BlackBoxTuner {
    config: BlackBoxConfig,
    start: PersonaChoice,
    country_name: String,
}

impl BlackBoxTuner {
    /// A tuner starting from `start` (see [`PersonaChoice::from_profile`]).
    pub fn new(
        config: BlackBoxConfig,
        start: PersonaChoice,
        country_name: &str,
    ) -> Result<Self, BenchError> {
        if config.country_lines.is_empty() {
            return Err(BenchError::Invalid(
                "the black-box template needs at least one country line (an empty one means none)"
                    .into(),
            ));
        }
        if start.country_line >= config.country_lines.len()
            || start.levels.iter().flatten().any(|&l| l >= 4)
        {
            return Err(BenchError::Invalid(format!(
                "start persona {start:?} is outside the template"
            )));
        }
        Ok(Self {
            config,
            start,
            country_name: country_name.to_string(),
        })
    }

    pub fn start(&self) -> &PersonaChoice {
        &self.start
    }

    /// The persona text of a choice.
    pub fn text(&self, choice: &PersonaChoice) -> String {
        choice.text(&self.config, &self.country_name)
    }

    /// Runs DE to its stop with per-generation checkpoints (see `SoftPromptTuner::run`).
    /// `known`: persona texts already scored under the objective (e.g. the report's
    /// baselines; with held-out items only the start persona's own evaluation qualifies), not
    /// asked again. Held-out items are frozen at the start persona's answers first.
    pub fn run(
        &self,
        lm: &mut dyn LanguageModel,
        objective: &mut Vsm13Objective,
        checkpoint: &Path,
        resume: bool,
        known: &[(String, Vsm13Eval)],
        on_generation: &mut dyn FnMut(&GenerationReport),
    ) -> Result<BlackBoxOutcome, BenchError> {
        objective.freeze_held_out(lm, &candidate_of(&self.text(&self.start)))?;
        let objective = &*objective;
        let lines = self.config.country_lines.len();
        let x0 = self.start.encode(lines);
        let space = Space::Direct { dim: x0.len() };
        let country = objective.country();
        let mut cache: HashMap<String, Vsm13Eval> = known.iter().cloned().collect();
        let preloaded = cache.len();
        let evaluate = |xs: &[Vec<f64>]| -> Result<Vec<f64>, BenchError> {
            let texts: Vec<String> = xs
                .iter()
                .map(|x| self.text(&PersonaChoice::decode(x, lines)))
                .collect();
            let mut fresh: Vec<&String> =
                texts.iter().filter(|t| !cache.contains_key(*t)).collect();
            fresh.sort();
            fresh.dedup();
            if !fresh.is_empty() {
                let cands: Vec<Candidate> = fresh.iter().map(|t| candidate_of(t)).collect();
                for (t, e) in fresh.iter().zip(objective.evaluate_in_sample(lm, &cands)?) {
                    cache.insert((*t).clone(), e);
                }
            }
            Ok(texts.iter().map(|t| cache[t].loss).collect())
        };
        let (best, reports) = optimize(
            &self.config,
            space,
            x0,
            objective.settings(),
            country,
            checkpoint,
            resume,
            evaluate,
            on_generation,
        )?;
        let choice = PersonaChoice::decode(&best.x, lines);
        let text = self.text(&choice);
        let in_sample = match cache.get(&text) {
            Some(e) => e.clone(),
            None => objective
                .evaluate_in_sample(lm, &[candidate_of(&text)])?
                .remove(0),
        };
        let eval = if objective.settings().held_out.is_empty() {
            in_sample.clone()
        } else {
            objective.evaluate(lm, &[candidate_of(&text)])?.remove(0)
        };
        Ok(BlackBoxOutcome {
            choice,
            text,
            eval,
            in_sample,
            reports,
            stop: best.stop,
            evaluations: best.evaluations,
            model_evaluations: cache.len() - preloaded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genes_select_options_and_encode_round_trips() {
        assert_eq!(option_of(0.0, 5), 0);
        assert_eq!(option_of(0.199, 5), 0);
        assert_eq!(option_of(0.2, 5), 1);
        assert_eq!(option_of(0.999, 5), 4);
        assert_eq!(
            option_of(1.0, 5),
            4,
            "the upper bound belongs to the last option"
        );
        assert_eq!(option_of(1.0, 3), 2);
        let c = PersonaChoice {
            country_line: 2,
            levels: [
                Some(0),
                None,
                Some(3),
                Some(1),
                None,
                Some(2),
                None,
                None,
                Some(0),
                Some(3),
            ],
        };
        assert_eq!(PersonaChoice::decode(&c.encode(3), 3), c);
        let genes = c.encode(3);
        assert_eq!(genes.len(), 11);
        assert!(genes.iter().all(|g| (0.0..1.0).contains(g)));
    }

    #[test]
    fn text_has_the_country_line_and_one_sentence_per_chosen_dimension() {
        let cfg = BlackBoxConfig::default();
        let mut c = PersonaChoice {
            country_line: 1,
            levels: [None; 10],
        };
        assert_eq!(
            c.text(&cfg, "Saudi Arabia"),
            "You are a person from Saudi Arabia."
        );
        c.levels[0] = Some(0);
        c.levels[5] = Some(3);
        assert_eq!(
            c.text(&cfg, "Saudi Arabia"),
            "You are a person from Saudi Arabia. On matters of faith you are deeply religious. You are not proud of your country."
        );
        c.country_line = 0;
        assert_eq!(
            c.text(&cfg, "Saudi Arabia"),
            "On matters of faith you are deeply religious. You are not proud of your country."
        );
        assert!(matches!(
            candidate_of(
                &PersonaChoice {
                    country_line: 0,
                    levels: [None; 10]
                }
                .text(&cfg, "X")
            ),
            Candidate::Plain
        ));
    }

    #[test]
    fn the_start_reads_the_profile_levels() {
        let profile = ValueProfile::from_scores([
            (ValueDimension::Religiosity, 1.2),
            (ValueDimension::Happiness, 3.9),
        ]);
        let c = PersonaChoice::from_profile(1, Some(&profile));
        // Religiosity 1.2 on (1, 4) normalises to 0.067 → quartile 3; happiness 3.9 → 0.967 → 0.
        assert_eq!(c.levels[0], Some(3));
        assert_eq!(c.levels[6], Some(0));
        assert_eq!(c.levels.iter().flatten().count(), 2);
        assert_eq!(
            c.levels[0].map(|l| ValueDimension::Religiosity.descriptors()[l]),
            Some(ValueDimension::Religiosity.describe(1.2))
        );
        assert!(BlackBoxTuner::new(
            BlackBoxConfig::default(),
            PersonaChoice {
                country_line: 3,
                levels: [None; 10]
            },
            "X"
        )
        .is_err());
        assert!(BlackBoxTuner::new(
            BlackBoxConfig {
                country_lines: vec![],
                ..BlackBoxConfig::default()
            },
            c,
            "X"
        )
        .is_err());
    }

    #[test]
    fn de_over_the_template_finds_a_planted_persona() {
        // A synthetic objective over the decoded choices: distance to a planted persona. DE over
        // the 11 rounded genes must find it exactly (the search is what the model-backed run uses).
        let planted = PersonaChoice {
            country_line: 2,
            levels: [
                Some(0),
                Some(1),
                None,
                Some(3),
                Some(2),
                Some(0),
                None,
                Some(1),
                Some(2),
                Some(3),
            ],
        };
        let cfg = BlackBoxConfig {
            de: DeConfig {
                np: 20,
                max_generations: 150,
                seed: 7,
                ..BlackBoxConfig::default().de
            },
            ..BlackBoxConfig::default()
        };
        let start = PersonaChoice {
            country_line: 0,
            levels: [None; 10],
        };
        let x0 = start.encode(3);
        let dist = |c: &PersonaChoice| {
            let lvl = |l: Option<usize>| l.map_or(4.0, |v| v as f64);
            (c.country_line != planted.country_line) as u8 as f64
                + c.levels
                    .iter()
                    .zip(planted.levels)
                    .map(|(a, b)| (lvl(*a) - lvl(b)).abs())
                    .sum::<f64>()
        };
        let r =
            culturesteer_core::de::minimize(cfg.de.clone(), Space::Direct { dim: 11 }, x0, |xs| {
                xs.iter()
                    .map(|x| dist(&PersonaChoice::decode(x, 3)))
                    .collect()
            })
            .unwrap();
        assert_eq!(r.fitness, 0.0);
        assert_eq!(PersonaChoice::decode(&r.x, 3), planted);
    }
}
