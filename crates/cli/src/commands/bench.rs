//! `culturesteer bench engine`: engine throughput and the gain of prefix reuse, each reported as a
//! ratio to a baseline measured in the same process.

use crate::model_opts::ModelOpts;
use anyhow::Result;
use clap::{Args, Subcommand};
use culturesteer_llm::llama::LlamaLm;
use culturesteer_llm::{ChatMessage, LanguageModel, ScoreRequest, TokenId};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Prompt-processing and generation throughput, and prefix reuse vs naive scoring.
    Engine(EngineArgs),
    /// DISCA's panel (base + personas × two label orders per scenario) on the multitp-disca
    /// pool: scenarios/s, tokens per scenario vs naive, ratio to the floor, peak memory.
    Disca(DiscaBenchArgs),
    /// N concurrent clients against `serve` on a loopback port for a bounded time: requests/s,
    /// latency p50/p95 per request kind, errors, memory.
    Serve(crate::commands::bench_serve::ServeBenchArgs),
    /// Cultural Palette's batched pipeline vs its seven calls per question one after another:
    /// questions/s and the speedup (answers must be identical).
    Palette(crate::commands::bench_palette::PaletteBenchArgs),
}

#[derive(Args, Debug)]
pub struct DiscaBenchArgs {
    /// Country whose scenario pool and persona panel are used.
    #[arg(long, default_value = "USA")]
    pub country: String,
    /// Scenarios to run (each is 2 × (1 + personas) prompts).
    #[arg(long, default_value_t = 32)]
    pub scenarios: usize,
    /// Also time the naive run (every prompt evaluated in full, no prefix reuse).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub naive: bool,
    /// Also time the packed mode (`--pack-sequences`: a wave's prompts share decode calls) and
    /// print how far its probabilities are from the exact run's.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub packed: bool,
    #[command(flatten)]
    pub model: ModelOpts,
}

#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Persona prefixes in the prefix-reuse workload.
    #[arg(long, default_value_t = 5)]
    pub personas: usize,
    /// Scenario suffixes per persona in the prefix-reuse workload.
    #[arg(long, default_value_t = 20)]
    pub scenarios: usize,
    /// Path to llama.cpp's `llama-bench` built from the same llama.cpp sources (see
    /// docs/BENCHMARKS.md): runs pp200/tg32 on the same GGUF and thread count and prints our
    /// throughput as a ratio to it.
    #[arg(long)]
    pub llama_bench: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub model: ModelOpts,
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Engine(a) => engine(a),
        BenchCmd::Disca(a) => crate::commands::bench_disca::run(a),
        BenchCmd::Serve(a) => crate::commands::bench_serve::run(a),
        BenchCmd::Palette(a) => crate::commands::bench_palette::run(a),
    }
}

/// The middle value (the mean of the two middle ones for an even count; NaN when empty).
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const WORDS: &[&str] = &[
    "family",
    "work",
    "religion",
    "tradition",
    "freedom",
    "security",
    "trust",
    "neighbours",
    "politics",
    "children",
    "respect",
    "authority",
    "leisure",
    "friends",
    "duty",
    "honesty",
    "wealth",
    "nature",
    "community",
    "science",
    "equality",
    "order",
    "health",
    "education",
    "happiness",
    "independence",
];

/// A deterministic prose-like text of exactly `n` tokens (BOS included) for `lm`.
fn text_of_tokens(lm: &LlamaLm, n: usize, salt: usize) -> Result<Vec<TokenId>> {
    let mut s = String::new();
    let mut i = salt;
    loop {
        let w = WORDS[(i * 7 + salt) % WORDS.len()];
        s.push_str(&format!(
            "People here value {w} and {} in daily life. ",
            WORDS[(i * 13 + 5) % WORDS.len()]
        ));
        i += 1;
        let toks = lm.tokenize(&s)?;
        if toks.len() >= n {
            return Ok(toks[..n].to_vec());
        }
    }
}

fn persona_text(k: usize) -> String {
    let ages = ["young", "middle-aged", "older", "retired", "student"];
    let mut s = format!(
        "You are a {} person from the United States. Answer as this person would, in line with their values. ",
        ages[k % ages.len()]
    );
    for j in 0..9 {
        s.push_str(&format!(
            "On {}, you hold views typical of the {} quarter of your compatriots. ",
            WORDS[(k * 5 + j * 3) % WORDS.len()],
            ["lowest", "second", "third", "highest"][(k + j) % 4]
        ));
    }
    s
}

fn scenario_text(k: usize) -> String {
    let groups = [
        "a doctor",
        "2 elderly women",
        "a homeless person",
        "3 dogs",
        "a pregnant woman",
        "2 boys",
        "a criminal",
        "an athlete",
        "a cat and a man",
        "4 executives",
    ];
    format!(
        "The following is a moral dilemma:\nImagine an autonomous vehicle with a sudden brake failure (case {k}), resulting in either of two fatalities:\n\n\
         Option A — Group A: {}\nOption B — Group B: {}\n\nThe car must swerve into one lane, killing the occupants. \
         Who should be spared? Consider everyone involved, the law, and what a reasonable person would do in the moment.\n\n\
         If you must choose, would you choose option A or option B? Answer with exactly one letter: A or B.\n\nChoice: ",
        groups[k % groups.len()],
        groups[(k * 3 + 1) % groups.len()]
    )
}

fn engine(a: EngineArgs) -> Result<()> {
    let reps = a.reps.max(1);
    let mut lm = a.model.load()?;
    let d = lm.describe();
    let threads = a.model.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    println!(
        "model: {} ({}, {} parameters), threads {threads}",
        d.source,
        d.architecture.unwrap_or_default(),
        d.parameters.unwrap_or(0)
    );

    // 1. Prompt processing, single sequence of 200 tokens: our scorer vs a bare decode.
    let p200 = text_of_tokens(&lm, 200, 0)?;
    let p200_text = token_text(&lm, &p200);
    let req = ScoreRequest {
        prompt: p200_text.clone().into(),
        continuations: vec![],
        next_tokens: vec![],
        top_k: 1,
        ..Default::default()
    };
    let _ = lm.score(std::slice::from_ref(&req))?; // warm-up
    let mut ours = vec![];
    let mut bare = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        let (_, st) = lm.score_with_stats(std::slice::from_ref(&req))?;
        ours.push(st.tokens_evaluated as f64 / t.elapsed().as_secs_f64());
        let (pf, _) = lm.raw_decode(std::slice::from_ref(&p200), 0)?;
        bare.push(p200.len() as f64 / pf);
    }
    let (o, b) = (median(&ours), median(&bare));
    let pp1 = o;
    println!("prompt processing, 1 × {} tokens : {o:8.1} tok/s   bare llama.cpp decode {b:8.1} tok/s   ratio {:.3}", p200.len(), o / b);

    // 2. Batched: 8 different 200-token prompts in one call.
    let batch: Vec<Vec<TokenId>> = (0..8)
        .map(|k| text_of_tokens(&lm, 200, k + 1))
        .collect::<Result<_>>()?;
    let reqs: Vec<ScoreRequest> = batch
        .iter()
        .map(|t| ScoreRequest {
            prompt: token_text(&lm, t).into(),
            continuations: vec![],
            next_tokens: vec![],
            top_k: 1,
            ..Default::default()
        })
        .collect();
    let total: usize = batch.iter().map(|b| b.len()).sum();
    let mut ours = vec![];
    let mut bare = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        let (_, st) = lm.score_with_stats(&reqs)?;
        ours.push(st.tokens_evaluated as f64 / t.elapsed().as_secs_f64());
        let (pf, _) = lm.raw_decode(&batch, 0)?;
        bare.push(total as f64 / pf);
    }
    let (o, b) = (median(&ours), median(&bare));
    println!("prompt processing, 8 × 200 tokens : {o:8.1} tok/s   bare llama.cpp decode {b:8.1} tok/s   ratio {:.3}", o / b);

    // 3. Generation: 32 greedy tokens after the 200-token prompt.
    let gen_req = culturesteer_llm::GenerateRequest {
        prompt: p200_text.into(),
        max_tokens: 32,
        sampling: culturesteer_llm::Sampling::Greedy,
        stop: vec![],
    };
    let mut ours = vec![];
    let mut bare = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        let (g, st) = lm.generate_with_stats(std::slice::from_ref(&gen_req))?;
        let total = t.elapsed().as_secs_f64();
        // Subtract the prompt's share, measured by the bare run below at the same length.
        let (pf, gen) = lm.raw_decode(
            std::slice::from_ref(&p200),
            g[0].tokens.len().saturating_sub(1),
        )?;
        let n = g[0].tokens.len().saturating_sub(1).max(1);
        let _ = st;
        ours.push(n as f64 / (total - pf).max(1e-9));
        bare.push(n as f64 / gen.max(1e-9));
    }
    let (o, b) = (median(&ours), median(&bare));
    let gen_ours = o;
    println!("generation, 32 tokens after 200   : {o:8.1} tok/s   bare llama.cpp decode {b:8.1} tok/s   ratio {:.3}", o / b);

    if let Some(lb) = &a.llama_bench {
        let (pp, tg) = run_llama_bench(lb, lm.path(), threads, reps)?;
        println!(
            "llama-bench (same GGUF, {threads} threads): pp200 {pp:8.1} tok/s, tg32 {tg:6.1} tok/s;  ours/llama-bench: pp {:.3}, tg {:.3} (target ≥ 0.9)",
            pp1 / pp,
            gen_ours / tg
        );
    }

    // 4. Prefix reuse: personas × scenarios, next-token scoring of A/B.
    let mut reqs = Vec::new();
    let mut ab = None;
    for p in 0..a.personas {
        for s in 0..a.scenarios {
            let prompt = lm.chat_prompt(&[
                ChatMessage::system(persona_text(p)),
                ChatMessage::user(scenario_text(s)),
            ])?;
            let ids = match &ab {
                Some(ids) => ids,
                None => ab.insert(lm.resolve_answer_tokens(&prompt, &["A", "B"])?),
            };
            reqs.push(ScoreRequest::next_tokens(prompt, ids.clone()));
        }
    }
    let prefix_len = lm
        .tokenize(
            &lm.chat_prompt(&[
                ChatMessage::system(persona_text(0)),
                ChatMessage::user(String::new()),
            ])?
            .text,
        )?
        .len();
    let full_len: usize = reqs
        .iter()
        .map(|r| lm.tokenize(&r.prompt.text).map(|t| t.len()))
        .sum::<culturesteer_llm::Result<usize>>()?;
    println!(
        "prefix-reuse workload: {} persona prefixes (~{} tokens) × {} scenarios (~{} tokens each after the prefix)",
        a.personas,
        prefix_len,
        a.scenarios,
        (full_len / reqs.len().max(1)).saturating_sub(prefix_len)
    );
    let mut naive_t = vec![];
    let mut reuse_t = vec![];
    let (mut naive_tok, mut reuse_tok) = (0, 0);
    let mut max_diff = 0f64;
    for _ in 0..reps {
        lm.set_prefix_reuse(false);
        let t = Instant::now();
        let (rn, sn) = lm.score_with_stats(&reqs)?;
        naive_t.push(t.elapsed().as_secs_f64());
        naive_tok = sn.tokens_evaluated;
        lm.set_prefix_reuse(true);
        let t = Instant::now();
        let (rr, sr) = lm.score_with_stats(&reqs)?;
        reuse_t.push(t.elapsed().as_secs_f64());
        reuse_tok = sr.tokens_evaluated;
        for (x, y) in rn.iter().zip(&rr) {
            for (p, q) in x.next_token_logprobs.iter().zip(&y.next_token_logprobs) {
                max_diff = max_diff.max((p - q).abs());
            }
        }
    }
    let (tn, tr) = (median(&naive_t), median(&reuse_t));
    println!(
        "  naive : {naive_tok:6} tokens evaluated in {tn:7.3} s ({:8.1} tok/s)",
        naive_tok as f64 / tn
    );
    println!(
        "  reuse : {reuse_tok:6} tokens evaluated in {tr:7.3} s ({:8.1} tok/s)",
        reuse_tok as f64 / tr
    );
    println!(
        "  speedup {:.2}× (token ratio {:.2}×, target ≥ 2×); max |Δ log-prob| reuse vs naive {max_diff:.2e}",
        tn / tr,
        naive_tok as f64 / reuse_tok.max(1) as f64
    );
    Ok(())
}

/// Text that tokenises back to `toks` (without the leading BOS, which the tokenizer adds).
fn token_text(lm: &LlamaLm, toks: &[TokenId]) -> String {
    toks.iter().skip(1).map(|t| lm.token_piece(*t)).collect()
}

/// Runs llama.cpp's llama-bench (pp200 and tg32) and returns the mean tokens/s of each.
fn run_llama_bench(
    exe: &std::path::Path,
    model: &std::path::Path,
    threads: usize,
    reps: usize,
) -> Result<(f64, f64)> {
    let out = std::process::Command::new(exe)
        .args(["-m"])
        .arg(model)
        .args([
            "-t",
            &threads.to_string(),
            "-p",
            "200",
            "-n",
            "32",
            "-r",
            &reps.to_string(),
            "-o",
            "json",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("could not run {}: {e}", exe.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} exited with {}", exe.display(), out.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("llama-bench printed no JSON: {e}"))?;
    let mut pp = None;
    let mut tg = None;
    for t in v.as_array().into_iter().flatten() {
        let ts = t["avg_ts"].as_f64();
        if t["n_prompt"].as_u64() == Some(200) && t["n_gen"].as_u64() == Some(0) {
            pp = ts;
        }
        if t["n_gen"].as_u64() == Some(32) && t["n_prompt"].as_u64() == Some(0) {
            tg = ts;
        }
    }
    match (pp, tg) {
        (Some(p), Some(t)) => Ok((p, t)),
        _ => anyhow::bail!("llama-bench output lacks pp200/tg32 results"),
    }
}
