//! `POST /v1/completions`: generation, streaming, and scoring (echo + legacy log-probs).

use super::stream::stream_response;
use super::{check_n, finish_str, now, nth_sampling, stop_list, usage};
use crate::serve::api::{ApiError, CompletionRequest, JsonBody, PromptInput};
use crate::serve::worker::{country_instruction, model_error, Steering, Worker};
use crate::serve::Shared;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use culturesteer_llm::{
    GenerateRequest, Prompt, Sampling, ScoreRequest, ScoreResult, StepToken, TokenId,
};
use serde_json::{json, Value};

fn token_string(w: &Worker, t: TokenId, as_ids: bool) -> String {
    if as_ids {
        format!("token_id:{}", t.0)
    } else {
        w.lm.token_piece(t)
    }
}

/// The legacy `logprobs` object of one scored prompt: echoed prompt positions (if `echo`)
/// then the generated position (if any). Echoed positions carry the real top-k when the
/// backend gave it (lm-evaluation-harness's greedy check reads the best of them); offsets
/// count the prompt text from its first character (a BOS token has no text).
#[allow(clippy::too_many_arguments)]
fn logprobs_object(
    w: &Worker,
    bos: Option<TokenId>,
    res: &ScoreResult,
    extra: &[TokenId],
    echo: bool,
    generated: Option<(TokenId, f64)>,
    as_ids: bool,
    prompt_chars: usize,
) -> Value {
    let mut tokens = Vec::new();
    let mut own: Vec<Value> = Vec::new();
    let mut tops: Vec<Value> = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = 0usize;
    if echo {
        for (i, &t) in res.prompt_token_ids.iter().enumerate() {
            let s = token_string(w, t, as_ids);
            offsets.push(offset);
            if Some(t) != bos || i > 0 {
                offset += w.lm.token_piece(t).len();
            }
            if i == 0 {
                own.push(Value::Null);
                tops.push(Value::Null);
            } else {
                let lp = res
                    .prompt_token_logprobs
                    .get(i - 1)
                    .copied()
                    .unwrap_or(f64::NAN);
                own.push(json!(lp));
                match res.prompt_top_logprobs.get(i - 1) {
                    Some(top) if !top.is_empty() => {
                        let mut m = serde_json::Map::new();
                        for e in top {
                            m.insert(token_string(w, e.token, as_ids), json!(e.logprob));
                        }
                        // As the legacy API: the echoed token is always listed (k + 1 at most).
                        m.entry(s.clone()).or_insert(json!(lp));
                        tops.push(Value::Object(m));
                    }
                    _ => tops.push(json!({ s.clone(): lp })),
                }
            }
            tokens.push(s);
        }
    } else {
        offset = prompt_chars;
    }
    if let Some((t, lp)) = generated {
        let mut top = serde_json::Map::new();
        for e in &res.top_k {
            top.insert(token_string(w, e.token, as_ids), json!(e.logprob));
        }
        // Asked-for ids (the `logprob_token_ids` extension).
        for (&tok, &l) in extra.iter().zip(&res.next_token_logprobs) {
            top.entry(token_string(w, tok, as_ids)).or_insert(json!(l));
        }
        tokens.push(token_string(w, t, as_ids));
        own.push(json!(lp));
        tops.push(Value::Object(top));
        offsets.push(offset);
    }
    json!({ "tokens": tokens, "token_logprobs": own, "top_logprobs": tops, "text_offset": offsets })
}

/// The text an echo returns: the prompt's text, or for token prompts their pieces.
fn echo_text(w: &Worker, prompt: &Prompt, res: &ScoreResult) -> String {
    if prompt.text.is_empty() {
        res.prompt_token_ids
            .iter()
            .map(|&t| w.lm.token_piece(t))
            .collect()
    } else {
        prompt.text.clone()
    }
}

/// The legacy `logprobs` object of a generation: the echoed prompt's entries (if any) followed
/// by one entry per generated token, offsets counted from the start of the returned text.
fn generated_logprobs(
    echoed: Option<Value>,
    tokens: &[StepToken],
    prompt_chars: usize,
    as_ids: bool,
) -> Value {
    let mut lp = echoed.unwrap_or_else(
        || json!({ "tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": [] }),
    );
    let name = |t: TokenId, piece: &str| {
        if as_ids {
            format!("token_id:{}", t.0)
        } else {
            piece.to_string()
        }
    };
    let mut offset = prompt_chars;
    for t in tokens {
        let mut top: serde_json::Map<String, Value> = t
            .top
            .iter()
            .map(|x| (name(x.token, &x.piece), json!(x.logprob)))
            .collect();
        top.entry(name(t.token, &t.piece))
            .or_insert(json!(t.logprob));
        let push = |lp: &mut Value, key: &str, v: Value| {
            if let Some(a) = lp[key].as_array_mut() {
                a.push(v);
            }
        };
        push(&mut lp, "tokens", json!(name(t.token, &t.piece)));
        push(&mut lp, "token_logprobs", json!(t.logprob));
        push(&mut lp, "top_logprobs", Value::Object(top));
        push(&mut lp, "text_offset", json!(offset));
        offset += t.piece.len();
    }
    lp
}

pub(in crate::serve) async fn completions(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    s.check_model(&req.model)?;
    let single = if req.stream {
        Some("streaming")
    } else if (req.echo || req.logprobs.is_some()) && req.max_tokens.unwrap_or(16) <= 1 {
        Some("scoring (echo, or logprobs with max_tokens 0 or 1)")
    } else {
        None
    };
    let n = check_n(req.n, single)?;
    let (steering, country) = s.generation_steering(&req.steering)?;
    let prefix = match (steering, &country) {
        (Steering::CountryPrompt, Some(c)) => Some(format!("{}\n\n", country_instruction(&c.name))),
        _ => None,
    };
    let to_ids = |v: &[i64], i: usize| -> Result<Vec<TokenId>, ApiError> {
        v.iter()
            .map(|&t| i32::try_from(t).ok().filter(|t| *t >= 0).map(TokenId))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("prompt[{i}]"),
                    "token ids must be non-negative 32-bit integers",
                )
            })
    };
    let mut prompts: Vec<Prompt> = match req.prompt {
        PromptInput::Text(t) => vec![Prompt::from(t)],
        PromptInput::Texts(v) => v.into_iter().map(Prompt::from).collect(),
        PromptInput::Tokens(v) => vec![Prompt::from_tokens(to_ids(&v, 0)?)],
        PromptInput::TokenLists(v) => v
            .iter()
            .enumerate()
            .map(|(i, l)| to_ids(l, i).map(Prompt::from_tokens))
            .collect::<Result<_, _>>()?,
    };
    if prompts.is_empty()
        || prompts
            .iter()
            .any(|p| p.tokens.as_ref().map_or(p.text.is_empty(), Vec::is_empty))
    {
        return Err(ApiError::invalid("prompt", "prompts must not be empty"));
    }
    if prompts.len() > s.limits.max_prompts {
        return Err(ApiError::invalid(
            "prompt",
            format!(
                "{} prompts in one request; the limit is {}",
                prompts.len(),
                s.limits.max_prompts
            ),
        ));
    }
    if let Some(pre) = &prefix {
        if prompts.iter().any(|p| p.tokens.is_some()) {
            return Err(ApiError::invalid(
                "prompt",
                "country-prompt steering needs text prompts, not token ids",
            ));
        }
        for p in &mut prompts {
            p.text = format!("{pre}{}", p.text);
        }
    }
    let max_tokens = s.max_tokens(req.max_tokens, 16)?;
    let prompt_bound: usize = prompts
        .iter()
        .map(|p| p.tokens.as_ref().map_or(p.text.len() + 2, Vec::len))
        .sum();
    s.check_cost(prompt_bound, prompts.len() * n, max_tokens)?;
    let sampling = s.sampling(req.temperature, req.top_p, req.seed)?;
    let stop = stop_list(req.stop);
    let id = s.id("cmpl");
    let created = now();
    let culture = country.as_ref().map(|c| c.code.to_string());
    let k = req.logprobs.unwrap_or(0);
    if k > s.limits.max_logprobs {
        return Err(ApiError::invalid(
            "logprobs",
            format!(
                "logprobs {k} is above this server's limit of {}",
                s.limits.max_logprobs
            ),
        ));
    }
    // Echo and log-probs of at most one generated token are read by scoring (exact, one
    // batch); longer generations report their tokens' log-probs as they are picked.
    let scoring = (req.echo || req.logprobs.is_some()) && max_tokens <= 1;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    if req.stream {
        if prompts.len() != 1 || req.echo || (scoring && max_tokens <= 1) {
            return Err(ApiError::invalid(
                "stream",
                "streaming takes one prompt, no echo, and with logprobs max_tokens above 1",
            ));
        }
        let top = req.logprobs.map(|k| k as usize);
        let as_ids = req.return_tokens_as_token_ids;
        // Offsets of streamed tokens count from the prompt's start.
        let offset = std::sync::atomic::AtomicUsize::new(prompts[0].text.len());
        let name = s.name.clone();
        let (id2, culture2) = (id.clone(), culture.clone());
        let gen = GenerateRequest {
            prompt: prompts.remove(0),
            max_tokens,
            sampling,
            stop,
        };
        return stream_response(&s, gen, None, include_usage, top, move |text, finish, tokens| {
            let logprobs = top.map(|_| {
                let start = offset.fetch_add(
                    tokens.iter().map(|t| t.piece.len()).sum(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                generated_logprobs(None, tokens, start, as_ids)
            });
            json!({
                "id": id2, "object": "text_completion", "created": created, "model": name,
                "choices": [{ "index": 0, "text": text.unwrap_or(""), "finish_reason": finish.map(finish_str), "logprobs": logprobs }],
                "culture": culture2, "steering": steering.as_str(),
            })
        })
        .await;
    }
    let body = if scoring {
        if max_tokens == 0 && !req.echo {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens 0 only makes sense with echo",
            ));
        }
        let (echo, as_ids) = (req.echo, req.return_tokens_as_token_ids);
        if req.logprob_token_ids.len() > 256 {
            return Err(ApiError::invalid(
                "logprob_token_ids",
                "at most 256 token ids",
            ));
        }
        let extra = to_ids(&req.logprob_token_ids, 0).map_err(|_| {
            ApiError::invalid(
                "logprob_token_ids",
                "token ids must be non-negative 32-bit integers",
            )
        })?;
        s.run(move |w| {
            let texts: Vec<String> = prompts.iter().map(|p| p.text.clone()).collect();
            let reqs: Vec<ScoreRequest> = prompts
                .into_iter()
                .map(|prompt| ScoreRequest {
                    prompt,
                    prompt_logprobs: echo,
                    prompt_top_k: k as usize,
                    top_k: if max_tokens == 1 {
                        (k as usize).max(1)
                    } else {
                        0
                    },
                    next_tokens: if max_tokens == 1 {
                        extra.clone()
                    } else {
                        vec![]
                    },
                    ..Default::default()
                })
                .collect();
            let results = w.lm.score(&reqs).map_err(model_error)?;
            let mut choices = Vec::with_capacity(results.len());
            let (mut n_prompt, mut n_gen) = (0, 0);
            for (i, (res, mut r)) in results.iter().zip(reqs).enumerate() {
                n_prompt += res.prompt_tokens;
                let generated = if max_tokens == 1 {
                    n_gen += 1;
                    match sampling {
                        Sampling::Greedy => res.top_k.first().map(|t| (t.token, t.logprob)),
                        Sampling::Seeded { .. } => {
                            let g =
                                w.lm.generate(&[GenerateRequest {
                                    prompt: r.prompt.clone(),
                                    max_tokens: 1,
                                    sampling: sampling.clone(),
                                    stop: vec![],
                                }])
                                .map_err(model_error)?;
                            match g.first().and_then(|g| g.tokens.first().copied()) {
                                Some(t) => {
                                    r.next_tokens = vec![t];
                                    r.prompt_logprobs = false;
                                    let lp =
                                        w.lm.score(&[r.clone()])
                                            .map_err(model_error)?
                                            .remove(0)
                                            .next_token_logprobs[0];
                                    Some((t, lp))
                                }
                                None => None,
                            }
                        }
                    }
                } else {
                    None
                };
                let gen_text = generated
                    .map(|(t, _)| w.lm.token_piece(t))
                    .unwrap_or_default();
                let prompt_text = if echo {
                    echo_text(w, &r.prompt, res)
                } else {
                    String::new()
                };
                let bos = w.bos();
                let lp =
                    logprobs_object(w, bos, res, &extra, echo, generated, as_ids, texts[i].len());
                choices.push(json!({
                    "index": i, "text": format!("{prompt_text}{gen_text}"), "logprobs": lp,
                    "finish_reason": "length",
                }));
            }
            Ok(json!({ "choices": choices, "usage": usage(n_prompt, n_gen) }))
        })
        .await?
    } else {
        let (echo, as_ids) = (req.echo, req.return_tokens_as_token_ids);
        let top = req.logprobs.map(|k| k as usize);
        // Echoed prompts: their text and log-probs, scored in one batch before generating.
        let echoed: Vec<(String, Value)> = if echo {
            let prompts = prompts.clone();
            s.run(move |w| {
                let reqs: Vec<ScoreRequest> = prompts
                    .iter()
                    .map(|p| ScoreRequest {
                        prompt: p.clone(),
                        prompt_logprobs: true,
                        prompt_top_k: top.unwrap_or(0),
                        ..Default::default()
                    })
                    .collect();
                let results = w.lm.score(&reqs).map_err(model_error)?;
                Ok(results
                    .iter()
                    .zip(&prompts)
                    .map(|(res, p)| {
                        let text = echo_text(w, p, res);
                        let bos = w.bos();
                        (
                            text,
                            logprobs_object(w, bos, res, &[], true, None, as_ids, 0),
                        )
                    })
                    .collect())
            })
            .await?
        } else {
            vec![]
        };
        let prompt_chars: Vec<usize> = prompts.iter().map(|p| p.text.len()).collect();
        // Choice i·n + j is prompt i's j-th sample (OpenAI's order).
        let requests: Vec<GenerateRequest> = prompts
            .iter()
            .flat_map(|prompt| {
                (0..n).map(|j| GenerateRequest {
                    prompt: prompt.clone(),
                    max_tokens,
                    sampling: nth_sampling(&sampling, j),
                    stop: stop.clone(),
                })
            })
            .collect();
        let runs = requests.into_iter();
        let runs = runs.map(|request| s.generate(move |_| Ok(request), top));
        let gens = futures::future::try_join_all(runs).await?;
        let (np, ng) = gens.iter().fold((0, 0), |(a, b), (g, _)| {
            (a + g.prompt_tokens, b + g.tokens.len())
        });
        let choices: Vec<Value> = gens
            .iter()
            .enumerate()
            .map(|(i, (g, tokens))| {
                let (prompt_text, lp) = match echoed.get(i / n) {
                    Some((t, lp)) => (t.clone(), Some(lp.clone())),
                    None => (String::new(), None),
                };
                // Offsets count from the prompt's start, echoed or not (as the legacy API does).
                let start = if echo { prompt_text.len() } else { prompt_chars[i / n] };
                let logprobs = match (top, lp) {
                    (None, None) => Value::Null,
                    (_, lp) => generated_logprobs(lp, tokens, start, as_ids),
                };
                json!({ "index": i, "text": format!("{prompt_text}{}", g.text), "logprobs": logprobs, "finish_reason": finish_str(g.finish_reason) })
            })
            .collect();
        json!({ "choices": choices, "usage": usage(np, ng) })
    };
    let mut out = json!({ "id": id, "object": "text_completion", "created": created, "model": s.name, "culture": culture, "steering": steering.as_str() });
    out["choices"] = body["choices"].clone();
    out["usage"] = body["usage"].clone();
    let n = |k: &str| body["usage"][k].as_u64().unwrap_or(0) as usize;
    s.metrics
        .count_tokens(n("prompt_tokens"), n("completion_tokens"));
    Ok(Json(out).into_response())
}
