//! `culturesteer bench palette`: Cultural Palette's pipeline (five drafts in one batch, then the
//! summaries and decisions of all questions in one batch each) against the same seven calls
//! per question run one after another, on real GlobalOpinionQA questions (issue "Cultural
//! Palette", Speed).

use crate::model_opts::ModelOpts;
use anyhow::Result;
use clap::Args;
use culturesteer_bench::goqa::{Goqa, GoqaOptions};
use culturesteer_bench::Benchmark;
use culturesteer_core::CountryCode;
use culturesteer_data::palette::{ContinentMap, PaletteTemplates};
use culturesteer_data::DataSource;
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
    let code = CountryCode::new(&a.country.trim().to_ascii_uppercase()).map_err(|e| anyhow::anyhow!("--country: {e}"))?;
    let goqa = Goqa::load(&data, GoqaOptions::default())?;
    let country = goqa.country(code)?;
    let items: Vec<_> = goqa.items(&country)?.into_iter().take(a.questions.max(1)).collect();
    let mut opened = a.model.open()?;
    let lm = opened.lm.as_mut();
    let method = |sequential: bool| -> Result<Palette> {
        let cfg = PaletteConfig { draft_tokens: a.draft_tokens, summary_tokens: a.summary_tokens, sequential, ..PaletteConfig::default() };
        Ok(Palette::new(cfg, PaletteTemplates::load(&data)?, ContinentMap::load(&data)?)?)
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
    let mut timed = |sequential: bool| -> Result<(f64, Vec<Answer>)> {
        let mut m = method(sequential)?;
        let t = Instant::now();
        let answers = m.answer(lm, &country, &items)?;
        Ok((t.elapsed().as_secs_f64(), answers))
    };
    let (t_batched, batched) = timed(false)?;
    let (t_seq, seq) = timed(true)?;
    let n = items.len() as f64;
    let same = batched.iter().zip(&seq).all(|(x, y)| x.probs == y.probs && x.diagnostics["summary"] == y.diagnostics["summary"]);
    println!("| run | seconds | questions/s |\n|---|---:|---:|");
    println!("| pipeline (batched stages) | {t_batched:.2} | {:.3} |", n / t_batched);
    println!("| 7 calls per question, one after another | {t_seq:.2} | {:.3} |", n / t_seq);
    println!("speedup of the pipeline over sequential calls: {:.2}×", t_seq / t_batched);
    println!("answers identical in both runs: {}", if same { "yes" } else { "NO" });
    if !same {
        anyhow::bail!("the batched and the sequential pipeline gave different answers");
    }
    Ok(())
}
