//! llama.cpp-shaped helpers for exact scoring: `POST /tokenize`, `/detokenize`,
//! `/apply-template`.

use super::wire_messages;
use crate::serve::api::{ApiError, DetokenizeRequest, JsonBody, TemplateRequest, TokenizeRequest};
use crate::serve::worker::model_error;
use crate::serve::Shared;
use axum::extract::State;
use axum::Json;
use culturesteer_llm::TokenId;
use serde_json::{json, Value};

pub(in crate::serve) async fn tokenize(
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

pub(in crate::serve) async fn detokenize(
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

pub(in crate::serve) async fn apply_template(
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
