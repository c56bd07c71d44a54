//! The OpenAI-compatible HTTP backend: any model behind vLLM, llama.cpp's server or
//! `culturesteer serve`, used through [`LanguageModel`] like a local GGUF.
//!
//! How each operation maps onto the protocol:
//!
//! * **Tokens**: `POST /tokenize` and `/detokenize` (llama.cpp's server and vLLM shapes are
//!   both sent and both read). Prompts are tokenised once and sent as token-id arrays, so the
//!   server scores exactly the tokens a local run would.
//! * **Next-token log-probs and top-k**: `POST /v1/completions` with `max_tokens: 1`,
//!   `logprobs: K` (the server's top-K list at the answer position) and
//!   `return_tokens_as_token_ids` (vLLM's flag, which `culturesteer serve` honours; other
//!   servers' string keys are matched against `/detokenize`). A requested token that is not in
//!   the top K is scored exactly by echoing `prompt + token` (below).
//! * **Continuations and prompt log-probs**: `/v1/completions` with `echo: true` and
//!   `logprobs`, all sequences of one request in one call (token-array batch); the
//!   continuation's tokens are the echoed log-probs after the prompt.
//! * **Generation**: `/v1/completions` with `temperature` 0 (greedy) or the request's
//!   temperature, `top_p` and `seed`, and `stop`. Token ids of generated text are not reported.
//! * **Chat prompts**: `--chat-format auto` asks the server to render them
//!   (`POST /apply-template`, llama.cpp's server and `culturesteer serve`) and falls back to
//!   `plain`; a llama.cpp built-in name (`gemma`, `chatml`, `llama3`, …) renders them here.
//!
//! Servers that offer no tokenizer (OpenAI's hosted API, Ollama) are used through
//! `/v1/chat/completions` instead ([`HttpApi::Chat`], chosen automatically when `/tokenize` is
//! missing): prompts go as the chat messages they were built from (a completion-style prompt
//! as one user message); generation is the assistant's reply; next-token scores are the
//! `top_logprobs` of the first generated token, matched to answer labels by their text (the
//! first entry whose whitespace-stripped text equals the label, as Modular Pluralism's reader
//! does). A label outside the top list gets the smallest listed log-prob, an upper bound on
//! its true value. Whole-continuation scores and prompt log-probs need echo, which the chat
//! API lacks: such requests fail with a one-line error.
//!
//! Requests run with bounded concurrency, a per-request timeout and retries with exponential
//! backoff on connection errors, 408, 429 and 5xx (honouring `Retry-After`).

use crate::backend::{LanguageModel, ModelDescription};
use crate::chat::{render_plain, ChatFormat};
use crate::error::{LlmError, Result};
use crate::types::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Settings of the HTTP backend.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Server base URL (`http://host:port` or `http://host:port/v1`).
    pub url: String,
    /// Model name to request; `None` takes the only model the server lists.
    pub model: Option<String>,
    /// Bearer token.
    pub api_key: Option<String>,
    /// Most HTTP requests in flight at once.
    pub concurrency: usize,
    /// Time limit of one HTTP request (connect + answer).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt on connection errors, timeouts, 408, 429 and 5xx.
    pub retries: u32,
    /// First backoff; doubled on each retry, capped at 10 s (a `Retry-After` header wins).
    pub backoff: Duration,
    /// How many top log-probs to ask for at an answer position (vLLM allows 20 by default).
    pub top_logprobs: usize,
    /// Prompts per scoring request (the server scores a batch together, sharing prefixes).
    pub batch: usize,
    pub chat_format: ChatFormat,
    /// Which endpoints to use.
    pub api: HttpApi,
}

/// The endpoint family the HTTP backend talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpApi {
    /// `/v1/completions` when the server can tokenise (`POST /tokenize` answers), otherwise
    /// `/v1/chat/completions`. Decided once at connect.
    #[default]
    Auto,
    /// `/v1/completions` with token-id prompts: exact scores, echo for continuations.
    Completions,
    /// `/v1/chat/completions`: generation and label scores read by text; no echo.
    Chat,
}

impl std::fmt::Display for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpApi::Auto => "auto",
            HttpApi::Completions => "completions",
            HttpApi::Chat => "chat",
        })
    }
}

impl std::str::FromStr for HttpApi {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(HttpApi::Auto),
            "completions" => Ok(HttpApi::Completions),
            "chat" => Ok(HttpApi::Chat),
            other => Err(format!(
                "unknown HTTP API {other:?} (auto, completions, chat)"
            )),
        }
    }
}

/// Answer labels in chat mode are numbered below this id (`-2`, `-3`, …): they stand for the
/// label's text, matched against the server's top log-probs.
const LABEL_ID_BASE: i32 = -2;

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            model: None,
            api_key: None,
            concurrency: 8,
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            retries: 4,
            backoff: Duration::from_millis(250),
            top_logprobs: 20,
            batch: 16,
            chat_format: ChatFormat::Auto,
            api: HttpApi::Auto,
        }
    }
}

/// How chat messages are rendered, once resolved.
#[derive(Debug, Clone, PartialEq)]
enum Template {
    Server,
    Builtin(String),
    Plain,
}

/// A model behind an OpenAI-compatible server.
pub struct OpenAiLm {
    cfg: OpenAiConfig,
    /// Base URL without a trailing `/` or `/v1`.
    base: String,
    model: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    tokens: Mutex<HashMap<(String, bool), Vec<TokenId>>>,
    pieces: Mutex<HashMap<TokenId, String>>,
    template: Mutex<Option<Template>>,
    /// `true` when requests go to `/v1/chat/completions` (resolved at connect).
    chat: bool,
    /// Chat mode: the texts of answer labels, numbered from [`LABEL_ID_BASE`] downwards.
    labels: Mutex<Vec<String>>,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// Counters since connect.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpStats {
    pub requests: u64,
    pub retries: u64,
}

const TOKEN_CACHE_LIMIT: usize = 200_000;

/// Normalises a base URL: no trailing `/`, no trailing `/v1`.
pub fn normalize_base_url(url: &str) -> Result<String> {
    let u = url.trim().trim_end_matches('/');
    let u = u.strip_suffix("/v1").unwrap_or(u).trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() <= "https://".len() {
        return Err(LlmError::Config(format!(
            "model URL {url:?} must start with http:// or https://"
        )));
    }
    Ok(u.to_string())
}

/// The server's own error message from an error body (OpenAI `{"error": {"message"}}`,
/// FastAPI `{"detail"}`, or the text), on one line and cut short.
fn server_message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error").filter(|e| e.is_string()))
                .or_else(|| v.get("message"))
                .or_else(|| v.get("detail"))
                .map(|m| {
                    m.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| m.to_string())
                })
        })
        .unwrap_or_else(|| body.to_string());
    let one: String = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 300 {
        format!("{}…", one.chars().take(300).collect::<String>())
    } else {
        one
    }
}

fn http_err(url: &str, what: impl Into<String>) -> LlmError {
    LlmError::Http {
        url: url.to_string(),
        what: what.into(),
    }
}

/// Log-prob entries at one position: (token id if the server gave one, token text, log-prob).
type TopList = Vec<(Option<TokenId>, String, f64)>;

/// Reads "token_id:123" keys (vLLM's `return_tokens_as_token_ids`).
fn id_of_key(key: &str) -> Option<TokenId> {
    key.strip_prefix("token_id:")
        .and_then(|n| n.parse().ok())
        .map(TokenId)
}

/// The per-position log-probs of one completion choice, in either of the two shapes servers
/// use: legacy completions (`tokens`, `token_logprobs`, `top_logprobs` maps) or chat-style
/// (`content: [{id?, token, logprob, top_logprobs: [...]}]`). Returns, per position, the
/// token's own log-prob (None for the first echoed token) and its top list.
fn positions(choice: &Value) -> Option<Vec<(Option<f64>, TopList)>> {
    let lp = choice.get("logprobs").filter(|v| !v.is_null())?;
    if let Some(content) = lp.get("content").and_then(Value::as_array) {
        return Some(
            content
                .iter()
                .map(|e| {
                    let tops = e
                        .get("top_logprobs")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| {
                                    let text = t
                                        .get("token")
                                        .and_then(Value::as_str)
                                        .unwrap_or_default()
                                        .to_string();
                                    let id = t
                                        .get("id")
                                        .and_then(Value::as_i64)
                                        .map(|i| TokenId(i as i32))
                                        .or_else(|| id_of_key(&text));
                                    Some((id, text, t.get("logprob")?.as_f64()?))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (e.get("logprob").and_then(Value::as_f64), tops)
                })
                .collect(),
        );
    }
    let own = lp.get("token_logprobs")?.as_array()?;
    let tops = lp.get("top_logprobs").and_then(Value::as_array);
    Some(
        own.iter()
            .enumerate()
            .map(|(i, v)| {
                let list = tops
                    .and_then(|t| t.get(i))
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((id_of_key(k), k.clone(), v.as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                (v.as_f64(), list)
            })
            .collect(),
    )
}

/// The one generation of a completion or chat response: the text at `text_at` (a JSON pointer
/// into the choice; `what` names it in the error), why it stopped, and the prompt's token count
/// when the server reports usage.
fn generation_of(v: &Value, url: &str, text_at: &str, what: &str) -> Result<Generation> {
    let c = choices(v, url, 1)?.remove(0);
    let text = c
        .pointer(text_at)
        .and_then(Value::as_str)
        .ok_or_else(|| http_err(url, format!("choice has no {what}")))?
        .to_string();
    let finish_reason = match c.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    };
    let prompt_tokens = v
        .pointer("/usage/prompt_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    Ok(Generation {
        text,
        tokens: vec![],
        prompt_tokens,
        finish_reason,
    })
}

/// The choices of a completion response, ordered by their `index`.
fn choices(v: &Value, url: &str, expected: usize) -> Result<Vec<Value>> {
    let arr = v.get("choices").and_then(Value::as_array).ok_or_else(|| {
        http_err(
            url,
            format!(
                "answer has no \"choices\" array: {}",
                server_message(&v.to_string())
            ),
        )
    })?;
    let mut out: Vec<Option<Value>> = vec![None; expected];
    for (pos, c) in arr.iter().enumerate() {
        let i = c
            .get("index")
            .and_then(Value::as_u64)
            .map_or(pos, |i| i as usize);
        if i < expected {
            out[i] = Some(c.clone());
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.ok_or_else(|| http_err(url, format!("answer lacks choice {i} of {expected}")))
        })
        .collect()
}

impl OpenAiLm {
    /// Connects: checks that the server answers `GET /v1/models` and serves the model.
    pub fn connect(cfg: OpenAiConfig) -> Result<Self> {
        let base = normalize_base_url(&cfg.url)?;
        if cfg.concurrency == 0 || cfg.top_logprobs == 0 {
            return Err(LlmError::Config(
                "HTTP concurrency and top log-probs must be positive".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LlmError::Config(format!("cannot start the HTTP runtime: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.concurrency)
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut lm = Self {
            cfg,
            base,
            model: String::new(),
            client,
            rt,
            tokens: Mutex::new(HashMap::new()),
            pieces: Mutex::new(HashMap::new()),
            template: Mutex::new(None),
            chat: false,
            labels: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        };
        let url = format!("{}/v1/models", lm.base);
        let listed = lm.rt.block_on(lm.send(reqwest::Method::GET, &url, None))?;
        let ids: Vec<String> = listed
            .get("data")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        lm.model = match &lm.cfg.model {
            Some(m) if ids.is_empty() || ids.contains(m) => m.clone(),
            Some(m) => {
                return Err(http_err(
                    &url,
                    format!(
                        "the server does not serve model {m:?} (it serves {})",
                        ids.join(", ")
                    ),
                ))
            }
            None if ids.len() == 1 => ids[0].clone(),
            None if ids.is_empty() => {
                return Err(http_err(
                    &url,
                    "the server lists no models; name one with --model-name",
                ))
            }
            None => {
                return Err(http_err(
                    &url,
                    format!(
                        "the server serves several models ({}); pick one with --model-name",
                        ids.join(", ")
                    ),
                ))
            }
        };
        lm.chat = match lm.cfg.api {
            HttpApi::Chat => true,
            HttpApi::Completions => false,
            HttpApi::Auto => {
                let can_tokenize = lm.rt.block_on(lm.tokenize_remote("hi", false)).is_ok();
                if !can_tokenize {
                    tracing::info!("{} cannot tokenise; using /v1/chat/completions (label scores read by text)", lm.base);
                }
                !can_tokenize
            }
        };
        Ok(lm)
    }

    /// The endpoint family in use (never `Auto` after connect).
    pub fn api(&self) -> HttpApi {
        if self.chat {
            HttpApi::Chat
        } else {
            HttpApi::Completions
        }
    }

    /// The model name requests carry.
    pub fn model_name(&self) -> &str {
        &self.model
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn stats(&self) -> HttpStats {
        HttpStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// One HTTP exchange with retries; returns the JSON answer.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut attempt = 0u32;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut rb = self.client.request(method.clone(), url);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            if let Some(k) = &self.cfg.api_key {
                rb = rb.bearer_auth(k);
            }
            let (retryable, wait, err) = match rb.send().await {
                Ok(r) => {
                    let status = r.status();
                    let after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|h| h.to_str().ok())
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| Duration::from_secs_f64(s.min(60.0)));
                    match r.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            return serde_json::from_slice(&bytes).map_err(|e| {
                                http_err(
                                    url,
                                    format!(
                                        "answered with invalid JSON ({e}): {}",
                                        server_message(&String::from_utf8_lossy(&bytes))
                                    ),
                                )
                            })
                        }
                        Ok(bytes) => {
                            let code = status.as_u16();
                            let retry = code == 408 || code == 429 || status.is_server_error();
                            (
                                retry,
                                after,
                                http_err(
                                    url,
                                    format!(
                                        "HTTP {status}: {}",
                                        server_message(&String::from_utf8_lossy(&bytes))
                                    ),
                                ),
                            )
                        }
                        Err(e) => (
                            true,
                            None,
                            http_err(url, format!("reading the answer failed: {e}")),
                        ),
                    }
                }
                Err(e) => {
                    let what = if e.is_timeout() {
                        format!("no answer within {:?}", self.cfg.timeout)
                    } else if e.is_connect() {
                        "cannot connect (is the server running?)".to_string()
                    } else {
                        e.to_string()
                    };
                    (
                        e.is_timeout() || e.is_connect() || e.is_request(),
                        None,
                        http_err(url, what),
                    )
                }
            };
            if !retryable || attempt >= self.cfg.retries {
                return Err(err);
            }
            let backoff = self
                .cfg
                .backoff
                .saturating_mul(1 << attempt.min(8))
                .min(Duration::from_secs(10));
            tracing::debug!("retrying {url} after {err}");
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait.unwrap_or(backoff)).await;
            attempt += 1;
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    /// Tokenises through the server (`add_special`: BOS as the model wants it).
    async fn tokenize_remote(&self, text: &str, add_special: bool) -> Result<Vec<TokenId>> {
        let key = (text.to_string(), add_special);
        if let Some(t) = self.tokens.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(t);
        }
        let body = json!({
            "model": self.model, "content": text, "prompt": text,
            "add_special": add_special, "add_special_tokens": add_special, "parse_special": true,
        });
        let url = format!("{}/tokenize", self.base);
        let v = self.post("/tokenize", &body).await.map_err(|e| match e {
            LlmError::Http { what, .. } if what.contains("404") => http_err(
                &url,
                "the server cannot tokenise (no /tokenize endpoint; llama.cpp's server, vLLM and culturesteer serve have one), and token-level scoring needs it",
            ),
            e => e,
        })?;
        let toks = v
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| http_err(&url, "answer has no \"tokens\" array"))?
            .iter()
            .map(|t| {
                t.as_i64()
                    .or_else(|| t.get("id").and_then(Value::as_i64))
                    .map(|i| TokenId(i as i32))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| http_err(&url, "answer's \"tokens\" are not token ids"))?;
        if let Ok(mut c) = self.tokens.lock() {
            if c.len() >= TOKEN_CACHE_LIMIT {
                c.clear();
            }
            c.insert(key, toks.clone());
        }
        Ok(toks)
    }

    async fn piece_remote(&self, token: TokenId) -> Result<String> {
        if let Some(p) = self.pieces.lock().ok().and_then(|c| c.get(&token).cloned()) {
            return Ok(p);
        }
        let v = self
            .post(
                "/detokenize",
                &json!({ "model": self.model, "tokens": [token.0] }),
            )
            .await?;
        let piece = v
            .get("content")
            .or_else(|| v.get("prompt"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                http_err(
                    &format!("{}/detokenize", self.base),
                    "answer has no \"content\" or \"prompt\" text",
                )
            })?
            .to_string();
        if let Ok(mut c) = self.pieces.lock() {
            if c.len() >= TOKEN_CACHE_LIMIT {
                c.clear();
            }
            c.insert(token, piece.clone());
        }
        Ok(piece)
    }

    async fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<TokenId>> {
        match &prompt.tokens {
            Some(t) => Ok(t.clone()),
            None => self.tokenize_remote(&prompt.text, true).await,
        }
    }

    fn completions_url(&self) -> String {
        format!("{}/v1/completions", self.base)
    }

    fn no_logprobs(&self, what: &str) -> LlmError {
        LlmError::NoLogprobs {
            url: self.completions_url(),
            hint: format!(
                "{what}; vLLM returns them up to --max-logprobs (default 20) and echoes prompts, llama.cpp's server returns top log-probs but cannot echo prompts, culturesteer serve does both"
            ),
        }
    }

    /// Echoes token sequences and returns, per sequence, the log-prob of each token after the
    /// first.
    async fn echo(&self, seqs: &[Vec<TokenId>]) -> Result<Vec<Vec<f64>>> {
        if seqs.is_empty() {
            return Ok(vec![]);
        }
        let prompts: Vec<Vec<i32>> = seqs
            .iter()
            .map(|s| s.iter().map(|t| t.0).collect())
            .collect();
        let body = json!({
            "model": self.model, "prompt": prompts, "max_tokens": 1, "temperature": 0.0,
            "echo": true, "logprobs": 1, "return_tokens_as_token_ids": true,
        });
        let v = self.post("/v1/completions", &body).await?;
        let url = self.completions_url();
        let cs = choices(&v, &url, seqs.len())?;
        seqs.iter()
            .zip(cs)
            .map(|(seq, c)| {
                let pos = positions(&c)
                    .ok_or_else(|| self.no_logprobs("the answer carries no log-probs"))?;
                if pos.len() < seq.len() {
                    return Err(self.no_logprobs(&format!(
                        "the server echoed {} log-probs for a prompt of {} tokens",
                        pos.len(),
                        seq.len()
                    )));
                }
                pos[1..seq.len()]
                    .iter()
                    .map(|(lp, _)| {
                        lp.ok_or_else(|| self.no_logprobs("an echoed prompt token has no log-prob"))
                    })
                    .collect()
            })
            .collect()
    }

    /// Top log-probs at the end of each prompt, one HTTP request per batch of prompts. `ids`
    /// are asked for explicitly (`logprob_token_ids`, a culturesteer extension other servers
    /// ignore) so they come back even when they are not among the top K.
    async fn next_token_lists(
        &self,
        prompts: &[Vec<TokenId>],
        k: usize,
        ids: &[TokenId],
    ) -> Result<Vec<TopList>> {
        let body = json!({
            "model": self.model, "prompt": prompts.iter().map(|p| p.iter().map(|t| t.0).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "max_tokens": 1, "temperature": 0.0, "logprobs": k, "return_tokens_as_token_ids": true,
            "logprob_token_ids": ids.iter().map(|t| t.0).collect::<Vec<_>>(),
        });
        let v = self.post("/v1/completions", &body).await?;
        let cs = choices(&v, &self.completions_url(), prompts.len())?;
        cs.iter()
            .map(|c| {
                let pos = positions(c)
                    .ok_or_else(|| self.no_logprobs("the answer carries no log-probs"))?;
                // Echo is off: position 0 is the generated token.
                let mut top: TopList = pos.into_iter().next().map(|(_, t)| t).unwrap_or_default();
                if top.is_empty() {
                    return Err(self.no_logprobs("the answer carries no top log-probs"));
                }
                top.sort_by(|a, b| b.2.total_cmp(&a.2));
                Ok(top)
            })
            .collect()
    }

    /// Runs `jobs` (batches) with bounded concurrency, keeping their order.
    async fn batched<T, F, Fut>(&self, n: usize, f: F) -> Result<Vec<T>>
    where
        F: Fn(std::ops::Range<usize>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        let b = self.cfg.batch.max(1);
        let ranges: Vec<std::ops::Range<usize>> =
            (0..n).step_by(b).map(|s| s..(s + b).min(n)).collect();
        let parts: Vec<Result<Vec<T>>> = futures::stream::iter(ranges.into_iter().map(f))
            .buffered(self.cfg.concurrency)
            .collect()
            .await;
        let mut out = Vec::with_capacity(n);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    async fn score_all(&self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        for (index, req) in requests.iter().enumerate() {
            if req.continuations.is_empty()
                && req.next_tokens.is_empty()
                && req.top_k == 0
                && !req.prompt_logprobs
            {
                return Err(LlmError::InvalidRequest {
                    index,
                    what: "empty candidate list (give continuations, next tokens or top_k)".into(),
                });
            }
        }
        let conc = self.cfg.concurrency;
        let prompts: Vec<Vec<TokenId>> =
            futures::stream::iter(requests.iter().map(|r| self.prompt_ids(&r.prompt)))
                .buffered(conc)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
        if let Some(index) = prompts.iter().position(Vec::is_empty) {
            return Err(LlmError::EmptyPrompt { index });
        }
        let mut results: Vec<ScoreResult> = prompts
            .iter()
            .map(|p| ScoreResult {
                prompt_tokens: p.len(),
                ..Default::default()
            })
            .collect();

        // Next tokens and top-k, batched.
        let wants: Vec<usize> = (0..requests.len())
            .filter(|&i| !requests[i].next_tokens.is_empty() || requests[i].top_k > 0)
            .collect();
        let k = wants
            .iter()
            .map(|&i| {
                requests[i]
                    .top_k
                    .max(if requests[i].next_tokens.is_empty() {
                        0
                    } else {
                        self.cfg.top_logprobs
                    })
            })
            .max()
            .unwrap_or(0);
        let mut ids: Vec<TokenId> = wants
            .iter()
            .flat_map(|&i| requests[i].next_tokens.iter().copied())
            .collect();
        ids.sort();
        ids.dedup();
        let tops = self
            .batched(wants.len(), |r| {
                let ps: Vec<Vec<TokenId>> = wants[r].iter().map(|&i| prompts[i].clone()).collect();
                let ids = ids.clone();
                async move { self.next_token_lists(&ps, k.max(1), &ids).await }
            })
            .await?;
        // Echoed sequences: (request, what) in order.
        enum Echo {
            Next(usize),
            Prompt,
            Cont(usize, usize),
        }
        let mut echo_seqs: Vec<Vec<TokenId>> = Vec::new();
        let mut echo_owner: Vec<(usize, Echo)> = Vec::new();
        for (&i, top) in wants.iter().zip(tops) {
            let req = &requests[i];
            let mut next = Vec::with_capacity(req.next_tokens.len());
            for (j, &t) in req.next_tokens.iter().enumerate() {
                let mut found = top.iter().find(|e| e.0 == Some(t)).map(|e| e.2);
                if found.is_none() && top.iter().any(|e| e.0.is_none()) {
                    let piece = self.piece_remote(t).await?;
                    found = top
                        .iter()
                        .find(|e| e.0.is_none() && e.1 == piece)
                        .map(|e| e.2);
                }
                if found.is_none() {
                    echo_seqs.push([prompts[i].as_slice(), &[t]].concat());
                    echo_owner.push((i, Echo::Next(j)));
                }
                next.push(found.unwrap_or(f64::NAN));
            }
            results[i].next_token_logprobs = next;
            // Sorted best first: extra asked-for ids outside the true top K rank below it.
            for (id, text, lp) in top.into_iter().take(req.top_k) {
                let token = match id {
                    Some(t) => t,
                    None => match self.tokenize_remote(&text, false).await?.as_slice() {
                        [one] => *one,
                        _ => TokenId(-1),
                    },
                };
                let piece = if id.is_some() {
                    self.piece_remote(token).await?
                } else {
                    text
                };
                results[i].top_k.push(TokenLogprob {
                    token,
                    piece,
                    logprob: lp,
                });
            }
        }
        // Prompt log-probs and continuations.
        for (i, req) in requests.iter().enumerate() {
            let p = &prompts[i];
            if req.prompt_logprobs {
                results[i].prompt_token_ids = p.clone();
                if p.len() > 1 {
                    echo_seqs.push(p.clone());
                    echo_owner.push((i, Echo::Prompt));
                }
            }
            for (j, c) in req.continuations.iter().enumerate() {
                let full = match &req.prompt.tokens {
                    Some(_) => [p.as_slice(), &self.tokenize_remote(c, false).await?].concat(),
                    None => {
                        self.tokenize_remote(&format!("{}{}", req.prompt.text, c), true)
                            .await?
                    }
                };
                let lcp = p.iter().zip(&full).take_while(|(a, b)| a == b).count();
                if lcp == full.len() || lcp == 0 {
                    return Err(LlmError::InvalidRequest {
                        index: i,
                        what: format!("continuation {c:?} adds no scorable token"),
                    });
                }
                results[i].continuations.push(ContinuationScore {
                    text: c.clone(),
                    tokens: full[lcp..].to_vec(),
                    token_logprobs: vec![],
                    logprob: 0.0,
                });
                echo_seqs.push(full);
                echo_owner.push((i, Echo::Cont(j, lcp)));
            }
        }
        let echoed = self
            .batched(echo_seqs.len(), |r| self.echo_owned(&echo_seqs[r]))
            .await?;
        for ((i, what), lps) in echo_owner.into_iter().zip(echoed) {
            match what {
                Echo::Next(j) => {
                    results[i].next_token_logprobs[j] = *lps.last().unwrap_or(&f64::NAN)
                }
                Echo::Prompt => results[i].prompt_token_logprobs = lps,
                Echo::Cont(j, lcp) => {
                    // lps[x] belongs to token x + 1; the continuation starts at token lcp.
                    let c = &mut results[i].continuations[j];
                    c.token_logprobs = lps[lcp - 1..].to_vec();
                    c.logprob = c.token_logprobs.iter().sum();
                }
            }
        }
        Ok(results)
    }

    async fn echo_owned(&self, seqs: &[Vec<TokenId>]) -> Result<Vec<Vec<f64>>> {
        self.echo(seqs).await
    }

    async fn generate_one(&self, req: &GenerateRequest) -> Result<Generation> {
        let prompt = match &req.prompt.tokens {
            Some(t) => json!(t.iter().map(|t| t.0).collect::<Vec<_>>()),
            None => json!(req.prompt.text),
        };
        let mut body =
            json!({ "model": self.model, "prompt": prompt, "max_tokens": req.max_tokens });
        Self::sampling_fields(&mut body, &req.sampling);
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let v = self.post("/v1/completions", &body).await?;
        generation_of(&v, &self.completions_url(), "/text", "\"text\"")
    }

    fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.base)
    }

    /// The messages a prompt is sent as in chat mode.
    fn messages_of(&self, index: usize, prompt: &Prompt) -> Result<Vec<ChatMessage>> {
        match (&prompt.messages, &prompt.tokens) {
            (Some(m), _) => Ok(m.clone()),
            (None, None) if !prompt.text.is_empty() => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!("{}: completion-style prompts are sent as one user message, so the server's chat template applies (scores differ from /v1/completions)", self.chat_url())
                });
                Ok(vec![ChatMessage::user(prompt.text.clone())])
            }
            (None, None) => Err(LlmError::EmptyPrompt { index }),
            (None, Some(_)) => Err(LlmError::InvalidRequest {
                index,
                what: format!("{} takes chat messages, not token-id prompts (use a server with /tokenize and --http-api completions)", self.chat_url()),
            }),
        }
    }

    /// The label a chat-mode label id stands for.
    fn label_text(&self, token: TokenId) -> Option<String> {
        let i = usize::try_from(LABEL_ID_BASE - token.0).ok()?;
        self.labels.lock().ok()?.get(i).cloned()
    }

    fn label_id(&self, label: &str) -> TokenId {
        let mut l = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        let i = l.iter().position(|x| x == label).unwrap_or_else(|| {
            l.push(label.to_string());
            l.len() - 1
        });
        TokenId(LABEL_ID_BASE - i as i32)
    }

    fn sampling_fields(body: &mut Value, sampling: &Sampling) {
        match *sampling {
            Sampling::Greedy => body["temperature"] = json!(0.0),
            Sampling::Seeded {
                temperature,
                top_p,
                seed,
            } => {
                body["temperature"] = json!(temperature);
                body["top_p"] = json!(top_p);
                body["seed"] = json!(seed);
            }
        }
    }

    /// Chat mode: one `/v1/chat/completions` request per prompt, `max_tokens` 1 with
    /// `top_logprobs`; labels are matched by text.
    async fn chat_score_one(&self, index: usize, req: &ScoreRequest) -> Result<ScoreResult> {
        let url = self.chat_url();
        if !req.continuations.is_empty() || req.prompt_logprobs {
            return Err(LlmError::NoLogprobs {
                url,
                hint: format!(
                    "request {index} scores given text (continuations or prompt log-probs), which needs echo on /v1/completions; the chat API only reports log-probs of generated tokens (use a vLLM, llama.cpp or culturesteer server with --http-api completions)"
                ),
            });
        }
        if req.next_tokens.is_empty() && req.top_k == 0 {
            return Err(LlmError::InvalidRequest {
                index,
                what: "empty candidate list (give continuations, next tokens or top_k)".into(),
            });
        }
        let k = req
            .top_k
            .max(if req.next_tokens.is_empty() {
                0
            } else {
                self.cfg.top_logprobs
            })
            .max(1);
        let body = json!({
            "model": self.model, "messages": self.messages_of(index, &req.prompt)?,
            "max_tokens": 1, "temperature": 0.0, "logprobs": true, "top_logprobs": k,
        });
        let v = self.post("/v1/chat/completions", &body).await?;
        let c = choices(&v, &url, 1)?.remove(0);
        let no_lp = |what: &str| {
            LlmError::NoLogprobs {
            url: url.clone(),
            hint: format!("{what}; the chat API returns them with \"logprobs\": true and \"top_logprobs\" (OpenAI up to 20, vLLM up to --max-logprobs, llama.cpp's server and culturesteer serve support them)"),
        }
        };
        let pos = positions(&c).ok_or_else(|| no_lp("the answer carries no log-probs"))?;
        let mut top: TopList = pos.into_iter().next().map(|(_, t)| t).unwrap_or_default();
        if top.is_empty() {
            return Err(no_lp("the answer carries no top log-probs"));
        }
        top.sort_by(|a, b| b.2.total_cmp(&a.2));
        let floor = top.iter().map(|e| e.2).fold(f64::INFINITY, f64::min);
        let mut res = ScoreResult {
            prompt_tokens: v
                .pointer("/usage/prompt_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize,
            ..Default::default()
        };
        for &t in &req.next_tokens {
            let want = match self.label_text(t) {
                Some(label) => label,
                None => self.piece_remote(t).await?,
            };
            let want = want.trim();
            let found = top
                .iter()
                .find(|e| e.0 == Some(t) || e.1.trim() == want)
                .map(|e| e.2);
            if found.is_none() {
                tracing::debug!("label {want:?} is not among the top {} log-probs; using the smallest listed one", top.len());
            }
            res.next_token_logprobs.push(found.unwrap_or(floor));
        }
        res.top_k = top
            .into_iter()
            .take(req.top_k)
            .map(|(id, text, logprob)| TokenLogprob {
                token: id.unwrap_or(TokenId(-1)),
                piece: text,
                logprob,
            })
            .collect();
        Ok(res)
    }

    async fn chat_generate_one(&self, index: usize, req: &GenerateRequest) -> Result<Generation> {
        let mut body = json!({ "model": self.model, "messages": self.messages_of(index, &req.prompt)?, "max_tokens": req.max_tokens });
        Self::sampling_fields(&mut body, &req.sampling);
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let v = self.post("/v1/chat/completions", &body).await?;
        generation_of(
            &v,
            &self.chat_url(),
            "/message/content",
            "\"message\".\"content\" text",
        )
    }

    fn resolved_template(&self) -> Result<Template> {
        if let Some(t) = self.template.lock().ok().and_then(|t| t.clone()) {
            return Ok(t);
        }
        let t = match &self.cfg.chat_format {
            ChatFormat::Plain => Template::Plain,
            ChatFormat::Builtin(n) => Template::Builtin(n.clone()),
            ChatFormat::Template => Template::Server,
            ChatFormat::Auto if self.chat => Template::Plain,
            ChatFormat::Auto => {
                let probe = self.rt.block_on(self.post(
                    "/apply-template",
                    &json!({ "messages": [{"role": "user", "content": "hi"}] }),
                ));
                match probe {
                    Ok(v) if v.get("prompt").is_some_and(Value::is_string) => Template::Server,
                    _ => {
                        tracing::warn!("{} cannot render chat prompts (no /apply-template); using the plain format (set --chat-format to a built-in name such as gemma or chatml)", self.base);
                        Template::Plain
                    }
                }
            }
        };
        if let Ok(mut g) = self.template.lock() {
            *g = Some(t.clone());
        }
        Ok(t)
    }
}

impl LanguageModel for OpenAiLm {
    fn describe(&self) -> ModelDescription {
        ModelDescription {
            backend: "openai-http".into(),
            source: format!("{} model {}", self.base, self.model),
            architecture: None,
            parameters: None,
            context_train: None,
            vocab_size: None,
            embedding_size: None,
            layers: None,
            has_chat_template: matches!(
                self.template.lock().ok().and_then(|t| t.clone()),
                Some(Template::Server)
            ),
            chat_format: match self.template.lock().ok().and_then(|t| t.clone()) {
                Some(Template::Server) => "server".into(),
                Some(Template::Builtin(n)) => format!("builtin:{n}"),
                Some(Template::Plain) => "plain".into(),
                None => self.cfg.chat_format.to_string(),
            },
        }
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        let mut p = self.render_chat(messages)?;
        p.messages = Some(messages.to_vec());
        Ok(p)
    }

    fn tokenize(&self, text: &str) -> Result<Vec<TokenId>> {
        self.rt.block_on(self.tokenize_remote(text, true))
    }

    fn token_piece(&self, token: TokenId) -> String {
        if let Some(label) = self.label_text(token) {
            return label;
        }
        self.rt
            .block_on(self.piece_remote(token))
            .unwrap_or_default()
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        reject_soft(requests.iter().map(|r| &r.prompt))?;
        if self.chat {
            let this = &*self;
            return this.rt.block_on(async {
                futures::stream::iter(
                    requests
                        .iter()
                        .enumerate()
                        .map(|(i, r)| this.chat_score_one(i, r)),
                )
                .buffered(this.cfg.concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect()
            });
        }
        self.rt.block_on(self.score_all(requests))
    }

    fn generate(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Generation>> {
        reject_soft(requests.iter().map(|r| &r.prompt))?;
        let this = &*self;
        let n = this.cfg.concurrency;
        this.rt.block_on(async {
            futures::stream::iter(requests.iter().enumerate().map(|(i, r)| async move {
                if this.chat {
                    this.chat_generate_one(i, r).await
                } else {
                    this.generate_one(r).await
                }
            }))
            .buffered(n)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
        })
    }

    /// Completions mode: by the tokenizer (exact). Chat mode: each label stands for its text.
    fn resolve_answer_tokens(&self, prompt: &Prompt, labels: &[&str]) -> Result<Vec<TokenId>> {
        if !self.chat {
            return crate::backend::resolve_by_tokenizer(self, prompt, labels);
        }
        if labels.is_empty() {
            return Err(LlmError::InvalidRequest {
                index: 0,
                what: "empty candidate list".into(),
            });
        }
        let trimmed: Vec<&str> = labels.iter().map(|l| l.trim()).collect();
        if let Some(l) = trimmed.iter().find(|l| l.is_empty()) {
            return Err(LlmError::InvalidRequest {
                index: 0,
                what: format!("answer label {l:?} is blank"),
            });
        }
        let ids: Vec<TokenId> = trimmed.iter().map(|l| self.label_id(l)).collect();
        crate::backend::check_distinct(labels, &ids)?;
        Ok(ids)
    }
}

/// Servers take text or token ids, not input embeddings.
fn reject_soft<'a>(prompts: impl Iterator<Item = &'a Prompt>) -> Result<()> {
    for (index, p) in prompts.enumerate() {
        if p.soft.is_some() {
            return Err(LlmError::InvalidRequest { index, what: "an OpenAI-compatible server cannot take a soft prompt (input embeddings); use a local GGUF model".into() });
        }
    }
    Ok(())
}

impl OpenAiLm {
    fn render_chat(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        match self.resolved_template()? {
            Template::Plain => Ok(Prompt::from(render_plain(messages))),
            Template::Builtin(n) => {
                crate::llama::apply_builtin_template(&n, messages).map(Prompt::from)
            }
            Template::Server => {
                let v = self
                    .rt
                    .block_on(self.post("/apply-template", &json!({ "messages": messages })))?;
                v.get("prompt")
                    .and_then(Value::as_str)
                    .map(|s| Prompt::from(s.to_string()))
                    .ok_or_else(|| {
                        LlmError::ChatTemplate(format!(
                            "{}/apply-template gave no \"prompt\" text",
                            self.base
                        ))
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            normalize_base_url("http://h:8000/v1/").unwrap(),
            "http://h:8000"
        );
        assert_eq!(
            normalize_base_url("https://api.example.com").unwrap(),
            "https://api.example.com"
        );
        assert!(normalize_base_url("h:8000").is_err());
        assert!(normalize_base_url("http://").is_err());
    }

    #[test]
    fn both_logprob_shapes_are_read() {
        let legacy = json!({"logprobs": {"tokens": ["a", "b"], "token_logprobs": [null, -1.5],
            "top_logprobs": [null, {"token_id:7": -1.5, "x": -2.0}]}});
        let p = positions(&legacy).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, None);
        assert_eq!(p[1].0, Some(-1.5));
        assert!(p[1]
            .1
            .iter()
            .any(|e| e.0 == Some(TokenId(7)) && e.2 == -1.5));
        assert!(p[1].1.iter().any(|e| e.0.is_none() && e.1 == "x"));
        let chat = json!({"logprobs": {"content": [{"id": 3, "token": " A", "logprob": -0.1,
            "top_logprobs": [{"id": 3, "token": " A", "logprob": -0.1}, {"token": " B", "logprob": -2.4}]}]}});
        let p = positions(&chat).unwrap();
        assert_eq!(p[0].0, Some(-0.1));
        assert_eq!(p[0].1[0].0, Some(TokenId(3)));
        assert_eq!(p[0].1[1].0, None);
        assert!(positions(&json!({"text": "x"})).is_none());
        assert!(positions(&json!({"logprobs": null})).is_none());
    }

    #[test]
    fn server_messages_are_one_short_line() {
        assert_eq!(
            server_message(r#"{"error": {"message": "bad\n thing"}}"#),
            "bad thing"
        );
        assert_eq!(server_message(r#"{"detail": "nope"}"#), "nope");
        assert_eq!(server_message("plain text"), "plain text");
        assert!(server_message(&"x ".repeat(1000)).chars().count() <= 301);
    }

    #[test]
    fn choices_are_ordered_by_index() {
        let v = json!({"choices": [{"index": 1, "text": "b"}, {"index": 0, "text": "a"}]});
        let c = choices(&v, "u", 2).unwrap();
        assert_eq!(c[0]["text"], "a");
        assert!(choices(&v, "u", 3).is_err());
        assert!(choices(&json!({"oops": 1}), "u", 1).is_err());
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        // Port 9 (discard) on loopback: nothing listens there in a sandbox.
        let cfg = OpenAiConfig {
            url: "http://127.0.0.1:9".into(),
            retries: 1,
            backoff: Duration::from_millis(10),
            ..Default::default()
        };
        let e = OpenAiLm::connect(cfg).err().expect("no server").to_string();
        assert!(e.contains("127.0.0.1:9/v1/models"), "{e}");
        assert!(e.contains("cannot connect"), "{e}");
    }
}
