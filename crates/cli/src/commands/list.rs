//! `culturesteer list`: the methods and benchmarks this build offers (from the registry).

use anyhow::Result;
use clap::{Args, ValueEnum};
use culturesteer_registry::{BENCHMARKS, METHODS};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ListWhat {
    Methods,
    Benchmarks,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// What to list (default: both).
    #[arg(value_enum)]
    pub what: Option<ListWhat>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: ListArgs) -> Result<()> {
    let methods = !matches!(a.what, Some(ListWhat::Benchmarks));
    let benchmarks = !matches!(a.what, Some(ListWhat::Methods));
    if a.json {
        let mut out = serde_json::Map::new();
        if methods {
            out.insert(
                "methods".into(),
                METHODS
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name, "help": m.help, "family": m.family,
                            "servable": m.servable, "ablation_grid": m.ablation_grid,
                        })
                    })
                    .collect(),
            );
        }
        if benchmarks {
            out.insert(
                "benchmarks".into(),
                BENCHMARKS
                    .iter()
                    .map(|b| serde_json::json!({ "name": b.name, "help": b.help }))
                    .collect(),
            );
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if methods {
        println!("Methods (eval --method; * = also a serve steering):");
        for m in METHODS {
            let star = if m.servable { "*" } else { " " };
            println!("  {:<18}{star} {}", m.name, m.help);
        }
    }
    if methods && benchmarks {
        println!();
    }
    if benchmarks {
        println!("Benchmarks (eval BENCH):");
        for b in BENCHMARKS {
            println!("  {:<18}  {}", b.name, b.help);
        }
    }
    Ok(())
}
