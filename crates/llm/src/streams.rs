//! Continuous generation: many requests advanced a token at a time, joining and leaving
//! between steps (the server's scheduler drives it; see `crates/cli/src/serve/worker.rs`).
//!
//! A backend that offers it returns itself from
//! [`LanguageModel::streams`](crate::LanguageModel::streams). Each open stream owns one KV
//! sequence: its prompt is evaluated when it is opened (or, when queued with
//! [`Streams::queue_streams`] on a backend that co-schedules prefill, a slice of it at each
//! step, in the same decode as the running streams' tokens), and every
//! [`Streams::step_streams`] decodes the tokens picked last and picks one more token for every
//! generating stream. A stream's tokens do
//! not depend on which other streams are open when the backend decodes one sequence per call
//! (the llama backend's default); with shared decode calls they are the same up to the
//! engine's rounding (tested on the real model: greedy tokens equal the alone run's; with
//! co-scheduled prefill, up to the alone run's first near-tie, as prompt log-probs move by up
//! to ~0.2 nats in multi-sequence micro-batches).

use crate::error::Result;
use crate::types::{GenerateRequest, Generation, TokenId, TokenLogprob};

/// Names one open stream of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// The token a step picked, with its log-probability under the distribution it was picked
/// from (the model's, before temperature) and the most likely alternatives when they were
/// asked for at [`Streams::open_stream`] (without `top_logprobs` the log-prob is NaN: it costs
/// a pass over the vocabulary).
#[derive(Debug, Clone, PartialEq)]
pub struct StepToken {
    pub token: TokenId,
    pub piece: String,
    pub logprob: f64,
    /// Best first; empty unless asked for.
    pub top: Vec<TokenLogprob>,
}

/// What one step did for one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStep {
    pub id: StreamId,
    /// Text that became final at this step: complete characters that can no longer be part of
    /// a stop string (possibly empty). The texts of a stream's steps add up to its generation.
    pub text: String,
    /// The token picked at this step; `None` when the step ended the stream without one (an
    /// end-of-generation token, a stop string completed, or `max_tokens` 0).
    pub token: Option<StepToken>,
    /// Set on the stream's last step (it is closed then): the whole generation.
    pub finished: Option<Generation>,
}

/// Continuous generation over a fixed number of stream slots.
pub trait Streams {
    /// How many streams can be open at once.
    fn stream_slots(&self) -> usize;

    /// How many are open now.
    fn open_streams(&self) -> usize;

    /// Evaluates the request's prompt into a free slot and opens a stream on it. With
    /// `top_logprobs`, each step also reports that many most likely tokens. Fails when every
    /// slot is taken or the request is invalid (the same checks as
    /// [`LanguageModel::generate`](crate::LanguageModel::generate)).
    fn open_stream(
        &mut self,
        request: &GenerateRequest,
        top_logprobs: Option<usize>,
    ) -> Result<StreamId>;

    /// Opens a stream for each request, evaluating their prompts together where the backend
    /// can (shared prefixes once; with shared decode calls, one batch). One result per request,
    /// in order. The default opens them one by one.
    fn open_stream_batch(
        &mut self,
        requests: &[(&GenerateRequest, Option<usize>)],
    ) -> Vec<Result<StreamId>> {
        requests
            .iter()
            .map(|(r, top)| self.open_stream(r, *top))
            .collect()
    }

    /// Opens a stream for each request with its prompt *pending*: the request is checked now
    /// (the same checks and errors as [`Streams::open_stream_batch`], slots included), and a
    /// backend that co-schedules prefill evaluates the prompt during the following
    /// [`Streams::step_streams`] calls, together with the running streams' tokens; the stream
    /// reports its first step once its prompt is done. One result per request, in order. The
    /// default evaluates the prompts now ([`Streams::open_stream_batch`]).
    fn queue_streams(
        &mut self,
        requests: &[(&GenerateRequest, Option<usize>)],
    ) -> Vec<Result<StreamId>> {
        self.open_stream_batch(requests)
    }

    /// One token for every open stream whose prompt has been evaluated (streams whose queued
    /// prompt is still pending get no step; a slice of their prompt is evaluated instead).
    /// Streams that end are closed and carry their [`Generation`]. An error leaves every
    /// stream closed.
    fn step_streams(&mut self) -> Result<Vec<StreamStep>>;

    /// Closes a stream early (its reader went away) and frees its slot; unknown ids are
    /// ignored.
    fn close_stream(&mut self, id: StreamId);
}
