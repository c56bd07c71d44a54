//! `culturesteer serve`: an OpenAI-compatible server that answers as the steered model.
//!
//! Routes: `GET /health`, `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`
//! (both with `stream` over server-sent events), `POST /v1/choose` (steered probabilities over
//! given options, where DISCA applies), and the helpers clients need for exact scoring:
//! `POST /tokenize`, `/detokenize`, `/apply-template` (llama.cpp's server shapes).
//!
//! One model thread runs jobs from a bounded queue (full queue: 429 with `Retry-After`); the
//! async front end validates requests before they queue, so bad input costs no model time.

pub mod api;
pub mod worker;

use crate::model_opts::ModelOpts;
use anyhow::{bail, Context, Result};
use api::*;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_data::moral_machine::MoralMachinePreferences;
use culturesteer_data::DataSource;
use culturesteer_llm::{
    ChatMessage, FinishReason, GenerateRequest, Generation, Prompt, Role, Sampling, ScoreRequest,
    ScoreResult, TokenId,
};
use culturesteer_methods::Country;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use worker::{country_instruction, model_error, Job, Steering, Worker};

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
    /// Most top log-probs per position a request may ask for.
    #[arg(long, default_value_t = 20)]
    pub max_logprobs: u32,
    /// Most prompts in one /v1/completions request.
    #[arg(long, default_value_t = 64)]
    pub max_prompts: usize,
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
}

/// Limits the front end enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_tokens: u32,
    pub max_queue: usize,
    pub max_logprobs: u32,
    pub max_prompts: usize,
}

/// Shared by every request handler.
pub struct AppState {
    jobs: mpsc::SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    name: String,
    limits: Limits,
    countries: BTreeMap<CountryCode, String>,
    counter: AtomicU64,
    seed: u64,
}

type Shared = Arc<AppState>;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AppState {
    /// Queues a job for the model thread and waits for its answer.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |w: &mut Worker| {
            let _ = tx.send(f(w));
        }))?;
        rx.await
            .map_err(|_| ApiError::internal("the model thread dropped the request"))?
    }

    fn submit(&self, job: Job) -> Result<(), ApiError> {
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::SeqCst);
        let q2 = queued.clone();
        let wrapped: Job = Box::new(move |w: &mut Worker| {
            q2.fetch_sub(1, Ordering::SeqCst);
            job(w)
        });
        match self.jobs.try_send(wrapped) {
            Ok(()) => Ok(()),
            Err(e) => {
                queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    mpsc::TrySendError::Full(_) => ApiError::busy(self.limits.max_queue),
                    mpsc::TrySendError::Disconnected(_) => {
                        ApiError::unavailable("the model thread has stopped")
                    }
                })
            }
        }
    }

    fn check_model(&self, model: &Option<String>) -> Result<(), ApiError> {
        match model {
            Some(m) if !m.is_empty() && *m != self.name => Err(ApiError {
                param: Some("model".into()),
                ..ApiError::not_found(format!(
                    "model {m:?} is not served here (this server serves {:?})",
                    self.name
                ))
            }),
            _ => Ok(()),
        }
    }

    /// Validates `culture` + `steering`. Without `steering`, a culture means country-prompt.
    fn steering(&self, s: &Steering2) -> Result<(Steering, Option<Country>), ApiError> {
        let country = s.culture.as_deref().map(|c| self.country(c)).transpose()?;
        let steering = match (&s.steering, &country) {
            (Some(name), _) => Steering::parse(name)?,
            (None, Some(_)) => Steering::CountryPrompt,
            (None, None) => Steering::Vanilla,
        };
        if steering != Steering::Vanilla && country.is_none() {
            return Err(ApiError::invalid(
                "culture",
                format!(
                    "steering {:?} needs a culture (ISO 3166-1 alpha-3 code)",
                    steering.as_str()
                ),
            ));
        }
        Ok((steering, country))
    }

    fn country(&self, code: &str) -> Result<Country, ApiError> {
        let c = CountryCode::new(code.trim())
            .map_err(|e| ApiError::invalid("culture", format!("culture {code:?}: {e}")))?;
        let name = self.countries.get(&c).ok_or_else(|| {
            ApiError::invalid("culture", format!("unknown culture {code:?}: not among the {} countries of the Moral Machine data", self.countries.len()))
        })?;
        Ok(Country {
            code: c,
            name: name.clone(),
        })
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn max_tokens(&self, asked: Option<u32>, default: u32) -> Result<usize, ApiError> {
        let n = asked.unwrap_or(default.min(self.limits.max_tokens));
        if n > self.limits.max_tokens {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "max_tokens {n} is above this server's limit of {}",
                    self.limits.max_tokens
                ),
            ));
        }
        Ok(n as usize)
    }

    fn sampling(
        &self,
        temperature: Option<f64>,
        top_p: Option<f64>,
        seed: Option<u64>,
    ) -> Result<Sampling, ApiError> {
        let t = temperature.unwrap_or(1.0);
        let p = top_p.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature must be between 0 and 2, got {t}"),
            ));
        }
        if !(p > 0.0 && p <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p must be in (0, 1], got {p}"),
            ));
        }
        Ok(if t == 0.0 {
            Sampling::Greedy
        } else {
            Sampling::Seeded {
                temperature: t,
                top_p: p,
                seed: seed
                    .unwrap_or_else(|| self.seed ^ self.counter.fetch_add(1, Ordering::Relaxed)),
            }
        })
    }
}

/// `culture` + `steering` as both request kinds carry them.
type Steering2 = api::Steering;

fn check_n(n: Option<u32>) -> Result<(), ApiError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(ApiError::invalid(
            "n",
            format!("n = {n}: this server returns one choice per prompt"),
        )),
    }
}

fn finish_str(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

/// Builds the router (tests and `bench serve` start it on a loopback port).
pub fn router(state: Shared, max_body: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/choose", post(choose))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/apply-template", post(apply_template))
        .fallback(|| async { ApiError::not_found("no such route (see /v1/models, /v1/completions, /v1/chat/completions, /v1/choose, /health)") })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn health(State(s): State<Shared>) -> Json<Value> {
    Json(
        json!({ "status": "ok", "model": s.name, "queued": s.queued.load(Ordering::SeqCst), "max_queue": s.limits.max_queue }),
    )
}

async fn models(State(s): State<Shared>) -> Json<Value> {
    Json(
        json!({ "object": "list", "data": [{ "id": s.name, "object": "model", "created": 0, "owned_by": "culturesteer" }] }),
    )
}

fn wire_messages(msgs: &[WireMessage]) -> Result<Vec<ChatMessage>, ApiError> {
    if msgs.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(ApiError::invalid(
                        &format!("messages[{i}].role"),
                        format!("unsupported role {other:?} (system, user, assistant)"),
                    ))
                }
            };
            Ok(ChatMessage {
                role,
                content: content_text(&m.content, i)?,
            })
        })
        .collect()
}

fn stop_list(stop: Option<OneOrMany>) -> Vec<String> {
    stop.map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
}

/// An SSE stream fed by the model thread. When the client goes away the receiver is dropped,
/// the model thread's next send fails and the generation stops.
fn stream_response(
    s: &Shared,
    req: GenerateRequest,
    chat_messages: Option<Vec<ChatMessage>>,
    frame: impl Fn(Option<&str>, Option<FinishReason>) -> Value + Send + Sync + 'static,
) -> Result<Response, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Value, ApiError>>(64);
    let frame = Arc::new(frame);
    let f2 = frame.clone();
    s.submit(Box::new(move |w: &mut Worker| {
        let mut req = req;
        if let Some(msgs) = chat_messages {
            match w.lm.chat_prompt(&msgs) {
                Ok(p) => req.prompt = p,
                Err(e) => {
                    let _ = tx.blocking_send(Err(model_error(e)));
                    return;
                }
            }
        }
        let mut on_text = |t: &str| tx.blocking_send(Ok(f2(Some(t), None))).is_ok();
        match w.lm.generate_stream(&req, &mut on_text) {
            Ok(g) => {
                let _ = tx.blocking_send(Ok(f2(None, Some(g.finish_reason))));
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(model_error(e)));
            }
        }
    }))?;
    let events = futures::StreamExt::chain(
        futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |m| {
            Ok::<Event, std::convert::Infallible>(match m {
                Ok(v) => Event::default().data(v.to_string()),
                Err(e) => Event::default().data(e.body().to_string()),
            })
        }),
        futures::stream::once(async { Ok(Event::default().data("[DONE]")) }),
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn chat(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    s.check_model(&req.model)?;
    check_n(req.n)?;
    let (steering, country) = s.steering(&req.steering)?;
    if matches!(steering, Steering::Disca | Steering::Palette) {
        return Err(ApiError::invalid(
            "steering",
            format!(
                "{} steers a choice between given options: use /v1/choose",
                steering.as_str()
            ),
        ));
    }
    let top_n = match (req.logprobs, req.top_logprobs) {
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs needs \"logprobs\": true",
            ))
        }
        (false, None) => None,
        (true, n) => {
            let n = n.unwrap_or(0);
            if n > s.limits.max_logprobs {
                return Err(ApiError::invalid(
                    "top_logprobs",
                    format!(
                        "top_logprobs {n} is above this server's limit of {}",
                        s.limits.max_logprobs
                    ),
                ));
            }
            if req.stream {
                return Err(ApiError::invalid(
                    "stream",
                    "streaming does not report log-probs here; ask without \"stream\"",
                ));
            }
            Some(n as usize)
        }
    };
    let mut messages = wire_messages(&req.messages)?;
    if let (Steering::CountryPrompt, Some(c)) = (steering, &country) {
        messages.insert(0, ChatMessage::system(country_instruction(&c.name)));
    }
    let max_tokens = s.max_tokens(req.max_completion_tokens.or(req.max_tokens), 256)?;
    let sampling = s.sampling(req.temperature, req.top_p, req.seed)?;
    let gen = GenerateRequest {
        prompt: Prompt::default(),
        max_tokens,
        sampling,
        stop: stop_list(req.stop),
    };
    let id = s.id("chatcmpl");
    let created = now();
    let culture = country.as_ref().map(|c| c.code.to_string());
    if req.stream {
        let (name, id2, culture2) = (s.name.clone(), id.clone(), culture.clone());
        // OpenAI names the role in the first chunk only.
        let first = std::sync::atomic::AtomicBool::new(true);
        return stream_response(&s, gen, Some(messages), move |text, finish| {
            let delta = match text {
                Some(t) if first.swap(false, std::sync::atomic::Ordering::Relaxed) => {
                    json!({ "role": "assistant", "content": t })
                }
                Some(t) => json!({ "content": t }),
                None => json!({}),
            };
            json!({
                "id": id2, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish.map(finish_str) }],
                "culture": culture2, "steering": steering.as_str(),
            })
        });
    }
    let (g, logprobs): (Generation, Value) = s
        .run(move |w| {
            let prompt = w.lm.chat_prompt(&messages).map_err(model_error)?;
            let mut gens =
                w.lm.generate(&[GenerateRequest {
                    prompt: prompt.clone(),
                    ..gen
                }])
                .map_err(model_error)?;
            let g = gens
                .pop()
                .ok_or_else(|| ApiError::internal("no generation"))?;
            let lp = match top_n {
                Some(n) => chat_logprobs(w, &prompt, &g, n)?,
                None => Value::Null,
            };
            Ok((g, lp))
        })
        .await?;
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": s.name,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": g.text }, "logprobs": logprobs, "finish_reason": finish_str(g.finish_reason) }],
        "usage": usage(g.prompt_tokens, g.tokens.len()),
        "culture": culture, "steering": steering.as_str(),
    }))
    .into_response())
}

/// The chat-style `logprobs` object of a generation: for each generated token its log-prob and
/// the `n` most likely tokens at that position (one batch: the positions share the prompt).
fn chat_logprobs(
    w: &mut Worker,
    prompt: &Prompt,
    g: &Generation,
    n: usize,
) -> Result<Value, ApiError> {
    let base = w.lm.tokenize(&prompt.text).map_err(model_error)?;
    let reqs: Vec<ScoreRequest> = (0..g.tokens.len())
        .map(|i| ScoreRequest {
            prompt: Prompt::from_tokens([base.as_slice(), &g.tokens[..i]].concat()),
            next_tokens: vec![g.tokens[i]],
            top_k: n,
            ..Default::default()
        })
        .collect();
    let results = if reqs.is_empty() {
        vec![]
    } else {
        w.lm.score(&reqs).map_err(model_error)?
    };
    let entry = |piece: String, logprob: f64| json!({ "token": piece, "logprob": logprob, "bytes": piece.as_bytes() });
    let content: Vec<Value> = g
        .tokens
        .iter()
        .zip(&results)
        .map(|(&t, r)| {
            let mut e = entry(w.lm.token_piece(t), r.next_token_logprobs[0]);
            e["top_logprobs"] = Value::Array(
                r.top_k
                    .iter()
                    .map(|x| entry(x.piece.clone(), x.logprob))
                    .collect(),
            );
            e
        })
        .collect();
    Ok(json!({ "content": content }))
}

fn token_string(w: &Worker, t: TokenId, as_ids: bool) -> String {
    if as_ids {
        format!("token_id:{}", t.0)
    } else {
        w.lm.token_piece(t)
    }
}

/// The legacy `logprobs` object of one scored prompt: echoed prompt positions (if `echo`)
/// then the generated position (if any).
fn logprobs_object(
    w: &Worker,
    res: &ScoreResult,
    extra: &[TokenId],
    echo: bool,
    generated: Option<(TokenId, f64)>,
    as_ids: bool,
    prompt_chars: usize,
) -> Value {
    let mut tokens = Vec::new();
    let mut own: Vec<Value> = Vec::new();
    let mut tops: Vec<Value> = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = 0usize;
    if echo {
        for (i, &t) in res.prompt_token_ids.iter().enumerate() {
            let s = token_string(w, t, as_ids);
            offsets.push(offset);
            offset += w.lm.token_piece(t).len();
            if i == 0 {
                own.push(Value::Null);
                tops.push(Value::Null);
            } else {
                let lp = res
                    .prompt_token_logprobs
                    .get(i - 1)
                    .copied()
                    .unwrap_or(f64::NAN);
                own.push(json!(lp));
                tops.push(json!({ s.clone(): lp }));
            }
            tokens.push(s);
        }
    } else {
        offset = prompt_chars;
    }
    if let Some((t, lp)) = generated {
        let mut top = serde_json::Map::new();
        for e in &res.top_k {
            top.insert(token_string(w, e.token, as_ids), json!(e.logprob));
        }
        // Asked-for ids (the `logprob_token_ids` extension).
        for (&tok, &l) in extra.iter().zip(&res.next_token_logprobs) {
            top.entry(token_string(w, tok, as_ids)).or_insert(json!(l));
        }
        tokens.push(token_string(w, t, as_ids));
        own.push(json!(lp));
        tops.push(Value::Object(top));
        offsets.push(offset);
    }
    json!({ "tokens": tokens, "token_logprobs": own, "top_logprobs": tops, "text_offset": offsets })
}

async fn completions(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    s.check_model(&req.model)?;
    check_n(req.n)?;
    let (steering, country) = s.steering(&req.steering)?;
    if matches!(steering, Steering::Disca | Steering::Palette) {
        return Err(ApiError::invalid(
            "steering",
            format!(
                "{} steers a choice between given options: use /v1/choose",
                steering.as_str()
            ),
        ));
    }
    let prefix = match (steering, &country) {
        (Steering::CountryPrompt, Some(c)) => Some(format!("{}\n\n", country_instruction(&c.name))),
        _ => None,
    };
    let to_ids = |v: &[i64], i: usize| -> Result<Vec<TokenId>, ApiError> {
        v.iter()
            .map(|&t| i32::try_from(t).ok().filter(|t| *t >= 0).map(TokenId))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("prompt[{i}]"),
                    "token ids must be non-negative 32-bit integers",
                )
            })
    };
    let mut prompts: Vec<Prompt> = match req.prompt {
        PromptInput::Text(t) => vec![Prompt::from(t)],
        PromptInput::Texts(v) => v.into_iter().map(Prompt::from).collect(),
        PromptInput::Tokens(v) => vec![Prompt::from_tokens(to_ids(&v, 0)?)],
        PromptInput::TokenLists(v) => v
            .iter()
            .enumerate()
            .map(|(i, l)| to_ids(l, i).map(Prompt::from_tokens))
            .collect::<Result<_, _>>()?,
    };
    if prompts.is_empty()
        || prompts
            .iter()
            .any(|p| p.tokens.as_ref().map_or(p.text.is_empty(), Vec::is_empty))
    {
        return Err(ApiError::invalid("prompt", "prompts must not be empty"));
    }
    if prompts.len() > s.limits.max_prompts {
        return Err(ApiError::invalid(
            "prompt",
            format!(
                "{} prompts in one request; the limit is {}",
                prompts.len(),
                s.limits.max_prompts
            ),
        ));
    }
    if let Some(pre) = &prefix {
        if prompts.iter().any(|p| p.tokens.is_some()) {
            return Err(ApiError::invalid(
                "prompt",
                "country-prompt steering needs text prompts, not token ids",
            ));
        }
        for p in &mut prompts {
            p.text = format!("{pre}{}", p.text);
        }
    }
    let max_tokens = s.max_tokens(req.max_tokens, 16)?;
    let sampling = s.sampling(req.temperature, req.top_p, req.seed)?;
    let stop = stop_list(req.stop);
    let id = s.id("cmpl");
    let created = now();
    let culture = country.as_ref().map(|c| c.code.to_string());
    let scoring = req.echo || req.logprobs.is_some();
    if req.stream {
        if prompts.len() != 1 || scoring {
            return Err(ApiError::invalid(
                "stream",
                "streaming takes one prompt and no echo or logprobs",
            ));
        }
        let name = s.name.clone();
        let (id2, culture2) = (id.clone(), culture.clone());
        let gen = GenerateRequest {
            prompt: prompts.remove(0),
            max_tokens,
            sampling,
            stop,
        };
        return stream_response(&s, gen, None, move |text, finish| {
            json!({
                "id": id2, "object": "text_completion", "created": created, "model": name,
                "choices": [{ "index": 0, "text": text.unwrap_or(""), "finish_reason": finish.map(finish_str), "logprobs": null }],
                "culture": culture2, "steering": steering.as_str(),
            })
        });
    }
    let body = if scoring {
        let k = req.logprobs.unwrap_or(0);
        if k > s.limits.max_logprobs {
            return Err(ApiError::invalid(
                "logprobs",
                format!(
                    "logprobs {k} is above this server's limit of {}",
                    s.limits.max_logprobs
                ),
            ));
        }
        if max_tokens > 1 {
            return Err(ApiError::invalid(
                "max_tokens",
                "with echo or logprobs this server generates at most one token (max_tokens 0 or 1)",
            ));
        }
        if max_tokens == 0 && !req.echo {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens 0 only makes sense with echo",
            ));
        }
        let (echo, as_ids) = (req.echo, req.return_tokens_as_token_ids);
        if req.logprob_token_ids.len() > 256 {
            return Err(ApiError::invalid(
                "logprob_token_ids",
                "at most 256 token ids",
            ));
        }
        let extra = to_ids(&req.logprob_token_ids, 0).map_err(|_| {
            ApiError::invalid(
                "logprob_token_ids",
                "token ids must be non-negative 32-bit integers",
            )
        })?;
        s.run(move |w| {
            let texts: Vec<String> = prompts.iter().map(|p| p.text.clone()).collect();
            let reqs: Vec<ScoreRequest> = prompts
                .into_iter()
                .map(|prompt| ScoreRequest {
                    prompt,
                    prompt_logprobs: echo,
                    top_k: if max_tokens == 1 {
                        (k as usize).max(1)
                    } else {
                        0
                    },
                    next_tokens: if max_tokens == 1 {
                        extra.clone()
                    } else {
                        vec![]
                    },
                    ..Default::default()
                })
                .collect();
            let results = w.lm.score(&reqs).map_err(model_error)?;
            let mut choices = Vec::with_capacity(results.len());
            let (mut n_prompt, mut n_gen) = (0, 0);
            for (i, (res, mut r)) in results.iter().zip(reqs).enumerate() {
                n_prompt += res.prompt_tokens;
                let generated = if max_tokens == 1 {
                    n_gen += 1;
                    match sampling {
                        Sampling::Greedy => res.top_k.first().map(|t| (t.token, t.logprob)),
                        Sampling::Seeded { .. } => {
                            let g =
                                w.lm.generate(&[GenerateRequest {
                                    prompt: r.prompt.clone(),
                                    max_tokens: 1,
                                    sampling: sampling.clone(),
                                    stop: vec![],
                                }])
                                .map_err(model_error)?;
                            match g.first().and_then(|g| g.tokens.first().copied()) {
                                Some(t) => {
                                    r.next_tokens = vec![t];
                                    r.prompt_logprobs = false;
                                    let lp =
                                        w.lm.score(&[r.clone()])
                                            .map_err(model_error)?
                                            .remove(0)
                                            .next_token_logprobs[0];
                                    Some((t, lp))
                                }
                                None => None,
                            }
                        }
                    }
                } else {
                    None
                };
                let gen_text = generated
                    .map(|(t, _)| w.lm.token_piece(t))
                    .unwrap_or_default();
                let prompt_text = if echo {
                    if texts[i].is_empty() {
                        res.prompt_token_ids
                            .iter()
                            .map(|&t| w.lm.token_piece(t))
                            .collect::<String>()
                    } else {
                        texts[i].clone()
                    }
                } else {
                    String::new()
                };
                let lp = logprobs_object(w, res, &extra, echo, generated, as_ids, texts[i].len());
                choices.push(json!({
                    "index": i, "text": format!("{prompt_text}{gen_text}"), "logprobs": lp,
                    "finish_reason": "length",
                }));
            }
            Ok(json!({ "choices": choices, "usage": usage(n_prompt, n_gen) }))
        })
        .await?
    } else {
        s.run(move |w| {
            let reqs: Vec<GenerateRequest> = prompts
                .into_iter()
                .map(|prompt| GenerateRequest { prompt, max_tokens, sampling: sampling.clone(), stop: stop.clone() })
                .collect();
            let gens = w.lm.generate(&reqs).map_err(model_error)?;
            let (np, ng) = gens.iter().fold((0, 0), |(a, b), g| (a + g.prompt_tokens, b + g.tokens.len()));
            let choices: Vec<Value> = gens
                .iter()
                .enumerate()
                .map(|(i, g)| json!({ "index": i, "text": g.text, "logprobs": null, "finish_reason": finish_str(g.finish_reason) }))
                .collect();
            Ok(json!({ "choices": choices, "usage": usage(np, ng) }))
        })
        .await?
    };
    let mut out = json!({ "id": id, "object": "text_completion", "created": created, "model": s.name, "culture": culture, "steering": steering.as_str() });
    out["choices"] = body["choices"].clone();
    out["usage"] = body["usage"].clone();
    Ok(Json(out).into_response())
}

async fn choose(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<ChooseRequest>,
) -> Result<Response, ApiError> {
    s.check_model(&req.model)?;
    let country = s.country(&req.culture)?;
    let steering = Steering::parse(req.steering.as_deref().unwrap_or("disca"))?;
    if req.question.trim().is_empty() {
        return Err(ApiError::invalid("question", "question must not be empty"));
    }
    if !(2..=10).contains(&req.options.len()) || req.options.iter().any(|o| o.trim().is_empty()) {
        return Err(ApiError::invalid(
            "options",
            "give 2 to 10 non-empty options",
        ));
    }
    if steering == Steering::Disca && req.options.len() != 2 {
        return Err(ApiError::invalid(
            "options",
            "disca chooses between exactly two options (use vanilla or country-prompt for more)",
        ));
    }
    let category = match &req.category {
        None => MoralDimension::Utilitarianism,
        Some(c) => c
            .parse::<MoralDimension>()
            .map_err(|e| ApiError::invalid("category", e.to_string()))?,
    };
    let (question, options, seed) = (req.question.clone(), req.options.clone(), req.seed);
    let c2 = country.clone();
    let answer = s
        .run(move |w| w.choose(c2, &question, &options, steering, category, seed))
        .await?;
    let letters: Vec<String> = ('A'..='Z')
        .take(req.options.len())
        .map(|c| c.to_string())
        .collect();
    let best = answer
        .probs
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let options: Vec<Value> = req
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| json!({ "label": letters[i], "text": o, "probability": answer.probs.get(i), "logprob": answer.logprobs.get(i) }))
        .collect();
    Ok(Json(json!({
        "id": s.id("choose"), "object": "choice", "created": now(), "model": s.name,
        "culture": country.code.to_string(), "country": country.name, "steering": steering.as_str(), "category": category,
        "options": options, "choice": letters[best], "choice_index": best, "diagnostics": answer.diagnostics,
    }))
    .into_response())
}

async fn tokenize(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<TokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let text = req.content.or(req.prompt).ok_or_else(|| {
        ApiError::invalid("content", "give the text as \"content\" or \"prompt\"")
    })?;
    let (add, pieces) = (
        req.add_special.or(req.add_special_tokens).unwrap_or(true),
        req.with_pieces,
    );
    s.run(move |w| {
        let toks = w.tokenize(&text, add)?;
        let tokens: Vec<Value> = if pieces {
            toks.iter()
                .map(|&t| json!({ "id": t.0, "piece": w.lm.token_piece(t) }))
                .collect()
        } else {
            toks.iter().map(|t| json!(t.0)).collect()
        };
        Ok(Json(json!({ "tokens": tokens, "count": toks.len() })))
    })
    .await
}

async fn detokenize(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<DetokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let ids = req
        .tokens
        .iter()
        .map(|&t| i32::try_from(t).ok().filter(|t| *t >= 0).map(TokenId))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            ApiError::invalid("tokens", "token ids must be non-negative 32-bit integers")
        })?;
    s.run(move |w| {
        let text: String = ids.iter().map(|&t| w.lm.token_piece(t)).collect();
        Ok(Json(json!({ "content": text, "prompt": text })))
    })
    .await
}

async fn apply_template(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<TemplateRequest>,
) -> Result<Json<Value>, ApiError> {
    let msgs = wire_messages(&req.messages)?;
    s.run(move |w| {
        let p = w.lm.chat_prompt(&msgs).map_err(model_error)?;
        Ok(Json(json!({ "prompt": p.text })))
    })
    .await
}

/// A running server: its address and a handle to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, then stops the model thread.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the server thread panicked"),
            None => Ok(()),
        }
    }
}

/// The model name to report: `--served-name`, else the file stem or the upstream name.
fn served_name(
    args: &ServeArgs,
    identity_path: Option<&std::path::Path>,
    describe: &culturesteer_llm::ModelDescription,
) -> String {
    if let Some(n) = &args.served_name {
        return n.clone();
    }
    match identity_path {
        Some(p) => p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "culturesteer".into()),
        None => describe
            .source
            .rsplit(" model ")
            .next()
            .unwrap_or("culturesteer")
            .to_string(),
    }
}

/// Loads the model and starts serving on a background thread; returns once the port is bound.
pub fn start(args: &ServeArgs) -> Result<Running> {
    let data = match &args.data_dir {
        Some(d) => DataSource::dir(d),
        None => DataSource::Embedded,
    };
    let mm = MoralMachinePreferences::load(&data)?;
    let countries: BTreeMap<CountryCode, String> = mm
        .countries()
        .into_iter()
        .filter_map(|c| Some((c, mm.get(c).ok()?.country_name.clone())))
        .collect();
    if args.max_queue == 0 || args.max_prompts == 0 || args.max_body_bytes < 1024 {
        bail!("--max-queue and --max-prompts must be positive and --max-body-bytes at least 1024");
    }
    let opened = args.model.open()?;
    let name = served_name(args, opened.path.as_deref(), &opened.lm.describe());
    let disca = Some(culturesteer_registry::disca_preset(
        culturesteer_registry::Preset::Paper,
    ))
    .context("DISCA configuration")?;
    let mut worker = Worker::new(
        opened.lm,
        data.clone(),
        args.personas.clone(),
        disca,
        args.seed,
    );
    worker.palette = Some(args.palette.settings().parts(&data)?);
    let (tx, rx) = mpsc::sync_channel::<Job>(args.max_queue);
    let model_thread = std::thread::Builder::new()
        .name("model".into())
        .spawn(move || worker.run(rx))
        .context("starting the model thread")?;
    let state = Arc::new(AppState {
        jobs: tx,
        queued: Arc::new(AtomicUsize::new(0)),
        name,
        limits: Limits {
            max_tokens: args.max_tokens_limit,
            max_queue: args.max_queue,
            max_logprobs: args.max_logprobs,
            max_prompts: args.max_prompts,
        },
        countries,
        counter: AtomicU64::new(0),
        seed: args.seed,
    });
    let app = router(state, args.max_body_bytes);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((
            args.host.as_str(),
            args.port,
        )))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || -> Result<()> {
            rt.block_on(async move {
                let stop = async move {
                    let ctrl_c = tokio::signal::ctrl_c();
                    #[cfg(unix)]
                    let term = async {
                        match tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::terminate(),
                        ) {
                            Ok(mut s) => {
                                s.recv().await;
                            }
                            Err(_) => std::future::pending::<()>().await,
                        }
                    };
                    #[cfg(not(unix))]
                    let term = std::future::pending::<()>();
                    tokio::select! {
                        _ = ctrl_c => {},
                        _ = term => {},
                        _ = stop_rx => {},
                    }
                    eprintln!("shutting down: finishing requests in flight");
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            })?;
            // The router (and with it the job sender) is gone: the model thread ends.
            model_thread
                .join()
                .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
            Ok(())
        })
        .context("starting the HTTP thread")?;
    Ok(Running {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

pub fn run(args: ServeArgs) -> Result<()> {
    let Running {
        addr,
        stop: _stop,
        thread,
    } = start(&args)?;
    eprintln!("culturesteer serve: listening on http://{addr}");
    eprintln!("  try: curl -s http://{addr}/v1/choose -d '{{\"question\": \"…\", \"options\": [\"…\", \"…\"], \"culture\": \"VNM\"}}'");
    // `_stop` stays alive: dropping it would stop the server. Ctrl-C or SIGTERM stop it.
    match thread.map(|t| t.join()) {
        Some(Ok(r)) => r,
        Some(Err(_)) => bail!("the server thread panicked"),
        None => Ok(()),
    }
}
