//! Continuous generation on the llama backend ([`crate::streams`]): each open stream owns one
//! KV sequence after the `n_seq` work sequences. Opening evaluates the prompt exactly as a
//! generation call would (the same plan, cut at the same micro-batch boundaries) and moves it
//! into the stream's sequence; each step decodes one token per open stream: one sequence per
//! decode call by default, so a stream's tokens do not depend on the others, or all in one call
//! with `parallel_generation`.

use super::{decode_next, generation_paths, GenState, LlamaLm, RunStats};
use crate::backend::LanguageModel;
use crate::error::{LlmError, Result};
use crate::sampling::{log_sum_exp, top_k};
use crate::streams::{StepToken, StreamId, StreamStep, Streams};
use crate::types::{GenerateRequest, TokenId, TokenLogprob};
use llama_cpp_2::token::LlamaToken;

/// The open streams of one backend.
#[derive(Default)]
pub(super) struct StreamTable {
    next: u64,
    open: Vec<Open>,
}

impl StreamTable {
    pub(super) fn open(&self) -> usize {
        self.open.len()
    }
}

struct Open {
    id: StreamId,
    seq: usize,
    request: GenerateRequest,
    state: GenState,
    prompt_len: usize,
    top: Option<usize>,
    /// The logits the next token is picked from.
    logits: Vec<f32>,
}

/// The log-probability of `token` under `logits` and the `k` most likely tokens (ids only;
/// pieces are added by the caller).
fn step_logprobs(logits: &[f32], token: TokenId, k: usize) -> (f64, Vec<(TokenId, f64)>) {
    let lse = log_sum_exp(logits);
    let lp = |i: usize| logits.get(i).map_or(f64::NEG_INFINITY, |&z| z as f64 - lse);
    let top = top_k(logits, k)
        .into_iter()
        .map(|i| (TokenId(i as i32), lp(i)))
        .collect();
    (lp(token.0 as usize), top)
}

impl Streams for LlamaLm {
    fn stream_slots(&self) -> usize {
        self.config.stream_slots
    }

    fn open_streams(&self) -> usize {
        self.streams.open.len()
    }

    fn open_stream(
        &mut self,
        request: &GenerateRequest,
        top_logprobs: Option<usize>,
    ) -> Result<StreamId> {
        self.open_stream_batch(&[(request, top_logprobs)])
            .pop()
            .unwrap_or_else(|| Err(LlmError::Decode("no stream was opened".into())))
    }

    /// Validates each request, then evaluates the valid prompts in one plan per group of
    /// `n_seq` (prefixes shared; packed into multi-sequence decodes with `pack_sequences`,
    /// whose KV then depends on the batch and is kept out of the prefix cache) and moves each
    /// into its stream's sequence.
    fn open_stream_batch(
        &mut self,
        requests: &[(&GenerateRequest, Option<usize>)],
    ) -> Vec<Result<StreamId>> {
        // Soft-prompt rows are numbered per call: such requests open one at a time.
        if requests.len() > 1 && requests.iter().any(|(r, _)| r.prompt.soft.is_some()) {
            return requests
                .iter()
                .map(|(r, top)| self.open_stream(r, *top))
                .collect();
        }
        let n_seq = self.config.n_seq;
        let mut free = (n_seq..n_seq + self.config.stream_slots)
            .filter(|s| self.streams.open.iter().all(|o| o.seq != *s))
            .collect::<Vec<_>>()
            .into_iter();
        let mut out: Vec<Option<Result<StreamId>>> = requests.iter().map(|_| None).collect();
        // (request index, prompt tokens, stream sequence)
        let mut valid: Vec<(usize, Vec<TokenId>, usize)> = Vec::new();
        for (i, (r, _)) in requests.iter().enumerate() {
            match self.generation_prompts(std::slice::from_ref(*r)) {
                Ok(mut p) => match free.next() {
                    Some(seq) => valid.push((i, p.remove(0), seq)),
                    None => {
                        out[i] = Some(Err(LlmError::Context(format!(
                            "all {} stream slots are taken",
                            self.config.stream_slots
                        ))))
                    }
                },
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let packed = self.config.pack_sequences;
        for group in valid.chunks(n_seq.max(1)) {
            let prompts: Vec<Vec<TokenId>> = group.iter().map(|(_, p, _)| p.clone()).collect();
            let paths = generation_paths(&prompts);
            let plan = self.plan(&paths);
            let mut stats = RunStats {
                tokens_requested: paths.iter().map(|p| p.tokens.len()).sum(),
                ..RunStats::default()
            };
            let full = vec![true; plan.reads.len()];
            let run = self.run_plan(&plan, true, &full, &mut stats);
            match run {
                Ok((_, leaves, rows)) => {
                    if !packed {
                        self.store_leaves(&plan, &leaves);
                    }
                    for (k, (i, prompt, seq)) in group.iter().enumerate() {
                        let leaf = plan.path_leaf[k];
                        let slot = leaves.iter().find(|(l, _)| *l == leaf).map(|(_, s)| *s);
                        let logits = rows.get(&plan.path_reads[k][0]).cloned();
                        let (Some(slot), Some(logits)) = (slot, logits) else {
                            out[*i] = Some(Err(LlmError::Decode(
                                "the prompt's sequence was not kept".into(),
                            )));
                            continue;
                        };
                        let seq = *seq;
                        self.inner
                            .with_dependent_mut(|_, ctx| ctx.copy_seq(slot, seq));
                        let (request, top) = requests[*i];
                        let id = StreamId(self.streams.next);
                        self.streams.next += 1;
                        self.streams.open.push(Open {
                            id,
                            seq,
                            state: GenState::new(request, prompt.len()),
                            request: request.clone(),
                            prompt_len: prompt.len(),
                            top,
                            logits,
                        });
                        out[*i] = Some(Ok(id));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for (i, _, _) in group {
                        out[*i] = Some(Err(LlmError::Decode(msg.clone())));
                    }
                }
            }
            self.totals.add(&stats);
            self.inner.with_dependent_mut(|_, ctx| {
                for s in 0..n_seq {
                    ctx.clear_seq(s);
                }
            });
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(LlmError::Decode("no stream was opened".into()))))
            .collect()
    }

    fn step_streams(&mut self) -> Result<Vec<StreamStep>> {
        let n_vocab = self.n_vocab;
        let limit = self.config.ctx_per_seq;
        let parallel = self.config.parallel_generation;
        let open = &mut self.streams.open;
        let mut picked: Vec<(String, Option<(TokenId, f64, Vec<(TokenId, f64)>)>)> =
            Vec::with_capacity(open.len());
        let mut stats = RunStats::default();
        let result = self.inner.with_dependent_mut(|model, ctx| -> Result<()> {
            let vocab = model.vocab();
            let mut active: Vec<(usize, LlamaToken, usize)> = Vec::new();
            for (i, o) in open.iter_mut().enumerate() {
                let mut text = String::new();
                let before = o.state.tokens.len();
                let logits = &o.logits[..n_vocab.min(o.logits.len())];
                let tok = {
                    let mut sink = |_: usize, t: &str| {
                        text.push_str(t);
                        true
                    };
                    if o.state.done.is_some() {
                        None
                    } else {
                        o.state
                            .advance(&o.request, i, logits, &vocab, limit, Some(&mut sink))
                    }
                };
                let token = (o.state.tokens.len() > before).then(|| {
                    let t = o.state.tokens[before];
                    match o.top {
                        Some(k) => {
                            let (lp, top) = step_logprobs(logits, t, k);
                            (t, lp, top)
                        }
                        // Not asked: the log-sum-exp over the vocabulary is skipped.
                        None => (t, f64::NAN, vec![]),
                    }
                });
                if let Some(tok) = tok {
                    active.push((i, tok, o.state.pos));
                    o.state.pos += 1;
                }
                picked.push((text, token));
            }
            if active.is_empty() {
                return Ok(());
            }
            let slots: Vec<usize> = open.iter().map(|o| o.seq).collect();
            let mut current: Vec<Vec<f32>> = open
                .iter_mut()
                .map(|o| std::mem::take(&mut o.logits))
                .collect();
            let mut batch = super::raw::Batch::tokens(active.len().max(1));
            let r = decode_next(
                ctx,
                &mut batch,
                &active,
                &slots,
                parallel,
                &mut current,
                &mut stats,
            );
            for (o, l) in open.iter_mut().zip(current) {
                o.logits = l;
            }
            r
        });
        self.totals.add(&stats);
        if let Err(e) = result {
            let ids: Vec<StreamId> = self.streams.open.iter().map(|o| o.id).collect();
            for id in ids {
                self.close_stream(id);
            }
            return Err(e);
        }
        let mut out = Vec::with_capacity(picked.len());
        let mut finished = Vec::new();
        for (o, (text, token)) in self.streams.open.iter().zip(picked) {
            out.push(StreamStep {
                id: o.id,
                text,
                token: token.map(|(t, logprob, top)| StepToken {
                    token: t,
                    piece: self.token_piece(t),
                    logprob,
                    top: top
                        .into_iter()
                        .map(|(t, logprob)| TokenLogprob {
                            token: t,
                            piece: self.token_piece(t),
                            logprob,
                        })
                        .collect(),
                }),
                finished: None,
            });
            if o.state.done.is_some() {
                finished.push(o.id);
            }
        }
        for id in finished {
            let i = self
                .streams
                .open
                .iter()
                .position(|o| o.id == id)
                .ok_or_else(|| LlmError::Decode("a finished stream vanished".into()))?;
            let o = self.streams.open.swap_remove(i);
            let seq = o.seq;
            self.inner.with_dependent_mut(|_, ctx| ctx.clear_seq(seq));
            let (g, rest) = o.state.finish(o.prompt_len);
            if let Some(step) = out.iter_mut().find(|s| s.id == id) {
                step.text.push_str(&rest);
                step.finished = Some(g);
            }
        }
        Ok(out)
    }

    fn close_stream(&mut self, id: StreamId) {
        if let Some(i) = self.streams.open.iter().position(|o| o.id == id) {
            let seq = self.streams.open.swap_remove(i).seq;
            self.inner.with_dependent_mut(|_, ctx| ctx.clear_seq(seq));
        }
    }
}
