//! A scripted stand-in model for tests (feature `standin`): no llama.cpp, answers in
//! microseconds, and records what it was asked.
//!
//! Log-probabilities come from a script, a function of (prompt text, candidate text); the
//! default script is a fixed pseudo-random function of both, so answers differ between prompts
//! and stay the same between runs. Generated text comes from a second script (default: empty).
//! Tokens are Unicode scalar values: token id = code point, piece = the character.

use crate::backend::{LanguageModel, ModelDescription};
use crate::error::{LlmError, Result};
use crate::streams::{StepToken, StreamId, StreamStep, Streams};
use crate::types::*;
use std::sync::{Arc, Mutex};

/// Log-probability of `candidate` following `prompt`.
pub type LogprobScript = Box<dyn Fn(&str, &str) -> f64 + Send>;
/// The text generated after `prompt`.
pub type ReplyScript = Box<dyn Fn(&str) -> String + Send>;

/// One call the stand-in answered: its kind and the prompt texts, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Score(Vec<String>),
    Generate(Vec<String>),
}

/// What a stand-in was asked so far (a handle that stays valid after the model is moved).
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>, Arc<Mutex<Vec<usize>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// For each [`Streams::step_streams`](crate::streams::Streams::step_streams) so far, how
    /// many streams it advanced.
    pub fn steps(&self) -> Vec<usize> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Prompts scored so far, over all calls.
    pub fn scored_prompts(&self) -> usize {
        self.calls()
            .iter()
            .map(|c| match c {
                Call::Score(p) => p.len(),
                Call::Generate(_) => 0,
            })
            .sum()
    }

    /// Prompts generated from so far, over all calls.
    pub fn generated_prompts(&self) -> usize {
        self.calls()
            .iter()
            .map(|c| match c {
                Call::Generate(p) => p.len(),
                Call::Score(_) => 0,
            })
            .sum()
    }

    fn push(&self, call: Call) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }

    fn step(&self, streams: usize) {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(streams);
    }
}

/// The scripted stand-in model.
pub struct StandIn {
    logprob: LogprobScript,
    reply: ReplyScript,
    refuse: bool,
    /// Longest prompt, in tokens (characters), like a context length.
    context: Option<usize>,
    log: CallLog,
    /// Continuous generation: slots, the next id, and the open streams (each the tokens still
    /// to emit, one per step, and the generation they add up to).
    slots: usize,
    step_delay: std::time::Duration,
    next_stream: u64,
    open: Vec<(StreamId, std::collections::VecDeque<TokenId>, Generation)>,
    /// Steps a queued stream's prompt takes (by prompt text; `None`: queued streams open at
    /// once), and the steps each pending stream still waits.
    prefill: Option<PrefillScript>,
    pending: Vec<(StreamId, usize)>,
}

type PrefillScript = Box<dyn Fn(&str) -> usize + Send>;

/// FNV-1a, the default script's source of pseudo-randomness.
fn fnv(parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The default script: a log-probability in [−6, −0.1], fixed for (prompt, candidate).
pub fn pseudo_random_logprob(prompt: &str, candidate: &str) -> f64 {
    -0.1 - (fnv(&[prompt, candidate]) % 5901) as f64 / 1000.0
}

impl Default for StandIn {
    fn default() -> Self {
        Self::new()
    }
}

impl StandIn {
    /// The default scripts: pseudo-random log-probabilities, empty generations.
    pub fn new() -> Self {
        Self {
            logprob: Box::new(pseudo_random_logprob),
            reply: Box::new(|_| String::new()),
            refuse: false,
            context: None,
            log: CallLog::default(),
            slots: 0,
            step_delay: std::time::Duration::ZERO,
            next_stream: 0,
            open: Vec::new(),
            prefill: None,
            pending: Vec::new(),
        }
    }

    /// A stand-in that fails every score and generate call (a test that must not need the
    /// model, such as a resume with every item done).
    pub fn refusing() -> Self {
        Self {
            refuse: true,
            ..Self::new()
        }
    }

    pub fn with_logprobs(mut self, script: impl Fn(&str, &str) -> f64 + Send + 'static) -> Self {
        self.logprob = Box::new(script);
        self
    }

    pub fn with_replies(mut self, script: impl Fn(&str) -> String + Send + 'static) -> Self {
        self.reply = Box::new(script);
        self
    }

    /// Offers continuous generation ([`crate::streams`]) with `slots` streams: a stream emits
    /// its scripted reply one character per step.
    pub fn with_stream_slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        self
    }

    /// Streams opened with [`Streams::queue_streams`] wait `steps(prompt)` steps, without a
    /// step of their own, before they emit (a co-scheduled prefill, as the llama backend's with
    /// `parallel_generation`).
    pub fn with_prefill_steps(mut self, steps: impl Fn(&str) -> usize + Send + 'static) -> Self {
        self.prefill = Some(Box::new(steps));
        self
    }

    /// Each step takes this long (a slow model, for tests of what happens meanwhile).
    pub fn with_step_delay(mut self, delay: std::time::Duration) -> Self {
        self.step_delay = delay;
        self
    }

    /// Prompts longer than `tokens` characters fail as llama.cpp's context limit does.
    pub fn with_context(mut self, tokens: usize) -> Self {
        self.context = Some(tokens);
        self
    }

    fn fits(&self, index: usize, prompt: &str) -> Result<()> {
        let tokens = prompt.chars().count();
        match self.context {
            Some(limit) if tokens > limit => Err(LlmError::PromptTooLong {
                index,
                tokens,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// The record of calls (clone it before handing the model to a method or runner).
    pub fn log(&self) -> CallLog {
        self.log.clone()
    }

    fn check(&self, what: &'static str) -> Result<()> {
        if self.refuse {
            return Err(LlmError::Unsupported(what));
        }
        Ok(())
    }
}

impl LanguageModel for StandIn {
    fn describe(&self) -> ModelDescription {
        ModelDescription {
            backend: "stand-in".into(),
            source: "scripted stand-in model".into(),
            architecture: None,
            parameters: None,
            context_train: None,
            vocab_size: None,
            embedding_size: None,
            layers: None,
            has_chat_template: false,
            chat_format: "plain".into(),
        }
    }

    /// The messages' contents joined by blank lines.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        Ok(Prompt::from(
            messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
        ))
    }

    fn tokenize(&self, text: &str) -> Result<Vec<TokenId>> {
        Ok(text.chars().map(|c| TokenId(c as i32)).collect())
    }

    fn streams(&mut self) -> Option<&mut dyn Streams> {
        if self.slots > 0 {
            Some(self)
        } else {
            None
        }
    }

    fn token_piece(&self, token: TokenId) -> String {
        char::from_u32(token.0 as u32).map_or_else(String::new, String::from)
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        self.check("scoring (refusing stand-in)")?;
        for (i, r) in requests.iter().enumerate() {
            self.fits(i, &r.prompt.text)?;
        }
        self.log.push(Call::Score(
            requests.iter().map(|r| r.prompt.text.clone()).collect(),
        ));
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.prompt_logprobs {
                    return Err(LlmError::InvalidRequest {
                        index: i,
                        what: "prompt log-probs are not scripted".into(),
                    });
                }
                let p = &r.prompt.text;
                let next_token_logprobs = r
                    .next_tokens
                    .iter()
                    .map(|t| (self.logprob)(p, &self.token_piece(*t)))
                    .collect();
                let continuations = r
                    .continuations
                    .iter()
                    .map(|c| {
                        let tokens = self.tokenize(c)?;
                        let logprob = (self.logprob)(p, c);
                        let n = tokens.len().max(1) as f64;
                        Ok(ContinuationScore {
                            text: c.clone(),
                            token_logprobs: vec![logprob / n; tokens.len()],
                            tokens,
                            logprob,
                        })
                    })
                    .collect::<Result<_>>()?;
                // Top-k over the capital letters, by script.
                let mut top: Vec<TokenLogprob> = ('A'..='Z')
                    .map(|c| TokenLogprob {
                        token: TokenId(c as i32),
                        piece: c.to_string(),
                        logprob: (self.logprob)(p, &c.to_string()),
                    })
                    .collect();
                top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
                top.truncate(r.top_k);
                Ok(ScoreResult {
                    prompt_tokens: p.chars().count(),
                    next_token_logprobs,
                    continuations,
                    top_k: top,
                    ..Default::default()
                })
            })
            .collect()
    }

    fn generate(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Generation>> {
        self.check("generation (refusing stand-in)")?;
        for (i, r) in requests.iter().enumerate() {
            self.fits(i, &r.prompt.text)?;
        }
        self.log.push(Call::Generate(
            requests.iter().map(|r| r.prompt.text.clone()).collect(),
        ));
        Ok(requests
            .iter()
            .map(|r| {
                let full = (self.reply)(&r.prompt.text);
                let stop_at = r
                    .stop
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| full.find(s.as_str()))
                    .min();
                let (text, mut finish) = match stop_at {
                    Some(i) => (full[..i].to_string(), FinishReason::Stop),
                    None => (full.clone(), FinishReason::Stop),
                };
                let mut text: String = text;
                if text.chars().count() > r.max_tokens {
                    text = text.chars().take(r.max_tokens).collect();
                    finish = FinishReason::Length;
                }
                Generation {
                    tokens: text.chars().map(|c| TokenId(c as i32)).collect(),
                    prompt_tokens: r.prompt.text.chars().count(),
                    text,
                    finish_reason: finish,
                }
            })
            .collect())
    }
}

impl Streams for StandIn {
    fn stream_slots(&self) -> usize {
        self.slots
    }

    fn open_streams(&self) -> usize {
        self.open.len()
    }

    /// Generates the whole reply at once (a `Generate` call in the log) and hands it out one
    /// token per step; `top_logprobs` are not scripted (always empty).
    fn open_stream(&mut self, request: &GenerateRequest, _top: Option<usize>) -> Result<StreamId> {
        if self.open.len() >= self.slots {
            return Err(LlmError::Context(format!(
                "all {} stream slots are taken",
                self.slots
            )));
        }
        let g = self
            .generate(std::slice::from_ref(request))?
            .pop()
            .ok_or_else(|| LlmError::Decode("no generation".into()))?;
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        self.open.push((id, g.tokens.iter().copied().collect(), g));
        Ok(id)
    }

    fn queue_streams(
        &mut self,
        requests: &[(&GenerateRequest, Option<usize>)],
    ) -> Vec<Result<StreamId>> {
        requests
            .iter()
            .map(|(r, top)| {
                let id = self.open_stream(r, *top)?;
                if let Some(steps) = &self.prefill {
                    self.pending.push((id, steps(&r.prompt.text)));
                }
                Ok(id)
            })
            .collect()
    }

    fn step_streams(&mut self) -> Result<Vec<StreamStep>> {
        self.log.step(self.open.len());
        std::thread::sleep(self.step_delay);
        let mut out = Vec::with_capacity(self.open.len());
        let mut waited = Vec::new();
        for (id, rest, g) in &mut self.open {
            if let Some((_, n)) = self.pending.iter_mut().find(|(p, n)| p == id && *n > 0) {
                *n -= 1;
                waited.push(*id);
                continue;
            }
            let token = rest.pop_front().map(|t| StepToken {
                token: t,
                piece: char::from_u32(t.0 as u32).map_or_else(String::new, String::from),
                logprob: -0.5,
                top: vec![],
            });
            out.push(StreamStep {
                id: *id,
                text: token.as_ref().map(|t| t.piece.clone()).unwrap_or_default(),
                token,
                finished: rest.is_empty().then(|| g.clone()),
            });
        }
        self.open
            .retain(|(id, rest, _)| !rest.is_empty() || waited.contains(id));
        self.pending.retain(|(_, n)| *n > 0);
        Ok(out)
    }

    fn close_stream(&mut self, id: StreamId) {
        self.open.retain(|(i, _, _)| *i != id);
        self.pending.retain(|(i, _)| *i != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_scores_and_generations_are_recorded() {
        let mut lm = StandIn::new()
            .with_logprobs(|p, c| {
                if c == "B" && p.contains("spare") {
                    -0.1
                } else {
                    -3.0
                }
            })
            .with_replies(|p| format!("{p} and so on. END more"));
        let log = lm.log();
        let ids = lm
            .resolve_answer_tokens(&Prompt::from("Choice: "), &["A", "B"])
            .unwrap();
        assert_eq!(ids, vec![TokenId('A' as i32), TokenId('B' as i32)]);
        let r = lm
            .score(&[ScoreRequest::next_tokens("spare whom?", ids.clone())])
            .unwrap();
        assert_eq!(r[0].next_token_logprobs, vec![-3.0, -0.1]);
        let g = lm
            .generate(&[GenerateRequest {
                prompt: Prompt::from("hi"),
                max_tokens: 100,
                sampling: Sampling::Greedy,
                stop: vec!["END".into()],
            }])
            .unwrap();
        assert_eq!(g[0].text, "hi and so on. ");
        assert_eq!(g[0].finish_reason, FinishReason::Stop);
        let g = lm
            .generate(&[GenerateRequest {
                prompt: Prompt::from("hi"),
                max_tokens: 2,
                sampling: Sampling::Greedy,
                stop: vec![],
            }])
            .unwrap();
        assert_eq!(
            (g[0].text.as_str(), g[0].finish_reason),
            ("hi", FinishReason::Length)
        );
        assert_eq!(log.scored_prompts(), 1);
        assert_eq!(log.generated_prompts(), 2);
        assert_eq!(log.calls()[0], Call::Score(vec!["spare whom?".into()]));
    }

    #[test]
    fn the_default_script_is_fixed_and_a_refusing_stand_in_refuses() {
        let a = pseudo_random_logprob("p", "A");
        assert_eq!(a, pseudo_random_logprob("p", "A"));
        assert!((-6.0..=-0.1).contains(&a));
        assert_ne!(a, pseudo_random_logprob("q", "A"));
        let mut lm = StandIn::refusing();
        assert!(lm
            .score(&[ScoreRequest::next_tokens("x", vec![TokenId(65)])])
            .is_err());
        assert!(lm.log().calls().is_empty());
    }
}
