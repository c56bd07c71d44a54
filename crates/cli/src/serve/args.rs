//! The command line of `culturesteer serve` and the limits its front end enforces.

use crate::model_opts::ModelOpts;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelOpts,
    /// Address to listen on (loopback by default; use 0.0.0.0 to accept other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the address is printed when the server is ready).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Model name the server reports and accepts (default: the GGUF file's stem or the
    /// upstream model's name).
    #[arg(long)]
    pub served_name: Option<String>,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Largest `max_tokens` a request may ask for (larger: 422).
    #[arg(long, default_value_t = 1024)]
    pub max_tokens_limit: u32,
    /// Requests waiting for the model beyond this many are refused with 429.
    #[arg(long, default_value_t = 64)]
    pub max_queue: usize,
    /// Generations that run at once (continuous generation: requests join and leave between
    /// tokens; each slot keeps one sequence of the KV cache). More wait for a free slot.
    /// With `--parallel-generation` the running generations share one decode per token, and
    /// new requests' prompts are evaluated in that same decode (up to `n_batch` tokens a step,
    /// a long prompt over several steps) instead of stalling the running ones.
    #[arg(long, default_value_t = 8)]
    pub slots: usize,
    /// Prompts whose KV is kept between requests (each a sequence of the KV cache, least
    /// recently used out): a later request loads the block-aligned prefix it shares with one
    /// instead of evaluating it (a DISCA `/v1/choose` its culture's persona prefixes, a chat
    /// its system prompt). Results are identical either way. 0 turns it off.
    #[arg(long, default_value_t = 16)]
    pub prefix_cache: usize,
    /// Most top log-probs per position a request may ask for.
    #[arg(long, default_value_t = 20)]
    pub max_logprobs: u32,
    /// Most prompts in one /v1/completions request.
    #[arg(long, default_value_t = 64)]
    pub max_prompts: usize,
    /// Most tokens one request may cost: its prompts (bounded by their bytes before
    /// tokenisation) plus `max_tokens` for each. Larger: 422.
    #[arg(long, default_value_t = 32_768)]
    pub max_request_tokens: usize,
    /// DISCA persona panels from a JSON file (default: the shipped WVS marginals).
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Data directory (default: the data embedded in the binary).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of DISCA's importance sampling and of sampled generations without a seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub palette: crate::commands::eval::PaletteOpts,
    /// Seconds requests in flight may take to finish after Ctrl-C/SIGTERM; then (or at a
    /// second signal) the process exits.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Milliseconds to wait, after a step that ended generations and left at least half the
    /// slots free, for as many new requests before stepping the generations still running:
    /// clients that send their next request when an answer comes then share the next decode
    /// instead of waiting for the one after it. At most 1000; 0: never wait. In the exact
    /// default the tokens are the same either way (with `--parallel-generation` they can move
    /// at near-ties with what shares a decode, as they do anyway).
    #[arg(long, default_value_t = 10.0, value_name = "MS")]
    pub admit_wait: f64,
    /// Require `Authorization: Bearer KEY` on every request but `GET /health`.
    #[arg(long, conflicts_with = "api_key_env_in", value_name = "KEY")]
    pub api_key: Option<String>,
    /// Like --api-key, with the key read from this environment variable (keeps it out of the
    /// process list).
    #[arg(
        long = "require-api-key-env",
        id = "api_key_env_in",
        value_name = "VAR"
    )]
    pub api_key_env_in: Option<String>,
    /// Origins allowed to call the server from a web page (`*` for any). Requests with any
    /// other `Origin` header are refused (403), so a page in your browser cannot use it.
    #[arg(long, value_delimiter = ',')]
    pub allow_origin: Vec<String>,
    /// Host names allowed in the `Host` header besides localhost, 127.0.0.1 and ::1 when
    /// listening on loopback (others: 403, against DNS rebinding).
    #[arg(long, value_delimiter = ',')]
    pub allow_host: Vec<String>,
}

impl ServeArgs {
    /// The access rules from the flags.
    pub fn access(&self) -> anyhow::Result<super::Access> {
        let api_key = match (&self.api_key, &self.api_key_env_in) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("--require-api-key-env {var}: the variable is not set")
            })?),
            (None, None) => None,
        };
        if api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            anyhow::bail!("the API key must not be empty");
        }
        Ok(super::Access {
            api_key,
            allowed_origins: self.allow_origin.clone(),
            allowed_hosts: self.allow_host.clone(),
            loopback: super::access::is_loopback(&self.host),
        })
    }
}

/// Limits the front end enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_tokens: u32,
    pub max_queue: usize,
    pub max_logprobs: u32,
    pub max_prompts: usize,
    pub max_request_tokens: usize,
}
