//! `culturesteer tune softprompt`: differential evolution of a soft prompt on VSM13.

use crate::model_opts::ModelOpts;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use culturesteer_bench::goqa::{Goqa, GoqaOptions};
use culturesteer_bench::tune::{baselines, loss_svg, report_markdown, transfer_check, write_atomic, SoftPromptTuner, TuneConfig, Vsm13Objective};
use culturesteer_bench::vsm13::{Vsm13, Vsm13AnswerMode, Vsm13Options};
use culturesteer_bench::Benchmark;
use culturesteer_core::de::{DeConfig, Strategy};
use culturesteer_core::CountryCode;
use culturesteer_data::source::DataSource;
use culturesteer_llm::soft_prompt::{self, SoftPromptManifest};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum TuneCmd {
    /// Tune a soft prompt (input embeddings after BOS) so the model's VSM13 dimensions approach
    /// the country's Hofstede scores; writes soft_prompt.json, report.md, loss.svg and a
    /// checkpoint (re-run with --resume to continue).
    Softprompt(SoftpromptArgs),
}

#[derive(Args, Debug)]
pub struct SoftpromptArgs {
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
    /// Dimension k of the random-projection subspace.
    #[arg(long, default_value_t = 256)]
    pub subspace_dim: usize,
    /// Init text of the soft prompt ({country} becomes the country's name).
    #[arg(long, default_value = "You are a person from {country}.")]
    pub init_text: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// GlobalOpinionQA WVS-sourced questions in the transfer check (0 skips it).
    #[arg(long, default_value_t = 20)]
    pub transfer_questions: usize,
    /// VSM13 answer mode: logits_expectation (default) or logits_argmax.
    #[arg(long, default_value = "logits_expectation")]
    pub answer_mode: String,
    #[command(flatten)]
    pub model: ModelOpts,
}

pub fn run(cmd: TuneCmd) -> Result<()> {
    match cmd {
        TuneCmd::Softprompt(a) => softprompt(a),
    }
}

fn de_config(a: &SoftpromptArgs) -> Result<DeConfig> {
    let (f, dither) = match a.f.strip_prefix("dither:") {
        Some(r) => {
            let (lo, hi) = r.split_once(',').context("--f dither:LO,HI")?;
            (0.5, Some((lo.trim().parse::<f64>().context("--f dither LO")?, hi.trim().parse::<f64>().context("--f dither HI")?)))
        }
        None => (a.f.parse::<f64>().context("--f must be a number or dither:LO,HI")?, None),
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
        seed: a.seed,
        ..TuneConfig::default().de
    };
    cfg.validate().map_err(|e| anyhow::anyhow!("DE settings: {e}"))?;
    Ok(cfg)
}

fn softprompt(a: SoftpromptArgs) -> Result<()> {
    if let Some(f) = &a.model.soft_prompt {
        bail!("--soft-prompt {}: tuning starts from the init text's embeddings (--init-text), not from a file", f.display());
    }
    let answer_mode: Vsm13AnswerMode = a.answer_mode.parse()?;

    if answer_mode == Vsm13AnswerMode::GenerateParse {
        bail!("--answer-mode generate_parse is not offered for tuning (use logits_expectation or logits_argmax)");
    }
    let config = TuneConfig { init_text: a.init_text.clone(), subspace_dim: a.subspace_dim, projection_seed: a.seed, de: de_config(&a)? };
    let data = DataSource::Embedded;
    let bench = Vsm13::load(&data, Vsm13Options { answer_mode, ..Vsm13Options::default() })?;
    let code = CountryCode::new(&a.country.to_uppercase()).map_err(|e| anyhow::anyhow!("--country {}: {e}", a.country))?;
    let country = bench.country(code)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let checkpoint = a.out.join("checkpoint.json");
    if checkpoint.exists() && !a.resume {
        bail!("{} holds a tuning run; pass --resume to continue it or use a new --out", a.out.display());
    }
    let mut opened = a.model.open()?;
    let lm = opened.lm.as_mut();
    let objective = Vsm13Objective::new(&bench, country.clone())?;
    let tuner = SoftPromptTuner::new(lm, &country, config.clone())?;
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
    let rows_before = baselines(lm, &objective, tuner.theta0())?;
    let bar = ProgressBar::new(config.de.max_generations as u64 + 1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} generation {pos}/{len} [{bar:30}] {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let outcome = tuner.run(lm, &objective, &checkpoint, a.resume, &mut |r| {
        bar.set_position(r.generation as u64 + 1);
        bar.set_message(format!("best loss {:.1}", r.best));
    })?;
    bar.finish_and_clear();

    let mut manifest = SoftPromptManifest::for_model(&lm.describe(), &outcome.soft);
    manifest.country = Some(country.code.to_string());
    manifest.init_text = Some(config.init_text.replace("{country}", &country.name));
    manifest.loss = Some(outcome.eval.loss);
    let soft_path = a.out.join("soft_prompt.json");
    soft_prompt::save(&soft_path, &outcome.soft, &manifest)?;

    let transfer = if a.transfer_questions > 0 {
        let goqa = Goqa::load(&data, GoqaOptions::default())?;
        transfer_check(lm, &goqa, &country, &Arc::new(outcome.soft.clone()), a.transfer_questions)?
    } else {
        None
    };
    let mut rows = rows_before;
    rows.push(("tuned soft prompt".to_string(), outcome.eval.clone()));
    let md = report_markdown(&country, &objective.target(), &rows, &outcome, &config, transfer);
    write_atomic(&a.out.join("report.md"), &md)?;
    write_atomic(&a.out.join("loss.svg"), &loss_svg(&outcome.reports)?)?;
    print!("{md}");
    eprintln!("soft prompt in {}; report in {}", soft_path.display(), a.out.join("report.md").display());
    Ok(())
}
