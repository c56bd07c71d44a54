//! The named models of the registry on the real files (fetched into the cache once, on first
//! use): each renders chat prompts in its own format and answers a short greedy generation.

use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::models;
use culturesteer_llm::*;
use std::path::Path;

fn load(name: &str) -> LlamaLm {
    let path = models::resolve(Some(Path::new(name)), &mut |m| eprintln!("{m}")).expect(name);
    LlamaLm::load(
        &path,
        LlamaConfig {
            n_seq: 1,
            ctx_per_seq: 256,
            ..LlamaConfig::default()
        },
    )
    .expect("load")
}

fn greedy(lm: &mut LlamaLm, prompt: Prompt, max_tokens: usize) -> String {
    lm.generate(&[GenerateRequest {
        prompt,
        max_tokens,
        sampling: Sampling::Greedy,
        stop: vec![],
    }])
    .unwrap()
    .remove(0)
    .text
}

#[test]
fn real_model_smollm2_renders_chatml_from_its_gguf_and_answers() {
    let mut lm = load("smollm2-135m-instruct");
    assert_eq!(lm.describe().chat_format, "template");
    let p = lm
        .chat_prompt(&[ChatMessage::system("SYS"), ChatMessage::user("USER")])
        .unwrap();
    assert_eq!(
        p.text,
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nUSER<|im_end|>\n<|im_start|>assistant\n"
    );
    // No BOS is added in front: the first token is the turn marker itself.
    let toks = lm.tokenize(&p.text).unwrap();
    assert_eq!(lm.token_piece(toks[0]), "<|im_start|>");
    let q = lm
        .chat_prompt(&[ChatMessage::user("What is the capital of France?")])
        .unwrap();
    assert_eq!(
        q.text,
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    // llama-cpp-python 0.3.16 answers this prompt greedily with "The capital of France is Paris."
    let out = greedy(&mut lm, q, 12);
    assert!(out.contains("Paris"), "{out:?}");
}

#[test]
fn real_model_gemma_by_name_keeps_its_own_rendering() {
    let mut lm = load(models::DEFAULT_MODEL);
    assert_eq!(lm.describe().chat_format, "builtin:gemma");
    let p = lm
        .chat_prompt(&[ChatMessage::system("SYS"), ChatMessage::user("USER")])
        .unwrap();
    assert_eq!(
        p.text,
        "<start_of_turn>user\nSYS\n\nUSER<end_of_turn>\n<start_of_turn>model\n"
    );
    let out = greedy(&mut lm, Prompt::from("The capital of France is"), 8);
    assert!(!out.trim().is_empty(), "{out:?}");
}
