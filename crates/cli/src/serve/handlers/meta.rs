//! `GET /health` and `GET /v1/models`.

use crate::serve::Shared;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

pub(in crate::serve) async fn health(State(s): State<Shared>) -> Json<Value> {
    Json(
        json!({ "status": "ok", "model": s.name, "queued": s.queued.load(Ordering::SeqCst), "max_queue": s.limits.max_queue }),
    )
}

pub(in crate::serve) async fn models(State(s): State<Shared>) -> Json<Value> {
    Json(
        json!({ "object": "list", "data": [{ "id": s.name, "object": "model", "created": 0, "owned_by": "culturesteer" }] }),
    )
}
