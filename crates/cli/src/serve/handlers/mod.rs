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
