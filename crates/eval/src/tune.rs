//! Soft-prompt tuning on Hofstede's VSM 2013 with differential evolution
//! (specs/softprompt_de.md): the objective, the tuner and its report.
//!
//! * [`Vsm13Objective`]: the L1 loss of the model's six VSM13 dimensions against the target
//!   country, for a batch of candidates (no prompt, a system text, or a soft prompt); all
//!   candidates × 24 items go to the model in one scoring call, so a soft prompt's rows are
//!   evaluated once and the 24 item suffixes branch from them.
//! * [`SoftPromptTuner`]: DE (core::de) in a random-projection subspace around the embeddings
//!   of an init text ("You are a person from {country}."), checkpointed every generation.
//! * [`transfer_check`]: the tuned prompt on GlobalOpinionQA's WVS-sourced questions of the
//!   same country, naive vs tuned.

use crate::goqa::{score_goqa, Goqa, GoqaMeta};
use crate::vsm13::{country_system_text, score_vsm13, Vsm13, Vsm13Options};
use crate::{BenchError, Benchmark, ItemRecord};
use culturesteer_core::de::{DeConfig, DeState, GenerationReport, Optimizer, Space};
use culturesteer_core::metrics::Vsm13Dimension;
use culturesteer_data::goqa::GoqaSource;
use culturesteer_llm::{LanguageModel, LlmError, Prompt, SoftPrompt};
use culturesteer_methods::{read_options, render_prompt, Country, Item, MethodError, PromptSpec};
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
}

/// VSM13 loss of a model against one country.
pub struct Vsm13Objective {
    country: Country,
    items: Vec<Item>,
    target: [Option<f64>; 6],
    options: Vsm13Options,
}

fn model_err(e: LlmError) -> BenchError {
    BenchError::Method(MethodError::Model(e))
}

impl Vsm13Objective {
    /// The objective of `country` under `bench`'s options (answer mode, constants).
    pub fn new(bench: &Vsm13, country: Country) -> Result<Self, BenchError> {
        let items = bench.items(&country)?;
        let target = bench.target(country.code)?;
        Ok(Self {
            country,
            items,
            target,
            options: bench.vsm13_options(),
        })
    }

    pub fn country(&self) -> &Country {
        &self.country
    }

    /// Target profile (PDI..IVR; `None` where Hofstede publishes no score).
    pub fn target(&self) -> [Option<f64>; 6] {
        self.target
    }

    /// Evaluates every candidate: one scoring call for all candidates × 24 items.
    pub fn evaluate(
        &self,
        lm: &mut dyn LanguageModel,
        candidates: &[Candidate],
    ) -> Result<Vec<Vsm13Eval>, BenchError> {
        let mut items = Vec::with_capacity(candidates.len() * self.items.len());
        let mut prompts = Vec::with_capacity(items.capacity());
        for c in candidates {
            for item in &self.items {
                items.push(item.clone());
                prompts.push(c.prompt(lm, &item.prompt)?);
            }
        }
        let answers = read_options(lm, &items, prompts)?;
        answers
            .chunks(self.items.len())
            .map(|chunk| {
                let records: Vec<ItemRecord> = chunk
                    .iter()
                    .zip(&self.items)
                    .map(|(a, item)| ItemRecord {
                        method: "tune".into(),
                        country: self.country.code,
                        item_id: item.id.clone(),
                        probs: a.probs.clone(),
                        logprobs: a.logprobs.clone(),
                        meta: item.meta.clone(),
                        prompt_id: String::new(),
                        options: vec![],
                        diagnostics: serde_json::Value::Null,
                    })
                    .collect();
                let s = score_vsm13(self.country.code, &records, &self.target, &self.options)?;
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
                })
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
    if same(&cp.config) != same(config) || cp.country != country.code.as_str() {
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

/// Asks, evaluates and tells until the optimiser stops, saving a checkpoint after every
/// generation; `evaluate` scores the decoded vectors of one generation.
fn drive<C: TunerConfig>(
    opt: &mut Optimizer,
    reports: &mut Vec<GenerationReport>,
    config: &C,
    country: &Country,
    checkpoint: &Path,
    mut evaluate: impl FnMut(&[Vec<f64>]) -> Result<Vec<f64>, BenchError>,
    on_generation: &mut dyn FnMut(&GenerationReport),
) -> Result<(), BenchError> {
    while opt.should_stop().is_none() {
        let xs = opt.ask();
        let report = opt.tell(evaluate(&xs)?).map_err(de_err)?;
        on_generation(&report);
        reports.push(report);
        let cp = Checkpoint {
            country: country.code.to_string(),
            config: config.clone(),
            state: opt.state().clone(),
            reports: reports.clone(),
        };
        write_atomic(
            checkpoint,
            &serde_json::to_string(&cp).map_err(|e| BenchError::Invalid(e.to_string()))?,
        )?;
    }
    Ok(())
}

/// The finished run.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    pub soft: SoftPrompt,
    pub eval: Vsm13Eval,
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
    /// when it exists and `resume` is set. `on_generation` sees each report.
    pub fn run(
        &self,
        lm: &mut dyn LanguageModel,
        objective: &Vsm13Objective,
        checkpoint: &Path,
        resume: bool,
        on_generation: &mut dyn FnMut(&GenerationReport),
    ) -> Result<TuneOutcome, BenchError> {
        let x0: Vec<f64> = self.theta0.data.iter().map(|&v| f64::from(v)).collect();
        let country = objective.country();
        let (mut opt, mut reports) =
            start_or_resume(&self.config, self.space, x0, country, checkpoint, resume)?;
        // ask() gives the decoded candidates x = θ₀ + A z.
        let evaluate = |xs: &[Vec<f64>]| -> Result<Vec<f64>, BenchError> {
            let cands: Vec<Candidate> = xs
                .iter()
                .map(|x| Candidate::Soft(Arc::new(self.soft_of(x))))
                .collect();
            Ok(objective
                .evaluate(lm, &cands)?
                .iter()
                .map(|e| e.loss)
                .collect())
        };
        drive(
            &mut opt,
            &mut reports,
            &self.config,
            country,
            checkpoint,
            evaluate,
            on_generation,
        )?;
        let best = opt.result();
        let soft = self.soft_of(&best.x);
        let eval = objective
            .evaluate(lm, &[Candidate::Soft(Arc::new(soft.clone()))])?
            .remove(0);
        Ok(TuneOutcome {
            soft,
            eval,
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

/// GlobalOpinionQA S_align of the country's WVS-sourced questions without and with the tuned
/// candidate (a soft prompt or a persona system text; the transfer check of issue #7); `None`
/// when the country has no such question.
pub fn transfer_check(
    lm: &mut dyn LanguageModel,
    goqa: &Goqa,
    country: &Country,
    tuned: &Candidate,
    limit: usize,
) -> Result<Option<(f64, f64, usize)>, BenchError> {
    let goqa_country = match goqa.country(country.code) {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let items: Vec<Item> = goqa
        .items(&goqa_country)?
        .into_iter()
        .filter(|i| {
            serde_json::from_value::<GoqaMeta>(i.meta.clone())
                .is_ok_and(|m| m.source == GoqaSource::Wvs)
        })
        .take(limit)
        .collect();
    if items.is_empty() {
        return Ok(None);
    }
    let mut scores = Vec::with_capacity(2);
    for candidate in [&Candidate::Plain, tuned] {
        let prompts = items
            .iter()
            .map(|i| candidate.prompt(lm, &i.prompt))
            .collect::<Result<Vec<_>, MethodError>>()?;
        let answers = read_options(lm, &items, prompts)?;
        let records: Vec<ItemRecord> = answers
            .into_iter()
            .zip(&items)
            .map(|(a, i)| ItemRecord {
                method: "transfer".into(),
                country: country.code,
                item_id: i.id.clone(),
                probs: a.probs,
                logprobs: a.logprobs,
                meta: i.meta.clone(),
                prompt_id: String::new(),
                options: vec![],
                diagnostics: serde_json::Value::Null,
            })
            .collect();
        scores.push(score_goqa(country.code, &records, goqa.goqa_options().s_align)?.value);
    }
    Ok(Some((scores[0], scores[1], items.len())))
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

/// The report's markdown: losses and six dimensions of every row against the target, the
/// DE run (`run`: a paragraph), and the transfer check of the tuned candidate (`tuned_label`;
/// `None`: not run, `Some(None)`: the country has no such question).
pub fn report_markdown(
    title: &str,
    country: &Country,
    target: &[Option<f64>; 6],
    rows: &[(String, Vsm13Eval)],
    run: &str,
    tuned_label: &str,
    transfer: Option<Option<(f64, f64, usize)>>,
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
    s.push_str(&format!("\n{run}\n\n![loss per generation](loss.svg)\n\n"));
    s.push_str("## Transfer check (GlobalOpinionQA, WVS-sourced questions)\n\n");
    let Some(transfer) = transfer else {
        s.push_str("Skipped (`--transfer-questions 0`).\n");
        return s;
    };
    match transfer {
        Some((naive, tuned, n)) => s.push_str(&format!(
            "| | S_align |\n|---|---:|\n| naive | {naive:.2} |\n| {tuned_label} | {tuned:.2} |\n\n{n} questions; {}.\n",
            if tuned > naive { "the VSM13 gain carries over" } else { "the VSM13 gain does not carry over (as the paper observed on its knowledge benchmark)" }
        )),
        None => s.push_str(&format!("{} has no WVS-sourced GlobalOpinionQA question in our data.\n", country.name)),
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
}
