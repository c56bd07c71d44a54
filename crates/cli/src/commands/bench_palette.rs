//! `culturesteer bench palette`: Cultural Palette's pipeline (five drafts per question in one
//! batch, then the summaries and decisions of all questions in one batch each) against the same
//! seven calls per question run one after another, on real GlobalOpinionQA questions (issue
//! "Cultural Palette", Speed). The pipeline runs twice: with exact generation (one sequence
//! per decode, answers identical to the sequential run, checked) and with parallel generation
//! (all sequences of a batch in one decode).

use crate::model_opts::ModelOpts;
use anyhow::Result;
use clap::Args;
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaOptions};
use culturesteer_eval::Benchmark;
use culturesteer_llm::LanguageModel;
use culturesteer_methods::{Answer, Method, Palette, PaletteConfig};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct PaletteBenchArgs {
    /// Country whose GlobalOpinionQA questions are asked.
    #[arg(long, default_value = "NGA")]
    pub country: String,
    /// Questions to answer (each is 7 model calls when run one after another).
    #[arg(long, default_value_t = 4)]
    pub questions: usize,
    /// Most tokens of each continent draft.
    #[arg(long, default_value_t = 48)]
    pub draft_tokens: usize,
    /// Most tokens of each summary.
    #[arg(long, default_value_t = 64)]
    pub summary_tokens: usize,
    #[command(flatten)]
    pub model: ModelOpts,
}

pub fn run(a: PaletteBenchArgs) -> Result<()> {
    let data = DataSource::Embedded;
    let code = CountryCode::new(&a.country.trim().to_ascii_uppercase())
        .map_err(|e| anyhow::anyhow!("--country: {e}"))?;
    let goqa = Goqa::load(&data, GoqaOptions::default())?;
    let country = goqa.country(code)?;
    let items: Vec<_> = goqa
        .items(&country)?
        .into_iter()
        .take(a.questions.max(1))
        .collect();
    let mut lm = a.model.load_with_experts()?;
    // The registry's Cultural Palette (templates, continent map, settings), with the two
    // engine switches this benchmark compares.
    let settings = culturesteer_registry::PaletteSettings {
        draft_tokens: a.draft_tokens,
        summary_tokens: a.summary_tokens,
        ..Default::default()
    };
    let method = |sequential: bool, reuse_kv: bool| -> Result<Palette> {
        let (cfg, templates, continents) = settings.parts(&data)?;
        let cfg = PaletteConfig {
            sequential,
            reuse_kv,
            ..cfg
        };
        Ok(Palette::new(cfg, templates, continents)?)
    };
    let experts = lm.experts();
    println!(
        "Cultural Palette on {} ({code}): {} GlobalOpinionQA questions × (5 drafts ≤ {} tokens + summary ≤ {} tokens + decision){}",
        country.name,
        items.len(),
        a.draft_tokens,
        a.summary_tokens,
        if experts.is_empty() { String::new() } else { format!(", experts {}", experts.join(",")) }
    );
    let mut timed =
        |sequential: bool, reuse_kv: bool, parallel: bool| -> Result<(f64, Vec<Answer>)> {
            let mut m = method(sequential, reuse_kv)?;
            lm.set_parallel_generation(parallel);
            let t = Instant::now();
            let answers = m.answer(&mut lm, &country, &items)?;
            Ok((t.elapsed().as_secs_f64(), answers))
        };
    let (t_base, _) = timed(true, false, false)?;
    let (t_exact, exact) = timed(false, true, false)?;
    let (t_par, par) = timed(false, true, true)?;
    let (_, seq) = timed(true, true, false)?;
    let n = items.len() as f64;
    let same = |x: &[Answer], y: &[Answer]| {
        x.iter()
            .zip(y)
            .filter(|(p, q)| {
                p.probs == q.probs
                    && p.logprobs == q.logprobs
                    && p.diagnostics["summary"] == q.diagnostics["summary"]
            })
            .count()
    };
    let argmax = |a: &Answer| {
        a.probs
            .iter()
            .enumerate()
            .fold(0, |b, (i, p)| if *p > a.probs[b] { i } else { b })
    };
    let agree = par
        .iter()
        .zip(&exact)
        .filter(|(p, q)| argmax(p) == argmax(q))
        .count();
    println!("| run | seconds | questions/s | speedup |\n|---|---:|---:|---:|");
    println!("| 7 calls per question, one after another (no batching, no KV reuse) | {t_base:.2} | {:.3} | 1.00× |", n / t_base);
    println!("| pipeline: batched stages, decision on the summary's KV | {t_exact:.2} | {:.3} | {:.2}× |", n / t_exact, t_base / t_exact);
    println!(
        "| pipeline + parallel generation (--parallel-generation) | {t_par:.2} | {:.3} | {:.2}× |",
        n / t_par,
        t_base / t_par
    );
    let identical = same(&exact, &seq);
    println!("pipeline vs the same calls one question at a time: {identical}/{} answers identical (summaries, log-probs)", items.len());
    println!("parallel generation vs exact: {}/{} identical, {agree}/{} with the same most likely option", same(&par, &exact), items.len(), items.len());
    if identical != items.len() {
        anyhow::bail!(
            "the batched pipeline and the same calls one question at a time gave different answers"
        );
    }
    Ok(())
}
