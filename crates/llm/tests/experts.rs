//! Named expert adapters in the llama.cpp backend (Cultural Palette's continent experts):
//! synthetic LoRAs load as experts, their scales steer scores and hidden states, and scale 0
//! gives the base model back. (A separate test binary from lora_gguf.rs: llama.cpp's backend
//! may be initialised once per process, and that test initialises it itself.)

mod support;

use support::gguf::write_lora;
use support::model_path;

#[test]
fn real_model_experts_load_into_the_backend_and_their_scales_steer_scores_and_hidden_states() {
    use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
    use culturesteer_llm::{LanguageModel, Prompt, ScoreRequest};
    let base = model_path();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    write_lora(&base, &a, 4, 4, 0.05, 1);
    write_lora(&base, &b, 4, 4, 0.05, 2);
    let mut lm = LlamaLm::load(
        &base,
        LlamaConfig {
            n_seq: 2,
            ctx_per_seq: 256,
            ..LlamaConfig::default()
        },
    )
    .unwrap();
    assert!(lm.experts().is_empty());
    lm.load_experts(&[("a".into(), a.clone()), ("b".into(), b)])
        .unwrap();
    assert_eq!(lm.experts(), ["a", "b"]);
    assert!(
        lm.load_experts(&[("a".into(), a)]).is_err(),
        "a name given twice"
    );
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a gguf").unwrap();
    assert!(lm.load_experts(&[("c".into(), bad)]).is_err());

    let prompt = Prompt::from("The capital of France is".to_string());
    let req = ScoreRequest::continuations(prompt.clone(), vec![" Paris".into(), " Rome".into()]);
    let read = |lm: &mut LlamaLm, scales: &[f32]| {
        lm.set_expert_scales(scales).unwrap();
        let s = lm.score(std::slice::from_ref(&req)).unwrap().remove(0);
        let h = lm
            .hidden_states(std::slice::from_ref(&prompt))
            .unwrap()
            .remove(0);
        (
            s.continuations
                .iter()
                .map(|c| c.logprob)
                .collect::<Vec<f64>>(),
            h,
        )
    };
    let (base_lp, base_h) = read(&mut lm, &[0.0, 0.0]);
    let (a_lp, a_h) = read(&mut lm, &[1.0, 0.0]);
    let (mix_lp, mix_h) = read(&mut lm, &[0.5, 0.5]);
    let (again_lp, again_h) = read(&mut lm, &[0.0, 0.0]);
    assert_eq!(
        base_lp, again_lp,
        "scales back at zero give the base model again"
    );
    assert_eq!(base_h, again_h);
    assert_eq!(base_h.len(), lm.describe().embedding_size.unwrap());
    let diff = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max)
    };
    assert!(
        diff(&base_lp, &a_lp) > 1e-3,
        "expert a changes the scores: {base_lp:?} vs {a_lp:?}"
    );
    assert!(
        diff(&a_lp, &mix_lp) > 1e-3,
        "a mix differs from one expert: {a_lp:?} vs {mix_lp:?}"
    );
    let hdiff = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max)
    };
    assert!(hdiff(&base_h, &a_h) > 1e-4 && hdiff(&a_h, &mix_h) > 1e-4);
    assert!(
        lm.set_expert_scales(&[1.0]).is_err(),
        "one scale per expert"
    );
    assert!(lm.set_expert_scales(&[f32::NAN, 0.0]).is_err());
    let mut soft = prompt.clone();
    soft.soft = Some(std::sync::Arc::new(
        lm.token_embeddings(&lm.tokenize("Hi").unwrap()[1..])
            .unwrap(),
    ));
    assert!(
        lm.hidden_states(&[soft]).is_err(),
        "hidden states of a soft prompt are refused"
    );
}
