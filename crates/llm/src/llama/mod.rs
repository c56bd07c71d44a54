//! The llama.cpp backend (through `llama-cpp-2`). All engine calls of the project live here.
//!
//! Contexts use one KV stream per sequence (`kv_unified = false`: the unified cache drifts when
//! several branches are batched, llama.cpp #24962). Shared prompt prefixes are evaluated once
//! and copied into each branch's sequence (see [`crate::plan`]); logits are requested only at the
//! positions that are read.

use crate::backend::{LanguageModel, ModelDescription};
use crate::chat::{merge_system_into_user, render_gemma, render_plain, ChatFormat};
use crate::error::{LlmError, Result};
use crate::plan::{
    schedule, tagged_groups, unique_prefix_depths, KvOp, PathSpec, Plan, Query, Read, SegId,
    Source, DEPTH_BUCKETS,
};
use crate::sampling::{argmax, log_sum_exp, sample_top_p, top_k};
use crate::types::*;
use embd::EmbeddingTable;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use raw::{Batch, Context, LoraAdapter, MixedBatch};
use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod cache;
pub mod dequant;
mod embd;
mod raw;
mod streams;

/// Settings of the llama.cpp backend.
#[derive(Debug, Clone)]
pub struct LlamaConfig {
    /// CPU threads; `None` = all available cores.
    pub threads: Option<usize>,
    /// Context length of each sequence (prompt + continuation), in tokens.
    pub ctx_per_seq: usize,
    /// Parallel sequences (branches) kept in the KV cache.
    pub n_seq: usize,
    /// Most tokens per decode call of the raw benchmark baseline (scoring and generation decode
    /// one sequence per call, cut at multiples of `n_ubatch`).
    pub n_batch: usize,
    /// Physical micro-batch size; decode calls are cut at multiples of it in absolute
    /// position, so cached and uncached evaluation see the same micro-batches.
    pub n_ubatch: usize,
    pub chat_format: ChatFormat,
    /// Evaluate shared prompt prefixes once and branch from a KV copy.
    pub prefix_reuse: bool,
    /// Prefix sharing cuts prompts only at multiples of this many tokens and never decodes
    /// fewer than this many tokens in one call (unless the whole prompt is shorter). CPU
    /// kernels quantise activations in groups of 4 rows and use other code paths for tiny
    /// batches; with block-aligned cuts every token goes through the same kernels as in an
    /// uncached run, so cached log-probs equal uncached ones bit for bit. Must divide
    /// `n_ubatch`. Default 16 (8 was not enough on AVX2 builds).
    pub prefix_block: usize,
    /// Layers to offload to a GPU (only with the `cuda` feature).
    pub gpu_layers: u32,
    /// Flash attention: `None` lets llama.cpp decide. Off by default: on CPU, llama.cpp's flash
    /// attention gives different log-probs (up to ~0.1 nats) when several sequences share a
    /// micro-batch, so batched and single scoring would disagree; without it they are equal.
    pub flash_attention: Option<bool>,
    /// Keep the KV cache in f32 instead of f16.
    pub kv_f32: bool,
    /// One KV cache shared by all sequences (prefix copies are metadata only).
    pub kv_unified: bool,
    /// Generation decodes the next token of every active sequence of a call in one decode
    /// instead of one sequence per decode (faster where several rows cost little more than one,
    /// as on GPUs; about 1.1× on 2 CPU cores, where generation is compute-bound).
    /// Off by default: llama.cpp's multi-sequence micro-batches give slightly different logits
    /// from single ones, so a generated text would depend on which prompts share its call.
    /// Streams queued with [`crate::streams::Streams::queue_streams`] then also have their
    /// prompts evaluated in the steps' decodes (co-scheduled prefill, `llama/streams.rs`).
    pub parallel_generation: bool,
    /// Scoring decodes all segments of a scheduling wave together (llama.cpp splits them into
    /// equal multi-sequence micro-batches) and shares prefixes at any token. Faster on small
    /// calls, but log-probs then depend slightly on which prompts share a call, so it is off by
    /// default: the exact mode's results do not depend on batching at all. The prefix cache
    /// then keeps packed prompts too, so a result may also depend on earlier calls.
    pub pack_sequences: bool,
    /// KV sequences kept for continuous generation ([`crate::streams`]; the server's
    /// `--slots`), beyond the `n_seq` that scoring and batch generation use. 0 = none.
    pub stream_slots: usize,
    /// KV sequences that keep whole prompts between calls ([`cache`]; the server's
    /// `--prefix-cache`): later calls load the block-aligned prefixes they share instead of
    /// decoding them. 0 = none (batch commands: their own calls share prefixes already).
    pub prefix_cache: usize,
}

impl Default for LlamaConfig {
    fn default() -> Self {
        Self {
            threads: None,
            ctx_per_seq: 1024,
            n_seq: 16,
            n_batch: 2048,
            n_ubatch: 512,
            chat_format: ChatFormat::Auto,
            prefix_reuse: true,
            prefix_block: 16,
            gpu_layers: if cfg!(feature = "cuda") { 999 } else { 0 },
            flash_attention: Some(false),
            kv_f32: false,
            kv_unified: false,
            parallel_generation: false,
            pack_sequences: false,
            stream_slots: 0,
            prefix_cache: 0,
        }
    }
}

fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp's own log lines only with CULTURESTEER_LLAMA_LOG set.
            let on = std::env::var_os("CULTURESTEER_LLAMA_LOG").is_some();
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default().with_logs_enabled(on),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Context(format!("llama.cpp backend init: {e}")))
}

/// Checks that `path` exists and starts with the GGUF magic.
pub fn check_gguf(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LlmError::ModelNotFound {
            path: path.to_path_buf(),
        },
        _ => LlmError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(LlmError::NotGguf {
            path: path.to_path_buf(),
        });
    }
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(LlmError::NotGguf {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

self_cell::self_cell!(
    struct ModelAndContext {
        owner: LlamaModel,
        #[covariant]
        dependent: Context,
    }
);

/// A GGUF model loaded with llama.cpp, ready to score and generate.
pub struct LlamaLm {
    inner: ModelAndContext,
    path: PathBuf,
    config: LlamaConfig,
    template: ResolvedFormat,
    n_vocab: usize,
    /// Totals over every score and generate call since load (benchmarks read differences).
    totals: RunStats,
    /// The token-embedding matrix in the file (soft prompts), or why it cannot be read.
    embd: std::result::Result<EmbeddingTable, String>,
    embd_std: OnceLock<f64>,
    /// Soft prompts of the current call; their rows stand in paths as [`soft_id`]s.
    soft: Vec<std::sync::Arc<SoftPrompt>>,
    /// The model's BOS token, if its prompts start with one.
    bos: Option<TokenId>,
    /// Factor the graph applies to token-embedding rows but not to embedding input.
    embd_input_scale: f32,
    /// Named LoRA adapters (Cultural Palette's experts) and their current scales.
    experts: Vec<(String, LoraAdapter)>,
    expert_scales: Vec<f32>,
    /// Open streams of continuous generation (sequences `n_seq..n_seq + stream_slots`).
    streams: streams::StreamTable,
    /// Prompts kept between calls (the sequences after the streams').
    cache: cache::PrefixCache,
}

/// The factor llama.cpp's graph applies to token rows only (`build_inp_embd`'s `tok_scale`):
/// Gemma 3 and later scale token embeddings by √d after the input select, so soft-prompt rows,
/// given in token-embedding space, get the same factor here. Older Gemmas scale every input
/// row in the graph, other architectures none.
fn embd_input_scale(arch: &str, n_embd: usize) -> f32 {
    match arch {
        "gemma3" | "gemma3n" | "gemma4" | "gemma-embedding" => (n_embd as f32).sqrt(),
        _ => 1.0,
    }
}

/// Soft-prompt rows travel through the planner as negative pseudo tokens: row `j` of the
/// call's soft prompt `s`.
const SOFT_ROWS_MAX: usize = 1 << 16;

fn soft_id(s: usize, j: usize) -> TokenId {
    TokenId(-1 - (s * SOFT_ROWS_MAX + j) as i32)
}

fn soft_of(t: TokenId) -> Option<(usize, usize)> {
    (t.0 < 0).then(|| {
        let k = (-1 - t.0) as usize;
        (k / SOFT_ROWS_MAX, k % SOFT_ROWS_MAX)
    })
}

// SAFETY: the model and context are only touched through `&mut self` (or `&self` for
// read-only vocabulary calls, which llama.cpp allows concurrently); llama.cpp objects are not
// tied to the creating thread.
unsafe impl Send for LlamaLm {}

#[derive(Debug, Clone)]
enum ResolvedFormat {
    Model(String),
    Builtin(String),
    Plain,
}

/// Most KV sequences of one llama.cpp context (`LLAMA_MAX_SEQ`).
const MAX_SEQUENCES: usize = 256;

/// Most logit rows one decode call asks for: llama.cpp's output buffer (rows × vocabulary ×
/// 4 bytes, 1 MiB a row on Gemma 3) grows to the largest call and stays that large.
const MAX_READS_PER_CALL: usize = 64;

/// What running a plan gives: each read's result, the (segment, slot) of leaves kept in the
/// cache, and the full logit rows asked for.
type PlanOutput = (
    Vec<ReadResult>,
    Vec<(usize, usize)>,
    HashMap<usize, Vec<f32>>,
);

/// Statistics of the last `score` or `generate` call.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    pub tokens_evaluated: usize,
    /// Tokens of all paths, as evaluated without any prefix sharing.
    pub tokens_requested: usize,
    /// Tokens a perfect prefix cache would evaluate (the size of the paths' token trie).
    pub tokens_unique: usize,
    /// `tokens_unique` by position ([`crate::plan::unique_prefix_depths`]).
    pub unique_by_depth: [usize; DEPTH_BUCKETS],
    pub decode_calls: usize,
    /// Tokens loaded from the prefix cache instead of decoded.
    pub tokens_loaded: usize,
}

impl RunStats {
    fn add(&mut self, o: &RunStats) {
        self.tokens_evaluated += o.tokens_evaluated;
        self.tokens_requested += o.tokens_requested;
        self.tokens_unique += o.tokens_unique;
        for (a, b) in self.unique_by_depth.iter_mut().zip(&o.unique_by_depth) {
            *a += b;
        }
        self.decode_calls += o.decode_calls;
        self.tokens_loaded += o.tokens_loaded;
    }

    /// Difference of two running totals (`self` taken after `before`).
    pub fn since(&self, before: &RunStats) -> RunStats {
        let mut d = RunStats {
            tokens_evaluated: self.tokens_evaluated - before.tokens_evaluated,
            tokens_requested: self.tokens_requested - before.tokens_requested,
            tokens_unique: self.tokens_unique - before.tokens_unique,
            decode_calls: self.decode_calls - before.decode_calls,
            tokens_loaded: self.tokens_loaded - before.tokens_loaded,
            ..Default::default()
        };
        for (i, x) in d.unique_by_depth.iter_mut().enumerate() {
            *x = self.unique_by_depth[i] - before.unique_by_depth[i];
        }
        d
    }
}

impl LlamaLm {
    /// Loads a GGUF file.
    pub fn load(path: &Path, config: LlamaConfig) -> Result<Self> {
        check_gguf(path)?;
        if config.n_seq == 0
            || config.ctx_per_seq < 8
            || config.n_batch == 0
            || config.n_ubatch == 0
            || config.threads == Some(0)
        {
            return Err(LlmError::Config(
                "threads, parallel sequences and batch sizes must be positive and the context at least 8 tokens".into(),
            ));
        }
        if config.prefix_block == 0
            || config.n_ubatch.min(config.n_batch) % config.prefix_block != 0
        {
            return Err(LlmError::Config(format!(
                "prefix block {} must divide the micro-batch size {}",
                config.prefix_block,
                config.n_ubatch.min(config.n_batch)
            )));
        }
        let backend = backend()?;
        let mparams = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
        let model = LlamaModel::load_from_file(backend, path, &mparams).map_err(|_| {
            LlmError::LoadFailed {
                path: path.to_path_buf(),
            }
        })?;
        let n_vocab = model.n_vocab().max(0) as usize;
        let arch = model
            .meta_val_str("general.architecture")
            .unwrap_or_default();
        let has_template = model.chat_template(None).is_ok();
        let template = match &config.chat_format {
            ChatFormat::Auto if has_template => ResolvedFormat::Model(String::new()),
            ChatFormat::Auto if arch.starts_with("gemma") => {
                ResolvedFormat::Builtin("gemma".into())
            }
            ChatFormat::Auto | ChatFormat::Plain => ResolvedFormat::Plain,
            ChatFormat::Template if has_template => ResolvedFormat::Model(String::new()),
            ChatFormat::Template => {
                return Err(LlmError::ChatTemplate(format!(
                "{} has no chat template; use --chat-format plain or a built-in name such as gemma",
                path.display()
            )))
            }
            ChatFormat::Builtin(n) => ResolvedFormat::Builtin(n.clone()),
        };
        let template = match template {
            ResolvedFormat::Model(_) => {
                let t = model
                    .chat_template(None)
                    .map_err(|e| LlmError::ChatTemplate(e.to_string()))?;
                ResolvedFormat::Model(
                    t.to_string()
                        .map_err(|e| LlmError::ChatTemplate(e.to_string()))?,
                )
            }
            other => other,
        };
        let threads = config.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }) as i32;
        let n_seq_all = config.n_seq + config.stream_slots + config.prefix_cache;
        if n_seq_all > MAX_SEQUENCES {
            return Err(LlmError::Config(format!(
                "{} work sequences + {} stream slots + {} prefix-cache sequences = {n_seq_all}: llama.cpp takes at most {MAX_SEQUENCES}",
                config.n_seq, config.stream_slots, config.prefix_cache
            )));
        }
        let n_ctx = (config.ctx_per_seq * n_seq_all) as u32;
        let cparams = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(config.n_batch as u32)
            .with_n_ubatch(config.n_ubatch.min(config.n_batch) as u32)
            .with_n_seq_max(n_seq_all as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_kv_unified(config.kv_unified)
            .with_type_k(if config.kv_f32 {
                llama_cpp_2::context::params::KvCacheType::F32
            } else {
                llama_cpp_2::context::params::KvCacheType::F16
            })
            .with_type_v(if config.kv_f32 {
                llama_cpp_2::context::params::KvCacheType::F32
            } else {
                llama_cpp_2::context::params::KvCacheType::F16
            })
            .with_flash_attention_policy(match config.flash_attention {
                None => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
                Some(true) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
                Some(false) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            });
        // `LlamaContextParams` is a wrapper of exactly one `llama_context_params` (transmute
        // checks the sizes at compile time).
        // SAFETY: same size, single field, plain C struct.
        let raw_params: llama_cpp_sys_2::llama_context_params =
            unsafe { std::mem::transmute(cparams) };
        let _ = backend;
        let inner = ModelAndContext::try_new(model, |m| Context::new(m, raw_params))?;
        let (config_n_seq, config_stream_slots, config_prefix_cache) =
            (config.n_seq, config.stream_slots, config.prefix_cache);
        let embd = EmbeddingTable::open(path).map_err(|e| e.to_string());
        let mut lm = Self {
            inner,
            path: path.to_path_buf(),
            config,
            template,
            n_vocab,
            totals: RunStats::default(),
            embd,
            embd_std: OnceLock::new(),
            soft: vec![],
            bos: None,
            embd_input_scale: 1.0,
            experts: Vec::new(),
            expert_scales: Vec::new(),
            streams: streams::StreamTable::default(),
            cache: cache::PrefixCache::new(config_n_seq + config_stream_slots, config_prefix_cache),
        };
        let n_embd = lm.model().n_embd().max(0) as usize;
        lm.embd_input_scale = embd_input_scale(&arch, n_embd);
        lm.bos = lm.tokenize("")?.first().copied();
        lm.warm_up()?;
        Ok(lm)
    }

    /// One throw-away decode: the very first decode of a fresh context gave slightly different
    /// logits from every later one (enough to flip seeded sampling), so results would depend
    /// on whether a call was the first.
    ///
    /// It runs on a thread of its own that ends with it. llama.cpp computes with OpenMP, and
    /// libgomp gives every thread that starts a parallel region a pool of its own workers, kept
    /// until that thread ends; once the process holds more such threads than CPUs, every
    /// barrier sleeps instead of spinning (libgomp's "throttled" wait). Loaded here, the warm-up
    /// would leave the loading thread's pool alive beside the pool of the thread that decodes
    /// afterwards (`serve`'s model thread): measured under `bench serve`, ~1,400 sleeps per
    /// second per compute thread and a fifth of the CPUs idle, where llama-server's one pool
    /// spins.
    fn warm_up(&mut self) -> Result<()> {
        std::thread::scope(|s| {
            s.spawn(|| self.warm_up_here())
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn warm_up_here(&mut self) -> Result<()> {
        let bos = self.bos.unwrap_or(TokenId(0));
        self.inner.with_dependent_mut(|_, ctx| -> Result<()> {
            let mut batch = Batch::tokens(8);
            for i in 0..2 {
                batch.add_token(bos, i, 0, i == 1)?;
            }
            ctx.decode(&mut batch)?;
            ctx.clear_kv();
            Ok(())
        })
    }

    /// Loads LoRA adapters (GGUF, made for this model) as named experts, all at scale 0 (the
    /// base model) until [`LanguageModel::set_expert_scales`].
    pub fn load_experts(&mut self, experts: &[(String, PathBuf)]) -> Result<()> {
        for (name, path) in experts {
            if self.experts.iter().any(|(n, _)| n == name) {
                return Err(LlmError::Config(format!("expert {name:?} is given twice")));
            }
            let adapter = LoraAdapter::load(self.model(), path)?;
            self.experts.push((name.clone(), adapter));
        }
        self.expert_scales = vec![0.0; self.experts.len()];
        self.apply_expert_scales()
    }

    /// Hands the adapters with a non-zero scale to the context (zero-scale ones cost compute).
    fn apply_expert_scales(&mut self) -> Result<()> {
        let on: Vec<(&LoraAdapter, f32)> = self
            .experts
            .iter()
            .zip(&self.expert_scales)
            .filter(|(_, s)| **s != 0.0)
            .map(|((_, a), s)| (a, *s))
            .collect();
        self.inner
            .with_dependent_mut(|_, ctx| ctx.set_adapters(&on))
    }

    /// Forgets what the prefix cache and the free stream sequences keep (before the whole
    /// KV cache is emptied).
    fn forget_kept_kv(&mut self) {
        self.cache.forget();
        self.streams.forget_kept();
    }

    /// What [`reset_work`] may empty: `Some(n_seq)` while streams are open, free stream
    /// sequences keep a finished stream's KV or the prefix cache holds anything.
    fn work(&self) -> Option<usize> {
        (self.streams.open() > 0 || self.streams.holds_kept() || !self.cache.is_empty())
            .then_some(self.config.n_seq)
    }

    /// The plan for `paths`: prefixes shared within the call and, with a prefix cache, loaded
    /// from the prompts it keeps (cut at any token with packed sequences).
    fn plan(&mut self, paths: &[PathSpec]) -> Plan {
        match self.sharing() {
            Some(block) if self.cache.enabled() => {
                let plan = Plan::build_with_cache(paths, &self.cache.listed(), block);
                for seq in plan.loaded.iter().flatten() {
                    self.cache.touch(*seq);
                }
                self.cache.stats.tokens_planned +=
                    paths.iter().map(|p| p.tokens.len()).sum::<usize>();
                self.cache.stats.tokens_loaded += plan.tokens_loaded();
                plan
            }
            share => Plan::build(paths, share),
        }
    }

    /// Copies the prompts held in `leaves` (segment, slot) into the prefix cache.
    fn store_leaves(&mut self, plan: &Plan, leaves: &[(usize, usize)]) {
        if !self.cache.enabled() {
            return;
        }
        for &(seg, slot) in leaves {
            let tokens = plan.path_tokens(seg);
            if let Some(seq) = self.cache.place(&tokens) {
                self.inner
                    .with_dependent_mut(|_, ctx| ctx.copy_seq(slot, seq));
                self.cache.record(seq, tokens);
            }
        }
    }

    /// The prefix cache's statistics (all zero without one).
    pub fn cache_stats(&self) -> crate::backend::PrefixCacheStats {
        self.cache.stats
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Switches prefix reuse on or off (benchmarks compare both in one process).
    /// See [`LlamaConfig::parallel_generation`].
    pub fn set_parallel_generation(&mut self, on: bool) {
        self.config.parallel_generation = on;
    }

    pub fn set_prefix_reuse(&mut self, on: bool) {
        self.config.prefix_reuse = on;
    }

    pub fn set_pack_sequences(&mut self, on: bool) {
        self.config.pack_sequences = on;
    }

    /// Prefix sharing granularity: block-aligned in the exact mode, any token when packing
    /// (exactness is given up there anyway).
    fn sharing(&self) -> Option<usize> {
        let block = if self.config.pack_sequences {
            1
        } else {
            self.config.prefix_block
        };
        self.config.prefix_reuse.then_some(block)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn model(&self) -> &LlamaModel {
        self.inner.borrow_owner()
    }

    fn to_ids(v: Vec<LlamaToken>) -> Vec<TokenId> {
        v.into_iter().map(|t| TokenId(t.0)).collect()
    }

    /// The prompt's token ids: given ones (checked against the vocabulary) or the text's.
    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<TokenId>> {
        match &prompt.tokens {
            Some(t) => {
                for &id in t {
                    self.check_token(id)?;
                }
                Ok(t.clone())
            }
            None => self.tokenize(&prompt.text),
        }
    }

    /// Puts the rows of `soft` into `tokens` right after BOS (or at the start), as pseudo
    /// tokens of this call's soft-prompt table.
    fn insert_soft(
        &mut self,
        tokens: &mut Vec<TokenId>,
        soft: &std::sync::Arc<SoftPrompt>,
    ) -> Result<()> {
        let dim = self.embedding_table()?.dim;
        if soft.dim != dim {
            return Err(LlmError::Config(format!(
                "soft prompt rows have {} values; this model's embeddings have {dim}",
                soft.dim
            )));
        }
        if soft.rows >= SOFT_ROWS_MAX {
            return Err(LlmError::Config(format!(
                "soft prompt of {} rows (at most {})",
                soft.rows,
                SOFT_ROWS_MAX - 1
            )));
        }
        let s = match self
            .soft
            .iter()
            .position(|x| std::sync::Arc::ptr_eq(x, soft) || **x == **soft)
        {
            Some(s) => s,
            None => {
                self.soft.push(soft.clone());
                self.soft.len() - 1
            }
        };
        let at = usize::from(self.bos.is_some() && tokens.first() == self.bos.as_ref());
        tokens.splice(at..at, (0..soft.rows).map(|j| soft_id(s, j)));
        Ok(())
    }

    /// The path of a prompt: its tokens with its soft prompt's rows.
    fn prompt_path(&mut self, prompt: &Prompt) -> Result<Vec<TokenId>> {
        let mut p = self.prompt_tokens(prompt)?;
        if let Some(soft) = &prompt.soft {
            self.insert_soft(&mut p, soft)?;
        }
        Ok(p)
    }

    fn embedding_table(&self) -> Result<&EmbeddingTable> {
        self.embd
            .as_ref()
            .map_err(|e| LlmError::Config(format!("soft prompts need the token embeddings: {e}")))
    }

    /// Tokenises text to append after other tokens: no BOS, special tokens recognised.
    fn tokenize_plain(&self, text: &str) -> Vec<TokenId> {
        Self::to_ids(self.model().vocab().tokenize(text.as_bytes(), false, true))
    }

    fn check_token(&self, t: TokenId) -> Result<()> {
        if t.0 < 0 || t.0 as usize >= self.n_vocab {
            return Err(LlmError::TokenOutOfRange {
                token: t.0,
                vocab: self.n_vocab,
            });
        }
        Ok(())
    }

    /// Evaluates a plan and answers its reads. With `keep_leaves`, leaf sequences stay in the
    /// cache and their slots are returned, and full logit rows are kept for reads flagged `full`.
    /// Packed scoring on one KV cache for all sequences decodes the tree by tags
    /// ([`LlamaLm::run_tagged`]); everything else in waves. The prefix-cache sequences the plan
    /// loads from are not replaced while it runs.
    fn run_plan(
        &mut self,
        plan: &Plan,
        keep_leaves: bool,
        full_rows: &[bool],
        stats: &mut RunStats,
    ) -> Result<PlanOutput> {
        let tagged = self.config.pack_sequences
            && self.config.kv_unified
            && !keep_leaves
            && self.soft.is_empty()
            && self.config.n_seq >= 2;
        self.cache.pin(plan.loaded.iter().flatten().copied());
        let out = if tagged {
            self.run_tagged(plan, full_rows, stats)
                .map(|(r, rows)| (r, Vec::new(), rows))
        } else {
            self.run_waves(plan, keep_leaves, full_rows, stats)
        };
        self.cache.unpin();
        out
    }

    /// Decodes a plan by tags ([`tagged_groups`]): each group of leaves in one decode (cut
    /// only at `n_batch`), every token once for all the sequences below it. Needs one KV cache
    /// for all sequences (`kv_unified`), where a token may belong to several.
    fn run_tagged(
        &mut self,
        plan: &Plan,
        full_rows: &[bool],
        stats: &mut RunStats,
    ) -> Result<(Vec<ReadResult>, HashMap<usize, Vec<f32>>)> {
        let (groups, holder) = tagged_groups(plan, self.config.n_seq).map_err(LlmError::Context)?;
        let n_batch = self.config.n_batch;
        let n_seq = self.config.n_seq;
        let mut reads = Reads::new(plan, full_rows, self.n_vocab);
        let work = self.work();
        let mut cache = self.cache.enabled().then_some(&mut self.cache);
        stats.tokens_loaded += plan.tokens_loaded();
        self.inner.with_dependent_mut(|_, ctx| -> Result<()> {
            reset_work(ctx, work);
            let mut batch = Batch::tagged(n_batch, n_seq);
            let mut read_rows: Vec<(usize, usize)> = Vec::new();
            let set = |ctx: &mut Context, seq: usize, src: Source| match src {
                Source::Empty => ctx.clear_seq(seq),
                Source::Holder(end) => {
                    ctx.copy_seq(holder, seq);
                    ctx.remove_from(seq, end);
                }
                Source::Loaded { seq: from, end } => {
                    ctx.copy_seq(from, seq);
                    ctx.remove_from(seq, end);
                }
            };
            for g in &groups {
                for &(slot, src) in &g.setup {
                    set(ctx, slot, src);
                }
                set(ctx, holder, g.holder);
                for (s, tags) in &g.segs {
                    let seg = &plan.segments[*s];
                    for (o, &t) in seg.tokens.iter().enumerate() {
                        if batch.len() == n_batch || read_rows.len() == MAX_READS_PER_CALL {
                            decode_and_read(ctx, &mut batch, &mut read_rows, &mut reads, stats)?;
                        }
                        let read = seg.reads.get(&o).copied();
                        batch.add_token_tagged(t, seg.start + o, tags, read.is_some())?;
                        if let Some(r) = read {
                            read_rows.push((batch.len() - 1, r));
                        }
                    }
                }
                if batch.len() > 0 {
                    decode_and_read(ctx, &mut batch, &mut read_rows, &mut reads, stats)?;
                }
                for &(leaf, slot) in &g.leaves {
                    release_leaf(ctx, plan, leaf, slot, cache.as_deref_mut());
                }
            }
            ctx.clear_seq(holder);
            Ok(())
        })?;
        reads.finish()
    }

    /// [`LlamaLm::run_plan`] in scheduling waves over the work sequences.
    fn run_waves(
        &mut self,
        plan: &Plan,
        keep_leaves: bool,
        full_rows: &[bool],
        stats: &mut RunStats,
    ) -> Result<PlanOutput> {
        let (waves, leaves) =
            schedule(plan, self.config.n_seq, keep_leaves).map_err(LlmError::Context)?;
        let n_ubatch = self.config.n_ubatch.min(self.config.n_batch);
        let block = self.config.prefix_block;
        let mut reads = Reads::new(plan, full_rows, self.n_vocab);
        let soft = self.soft.clone();
        let dim = soft.first().map_or(0, |s| s.dim);
        let scale = self.embd_input_scale;
        let mut scaled = vec![0f32; dim];
        let work = self.work();
        let mut cache = self.cache.enabled().then_some(&mut self.cache);
        self.inner.with_dependent_mut(|_, ctx| -> Result<()> {
            reset_work(ctx, work);
            let mut batch = Batch::tokens(n_ubatch);
            let mut mixed = if dim > 0 {
                Some(MixedBatch::new(ctx)?)
            } else {
                None
            };
            let pack = self.config.pack_sequences && dim == 0;
            let mut packed = if pack {
                Some(Batch::tokens(self.config.n_batch))
            } else {
                None
            };
            for w in &waves {
                for op in &w.ops {
                    let KvOp::Copy { src, dst } = *op;
                    ctx.copy_seq(src, dst);
                }
                if let Some(batch) = packed.as_mut() {
                    // All segments of the wave in as few calls as fit n_batch, ordered by
                    // slot (llama.cpp's multi-stream split wants increasing sequence ids).
                    let mut chunks = Vec::with_capacity(w.chunks.len());
                    for c in &w.chunks {
                        match plan.loaded_from(c.seg) {
                            Some(src) => load_segment(ctx, plan, c, src, stats),
                            None => chunks.push(c),
                        }
                    }
                    chunks.sort_by_key(|c| c.slot);
                    let mut read_rows: Vec<(usize, usize)> = Vec::new();
                    batch.clear();
                    for c in chunks {
                        let seg = &plan.segments[c.seg];
                        for (o, &t) in seg.tokens.iter().enumerate() {
                            if batch.len() == self.config.n_batch
                                || read_rows.len() == MAX_READS_PER_CALL
                            {
                                decode_and_read(ctx, batch, &mut read_rows, &mut reads, stats)?;
                            }
                            let read = seg.reads.get(&o).copied();
                            batch.add_token(t, seg.start + o, c.slot, read.is_some())?;
                            if let Some(r) = read {
                                read_rows.push((batch.len() - 1, r));
                            }
                        }
                    }
                    if batch.len() > 0 {
                        decode_and_read(ctx, batch, &mut read_rows, &mut reads, stats)?;
                    }
                    release_slots(ctx, plan, w, cache.as_deref_mut());
                    continue;
                }
                // One sequence per decode call, cut at multiples of n_ubatch in absolute
                // position: llama.cpp's multi-stream micro-batches give log-probs that depend
                // on how sequences were packed (up to ~0.1 nats), and CPU kernels depend on
                // the micro-batch shape; this way every token sees the shapes of an uncached
                // run. On CPU batching sequences buys only a few percent; prefix reuse is the
                // real gain.
                for c in &w.chunks {
                    let seg = &plan.segments[c.seg];
                    if let Some(src) = plan.loaded_from(c.seg) {
                        load_segment(ctx, plan, c, src, stats);
                        continue;
                    }
                    let mut off = 0;
                    while off < seg.tokens.len() {
                        let pos = seg.start + off;
                        let mut end = (seg.tokens.len()).min(off + n_ubatch - pos % n_ubatch);
                        // At most MAX_READS_PER_CALL logit rows per call (llama.cpp keeps its
                        // output buffer at the largest size ever asked: a 1,000-token echo
                        // would hold ~1 GiB for the process's life). Cut on the block grid,
                        // so the shapes stay those of an uncached run.
                        let reads_at: Vec<usize> =
                            (off..end).filter(|o| seg.reads.contains_key(o)).collect();
                        if reads_at.len() > MAX_READS_PER_CALL {
                            let over = seg.start + reads_at[MAX_READS_PER_CALL];
                            let cut = over - over % block - seg.start;
                            if cut > off {
                                end = cut;
                            }
                        }
                        let mut read_rows = Vec::new();
                        let n = if seg.tokens[off..end].iter().any(|t| soft_of(*t).is_some()) {
                            // Soft-prompt rows share the micro-batch with the tokens around
                            // them, so the shapes are those of an all-token prompt.
                            let batch = mixed.as_mut().ok_or_else(|| {
                                LlmError::Decode("soft-prompt row without a soft prompt".into())
                            })?;
                            batch.clear();
                            for o in off..end {
                                let read = seg.reads.get(&o).copied();
                                match soft_of(seg.tokens[o]) {
                                    Some((s, j)) => {
                                        for (d, x) in scaled.iter_mut().zip(soft[s].row(j)) {
                                            *d = x * scale;
                                        }
                                        batch.add_embedding(
                                            &scaled,
                                            seg.start + o,
                                            c.slot,
                                            read.is_some(),
                                        )?
                                    }
                                    None => batch.add_token(
                                        seg.tokens[o],
                                        seg.start + o,
                                        c.slot,
                                        read.is_some(),
                                    )?,
                                }
                                if let Some(r) = read {
                                    read_rows.push((batch.len() - 1, r));
                                }
                            }
                            ctx.decode_mixed(batch)?;
                            batch.len()
                        } else {
                            batch.clear();
                            for o in off..end {
                                let read = seg.reads.get(&o).copied();
                                batch.add_token(
                                    seg.tokens[o],
                                    seg.start + o,
                                    c.slot,
                                    read.is_some(),
                                )?;
                                if let Some(r) = read {
                                    read_rows.push((batch.len() - 1, r));
                                }
                            }
                            ctx.decode(&mut batch)?;
                            batch.len()
                        };
                        stats.decode_calls += 1;
                        stats.tokens_evaluated += n;
                        reads.take_all(ctx, &mut read_rows)?;
                        off = end;
                    }
                }
                release_slots(ctx, plan, w, cache.as_deref_mut());
            }
            Ok(())
        })?;
        let (results, rows) = reads.finish()?;
        Ok((results, leaves, rows))
    }

    /// Seconds one decode call takes for tokens `from..` of each sequence after tokens `..from`
    /// were decoded (untimed) into the cache: the engine's throughput at a given context depth.
    pub fn raw_decode_from(&mut self, seqs: &[Vec<TokenId>], from: usize) -> Result<f64> {
        let n_batch = self.config.n_batch;
        if seqs.len() > self.config.n_seq
            || seqs
                .iter()
                .any(|s| s.len() <= from || s.len() > self.config.ctx_per_seq)
            || seqs.iter().map(|s| s.len() - from).sum::<usize>() > n_batch
        {
            return Err(LlmError::InvalidRequest {
                index: 0,
                what: "raw benchmark batch exceeds the context settings".into(),
            });
        }
        self.forget_kept_kv();
        self.inner.with_dependent_mut(|_, ctx| -> Result<f64> {
            ctx.clear_kv();
            let mut batch = Batch::tokens(n_batch);
            for (s, toks) in seqs.iter().enumerate() {
                for (i, t) in toks[..from].iter().enumerate() {
                    if batch.len() == n_batch {
                        ctx.decode(&mut batch)?;
                        batch.clear();
                    }
                    batch.add_token(*t, i, s, false)?;
                }
            }
            if batch.len() > 0 {
                ctx.decode(&mut batch)?;
                batch.clear();
            }
            for (s, toks) in seqs.iter().enumerate() {
                for (i, t) in toks.iter().enumerate().skip(from) {
                    batch.add_token(*t, i, s, i + 1 == toks.len())?;
                }
            }
            let t0 = std::time::Instant::now();
            ctx.decode(&mut batch)?;
            let took = t0.elapsed().as_secs_f64();
            ctx.clear_kv();
            Ok(took)
        })
    }

    /// Bare engine baseline for benchmarks: decodes each token list as its own sequence in one
    /// batch (logits only at each list's last token), then `gen` greedy tokens one step at a time
    /// on the first sequence. Returns (prefill seconds, generation seconds).
    pub fn raw_decode(&mut self, seqs: &[Vec<TokenId>], gen: usize) -> Result<(f64, f64)> {
        let n_batch = self.config.n_batch;
        if seqs.len() > self.config.n_seq || seqs.iter().map(|s| s.len()).sum::<usize>() > n_batch {
            return Err(LlmError::InvalidRequest {
                index: 0,
                what: "raw benchmark batch exceeds the context settings".into(),
            });
        }
        let n_vocab = self.n_vocab;
        self.forget_kept_kv();
        self.inner
            .with_dependent_mut(|_, ctx| -> Result<(f64, f64)> {
                ctx.clear_kv();
                let mut batch = Batch::tokens(n_batch);
                for (s, toks) in seqs.iter().enumerate() {
                    for (i, t) in toks.iter().enumerate() {
                        batch.add_token(*t, i, s, i + 1 == toks.len())?;
                    }
                }
                let t0 = std::time::Instant::now();
                ctx.decode(&mut batch)?;
                let last = seqs.first().map_or(0, |s| s.len());
                let mut row = last.saturating_sub(1);
                let prefill = t0.elapsed().as_secs_f64();
                let t1 = std::time::Instant::now();
                let mut pos = last;
                for _ in 0..gen {
                    let logits = ctx.logits_ith(row)?;
                    let next = argmax(&logits[..n_vocab.min(logits.len())]);
                    batch.clear();
                    batch.add_token(TokenId(next as i32), pos, 0, true)?;
                    ctx.decode(&mut batch)?;
                    pos += 1;
                    row = 0;
                }
                let generation = t1.elapsed().as_secs_f64();
                ctx.clear_kv();
                Ok((prefill, generation))
            })
    }

    /// The `k` most likely next tokens of a read, as reported to callers.
    fn top_list(&self, r: &ReadResult, k: usize) -> Vec<TokenLogprob> {
        r.top
            .iter()
            .take(k)
            .map(|&(t, lp)| TokenLogprob {
                token: t,
                piece: self.token_piece(t),
                logprob: lp,
            })
            .collect()
    }

    /// Scores and reports engine statistics.
    pub fn score_with_stats(
        &mut self,
        requests: &[ScoreRequest],
    ) -> Result<(Vec<ScoreResult>, RunStats)> {
        let limit = self.config.ctx_per_seq;
        self.soft.clear();
        let mut paths: Vec<PathSpec> = Vec::new();
        // Per request: the prompt path (if any) and, per continuation, its path and tokens.
        struct Layout {
            prompt_path: Option<usize>,
            /// The prompt's tokens, when its per-token log-probabilities were asked for.
            echo: Option<Vec<TokenId>>,
            prompt_len: usize,
            conts: Vec<(usize, Vec<TokenId>)>,
        }
        let mut layouts = Vec::with_capacity(requests.len());
        for (i, req) in requests.iter().enumerate() {
            if req.continuations.is_empty()
                && req.next_tokens.is_empty()
                && req.top_k == 0
                && !req.prompt_logprobs
            {
                return Err(LlmError::InvalidRequest {
                    index: i,
                    what: "empty candidate list (give continuations, next tokens or top_k)".into(),
                });
            }
            for &t in &req.next_tokens {
                self.check_token(t)?;
            }
            if req.prompt.soft.is_some() && req.prompt_logprobs {
                return Err(LlmError::InvalidRequest {
                    index: i,
                    what:
                        "prompt log-probs of a prompt with a soft prompt (its rows are not tokens)"
                            .into(),
                });
            }
            let p = self.prompt_path(&req.prompt).map_err(|e| match e {
                LlmError::Config(what) => LlmError::InvalidRequest { index: i, what },
                e => e,
            })?;
            if p.is_empty() {
                return Err(LlmError::EmptyPrompt { index: i });
            }
            if p.len() > limit {
                return Err(LlmError::PromptTooLong {
                    index: i,
                    tokens: p.len(),
                    limit,
                });
            }
            let prompt_len = p.len();
            let mut layout = Layout {
                prompt_path: None,
                echo: None,
                prompt_len,
                conts: vec![],
            };
            let wants_next = !req.next_tokens.is_empty() || req.top_k > 0;
            if wants_next || (req.prompt_logprobs && p.len() > 1) {
                let mut queries: Vec<Query> = Vec::new();
                if req.prompt_logprobs {
                    queries.extend((0..p.len() - 1).map(|at| Query {
                        at,
                        tokens: vec![p[at + 1]],
                        top_k: req.prompt_top_k,
                    }));
                    layout.echo = Some(p.clone());
                }
                let mut tokens = p.clone();
                if wants_next {
                    queries.push(Query {
                        at: p.len() - 1,
                        tokens: req.next_tokens.clone(),
                        top_k: req.top_k,
                    });
                } else {
                    // Only the prompt's own tokens are read: the last one is never attended to.
                    tokens.pop();
                }
                paths.push(PathSpec { tokens, queries });
                layout.prompt_path = Some(paths.len() - 1);
            } else if req.prompt_logprobs {
                layout.echo = Some(p.clone());
            }
            for c in &req.continuations {
                let full = match &req.prompt.tokens {
                    Some(_) => [p.as_slice(), &self.tokenize_plain(c)].concat(),
                    None => {
                        let mut full = self.tokenize(&format!("{}{}", req.prompt.text, c))?;
                        if let Some(soft) = &req.prompt.soft {
                            self.insert_soft(&mut full, soft)?;
                        }
                        full
                    }
                };
                let lcp = p.iter().zip(&full).take_while(|(a, b)| a == b).count();
                if lcp == full.len() || lcp == 0 {
                    return Err(LlmError::InvalidRequest {
                        index: i,
                        what: format!("continuation {c:?} adds no scorable token"),
                    });
                }
                if full.len() > limit {
                    return Err(LlmError::PromptTooLong {
                        index: i,
                        tokens: full.len(),
                        limit,
                    });
                }
                let queries = (lcp - 1..full.len() - 1)
                    .map(|at| Query {
                        at,
                        tokens: vec![full[at + 1]],
                        top_k: 0,
                    })
                    .collect();
                let cont_tokens = full[lcp..].to_vec();
                // The last token is only predicted, never attended to: no need to decode it.
                let n = full.len() - 1;
                paths.push(PathSpec {
                    tokens: full[..n].to_vec(),
                    queries,
                });
                layout.conts.push((paths.len() - 1, cont_tokens));
            }
            layouts.push(layout);
        }
        let plan = self.plan(&paths);
        let mut stats = RunStats {
            tokens_requested: paths.iter().map(|p| p.tokens.len()).sum(),
            unique_by_depth: unique_prefix_depths(
                &paths
                    .iter()
                    .map(|p| p.tokens.as_slice())
                    .collect::<Vec<_>>(),
            ),
            ..Default::default()
        };
        stats.tokens_unique = stats.unique_by_depth.iter().sum();
        let (reads, _, _) = self.run_plan(&plan, false, &[], &mut stats)?;
        let mut out = Vec::with_capacity(requests.len());
        for (req, layout) in requests.iter().zip(layouts) {
            let mut res = ScoreResult {
                prompt_tokens: layout.prompt_len,
                ..Default::default()
            };
            let n_echo = layout.echo.as_ref().map_or(0, |p| p.len() - 1);
            if let Some(pi) = layout.prompt_path {
                let reads_of_path = &plan.path_reads[pi];
                if let Some(p) = &layout.echo {
                    res.prompt_token_logprobs = reads_of_path[..n_echo]
                        .iter()
                        .zip(&p[1..])
                        .map(|(&r, &t)| reads[r].logprob(t))
                        .collect();
                    if req.prompt_top_k > 0 {
                        res.prompt_top_logprobs = reads_of_path[..n_echo]
                            .iter()
                            .map(|&r| self.top_list(&reads[r], req.prompt_top_k))
                            .collect();
                    }
                }
                if let Some(&last) = reads_of_path.get(n_echo) {
                    let r = &reads[last];
                    res.next_token_logprobs =
                        req.next_tokens.iter().map(|t| r.logprob(*t)).collect();
                    res.top_k = self.top_list(r, req.top_k);
                }
            }
            if let Some(p) = layout.echo {
                res.prompt_token_ids = p;
            }
            for ((pi, toks), text) in layout.conts.into_iter().zip(&req.continuations) {
                let lps: Vec<f64> = plan.path_reads[pi]
                    .iter()
                    .zip(&toks)
                    .map(|(&r, &t)| reads[r].logprob(t))
                    .collect();
                res.continuations.push(ContinuationScore {
                    text: text.clone(),
                    tokens: toks,
                    logprob: lps.iter().sum(),
                    token_logprobs: lps,
                });
            }
            out.push(res);
        }
        self.totals.add(&stats);
        Ok((out, stats))
    }

    /// Totals over every score and generate call since the model was loaded.
    pub fn totals(&self) -> RunStats {
        self.totals
    }

    /// The checked prompt paths of generation requests (this call's soft-prompt table reset).
    fn generation_prompts(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Vec<TokenId>>> {
        let limit = self.config.ctx_per_seq;
        self.soft.clear();
        let mut prompts = Vec::with_capacity(requests.len());
        for (i, req) in requests.iter().enumerate() {
            if let Sampling::Seeded {
                temperature, top_p, ..
            } = req.sampling
            {
                if !(temperature.is_finite() && temperature >= 0.0)
                    || !(top_p > 0.0 && top_p <= 1.0)
                {
                    return Err(LlmError::InvalidRequest { index: i, what: format!("temperature must be ≥ 0 and top_p in (0, 1], got {temperature} and {top_p}") });
                }
            }
            let p = self.prompt_path(&req.prompt)?;
            if p.is_empty() {
                return Err(LlmError::EmptyPrompt { index: i });
            }
            if p.len() >= limit {
                return Err(LlmError::PromptTooLong {
                    index: i,
                    tokens: p.len(),
                    limit,
                });
            }
            prompts.push(p);
        }
        Ok(prompts)
    }

    /// Generates and reports engine statistics.
    pub fn generate_with_stats(
        &mut self,
        requests: &[GenerateRequest],
    ) -> Result<(Vec<Generation>, RunStats)> {
        let prompts = self.generation_prompts(requests)?;
        let mut stats = RunStats::default();
        let mut out = Vec::with_capacity(requests.len());
        let chunk = (self.config.n_seq / 2).max(1);
        for (c0, reqs) in requests.chunks(chunk).enumerate() {
            let base = c0 * chunk;
            let chunk_prompts = &prompts[base..base + reqs.len()];
            out.extend(self.generate_chunk(reqs, chunk_prompts, &mut stats, None, None)?);
        }
        self.totals.add(&stats);
        Ok((out, stats))
    }

    /// Generates one chunk of requests. With `sink`, each request's new text is passed on as it
    /// is produced (request index, text); the sink returning `false` ends that request early.
    ///
    /// With `follow`, each request's follow-up is scored on top of the sequence the generation
    /// left in the KV cache (see [`FollowUps`]).
    /// One KV sequence per request: the first request on a plan leaf takes the leaf's slot,
    /// the others get copies. Returns (slot per request, (src, dst) copies, slots in use).
    fn generation_slots(
        &self,
        plan: &Plan,
        leaves: &[(usize, usize)],
        n_requests: usize,
    ) -> Result<(Vec<usize>, Vec<(usize, usize)>, Vec<bool>)> {
        let leaf_slot: HashMap<usize, usize> = leaves.iter().copied().collect();
        let mut used: Vec<bool> = vec![false; self.config.n_seq];
        for &(_, s) in leaves {
            used[s] = true;
        }
        let mut taken: HashSet<usize> = HashSet::new();
        let mut slots = Vec::with_capacity(n_requests);
        let mut copies = Vec::new();
        for pi in 0..n_requests {
            let leaf = plan.path_leaf[pi];
            let src = leaf_slot[&leaf];
            if taken.insert(leaf) {
                slots.push(src);
            } else {
                let dst = used.iter().position(|u| !u).ok_or_else(|| {
                    LlmError::Context("out of sequences for duplicate prompts".into())
                })?;
                used[dst] = true;
                copies.push((src, dst));
                slots.push(dst);
            }
        }
        Ok((slots, copies, used))
    }

    fn generate_chunk(
        &mut self,
        reqs: &[GenerateRequest],
        prompts: &[Vec<TokenId>],
        stats: &mut RunStats,
        mut sink: Option<&mut dyn FnMut(usize, &str) -> bool>,
        follow: Option<&mut FollowUps<'_>>,
    ) -> Result<Vec<Generation>> {
        let keep = follow.is_some();
        let paths = generation_paths(prompts);
        let plan = self.plan(&paths);
        let full = vec![true; plan.reads.len()];
        stats.tokens_requested += paths.iter().map(|p| p.tokens.len()).sum::<usize>();
        let (_, leaves, rows) = self.run_plan(&plan, true, &full, stats)?;
        self.store_leaves(&plan, &leaves);
        let (slots, copies, used) = self.generation_slots(&plan, &leaves, reqs.len())?;
        let n_vocab = self.n_vocab;
        let limit = self.config.ctx_per_seq;
        let n_batch = self.config.n_batch;
        let parallel = self.config.parallel_generation;
        let mut states: Vec<GenState> = reqs
            .iter()
            .zip(prompts)
            .map(|(r, p)| GenState::new(r, p.len()))
            .collect();
        let mut current: Vec<Vec<f32>> = (0..reqs.len())
            .map(|pi| rows[&plan.path_reads[pi][0]].clone())
            .collect();
        self.inner.with_dependent_mut(|model, ctx| -> Result<()> {
            for &(src, dst) in &copies {
                ctx.copy_seq(src, dst);
            }
            let vocab = model.vocab();
            let mut batch = Batch::tokens(n_batch.max(reqs.len()));
            loop {
                batch.clear();
                let mut active = Vec::new();
                for (i, st) in states.iter_mut().enumerate() {
                    if st.done.is_some() {
                        continue;
                    }
                    let logits = &current[i][..n_vocab.min(current[i].len())];
                    let sink = sink.as_mut().map(|f| {
                        let f: &mut dyn FnMut(usize, &str) -> bool = &mut **f;
                        f
                    });
                    if let Some(tok) = st.advance(&reqs[i], i, logits, &vocab, limit, sink) {
                        active.push((i, tok, st.pos));
                        st.pos += 1;
                    }
                }
                if active.is_empty() {
                    break;
                }
                decode_next(
                    ctx,
                    &mut batch,
                    &active,
                    &slots,
                    parallel,
                    &mut current,
                    stats,
                )?;
            }
            if !keep {
                for s in 0..used.len() {
                    ctx.clear_seq(s);
                }
            }
            Ok(())
        })?;
        let kv_lens: Vec<usize> = states.iter().map(|st| st.pos).collect();
        let gens: Vec<Generation> = states
            .into_iter()
            .zip(prompts)
            .enumerate()
            .map(|(i, (st, p))| {
                let (g, rest) = st.finish(p.len());
                if let Some(sink) = sink.as_mut() {
                    if !rest.is_empty() {
                        sink(i, &rest);
                    }
                }
                g
            })
            .collect();
        if let Some(f) = follow {
            let result = self.follow_up(f, &gens, prompts, &kv_lens, &slots, stats);
            let n_seq = used.len();
            self.inner.with_dependent_mut(|_, ctx| {
                for s in 0..n_seq {
                    ctx.clear_seq(s);
                }
            });
            result?;
        }
        Ok(gens)
    }

    /// Scores each generation's follow-up: where its tokens extend what the sequence holds
    /// (prompt + the generated tokens decoded so far), only the new tokens are decoded on that
    /// sequence, in micro-batches cut at multiples of `n_ubatch` in absolute position; any
    /// other follow-up is left for a scoring call from scratch.
    fn follow_up(
        &mut self,
        f: &mut FollowUps<'_>,
        gens: &[Generation],
        prompts: &[Vec<TokenId>],
        kv_lens: &[usize],
        slots: &[usize],
        stats: &mut RunStats,
    ) -> Result<()> {
        let n_ubatch = self.config.n_ubatch.min(self.config.n_batch);
        let limit = self.config.ctx_per_seq;
        for (i, g) in gens.iter().enumerate() {
            let index = f.base + i;
            let req = (f.make)(index, g)?;
            if !req.continuations.is_empty()
                || req.prompt_logprobs
                || (req.next_tokens.is_empty() && req.top_k == 0)
            {
                return Err(LlmError::InvalidRequest {
                    index,
                    what: "a follow-up reads next tokens or top-k only".into(),
                });
            }
            for &t in &req.next_tokens {
                self.check_token(t)?;
            }
            let toks = self.prompt_path(&req.prompt)?;
            let kv: Vec<TokenId> = prompts[i]
                .iter()
                .chain(&g.tokens[..kv_lens[i] - prompts[i].len()])
                .copied()
                .collect();
            let extends = toks.len() > kv.len()
                && toks.len() <= limit
                && toks[..kv.len()] == kv[..]
                && toks[kv.len()..].iter().all(|t| soft_of(*t).is_none());
            if !extends {
                f.fallback.push((index, req));
                continue;
            }
            let rest = &toks[kv.len()..];
            let read = Read {
                tokens: req.next_tokens.clone(),
                top_k: req.top_k,
            };
            let slot = slots[i];
            let r = self
                .inner
                .with_dependent_mut(|_, ctx| -> Result<ReadResult> {
                    let mut batch = Batch::tokens(n_ubatch);
                    let mut off = 0;
                    loop {
                        let pos = kv.len() + off;
                        let end = rest.len().min(off + n_ubatch - pos % n_ubatch);
                        batch.clear();
                        for (j, &t) in rest[off..end].iter().enumerate() {
                            batch.add_token(t, pos + j, slot, off + j + 1 == rest.len())?;
                        }
                        ctx.decode(&mut batch)?;
                        stats.decode_calls += 1;
                        if end == rest.len() {
                            return Ok(ReadResult::extract(ctx.logits_ith(end - off - 1)?, &read));
                        }
                        off = end;
                    }
                })?;
            stats.tokens_requested += toks.len();
            stats.tokens_evaluated += rest.len();
            f.reused += kv.len();
            let res = ScoreResult {
                prompt_tokens: toks.len(),
                next_token_logprobs: req.next_tokens.iter().map(|t| r.logprob(*t)).collect(),
                top_k: self.top_list(&r, req.top_k),
                ..Default::default()
            };
            f.results.insert(index, res);
        }
        Ok(())
    }

    /// [`LanguageModel::generate_then_score`] with engine statistics and the number of
    /// follow-up tokens read from the generation's KV cache instead of decoded again.
    pub fn generate_then_score_with_stats(
        &mut self,
        requests: &[GenerateRequest],
        follow: &mut dyn FnMut(usize, &Generation) -> Result<ScoreRequest>,
    ) -> Result<(Followed, RunStats, usize)> {
        let prompts = self.generation_prompts(requests)?;
        let mut stats = RunStats::default();
        let mut f = FollowUps {
            base: 0,
            make: follow,
            results: HashMap::new(),
            fallback: vec![],
            reused: 0,
        };
        let mut gens = Vec::with_capacity(requests.len());
        let chunk = (self.config.n_seq / 2).max(1);
        for (c0, reqs) in requests.chunks(chunk).enumerate() {
            f.base = c0 * chunk;
            let chunk_prompts = &prompts[f.base..f.base + reqs.len()];
            gens.extend(self.generate_chunk(
                reqs,
                chunk_prompts,
                &mut stats,
                None,
                Some(&mut f),
            )?);
        }
        self.totals.add(&stats);
        let (fallback_idx, fallback_reqs): (Vec<usize>, Vec<ScoreRequest>) =
            std::mem::take(&mut f.fallback).into_iter().unzip();
        if !fallback_reqs.is_empty() {
            let (scores, st) = self.score_with_stats(&fallback_reqs)?;
            stats.add(&st);
            f.results.extend(fallback_idx.into_iter().zip(scores));
        }
        let out = gens
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                f.results
                    .remove(&i)
                    .map(|r| (g, r))
                    .ok_or_else(|| LlmError::InvalidRequest {
                        index: i,
                        what: "no follow-up score was made for this generation".into(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((out, stats, f.reused))
    }
}

/// Generations with the scores of their follow-ups.
type Followed = Vec<(Generation, ScoreResult)>;

/// Follow-ups of a generation call (`generate_then_score`): how to make each, and what came of
/// them.
struct FollowUps<'a> {
    /// Index of the chunk's first request in the whole call.
    base: usize,
    make: &'a mut dyn FnMut(usize, &Generation) -> Result<ScoreRequest>,
    results: HashMap<usize, ScoreResult>,
    /// Follow-ups that do not extend their generation's sequence, scored afterwards.
    fallback: Vec<(usize, ScoreRequest)>,
    /// Tokens not decoded again thanks to the kept sequences.
    reused: usize,
}

/// How many leading bytes of generated text can be streamed: complete UTF-8 characters only,
/// and never a tail that could still grow into a stop string.
fn streamable_len(bytes: &[u8], stop: &[String]) -> usize {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s.len(),
        Err(e) => e.valid_up_to(),
    };
    let text = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let mut hold = 0;
    for s in stop.iter().filter(|s| !s.is_empty()) {
        for (k, _) in s.char_indices().skip(1) {
            if text.ends_with(&s[..k]) {
                hold = hold.max(k);
            }
        }
    }
    valid - hold
}

/// What was read from one logit row.
#[derive(Debug, Clone)]
struct ReadResult {
    tokens: Vec<(TokenId, f64)>,
    top: Vec<(TokenId, f64)>,
}

impl ReadResult {
    fn extract(logits: &[f32], read: &Read) -> Self {
        let lse = log_sum_exp(logits);
        let lp = |t: usize| logits.get(t).map_or(f64::NEG_INFINITY, |&z| z as f64 - lse);
        ReadResult {
            tokens: read.tokens.iter().map(|&t| (t, lp(t.0 as usize))).collect(),
            top: top_k(logits, read.top_k)
                .into_iter()
                .map(|i| (TokenId(i as i32), lp(i)))
                .collect(),
        }
    }

    fn logprob(&self, t: TokenId) -> f64 {
        self.tokens
            .iter()
            .find(|(x, _)| *x == t)
            .map_or(f64::NEG_INFINITY, |p| p.1)
    }
}

impl LanguageModel for LlamaLm {
    fn describe(&self) -> ModelDescription {
        let m = self.model();
        ModelDescription {
            backend: "llama.cpp".into(),
            source: crate::fetch::display_path(&self.path),
            architecture: m.meta_val_str("general.architecture").ok(),
            parameters: Some(m.n_params()),
            context_train: Some(m.n_ctx_train()),
            vocab_size: Some(self.n_vocab),
            embedding_size: Some(m.n_embd().max(0) as usize),
            layers: Some(m.n_layer()),
            has_chat_template: m.chat_template(None).is_ok(),
            chat_format: match &self.template {
                ResolvedFormat::Model(_) => "template".into(),
                ResolvedFormat::Builtin(n) => format!("builtin:{n}"),
                ResolvedFormat::Plain => "plain".into(),
            },
        }
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        let (tmpl, msgs) = match &self.template {
            ResolvedFormat::Plain => return Ok(Prompt::from(render_plain(messages))),
            ResolvedFormat::Model(t) => (LlamaChatTemplate::new(t), messages.to_vec()),
            // Gemma's turns are rendered by us, verbatim (see `render_gemma`).
            ResolvedFormat::Builtin(n) if n == "gemma" => {
                return Ok(Prompt::from(render_gemma(messages)))
            }
            // Other built-in formats: merge system turns ourselves so the rule is the same everywhere.
            ResolvedFormat::Builtin(n) if n.starts_with("gemma") => {
                (LlamaChatTemplate::new(n), merge_system_into_user(messages))
            }
            ResolvedFormat::Builtin(n) => (LlamaChatTemplate::new(n), messages.to_vec()),
        };
        let tmpl = tmpl.map_err(|e| LlmError::ChatTemplate(e.to_string()))?;
        let chat = msgs
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| LlmError::ChatTemplate(e.to_string()))?;
        let text = self
            .model()
            .apply_chat_template(&tmpl, &chat, true)
            .map_err(|e| {
                LlmError::ChatTemplate(format!("{e} (try --chat-format plain or a built-in name)"))
            })?;
        Ok(Prompt::from(text))
    }

    fn tokenize(&self, text: &str) -> Result<Vec<TokenId>> {
        let vocab = self.model().vocab();
        Ok(Self::to_ids(vocab.tokenize(text.as_bytes(), true, true)))
    }

    fn token_piece(&self, token: TokenId) -> String {
        if token.0 < 0 || token.0 as usize >= self.n_vocab {
            return String::new();
        }
        String::from_utf8_lossy(&self.model().vocab().token_to_piece(
            LlamaToken(token.0),
            true,
            None,
        ))
        .to_string()
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        self.score_with_stats(requests).map(|r| r.0)
    }

    fn generate(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Generation>> {
        self.generate_with_stats(requests).map(|r| r.0)
    }

    fn token_embeddings(&self, tokens: &[TokenId]) -> Result<SoftPrompt> {
        self.embedding_table()?.rows_of(tokens)
    }

    fn input_embedding_std(&self) -> Result<f64> {
        if let Some(v) = self.embd_std.get() {
            return Ok(*v);
        }
        let v = self.embedding_table()?.std()?;
        Ok(*self.embd_std.get_or_init(|| v))
    }

    fn generate_then_score(
        &mut self,
        requests: &[GenerateRequest],
        follow: &mut dyn FnMut(usize, &Generation) -> Result<ScoreRequest>,
    ) -> Result<Vec<(Generation, ScoreResult)>> {
        self.generate_then_score_with_stats(requests, follow)
            .map(|r| r.0)
    }

    fn experts(&self) -> Vec<String> {
        self.experts.iter().map(|(n, _)| n.clone()).collect()
    }

    fn set_expert_scales(&mut self, scales: &[f32]) -> Result<()> {
        if scales.len() != self.experts.len() {
            return Err(LlmError::Config(format!(
                "{} expert scales for {} loaded experts",
                scales.len(),
                self.experts.len()
            )));
        }
        if let Some(s) = scales.iter().find(|s| !s.is_finite()) {
            return Err(LlmError::Config(format!("expert scale {s} is not finite")));
        }
        if scales != self.expert_scales.as_slice() {
            self.expert_scales = scales.to_vec();
            self.apply_expert_scales()?;
            // Kept prompts were evaluated under the old scales.
            let mut seqs = self.cache.forget();
            seqs.extend(self.streams.forget_kept());
            self.inner.with_dependent_mut(|_, ctx| {
                for s in seqs {
                    ctx.clear_seq(s);
                }
            });
        }
        Ok(())
    }

    /// Decodes each prompt alone in pieces of 16 tokens with every token's output on (a
    /// larger piece would make llama.cpp keep logits rows for all its tokens) and averages
    /// the hidden states after BOS.
    fn hidden_states(&mut self, prompts: &[Prompt]) -> Result<Vec<Vec<f32>>> {
        const PIECE: usize = 16;
        let n_embd = self.model().n_embd().max(0) as usize;
        let mut out = Vec::with_capacity(prompts.len());
        for (index, p) in prompts.iter().enumerate() {
            if p.soft.is_some() {
                return Err(LlmError::InvalidRequest {
                    index,
                    what: "hidden states are taken of token prompts only, not of soft prompts"
                        .into(),
                });
            }
            let toks = self.prompt_tokens(p)?;
            let skip = usize::from(self.bos.is_some() && toks.first() == self.bos.as_ref());
            if toks.len() <= skip {
                return Err(LlmError::EmptyPrompt { index });
            }
            if toks.len() > self.config.ctx_per_seq {
                return Err(LlmError::PromptTooLong {
                    index,
                    tokens: toks.len(),
                    limit: self.config.ctx_per_seq,
                });
            }
            let work = self.work();
            let mean = self
                .inner
                .with_dependent_mut(|_, ctx| -> Result<Vec<f32>> {
                    reset_work(ctx, work);
                    ctx.set_embeddings(true);
                    let run = (|| -> Result<Vec<f32>> {
                        let mut sum = vec![0f64; n_embd];
                        let mut batch = Batch::tokens(PIECE);
                        for (k, piece) in toks.chunks(PIECE).enumerate() {
                            batch.clear();
                            for (j, &t) in piece.iter().enumerate() {
                                batch.add_token(t, k * PIECE + j, 0, k * PIECE + j >= skip)?;
                            }
                            ctx.decode(&mut batch)?;
                            for j in 0..piece.len() {
                                if k * PIECE + j >= skip {
                                    for (s, v) in sum.iter_mut().zip(ctx.embeddings_ith(j, n_embd)?)
                                    {
                                        *s += f64::from(*v);
                                    }
                                }
                            }
                        }
                        let n = (toks.len() - skip) as f64;
                        Ok(sum.into_iter().map(|s| (s / n) as f32).collect())
                    })();
                    ctx.set_embeddings(false);
                    reset_work(ctx, work);
                    run
                })?;
            out.push(mean);
        }
        Ok(out)
    }

    fn prefix_cache(&self) -> Option<crate::backend::PrefixCacheStats> {
        self.cache.enabled().then_some(self.cache.stats)
    }

    fn streams(&mut self) -> Option<&mut dyn crate::streams::Streams> {
        if self.config.stream_slots > 0 {
            Some(self)
        } else {
            None
        }
    }

    fn generate_stream(
        &mut self,
        request: &GenerateRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let reqs = std::slice::from_ref(request);
        self.soft.clear();
        let p = self.prompt_path(&request.prompt)?;
        if p.is_empty() {
            return Err(LlmError::EmptyPrompt { index: 0 });
        }
        if p.len() >= self.config.ctx_per_seq {
            return Err(LlmError::PromptTooLong {
                index: 0,
                tokens: p.len(),
                limit: self.config.ctx_per_seq,
            });
        }
        let mut stats = RunStats::default();
        let mut sink = |_: usize, t: &str| on_text(t);
        let mut out = self.generate_chunk(reqs, &[p], &mut stats, Some(&mut sink), None)?;
        self.totals.add(&stats);
        out.pop()
            .ok_or_else(|| LlmError::Decode("no generation produced".into()))
    }
}

/// Renders chat messages with one of llama.cpp's built-in chat formats by name (`gemma`,
/// `chatml`, `llama3`, …) without loading a model: the HTTP backend uses this when the server
/// cannot apply its own template. Gemma-family formats get system turns merged into the first
/// user turn, as [`LlamaLm::chat_prompt`] does.
pub fn apply_builtin_template(name: &str, messages: &[ChatMessage]) -> Result<String> {
    use std::ffi::CString;
    let msgs = if name.starts_with("gemma") {
        merge_system_into_user(messages)
    } else {
        messages.to_vec()
    };
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| LlmError::ChatTemplate("a message contains a NUL byte".into()))
    };
    let tmpl = cstr(name)?;
    let owned = msgs
        .iter()
        .map(|m| Ok((cstr(m.role.as_str())?, cstr(&m.content)?)))
        .collect::<Result<Vec<_>>>()?;
    let raw: Vec<llama_cpp_sys_2::llama_chat_message> = owned
        .iter()
        .map(|(r, c)| llama_cpp_sys_2::llama_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect();
    let mut cap = 256 + msgs.iter().map(|m| m.content.len() * 2 + 64).sum::<usize>();
    for _ in 0..2 {
        let mut buf = vec![0u8; cap];
        // SAFETY: every pointer refers to a NUL-terminated string owned by `owned`/`tmpl`, alive
        // for the call; `buf` has `cap` writable bytes and llama.cpp writes at most that many.
        let n = unsafe {
            llama_cpp_sys_2::llama_chat_apply_template(
                tmpl.as_ptr(),
                raw.as_ptr(),
                raw.len(),
                true,
                buf.as_mut_ptr().cast(),
                cap as i32,
            )
        };
        if n < 0 {
            return Err(LlmError::ChatTemplate(format!(
                "{name:?} is not a llama.cpp built-in chat format"
            )));
        }
        let n = n as usize;
        if n <= cap {
            buf.truncate(n);
            return String::from_utf8(buf)
                .map_err(|_| LlmError::ChatTemplate("template output is not UTF-8".into()));
        }
        cap = n;
    }
    Err(LlmError::ChatTemplate(
        "template output kept growing".into(),
    ))
}

/// One request's generation in progress.
struct GenState {
    rng: ChaCha20Rng,
    bytes: Vec<u8>,
    tokens: Vec<TokenId>,
    /// Position of the next token in its sequence.
    pos: usize,
    done: Option<FinishReason>,
    /// Where a stop string cut the text.
    text_len: Option<usize>,
    /// Bytes of text already passed to the sink.
    sent: usize,
}

impl GenState {
    fn new(req: &GenerateRequest, prompt_len: usize) -> Self {
        GenState {
            rng: ChaCha20Rng::seed_from_u64(match req.sampling {
                Sampling::Seeded { seed, .. } => seed,
                Sampling::Greedy => 0,
            }),
            bytes: vec![],
            tokens: vec![],
            pos: prompt_len,
            done: (req.max_tokens == 0).then_some(FinishReason::Length),
            text_len: None,
            sent: 0,
        }
    }

    /// Picks the next token from `logits` and appends it; checks end of generation, stop
    /// strings, the sink (streaming: `false` ends the request) and the length limits. Returns
    /// the token when it must be decoded for the following step.
    fn advance(
        &mut self,
        req: &GenerateRequest,
        index: usize,
        logits: &[f32],
        vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
        limit: usize,
        sink: Option<&mut dyn FnMut(usize, &str) -> bool>,
    ) -> Option<LlamaToken> {
        let idx = match req.sampling {
            Sampling::Greedy => argmax(logits),
            Sampling::Seeded {
                temperature, top_p, ..
            } => sample_top_p(logits, temperature, top_p, &mut self.rng),
        };
        let tok = LlamaToken(idx as i32);
        if vocab.is_eog(tok) {
            self.done = Some(FinishReason::Stop);
            return None;
        }
        self.tokens.push(TokenId(tok.0));
        self.bytes.extend(vocab.token_to_piece(tok, false, None));
        let text = String::from_utf8_lossy(&self.bytes);
        if let Some(cut) = req
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            self.text_len = Some(cut);
            self.done = Some(FinishReason::Stop);
            return None;
        }
        if let Some(sink) = sink {
            let ready = streamable_len(&self.bytes, &req.stop);
            if ready > self.sent {
                let piece = std::str::from_utf8(&self.bytes[self.sent..ready]).unwrap_or_default();
                self.sent = ready;
                if !sink(index, piece) {
                    self.done = Some(FinishReason::Stop);
                    return None;
                }
            }
        }
        if self.tokens.len() >= req.max_tokens || self.pos + 1 >= limit {
            self.done = Some(FinishReason::Length);
            return None;
        }
        Some(tok)
    }
}

impl GenState {
    /// The finished generation, and the text not yet passed to a sink.
    fn finish(self, prompt_len: usize) -> (Generation, String) {
        let mut text = String::from_utf8_lossy(&self.bytes).to_string();
        if let Some(n) = self.text_len {
            text.truncate(n);
        }
        let rest = text
            .get(self.sent.min(text.len())..)
            .unwrap_or_default()
            .to_string();
        let g = Generation {
            text,
            tokens: self.tokens,
            prompt_tokens: prompt_len,
            finish_reason: self.done.unwrap_or(FinishReason::Length),
        };
        (g, rest)
    }
}

/// Decodes the next token of every active request (index, token, position) and keeps each
/// one's logits: all in one call with `parallel` (faster, but a sequence's logits then depend
/// slightly on which others share the call), else one sequence per call (see `run_plan`:
/// multi-stream micro-batches are not exact on this llama.cpp build).
fn decode_next(
    ctx: &mut Context,
    batch: &mut Batch,
    active: &[(usize, LlamaToken, usize)],
    slots: &[usize],
    parallel: bool,
    current: &mut [Vec<f32>],
    stats: &mut RunStats,
) -> Result<()> {
    if parallel {
        batch.clear();
        for &(i, tok, pos) in active {
            batch.add_token(TokenId(tok.0), pos, slots[i], true)?;
        }
        ctx.decode(batch)?;
        stats.decode_calls += 1;
        stats.tokens_evaluated += active.len();
        for (k, &(i, _, _)) in active.iter().enumerate() {
            current[i] = ctx.logits_ith(k)?.to_vec();
        }
    } else {
        for &(i, tok, pos) in active {
            batch.clear();
            batch.add_token(TokenId(tok.0), pos, slots[i], true)?;
            ctx.decode(batch)?;
            stats.decode_calls += 1;
            stats.tokens_evaluated += 1;
            current[i] = ctx.logits_ith(0)?.to_vec();
        }
    }
    Ok(())
}

/// The paths of generation prompts: each read at its last token (the first token's logits).
fn generation_paths(prompts: &[Vec<TokenId>]) -> Vec<PathSpec> {
    prompts
        .iter()
        .map(|p| PathSpec {
            tokens: p.clone(),
            queries: vec![Query {
                at: p.len() - 1,
                tokens: vec![],
                top_k: 0,
            }],
        })
        .collect()
}

/// Empties the sequences that scoring and batch generation use. With streams open
/// (`keep_streams` = the number of work sequences) only those are emptied; otherwise the whole
/// cache, data included, as before streams existed.
fn reset_work(ctx: &mut Context, keep_streams: Option<usize>) {
    match keep_streams {
        None => ctx.clear_kv(),
        Some(n) => {
            for s in 0..n {
                ctx.clear_seq(s);
            }
        }
    }
}

/// The prefix cache holds chunk `c`'s path in sequence `src`: that whole sequence is copied
/// into the chunk's slot and cut at the segment's end.
fn load_segment(
    ctx: &mut Context,
    plan: &Plan,
    c: &crate::plan::Chunk,
    src: usize,
    stats: &mut RunStats,
) {
    let seg = &plan.segments[c.seg];
    ctx.copy_seq(src, c.slot);
    ctx.remove_from(c.slot, seg.start + seg.tokens.len());
    stats.tokens_loaded += seg.tokens.len();
}

/// What a plan's decode calls read: each read's result, and the whole logit row of the reads
/// `full_rows` asks for.
struct Reads<'p> {
    plan: &'p Plan,
    full_rows: &'p [bool],
    n_vocab: usize,
    results: Vec<Option<ReadResult>>,
    rows: HashMap<usize, Vec<f32>>,
}

impl<'p> Reads<'p> {
    fn new(plan: &'p Plan, full_rows: &'p [bool], n_vocab: usize) -> Self {
        Reads {
            plan,
            full_rows,
            n_vocab,
            results: vec![None; plan.reads.len()],
            rows: HashMap::new(),
        }
    }

    /// Takes each (row of the last decode, read index) of `read_rows`, emptying it.
    fn take_all(&mut self, ctx: &Context, read_rows: &mut Vec<(usize, usize)>) -> Result<()> {
        for (row, r) in read_rows.drain(..) {
            let logits = ctx.logits_ith(row)?;
            let logits = &logits[..self.n_vocab.min(logits.len())];
            self.results[r] = Some(ReadResult::extract(logits, &self.plan.reads[r]));
            if self.full_rows.get(r).copied().unwrap_or(false) {
                self.rows.insert(r, logits.to_vec());
            }
        }
        Ok(())
    }

    /// Every read's result, or an error naming one the run did not produce; and the rows.
    fn finish(self) -> Result<(Vec<ReadResult>, HashMap<usize, Vec<f32>>)> {
        let results = self
            .results
            .into_iter()
            .enumerate()
            .map(|(r, x)| x.ok_or_else(|| LlmError::Decode(format!("read {r} was not produced"))))
            .collect::<Result<_>>()?;
        Ok((results, self.rows))
    }
}

/// Empties the slots wave `w` releases; a finished prompt goes into the prefix cache first.
fn release_slots(
    ctx: &mut Context,
    plan: &Plan,
    w: &crate::plan::Wave,
    mut cache: Option<&mut cache::PrefixCache>,
) {
    for &s in &w.release {
        match w.chunks.iter().find(|c| c.slot == s) {
            Some(leaf) => release_leaf(ctx, plan, leaf.seg, s, cache.as_deref_mut()),
            None => ctx.clear_seq(s),
        }
    }
}

/// Empties `slot`, which holds the path of segment `leaf`; the path goes into the prefix
/// cache first.
fn release_leaf(
    ctx: &mut Context,
    plan: &Plan,
    leaf: SegId,
    slot: usize,
    cache: Option<&mut cache::PrefixCache>,
) {
    if let Some(c) = cache {
        let tokens = plan.path_tokens(leaf);
        if let Some(seq) = c.place(&tokens) {
            ctx.copy_seq(slot, seq);
            c.record(seq, tokens);
        }
    }
    ctx.clear_seq(slot);
}

/// Decodes `batch`, takes the reads at `read_rows` (row in the batch, read index) into `reads`,
/// and empties both for the next call.
fn decode_and_read(
    ctx: &mut Context,
    batch: &mut Batch,
    read_rows: &mut Vec<(usize, usize)>,
    reads: &mut Reads<'_>,
    stats: &mut RunStats,
) -> Result<()> {
    ctx.decode(batch)?;
    stats.decode_calls += 1;
    stats.tokens_evaluated += batch.len();
    reads.take_all(ctx, read_rows)?;
    batch.clear();
    Ok(())
}
