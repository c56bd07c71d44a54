//! The model boundary: one trait every backend implements.

use crate::error::{LlmError, Result};
use crate::types::*;
use serde::{Deserialize, Serialize};

/// What a backend is, for run manifests and `model info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    /// "llama.cpp" or "openai-http".
    pub backend: String,
    /// File path or server URL + model name.
    pub source: String,
    pub architecture: Option<String>,
    pub parameters: Option<u64>,
    pub context_train: Option<u32>,
    pub vocab_size: Option<usize>,
    pub embedding_size: Option<usize>,
    pub layers: Option<u32>,
    pub has_chat_template: bool,
    /// How chat messages are turned into a prompt (see [`crate::chat::ChatFormat`]).
    pub chat_format: String,
}

/// What a backend's prefix cache (KV kept between calls) did so far, totals since load, and
/// what it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Sequences the cache may hold.
    pub slots: usize,
    /// Sequences it holds now, and their tokens.
    pub held: usize,
    pub tokens_held: usize,
    /// Tokens of the prompts planned with the cache, and how many of them were loaded from it
    /// instead of decoded (the hit rate is their ratio).
    pub tokens_planned: usize,
    pub tokens_loaded: usize,
    /// Sequences stored, and how many of those replaced an entry (evicted it, or extended it).
    pub stored: usize,
    pub replaced: usize,
}

/// Scoring, generation and tokenisation. Implementations batch internally: callers should pass
/// as many requests per call as they have (prompts sharing prefixes are evaluated once).
pub trait LanguageModel: Send {
    fn describe(&self) -> ModelDescription;

    /// Renders chat messages into a prompt that ends where the assistant's answer begins.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt>;

    /// Tokenises text the way prompts are tokenised (BOS added if the model wants it, special
    /// tokens of the chat template recognised).
    fn tokenize(&self, text: &str) -> Result<Vec<TokenId>>;

    /// The text of one token.
    fn token_piece(&self, token: TokenId) -> String;

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>>;

    fn generate(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Generation>>;

    /// Generates one request and passes its text on as it is produced (stop strings are held
    /// back until they can no longer match). `on_text` returning `false` ends the generation
    /// early (the reader went away). Backends that cannot stream call it once with the whole
    /// text.
    fn generate_stream(
        &mut self,
        request: &GenerateRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let g = self
            .generate(std::slice::from_ref(request))?
            .pop()
            .ok_or_else(|| LlmError::InvalidRequest {
                index: 0,
                what: "the backend returned no generation".into(),
            })?;
        if !g.text.is_empty() {
            on_text(&g.text);
        }
        Ok(g)
    }

    /// Generates each request, then scores `follow(i, generation)`: a prompt that continues
    /// request i's prompt and generated text (next tokens and top-k only). Backends reuse the
    /// KV cache of prompt + generated text where the follow-up's tokens start with them; the
    /// default generates, then scores from scratch.
    fn generate_then_score(
        &mut self,
        requests: &[GenerateRequest],
        follow: &mut dyn FnMut(usize, &Generation) -> Result<ScoreRequest>,
    ) -> Result<Vec<(Generation, ScoreResult)>> {
        let gens = self.generate(requests)?;
        let reqs = gens
            .iter()
            .enumerate()
            .map(|(i, g)| follow(i, g))
            .collect::<Result<Vec<_>>>()?;
        let scores = self.score(&reqs)?;
        Ok(gens.into_iter().zip(scores).collect())
    }

    /// Rows of the model's input token-embedding matrix for `tokens` (dequantised): a soft
    /// prompt equal to those tokens. Backends without embedding input return
    /// [`LlmError::Unsupported`].
    fn token_embeddings(&self, tokens: &[TokenId]) -> Result<SoftPrompt> {
        let _ = tokens;
        Err(LlmError::Unsupported("soft prompts (input embeddings)"))
    }

    /// Standard deviation of all values of the input token-embedding matrix (the scale of
    /// soft-prompt perturbations).
    fn input_embedding_std(&self) -> Result<f64> {
        Err(LlmError::Unsupported("soft prompts (input embeddings)"))
    }

    /// Names of the expert adapters loaded with the model (Cultural Palette's continent
    /// experts), in load order; empty without any.
    fn experts(&self) -> Vec<String> {
        Vec::new()
    }

    /// Scales of the expert adapters for every following call, in [`LanguageModel::experts`]
    /// order (all zero: the base model). A backend without adapters takes only an empty list.
    fn set_expert_scales(&mut self, scales: &[f32]) -> Result<()> {
        if scales.is_empty() {
            Ok(())
        } else {
            Err(LlmError::Unsupported("expert adapters"))
        }
    }

    /// One vector per prompt: the mean of the model's final hidden states (after the output
    /// norm) over the prompt's tokens after BOS, under the current expert scales (the
    /// representation of Cultural Palette's gate). Soft prompts are not taken.
    fn hidden_states(&mut self, prompts: &[Prompt]) -> Result<Vec<Vec<f32>>> {
        let _ = prompts;
        Err(LlmError::Unsupported("hidden states"))
    }

    /// Continuous generation ([`crate::streams`]), when the backend offers it (the llama
    /// backend with stream slots configured); `None` otherwise, and callers then generate
    /// request by request.
    fn streams(&mut self) -> Option<&mut dyn crate::streams::Streams> {
        None
    }

    /// The prefix cache's statistics, when the backend keeps KV between calls.
    fn prefix_cache(&self) -> Option<PrefixCacheStats> {
        None
    }

    /// Answer-token resolution (specs/disca.md §1): for each label, tokenise `prompt + label`
    /// and take the first token that differs from the prompt's own tokenisation. Distinct labels
    /// must resolve to distinct tokens.
    fn resolve_answer_tokens(&self, prompt: &Prompt, labels: &[&str]) -> Result<Vec<TokenId>> {
        resolve_by_tokenizer(self, prompt, labels)
    }
}

/// The default [`LanguageModel::resolve_answer_tokens`]: tokenise `prompt + label` and take the
/// first token that differs from the prompt's own tokenisation.
pub fn resolve_by_tokenizer<L: LanguageModel + ?Sized>(
    lm: &L,
    prompt: &Prompt,
    labels: &[&str],
) -> Result<Vec<TokenId>> {
    if labels.is_empty() {
        return Err(LlmError::InvalidRequest {
            index: 0,
            what: "empty candidate list".into(),
        });
    }
    let base = lm.tokenize(&prompt.text)?;
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        let full = lm.tokenize(&format!("{}{}", prompt.text, label))?;
        let i = base.iter().zip(&full).take_while(|(a, b)| a == b).count();
        let tok = full
            .get(i)
            .copied()
            .ok_or_else(|| LlmError::InvalidRequest {
                index: 0,
                what: format!("answer label {label:?} adds no token to the prompt"),
            })?;
        out.push(tok);
    }
    check_distinct(labels, &out)?;
    Ok(out)
}

/// Distinct labels must resolve to distinct tokens.
pub(crate) fn check_distinct(labels: &[&str], tokens: &[TokenId]) -> Result<()> {
    for i in 0..tokens.len() {
        for j in i + 1..tokens.len() {
            if tokens[i] == tokens[j] {
                return Err(LlmError::InvalidRequest {
                    index: 0,
                    what: format!(
                        "answer labels {:?} and {:?} resolve to the same token",
                        labels[i], labels[j]
                    ),
                });
            }
        }
    }
    Ok(())
}
