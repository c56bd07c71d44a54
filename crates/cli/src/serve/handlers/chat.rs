//! `POST /v1/chat/completions`, streamed or whole, with chat-style log-probs.

use super::stream::stream_response;
use super::{check_n, finish_str, now, nth_sampling, stop_list, usage, wire_messages};
use crate::serve::api::{ApiError, ChatRequest, JsonBody};
use crate::serve::worker::{country_instruction, model_error, Steering};
use crate::serve::Shared;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use culturesteer_llm::{ChatMessage, GenerateRequest, Prompt, StepToken};
use serde_json::{json, Value};

pub(in crate::serve) async fn chat(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    s.check_model(&req.model)?;
    let n = check_n(req.n, req.stream.then_some("streaming"))?;
    let (steering, country) = s.generation_steering(&req.steering)?;
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
            Some(n as usize)
        }
    };
    let mut messages = wire_messages(&req.messages)?;
    if let (Steering::CountryPrompt, Some(c)) = (steering, &country) {
        messages.insert(0, ChatMessage::system(country_instruction(&c.name)));
    }
    let max_tokens = s.max_tokens(req.max_completion_tokens.or(req.max_tokens), 256)?;
    // The chat template adds a few tokens per message.
    let prompt_bound: usize = messages.iter().map(|m| m.content.len() + 8).sum();
    s.check_cost(prompt_bound * n, n, max_tokens)?;
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
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    if req.stream {
        let (name, id2, culture2) = (s.name.clone(), id.clone(), culture.clone());
        // OpenAI names the role in the first chunk only.
        let first = std::sync::atomic::AtomicBool::new(true);
        return stream_response(&s, gen, Some(messages), include_usage, top_n, move |text, finish, tokens| {
            let delta = match text {
                Some(t) if first.swap(false, std::sync::atomic::Ordering::Relaxed) => {
                    json!({ "role": "assistant", "content": t })
                }
                Some(t) => json!({ "content": t }),
                None => json!({}),
            };
            json!({
                "id": id2, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{ "index": 0, "delta": delta, "logprobs": top_n.map(|_| chat_logprobs(tokens)), "finish_reason": finish.map(finish_str) }],
                "culture": culture2, "steering": steering.as_str(),
            })
        })
        .await;
    }
    let runs = (0..n).map(|j| {
        let (messages, mut gen) = (messages.clone(), gen.clone());
        gen.sampling = nth_sampling(&gen.sampling, j);
        s.generate(
            move |w| {
                let prompt = w.lm.chat_prompt(&messages).map_err(model_error)?;
                Ok(GenerateRequest { prompt, ..gen })
            },
            top_n,
        )
    });
    let gens = futures::future::try_join_all(runs).await?;
    let prompt_tokens = gens.first().map_or(0, |(g, _)| g.prompt_tokens);
    let completion: usize = gens.iter().map(|(g, _)| g.tokens.len()).sum();
    s.metrics.count_tokens(prompt_tokens, completion);
    let choices: Vec<Value> = gens
        .iter()
        .enumerate()
        .map(|(j, (g, tokens))| {
            let logprobs = match top_n {
                Some(_) => chat_logprobs(tokens),
                None => Value::Null,
            };
            json!({ "index": j, "message": { "role": "assistant", "content": g.text }, "logprobs": logprobs, "finish_reason": finish_str(g.finish_reason) })
        })
        .collect();
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": s.name,
        "choices": choices,
        "usage": usage(prompt_tokens, completion),
        "culture": culture, "steering": steering.as_str(),
    }))
    .into_response())
}

/// The chat-style `logprobs` object of generated tokens: each token's log-prob and the most
/// likely tokens at its position, from the distribution it was picked from.
pub(super) fn chat_logprobs(tokens: &[StepToken]) -> Value {
    let entry = |piece: &str, logprob: f64| json!({ "token": piece, "logprob": logprob, "bytes": piece.as_bytes() });
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let mut e = entry(&t.piece, t.logprob);
            e["top_logprobs"] =
                Value::Array(t.top.iter().map(|x| entry(&x.piece, x.logprob)).collect());
            e
        })
        .collect();
    json!({ "content": content })
}
