//! Server-sent events for `stream: true`, fed by the model thread.

use crate::serve::api::ApiError;
use crate::serve::worker::{model_error, Worker};
use crate::serve::Shared;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use culturesteer_llm::{ChatMessage, FinishReason, GenerateRequest};
use serde_json::Value;
use std::sync::Arc;

/// An SSE stream fed by the model thread. When the client goes away the receiver is dropped,
/// the model thread's next send fails and the generation stops.
///
/// The response starts with the model thread's first message: a request the model refuses
/// (a prompt longer than the context, …) gets its HTTP error status, not a 200 with an error
/// event.
pub(super) async fn stream_response(
    s: &Shared,
    req: GenerateRequest,
    chat_messages: Option<Vec<ChatMessage>>,
    include_usage: bool,
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
                if include_usage {
                    // OpenAI's shape: one more chunk, no choices, the usage.
                    let mut last = f2(None, None);
                    last["choices"] = Value::Array(vec![]);
                    last["usage"] = super::usage(g.prompt_tokens, g.tokens.len());
                    let _ = tx.blocking_send(Ok(last));
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(model_error(e)));
            }
        }
    }))?;
    let mut rx = rx;
    let first = match rx.recv().await {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(e),
        None => return Err(ApiError::internal("the model thread dropped the request")),
    };
    let rest = tokio_stream::wrappers::ReceiverStream::new(rx);
    let all = futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest);
    let events = futures::StreamExt::chain(
        futures::StreamExt::map(all, |m| {
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
