//! The wire format of `culturesteer serve`: OpenAI-shaped requests and answers, their
//! validation, and OpenAI-style JSON errors.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// An error answer: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }
    /// 422: a well-formed request with a value we cannot serve.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_string()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn busy(queued: usize) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("server busy: {queued} requests already queued; retry later"),
            )
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 413 | 422 => "invalid_request_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            _ => "server_error",
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": { "message": self.message, "type": self.kind(), "param": self.param, "code": self.status.as_u16() } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

/// How long a request body may take to arrive once its headers are in (slow senders hold a
/// connection and a task; the headers have their own limit in `lifecycle`).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A JSON body parsed in two steps so each failure gets its status: over the size limit 413,
/// not JSON 400, JSON of the wrong shape (unknown type, negative count, …) 422.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let read = axum::body::Bytes::from_request(req, state);
        let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, read)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        status,
                        "request body is larger than the server's limit (--max-body-bytes)",
                    )
                } else {
                    ApiError::new(status, format!("cannot read the request body: {e}"))
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("request body must be a JSON object"));
        }
        for key in [
            "max_tokens",
            "max_completion_tokens",
            "logprobs",
            "n",
            "seed",
        ] {
            if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
                if !(v.is_u64() || (key == "logprobs" && v.is_boolean())) {
                    return Err(ApiError::invalid(
                        key,
                        format!("{key} must be a non-negative integer, got {v}"),
                    ));
                }
            }
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid("body", format!("invalid request: {e}")))
    }
}

/// `"text"` or `["text", …]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The four prompt shapes of `/v1/completions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

/// Fields every generating endpoint shares, plus the steering extension.
#[derive(Debug, Clone, Deserialize)]
pub struct Steering {
    /// ISO 3166-1 alpha-3 code of the culture to answer for.
    pub culture: Option<String>,
    /// `vanilla`, `country-prompt` or `disca` (`disca` only on `/v1/choose`).
    pub steering: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: PromptInput,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub stop: Option<OneOrMany>,
    #[serde(default)]
    pub stream: bool,
    /// OpenAI's `stream_options`: `include_usage` adds a last chunk with the token usage.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub echo: bool,
    /// How many top log-probs per position (OpenAI's legacy integer form).
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub return_tokens_as_token_ids: bool,
    /// culturesteer extension: token ids whose log-probs at the generated position are
    /// reported in `top_logprobs` even when they are not among the top `logprobs`.
    #[serde(default)]
    pub logprob_token_ids: Vec<i64>,
    pub n: Option<u32>,
    #[serde(flatten)]
    pub steering: Steering,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireMessage {
    pub role: String,
    pub content: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<WireMessage>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub stop: Option<OneOrMany>,
    #[serde(default)]
    pub stream: bool,
    /// OpenAI's `stream_options`: `include_usage` adds a last chunk with the token usage.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub logprobs: bool,
    /// With `logprobs`: how many most likely tokens to list at each generated position.
    pub top_logprobs: Option<u32>,
    pub n: Option<u32>,
    #[serde(flatten)]
    pub steering: Steering,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChooseRequest {
    pub model: Option<String>,
    pub question: String,
    pub options: Vec<String>,
    pub culture: String,
    pub steering: Option<String>,
    /// Moral dimension whose DISCA decision temperature applies (default `utilitarianism`).
    pub category: Option<String>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenizeRequest {
    pub content: Option<String>,
    pub prompt: Option<String>,
    /// llama.cpp's name; vLLM's is `add_special_tokens`. Default true.
    pub add_special: Option<bool>,
    pub add_special_tokens: Option<bool>,
    #[serde(default)]
    pub with_pieces: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetokenizeRequest {
    pub tokens: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateRequest {
    pub messages: Vec<WireMessage>,
}

/// The text of a message's `content`: a string, or OpenAI's array of `{"type": "text"}` parts.
pub fn content_text(v: &Value, at: usize) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => Ok(t.to_string()),
                    _ => Err(ApiError::invalid(
                        &format!("messages[{at}].content"),
                        "only text content parts are supported",
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join("")),
        Value::Null => Ok(String::new()),
        _ => Err(ApiError::invalid(
            &format!("messages[{at}].content"),
            "content must be a string or an array of text parts",
        )),
    }
}
