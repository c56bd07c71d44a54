//! `culturesteer eval BENCH`: run methods on a benchmark, resumably, and report.

use crate::model_opts::{ModelOpts, OpenedModel};
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{Aggregation, MultiTpReader};
use culturesteer_eval::report::{render_summary, scores_json};
use culturesteer_eval::runner::{self, RunConfig};
use culturesteer_eval::seeds::{render_seeds, seeds_json, SeedRun};
use culturesteer_eval::Benchmark;
use culturesteer_methods::Method;
use culturesteer_registry::{
    build_methods, load_benchmark, BenchOptions, MethodContext, PaletteSettings, Preset,
};
use std::path::PathBuf;

/// `BENCH` takes the names of the benchmark registry, each with its help line.
fn bench_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        culturesteer_registry::BENCHMARKS
            .iter()
            .map(|b| clap::builder::PossibleValue::new(b.name).help(b.help)),
    )
}

/// `--method`'s help: every method of the registry with its help line.
fn method_help() -> String {
    let mut s = String::from(
        "Comma-separated methods (vanilla is added when a DISCA method is asked for; every DISCA \
         method is also reported with the country prior as `<name>+prior`, or with --preset \
         reference the prior is in `<name>` and the same answers without it are \
         `<name>-no-prior`):",
    );
    for m in culturesteer_registry::METHODS {
        s.push_str(&format!("\n  {:<18} {}", m.name, m.help));
    }
    s
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The benchmark.
    #[arg(value_parser = bench_names())]
    pub bench: String,
    #[arg(long, value_delimiter = ',', default_value = "vanilla", long_help = method_help())]
    pub method: Vec<String>,
    /// DISCA persona panels from a JSON file ({"ISO3": [persona text, …]}); default: built from
    /// the shipped WVS-7 data: the country marginals (19 countries) or, for countries they lack,
    /// the WVS items of GlobalOpinionQA (every DISCA country; `personas show` says which).
    #[arg(long, conflicts_with = "wvs")]
    pub personas: Option<PathBuf>,
    /// DISCA persona panels from the individual-level WVS wave-7 file ("inverted" CSV layout):
    /// the authors' age cohorts (young < 36, middle 36–55, older ≥ 56) plus everyone.
    #[arg(long)]
    pub wvs: Option<PathBuf>,
    /// DISCA constants: `paper` (default; the headline number has no country prior) or
    /// `reference` (everything the authors' released code does: the country prior is part of
    /// the `disca` number, walked over the items in pool order with the runner's step counter,
    /// which starts at 3).
    #[arg(long, value_enum, default_value_t = PresetArg::Paper)]
    pub preset: PresetArg,
    /// Comma-separated ISO3 codes, or "all" (default: the benchmark's default set).
    #[arg(long, value_delimiter = ',')]
    pub countries: Option<Vec<String>>,
    /// Only the first N items per country. multitp-disca: the first N rows of each country's
    /// pool, in pool order (as in the authors' per-scenario files; every pool has all six
    /// dimensions within its first 20 rows). multitp: items are ordered so any prefix mixes
    /// the dimensions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output directory (results.jsonl, manifest.json, summary.md, report.html, scores.json,
    /// plots/). Re-running resumes.
    #[arg(long)]
    pub out: PathBuf,
    /// Items per model call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Copies of the model answering at once, each taking the next batch of items off one queue
    /// with 1/N of the threads: for machines with many cores, where one small model's threads do
    /// not scale (on 2 cores, 2 jobs answered SmolLM2's DISCA items only 1.01-1.05x as fast as
    /// one job of 2 threads). The answers do not depend on N (each item is answered by one
    /// copy, with the same batches); memory grows with N (each copy has its own context and
    /// caches).
    #[arg(long, env = "CULTURESTEER_JOBS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Print the machine-readable scores (the run's scores.json) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Bootstrap resamples per (method, country) for the 95% intervals of the headline metric
    /// in the summary. With 0, or where a country's value cannot be resampled over items
    /// (VSM13), the macro intervals resample the countries instead (from 8 countries on).
    #[arg(long, default_value_t = culturesteer_eval::runner::DEFAULT_BOOTSTRAP)]
    pub bootstrap: usize,
    /// Seed recorded in the manifest (used by stochastic methods).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run the stochastic methods (DISCA's importance sampling) with N seeds (seed, seed+1, …;
    /// extra runs in OUT/seeds/seed-S/, model passes shared) and write seeds.md and seeds.json:
    /// mean ± standard deviation of the headline metric over the seeds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    /// Directory with the data/ layout to use instead of the embedded data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// multitp: system role (normal, default, expert).
    #[arg(long, default_value = "normal")]
    pub system_role: String,
    /// multitp: per-dimension preference from the choice (benchmark's own) or the mean probability.
    #[arg(long, value_enum, default_value_t = AggregationArg::Choice)]
    pub aggregation: AggregationArg,
    /// multitp: raw completion prompt instead of the model's chat format.
    #[arg(long)]
    pub completion: bool,
    /// multitp: how the choice is read: `continuation` (log-probabilities of the two group
    /// texts; deterministic, default) or `generate-parse` (greedy answer + MultiTP's direct
    /// match; either/neither/unparsed answers are left out and their share reported).
    #[arg(long, value_enum, default_value_t = ReaderArg::Continuation)]
    pub multitp_reader: ReaderArg,
    /// multitp: most generated tokens per answer with --multitp-reader generate-parse.
    #[arg(long, default_value_t = 48)]
    pub max_tokens: usize,
    /// multitp-disca: decision temperature on [z_A, z_B].
    #[arg(long, default_value_t = 0.5)]
    pub decision_temperature: f64,
    /// goqa: option reader, top-k[:N] (Modular Pluralism's, default top-k:10) or next-token.
    #[arg(long, default_value = "top-k:10")]
    pub goqa_reader: String,
    /// goqa: S_align divergence: js-divergence-e (default), js-divergence-2, js-distance-e, js-distance-2.
    #[arg(long, default_value = "js-divergence-e")]
    pub s_align: String,
    /// vsm13: answer mode: logits_expectation (default), logits_argmax, or generate_parse
    /// (greedy answer, first digit 1-5; answers without one are left out and counted).
    #[arg(long, default_value = "logits_expectation")]
    pub vsm13_answer_mode: String,
    #[command(flatten)]
    pub vsm13: crate::vsm13_opts::Vsm13Opts,
    #[command(flatten)]
    pub palette: PaletteOpts,
    #[command(flatten)]
    pub model: ModelOpts,
}

/// Options of the Cultural Palette methods.
#[derive(Args, Debug, Clone)]
pub struct PaletteOpts {
    /// palette: most tokens of each continent agent's draft.
    #[arg(long, default_value_t = 96)]
    pub palette_draft_tokens: usize,
    /// palette: most tokens of the meta agent's summary.
    #[arg(long, default_value_t = 128)]
    pub palette_summary_tokens: usize,
    /// palette: continent overrides for the target countries, e.g. "RUS=Europe,USA=America"
    /// (source "user"; default map, data/continents: CultureSPA's grouping for its 18
    /// countries, RUS in Asia, UN M49 regions otherwise).
    #[arg(long)]
    pub continents: Option<String>,
    /// palette with --experts: temperature of the gate's softmax over the cosine similarities
    /// of the prompt's and the continent names' hidden states.
    #[arg(long, default_value_t = culturesteer_methods::gate::DEFAULT_GATE_TEMPERATURE)]
    pub gate_temperature: f64,
}

impl Default for PaletteOpts {
    fn default() -> Self {
        Self {
            palette_draft_tokens: 96,
            palette_summary_tokens: 128,
            continents: None,
            gate_temperature: culturesteer_methods::gate::DEFAULT_GATE_TEMPERATURE,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AggregationArg {
    Choice,
    Probability,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PresetArg {
    Paper,
    Reference,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReaderArg {
    Continuation,
    GenerateParse,
}

impl PaletteOpts {
    /// The registry's Cultural Palette settings from the flags.
    pub fn settings(&self) -> PaletteSettings {
        PaletteSettings {
            draft_tokens: self.palette_draft_tokens,
            summary_tokens: self.palette_summary_tokens,
            continents: self.continents.clone(),
            gate_temperature: self.gate_temperature,
        }
    }
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Paper => Preset::Paper,
            PresetArg::Reference => Preset::Reference,
        }
    }
}

pub fn run(a: EvalArgs) -> Result<()> {
    let Executed { outcome, seeds } = execute(&a)?;
    if a.json {
        let mut js = scores_json(&outcome.report);
        if seeds.len() > 1 {
            js["seeds"] = seeds_json(&seeds);
        }
        println!("{}", serde_json::to_string_pretty(&js)?);
    } else {
        print!("{}", render_summary(&outcome.report));
        if seeds.len() > 1 {
            print!("\n{}", render_seeds(&seeds));
        }
    }
    for (m, c, why) in &outcome.unscored {
        eprintln!("note: {m} {c} not scored: {why}");
    }
    eprintln!(
        "{} items answered, {} already done; results in {}",
        outcome.answered,
        outcome.skipped,
        a.out.display()
    );
    Ok(())
}

/// What a run manifest records about how it was started: the command line, the build, the
/// engine settings and the host.
pub fn invocation(model: &ModelOpts) -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    serde_json::json!({
        "culturesteer_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("CULTURESTEER_GIT_COMMIT"),
        "command_line": std::env::args().collect::<Vec<String>>(),
        "threads": model.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        "ctx_per_seq": model.ctx,
        "parallel_sequences": model.parallel,
        "prefix_reuse": !model.no_prefix_reuse,
        "prefix_block": model.prefix_block,
        "n_batch": model.config().n_batch,
        "n_ubatch": model.config().n_ubatch,
        "kv_f32": model.kv_f32,
        "pack_sequences": model.pack_sequences,
        "flash_attn": model.flash_attn,
        "kv_unified": model.kv_unified,
        "llama_cpp": culturesteer_llm::ENGINE,
        "host_cpu": cpu,
        "host_cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The runner's workers: each set of methods with its copy of the model.
fn workers<'a>(
    methods: &'a mut [Vec<Box<dyn Method>>],
    opened: &'a mut [OpenedModel],
) -> Vec<runner::Worker<'a>> {
    methods
        .iter_mut()
        .zip(opened.iter_mut())
        .map(|(m, o)| runner::Worker {
            methods: m.as_mut_slice(),
            lm: o.lm.as_mut(),
        })
        .collect()
}

/// What `execute` did: the run, and with `--seeds N` every seed's report (the first is the run).
pub struct Executed {
    pub outcome: runner::RunOutcome,
    pub seeds: Vec<SeedRun>,
}

/// Runs (or resumes) an evaluation and returns its outcome without printing the summary.
pub fn execute(a: &EvalArgs) -> Result<Executed> {
    let data = match &a.data_dir {
        Some(d) => DataSource::dir(d),
        None => DataSource::Embedded,
    };
    let options = BenchOptions {
        system_role: a.system_role.clone(),
        chat: !a.completion,
        aggregation: match a.aggregation {
            AggregationArg::Choice => Aggregation::Choice,
            AggregationArg::Probability => Aggregation::Probability,
        },
        multitp_reader: match a.multitp_reader {
            ReaderArg::Continuation => MultiTpReader::Continuation,
            ReaderArg::GenerateParse => MultiTpReader::GenerateParse,
        },
        max_tokens: a.max_tokens,
        decision_temperature: a.decision_temperature,
        goqa_reader: a.goqa_reader.clone(),
        s_align: a.s_align.clone(),
        vsm13_answer_mode: a.vsm13_answer_mode.clone(),
        vsm13_config: a.vsm13.config()?,
    };
    let bench: Box<dyn Benchmark> = load_benchmark(&a.bench, &data, &options)?;
    let countries: Vec<CountryCode> = match &a.countries {
        None => bench.default_countries(),
        Some(v) if v.len() == 1 && v[0].eq_ignore_ascii_case("all") => bench.countries(),
        Some(v) => v
            .iter()
            .map(|s| {
                CountryCode::new(&s.trim().to_ascii_uppercase())
                    .map_err(|e| anyhow::anyhow!("--countries: {e}"))
                    .and_then(|c| bench.country(c).map(|_| c).map_err(anyhow::Error::from))
            })
            .collect::<Result<_>>()?,
    };
    if a.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let gaps = culturesteer_methods::disca::GapCache::default();
    let palette = a.palette.settings();
    let method_ctx = |seed| MethodContext {
        countries: &countries,
        data: &data,
        personas: a.personas.as_deref(),
        wvs: a.wvs.as_deref(),
        preset: a.preset.into(),
        seed,
        palette: &palette,
        gaps: &gaps,
    };
    let jobs = usize::from(a.jobs);
    // One set of methods per job (each copy of the model answers with its own).
    let mut methods: Vec<Vec<_>> = (0..jobs)
        .map(|_| build_methods(&a.method, &method_ctx(a.seed)))
        .collect::<Result<_, _>>()?;
    if a.seeds > 1 && !methods[0].iter().any(|m| m.stochastic()) {
        bail!(
            "--seeds {}: none of the methods ({}) depends on the seed; run once",
            a.seeds,
            a.method.join(",")
        );
    }
    // With --jobs N, each copy of the model gets 1/N of the threads.
    let model = if jobs > 1 {
        let total = a
            .model
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        ModelOpts {
            threads: Some((total / jobs).max(1)),
            ..a.model.clone()
        }
    } else {
        a.model.clone()
    };
    let mut opened: Vec<_> = (0..jobs).map(|_| model.open()).collect::<Result<_>>()?;
    let identity = opened[0].identity.clone();
    let mut bar = Progress::new(
        "{spinner} {msg:<24} [{bar:30}] {pos}/{len} items  {per_sec}  ETA {eta}",
        0,
        "eval",
        "items",
    );
    let cfg = RunConfig {
        out_dir: a.out.clone(),
        countries: countries.clone(),
        limit: a.limit,
        batch_size: a.batch,
        seed: a.seed,
        bootstrap: a.bootstrap,
        invocation: {
            let mut inv = invocation(&model);
            inv["items_per_call"] = a.batch.into();
            inv["jobs"] = jobs.into();
            inv
        },
    };
    let outcome = runner::run_jobs(
        bench.as_ref(),
        &mut workers(&mut methods, &mut opened),
        &identity,
        &data,
        &cfg,
        &mut bar,
    )
    .with_context(|| format!("eval {}", bench.name()))?;
    let mut seeds = vec![SeedRun {
        seed: a.seed,
        report: outcome.report.clone(),
    }];
    for k in 1..a.seeds {
        let seed = a.seed + k;
        let mut stochastic: Vec<Vec<_>> = (0..jobs)
            .map(|_| {
                Ok(build_methods(&a.method, &method_ctx(seed))?
                    .into_iter()
                    .filter(|m| m.stochastic())
                    .collect())
            })
            .collect::<Result<_>>()?;
        let cfg = RunConfig {
            out_dir: a.out.join("seeds").join(format!("seed-{seed}")),
            seed,
            ..cfg.clone()
        };
        eprintln!(
            "seed {seed} ({}/{}): {}",
            k + 1,
            a.seeds,
            cfg.out_dir.display()
        );
        let o = runner::run_jobs(
            bench.as_ref(),
            &mut workers(&mut stochastic, &mut opened),
            &identity,
            &data,
            &cfg,
            &mut bar,
        )
        .with_context(|| format!("eval {} seed {seed}", bench.name()))?;
        seeds.push(SeedRun {
            seed,
            report: o.report,
        });
    }
    if seeds.len() > 1 {
        let write = |name: &str, text: String| {
            let path = a.out.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("seeds.md", render_seeds(&seeds))?;
        write(
            "seeds.json",
            serde_json::to_string_pretty(&seeds_json(&seeds))? + "\n",
        )?;
    }
    Ok(Executed { outcome, seeds })
}
