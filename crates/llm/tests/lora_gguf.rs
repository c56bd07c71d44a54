//! Synthetic LoRA adapters written by the test's own GGUF writer load into llama.cpp against
//! the real default model and change its output in proportion to their scale.

mod support;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::num::NonZeroU32;
use support::gguf::write_lora;
use support::model_path;

#[test]
fn real_model_synthetic_lora_loads_and_scales_the_output() {
    let base = model_path();
    let dir = tempfile::tempdir().unwrap();
    let lora = dir.path().join("expert.gguf");
    write_lora(&base, &lora, 4, 4, 0.05, 7);

    let backend = LlamaBackend::init().unwrap();
    let mut model =
        LlamaModel::load_from_file(&backend, &base, &LlamaModelParams::default()).unwrap();
    let mut adapter = model
        .lora_adapter_init(&lora)
        .expect("llama.cpp accepts the synthetic adapter");
    let mut ctx = model
        .new_context(
            &backend,
            LlamaContextParams::default().with_n_ctx(NonZeroU32::new(256)),
        )
        .unwrap();
    let tokens = model
        .vocab()
        .tokenize("The capital of France is".as_bytes(), true, true);
    let logits = |ctx: &mut llama_cpp_2::context::LlamaContext| -> Vec<f32> {
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(64, 1);
        batch.add_sequence(&tokens, 0, false).unwrap();
        ctx.decode(&mut batch).unwrap();
        ctx.get_logits_ith(batch.n_tokens() - 1).to_vec()
    };
    let plain = logits(&mut ctx);
    ctx.lora_adapter_set(&mut adapter, 0.0).unwrap();
    let zero = logits(&mut ctx);
    ctx.lora_adapter_set(&mut adapter, 1.0).unwrap();
    let one = logits(&mut ctx);
    ctx.lora_adapter_set(&mut adapter, 2.0).unwrap();
    let two = logits(&mut ctx);
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    assert!(
        dist(&plain, &zero) < 1e-3,
        "scale 0 must leave the model as it is: {}",
        dist(&plain, &zero)
    );
    let (d1, d2) = (dist(&plain, &one), dist(&plain, &two));
    assert!(d1 > 1e-2, "scale 1 must change the logits: {d1}");
    assert!(
        d2 > d1,
        "a larger scale moves the logits further: {d1} vs {d2}"
    );
}
