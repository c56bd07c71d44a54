//! Continuous generation on the llama backend ([`crate::streams`]): each open stream owns one
//! KV sequence after the `n_seq` work sequences. Opening evaluates the prompt exactly as a
//! generation call would (the same plan, cut at the same micro-batch boundaries) and moves it
//! into the stream's sequence; each step decodes one token per open stream: one sequence per
//! decode call by default, so a stream's tokens do not depend on the others, or all in one call
//! with `parallel_generation`.
//!
//! With `parallel_generation`, [`Streams::queue_streams`] co-schedules prefill (continuous
//! batching as llama.cpp's server does it): a queued stream is checked and given its sequence
//! at once (a prefix the prefix cache holds is copied in), and each step's decode call carries
//! one token per generating stream plus as many pending prompt tokens as fit in `n_batch`,
//! oldest stream first (a long prompt spreads over several steps). The step that decodes a
//! prompt's last token picks the stream's first token. Such KV depends on what shared the
//! call, so it is not stored in the prefix cache.
//!
//! A step decodes the tokens the previous step picked, then picks each stream's next token
//! from the logits it just produced (as llama.cpp's server samples right after a decode): a
//! stream that ends is answered by the step that gave its last logits, and its slot is free
//! for the next request one step sooner than if picking waited for the next step.
//!
//! With `parallel_generation`, a finished stream's sequence also keeps its KV (prompt and
//! decoded tokens) until another stream needs the slot: a queued prompt takes the free
//! sequence that shares the longest prefix with it and decodes only the rest, as llama.cpp's
//! server reuses a slot's cache (a chat's next turn, or requests that share a system prompt,
//! skip what the slot holds). The exact default keeps nothing: its KV must not depend on what
//! was decoded before.

use super::{generation_paths, GenState, LlamaLm, RunStats};
use crate::backend::LanguageModel;
use crate::error::{LlmError, Result};
use crate::sampling::{log_sum_exp, top_k};
use crate::streams::{StepToken, StreamId, StreamStep, Streams};
use crate::types::{GenerateRequest, TokenId, TokenLogprob};

/// The open streams of one backend.
#[derive(Default)]
pub(super) struct StreamTable {
    next: u64,
    open: Vec<Open>,
    /// Free stream sequences that still hold the KV of a finished stream (kept with
    /// `parallel_generation`, see [`LlamaLm::pick_stream_seq`]), least recently released first.
    kept: Vec<Kept>,
}

/// A free stream sequence's KV: `tokens` at positions `0..tokens.len()`.
struct Kept {
    seq: usize,
    tokens: Vec<TokenId>,
}

impl StreamTable {
    pub(super) fn open(&self) -> usize {
        self.open.len()
    }

    /// Whether any free stream sequence holds KV worth keeping.
    pub(super) fn holds_kept(&self) -> bool {
        !self.kept.is_empty()
    }

    /// Forgets every kept sequence's KV and returns the sequences (for the caller to empty,
    /// or after it emptied the whole cache).
    pub(super) fn forget_kept(&mut self) -> Vec<usize> {
        self.kept.drain(..).map(|k| k.seq).collect()
    }

    /// Opens a stream on sequence `seq`, whose first `in_kv` prompt tokens are in the KV
    /// cache: generating from `logits` (an open that evaluated the prompt), or with the rest
    /// of the prompt pending (`None`). With `keep`,
    /// the stream's KV outlives it for a later prompt that starts the same way.
    fn add(
        &mut self,
        seq: usize,
        (request, top): (&GenerateRequest, Option<usize>),
        prompt: Vec<TokenId>,
        in_kv: usize,
        logits: Option<Vec<f32>>,
        keep: bool,
    ) -> StreamId {
        let id = StreamId(self.next);
        self.next += 1;
        let prompt_len = prompt.len();
        let rest = prompt.get(in_kv..).unwrap_or_default().to_vec();
        self.open.push(Open {
            id,
            seq,
            state: GenState::new(request, prompt_len),
            request: request.clone(),
            prompt,
            top,
            opened: logits,
            next: None,
            rest_pos: prompt_len - rest.len(),
            rest,
            kv_len: in_kv,
            keep,
        });
        id
    }
}

struct Open {
    id: StreamId,
    seq: usize,
    request: GenerateRequest,
    state: GenState,
    prompt: Vec<TokenId>,
    top: Option<usize>,
    /// The logits of the prompt's last position, from an open that evaluated the prompt,
    /// until the next step picks from them (a step's decodes are picked from in place).
    opened: Option<Vec<f32>>,
    /// The token picked from the last logits, to be decoded by the next step.
    next: Option<TokenId>,
    /// Prompt tokens still to be decoded (a queued stream's pending prompt; empty once the
    /// stream generates), the first at position `rest_pos`.
    rest: Vec<TokenId>,
    rest_pos: usize,
    /// Positions `0..kv_len` of the sequence hold the KV of the prompt and then the
    /// generated tokens.
    kv_len: usize,
    /// Whether the sequence's KV is kept when the stream ends.
    keep: bool,
}

impl Open {
    /// Whether prompt tokens wait to be decoded (never for a stream that is done already,
    /// as with `max_tokens` 0).
    fn pending(&self) -> bool {
        !self.rest.is_empty() && self.state.done.is_none()
    }
}

/// One token of a step's decode: a generating stream's next token or a pending prompt token.
struct Entry {
    seq: usize,
    token: TokenId,
    pos: usize,
    /// The stream (index into the open list) that takes this entry's logits.
    logits_for: Option<usize>,
}

/// Decodes a step's entries and hands each flagged entry's logits row, in place right after
/// the call that produced it, to `take` (with the entry's stream): nothing is copied. With
/// `parallel`, in as few calls as `budget` (≤ `n_batch`) allows, ordered by sequence (with one
/// KV stream per sequence, llama.cpp's split puts only consecutive sequence ids into one
/// micro-batch); otherwise one sequence per call, cut at multiples of `n_ubatch` in absolute
/// position.
fn decode_entries(
    ctx: &mut super::raw::Context,
    entries: &mut [Entry],
    parallel: bool,
    budget: usize,
    n_ubatch: usize,
    stats: &mut RunStats,
    mut take: impl FnMut(usize, &[f32]),
) -> Result<()> {
    entries.sort_by_key(|e| (e.seq, e.pos));
    let mut calls: Vec<&[Entry]> = Vec::new();
    if parallel {
        calls.extend(entries.chunks(budget.max(1)));
    } else {
        let mut start = 0;
        for k in 1..=entries.len() {
            if k == entries.len()
                || entries[k].seq != entries[start].seq
                || entries[k].pos.is_multiple_of(n_ubatch.max(1))
            {
                calls.push(&entries[start..k]);
                start = k;
            }
        }
    }
    let capacity = calls.iter().map(|c| c.len()).max().unwrap_or(1).max(1);
    let mut batch = super::raw::Batch::tokens(capacity);
    for call in calls {
        batch.clear();
        for e in call {
            batch.add_token(e.token, e.pos, e.seq, e.logits_for.is_some())?;
        }
        ctx.decode(&mut batch)?;
        stats.decode_calls += 1;
        stats.tokens_evaluated += call.len();
        for (row, e) in call.iter().enumerate() {
            if let Some(i) = e.logits_for {
                take(i, ctx.logits_ith(row)?);
            }
        }
    }
    Ok(())
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

/// What a step reports for one stream.
#[derive(Default)]
struct Picked {
    /// Whether the stream picked at this step.
    reported: bool,
    /// Text that became final.
    text: String,
    /// The picked token, its log-prob (NaN unless asked for) and the top alternatives.
    token: Option<(TokenId, f64, Vec<(TokenId, f64)>)>,
}

/// Picks stream `i`'s next token from `logits`, its last position's (sampler, stop strings
/// and limits as in [`GenState::advance`]); the next step decodes it unless the stream ended.
fn pick(
    o: &mut Open,
    i: usize,
    logits: &[f32],
    vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
    limit: usize,
    out: &mut Picked,
) {
    out.reported = true;
    if o.state.done.is_some() {
        return;
    }
    let before = o.state.tokens.len();
    let next = {
        let mut sink = |_: usize, t: &str| {
            out.text.push_str(t);
            true
        };
        o.state
            .advance(&o.request, i, logits, vocab, limit, Some(&mut sink))
    };
    o.next = next.map(|t| TokenId(t.0));
    // `advance` keeps a token that ended the stream by length, and gives none to decode (its
    // logits would be read by nothing).
    out.token = o.state.tokens.get(before).map(|&t| match o.top {
        Some(k) => {
            let (lp, top) = step_logprobs(logits, t, k);
            (t, lp, top)
        }
        // Not asked: the log-sum-exp over the vocabulary is skipped.
        None => (t, f64::NAN, vec![]),
    });
}

impl LlamaLm {
    /// The stream sequences no open stream holds: empty ones (lowest first), then those that
    /// keep a finished stream's KV (least recently released first).
    fn free_stream_seqs(&self) -> Vec<usize> {
        let n_seq = self.config.n_seq;
        let t = &self.streams;
        let held = |s: &usize| t.open.iter().any(|o| o.seq == *s);
        let kept = |s: &usize| t.kept.iter().any(|k| k.seq == *s);
        (n_seq..n_seq + self.config.stream_slots)
            .filter(|s| !held(s) && !kept(s))
            .chain(t.kept.iter().map(|k| k.seq))
            .collect()
    }

    /// Empties free stream sequence `seq` if it keeps a finished stream's KV.
    fn evict_kept(&mut self, seq: usize) {
        if let Some(k) = self.streams.kept.iter().position(|k| k.seq == seq) {
            self.streams.kept.remove(k);
            self.inner.with_dependent_mut(|_, ctx| ctx.clear_seq(seq));
        }
    }

    /// A free stream sequence for `prompt` and how many of its first tokens that sequence
    /// already holds. As llama.cpp's server reuses a slot's cache: the kept sequence sharing
    /// the longest prefix with the prompt (cut after it, and before the prompt's last token,
    /// whose logits are needed); else an empty sequence, else the least recently released.
    fn pick_stream_seq(&mut self, prompt: &[TokenId]) -> Result<(usize, usize)> {
        let best = self
            .streams
            .kept
            .iter()
            .enumerate()
            .map(|(k, kept)| {
                let n = kept.tokens.iter().zip(prompt).take_while(|(a, b)| a == b);
                (k, n.count().min(prompt.len().saturating_sub(1)))
            })
            .filter(|&(_, n)| n > 0)
            .max_by_key(|&(k, n)| (n, k));
        if let Some((k, n)) = best {
            let seq = self.streams.kept.remove(k).seq;
            self.inner
                .with_dependent_mut(|_, ctx| ctx.remove_from(seq, n));
            return Ok((seq, n));
        }
        let seq = *self
            .free_stream_seqs()
            .first()
            .ok_or_else(|| self.slots_taken())?;
        self.evict_kept(seq);
        Ok((seq, 0))
    }

    /// Ends open stream `i`: its sequence keeps the stream's KV (prompt and decoded tokens)
    /// when the stream allows it, else is emptied.
    fn release(&mut self, i: usize) -> Open {
        let o = self.streams.open.swap_remove(i);
        let seq = o.seq;
        if o.keep && o.kv_len > 0 {
            let all = o.prompt.iter().chain(&o.state.tokens);
            let tokens: Vec<TokenId> = all.take(o.kv_len).copied().collect();
            self.streams.kept.push(Kept { seq, tokens });
        } else {
            self.inner.with_dependent_mut(|_, ctx| ctx.clear_seq(seq));
        }
        o
    }

    fn slots_taken(&self) -> LlmError {
        LlmError::Context(format!(
            "all {} stream slots are taken",
            self.config.stream_slots
        ))
    }

    /// Most tokens one step decodes in one call: `n_batch` (llama.cpp caps it at the context).
    fn step_budget(&self) -> usize {
        let c = &self.config;
        c.n_batch
            .min(c.ctx_per_seq * (c.n_seq + c.stream_slots + c.prefix_cache))
            .max(1)
    }

    /// Checks a request, takes a free slot and opens a stream whose prompt the next steps
    /// decode (see the module documentation). The stream's KV is kept when it ends (soft
    /// prompts aside): a later prompt that starts the same way decodes only the rest.
    fn queue_stream(&mut self, request: &GenerateRequest, top: Option<usize>) -> Result<StreamId> {
        let prompt = self
            .generation_prompts(std::slice::from_ref(request))?
            .pop()
            .ok_or_else(|| LlmError::Decode("no prompt was checked".into()))?;
        let (seq, held) = self.pick_stream_seq(&prompt)?;
        // `max_tokens` 0 needs no prompt evaluation: the first step ends the stream.
        let (loaded, in_kv) = if request.max_tokens == 0 {
            (0, held)
        } else if held > 0 {
            (held, held)
        } else {
            let n = self.load_cached_prefix(&prompt, seq);
            (n, n)
        };
        self.totals.add(&RunStats {
            tokens_requested: prompt.len(),
            tokens_loaded: loaded,
            ..RunStats::default()
        });
        let keep = request.prompt.soft.is_none();
        Ok(self
            .streams
            .add(seq, (request, top), prompt, in_kv, None, keep))
    }

    /// Copies the longest prefix of `prompt` that the prefix cache holds into `seq`, cut on
    /// the block grid (any token with `pack_sequences`) and never the whole prompt (its last
    /// token's logits are needed); returns its length.
    fn load_cached_prefix(&mut self, prompt: &[TokenId], seq: usize) -> usize {
        let Some(block) = self.sharing() else {
            return 0;
        };
        if !self.cache.enabled() {
            return 0;
        }
        let best = self
            .cache
            .listed()
            .into_iter()
            .map(|(s, t)| (s, t.iter().zip(prompt).take_while(|(a, b)| a == b).count()))
            .max_by_key(|&(_, n)| n);
        self.cache.stats.tokens_planned += prompt.len();
        let Some((src, shared)) = best else {
            return 0;
        };
        let cut = shared.min(prompt.len().saturating_sub(1)) / block.max(1) * block.max(1);
        if cut == 0 {
            return 0;
        }
        self.cache.touch(src);
        self.cache.stats.tokens_loaded += cut;
        self.inner.with_dependent_mut(|_, ctx| {
            ctx.copy_seq(src, seq);
            ctx.remove_from(seq, cut);
        });
        cut
    }
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
    /// `n_seq` (prefixes shared; packed into multi-sequence decodes with `pack_sequences`),
    /// keeps them in the prefix cache and moves each into its stream's sequence.
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
        let mut free = self.free_stream_seqs().into_iter();
        let mut out: Vec<Option<Result<StreamId>>> = requests.iter().map(|_| None).collect();
        // (request index, prompt tokens, stream sequence)
        let mut valid: Vec<(usize, Vec<TokenId>, usize)> = Vec::new();
        for (i, (r, _)) in requests.iter().enumerate() {
            match self.generation_prompts(std::slice::from_ref(*r)) {
                Ok(mut p) => match free.next() {
                    Some(seq) => valid.push((i, p.remove(0), seq)),
                    None => out[i] = Some(Err(self.slots_taken())),
                },
                Err(e) => out[i] = Some(Err(e)),
            }
        }
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
                    self.store_leaves(&plan, &leaves);
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
                        self.evict_kept(seq);
                        self.inner
                            .with_dependent_mut(|_, ctx| ctx.copy_seq(slot, seq));
                        let (r, _) = requests[*i];
                        let keep = self.config.parallel_generation && r.prompt.soft.is_none();
                        let id = self.streams.add(
                            seq,
                            requests[*i],
                            prompt.clone(),
                            prompt.len(),
                            Some(logits),
                            keep,
                        );
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

    /// With `parallel_generation`, checks each request and opens its stream with the prompt
    /// pending (co-scheduled prefill, see the module documentation); requests with a soft
    /// prompt are opened at once. Without it (the exact default): [`Streams::open_stream_batch`].
    fn queue_streams(
        &mut self,
        requests: &[(&GenerateRequest, Option<usize>)],
    ) -> Vec<Result<StreamId>> {
        if !self.config.parallel_generation {
            return self.open_stream_batch(requests);
        }
        requests
            .iter()
            .map(|(r, top)| {
                if r.prompt.soft.is_some() {
                    self.open_stream(r, *top)
                } else {
                    self.queue_stream(r, *top)
                }
            })
            .collect()
    }

    fn step_streams(&mut self) -> Result<Vec<StreamStep>> {
        let n_vocab = self.n_vocab;
        let limit = self.config.ctx_per_seq;
        let parallel = self.config.parallel_generation;
        let n_ubatch = self.config.n_ubatch.min(self.config.n_batch);
        let budget = self.step_budget();
        let open = &mut self.streams.open;
        let mut picked: Vec<Picked> = open.iter().map(|_| Picked::default()).collect();
        let mut stats = RunStats::default();
        let result = self.inner.with_dependent_mut(|model, ctx| -> Result<()> {
            // The tokens picked at the end of the last step.
            let mut entries: Vec<Entry> = Vec::new();
            for (i, o) in open.iter_mut().enumerate() {
                if let Some(token) = o.next.take() {
                    entries.push(Entry {
                        seq: o.seq,
                        token,
                        pos: o.state.pos,
                        logits_for: Some(i),
                    });
                    o.state.pos += 1;
                    o.kv_len += 1;
                }
            }
            // Pending prompts, oldest stream first, in the room the call has left.
            let mut room = budget.saturating_sub(entries.len());
            let mut queued: Vec<usize> = (0..open.len()).filter(|&i| open[i].pending()).collect();
            queued.sort_by_key(|&i| open[i].id);
            for i in queued {
                if room == 0 {
                    break;
                }
                let o = &mut open[i];
                let n = room.min(o.rest.len());
                let finishes = n == o.rest.len();
                for (k, &t) in o.rest[..n].iter().enumerate() {
                    entries.push(Entry {
                        seq: o.seq,
                        token: t,
                        pos: o.rest_pos + k,
                        logits_for: (finishes && k + 1 == n).then_some(i),
                    });
                }
                o.rest.drain(..n);
                o.rest_pos += n;
                o.kv_len += n;
                room -= n;
            }
            // Every stream with new logits (from this decode, or from an open that evaluated
            // its prompt) picks its next token now: a stream that ends is answered by this
            // step, not after the next decode, and a freed slot can take a new request sooner.
            // A decoded row is picked from where llama.cpp wrote it, before the next call.
            let vocab = model.vocab();
            if !entries.is_empty() {
                decode_entries(
                    ctx,
                    &mut entries,
                    parallel,
                    budget,
                    n_ubatch,
                    &mut stats,
                    |i, row| {
                        if let (Some(o), Some(out)) = (open.get_mut(i), picked.get_mut(i)) {
                            pick(o, i, &row[..n_vocab.min(row.len())], &vocab, limit, out);
                        }
                    },
                )?;
            }
            for (i, o) in open.iter_mut().enumerate() {
                if let Some(logits) = o.opened.take() {
                    let row = &logits[..n_vocab.min(logits.len())];
                    pick(o, i, row, &vocab, limit, &mut picked[i]);
                }
            }
            Ok(())
        });
        self.totals.add(&stats);
        if let Err(e) = result {
            // The failed call's KV is unknown: every stream sequence is emptied.
            let mut seqs: Vec<usize> = self.streams.open.drain(..).map(|o| o.seq).collect();
            seqs.extend(self.streams.forget_kept());
            self.inner.with_dependent_mut(|_, ctx| {
                for s in seqs {
                    ctx.clear_seq(s);
                }
            });
            return Err(e);
        }
        let mut out = Vec::with_capacity(picked.len());
        let mut finished = Vec::new();
        for (o, p) in self.streams.open.iter().zip(picked) {
            // A stream reports when it picked, and once when it is done (`max_tokens` 0 ends
            // a stream without a pick).
            if !p.reported && o.state.done.is_none() {
                continue;
            }
            out.push(StreamStep {
                id: o.id,
                text: p.text,
                token: p.token.map(|(t, logprob, top)| StepToken {
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
            let o = self.release(i);
            let (g, rest) = o.state.finish(o.prompt.len());
            if let Some(step) = out.iter_mut().find(|s| s.id == id) {
                step.text.push_str(&rest);
                step.finished = Some(g);
            }
        }
        Ok(out)
    }

    fn close_stream(&mut self, id: StreamId) {
        if let Some(i) = self.streams.open.iter().position(|o| o.id == id) {
            self.release(i);
        }
    }
}
