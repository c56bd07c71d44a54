//! Model options shared by every command that needs a model.

use anyhow::{Context, Result};
use clap::Args;
use culturesteer_llm::fetch;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::ChatFormat;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ModelOpts {
    /// GGUF model file. Without it the default model (Gemma 3 270M Q4_K_M) is used and fetched
    /// into the cache on first use.
    #[arg(long, env = "CULTURESTEER_MODEL")]
    pub model: Option<PathBuf>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context length per sequence, in tokens.
    #[arg(long, default_value_t = 1024)]
    pub ctx: usize,
    /// Parallel sequences in the KV cache (branches scored per decode call).
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
    /// Chat format: auto, template, plain, or a llama.cpp built-in name (gemma, chatml, llama3, …).
    #[arg(long, default_value = "auto", value_parser = parse_chat_format)]
    pub chat_format: ChatFormat,
    /// Evaluate every prompt from scratch instead of sharing common prefixes (results are the
    /// same bit for bit; this is only slower).
    #[arg(long)]
    pub no_prefix_reuse: bool,
    /// Shared prefixes are cut at multiples of this many tokens, and no decode call is shorter,
    /// so cached and uncached log-probs are identical (must divide 512).
    #[arg(long, default_value_t = 16)]
    pub prefix_block: usize,
}

fn parse_chat_format(s: &str) -> Result<ChatFormat, String> {
    s.parse()
}

impl ModelOpts {
    /// The model file to use, fetching the default model if needed.
    pub fn resolve_path(&self) -> Result<PathBuf> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => fetch::ensure_default_model(&mut |m| eprintln!("{m}")).context("default model"),
        }
    }

    pub fn config(&self) -> LlamaConfig {
        LlamaConfig {
            threads: self.threads,
            ctx_per_seq: self.ctx,
            n_seq: self.parallel,
            chat_format: self.chat_format.clone(),
            prefix_reuse: !self.no_prefix_reuse,
            prefix_block: self.prefix_block,
            ..LlamaConfig::default()
        }
    }

    pub fn load(&self) -> Result<LlamaLm> {
        let path = self.resolve_path()?;
        Ok(LlamaLm::load(&path, self.config())?)
    }
}
