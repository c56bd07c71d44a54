//! `culturesteer serve`: an OpenAI-compatible server that answers as the steered model.
//!
//! Routes: `GET /health`, `GET /metrics` (Prometheus), `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`
//! (both with `stream` over server-sent events), `POST /v1/choose` (steered probabilities over
//! given options, where DISCA applies), and the helpers clients need for exact scoring:
//! `POST /tokenize`, `/detokenize`, `/apply-template` (llama.cpp's server shapes).
//!
//! One model thread runs jobs from a bounded queue (full queue: 429 with `Retry-After`); the
//! async front end validates requests before they queue, so bad input costs no model time.

mod access;
pub mod api;
mod args;
mod handlers;
mod lifecycle;
mod metrics;
mod state;
#[cfg(test)]
mod tests;
pub mod worker;

pub use access::Access;
pub use args::{Limits, ServeArgs};
pub use lifecycle::{run, start};
pub use state::AppState;

use api::ApiError;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use handlers::{apply_template, chat, choose, completions, detokenize, health, models, tokenize};
use state::Shared;

/// Builds the router (tests and `bench serve` start it on a loopback port).
pub fn router(state: Shared, max_body: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/choose", post(choose))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/apply-template", post(apply_template))
        .fallback(|| async { ApiError::not_found("no such route (see /v1/models, /v1/completions, /v1/chat/completions, /v1/choose, /health)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route (GET /health and /v1/models; POST for the rest)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
