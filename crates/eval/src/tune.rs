//! Soft-prompt tuning on Hofstede's VSM 2013 with differential evolution
//! (specs/softprompt_de.md): the objective, the tuner and its report.
//!
//! * [`Vsm13Objective`]: the L1 loss of the model's six VSM13 dimensions against the target
//!   country, for a batch of candidates (no prompt, a system text, or a soft prompt); all
//!   candidates × items go to the model in one call (scoring, or generation in
//!   `generate_parse` mode with N common sampling seeds per item, pooled into the item means),
//!   so a soft prompt's rows are evaluated once and the item suffixes branch from them.
//!   [`ObjectiveSettings`]: answer mode, constants C, MAS weight, seeds and held-out items.
//!   Held-out items ([`held_out_items`]): during DE their answer means are frozen at the start
//!   candidate's ([`Vsm13Objective::evaluate_in_sample`]); the report compares that objective
//!   with the tuned candidate answering them itself ([`HeldOutCheck`]).
//! * [`SoftPromptTuner`]: DE (core::de) in a random-projection subspace around the embeddings
//!   of an init text ("You are a person from {country}."), checkpointed every generation.
//! * [`transfer_check`]: the tuned prompt on GlobalOpinionQA's WVS-sourced questions of the
//!   same country (all, or the first N), naive vs tuned, with a paired bootstrap 95% interval
//!   of the difference ([`Transfer`]).

use crate::goqa::{score_goqa, Goqa, GoqaMeta};
use crate::vsm13::{
    country_system_text, score_vsm13_means, vsm13_item_means, Vsm13, Vsm13AnswerMode,
    Vsm13ItemMeans, Vsm13Options,
};
use crate::{BenchError, Benchmark, ItemRecord};
use culturesteer_core::de::{DeConfig, DeState, GenerationReport, Optimizer, Space};
use culturesteer_core::metrics::{MasSecondWeight, Vsm13Config, Vsm13Dimension};
use culturesteer_data::goqa::GoqaSource;
use culturesteer_llm::{GenerateRequest, LanguageModel, LlmError, Prompt, Sampling, SoftPrompt};
use culturesteer_methods::{
    read_options, render_prompt, Country, Item, MethodError, PromptSpec, Readout,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub mod blackbox;

/// What is put in front of the VSM13 items.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// The items alone (the naive model).
    Plain,
    /// A system text (the "act as a person from X" baseline, a persona).
    System(String),
    /// A soft prompt after BOS.
    Soft(Arc<SoftPrompt>),
}

impl Candidate {
    /// The rendered prompt of `spec` with this candidate in front (a system text replaces the
    /// spec's own system text).
    pub fn prompt(&self, lm: &dyn LanguageModel, spec: &PromptSpec) -> Result<Prompt, MethodError> {
        match self {
            Candidate::Plain => render_prompt(lm, spec),
            Candidate::System(s) => render_prompt(
                lm,
                &PromptSpec {
                    system: Some(s.clone()),
                    ..spec.clone()
                },
            ),
            Candidate::Soft(soft) => {
                let mut p = render_prompt(lm, spec)?;
                p.soft = Some(soft.clone());
                Ok(p)
            }
        }
    }
}

/// The VSM13 result of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vsm13Eval {
    /// Σ |d_i − t_i| over the dimensions with a target.
    pub loss: f64,
    /// PDI, IDV, MAS, UAI, LTO, IVR of the model.
    pub dims: [f64; 6],
    /// `generate_parse`: generated answers without a digit 1–5 (0 in the logits modes).
    #[serde(default)]
    pub parse_failures: usize,
    /// `generate_parse`: items none of whose answers had a digit, scored as the neutral 3
    /// (specs/softprompt_de.md §2) so that one unparsable item does not stop a tuning run.
    #[serde(default)]
    pub unanswered_items: usize,
}

/// How the tuning objective asks and pools the VSM13 items (recorded in checkpoints and
/// reports; a resumed run must use the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveSettings {
    /// Answer mode, constants C and MAS weight.
    pub vsm13: Vsm13Options,
    /// `generate_parse`: answers per item and candidate, with sampling seeds 1..=seeds (the
    /// same seeds for every candidate: common random numbers); the item mean pools them.
    pub seeds: usize,
    /// `generate_parse`: sampling temperature (0 = greedy, top-p 1 otherwise).
    pub temperature: f64,
    /// Held-out items (1-based, ascending): during DE their answer means are frozen at the
    /// start candidate's, so the optimiser cannot fit them.
    pub held_out: Vec<usize>,
}

impl ObjectiveSettings {
    /// One greedy/logits answer per item, nothing held out.
    pub fn plain(vsm13: Vsm13Options) -> Self {
        Self {
            vsm13,
            seeds: 1,
            temperature: 0.0,
            held_out: vec![],
        }
    }

    /// Checks the combination: several seeds or a temperature only with `generate_parse`,
    /// several seeds only with a temperature above 0, held-out items valid.
    pub fn validate(&self) -> Result<(), BenchError> {
        let generate = self.vsm13.answer_mode == Vsm13AnswerMode::GenerateParse;
        if self.seeds == 0 {
            return Err(BenchError::Invalid(
                "--objective-seeds must be at least 1".into(),
            ));
        }
        if !generate && (self.seeds > 1 || self.temperature != 0.0) {
            return Err(BenchError::Invalid(format!(
                "--objective-seeds and --objective-temperature apply to --answer-mode generate_parse only ({} is deterministic)",
                self.vsm13.answer_mode
            )));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(BenchError::Invalid(format!(
                "--objective-temperature must be a number ≥ 0, got {}",
                self.temperature
            )));
        }
        if self.seeds > 1 && self.temperature == 0.0 {
            return Err(BenchError::Invalid(format!(
                "--objective-seeds {} with --objective-temperature 0: greedy answers are the same for every seed",
                self.seeds
            )));
        }
        let items = self.vsm13.config.items_of();
        for (k, dim) in items.iter().enumerate() {
            if dim.iter().all(|i| self.held_out.contains(i)) {
                return Err(BenchError::Invalid(format!(
                    "held-out items leave no item of {} to tune",
                    Vsm13Dimension::ALL[k]
                )));
            }
        }
        if self
            .held_out
            .iter()
            .any(|&i| !(1..=crate::vsm13::N_ITEMS).contains(&i))
            || self.held_out.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(BenchError::Invalid(format!(
                "held-out items {:?} must be distinct item numbers 1-24 in ascending order",
                self.held_out
            )));
        }
        Ok(())
    }

    /// One line for reports: answer mode, seeds, constants, MAS weight, held-out items.
    pub fn describe(&self) -> String {
        let c = self.vsm13.config;
        let constants = Vsm13Dimension::ALL
            .iter()
            .zip(c.constants)
            .map(|(d, v)| format!("{d}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let answers = match self.vsm13.answer_mode {
            Vsm13AnswerMode::GenerateParse if self.temperature == 0.0 => {
                "generate_parse (greedy, first digit 1-5)".to_string()
            }
            Vsm13AnswerMode::GenerateParse => format!(
                "generate_parse (first digit 1-5; {} sampling seed(s) 1..{} at temperature {}, top-p 1; item means pool the seeds)",
                self.seeds, self.seeds, self.temperature
            ),
            m => m.to_string(),
        };
        format!(
            "Objective: VSM13 L1 loss, answer mode {answers}; constants C: {constants}; MAS second weight {} ({}); held-out items: {}.",
            c.mas_second_weight.weight(),
            match c.mas_second_weight {
                MasSecondWeight::Manual35 => "the VSM 2013 manual",
                MasSecondWeight::Masoud25 => "as printed by Masoud et al. 2024",
            },
            if self.held_out.is_empty() {
                "none".to_string()
            } else {
                self.held_out
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    }
}

/// `k` held-out items chosen from `seed`: the dimensions in a seeded order, each dimension's
/// four items in a seeded order, taken round-robin (one item per dimension first, so the
/// default 6 holds out one item of each dimension). At most 18, so that every dimension keeps
/// an item to tune. Returned ascending.
pub fn held_out_items(k: usize, seed: u64, config: &Vsm13Config) -> Result<Vec<usize>, BenchError> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if k > 18 {
        return Err(BenchError::Invalid(format!(
            "--held-out {k}: at most 18 (3 of each dimension's 4 items), so every dimension keeps an item to tune"
        )));
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(culturesteer_core::hash::fnv1a64(
        seed,
        "vsm13 held-out items".bytes(),
    ));
    let mut dims = config.items_of();
    for d in dims.iter_mut() {
        d.shuffle(&mut rng);
    }
    dims.shuffle(&mut rng);
    let mut out: Vec<usize> = (0..4)
        .flat_map(|round| dims.iter().map(move |d| d[round]))
        .take(k)
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// VSM13 loss of a model against one country.
pub struct Vsm13Objective {
    country: Country,
    items: Vec<Item>,
    target: [Option<f64>; 6],
    settings: ObjectiveSettings,
    /// The start candidate's answer means of the held-out items (set by
    /// [`Vsm13Objective::freeze_held_out`]).
    frozen: Option<[Option<f64>; crate::vsm13::N_ITEMS]>,
}

fn model_err(e: LlmError) -> BenchError {
    BenchError::Method(MethodError::Model(e))
}

impl Vsm13Objective {
    /// The objective of `country` under `bench`'s options (answer mode, constants): one
    /// answer per item, nothing held out.
    pub fn new(bench: &Vsm13, country: Country) -> Result<Self, BenchError> {
        Self::with_settings(
            bench,
            country,
            ObjectiveSettings::plain(bench.vsm13_options()),
        )
    }

    /// The objective with its own settings (their `vsm13` options replace `bench`'s).
    pub fn with_settings(
        bench: &Vsm13,
        country: Country,
        settings: ObjectiveSettings,
    ) -> Result<Self, BenchError> {
        settings.validate()?;
        let bench = bench.with_options(settings.vsm13);
        let items = bench.items(&country)?;
        let target = bench.target(country.code)?;
        Ok(Self {
            country,
            items,
            target,
            settings,
            frozen: None,
        })
    }

    pub fn country(&self) -> &Country {
        &self.country
    }

    pub fn settings(&self) -> &ObjectiveSettings {
        &self.settings
    }

    /// Target profile (PDI..IVR; `None` where Hofstede publishes no score).
    pub fn target(&self) -> [Option<f64>; 6] {
        self.target
    }

    /// Indices into the items: the held-out ones (`Some(true)`), the others (`Some(false)`)
    /// or all (`None`).
    fn positions(&self, held_out: Option<bool>) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&k| {
                let held = self.settings.held_out.contains(&(k + 1));
                held_out.is_none_or(|h| h == held)
            })
            .collect()
    }

    /// Item answers of every candidate on the items at `positions`: per candidate the 24 item
    /// means (`None` outside `positions` or without a parsed answer) and its parse failures.
    /// One model call for all candidates × items (× seeds).
    fn item_means(
        &self,
        lm: &mut dyn LanguageModel,
        candidates: &[Candidate],
        positions: &[usize],
    ) -> Result<Vec<Vsm13ItemMeans>, BenchError> {
        let options = self.settings.vsm13;
        let per_candidate = positions.len() * self.settings.seeds;
        let mut records = Vec::with_capacity(candidates.len() * per_candidate);
        let record = |item: &Item, probs: Vec<f64>, logprobs: Vec<f64>| ItemRecord {
            method: "tune".into(),
            country: self.country.code,
            item_id: item.id.clone(),
            probs,
            logprobs,
            meta: item.meta.clone(),
            prompt_id: String::new(),
            options: vec![],
            diagnostics: serde_json::Value::Null,
        };
        if options.answer_mode == Vsm13AnswerMode::GenerateParse {
            let mut reqs = Vec::with_capacity(candidates.len() * per_candidate);
            for c in candidates {
                for &k in positions {
                    let item = &self.items[k];
                    let Readout::Generate { max_tokens, .. } = &item.readout else {
                        return Err(BenchError::Invalid(
                            "generate_parse items must have a generated readout".into(),
                        ));
                    };
                    let prompt = c.prompt(lm, &item.prompt)?;
                    for seed in 1..=self.settings.seeds as u64 {
                        reqs.push(GenerateRequest {
                            prompt: prompt.clone(),
                            max_tokens: *max_tokens,
                            sampling: if self.settings.temperature == 0.0 {
                                Sampling::Greedy
                            } else {
                                Sampling::Seeded {
                                    temperature: self.settings.temperature,
                                    top_p: 1.0,
                                    seed,
                                }
                            },
                            stop: vec![],
                        });
                    }
                }
            }
            let gens = lm.generate(&reqs).map_err(model_err)?;
            let items = candidates
                .iter()
                .flat_map(|_| positions.iter())
                .flat_map(|&k| std::iter::repeat_n(&self.items[k], self.settings.seeds));
            for (item, g) in items.zip(gens) {
                let Readout::Generate { parser, labels, .. } = &item.readout else {
                    continue;
                };
                let probs = parser
                    .parse(&g.text, labels.len())
                    .option
                    .map_or_else(Vec::new, |o| {
                        (0..labels.len())
                            .map(|j| f64::from(u8::from(j == o)))
                            .collect()
                    });
                records.push(record(item, probs, vec![]));
            }
        } else {
            let mut items = Vec::with_capacity(candidates.len() * positions.len());
            let mut prompts = Vec::with_capacity(items.capacity());
            for c in candidates {
                for &k in positions {
                    items.push(self.items[k].clone());
                    prompts.push(c.prompt(lm, &self.items[k].prompt)?);
                }
            }
            let answers = read_options(lm, &items, prompts)?;
            for (item, a) in items.iter().zip(answers) {
                records.push(record(item, a.probs, a.logprobs));
            }
        }
        if per_candidate == 0 {
            return Ok(candidates
                .iter()
                .map(|_| Vsm13ItemMeans {
                    means: [None; crate::vsm13::N_ITEMS],
                    failures: 0,
                    records: 0,
                })
                .collect());
        }
        records
            .chunks(per_candidate)
            .map(|chunk| vsm13_item_means(self.country.code, chunk, &options))
            .collect()
    }

    /// The loss and dimensions of item means; items without an answer count as 3.
    fn score(&self, read: &Vsm13ItemMeans) -> Result<Vsm13Eval, BenchError> {
        let unanswered = read.means.iter().filter(|m| m.is_none()).count();
        let means = read.means.map(|m| m.unwrap_or(3.0));
        let s = score_vsm13_means(
            self.country.code,
            &means,
            read,
            &self.target,
            &self.settings.vsm13,
        )?;
        let mut dims = [0.0; 6];
        for (k, d) in Vsm13Dimension::ALL.iter().enumerate() {
            dims[k] = s
                .components
                .iter()
                .find(|c| c.name == d.abbrev())
                .map_or(f64::NAN, |c| c.model);
        }
        Ok(Vsm13Eval {
            loss: s.value,
            dims,
            parse_failures: read.failures,
            unanswered_items: unanswered,
        })
    }

    /// Evaluates every candidate on all 24 items, each answering every item itself (the
    /// report's rows): one model call for all candidates × items.
    pub fn evaluate(
        &self,
        lm: &mut dyn LanguageModel,
        candidates: &[Candidate],
    ) -> Result<Vec<Vsm13Eval>, BenchError> {
        self.item_means(lm, candidates, &self.positions(None))?
            .iter()
            .map(|r| self.score(r))
            .collect()
    }

    /// Freezes the held-out items' answer means at `start`'s (θ₀'s); a no-op without held-out
    /// items.
    pub fn freeze_held_out(
        &mut self,
        lm: &mut dyn LanguageModel,
        start: &Candidate,
    ) -> Result<(), BenchError> {
        let held = self.positions(Some(true));
        if held.is_empty() {
            self.frozen = Some([None; crate::vsm13::N_ITEMS]);
            return Ok(());
        }
        let read = self
            .item_means(lm, std::slice::from_ref(start), &held)?
            .remove(0);
        self.frozen = Some(read.means.map(|m| m.or(Some(3.0))));
        Ok(())
    }

    /// The objective DE minimises: every candidate answers the items that are not held out,
    /// and the held-out items keep the start candidate's frozen answers (equal to
    /// [`Vsm13Objective::evaluate`] without held-out items). Needs
    /// [`Vsm13Objective::freeze_held_out`] first when items are held out.
    pub fn evaluate_in_sample(
        &self,
        lm: &mut dyn LanguageModel,
        candidates: &[Candidate],
    ) -> Result<Vec<Vsm13Eval>, BenchError> {
        if self.settings.held_out.is_empty() {
            return self.evaluate(lm, candidates);
        }
        let frozen = self.frozen.ok_or_else(|| {
            BenchError::Invalid(
                "the held-out items' answers are not frozen yet (freeze_held_out)".into(),
            )
        })?;
        self.item_means(lm, candidates, &self.positions(Some(false)))?
            .into_iter()
            .map(|mut r| {
                for &i in &self.settings.held_out {
                    r.means[i - 1] = frozen[i - 1];
                }
                self.score(&r)
            })
            .collect()
    }
}

/// Settings of soft-prompt tuning (defaults: specs/softprompt_de.md §4, with dithered F —
/// see [`TuneConfig::default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneConfig {
    /// Init text; `{country}` becomes the country's name. Its token embeddings are θ₀, so the
    /// soft prompt has as many rows as the text has tokens.
    pub init_text: String,
    /// Dimension k of the random-projection subspace.
    pub subspace_dim: usize,
    /// Seed of the projection matrix.
    pub projection_seed: u64,
    pub de: DeConfig,
}

impl Default for TuneConfig {
    /// The spec's DE/rand/1/bin with NP 20, CR 0.9 and bounds ±5 on z, but F dithered in
    /// (0.5, 1) per generation: with F fixed at 0.5 the population collapses within a few
    /// generations on this objective (core::de tests, last session's finding).
    fn default() -> Self {
        Self {
            init_text: "You are a person from {country}.".into(),
            subspace_dim: Space::DEFAULT_K,
            projection_seed: 0,
            de: DeConfig {
                dither: Some((0.5, 1.0)),
                bounds: Some((-5.0, 5.0)),
                max_generations: 20,
                ..DeConfig::default()
            },
        }
    }
}

/// What a tuner's settings must offer for checkpoints: serde, equality, and the DE settings
/// whose stopping rules may change between a run and its resumption.
pub trait TunerConfig: Serialize + DeserializeOwned + Clone + PartialEq {
    fn de(&self) -> &DeConfig;
    fn de_mut(&mut self) -> &mut DeConfig;
}

impl TunerConfig for TuneConfig {
    fn de(&self) -> &DeConfig {
        &self.de
    }
    fn de_mut(&mut self) -> &mut DeConfig {
        &mut self.de
    }
}

/// A checkpoint: the config it belongs to and the optimiser state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "C: TunerConfig")]
pub struct Checkpoint<C: TunerConfig = TuneConfig> {
    pub country: String,
    pub config: C,
    /// The objective's settings (absent in checkpoints written before they were recorded:
    /// those runs had one answer per item and no held-out items).
    #[serde(default)]
    pub objective: Option<ObjectiveSettings>,
    pub state: DeState,
    /// One report per generation told so far.
    pub reports: Vec<GenerationReport>,
}

fn de_err(e: culturesteer_core::de::DeError) -> BenchError {
    BenchError::Invalid(format!("differential evolution: {e}"))
}

/// A fresh optimiser, or the one saved in `checkpoint` when `resume` is set and it exists (its
/// config must equal `config` but for the stopping rules, which may change to extend a run).
fn start_or_resume<C: TunerConfig>(
    config: &C,
    space: Space,
    x0: Vec<f64>,
    objective: &ObjectiveSettings,
    country: &Country,
    checkpoint: &Path,
    resume: bool,
) -> Result<(Optimizer, Vec<GenerationReport>), BenchError> {
    if !(resume && checkpoint.exists()) {
        return Ok((
            Optimizer::new(config.de().clone(), space, x0).map_err(de_err)?,
            vec![],
        ));
    }
    let text = std::fs::read_to_string(checkpoint).map_err(|e| BenchError::Io {
        path: checkpoint.display().to_string(),
        source: e,
    })?;
    let cp: Checkpoint<C> = serde_json::from_str(&text).map_err(|e| {
        BenchError::Invalid(format!(
            "{}: not a checkpoint of this tuner ({e})",
            checkpoint.display()
        ))
    })?;
    let same = |c: &C| {
        let mut c = c.clone();
        c.de_mut().max_generations = 0;
        c.de_mut().max_evaluations = None;
        c
    };
    // A checkpoint from before objective settings were recorded: one answer per item, no
    // held-out items; its answer mode and constants were not recorded and are taken as given.
    let saved = cp
        .objective
        .clone()
        .unwrap_or_else(|| ObjectiveSettings::plain(objective.vsm13));
    if same(&cp.config) != same(config)
        || cp.country != country.code.as_str()
        || &saved != objective
    {
        return Err(BenchError::Invalid(format!(
            "{} belongs to another run (country or settings differ); use a new --out",
            checkpoint.display()
        )));
    }
    Ok((
        Optimizer::from_state(config.de().clone(), space, x0, cp.state).map_err(de_err)?,
        cp.reports,
    ))
}

/// Runs DE from `x0` in `space` to its stop, or resumes it from `checkpoint` (see
/// [`start_or_resume`]): asks, evaluates and tells, saving a checkpoint after every
/// generation; `evaluate` scores the decoded vectors of one generation. Returns the best
/// point found and every generation's report.
#[allow(clippy::too_many_arguments)]
fn optimize<C: TunerConfig>(
    config: &C,
    space: Space,
    x0: Vec<f64>,
    objective: &ObjectiveSettings,
    country: &Country,
    checkpoint: &Path,
    resume: bool,
    mut evaluate: impl FnMut(&[Vec<f64>]) -> Result<Vec<f64>, BenchError>,
    on_generation: &mut dyn FnMut(&GenerationReport),
) -> Result<(culturesteer_core::de::DeResult, Vec<GenerationReport>), BenchError> {
    let (mut opt, mut reports) =
        start_or_resume(config, space, x0, objective, country, checkpoint, resume)?;
    while opt.should_stop().is_none() {
        let xs = opt.ask();
        let report = opt.tell(evaluate(&xs)?).map_err(de_err)?;
        on_generation(&report);
        reports.push(report);
        let cp = Checkpoint {
            country: country.code.to_string(),
            config: config.clone(),
            objective: Some(objective.clone()),
            state: opt.state().clone(),
            reports: reports.clone(),
        };
        write_atomic(
            checkpoint,
            &serde_json::to_string(&cp).map_err(|e| BenchError::Invalid(e.to_string()))?,
        )?;
    }
    Ok((opt.result(), reports))
}

/// The finished run.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    pub soft: SoftPrompt,
    /// The tuned soft prompt answering all 24 items itself.
    pub eval: Vsm13Eval,
    /// The tuned soft prompt under the objective (held-out items at θ₀'s answers); equals
    /// `eval` without held-out items.
    pub in_sample: Vsm13Eval,
    pub reports: Vec<GenerationReport>,
    pub stop: Option<culturesteer_core::de::StopReason>,
    pub evaluations: usize,
}

/// DE over soft prompts.
pub struct SoftPromptTuner {
    config: TuneConfig,
    theta0: SoftPrompt,
    space: Space,
}

impl SoftPromptTuner {
    /// θ₀ = the embeddings of the init text's tokens (after BOS); the search space is
    /// x = θ₀ + A z with A's entries N(0, σ_E²/k) (σ_E: std of the embedding matrix).
    pub fn new(
        lm: &dyn LanguageModel,
        country: &Country,
        config: TuneConfig,
    ) -> Result<Self, BenchError> {
        let text = config.init_text.replace("{country}", &country.name);
        let mut toks = lm.tokenize(&text).map_err(model_err)?;
        let bos = lm.tokenize("").map_err(model_err)?;
        if !bos.is_empty() && toks.first() == bos.first() {
            toks.remove(0);
        }
        if toks.is_empty() {
            return Err(BenchError::Invalid(format!(
                "init text {text:?} has no tokens"
            )));
        }
        let theta0 = lm.token_embeddings(&toks).map_err(model_err)?;
        let sigma = lm.input_embedding_std().map_err(model_err)?;
        let space = Space::Projected {
            dim: theta0.rows * theta0.dim,
            k: config.subspace_dim,
            seed: config.projection_seed,
            scale: sigma,
        };
        Ok(Self {
            config,
            theta0,
            space,
        })
    }

    pub fn theta0(&self) -> &SoftPrompt {
        &self.theta0
    }

    fn soft_of(&self, x: &[f64]) -> SoftPrompt {
        SoftPrompt {
            rows: self.theta0.rows,
            dim: self.theta0.dim,
            data: x.iter().map(|&v| v as f32).collect(),
        }
    }

    /// Runs DE to its stop, writing `checkpoint` after every generation and resuming from it
    /// when it exists and `resume` is set. `on_generation` sees each report. Held-out items
    /// of the objective are frozen at θ₀'s answers first.
    pub fn run(
        &self,
        lm: &mut dyn LanguageModel,
        objective: &mut Vsm13Objective,
        checkpoint: &Path,
        resume: bool,
        on_generation: &mut dyn FnMut(&GenerationReport),
    ) -> Result<TuneOutcome, BenchError> {
        objective.freeze_held_out(lm, &Candidate::Soft(Arc::new(self.theta0.clone())))?;
        let objective = &*objective;
        let x0: Vec<f64> = self.theta0.data.iter().map(|&v| f64::from(v)).collect();
        let country = objective.country();
        // ask() gives the decoded candidates x = θ₀ + A z.
        let evaluate = |xs: &[Vec<f64>]| -> Result<Vec<f64>, BenchError> {
            let cands: Vec<Candidate> = xs
                .iter()
                .map(|x| Candidate::Soft(Arc::new(self.soft_of(x))))
                .collect();
            Ok(objective
                .evaluate_in_sample(lm, &cands)?
                .iter()
                .map(|e| e.loss)
                .collect())
        };
        let (best, reports) = optimize(
            &self.config,
            self.space,
            x0,
            objective.settings(),
            country,
            checkpoint,
            resume,
            evaluate,
            on_generation,
        )?;
        let soft = self.soft_of(&best.x);
        let tuned = [Candidate::Soft(Arc::new(soft.clone()))];
        let eval = objective.evaluate(lm, &tuned)?.remove(0);
        let in_sample = if objective.settings().held_out.is_empty() {
            eval.clone()
        } else {
            objective.evaluate_in_sample(lm, &tuned)?.remove(0)
        };
        Ok(TuneOutcome {
            soft,
            eval,
            in_sample,
            reports,
            stop: best.stop,
            evaluations: best.evaluations,
        })
    }
}

/// Writes a file through a temporary sibling and a rename, so a crash never leaves half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), BenchError> {
    let tmp = path.with_extension("tmp");
    let io = |e| BenchError::Io {
        path: path.display().to_string(),
        source: e,
    };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The transfer check's result: GlobalOpinionQA S_align of the naive model and of the tuned
/// candidate on the same questions, and a paired bootstrap interval of their difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Mean S_align of the naive model (no prompt).
    pub naive: f64,
    /// Mean S_align of the tuned candidate.
    pub tuned: f64,
    /// Questions asked.
    pub questions: usize,
    /// The country's WVS-sourced questions in all (more than `questions` under a limit).
    pub available: usize,
    /// 95% percentile interval of `tuned − naive` over bootstrap resamples of the questions
    /// (the same resampled questions for both: paired); `None` with fewer than 20 resamples.
    pub ci95: Option<(f64, f64)>,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
}

impl Transfer {
    /// `tuned − naive`.
    pub fn difference(&self) -> f64 {
        self.tuned - self.naive
    }

    /// The plain sentence of the report.
    pub fn verdict(&self) -> String {
        match self.ci95 {
            Some((lo, hi)) if lo <= 0.0 && hi >= 0.0 => format!(
                "No measurable transfer: the 95% interval of the difference ({lo:+.2} to {hi:+.2}) includes 0."
            ),
            Some((lo, hi)) if lo > 0.0 => format!(
                "The tuned candidate's S_align is measurably higher than the naive model's (95% interval of the difference {lo:+.2} to {hi:+.2}): the VSM13 gain carries over to these questions."
            ),
            Some((lo, hi)) => format!(
                "The tuned candidate's S_align is measurably lower than the naive model's (95% interval of the difference {lo:+.2} to {hi:+.2}): the VSM13 gain does not carry over to these questions."
            ),
            None => "Too few bootstrap resamples for an interval; no verdict on transfer.".into(),
        }
    }
}

/// Default bootstrap resamples of the transfer check.
pub const TRANSFER_BOOTSTRAP: usize = 1000;

/// Per-question S_align of `candidate` on `items` (each question scored alone by the GOQA
/// metric, so their mean is the country's S_align).
fn goqa_per_question(
    lm: &mut dyn LanguageModel,
    goqa: &Goqa,
    country: &Country,
    items: &[Item],
    candidate: &Candidate,
) -> Result<Vec<f64>, BenchError> {
    let prompts = items
        .iter()
        .map(|i| candidate.prompt(lm, &i.prompt))
        .collect::<Result<Vec<_>, MethodError>>()?;
    let answers = read_options(lm, items, prompts)?;
    answers
        .into_iter()
        .zip(items)
        .map(|(a, i)| {
            let r = ItemRecord {
                method: "transfer".into(),
                country: country.code,
                item_id: i.id.clone(),
                probs: a.probs,
                logprobs: a.logprobs,
                meta: i.meta.clone(),
                prompt_id: String::new(),
                options: vec![],
                diagnostics: serde_json::Value::Null,
            };
            Ok(score_goqa(country.code, &[r], goqa.goqa_options().s_align)?.value)
        })
        .collect()
}

/// Paired bootstrap of a mean difference: `b` resamples of the questions with replacement
/// (ChaCha20 seeded by `seed`), the mean of `tuned − naive` over each, and the runner's 95%
/// percentile interval of those means ([`crate::report::percentile_ci`]).
pub fn paired_bootstrap_ci(diffs: &[f64], b: usize, seed: u64) -> Option<(f64, f64)> {
    use rand::{Rng, SeedableRng};
    if diffs.is_empty() || b == 0 {
        return None;
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(culturesteer_core::hash::fnv1a64(
        seed,
        "transfer bootstrap".bytes(),
    ));
    let n = diffs.len();
    let means: Vec<f64> = (0..b)
        .map(|_| (0..n).map(|_| diffs[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    crate::report::percentile_ci(&means)
}

/// GlobalOpinionQA S_align of the country's WVS-sourced questions without and with the tuned
/// candidate (a soft prompt or a persona system text; the transfer check of issue #7): all of
/// them, or the first `limit`; `None` when the country has no such question. The difference
/// gets a paired bootstrap interval (`bootstrap` resamples, `seed`).
pub fn transfer_check(
    lm: &mut dyn LanguageModel,
    goqa: &Goqa,
    country: &Country,
    tuned: &Candidate,
    limit: Option<usize>,
    bootstrap: usize,
    seed: u64,
) -> Result<Option<Transfer>, BenchError> {
    let goqa_country = match goqa.country(country.code) {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let all: Vec<Item> = goqa
        .items(&goqa_country)?
        .into_iter()
        .filter(|i| {
            serde_json::from_value::<GoqaMeta>(i.meta.clone())
                .is_ok_and(|m| m.source == GoqaSource::Wvs)
        })
        .collect();
    let available = all.len();
    let items: Vec<Item> = all.into_iter().take(limit.unwrap_or(usize::MAX)).collect();
    if items.is_empty() {
        return Ok(None);
    }
    let naive = goqa_per_question(lm, goqa, country, &items, &Candidate::Plain)?;
    let tuned = goqa_per_question(lm, goqa, country, &items, tuned)?;
    let diffs: Vec<f64> = tuned.iter().zip(&naive).map(|(t, n)| t - n).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(Some(Transfer {
        naive: mean(&naive),
        tuned: mean(&tuned),
        questions: items.len(),
        available,
        ci95: paired_bootstrap_ci(&diffs, bootstrap, seed),
        resamples: bootstrap,
    }))
}

/// The baselines of the report: naive, "act as a person from X", and the tuner's start
/// (`start`, shown as `start_label`).
pub fn baselines(
    lm: &mut dyn LanguageModel,
    objective: &Vsm13Objective,
    start: Candidate,
    start_label: &str,
) -> Result<Vec<(String, Vsm13Eval)>, BenchError> {
    let name = objective.country().name.clone();
    let evals = objective.evaluate(
        lm,
        &[
            Candidate::Plain,
            Candidate::System(country_system_text(&name)),
            start,
        ],
    )?;
    Ok(["naive", "country prompt", start_label]
        .iter()
        .map(|s| s.to_string())
        .zip(evals)
        .collect())
}

/// A line chart of the best and mean loss per generation for `country`, as SVG, with the
/// baselines (e.g. naive and country prompt) as dashed horizontal lines.
pub fn loss_svg(
    country: &Country,
    reports: &[GenerationReport],
    baselines: &[(String, f64)],
) -> Result<String, BenchError> {
    use plotters::element::DashedPathElement;
    use plotters::prelude::*;
    let err = |e: String| BenchError::Invalid(format!("loss plot: {e}"));
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let last = reports
            .iter()
            .map(|r| r.generation)
            .max()
            .unwrap_or(1)
            .max(1);
        let vals: Vec<f64> = reports
            .iter()
            .flat_map(|r| [r.best, r.mean])
            .chain(baselines.iter().map(|b| b.1))
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            (lo.min(hi - 1e-9), hi + (hi - lo).max(1.0) * 0.05)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "VSM13 L1 loss per generation: {} ({})",
                    country.name, country.code
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..last as f64, (lo.max(0.0) * 0.98)..hi)
            .map_err(|e| err(e.to_string()))?;
        // Generations are whole numbers: at most 11 ticks, each on an integer.
        chart
            .configure_mesh()
            .x_desc("generation")
            .y_desc("loss")
            .x_labels((last + 1).min(11))
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-9 {
                    format!("{}", x.round() as i64)
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                reports.iter().map(|r| (r.generation as f64, r.best)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label("best")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                reports
                    .iter()
                    .filter(|r| r.mean.is_finite())
                    .map(|r| (r.generation as f64, r.mean)),
                RED,
            ))
            .map_err(|e| err(e.to_string()))?
            .label("population mean")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        let greys = [
            RGBColor(60, 60, 60),
            RGBColor(0, 140, 70),
            RGBColor(150, 90, 0),
        ];
        for (k, (name, v)) in baselines
            .iter()
            .enumerate()
            .filter(|(_, b)| b.1.is_finite())
        {
            let color = greys[k % greys.len()];
            chart
                .draw_series(std::iter::once(DashedPathElement::new(
                    vec![(0.0, *v), (last as f64, *v)],
                    6,
                    4,
                    color.stroke_width(2),
                )))
                .map_err(|e| err(e.to_string()))?
                .label(format!("{name} ({v:.1})"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}

/// What the report says about the DE run: its length and settings.
pub fn de_summary(
    reports: &[GenerationReport],
    evaluations: usize,
    stop: Option<culturesteer_core::de::StopReason>,
    de: &DeConfig,
) -> String {
    format!(
        "DE: {} generations, {} evaluations, stop: {:?}; NP {}, F {}, CR {}",
        reports.len().saturating_sub(1),
        evaluations,
        stop,
        de.np,
        de.dither.map_or(format!("{}", de.f), |(a, b)| format!(
            "dithered U({a}, {b})"
        )),
        de.cr,
    )
}

impl TuneOutcome {
    /// The run paragraph of the report.
    pub fn describe(&self, config: &TuneConfig) -> String {
        format!(
            "{}, subspace k = {}, soft prompt {} × {} (init text {:?}).",
            de_summary(&self.reports, self.evaluations, self.stop, &config.de),
            config.subspace_dim,
            self.soft.rows,
            self.soft.dim,
            config.init_text,
        )
    }
}

/// Whether DE improved on its initial population: the last generation's best loss below
/// generation 0's. A run that never did found nothing the initial sampling had not, and its
/// result is reported as the best initial candidate, never as "tuned".
pub fn improved(reports: &[GenerationReport]) -> bool {
    match (reports.iter().find(|r| r.generation == 0), reports.last()) {
        (Some(first), Some(last)) => last.best < first.best,
        _ => false,
    }
}

/// The held-out check of a run: the tuned candidate's objective (held-out items at θ₀'s
/// answers) next to its loss answering every item itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutCheck {
    /// Held-out item numbers.
    pub items: Vec<usize>,
    /// The objective's value: in-sample items answered by the tuned candidate, held-out
    /// items at θ₀'s answers.
    pub in_sample_loss: f64,
    /// The tuned candidate answering all 24 items itself.
    pub own_answers_loss: f64,
}

impl HeldOutCheck {
    /// Whether answering the held-out items itself leaves the loss no worse than the
    /// objective (the definition of "generalises" in the report and README).
    pub fn generalises(&self) -> bool {
        self.own_answers_loss <= self.in_sample_loss
    }

    fn markdown(&self, start_label: &str, improved: bool) -> String {
        let items = self
            .items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "## Held-out VSM13 items\n\n\
             Items {items} were held out. Hofstede's targets are indices, not item means, so a held-out item has no target of its own; instead, during DE the held-out items' answer means were frozen at the answers of the start ({start_label}), so the optimiser could not fit them. The in-sample loss is the objective DE minimised; the second loss has the tuned candidate answer the held-out items itself. If the tuning generalises, the second is not worse.\n\n\
             | tuned candidate | loss (L1) |\n|---|---:|\n\
             | in-sample (the objective; held-out items at the start's answers) | {:.1} |\n\
             | answering all 24 items itself | {:.1} |\n\n{}\n",
            self.in_sample_loss,
            self.own_answers_loss,
            if !improved {
                "DE did not improve on its initial population, so there is no tuning to generalise: both losses are those of the best initial candidate.".to_string()
            } else if self.generalises() {
                format!(
                    "Answering the held-out items itself does not make the loss worse ({:.1} vs {:.1}): on this check the tuning generalises.",
                    self.own_answers_loss, self.in_sample_loss
                )
            } else {
                format!(
                    "Answering the held-out items itself makes the loss worse by {:.1}: part of the gain is fitted to the in-sample items.",
                    self.own_answers_loss - self.in_sample_loss
                )
            }
        )
    }
}

/// What a tuning report says besides its table.
pub struct ReportText<'a> {
    /// The DE run paragraph.
    pub run: &'a str,
    /// The objective's settings line ([`ObjectiveSettings::describe`]).
    pub objective: &'a str,
    /// The tuned row's label.
    pub tuned_label: &'a str,
    /// The start row's label (θ₀ or the start persona).
    pub start_label: &'a str,
    /// The held-out check (`None`: no items held out).
    pub held_out: Option<&'a HeldOutCheck>,
    /// Whether DE improved on its initial population ([`improved`]).
    pub improved: bool,
    /// The transfer check: `None` not run, `Some(None)` the country has no such question.
    pub transfer: Option<Option<&'a Transfer>>,
}

/// The report's markdown: losses and six dimensions of every row against the target, the
/// objective's settings, the DE run, the held-out check and the transfer check of the tuned
/// candidate.
pub fn report_markdown(
    title: &str,
    country: &Country,
    target: &[Option<f64>; 6],
    rows: &[(String, Vsm13Eval)],
    text: &ReportText,
) -> String {
    let mut s = format!(
        "# {title} on VSM13: {} ({})\n\n",
        country.name, country.code
    );
    s.push_str("| | loss (L1) | PDI | IDV | MAS | UAI | LTO | IVR |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    s.push_str("| **target** | |");
    for t in target {
        s.push_str(&t.map_or(" – |".to_string(), |v| format!(" {v:.0} |")));
    }
    s.push('\n');
    for (name, e) in rows {
        s.push_str(&format!("| {name} | {:.1} |", e.loss));
        for d in e.dims {
            s.push_str(&format!(" {d:.1} |"));
        }
        s.push('\n');
    }
    s.push_str("\nEvery row answers all 24 items itself.");
    let failures: usize = rows.iter().map(|(_, e)| e.parse_failures).sum();
    let unanswered: usize = rows.iter().map(|(_, e)| e.unanswered_items).sum();
    if failures > 0 {
        s.push_str(&format!(
            " Generated answers without a digit 1-5 over these rows: {failures} (left out of the item means; {unanswered} item(s) with no parsed answer at all counted as the neutral 3)."
        ));
    }
    s.push_str(&format!(
        "\n\n{}\n\n{}\n\n![loss per generation](loss.svg)\n\n",
        text.objective, text.run
    ));
    if let Some(h) = text.held_out {
        s.push_str(&h.markdown(text.start_label, text.improved));
        s.push('\n');
    }
    s.push_str("## Transfer check (GlobalOpinionQA, WVS-sourced questions)\n\n");
    let Some(transfer) = text.transfer else {
        s.push_str("Skipped (`--transfer-questions 0`).\n");
        return s;
    };
    match transfer {
        Some(t) => {
            s.push_str(&format!(
                "| | S_align |\n|---|---:|\n| naive | {:.2} |\n| {} | {:.2} |\n| difference (tuned − naive) | {:+.2} |\n\n",
                t.naive,
                text.tuned_label,
                t.tuned,
                t.difference()
            ));
            s.push_str(&format!(
                "{} of the country's {} WVS-sourced questions; 95% interval of the difference from {} paired bootstrap resamples of the questions{}. {}\n",
                t.questions,
                t.available,
                t.resamples,
                t.ci95
                    .map_or(String::new(), |(lo, hi)| format!(": {lo:+.2} to {hi:+.2}")),
                t.verdict()
            ));
        }
        None => s.push_str(&format!(
            "{} has no WVS-sourced GlobalOpinionQA question in our data.\n",
            country.name
        )),
    }
    s
}

#[cfg(test)]
mod plot_tests {
    use super::*;
    use culturesteer_core::CountryCode;

    #[test]
    fn loss_plot_names_the_country_counts_generations_and_draws_baselines() {
        let reports: Vec<GenerationReport> = (0..4)
            .map(|g| GenerationReport {
                generation: g,
                best: 300.0 - 10.0 * g as f64,
                mean: 320.0,
                accepted: 1,
                f: None,
                evaluations: 10,
            })
            .collect();
        let sau = Country {
            code: CountryCode::new("SAU").unwrap(),
            name: "Saudi Arabia".into(),
        };
        let svg = loss_svg(
            &sau,
            &reports,
            &[("naive".into(), 310.5), ("country prompt".into(), 305.0)],
        )
        .unwrap();
        assert!(svg.contains("Saudi Arabia (SAU)"), "{svg}");
        assert!(
            svg.contains("naive (310.5)") && svg.contains("country prompt (305.0)"),
            "{svg}"
        );
        // Tick labels are whole generations only.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for half in ["0.5", "1.5", "2.5"] {
            assert!(!texts.contains(&half), "{half} in {svg}");
        }
        assert!(texts.contains(&"3") && texts.contains(&"0"), "{svg}");
        assert!(improved(&reports));
        let flat: Vec<GenerationReport> = reports
            .iter()
            .map(|r| GenerationReport {
                best: 300.0,
                ..r.clone()
            })
            .collect();
        assert!(!improved(&flat), "no gain over generation 0 is not tuned");
        assert!(!improved(&[]));
    }

    #[test]
    fn report_states_the_held_out_definition_and_the_transfer_verdict() {
        let usa = Country {
            code: CountryCode::new("USA").unwrap(),
            name: "United States".into(),
        };
        let e = |loss| Vsm13Eval {
            loss,
            dims: [0.0; 6],
            parse_failures: 0,
            unanswered_items: 0,
        };
        let rows = vec![("naive".to_string(), e(300.0))];
        let transfer = Transfer {
            naive: 70.0,
            tuned: 69.0,
            questions: 16,
            available: 16,
            ci95: Some((-3.0, 0.5)),
            resamples: 1000,
        };
        let report = |h: &HeldOutCheck, improved: bool, t: Option<Option<&Transfer>>| {
            report_markdown(
                "Soft-prompt tuning",
                &usa,
                &[Some(40.0); 6],
                &rows,
                &ReportText {
                    run: "DE: …",
                    objective: "Objective: …",
                    tuned_label: "tuned soft prompt",
                    start_label: "θ₀",
                    held_out: Some(h),
                    improved,
                    transfer: t,
                },
            )
        };
        let better = HeldOutCheck {
            items: vec![1, 5],
            in_sample_loss: 250.0,
            own_answers_loss: 240.0,
        };
        let worse = HeldOutCheck {
            own_answers_loss: 262.5,
            ..better.clone()
        };
        let r = report(&better, true, Some(Some(&transfer)));
        assert!(r.contains("Items 1, 5 were held out"), "{r}");
        assert!(r.contains("frozen at the answers of the start (θ₀)"), "{r}");
        assert!(r.contains("on this check the tuning generalises"), "{r}");
        assert!(
            r.contains("16 of the country's 16 WVS-sourced questions"),
            "{r}"
        );
        assert!(r.contains("No measurable transfer"), "{r}");
        assert!(r.contains("| difference (tuned − naive) | -1.00 |"), "{r}");
        let r = report(&worse, true, None);
        assert!(r.contains("makes the loss worse by 12.5"), "{r}");
        assert!(r.contains("Skipped (`--transfer-questions 0`)"), "{r}");
        let r = report(&better, false, Some(None));
        assert!(r.contains("no tuning to generalise"), "{r}");
        assert!(!r.contains("on this check the tuning generalises"), "{r}");
        assert!(
            r.contains("has no WVS-sourced GlobalOpinionQA question"),
            "{r}"
        );
    }
}
