//! `culturesteer`: measure and steer the cultural alignment of LLMs at inference time.

mod commands;
mod model_opts;
mod progress;
mod serve;
mod vsm13_opts;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "culturesteer",
    version,
    about = "Measure and steer the cultural alignment of LLMs at inference time, without touching their weights."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the methods and benchmarks this build offers.
    List(commands::list::ListArgs),
    /// Fetch or inspect models (the default is Gemma 3 270M Q4_K_M).
    #[command(subcommand)]
    Model(commands::model::ModelCmd),
    /// Score a prompt: log-probabilities of candidate continuations and the top next tokens.
    Score(commands::score::ScoreArgs),
    /// Generate text from a prompt (greedy or seeded sampling).
    Generate(commands::score::GenerateArgs),
    /// Evaluate methods on a benchmark (resumable: re-run the same command to continue).
    Eval(commands::eval::EvalArgs),
    /// Recompute MIS, JSD and Pearson r from released per-scenario results (no model needed).
    Replay(commands::replay::ReplayArgs),
    /// Show DISCA persona panels built from World Values Survey wave 7 (no model needed).
    #[command(subcommand)]
    Personas(commands::personas::PersonasCmd),
    /// Run DISCA, its ablations and the baselines on one benchmark and print one table.
    Ablate(commands::ablate::AblateArgs),
    /// Put several runs of one benchmark (other models, methods or options) in one table.
    Compare(commands::compare::CompareArgs),
    /// Serve the (steered) model over an OpenAI-compatible HTTP API.
    Serve(serve::ServeArgs),
    /// Benchmarks of the engine and the methods.
    #[command(subcommand)]
    Bench(commands::bench::BenchCmd),
    /// Tune a steering prompt with differential evolution (soft prompts on VSM13).
    #[command(subcommand)]
    Tune(commands::tune::TuneCmd),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CULTURESTEER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llama_cpp_2=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Model(c) => commands::model::run(c),
        Command::Score(a) => commands::score::run_score(a),
        Command::Generate(a) => commands::score::run_generate(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::List(a) => commands::list::run(a),
        Command::Replay(a) => commands::replay::run(a),
        Command::Personas(c) => commands::personas::run(c),
        Command::Ablate(a) => commands::ablate::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Bench(c) => commands::bench::run(c),
        Command::Tune(c) => commands::tune::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, outermost first.
            let msg = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("error: {msg}");
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
