//! Tests on the real default GGUF (fetched into the cache on first use, like every command).

mod support;

use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::*;
use std::sync::{Mutex, MutexGuard, OnceLock};
use support::model_path;

/// One shared model: tests take turns.
fn lm() -> MutexGuard<'static, LlamaLm> {
    static LM: OnceLock<Mutex<LlamaLm>> = OnceLock::new();
    let m = LM.get_or_init(|| {
        Mutex::new(
            LlamaLm::load(
                &model_path(),
                LlamaConfig {
                    n_seq: 8,
                    ctx_per_seq: 512,
                    ..LlamaConfig::default()
                },
            )
            .expect("load"),
        )
    });
    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
    g.set_prefix_reuse(true);
    g
}

// Persona prompts of realistic length (~60–80 tokens), so the shared prefix dominates.
const PERSONAS: [&str; 3] = [
    "You are a 30-year-old teacher from Germany who values tradition and order. You grew up in a small town near Kassel, \
     you go to church on holidays, you think rules exist for good reasons and that children should respect their elders. \
     You answer every question honestly and briefly, the way you would in a survey.",
    "You are a retired farmer from Vietnam. Family and community come first for you. You have four grandchildren, you \
     worked the rice fields for forty years and you believe hard work and loyalty matter more than money. You answer \
     every question honestly and briefly, the way you would in a survey.",
    "You are a young software engineer from Brazil who values freedom and creativity above all. You live in São Paulo, \
     you travel whenever you can, you distrust authority and you think people should choose their own way of life. \
     You answer every question honestly and briefly, the way you would in a survey.",
];
const SCENARIOS: [&str; 4] = [
    "A self-driving car must choose. Option A: spare 2 elderly women. Option B: spare a boy. Answer A or B.",
    "Option A: save a dog. Option B: save a criminal. Which do you choose, A or B?",
    "Should the car spare the doctor (A) or the homeless person (B)? Reply with one letter.",
    "Option A: three pedestrians. Option B: one passenger. Who should be spared?",
];

fn requests(lm: &LlamaLm) -> Vec<ScoreRequest> {
    let mut out = Vec::new();
    for p in PERSONAS {
        for s in SCENARIOS {
            let prompt = lm
                .chat_prompt(&[ChatMessage::system(p), ChatMessage::user(s)])
                .unwrap();
            let ab = lm.resolve_answer_tokens(&prompt, &["A", "B"]).unwrap();
            out.push(ScoreRequest {
                prompt,
                continuations: vec![
                    "A".into(),
                    "Option B, because".into(),
                    " I would spare the group".into(),
                ],
                next_tokens: ab,
                top_k: 40,
                ..Default::default()
            });
        }
    }
    out
}

fn max_diff(a: &[ScoreResult], b: &[ScoreResult]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut m = 0f64;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.prompt_tokens, y.prompt_tokens);
        for (p, q) in x.next_token_logprobs.iter().zip(&y.next_token_logprobs) {
            m = m.max((p - q).abs());
        }
        for (c, d) in x.continuations.iter().zip(&y.continuations) {
            assert_eq!(c.tokens, d.tokens);
            for (p, q) in c.token_logprobs.iter().zip(&d.token_logprobs) {
                m = m.max((p - q).abs());
            }
        }
        for (c, d) in x.top_k.iter().zip(&y.top_k) {
            m = m.max((c.logprob - d.logprob).abs());
        }
    }
    m
}

#[test]
fn real_model_prefix_reuse_equals_uncached_scoring() {
    let mut lm = lm();
    let reqs = requests(&lm);
    let (cached, st_c) = lm.score_with_stats(&reqs).unwrap();
    lm.set_prefix_reuse(false);
    let (naive, st_n) = lm.score_with_stats(&reqs).unwrap();
    lm.set_prefix_reuse(true);
    let d = max_diff(&cached, &naive);
    eprintln!(
        "cached vs uncached: max Δ = {d}, tokens {} vs {}",
        st_c.tokens_evaluated, st_n.tokens_evaluated
    );
    assert!(
        st_c.tokens_evaluated * 2 < st_n.tokens_evaluated,
        "reuse evaluated {} vs naive {}",
        st_c.tokens_evaluated,
        st_n.tokens_evaluated
    );
    assert!(d <= 1e-3, "max |Δ log-prob| cached vs uncached = {d}");
}

/// Packed scoring is correct: on the f32 copy of the weights (f32 KV) it agrees with the exact
/// mode to rounding. On the Q4_K_M model the quantised kernels round activations per
/// micro-batch shape, and single log-probs of unlikely tokens move by up to ~0.3 nats.
#[test]
fn real_model_packed_scoring_evaluates_the_trie_once_and_agrees_with_exact_on_f32_weights() {
    let path = culturesteer_llm::fetch::ensure_default_model_f32(&mut |m| eprintln!("{m}"))
        .expect("f32 copy");
    let mut lm = LlamaLm::load(
        &path,
        LlamaConfig {
            n_seq: 8,
            ctx_per_seq: 512,
            kv_f32: true,
            ..LlamaConfig::default()
        },
    )
    .expect("load the f32 copy");
    let reqs = requests(&lm);
    let (exact, st_exact) = lm.score_with_stats(&reqs).unwrap();
    lm.set_pack_sequences(true);
    let (packed, st) = lm.score_with_stats(&reqs).unwrap();
    // Prefixes shared at any token: the trie is evaluated (plus one token where a path ends
    // inside another: every path keeps a leaf), fewer tokens than the exact mode's block-aligned
    // sharing, in fewer calls.
    assert!(
        st.tokens_evaluated < st_exact.tokens_evaluated
            && (st.tokens_evaluated - st.tokens_unique) * 20 < st.tokens_unique,
        "packed {} tokens, exact {}, trie {}",
        st.tokens_evaluated,
        st_exact.tokens_evaluated,
        st.tokens_unique
    );
    assert!(
        st.decode_calls * 2 < st_exact.decode_calls,
        "{} calls packed, {} exact",
        st.decode_calls,
        st_exact.decode_calls
    );
    let d = max_diff(&packed, &exact);
    eprintln!("packed vs exact (f32): max Δ log-prob = {d}");
    assert!(d <= 0.02, "max |Δ log-prob| packed vs exact = {d}");
}

#[test]
fn real_model_prefix_reuse_leaves_generation_unchanged() {
    let mut lm = lm();
    let reqs: Vec<GenerateRequest> = PERSONAS
        .iter()
        .flat_map(|p| SCENARIOS[..2].iter().map(move |s| (p, s)))
        .enumerate()
        .map(|(i, (p, s))| GenerateRequest {
            prompt: lm
                .chat_prompt(&[ChatMessage::system(*p), ChatMessage::user(*s)])
                .unwrap(),
            max_tokens: 12,
            sampling: Sampling::Seeded {
                temperature: 0.8,
                top_p: 0.95,
                seed: i as u64,
            },
            stop: vec![],
        })
        .collect();
    let cached = lm.generate(&reqs).unwrap();
    lm.set_prefix_reuse(false);
    let naive = lm.generate(&reqs).unwrap();
    lm.set_prefix_reuse(true);
    for (c, n) in cached.iter().zip(&naive) {
        assert_eq!(c.tokens, n.tokens, "generation differs with prefix reuse");
    }
}

#[test]
fn real_model_batched_equals_single_scoring() {
    let mut lm = lm();
    let reqs = requests(&lm);
    let batched = lm.score(&reqs).unwrap();
    let single: Vec<ScoreResult> = reqs
        .iter()
        .map(|r| lm.score(std::slice::from_ref(r)).unwrap().remove(0))
        .collect();
    let d = max_diff(&batched, &single);
    assert!(d <= 1e-3, "max |Δ log-prob| batched vs single = {d}");
}

#[test]
fn real_model_log_probs_are_consistent() {
    let mut lm = lm();
    let prompt = Prompt::from("The capital of France is");
    let vocab = lm.describe().vocab_size.unwrap();
    let r = lm
        .score(&[ScoreRequest {
            prompt: prompt.clone(),
            continuations: vec![" Paris".into(), " Paris is".into()],
            next_tokens: vec![],
            top_k: vocab,
            ..Default::default()
        }])
        .unwrap()
        .remove(0);
    // The full next-token distribution sums to one.
    let total: f64 = r.top_k.iter().map(|t| t.logprob.exp()).sum();
    assert!(
        (total - 1.0).abs() < 1e-6,
        "sum of next-token probabilities = {total}"
    );
    assert!(r.top_k.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    // Golden check against the fp32 reference of the engine report (transformers on the same
    // GGUF): top-5 = the −1.654, a −2.198, Paris −2.477, one −2.632, known −2.962; quantised
    // kernels move log-probs by a few tenths at most.
    let golden = [
        (" the", -1.654),
        (" a", -2.198),
        (" Paris", -2.477),
        (" one", -2.632),
        (" known", -2.962),
    ];
    let top5: std::collections::BTreeSet<&str> =
        r.top_k[..5].iter().map(|t| t.piece.as_str()).collect();
    assert_eq!(
        top5,
        golden.iter().map(|g| g.0).collect(),
        "top-5 differs from the reference"
    );
    for (piece, lp) in golden {
        let got = r.top_k.iter().find(|t| t.piece == piece).unwrap().logprob;
        assert!(
            (got - lp).abs() < 0.4,
            "log p({piece:?}) = {got}, reference {lp}"
        );
    }
    let paris = r.top_k.iter().position(|t| t.piece == " Paris").unwrap();
    // Single-token continuation equals the next-token read; chain rule for two tokens.
    let c0 = &r.continuations[0];
    assert_eq!(c0.tokens.len(), 1);
    assert!((c0.logprob - r.top_k[paris].logprob).abs() < 1e-9);
    let c1 = &r.continuations[1];
    assert_eq!(c1.tokens[0], c0.tokens[0]);
    let next = lm
        .score(&[ScoreRequest::next_tokens(
            "The capital of France is Paris",
            vec![c1.tokens[1]],
        )])
        .unwrap()
        .remove(0);
    assert!((c1.logprob - (c0.logprob + next.next_token_logprobs[0])).abs() < 1e-3);
    assert!(c1.token_logprobs.iter().all(|&l| l <= 0.0));
}

#[test]
fn real_model_seeded_generation_is_deterministic() {
    let mut lm = lm();
    let req = |seed| GenerateRequest {
        prompt: Prompt::from("Once upon a time, in a small village,"),
        max_tokens: 24,
        sampling: Sampling::Seeded {
            temperature: 0.9,
            top_p: 0.95,
            seed,
        },
        stop: vec![],
    };
    let a = lm.generate(&[req(1)]).unwrap().remove(0);
    let b = lm.generate(&[req(1)]).unwrap().remove(0);
    assert_eq!(a.text, b.text);
    assert_eq!(a.tokens.len(), 24);
    // Batched with other requests (one with the very same prompt and seed): same texts.
    let batch = lm.generate(&[req(2), req(1), req(1), req(3)]).unwrap();
    assert_eq!(batch[1].text, a.text);
    assert_eq!(batch[2].text, a.text);
    let others: Vec<&str> = [&batch[0], &batch[3]]
        .iter()
        .map(|g| g.text.as_str())
        .collect();
    assert!(
        others.iter().any(|t| *t != a.text),
        "different seeds gave identical text"
    );
    // Greedy with a stop string.
    let g = lm
        .generate(&[GenerateRequest {
            prompt: Prompt::from("The capital of France is"),
            max_tokens: 16,
            sampling: Sampling::Greedy,
            stop: vec![".".into()],
        }])
        .unwrap()
        .remove(0);
    assert!(!g.text.contains('.'));
    assert!(g.text.contains("Paris") || !g.text.is_empty());
}

#[test]
fn real_model_bad_input_is_reported() {
    let mut lm = lm();
    let long = "word ".repeat(2000);
    match lm.score(&[ScoreRequest::next_tokens(long.as_str(), vec![TokenId(1)])]) {
        Err(LlmError::PromptTooLong {
            index: 0,
            limit: 512,
            ..
        }) => {}
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    match lm.score(&[ScoreRequest::next_tokens("hi", vec![])]) {
        Err(LlmError::InvalidRequest { .. }) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    match lm.score(&[ScoreRequest::next_tokens("hi", vec![TokenId(-5)])]) {
        Err(LlmError::TokenOutOfRange { .. }) => {}
        other => panic!("expected TokenOutOfRange, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.gguf");
    std::fs::write(&bogus, b"not a model at all").unwrap();
    assert!(matches!(
        LlamaLm::load(&bogus, LlamaConfig::default()),
        Err(LlmError::NotGguf { .. })
    ));
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    assert!(matches!(
        LlamaLm::load(&truncated, LlamaConfig::default()),
        Err(LlmError::LoadFailed { .. })
    ));
    assert!(matches!(
        LlamaLm::load(&dir.path().join("missing.gguf"), LlamaConfig::default()),
        Err(LlmError::ModelNotFound { .. })
    ));
}

#[test]
fn real_model_gemma_chat_format_folds_system_into_user() {
    let lm = lm();
    let p = lm
        .chat_prompt(&[ChatMessage::system("SYS"), ChatMessage::user("USER")])
        .unwrap();
    assert_eq!(
        p.text,
        "<start_of_turn>user\nSYS\n\nUSER<end_of_turn>\n<start_of_turn>model\n"
    );
    let toks = lm.tokenize(&p.text).unwrap();
    assert_eq!(lm.token_piece(toks[0]), "<bos>");
    let ab = lm.resolve_answer_tokens(&p, &["A", "B"]).unwrap();
    assert_eq!(lm.token_piece(ab[0]), "A");
    assert_eq!(lm.token_piece(ab[1]), "B");
}

/// A prompt whose soft prompt is the embeddings of `init`, placed where `init`'s tokens were.
fn soft_twin(lm: &LlamaLm, init: &str, rest: &str) -> (Prompt, Prompt) {
    let text = Prompt::from(format!("{init}{rest}"));
    let full = lm.tokenize(&text.text).unwrap();
    let init_toks = lm.tokenize(init).unwrap()[1..].to_vec();
    assert_eq!(
        &full[1..=init_toks.len()],
        init_toks.as_slice(),
        "the init text keeps its tokens inside the prompt"
    );
    let soft = lm.token_embeddings(&init_toks).unwrap();
    assert_eq!(
        (soft.rows, soft.dim),
        (init_toks.len(), lm.describe().embedding_size.unwrap())
    );
    let mut p = Prompt::from_tokens([&full[..1], &full[1 + init_toks.len()..]].concat());
    p.soft = Some(std::sync::Arc::new(soft));
    (text, p)
}

#[test]
fn real_model_soft_prompt_of_token_embeddings_equals_the_text() {
    let mut lm = lm();
    let init = "You are a person from Saudi Arabia.";
    let (text, soft) = soft_twin(
        &lm,
        init,
        " Question: Is family very important in your life? Answer (yes or no):",
    );
    let yes = lm.tokenize(" yes").unwrap()[1];
    let no = lm.tokenize(" no").unwrap()[1];
    let ask = |p: Prompt| ScoreRequest {
        prompt: p,
        next_tokens: vec![yes, no],
        top_k: 10,
        ..Default::default()
    };
    let r = lm.score(&[ask(text.clone()), ask(soft.clone())]).unwrap();
    let mut worst = 0f64;
    for (a, b) in r[0]
        .next_token_logprobs
        .iter()
        .zip(&r[1].next_token_logprobs)
    {
        worst = worst.max((a - b).abs());
    }
    for (a, b) in r[0].top_k.iter().zip(&r[1].top_k) {
        assert_eq!(a.token, b.token);
        worst = worst.max((a.logprob - b.logprob).abs());
    }
    eprintln!("soft prompt vs text: max |Δ log p| = {worst:e}");
    assert!(
        worst <= 1e-3,
        "soft prompt of the init text's own embeddings vs the text: max |Δ log p| = {worst}"
    );

    // Greedy generation agrees too.
    let gen = |p: Prompt| GenerateRequest {
        prompt: p,
        max_tokens: 8,
        sampling: Sampling::Greedy,
        stop: vec![],
    };
    let g = lm.generate(&[gen(text), gen(soft.clone())]).unwrap();
    assert_eq!(g[0].text, g[1].text);
    assert_eq!(g[0].prompt_tokens, g[1].prompt_tokens);

    // Several prompts sharing one soft prompt, batched, equal each one alone.
    let other = |s: &str| {
        let mut p = soft.clone();
        let mut toks = p.tokens.take().unwrap();
        toks.extend(lm.tokenize(s).unwrap()[1..].iter().copied());
        p.tokens = Some(toks);
        ask(p)
    };
    let batch = vec![
        other(" Really?"),
        other(" Think again."),
        other(" Be honest."),
    ];
    let together = lm.score(&batch).unwrap();
    for (i, req) in batch.iter().enumerate() {
        let alone = lm.score(std::slice::from_ref(req)).unwrap();
        assert!(max_diff(&alone, &together[i..=i]) <= 1e-6, "request {i}");
    }

    // A different soft prompt changes the answer distribution.
    let mut noisy = soft.clone();
    let mut rows = (**noisy.soft.as_ref().unwrap()).clone();
    for (k, x) in rows.data.iter_mut().enumerate() {
        *x += if k % 2 == 0 { 0.05 } else { -0.05 };
    }
    noisy.soft = Some(std::sync::Arc::new(rows));
    let n = lm.score(&[ask(noisy), ask(soft)]).unwrap();
    assert!((n[0].next_token_logprobs[0] - n[1].next_token_logprobs[0]).abs() > 1e-3);

    // Bad input: a token outside the vocabulary, a soft prompt of the wrong width.
    assert!(matches!(
        lm.token_embeddings(&[TokenId(i32::MAX)]),
        Err(LlmError::TokenOutOfRange { .. })
    ));
    let mut wrong = Prompt::from("x");
    wrong.soft = Some(std::sync::Arc::new(
        SoftPrompt::new(1, 3, vec![0.0; 3]).unwrap(),
    ));
    let e = lm.score(&[ask(wrong)]).unwrap_err().to_string();
    assert!(e.contains("3 values"), "{e}");
    assert!(lm.input_embedding_std().unwrap() > 0.0);
}

#[test]
fn real_model_generate_then_score_reuses_the_generated_sequence() {
    let mut lm = lm();
    let chat = |q: &str| vec![ChatMessage::user(q.to_string())];
    let prompts: Vec<Prompt> = [
        "Name one tradition of Japan.",
        "Describe family life in Nigeria in one sentence.",
    ]
    .iter()
    .map(|q| lm.chat_prompt(&chat(q)).unwrap())
    .collect();
    let reqs: Vec<GenerateRequest> = prompts
        .iter()
        .map(|p| GenerateRequest {
            prompt: p.clone(),
            max_tokens: 12,
            sampling: Sampling::Greedy,
            stop: vec![],
        })
        .collect();
    let labels = lm
        .tokenize("A B")
        .unwrap()
        .into_iter()
        .skip(1)
        .collect::<Vec<_>>();
    // The follow-up: the conversation goes on with a question after the generated answer.
    let follow_text = |g: &Generation, i: usize| {
        format!(
            "{}{}\nQuestion: is that true? Answer A (yes) or B (no).\nAnswer:",
            prompts[i].text, g.text
        )
    };
    let mut made = Vec::new();
    let (out, _, reused) = lm
        .generate_then_score_with_stats(&reqs, &mut |i, g| {
            let r = ScoreRequest {
                prompt: Prompt::from(follow_text(g, i)),
                next_tokens: labels.clone(),
                top_k: 5,
                ..Default::default()
            };
            made.push(r.clone());
            Ok(r)
        })
        .unwrap();
    // The generations are those of a plain generate call.
    let plain = lm.generate(&reqs).unwrap();
    for ((g, _), p) in out.iter().zip(&plain) {
        assert_eq!(g.text, p.text);
    }
    assert!(reused > 0, "the follow-ups extend the generated sequences");
    // Each follow-up's score does not depend on the other requests of the call.
    let (alone, _, _) = lm
        .generate_then_score_with_stats(&reqs[1..], &mut |_, g| {
            Ok(ScoreRequest {
                prompt: Prompt::from(follow_text(g, 1)),
                next_tokens: labels.clone(),
                top_k: 5,
                ..Default::default()
            })
        })
        .unwrap();
    assert_eq!(alone[0].1, out[1].1);
    // They read the model on the KV the generation computed one token at a time, which on CPU
    // differs from decoding the same text in blocks by up to about half a nat: close to a
    // scoring from scratch, not equal.
    let scratch = lm.score(&made).unwrap();
    for ((_, s), t) in out.iter().zip(&scratch) {
        assert_eq!(s.prompt_tokens, t.prompt_tokens);
        for (a, b) in s.next_token_logprobs.iter().zip(&t.next_token_logprobs) {
            assert!((a - b).abs() < 1.0, "{a} vs {b}");
        }
        assert!(
            s.top_k.iter().any(|x| x.token == t.top_k[0].token),
            "{:?} vs {:?}",
            s.top_k,
            t.top_k
        );
    }
    // A follow-up that does not extend its generation is scored from scratch: exactly.
    let (out, _, reused) = lm
        .generate_then_score_with_stats(&reqs[..1], &mut |_, _| {
            Ok(ScoreRequest {
                prompt: Prompt::from("Something else entirely. Answer:".to_string()),
                next_tokens: labels.clone(),
                ..Default::default()
            })
        })
        .unwrap();
    assert_eq!(reused, 0);
    let alone = lm
        .score(&[ScoreRequest {
            prompt: Prompt::from("Something else entirely. Answer:".to_string()),
            next_tokens: labels.clone(),
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(out[0].1.next_token_logprobs, alone[0].next_token_logprobs);
    // Follow-ups read next tokens only.
    let err = lm.generate_then_score(&reqs[..1], &mut |_, _| {
        Ok(ScoreRequest::continuations(
            Prompt::from("x".to_string()),
            vec![" y".into()],
        ))
    });
    assert!(err.is_err());
}

/// Runs `reqs` as streams, opening the last one only after a few steps (it joins running
/// ones) and scoring `interlude` in the middle (scoring must leave open streams alone); returns
/// each request's streamed text and generation.
fn run_streams(
    lm: &mut LlamaLm,
    reqs: &[GenerateRequest],
    interlude: &[ScoreRequest],
) -> Vec<(String, Generation, Vec<StepToken>)> {
    let mut ids = Vec::new();
    let mut out: Vec<(String, Option<Generation>, Vec<StepToken>)> =
        vec![(String::new(), None, vec![]); reqs.len()];
    let (first, last) = reqs.split_at(reqs.len() - 1);
    // The first ones open together (one plan).
    let batch: Vec<(&GenerateRequest, Option<usize>)> =
        first.iter().map(|r| (r, Some(3))).collect();
    for id in lm.streams().unwrap().open_stream_batch(&batch) {
        ids.push(id.unwrap());
    }
    for step in 0..400 {
        if step == 4 {
            ids.push(
                lm.streams()
                    .unwrap()
                    .open_stream(&last[0], Some(3))
                    .unwrap(),
            );
        }
        if step == 6 {
            lm.score(interlude).unwrap();
        }
        for s in lm.streams().unwrap().step_streams().unwrap() {
            let i = ids.iter().position(|id| *id == s.id).unwrap();
            out[i].0.push_str(&s.text);
            out[i].2.extend(s.token);
            if let Some(g) = s.finished {
                out[i].1 = Some(g);
            }
        }
        if step > 4 && lm.streams().unwrap().open_streams() == 0 {
            break;
        }
    }
    out.into_iter()
        .map(|(t, g, k)| (t, g.expect("every stream finished"), k))
        .collect()
}

#[test]
fn real_model_streams_give_each_request_the_tokens_it_gets_alone() {
    let mut lm = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 4,
            ctx_per_seq: 512,
            stream_slots: 3,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let ask = |text: &str, sampling: Sampling| GenerateRequest {
        prompt: lm
            .chat_prompt(&[ChatMessage::user(text.to_string())])
            .unwrap(),
        max_tokens: 16,
        sampling,
        stop: vec![],
    };
    let reqs = vec![
        ask("Name three rivers in Europe.", Sampling::Greedy),
        ask("Write one sentence about the sea.", Sampling::Greedy),
        ask(
            "What is a good breakfast?",
            Sampling::Seeded {
                temperature: 0.8,
                top_p: 0.95,
                seed: 7,
            },
        ),
    ];
    let alone: Vec<Generation> = reqs
        .iter()
        .map(|r| lm.generate(std::slice::from_ref(r)).unwrap().remove(0))
        .collect();
    let interlude: Vec<ScoreRequest> = requests(&lm).into_iter().take(2).collect();
    for parallel in [false, true] {
        lm.set_parallel_generation(parallel);
        let got = run_streams(&mut lm, &reqs, &interlude);
        for ((text, g, tokens), a) in got.iter().zip(&alone) {
            assert_eq!(
                g.tokens, a.tokens,
                "parallel {parallel}: {:?} vs alone {:?}",
                g.text, a.text
            );
            assert_eq!(text, &a.text, "streamed text adds up to the generation");
            assert_eq!(tokens.len(), g.tokens.len());
            for t in tokens {
                assert!(t.logprob <= 0.0 && t.top.len() == 3, "{t:?}");
                assert!(t.top[0].logprob >= t.logprob - 1e-9, "{t:?}");
            }
        }
        // Greedy picks are the most likely tokens.
        for t in &got[0].2 {
            assert_eq!(t.token, t.top[0].token);
        }
    }
}

#[test]
fn real_model_prefix_cache_loads_earlier_prompts_and_changes_no_number() {
    let mut cached = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 8,
            ctx_per_seq: 512,
            prefix_cache: 16,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let reqs = requests(&cached);
    // Per persona: the first two scenarios in one call, the last two in the next (the
    // persona prefixes come from the cache), then the first call again (each prompt up to its
    // last block from the cache: 16 slots hold them all).
    let pick = |early: bool| -> Vec<ScoreRequest> {
        reqs.iter()
            .enumerate()
            .filter(|(i, _)| (i % SCENARIOS.len() < 2) == early)
            .map(|(_, r)| r.clone())
            .collect()
    };
    let (early, late) = (pick(true), pick(false));
    let reference = |r: &[ScoreRequest]| lm().score(r).unwrap();
    let (first, s1) = cached.score_with_stats(&early).unwrap();
    assert_eq!(s1.tokens_loaded, 0, "nothing to load at first");
    let (second, s2) = cached.score_with_stats(&late).unwrap();
    let (third, s3) = cached.score_with_stats(&early).unwrap();
    for (got, asked, s) in [
        (&first, &early, s1),
        (&second, &late, s2),
        (&third, &early, s3),
    ] {
        let d = max_diff(got, &reference(asked));
        eprintln!(
            "prefix cache: loaded {} of {} tokens, decoded {}, max Δ = {d}",
            s.tokens_loaded, s.tokens_requested, s.tokens_evaluated
        );
        assert!(d <= 1e-3, "max |Δ log-prob| with the prefix cache = {d}");
    }
    // The persona prefixes (~70 tokens each) came from the cache.
    assert!(s2.tokens_loaded >= PERSONAS.len() * 48, "{s2:?}");
    assert!(s3.tokens_loaded > s2.tokens_loaded, "{s3:?}");
    // Reads sit at every prompt's end and continuation, and each read's block is decoded.
    assert!(
        s3.tokens_evaluated * 3 < s1.tokens_evaluated * 2,
        "{s3:?} vs {s1:?}"
    );
    let st = cached.prefix_cache().unwrap();
    assert!(
        st.held > 0 && st.held <= 16 && st.tokens_loaded > 0,
        "{st:?}"
    );
}

#[test]
fn real_model_packed_scoring_loads_and_fills_the_prefix_cache() {
    let mut packed = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 8,
            ctx_per_seq: 512,
            prefix_cache: 16,
            pack_sequences: true,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let reqs = requests(&packed);
    let late: Vec<ScoreRequest> = reqs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % SCENARIOS.len() >= 2)
        .map(|(_, r)| r.clone())
        .collect();
    let early: Vec<ScoreRequest> = reqs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % SCENARIOS.len() < 2)
        .map(|(_, r)| r.clone())
        .collect();
    let (_, s1) = packed.score_with_stats(&early).unwrap();
    assert_eq!(s1.tokens_loaded, 0, "nothing to load at first");
    let (second, s2) = packed.score_with_stats(&late).unwrap();
    // The persona prefixes (~70 tokens each) came from the cache, cut at any token.
    assert!(s2.tokens_loaded >= PERSONAS.len() * 60, "{s2:?}");
    // Packed KV depends on what shared a call: close to the exact scores, not equal.
    let exact = lm().score(&late).unwrap();
    let d = max_diff(&second, &exact);
    // The same prompts packed from scratch, for scale.
    let mut fresh = lm();
    fresh.set_pack_sequences(true);
    let scratch = fresh.score(&late);
    fresh.set_pack_sequences(false);
    drop(fresh);
    let d0 = max_diff(&scratch.unwrap(), &exact);
    eprintln!("packed: max Δ = {d0} from scratch, {d} with the prefix cache ({s2:?})");
    assert!(
        d <= (2.0 * d0).max(0.5),
        "max |Δ log-prob| packed with the prefix cache = {d}, from scratch {d0}"
    );
}

/// Runs `reqs` as queued streams (co-scheduled prefill): request `i` is queued before step
/// `arrive[i]`, and `interlude` is scored before step `score_at` (scoring must leave pending
/// prompts alone). Checks that every step decodes in one call of at most `budget` tokens.
/// Returns each request's streamed text, generation, step tokens (with the top two) and the
/// step of its first token, and the most tokens a step decoded while it also advanced a
/// running stream.
#[allow(clippy::type_complexity)]
fn run_queued(
    lm: &mut LlamaLm,
    reqs: &[GenerateRequest],
    arrive: &[usize],
    interlude: &[ScoreRequest],
    score_at: usize,
    budget: usize,
) -> (Vec<(String, Generation, Vec<StepToken>, usize)>, usize) {
    let mut ids: Vec<Option<StreamId>> = vec![None; reqs.len()];
    let mut out: Vec<(String, Option<Generation>, Vec<StepToken>, Option<usize>)> =
        vec![(String::new(), None, vec![], None); reqs.len()];
    let mut mixed = 0;
    for step in 0..400 {
        let now: Vec<usize> = (0..reqs.len()).filter(|&i| arrive[i] == step).collect();
        if !now.is_empty() {
            let batch: Vec<(&GenerateRequest, Option<usize>)> =
                now.iter().map(|&i| (&reqs[i], Some(2))).collect();
            for (&i, id) in now.iter().zip(lm.streams().unwrap().queue_streams(&batch)) {
                ids[i] = Some(id.expect("queued"));
            }
        }
        if step == score_at {
            lm.score(interlude).unwrap();
        }
        let before = lm.totals();
        let steps = lm.streams().unwrap().step_streams().unwrap();
        let d = lm.totals().since(&before);
        assert!(
            d.decode_calls <= 1,
            "step {step}: {} decode calls",
            d.decode_calls
        );
        assert!(d.tokens_evaluated <= budget, "step {step}: {d:?}");
        if !steps.is_empty() {
            mixed = mixed.max(d.tokens_evaluated);
        }
        for s in steps {
            let i = ids.iter().position(|id| *id == Some(s.id)).unwrap();
            out[i].0.push_str(&s.text);
            if s.token.is_some() {
                out[i].3.get_or_insert(step);
            }
            out[i].2.extend(s.token);
            if let Some(g) = s.finished {
                out[i].1 = Some(g);
            }
        }
        if step > *arrive.iter().max().unwrap() && lm.streams().unwrap().open_streams() == 0 {
            break;
        }
    }
    let got = out
        .into_iter()
        .map(|(t, g, k, first)| {
            (
                t,
                g.expect("every stream finished"),
                k,
                first.expect("every stream generated"),
            )
        })
        .collect();
    (got, mixed)
}

/// Log-prob gap under which two tokens count as tied: llama.cpp's multi-sequence micro-batches
/// move a prompt's log-probs by up to ~0.2 nats (measured on this model), which can flip a
/// greedy pick between near-equal tokens.
const NEAR_TIE: f64 = 0.5;

/// Each request run alone as a stream, opened with its prompt evaluated exactly (the same
/// tokens and log-probs as `generate`): its step tokens with the top two.
fn alone_steps(lm: &mut LlamaLm, reqs: &[GenerateRequest]) -> Vec<(Generation, Vec<StepToken>)> {
    reqs.iter()
        .map(|r| {
            let s = lm.streams().unwrap();
            s.open_stream(r, Some(2)).unwrap();
            let mut tokens = vec![];
            loop {
                let mut steps = s.step_streams().unwrap();
                let step = steps.pop().unwrap();
                tokens.extend(step.token);
                if let Some(g) = step.finished {
                    return (g, tokens);
                }
            }
        })
        .collect()
}

/// Asserts that `got` picks the alone run's tokens with log-probs within [`NEAR_TIE`], up to
/// the alone run's first near-tie (top two within [`NEAR_TIE`]), where a flip is rounding and
/// comparison stops. Returns how many tokens were compared.
fn same_up_to_near_tie(got: &[StepToken], alone: &[StepToken], what: &str) -> usize {
    for (k, a) in alone.iter().enumerate() {
        let margin = a.top[0].logprob - a.top[1].logprob;
        match got.get(k) {
            Some(g) if g.token == a.token => {
                assert!(
                    (g.logprob - a.logprob).abs() < NEAR_TIE,
                    "{what}: token {k} log-prob {} vs alone {}",
                    g.logprob,
                    a.logprob
                );
            }
            _ if margin < NEAR_TIE => return k,
            g => panic!("{what}: token {k} is {g:?}, alone {a:?} (top-two gap {margin:.3})"),
        }
    }
    alone.len()
}

fn queued_requests(lm: &LlamaLm) -> Vec<GenerateRequest> {
    let ask = |text: String| GenerateRequest {
        prompt: lm.chat_prompt(&[ChatMessage::user(text)]).unwrap(),
        max_tokens: 16,
        sampling: Sampling::Greedy,
        stop: vec![],
    };
    vec![
        ask("Name three rivers in Europe.".into()),
        ask("Write one sentence about the sea.".into()),
        // Longer than two steps' budget: its prompt is spread over several steps.
        ask(format!(
            "{} {} {} Summarise these three people in one sentence.",
            PERSONAS[0], PERSONAS[1], PERSONAS[2]
        )),
        ask("What is a good breakfast?".into()),
    ]
}

#[test]
fn real_model_queued_streams_co_schedule_prefill_and_give_each_request_its_alone_tokens() {
    let budget = 64;
    let mut lm = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 4,
            ctx_per_seq: 512,
            stream_slots: 4,
            n_batch: budget,
            n_ubatch: budget,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let reqs = queued_requests(&lm);
    // Alone in the exact mode, which keeps no finished stream's KV: the queued prompts below
    // are then decoded from scratch.
    let alone = alone_steps(&mut lm, &reqs);
    lm.set_parallel_generation(true);
    let generated = reqs
        .iter()
        .map(|r| lm.generate(std::slice::from_ref(r)).unwrap().remove(0));
    for ((g, _), again) in alone.iter().zip(generated) {
        assert_eq!(
            g.tokens, again.tokens,
            "a stream alone generates as `generate` does"
        );
    }
    assert!(
        alone[2].0.prompt_tokens > 2 * budget,
        "{}",
        alone[2].0.prompt_tokens
    );
    let interlude: Vec<ScoreRequest> = requests(&lm).into_iter().take(2).collect();
    // Two at once, the long one while they run, the last while the long one is still pending.
    let arrive = [0, 0, 3, 4];
    let (got, mixed) = run_queued(&mut lm, &reqs, &arrive, &interlude, 5, budget);
    let mut compared = 0;
    for (i, ((text, g, tokens, first), (a, a_tokens))) in got.iter().zip(&alone).enumerate() {
        let what = format!("request {i}: {:?} vs alone {:?}", g.text, a.text);
        let n = same_up_to_near_tie(tokens, a_tokens, &what);
        eprintln!("request {i}: {n} of {} tokens as alone", a.tokens.len());
        compared += n;
        assert_eq!(text, &g.text, "streamed text adds up to the generation");
        assert_eq!(g.prompt_tokens, a.prompt_tokens);
        // The prompt is decoded at the arrival step (and later ones); the first token is
        // picked by the step that decodes the last prompt token.
        assert!(
            *first >= arrive[i],
            "request {i}: first token at step {first}"
        );
        // The two first prompts fit in their arrival step together: that step's decode gives
        // their logits and picks their first tokens (not the next step's).
        if i < 2 {
            assert!(got[0].1.prompt_tokens + got[1].1.prompt_tokens <= budget);
            assert_eq!(*first, arrive[i], "request {i}: first token a step late");
        }
    }
    let total: usize = alone.iter().map(|(a, _)| a.tokens.len()).sum();
    assert!(
        2 * compared >= total,
        "only {compared} of {total} tokens before a near-tie"
    );
    // The long prompt needs at least three steps (under budget - running tokens each); its
    // first token comes with the third.
    assert!(
        got[2].3 >= arrive[2] + 2,
        "long prompt generated from step {}",
        got[2].3
    );
    // Prompt tokens shared a decode call with running streams' tokens.
    assert!(
        mixed > 4,
        "at most {mixed} tokens in a step that advanced a stream"
    );
    assert_eq!(lm.streams().unwrap().open_streams(), 0);
}

#[test]
fn real_model_queued_streams_load_cached_prefixes_and_keep_their_tokens() {
    let mut lm = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 4,
            ctx_per_seq: 512,
            stream_slots: 4,
            prefix_cache: 4,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let reqs = queued_requests(&lm);
    // Alone, one by one: their prompts go into the prefix cache (in the exact mode, which
    // keeps no finished stream's KV, so the queued prompts must come from the cache).
    let alone = alone_steps(&mut lm, &reqs);
    lm.set_parallel_generation(true);
    let before = lm.cache_stats().tokens_loaded;
    let (got, _) = run_queued(&mut lm, &reqs, &[0, 1, 1, 2], &[], usize::MAX, 2048);
    let loaded = lm.cache_stats().tokens_loaded - before;
    assert!(
        loaded >= alone[2].0.prompt_tokens - 16,
        "the long prompt came from the cache: {loaded} tokens loaded"
    );
    let mut compared = 0;
    for (i, ((_, g, tokens, _), (a, a_tokens))) in got.iter().zip(&alone).enumerate() {
        let what = format!("request {i}: {:?} vs alone {:?}", g.text, a.text);
        compared += same_up_to_near_tie(tokens, a_tokens, &what);
    }
    let total: usize = alone.iter().map(|(a, _)| a.tokens.len()).sum();
    assert!(
        2 * compared >= total,
        "only {compared} of {total} tokens before a near-tie"
    );
}

/// Runs one queued request to its end; returns its step tokens and the number of tokens the
/// steps decoded.
fn run_one_queued(lm: &mut LlamaLm, r: &GenerateRequest) -> (Generation, Vec<StepToken>, usize) {
    let before = lm.totals();
    let s = lm.streams().unwrap();
    let id = s
        .queue_streams(&[(r, Some(2))])
        .pop()
        .unwrap()
        .expect("queued");
    let mut tokens = vec![];
    for _ in 0..400 {
        for step in s.step_streams().unwrap() {
            assert_eq!(step.id, id);
            tokens.extend(step.token);
            if let Some(g) = step.finished {
                let evaluated = lm.totals().since(&before).tokens_evaluated;
                return (g, tokens, evaluated);
            }
        }
    }
    panic!("the stream did not finish");
}

#[test]
fn real_model_queued_streams_reuse_a_finished_streams_kv() {
    let mut lm = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 2,
            ctx_per_seq: 256,
            stream_slots: 2,
            parallel_generation: true,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let reqs = queued_requests(&lm);
    let first = &reqs[0];
    let (g, a_tokens, evaluated) = run_one_queued(&mut lm, first);
    let n = g.prompt_tokens;
    // The prompt and every generated token but the last (whose logits nothing reads).
    assert_eq!(evaluated, n + g.tokens.len() - 1);
    // The same request again: its slot holds the prompt, so only the last prompt token is
    // decoded, then one token per step; the tokens are the first run's.
    let loaded = lm.totals().tokens_loaded;
    let (again, b_tokens, evaluated) = run_one_queued(&mut lm, first);
    assert_eq!(lm.totals().tokens_loaded - loaded, n - 1);
    assert_eq!(evaluated, 1 + again.tokens.len() - 1);
    let same = same_up_to_near_tie(&b_tokens, &a_tokens, "the same request again");
    assert!(same > 0, "{:?} vs {:?}", again.text, g.text);
    // A request that shares only the chat template's opening reuses that much.
    let other = &reqs[1];
    let shared = lm
        .tokenize(&first.prompt.text)
        .unwrap()
        .iter()
        .zip(lm.tokenize(&other.prompt.text).unwrap())
        .take_while(|(a, b)| **a == *b)
        .count();
    assert!(shared > 0 && shared < n, "{shared}");
    let loaded = lm.totals().tokens_loaded;
    let (o, o_tokens, _) = run_one_queued(&mut lm, other);
    assert_eq!(lm.totals().tokens_loaded - loaded, shared);
    // Its tokens are the ones it gets in a fresh exact run.
    lm.set_parallel_generation(false);
    let fresh = alone_steps(&mut lm, std::slice::from_ref(other));
    same_up_to_near_tie(&o_tokens, &fresh[0].1, "a request sharing a prefix");
    assert_eq!(o.prompt_tokens, fresh[0].0.prompt_tokens);
}

#[test]
fn real_model_queued_streams_are_checked_when_queued() {
    let mut lm = LlamaLm::load(
        &model_path(),
        LlamaConfig {
            n_seq: 2,
            ctx_per_seq: 64,
            stream_slots: 1,
            parallel_generation: true,
            ..LlamaConfig::default()
        },
    )
    .expect("load");
    let ask = |text: String| GenerateRequest {
        prompt: Prompt::from(text),
        max_tokens: 4,
        sampling: Sampling::Greedy,
        stop: vec![],
    };
    let long = ask(PERSONAS[0].into());
    let short = ask("The sea is".into());
    let calls = lm.totals().decode_calls;
    let r = lm
        .streams()
        .unwrap()
        .queue_streams(&[(&long, None), (&short, None), (&short, None)]);
    // Checked without decoding anything.
    assert_eq!(lm.totals().decode_calls, calls);
    assert!(
        matches!(r[0], Err(LlmError::PromptTooLong { limit: 64, .. })),
        "{:?}",
        r[0]
    );
    assert!(r[1].is_ok(), "{:?}", r[1]);
    assert!(
        matches!(&r[2], Err(LlmError::Context(m)) if m.contains("slots")),
        "{:?}",
        r[2]
    );
    // The one queued stream generates.
    let s = lm.streams().unwrap();
    assert_eq!(s.open_streams(), 1);
    let mut n = 0;
    while s.open_streams() > 0 && n < 20 {
        s.step_streams().unwrap();
        n += 1;
    }
    assert_eq!(s.open_streams(), 0);
}

#[test]
fn real_model_tagged_scoring_on_one_kv_cache_decodes_the_tree_once_and_keeps_the_cache_sound() {
    let load = |unified: bool, cache: usize, n_seq: usize| {
        LlamaLm::load(
            &model_path(),
            LlamaConfig {
                n_seq,
                ctx_per_seq: 512,
                prefix_cache: cache,
                pack_sequences: true,
                kv_unified: unified,
                ..LlamaConfig::default()
            },
        )
        .expect("load")
    };
    // Packed scoring in waves (one KV cache per sequence) as the reference for the plan.
    let mut waves = load(false, 0, 16);
    let reqs = requests(&waves);
    let (by_waves, sw) = waves.score_with_stats(&reqs).unwrap();
    drop(waves);
    // One cache for all sequences: the tree decoded by tags, each group of leaves in one
    // decode (36 leaves: every prompt with three continuations).
    let mut wide = load(true, 0, 16);
    let (by_tags, st) = wide.score_with_stats(&reqs).unwrap();
    drop(wide);
    assert_eq!(
        st.tokens_evaluated, sw.tokens_evaluated,
        "every segment decoded once, as in waves"
    );
    assert!(
        st.decode_calls < sw.decode_calls,
        "{} calls by tags, {} in waves",
        st.decode_calls,
        sw.decode_calls
    );
    // Four sequences = three leaves per group: the holder carries the shared prefixes from
    // group to group, and still nothing is decoded twice.
    let mut tagged = load(true, 2, 4);
    let (narrow, sn) = tagged.score_with_stats(&reqs).unwrap();
    assert_eq!(sn.tokens_evaluated, sw.tokens_evaluated);
    let exact = lm().score(&reqs).unwrap();
    let d0 = max_diff(&by_waves, &exact);
    let d = max_diff(&by_tags, &exact).max(max_diff(&narrow, &exact));
    eprintln!("packed vs exact: max Δ = {d0} in waves, {d} by tags");
    let tol = (2.0 * d0).max(0.5);
    assert!(d <= tol, "max |Δ log-prob| by tags = {d}, in waves {d0}");
    // Two cache sequences replaced again and again (each persona's prompts in turn, twice):
    // a sequence that takes a new prompt must hold only that prompt's KV (llama.cpp's copy on
    // one cache only adds cells to the destination).
    for round in 0..2 {
        for p in 0..PERSONAS.len() {
            let idx: Vec<usize> = (0..reqs.len())
                .filter(|i| i / SCENARIOS.len() == p)
                .collect();
            let part: Vec<ScoreRequest> = idx.iter().map(|&i| reqs[i].clone()).collect();
            let want: Vec<ScoreResult> = idx.iter().map(|&i| exact[i].clone()).collect();
            let (got, s) = tagged.score_with_stats(&part).unwrap();
            let d = max_diff(&got, &want);
            assert!(
                d <= tol,
                "round {round}, persona {p}: max |Δ log-prob| {d} ({s:?})"
            );
        }
    }
    let cache = tagged.prefix_cache().expect("a prefix cache");
    assert!(
        cache.replaced > 0 && cache.tokens_loaded > 0,
        "the cache was replaced and loaded from: {cache:?}"
    );
}

/// Loading must not leave an OpenMP worker pool on the loading thread: libgomp keeps one pool
/// per thread that started a parallel region, and with more pooled threads than CPUs every
/// barrier of a later decode on another thread (`serve`'s model thread) sleeps instead of
/// spinning (measured: ~1,400 sleeps a second per compute thread, a fifth of the CPUs idle).
/// libgomp's workers take the name of the thread that started them.
#[cfg(target_os = "linux")]
#[test]
fn real_model_loading_leaves_no_openmp_workers_on_the_loading_thread() {
    const NAME: &str = "omp-load-probe";
    let loader = std::thread::Builder::new()
        .name(NAME.into())
        .spawn(|| {
            let lm = LlamaLm::load(
                &model_path(),
                LlamaConfig {
                    threads: Some(2),
                    n_seq: 1,
                    ctx_per_seq: 256,
                    ..LlamaConfig::default()
                },
            )
            .expect("load");
            let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
            let me = me.file_name().map(|s| s.to_os_string());
            // A pool that is going away may take a moment to end its threads.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            loop {
                let workers = std::fs::read_dir("/proc/self/task")
                    .expect("/proc/self/task")
                    .filter_map(|e| e.ok())
                    .filter(|e| Some(e.file_name()) != me)
                    .filter(|e| {
                        std::fs::read_to_string(e.path().join("comm"))
                            .is_ok_and(|c| c.trim_end() == NAME)
                    })
                    .count();
                if workers == 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{workers} OpenMP worker thread(s) of the loading thread outlived the load"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            drop(lm);
        })
        .expect("spawn");
    loader.join().expect("the loading thread");
}
