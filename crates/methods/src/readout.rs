//! Rendering prompts and reading option distributions: shared by every method.

use crate::{Answer, Item, MethodError, PromptSpec, Readout};
use culturesteer_core::prob::softmax_with_temperature;
use culturesteer_llm::{ChatMessage, LanguageModel, Prompt, ScoreRequest};

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
        Ok(Prompt::from(format!("{}{}", spec.system.as_deref().unwrap_or(""), spec.user)))
    }
}

/// Scores one rendered prompt per item in a single batch and turns the option scores into
/// probabilities according to each item's readout.
pub fn read_options(lm: &mut dyn LanguageModel, items: &[Item], prompts: Vec<Prompt>) -> Result<Vec<Answer>, MethodError> {
    let mut reqs = Vec::with_capacity(items.len());
    for (item, prompt) in items.iter().zip(prompts) {
        if item.readout.n_options() < 2 {
            return Err(MethodError::Item { id: item.id.clone(), what: "fewer than two options".into() });
        }
        let req = match &item.readout {
            Readout::NextToken { labels } => {
                let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                let ids = lm.resolve_answer_tokens(&prompt, &refs).map_err(|e| MethodError::Item { id: item.id.clone(), what: e.to_string() })?;
                ScoreRequest { prompt, continuations: vec![], next_tokens: ids, top_k: 0 }
            }
            Readout::Continuation { texts } => ScoreRequest { prompt, continuations: texts.clone(), next_tokens: vec![], top_k: 0 },
            Readout::TopKLabels { k, .. } => ScoreRequest { prompt, continuations: vec![], next_tokens: vec![], top_k: (*k).max(1) },
        };
        reqs.push(req);
    }
    let results = lm.score(&reqs)?;
    let mut out = Vec::with_capacity(items.len());
    for (item, r) in items.iter().zip(results) {
        let (logprobs, probs) = match &item.readout {
            Readout::NextToken { .. } => {
                let lp = r.next_token_logprobs.clone();
                let p = softmax_with_temperature(&lp, item.temperature).map_err(|e| MethodError::Item { id: item.id.clone(), what: e.to_string() })?;
                (lp, p)
            }
            Readout::Continuation { .. } => {
                let lp: Vec<f64> = r.continuations.iter().map(|c| c.logprob).collect();
                let p = softmax_with_temperature(&lp, item.temperature).map_err(|e| MethodError::Item { id: item.id.clone(), what: e.to_string() })?;
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
        };
        out.push(Answer { probs, logprobs, diagnostics: serde_json::Value::Null });
    }
    Ok(out)
}
