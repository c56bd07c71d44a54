//! Request and response types shared by every backend.

use serde::{Deserialize, Serialize};

/// A vocabulary token id, as the backend's tokenizer numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub i32);

/// A chat role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A prompt: formatted text (chat template already applied, if any). The tokenizer adds the
/// model's BOS token itself. Soft prompts (input embeddings placed before the text) will be an
/// extra field here; backends that cannot take embeddings reject such prompts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub text: String,
    /// Already tokenised prompt (BOS included when the model wants one). When set, backends use
    /// these ids as they are and `text` only documents the prompt; continuations are tokenised
    /// on their own (no BOS) and appended. The HTTP protocol's token-array prompts map here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenId>>,
    /// The chat messages `text` was rendered from, when it came from
    /// [`LanguageModel::chat_prompt`](crate::LanguageModel::chat_prompt) of a backend that may
    /// need them again (the HTTP backend's chat-completions API takes messages, not text).
    /// Backends that render prompts themselves ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// A soft prompt: real-valued input vectors placed right after the BOS token of the
    /// prompt's tokens (at the very start when the model adds no BOS), in place of token
    /// embeddings. Backends without embedding input reject prompts that carry one.
    #[serde(skip)]
    pub soft: Option<std::sync::Arc<SoftPrompt>>,
}

/// `rows` input vectors of `dim` values each (row-major): a soft prompt, or rows of a model's
/// token-embedding matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftPrompt {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl SoftPrompt {
    /// Checks that `data` holds `rows × dim` finite values.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Result<Self, String> {
        if rows == 0 || dim == 0 || data.len() != rows * dim {
            return Err(format!(
                "a soft prompt of {rows} × {dim} needs {} values, got {}",
                rows * dim,
                data.len()
            ));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "soft prompt value {i} (row {}) is not finite",
                i / dim
            ));
        }
        Ok(Self { rows, dim, data })
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

impl Prompt {
    /// A prompt given as token ids (`text` is left empty unless set by the caller).
    pub fn from_tokens(tokens: Vec<TokenId>) -> Self {
        Self {
            text: String::new(),
            tokens: Some(tokens),
            messages: None,
            soft: None,
        }
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Self {
            text,
            tokens: None,
            messages: None,
            soft: None,
        }
    }
}
impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Self {
            text: text.to_string(),
            tokens: None,
            messages: None,
            soft: None,
        }
    }
}

/// What to read from the model after a prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub prompt: Prompt,
    /// Text continuations to score as whole strings: the sum of the log-probabilities of their
    /// tokens. A continuation is tokenised together with the prompt; where the tokenizer merges
    /// across the boundary, the divergent tokens are scored from the last shared token.
    pub continuations: Vec<String>,
    /// Token ids whose next-token log-probability at the end of the prompt is wanted.
    pub next_tokens: Vec<TokenId>,
    /// How many most likely next tokens to report at the end of the prompt (0 for none).
    pub top_k: usize,
    /// Also report the log-probability of every prompt token after the first, given the
    /// tokens before it (the HTTP protocol's `echo` with `logprobs`).
    #[serde(default)]
    pub prompt_logprobs: bool,
    /// With `prompt_logprobs`: also the this many most likely tokens at every prompt position
    /// after the first (the protocol's echoed `top_logprobs`). Backends that cannot give them
    /// leave [`ScoreResult::prompt_top_logprobs`] empty.
    #[serde(default)]
    pub prompt_top_k: usize,
}

impl ScoreRequest {
    pub fn next_tokens(prompt: impl Into<Prompt>, tokens: Vec<TokenId>) -> Self {
        Self {
            prompt: prompt.into(),
            next_tokens: tokens,
            ..Default::default()
        }
    }
    pub fn continuations(prompt: impl Into<Prompt>, continuations: Vec<String>) -> Self {
        Self {
            prompt: prompt.into(),
            continuations,
            ..Default::default()
        }
    }
    pub fn top_k(prompt: impl Into<Prompt>, k: usize) -> Self {
        Self {
            prompt: prompt.into(),
            top_k: k,
            ..Default::default()
        }
    }
}

/// A token with its log-probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: TokenId,
    pub piece: String,
    pub logprob: f64,
}

/// The score of one continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuationScore {
    pub text: String,
    /// The continuation's tokens (after the boundary with the prompt).
    pub tokens: Vec<TokenId>,
    /// Log-probability of each token given everything before it.
    pub token_logprobs: Vec<f64>,
    /// Sum of `token_logprobs`.
    pub logprob: f64,
}

/// The answer to one [`ScoreRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    pub prompt_tokens: usize,
    pub continuations: Vec<ContinuationScore>,
    /// Aligned with `ScoreRequest::next_tokens`.
    pub next_token_logprobs: Vec<f64>,
    /// Most likely next tokens at the end of the prompt, best first.
    pub top_k: Vec<TokenLogprob>,
    /// With `prompt_logprobs`: the prompt's tokens and, for each token after the first, its
    /// log-probability given the tokens before it (`prompt_token_logprobs[i]` belongs to
    /// `prompt_token_ids[i + 1]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_token_ids: Vec<TokenId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_token_logprobs: Vec<f64>,
    /// With `prompt_top_k`: the most likely tokens at each position of
    /// `prompt_token_logprobs` (best first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_top_logprobs: Vec<Vec<TokenLogprob>>,
}

/// How to pick tokens when generating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// Always the most likely token.
    Greedy,
    /// Temperature + nucleus sampling with a seeded ChaCha RNG: the same seed gives the same text.
    Seeded {
        temperature: f64,
        top_p: f64,
        seed: u64,
    },
}

/// A generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context end was reached.
    Length,
}

/// A generated text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<TokenId>,
    pub prompt_tokens: usize,
    pub finish_reason: FinishReason,
}
