//! The HTTP handlers, one file per endpoint group, and the request helpers they share.

mod chat;
mod choose;
mod completions;
mod meta;
mod stream;
mod tokens;

pub(super) use chat::chat;
pub(super) use choose::choose;
pub(super) use completions::completions;
pub(super) use meta::{health, models};
pub(super) use tokens::{apply_template, detokenize, tokenize};

use super::api::{content_text, ApiError, OneOrMany, WireMessage};
use culturesteer_llm::{ChatMessage, FinishReason, Role};
use serde_json::{json, Value};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Most choices one request may ask for (`n`).
const MAX_N: u32 = 16;

/// The number of choices asked for (`n`, default 1). Streams and scoring answer one choice per
/// prompt; generation up to [`MAX_N`], the `j`-th seeded with the request's seed + `j`.
fn check_n(n: Option<u32>, single: Option<&str>) -> Result<usize, ApiError> {
    match (n.unwrap_or(1), single) {
        (0, _) => Err(ApiError::invalid("n", "n must be at least 1")),
        (1, _) => Ok(1),
        (n, Some(why)) => Err(ApiError::invalid(
            "n",
            format!("n = {n}: {why} returns one choice per prompt"),
        )),
        (n, None) if n > MAX_N => Err(ApiError::invalid(
            "n",
            format!("n = {n} is above this server's limit of {MAX_N}"),
        )),
        (n, None) => Ok(n as usize),
    }
}

/// The sampling of a request's `j`-th choice: seeded sampling moves the seed by `j`.
fn nth_sampling(s: &culturesteer_llm::Sampling, j: usize) -> culturesteer_llm::Sampling {
    match s {
        culturesteer_llm::Sampling::Seeded {
            temperature,
            top_p,
            seed,
        } => culturesteer_llm::Sampling::Seeded {
            temperature: *temperature,
            top_p: *top_p,
            seed: seed.wrapping_add(j as u64),
        },
        greedy => greedy.clone(),
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
