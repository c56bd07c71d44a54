//! Model options shared by every command that needs a model.

use anyhow::{bail, Context, Result};
use clap::Args;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::models;
use culturesteer_llm::openai::{HttpApi, OpenAiConfig};
pub use culturesteer_llm::spec::OpenedModel;
use culturesteer_llm::spec::{parse_experts, GgufSpec, ModelSpec};
use culturesteer_llm::ChatFormat;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ModelOpts {
    /// A named model from `model list` (fetched into the cache on first use) or a GGUF file.
    /// Without it the default model (gemma3-270m: Gemma 3 270M Q4_K_M) is used.
    #[arg(long, env = "CULTURESTEER_MODEL", conflicts_with = "model_url")]
    pub model: Option<PathBuf>,
    /// Use a model behind an OpenAI-compatible server instead of a GGUF file (vLLM, llama.cpp's
    /// server, `culturesteer serve`), e.g. http://127.0.0.1:8000/v1.
    #[arg(long, env = "CULTURESTEER_MODEL_URL")]
    pub model_url: Option<String>,
    /// Model name to request from the server (default: the only one it serves).
    #[arg(long, requires = "model_url")]
    pub model_name: Option<String>,
    /// Environment variable holding the server's API key (sent as a bearer token).
    #[arg(long, requires = "model_url", value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Most HTTP requests in flight at once (with --model-url).
    #[arg(long, default_value_t = 8)]
    pub http_concurrency: usize,
    /// Seconds one HTTP request may take before it is retried (with --model-url).
    #[arg(long, default_value_t = 300.0)]
    pub http_timeout: f64,
    /// Retries on connection errors, timeouts, 429 and 5xx, with exponential backoff.
    #[arg(long, default_value_t = 4)]
    pub http_retries: u32,
    /// Prompts per scoring request to the server (scored together, sharing prefixes).
    #[arg(long, default_value_t = 16)]
    pub http_batch: usize,
    /// Endpoints to use with --model-url: completions (token-id prompts, exact scores, echo),
    /// chat (/v1/chat/completions: for servers without a tokenizer such as OpenAI's or Ollama;
    /// answer labels are read by text, no continuation scores), or auto (completions when the
    /// server answers /tokenize, else chat).
    #[arg(long, default_value = "auto", value_parser = clap::value_parser!(HttpApi))]
    pub http_api: HttpApi,
    /// A soft prompt (from `culturesteer tune softprompt`) placed after BOS in every prompt;
    /// local GGUF models only.
    #[arg(long, value_name = "FILE", conflicts_with = "model_url")]
    pub soft_prompt: Option<PathBuf>,
    /// LoRA adapters (GGUF, made for the model) as named experts, e.g.
    /// africa=af.gguf,america=am.gguf,asia=as.gguf,europe=eu.gguf,oceania=oc.gguf: Cultural
    /// Palette's continent agents and gated meta agent use them (local GGUF models only).
    #[arg(
        long,
        value_name = "NAME=FILE,...",
        value_delimiter = ',',
        conflicts_with = "model_url"
    )]
    pub experts: Vec<String>,
    /// CPU threads (default: all cores).
    #[arg(long, env = "CULTURESTEER_THREADS")]
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
    /// Batched generation decodes the next token of all its sequences in one call (faster where
    /// several rows cost little more than one, as on GPUs; about 1.1× on 2 CPU cores); off by
    /// default because a generated text may then depend slightly on which prompts share a call.
    /// In `serve`, new requests' prompts are also evaluated in the running generations' decodes.
    #[arg(long)]
    pub parallel_generation: bool,
    /// Keep the KV cache in f32 instead of f16 (with an f32 model from `model fetch --f32`, the
    /// arithmetic of a reference implementation that dequantises the GGUF).
    #[arg(long)]
    pub kv_f32: bool,
    /// Score the prompts of a batch together in multi-sequence decode calls, sharing prefixes
    /// at any token: faster on small prompts, but log-probabilities then depend slightly on
    /// which prompts share a call, and in `serve` on what the prefix cache kept from earlier
    /// requests (off by default: results do not depend on batching).
    #[arg(long)]
    pub pack_sequences: bool,
    /// Use llama.cpp's flash attention: faster decodes of many sequences at once on CPU (the
    /// KV stays f16), but log-probabilities then differ by up to ~0.1 nats with what shares a
    /// micro-batch, so batched and single scoring disagree (off by default)
    #[arg(long)]
    pub flash_attn: bool,
    /// One KV cache for all sequences instead of one per sequence: llama.cpp then decodes the
    /// tokens of many sequences in one micro-batch (new prompts and running generations of
    /// `serve --parallel-generation` in one pass instead of several; with --pack-sequences a
    /// scoring call's whole prefix tree in one decode, each shared token stored once), but
    /// log-probabilities depend on what shares a call (llama.cpp #24962; off by default)
    #[arg(long)]
    pub kv_unified: bool,
}

fn parse_chat_format(s: &str) -> Result<ChatFormat, String> {
    s.parse()
}

impl ModelOpts {
    /// The model file to use: a named model (fetched if needed), a path, or the default model.
    pub fn resolve_path(&self) -> Result<PathBuf> {
        let r = models::resolve(self.model.as_deref(), &mut |m| eprintln!("{m}"));
        match &self.model {
            // The error names the value itself.
            Some(_) => Ok(r?),
            None => r.with_context(|| format!("default model {}", models::DEFAULT_MODEL)),
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
            parallel_generation: self.parallel_generation,
            kv_f32: self.kv_f32,
            pack_sequences: self.pack_sequences,
            flash_attention: Some(self.flash_attn),
            kv_unified: self.kv_unified,
            ..LlamaConfig::default()
        }
    }

    /// The model the options name, as the library's [`ModelSpec`] (the default model fetched
    /// if needed, the API key read from its variable, numbers checked).
    pub fn spec(&self) -> Result<ModelSpec> {
        match &self.model_url {
            Some(url) => {
                let api_key = match &self.api_key_env {
                    Some(var) => Some(std::env::var(var).with_context(|| {
                        format!("--api-key-env {var}: the variable is not set")
                    })?),
                    None => None,
                };
                if !(self.http_timeout.is_finite()
                    && self.http_timeout > 0.0
                    && self.http_timeout <= MAX_HTTP_TIMEOUT_S)
                {
                    bail!(
                        "--http-timeout must be a number of seconds in (0, {MAX_HTTP_TIMEOUT_S}]"
                    );
                }
                if self.http_batch == 0 || self.http_concurrency == 0 {
                    bail!("--http-batch and --http-concurrency must be at least 1");
                }
                Ok(ModelSpec::Http(OpenAiConfig {
                    url: url.clone(),
                    model: self.model_name.clone(),
                    api_key,
                    concurrency: self.http_concurrency,
                    timeout: Duration::from_secs_f64(self.http_timeout),
                    retries: self.http_retries,
                    batch: self.http_batch,
                    chat_format: self.chat_format.clone(),
                    api: self.http_api,
                    ..OpenAiConfig::default()
                }))
            }
            None => Ok(ModelSpec::Gguf(self.gguf_spec()?)),
        }
    }

    /// The local GGUF the options name (ignoring --model-url).
    fn gguf_spec(&self) -> Result<GgufSpec> {
        Ok(GgufSpec {
            path: self.resolve_path()?,
            config: self.config(),
            experts: parse_experts(&self.experts)?,
            soft_prompt: self.soft_prompt.clone(),
        })
    }

    /// Loads the GGUF (commands that need llama.cpp itself; with --model-url they fail).
    pub fn load(&self) -> Result<LlamaLm> {
        if let Some(url) = &self.model_url {
            bail!("this command needs a local GGUF model; --model-url {url} is only supported by eval, ablate, score, generate and serve");
        }
        if let Some(f) = &self.soft_prompt {
            bail!("--soft-prompt {}: this command measures the engine itself; soft prompts apply to eval, ablate, score, generate and serve", f.display());
        }
        if !self.experts.is_empty() {
            bail!("--experts: this command measures the engine itself; expert adapters apply to eval, ablate, score, generate, serve and bench palette");
        }
        self.load_with_experts()
    }

    /// Loads the GGUF with its `--experts` (commands that need the llama.cpp backend itself and
    /// take expert adapters, such as `bench palette`).
    pub fn load_with_experts(&self) -> Result<LlamaLm> {
        if let Some(url) = &self.model_url {
            bail!("this command needs a local GGUF model, not --model-url {url}");
        }
        if let Some(f) = &self.soft_prompt {
            bail!("--soft-prompt {}: not taken by this command", f.display());
        }
        Ok(self.gguf_spec()?.load()?)
    }

    /// Opens the model the options name, local or remote.
    pub fn open(&self) -> Result<OpenedModel> {
        Ok(self.spec()?.open()?)
    }
}

/// The longest `--http-timeout` taken (a day): larger values overflow the HTTP client's clock.
const MAX_HTTP_TIMEOUT_S: f64 = 86_400.0;
