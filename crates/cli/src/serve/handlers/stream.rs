//! Server-sent events for `stream: true`, fed by the model thread.

use crate::serve::api::ApiError;
use crate::serve::worker::{model_error, GenSink, Worker};
use crate::serve::Shared;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use culturesteer_llm::{ChatMessage, FinishReason, GenerateRequest, StepToken, StreamStep};
use serde_json::Value;

/// An SSE stream fed by the model thread: a chunk whenever text becomes final (with the
/// log-probs of the tokens picked since the last chunk, when asked), then the finish chunk and,
/// with `include_usage`, the usage chunk. When the client goes away the receiver is dropped and
/// the generation leaves at its next step.
///
/// The response starts with the model thread's first message: a request the model refuses
/// (a prompt longer than the context, …) gets its HTTP error status, not a 200 with an error
/// event.
pub(super) async fn stream_response(
    s: &Shared,
    req: GenerateRequest,
    chat_messages: Option<Vec<ChatMessage>>,
    include_usage: bool,
    top_logprobs: Option<usize>,
    frame: impl Fn(Option<&str>, Option<FinishReason>, &[StepToken]) -> Value + Send + Sync + 'static,
) -> Result<Response, ApiError> {
    // Unbounded: the model thread never waits for a slow reader (a stream holds at most
    // max_tokens chunks).
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Value, ApiError>>();
    s.submit(Box::new(move |w: &mut Worker| {
        let mut req = req;
        if let Some(msgs) = chat_messages {
            match w.lm.chat_prompt(&msgs) {
                Ok(p) => req.prompt = p,
                Err(e) => {
                    let _ = tx.send(Err(model_error(e)));
                    return;
                }
            }
        }
        let probe = tx.clone();
        let mut pending: Vec<StepToken> = Vec::new();
        let on_step = move |m: Result<StreamStep, ApiError>| -> bool {
            let step = match m {
                Ok(step) => step,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return false;
                }
            };
            pending.extend(step.token);
            if !step.text.is_empty()
                && tx
                    .send(Ok(frame(Some(&step.text), None, &pending)))
                    .is_err()
            {
                return false;
            }
            if !step.text.is_empty() {
                pending.clear();
            }
            if let Some(g) = step.finished {
                let _ = tx.send(Ok(frame(None, Some(g.finish_reason), &pending)));
                if include_usage {
                    // OpenAI's shape: one more chunk, no choices, the usage.
                    let mut last = frame(None, None, &[]);
                    last["choices"] = Value::Array(vec![]);
                    last["usage"] = super::usage(g.prompt_tokens, g.tokens.len());
                    let _ = tx.send(Ok(last));
                }
                return false;
            }
            !tx.is_closed()
        };
        w.generate(
            req,
            top_logprobs,
            GenSink {
                on_step: Box::new(on_step),
                gone: Box::new(move || probe.is_closed()),
            },
        );
    }))?;
    let mut rx = rx;
    let first = match rx.recv().await {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(e),
        None => return Err(ApiError::internal("the model thread dropped the request")),
    };
    let rest = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
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
