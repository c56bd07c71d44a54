//! `culturesteer tune softprompt` and `tune blackbox`: differential evolution on VSM13 of a soft
//! prompt (local GGUF models) or of a persona template's discrete choices (any model, HTTP included).

use crate::model_opts::ModelOpts;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use culturesteer_core::de::{DeConfig, GenerationReport, Strategy};
use culturesteer_core::CountryCode;
use culturesteer_data::personas::{load_country_profile, PersonaSource};
use culturesteer_data::source::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaOptions};
use culturesteer_eval::tune::blackbox::{
    candidate_of, BlackBoxConfig, BlackBoxTuner, PersonaChoice,
};
use culturesteer_eval::tune::{
    baselines, held_out_items, improved, loss_svg, report_markdown, transfer_check, write_atomic,
    Candidate, HeldOutCheck, ObjectiveSettings, ReportText, SoftPromptTuner, TuneConfig, Vsm13Eval,
    Vsm13Objective, TRANSFER_BOOTSTRAP,
};
use culturesteer_eval::vsm13::{Vsm13, Vsm13AnswerMode, Vsm13Options};
use culturesteer_eval::Benchmark;
use culturesteer_llm::soft_prompt::{self, SoftPromptManifest};
use culturesteer_llm::LanguageModel;
use culturesteer_methods::Country;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum TuneCmd {
    /// Tune a soft prompt (input embeddings after BOS) so the model's VSM13 dimensions approach
    /// the country's Hofstede scores; writes soft_prompt.json, report.md, loss.svg and a
    /// checkpoint (re-run with --resume to continue).
    Softprompt(SoftpromptArgs),
    /// The black-box variant for models without input embeddings (any --model-url): DE over a
    /// persona template's discrete choices (a country line and the ten WVS value dimensions ×
    /// four levels or left out), scored by the same VSM13 loss; writes persona.txt,
    /// persona.json, report.md, loss.svg and a checkpoint (--resume continues).
    Blackbox(BlackboxArgs),
}

/// What both tuners share: target, output, DE settings, transfer check, model.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Target country (ISO3) with Hofstede scores, e.g. SAU, USA, CHN, IND.
    #[arg(long)]
    pub country: String,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Generations after the initial population.
    #[arg(long, default_value_t = 20)]
    pub generations: usize,
    /// Most objective evaluations in all (whole generations only); default: no limit.
    #[arg(long)]
    pub budget: Option<usize>,
    /// Stop early when the best loss has not improved over this many generations.
    #[arg(long, value_name = "GENERATIONS")]
    pub stall: Option<usize>,
    /// Population size NP.
    #[arg(long, default_value_t = 20)]
    pub pop: usize,
    /// Crossover rate CR.
    #[arg(long, default_value_t = 0.9)]
    pub cr: f64,
    /// Differential weight F, or "dither:LO,HI" for a new F ~ U(LO, HI) each generation.
    #[arg(long, default_value = "dither:0.5,1.0")]
    pub f: String,
    /// Mutation strategy: rand1 (DE/rand/1/bin) or best1 (DE/best/1/bin).
    #[arg(long, default_value = "rand1")]
    pub strategy: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// GlobalOpinionQA WVS-sourced questions of the country in the transfer check: "all"
    /// (default), the first N, or 0 to skip it.
    #[arg(long, default_value = "all", value_name = "all|N")]
    pub transfer_questions: String,
    /// Paired bootstrap resamples of the questions for the transfer check's 95% interval of
    /// the S_align difference (tuned − naive).
    #[arg(long, default_value_t = TRANSFER_BOOTSTRAP)]
    pub bootstrap: usize,
    /// Print the results as JSON (country, target, every row's loss and six dimensions, the
    /// loss per generation, the transfer check) instead of the Markdown report; report.md and
    /// loss.svg are written either way.
    #[arg(long)]
    pub json: bool,
    /// VSM13 answer mode: logits_expectation (default), logits_argmax, or generate_parse
    /// (the paper's generate-and-parse: generated answer, first digit 1-5).
    #[arg(long, default_value = "logits_expectation")]
    pub answer_mode: String,
    /// generate_parse: answers per item and candidate, sampled with seeds 1..N (the same
    /// seeds for every candidate); the item means pool them. N > 1 samples at
    /// --objective-temperature.
    #[arg(long, default_value_t = 1)]
    pub objective_seeds: usize,
    /// generate_parse: sampling temperature of the objective's answers (top-p 1); default 0
    /// (greedy) with one seed, 1 with several.
    #[arg(long)]
    pub objective_temperature: Option<f64>,
    /// VSM13 items held out of the objective (leave-k-out), chosen from --seed, one per
    /// dimension first: during DE their answer means stay at the start candidate's answers,
    /// and the report compares the objective with the loss when the tuned candidate answers
    /// them itself. 0 = off; at most 18.
    #[arg(long, default_value_t = 6)]
    pub held_out: usize,
    #[command(flatten)]
    pub vsm13: crate::vsm13_opts::Vsm13Opts,
    #[command(flatten)]
    pub model: ModelOpts,
}

#[derive(Args, Debug)]
pub struct SoftpromptArgs {
    #[command(flatten)]
    pub tune: TuneArgs,
    /// Dimension k of the random-projection subspace.
    #[arg(long, default_value_t = 256)]
    pub subspace_dim: usize,
    /// Init text of the soft prompt ({country} becomes the country's name).
    #[arg(long, default_value = "You are a person from {country}.")]
    pub init_text: String,
}

#[derive(Args, Debug)]
pub struct BlackboxArgs {
    #[command(flatten)]
    pub tune: TuneArgs,
    /// Where the search starts: wvs-profile (the country's WVS-7 value levels after "You are a
    /// person from X."; falls back to country-line for countries without WVS data) or
    /// country-line ("You are a person from X." alone).
    #[arg(long, default_value = "wvs-profile")]
    pub start: String,
}

pub fn run(cmd: TuneCmd) -> Result<()> {
    match cmd {
        TuneCmd::Softprompt(a) => softprompt(a),
        TuneCmd::Blackbox(a) => blackbox(a),
    }
}

/// The DE settings of the command line over a tuner's defaults.
fn de_config(a: &TuneArgs, defaults: DeConfig) -> Result<DeConfig> {
    let (f, dither) = match a.f.strip_prefix("dither:") {
        Some(r) => {
            let (lo, hi) = r.split_once(',').context("--f dither:LO,HI")?;
            (
                0.5,
                Some((
                    lo.trim().parse::<f64>().context("--f dither LO")?,
                    hi.trim().parse::<f64>().context("--f dither HI")?,
                )),
            )
        }
        None => (
            a.f.parse::<f64>()
                .context("--f must be a number or dither:LO,HI")?,
            None,
        ),
    };
    let strategy = match a.strategy.as_str() {
        "rand1" => Strategy::RandOneBin,
        "best1" => Strategy::BestOneBin,
        other => bail!("--strategy {other:?}: use rand1 or best1"),
    };
    let cfg = DeConfig {
        np: a.pop,
        f,
        cr: a.cr,
        strategy,
        dither,
        max_generations: a.generations,
        max_evaluations: a.budget,
        stall_generations: a.stall,
        seed: a.seed,
        ..defaults
    };
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("DE settings: {e}"))?;
    Ok(cfg)
}

/// What both tuners set up before searching.
struct Setup {
    data: DataSource,
    bench: Vsm13,
    country: Country,
    checkpoint: PathBuf,
    settings: ObjectiveSettings,
    /// `None`: no transfer check; `Some(None)`: all questions.
    transfer: Option<Option<usize>>,
}

/// `--transfer-questions`: "all", N, or 0 (skip).
fn transfer_limit(s: &str) -> Result<Option<Option<usize>>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(Some(None));
    }
    match s.trim().parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(Some(n))),
        Err(_) => bail!("--transfer-questions {s:?}: use all, a number of questions, or 0 to skip"),
    }
}

fn setup(a: &TuneArgs) -> Result<Setup> {
    let answer_mode: Vsm13AnswerMode = a.answer_mode.parse()?;
    let config = a.vsm13.config()?;
    let transfer = transfer_limit(&a.transfer_questions)?;
    let vsm13 = Vsm13Options {
        answer_mode,
        config,
    };
    let settings = ObjectiveSettings {
        vsm13,
        seeds: a.objective_seeds,
        temperature: a.objective_temperature.unwrap_or(if a.objective_seeds > 1 {
            1.0
        } else {
            0.0
        }),
        held_out: held_out_items(a.held_out, a.seed, &config)?,
    };
    settings.validate()?;
    let data = DataSource::Embedded;
    let bench = Vsm13::load(&data, vsm13)?;
    let code = CountryCode::new(&a.country.to_uppercase())
        .map_err(|e| anyhow::anyhow!("--country {}: {e}", a.country))?;
    let country = bench.country(code)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let checkpoint = a.out.join("checkpoint.json");
    if checkpoint.exists() && !a.resume {
        bail!(
            "{} holds a tuning run; pass --resume to continue it or use a new --out",
            a.out.display()
        );
    }
    Ok(Setup {
        data,
        bench,
        country,
        checkpoint,
        settings,
        transfer,
    })
}

fn progress(generations: usize) -> Progress {
    Progress::new(
        "{spinner} generation {pos}/{len} [{bar:30}] {msg}  ETA {eta}",
        generations as u64 + 1,
        "tune",
        "generations",
    )
}

fn show(bar: &mut Progress, r: &GenerationReport) {
    bar.set_message(format!("best loss {:.1}", r.best));
    bar.step_to(r.generation as u64 + 1);
}

/// What `finish` reports about the tuned candidate.
struct Tuned<'a> {
    label: &'a str,
    candidate: Candidate,
    /// Answering all 24 items itself.
    eval: Vsm13Eval,
    /// Under the objective (held-out items at the start's answers).
    in_sample: Vsm13Eval,
    /// The start row's label.
    start_label: &'a str,
}

/// The transfer check (when asked for), then report.md and loss.svg; prints the report.
#[allow(clippy::too_many_arguments)]
fn finish(
    a: &TuneArgs,
    s: &Setup,
    lm: &mut dyn LanguageModel,
    title: &str,
    mut rows: Vec<(String, Vsm13Eval)>,
    tuned: Tuned,
    run: &str,
    reports: &[GenerationReport],
) -> Result<()> {
    let transfer = match s.transfer {
        Some(limit) => {
            let goqa = Goqa::load(&s.data, GoqaOptions::default())?;
            Some(transfer_check(
                lm,
                &goqa,
                &s.country,
                &tuned.candidate,
                limit,
                a.bootstrap,
                a.seed,
            )?)
        }
        None => None,
    };
    // A run that never beat its initial population is not called tuned.
    let gained = improved(reports);
    let (tuned_label, run) = if gained {
        (tuned.label.to_string(), run.to_string())
    } else {
        let first = reports.first().map_or(f64::NAN, |r| r.best);
        (
            format!("{} (not improved: best initial candidate)", tuned.label),
            format!(
                "{run}\n\n**Differential evolution did not improve on its initial population** (best loss {first:.1} at generation 0 and at the end): the last row is the best initial candidate, not a tuned one."
            ),
        )
    };
    let held_out = (!s.settings.held_out.is_empty()).then(|| HeldOutCheck {
        items: s.settings.held_out.clone(),
        in_sample_loss: tuned.in_sample.loss,
        own_answers_loss: tuned.eval.loss,
    });
    // The loss plot's reference lines: the naive model and the country prompt.
    let lines: Vec<(String, f64)> = rows
        .iter()
        .filter(|(n, _)| n == "naive" || n == "country prompt")
        .map(|(n, e)| (n.clone(), e.loss))
        .collect();
    rows.push((tuned_label.clone(), tuned.eval.clone()));
    let target = s.bench.target(s.country.code)?;
    let objective_line = s.settings.describe();
    let md = report_markdown(
        title,
        &s.country,
        &target,
        &rows,
        &ReportText {
            run: &run,
            objective: &objective_line,
            tuned_label: &tuned_label,
            start_label: tuned.start_label,
            held_out: held_out.as_ref(),
            improved: gained,
            transfer: transfer.as_ref().map(Option::as_ref),
        },
    );
    write_atomic(&a.out.join("report.md"), &md)?;
    write_atomic(
        &a.out.join("loss.svg"),
        &loss_svg(&s.country, reports, &lines)?,
    )?;
    if a.json {
        let dims = ["PDI", "IDV", "MAS", "UAI", "LTO", "IVR"];
        let row = |(name, e): &(String, Vsm13Eval)| {
            serde_json::json!({
                "name": name,
                "loss": e.loss,
                "dimensions": dims.iter().zip(e.dims).map(|(d, v)| (d.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "parse_failures": e.parse_failures,
            })
        };
        let v = serde_json::json!({
            "country": s.country.code,
            "metric": { "name": "L1", "lower_is_better": true },
            "target": dims.iter().zip(target).map(|(d, t)| (d.to_string(), serde_json::json!(t))).collect::<serde_json::Map<_, _>>(),
            "objective": s.settings,
            "rows": rows.iter().map(row).collect::<Vec<_>>(),
            "tuned": tuned_label,
            "improved": gained,
            "in_sample_loss": tuned.in_sample.loss,
            "held_out": held_out.as_ref().map(|h| serde_json::json!({
                "items": h.items,
                "in_sample_loss": h.in_sample_loss,
                "own_answers_loss": h.own_answers_loss,
                "generalises": h.generalises(),
            })),
            "generations": reports,
            "transfer": transfer.as_ref().map(|t| t.as_ref().map(|t| serde_json::json!({
                "s_align_naive": t.naive,
                "s_align_tuned": t.tuned,
                "difference": t.difference(),
                "ci95": t.ci95.map(|(lo, hi)| [lo, hi]),
                "resamples": t.resamples,
                "questions": t.questions,
                "available": t.available,
                "verdict": t.verdict(),
            }))),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{md}");
    Ok(())
}

fn blackbox(a: BlackboxArgs) -> Result<()> {
    if let Some(f) = &a.tune.model.soft_prompt {
        bail!(
            "--soft-prompt {}: the black-box tuner searches persona texts, not soft prompts",
            f.display()
        );
    }
    let config = BlackBoxConfig {
        de: de_config(&a.tune, BlackBoxConfig::default().de)?,
        ..BlackBoxConfig::default()
    };
    let s = setup(&a.tune)?;
    let profile = match a.start.as_str() {
        "wvs-profile" => {
            match load_country_profile(&PersonaSource::Marginals(s.data.clone()), s.country.code) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!(
                        "note: no WVS profile for {} ({e}); starting from the country line alone",
                        s.country.code
                    );
                    None
                }
            }
        }
        "country-line" => None,
        other => bail!("--start {other:?}: use wvs-profile or country-line"),
    };
    let tuner = BlackBoxTuner::new(
        config.clone(),
        PersonaChoice::from_profile(1, profile.as_ref()),
        &s.country.name,
    )?;
    let mut opened = a.tune.model.open()?;
    let lm = opened.lm.as_mut();
    let mut objective =
        Vsm13Objective::with_settings(&s.bench, s.country.clone(), s.settings.clone())?;
    let start_text = tuner.text(tuner.start());
    eprintln!(
        "tuning a persona for {} ({}) by black-box DE: NP {}, up to {} generations; start: {start_text:?}",
        s.country.name, s.country.code, config.de.np, config.de.max_generations
    );
    let rows = baselines(lm, &objective, candidate_of(&start_text), "start persona")?;
    let mut bar = progress(config.de.max_generations);
    // The naive model (no persona) and the start persona are scored already; with held-out
    // items only the start's own answers equal its objective value.
    let mut known = vec![(start_text.clone(), rows[2].1.clone())];
    if s.settings.held_out.is_empty() {
        known.push((String::new(), rows[0].1.clone()));
    }
    let outcome = tuner.run(
        lm,
        &mut objective,
        &s.checkpoint,
        a.tune.resume,
        &known,
        &mut |r| show(&mut bar, r),
    )?;
    bar.finish();
    write_atomic(
        &a.tune.out.join("persona.txt"),
        &format!("{}\n", outcome.text),
    )?;
    let record = serde_json::json!({
        "country": s.country.code.to_string(),
        "model": lm.describe(),
        "text": outcome.text,
        "choice": outcome.choice,
        "loss": outcome.eval.loss,
        "in_sample_loss": outcome.in_sample.loss,
        "dims": outcome.eval.dims,
        "config": config,
        "objective": s.settings,
    });
    write_atomic(
        &a.tune.out.join("persona.json"),
        &serde_json::to_string_pretty(&record)?,
    )?;
    let run = outcome.describe(&config);
    let tuned = Tuned {
        label: "tuned persona",
        candidate: candidate_of(&outcome.text),
        eval: outcome.eval.clone(),
        in_sample: outcome.in_sample.clone(),
        start_label: "start persona",
    };
    finish(
        &a.tune,
        &s,
        lm,
        "Black-box persona tuning",
        rows,
        tuned,
        &run,
        &outcome.reports,
    )?;
    println!(
        "\nTuned persona: {}",
        if outcome.text.is_empty() {
            "(none: the naive model)"
        } else {
            &outcome.text
        }
    );
    eprintln!(
        "persona in {}; report in {}",
        a.tune.out.join("persona.txt").display(),
        a.tune.out.join("report.md").display()
    );
    Ok(())
}

fn softprompt(a: SoftpromptArgs) -> Result<()> {
    if let Some(f) = &a.tune.model.soft_prompt {
        bail!("--soft-prompt {}: tuning starts from the init text's embeddings (--init-text), not from a file", f.display());
    }
    if a.tune.model.model_url.is_some() {
        bail!("--model-url: a soft prompt needs input embeddings, which an HTTP API does not take; use `tune blackbox` for a served model");
    }
    let config = TuneConfig {
        init_text: a.init_text.clone(),
        subspace_dim: a.subspace_dim,
        projection_seed: a.tune.seed,
        de: de_config(&a.tune, TuneConfig::default().de)?,
    };
    let s = setup(&a.tune)?;
    let country = &s.country;
    let mut opened = a.tune.model.open()?;
    let lm = opened.lm.as_mut();
    let mut objective =
        Vsm13Objective::with_settings(&s.bench, country.clone(), s.settings.clone())?;
    let tuner = SoftPromptTuner::new(lm, country, config.clone())?;
    eprintln!(
        "tuning a {}×{} soft prompt for {} ({}): NP {}, up to {} generations, subspace k = {}",
        tuner.theta0().rows,
        tuner.theta0().dim,
        country.name,
        country.code,
        config.de.np,
        config.de.max_generations,
        config.subspace_dim
    );
    let rows = baselines(
        lm,
        &objective,
        Candidate::Soft(Arc::new(tuner.theta0().clone())),
        "soft prompt θ₀ (init text)",
    )?;
    let mut bar = progress(config.de.max_generations);
    let outcome = tuner.run(lm, &mut objective, &s.checkpoint, a.tune.resume, &mut |r| {
        show(&mut bar, r)
    })?;
    bar.finish();

    let mut manifest = SoftPromptManifest::for_model(&lm.describe(), &outcome.soft);
    manifest.country = Some(country.code.to_string());
    manifest.init_text = Some(config.init_text.replace("{country}", &country.name));
    manifest.loss = Some(outcome.eval.loss);
    let soft_path = a.tune.out.join("soft_prompt.json");
    soft_prompt::save(&soft_path, &outcome.soft, &manifest)?;
    let run = outcome.describe(&config);
    let tuned = Tuned {
        label: "tuned soft prompt",
        candidate: Candidate::Soft(Arc::new(outcome.soft.clone())),
        eval: outcome.eval.clone(),
        in_sample: outcome.in_sample.clone(),
        start_label: "soft prompt θ₀ (init text)",
    };
    finish(
        &a.tune,
        &s,
        lm,
        "Soft-prompt tuning",
        rows,
        tuned,
        &run,
        &outcome.reports,
    )?;
    eprintln!(
        "soft prompt in {}; report in {}",
        soft_path.display(),
        a.tune.out.join("report.md").display()
    );
    Ok(())
}
