//! `POST /v1/choose`: steered probabilities over given options (where DISCA applies).

use super::now;
use crate::serve::api::{ApiError, ChooseRequest, JsonBody};
use crate::serve::worker::Steering;
use crate::serve::Shared;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use culturesteer_core::MoralDimension;
use serde_json::{json, Value};

pub(in crate::serve) async fn choose(
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
