//! DISCA against the authors' own code run on our default model (data/disca_reference/same_model):
//! the prompts are token for token the ones their code built; on an f32 copy of the weights (what
//! their run computed with) the RNG-free quantities agree to a thousandth, and on the Q4_K_M
//! GGUF itself within what llama.cpp's quantised kernels change.

use culturesteer_core::disca::{DiscaConfig, PanelGaps};
use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_data::personas::load_persona_json;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::Benchmark;
use culturesteer_llm::fetch::{ensure_default_model, ensure_default_model_f32};
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::LanguageModel;
use culturesteer_methods::{render_prompt, Disca, Item, Method, PromptSpec};
use std::path::{Path, PathBuf};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/disca_reference/same_model")
}

fn model() -> LlamaLm {
    let path = match std::env::var_os("CULTURESTEER_MODEL") {
        Some(p) => p.into(),
        None => ensure_default_model(&mut |m| eprintln!("{m}")).expect("default model"),
    };
    load(&path, false)
}

fn load(path: &Path, kv_f32: bool) -> LlamaLm {
    LlamaLm::load(
        path,
        LlamaConfig {
            n_seq: 10,
            ctx_per_seq: 512,
            kv_f32,
            ..Default::default()
        },
    )
    .expect("load the model")
}

fn usa_items() -> Vec<Item> {
    let bench = MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap();
    let usa = bench.country(CountryCode::new("USA").unwrap()).unwrap();
    bench.items(&usa).unwrap()
}

fn reference_personas() -> Vec<String> {
    let file = load_persona_json(&reference_dir().join("personas_USA_reference.json")).unwrap();
    file.panel(CountryCode::new("USA").unwrap())
        .unwrap()
        .personas
        .into_iter()
        .map(|p| p.text)
        .collect()
}

/// One row of reference_USA_0_4.csv.
struct Row {
    dimension: MoralDimension,
    consensus: f64,
    reward_mean: f64,
    bias: f64,
    persona_gaps: Vec<f64>,
}

fn reference_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(reference_dir().join("reference_USA_0_4.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            // scenario_idx,category,preferred_on_right,δ̄,reward mean,bias,"[g1, g2, g3, g4]",p
            let (head, rest) = line.split_once(",\"[").unwrap();
            let (list, _) = rest.split_once("]\"").unwrap();
            let f: Vec<&str> = head.split(',').collect();
            Row {
                dimension: f[1].parse().unwrap(),
                consensus: f[3].parse().unwrap(),
                reward_mean: f[4].parse().unwrap(),
                bias: f[5].parse().unwrap(),
                persona_gaps: list.split(", ").map(|x| x.parse().unwrap()).collect(),
            }
        })
        .collect()
}

#[test]
fn real_model_prompts_are_token_for_token_the_authors() {
    let lm = model();
    let items = usa_items();
    let personas = reference_personas();
    let first = &items[0];
    let count = |spec: &PromptSpec, system: Option<&str>| {
        let spec = PromptSpec {
            system: system.map(str::to_string).or_else(|| spec.system.clone()),
            ..spec.clone()
        };
        let p = render_prompt(&lm, &spec).unwrap();
        lm.tokenize(&p.text).unwrap().len()
    };
    // Both label orders; counts from the authors' run (same_model/SOURCE.md).
    for spec in [&first.prompt, first.swapped.as_ref().unwrap()] {
        assert!(spec.user.ends_with("Choice: "));
        assert_eq!(count(spec, None), 115, "base agent");
        let got: Vec<usize> = personas.iter().map(|p| count(spec, Some(p))).collect();
        assert_eq!(got, vec![315, 316, 309, 302], "persona agents");
    }
    // The rendered prompt keeps the frame's trailing space before the end of the turn.
    let text = render_prompt(&lm, &first.prompt).unwrap().text;
    assert!(text.starts_with("<start_of_turn>user\nYou are a helpful assistant.\n\nThe following is a moral dilemma:\n"), "{text}");
    assert!(
        text.ends_with("Choice: <end_of_turn>\n<start_of_turn>model\n"),
        "{text}"
    );
}

/// Runs our DISCA on the reference rows; returns the per-row report and the largest
/// |ours − theirs| of δ̄, δ_base, positional bias and the debiased persona gaps.
fn compare_with_reference(lm: &mut LlamaLm) -> (String, [f64; 4]) {
    let items: Vec<Item> = usa_items().into_iter().take(5).collect();
    let usa = culturesteer_methods::Country {
        code: CountryCode::new("USA").unwrap(),
        name: "the United States".into(),
    };
    let panels = std::iter::once((usa.code, reference_personas())).collect();
    let mut disca = Disca::new("disca", DiscaConfig::paper(), panels, 42);
    let answers = disca.answer(lm, &usa, &items).unwrap();
    let rows = reference_rows();
    assert_eq!(rows.len(), 5);
    let mut report = Vec::new();
    // Largest |ours − theirs| of δ̄, δ_base, positional bias and the debiased persona gaps.
    let mut worst = [0f64; 4];
    for ((item, a), row) in items.iter().zip(&answers).zip(&rows) {
        assert_eq!(item.dimension, Some(row.dimension));
        let d = &a.diagnostics["disca"];
        let t = d["logit_temperature"].as_f64().unwrap();
        let consensus = d["delta_consensus"].as_f64().unwrap();
        let base = d["delta_base"].as_f64().unwrap();
        let bias = d["positional_bias"].as_f64().unwrap();
        let gaps: PanelGaps = serde_json::from_value(a.diagnostics["gaps"].clone()).unwrap();
        let swap = gaps.personas_swap.clone().unwrap();
        let personas: Vec<f64> = gaps
            .personas_orig
            .iter()
            .zip(&swap)
            .map(|(o, s)| (o / t - s / t) / 2.0)
            .collect();
        let ref_base = row.consensus - row.reward_mean;
        report.push(format!(
            "{}: δ̄ {consensus:+.4} vs {:+.4}; δ_base {base:+.4} vs {ref_base:+.4}; bias {bias:+.3} vs {:+.3}; personas {personas:+.3?} vs {:+.3?}",
            item.id, row.consensus, row.bias, row.persona_gaps
        ));
        assert!(a.diagnostics["debiased"].as_bool().unwrap());
        worst[0] = worst[0].max((consensus - row.consensus).abs());
        worst[1] = worst[1].max((base - ref_base).abs());
        worst[2] = worst[2].max((bias - row.bias).abs());
        for (g, r) in personas.iter().zip(&row.persona_gaps) {
            worst[3] = worst[3].max((g - r).abs());
        }
    }
    let report = format!(
        "{}\nmax |Δ|: δ̄ {:.3}, δ_base {:.3}, bias {:.3}, persona gaps {:.3}",
        report.join("\n"),
        worst[0],
        worst[1],
        worst[2],
        worst[3]
    );
    (report, worst)
}

#[test]
fn real_model_disca_agrees_with_the_authors_code_on_the_same_model() {
    let (report, worst) = compare_with_reference(&mut model());
    eprintln!("{report}");
    // Tolerances: δ̄ 0.03 and positional bias 0.3 as planned. The single debiased gaps differ
    // by up to ~0.14 (measured on this CPU: δ_base 0.143, persona gaps 0.129, mean ~0.05):
    // llama.cpp multiplies Q4_K weights with activations quantised to 8 bits and keeps an F16
    // KV cache, the authors' run used fp32 weights dequantised by transformers. On the f32
    // copy of the same weights everything agrees to 0.001 (the test below), so these
    // differences are the quantised kernels' arithmetic alone.
    assert!(worst[0] <= 0.03, "δ̄\n{report}");
    assert!(worst[1] <= 0.15, "δ_base\n{report}");
    assert!(worst[2] <= 0.3, "positional bias\n{report}");
    assert!(worst[3] <= 0.15, "persona gaps\n{report}");
}

/// The authors' run dequantised the GGUF to fp32. With the same weights in f32 (dequantised by
/// llama.cpp) and an f32 KV cache, our arithmetic is theirs up to summation order: every
/// quantity agrees to a few thousandths (measured: at most 0.001). This is the proof that the
/// larger differences of the test above come from the quantised kernels, not from the method
/// or the prompts.
#[test]
fn real_model_f32_disca_agrees_with_the_authors_code_to_a_thousandth() {
    let path = ensure_default_model_f32(&mut |m| eprintln!("{m}")).expect("f32 copy");
    let (report, worst) = compare_with_reference(&mut load(&path, true));
    eprintln!("{report}");
    assert!(worst.iter().all(|w| *w <= 0.005), "{report}");
}
