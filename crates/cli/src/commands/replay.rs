//! `culturesteer replay DIR`: per-country and macro MIS, JSD and Pearson r of released
//! per-scenario results (the DISCA authors' `results/<model>/` format), without a model.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use culturesteer_core::replay::render_table;
use culturesteer_data::replay::{
    load_results_dir, replay_with_disca_targets, replay_with_moral_machine, ResultsDir,
};
use culturesteer_data::DataSource;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Directory with `vanilla_results_<ISO3>.csv` and/or `swa_results_<ISO3>.csv`. Without it,
    /// the shipped Phi-4 results of the DISCA authors are replayed.
    pub dir: Option<PathBuf>,
    /// Human targets: the DISCA authors' 20-country table (reproduces their numbers) or the
    /// 196-country Moral Machine table (for other countries).
    #[arg(long, value_enum, default_value_t = Targets::Disca)]
    pub targets: Targets,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Targets {
    Disca,
    MoralMachine,
}

pub fn run(a: ReplayArgs) -> Result<()> {
    let results = match &a.dir {
        Some(d) => load_results_dir(d).with_context(|| format!("replay {}", d.display()))?,
        None => ResultsDir::embedded_phi4()?,
    };
    let source = DataSource::Embedded;
    let summary = match a.targets {
        Targets::Disca => replay_with_disca_targets(&results, &source)?,
        Targets::MoralMachine => replay_with_moral_machine(&results, &source)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render_table(&summary));
    }
    Ok(())
}
