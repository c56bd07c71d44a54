//! Rendering prompts and reading option distributions: shared by every method.

use crate::{Answer, Item, MethodError, PromptSpec, Readout};
use culturesteer_core::prob::softmax_with_temperature;
use culturesteer_llm::{
    ChatMessage, GenerateRequest, LanguageModel, Prompt, Sampling, ScoreRequest, ScoreResult,
};
use serde_json::json;

/// Renders a prompt spec with the model's chat format (or as raw completion text).
pub fn render_prompt(lm: &dyn LanguageModel, spec: &PromptSpec) -> Result<Prompt, MethodError> {
    if spec.chat {
        let mut msgs = Vec::with_capacity(2);
        if let Some(s) = &spec.system {
            msgs.push(ChatMessage::system(s.clone()));
        }
        msgs.push(ChatMessage::user(spec.user.clone()));
        Ok(lm.chat_prompt(&msgs)?)
    } else {
        Ok(Prompt::from(format!(
            "{}{}",
            spec.system.as_deref().unwrap_or(""),
            spec.user
        )))
    }
}

/// Scores one rendered prompt per item in a single batch and turns the option scores into
/// probabilities according to each item's readout. Items with a [`Readout::Generate`] readout
/// are generated in one batch of their own.
pub fn read_options(
    lm: &mut dyn LanguageModel,
    items: &[Item],
    prompts: Vec<Prompt>,
) -> Result<Vec<Answer>, MethodError> {
    if items
        .iter()
        .any(|i| matches!(i.readout, Readout::Generate { .. }))
    {
        let (gen, score): (Vec<_>, Vec<_>) = items
            .iter()
            .zip(prompts)
            .enumerate()
            .partition(|(_, (i, _))| matches!(i.readout, Readout::Generate { .. }));
        let mut out: Vec<Option<Answer>> = vec![None; items.len()];
        let (idx, (its, ps)): (Vec<usize>, (Vec<Item>, Vec<Prompt>)) = score
            .into_iter()
            .map(|(k, (i, p))| (k, (i.clone(), p)))
            .unzip();
        for (k, a) in idx.into_iter().zip(read_options(lm, &its, ps)?) {
            out[k] = Some(a);
        }
        let reqs: Vec<GenerateRequest> = gen
            .iter()
            .map(|(_, (item, prompt))| {
                let Readout::Generate { max_tokens, .. } = &item.readout else {
                    unreachable!("partitioned above")
                };
                GenerateRequest {
                    prompt: prompt.clone(),
                    max_tokens: *max_tokens,
                    sampling: Sampling::Greedy,
                    stop: vec![],
                }
            })
            .collect();
        let gens = lm.generate(&reqs)?;
        for ((k, (item, _)), g) in gen.iter().zip(gens) {
            let Readout::Generate { parser, labels, .. } = &item.readout else {
                unreachable!("partitioned above")
            };
            let parsed = parser.parse(&g.text, labels.len());
            let probs = parsed.option.map_or_else(Vec::new, |o| {
                (0..labels.len())
                    .map(|j| f64::from(u8::from(j == o)))
                    .collect()
            });
            out[*k] = Some(Answer {
                probs,
                logprobs: vec![],
                diagnostics: json!({ "generated": g.text, "parsed": parsed.outcome }),
            });
        }
        return Ok(out
            .into_iter()
            .map(|a| a.expect("every item answered"))
            .collect());
    }
    let reqs = items
        .iter()
        .zip(prompts)
        .map(|(item, prompt)| score_request(lm, item, prompt))
        .collect::<Result<Vec<_>, _>>()?;
    let results = lm.score(&reqs)?;
    items
        .iter()
        .zip(results)
        .map(|(item, r)| answer_from(item, &r))
        .collect()
}

/// The scoring request that reads `item`'s options after `prompt` (not for generated
/// readouts).
pub fn score_request(
    lm: &dyn LanguageModel,
    item: &Item,
    prompt: Prompt,
) -> Result<ScoreRequest, MethodError> {
    if item.readout.n_options() < 2 {
        return Err(MethodError::Item {
            id: item.id.clone(),
            what: "fewer than two options".into(),
        });
    }
    Ok(match &item.readout {
        Readout::NextToken { labels } => {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            let ids = lm
                .resolve_answer_tokens(&prompt, &refs)
                .map_err(|e| MethodError::Item {
                    id: item.id.clone(),
                    what: e.to_string(),
                })?;
            ScoreRequest {
                prompt,
                continuations: vec![],
                next_tokens: ids,
                top_k: 0,
                ..Default::default()
            }
        }
        Readout::Continuation { texts } => ScoreRequest {
            prompt,
            continuations: texts.clone(),
            next_tokens: vec![],
            top_k: 0,
            ..Default::default()
        },
        Readout::TopKLabels { k, .. } => ScoreRequest {
            prompt,
            continuations: vec![],
            next_tokens: vec![],
            top_k: (*k).max(1),
            ..Default::default()
        },
        Readout::Generate { .. } => {
            return Err(MethodError::Item {
                id: item.id.clone(),
                what: "a generated readout has no scoring request".into(),
            })
        }
    })
}

/// The option probabilities of `item` from the result of its [`score_request`].
pub fn answer_from(item: &Item, r: &ScoreResult) -> Result<Answer, MethodError> {
    let (logprobs, probs) = match &item.readout {
        Readout::NextToken { .. } => {
            let lp = r.next_token_logprobs.clone();
            let p =
                softmax_with_temperature(&lp, item.temperature).map_err(|e| MethodError::Item {
                    id: item.id.clone(),
                    what: e.to_string(),
                })?;
            (lp, p)
        }
        Readout::Continuation { .. } => {
            let lp: Vec<f64> = r.continuations.iter().map(|c| c.logprob).collect();
            let p =
                softmax_with_temperature(&lp, item.temperature).map_err(|e| MethodError::Item {
                    id: item.id.clone(),
                    what: e.to_string(),
                })?;
            (lp, p)
        }
        Readout::TopKLabels { labels, k } => {
            let lp: Vec<f64> = labels
                .iter()
                .map(|l| {
                    r.top_k
                        .iter()
                        .take(*k)
                        .find(|t| t.piece.trim() == l.as_str())
                        .map_or(f64::NEG_INFINITY, |t| t.logprob)
                })
                .collect();
            let mass: f64 = lp.iter().map(|l| l.exp()).sum();
            let p = if mass > 0.0 {
                lp.iter().map(|l| l.exp() / mass).collect()
            } else {
                vec![1.0 / labels.len() as f64; labels.len()]
            };
            (lp, p)
        }
        Readout::Generate { .. } => {
            return Err(MethodError::Item {
                id: item.id.clone(),
                what: "a generated readout is not read from scores".into(),
            })
        }
    };
    Ok(Answer {
        probs,
        logprobs,
        diagnostics: serde_json::Value::Null,
    })
}
