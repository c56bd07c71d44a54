//! `culturesteer compare DIR DIR…`: several runs of one benchmark (other models, other
//! methods, other options) in one table and one plot, from their `scores.json`.

use anyhow::{bail, Result};
use clap::Args;
use culturesteer_eval::compare::{compare_runs, grid_markdown, load_scores};
use culturesteer_eval::report::{render_summary, write_report};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run directories (each written by `eval` or `ablate`, with its scores.json).
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Comma-separated labels of the runs, in order (default: the directory names).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Also write the comparison (summary.md, report.html, scores.json, plots/) into this
    /// directory.
    #[arg(long, conflicts_with = "grid")]
    pub out: Option<PathBuf>,
    /// Write a cross-model table instead (markdown): runs of any benchmarks, one column per
    /// label (give runs of one model the same label, e.g. --labels gemma,gemma,smol,smol), one
    /// block of rows per benchmark with its uniform floor; each cell the macro value with its
    /// 95% interval, marked when it is no better than the floor.
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
}

pub fn run(a: CompareArgs) -> Result<()> {
    if !a.labels.is_empty() && a.labels.len() != a.dirs.len() {
        bail!(
            "--labels: {} labels for {} runs",
            a.labels.len(),
            a.dirs.len()
        );
    }
    let mut runs = Vec::with_capacity(a.dirs.len());
    for (k, dir) in a.dirs.iter().enumerate() {
        let mut label = match a.labels.get(k) {
            Some(l) => l.trim().to_string(),
            None => dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| format!("run{}", k + 1)),
        };
        if a.grid.is_none() && runs.iter().any(|(l, _)| *l == label) {
            label = format!("{label}#{}", k + 1);
        }
        runs.push((label, load_scores(dir)?));
    }
    if let Some(file) = &a.grid {
        let table = grid_markdown(&runs)?;
        culturesteer_eval::tune::write_atomic(file, &table)?;
        print!("{table}");
        eprintln!("table written to {}", file.display());
        return Ok(());
    }
    let (input, notes) = compare_runs(&runs)?;
    print!("{}", render_summary(&input));
    for n in &notes {
        eprintln!("note: {n}");
    }
    if let Some(out) = &a.out {
        write_report(out, &input)?;
        eprintln!("comparison written to {}", out.display());
    }
    Ok(())
}
