//! `culturesteer bench disca`: the DISCA panel's speed on a real scenario pool, as ratios to
//! baselines measured in the same process (spec: issue "DISCA", item 6).

use super::bench::DiscaBenchArgs;
use anyhow::Result;
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::Benchmark;
use culturesteer_llm::plan::DEPTH_BUCKET;
use culturesteer_llm::{LanguageModel, TokenId};
use culturesteer_methods::Method;
use std::time::Instant;

/// A field of /proc/self/status in KiB (Linux); `None` elsewhere.
fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn run(a: DiscaBenchArgs) -> Result<()> {
    let code = CountryCode::new(&a.country.trim().to_ascii_uppercase())
        .map_err(|e| anyhow::anyhow!("--country: {e}"))?;
    let bench = MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default())?;
    let country = bench.country(code)?;
    let items: Vec<_> = bench
        .items(&country)?
        .into_iter()
        .take(a.scenarios.max(1))
        .collect();
    // Built from the registry as `eval --method disca` builds it; each run below gets a fresh
    // method with its own gap cache, so every prompt is really evaluated.
    let countries = [code];
    let palette = culturesteer_registry::PaletteSettings::default();
    let fresh = || -> Result<Box<dyn Method>> {
        let gaps = culturesteer_methods::disca::GapCache::default();
        Ok(culturesteer_registry::build_one(
            "disca",
            &culturesteer_registry::MethodContext {
                countries: &countries,
                data: &DataSource::Embedded,
                personas: None,
                wvs: None,
                preset: culturesteer_registry::Preset::Paper,
                seed: 42,
                palette: &palette,
                gaps: &gaps,
            },
        )?)
    };
    let mut method = fresh()?;
    let n_personas = method.config()["panels"][code.as_str()]
        .as_array()
        .map_or(0, Vec::len);
    let mut lm = a.model.load()?;
    let rss_loaded = proc_status_kib("VmRSS:");
    // The engine's batched throughput in this process: 8 × 200 tokens in one decode.
    let seqs: Vec<Vec<TokenId>> = (0..8)
        .map(|k| {
            let t = lm.tokenize(&format!(
                "Sample {k}: {}",
                "people value family, work and tradition in daily life. ".repeat(30)
            ))?;
            Ok(t[..200.min(t.len())].to_vec())
        })
        .collect::<Result<_>>()?;
    lm.raw_decode(&seqs, 0)?; // warm-up
    let (pf, _) = lm.raw_decode(&seqs, 0)?;
    let engine_tps = seqs.iter().map(Vec::len).sum::<usize>() as f64 / pf;

    println!(
        "DISCA panel on {} ({}): {} scenarios × 2 label orders × (base + {n_personas} personas) = {} prompts",
        country.name,
        code,
        items.len(),
        items.len() * 2 * (1 + n_personas)
    );
    lm.set_prefix_reuse(true);
    let before = lm.totals();
    let t = Instant::now();
    let reuse = method.answer(
        &mut lm,
        &culturesteer_methods::Country {
            code,
            name: country.name.clone(),
        },
        &items,
    )?;
    let t_reuse = t.elapsed().as_secs_f64();
    let run = lm.totals().since(&before);
    let (evaluated, requested, unique) = (
        run.tokens_evaluated,
        run.tokens_requested,
        run.tokens_unique,
    );
    let per = |n: usize| n as f64 / items.len() as f64;
    // The floor: the engine's own time for the run's must-evaluate tokens (the prompts' token
    // trie) at the positions they sit at. A token late in a prompt attends to more cells and
    // costs more, so throughput is measured per 64-token band of positions, 8 sequences × 64
    // tokens in one decode after their earlier positions were decoded.
    let mut floor = 0.0;
    let mut bands = Vec::new();
    for (b, &n) in run.unique_by_depth.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let from = b * DEPTH_BUCKET;
        let band: Vec<Vec<TokenId>> = seqs
            .iter()
            .map(|s| {
                s.iter()
                    .cycle()
                    .take(from + DEPTH_BUCKET)
                    .copied()
                    .collect()
            })
            .collect();
        lm.raw_decode_from(&band, from)?; // warm-up
        let mut t = 0.0;
        for _ in 0..3 {
            t += lm.raw_decode_from(&band, from)?;
        }
        let tps = (3 * band.len() * DEPTH_BUCKET) as f64 / t;
        floor += n as f64 / tps;
        bands.push(format!("{from}–{}: {tps:.0}", from + DEPTH_BUCKET));
    }
    println!(
        "  engine batched throughput (bare decode, 8 × 64 tokens) by position, tok/s: {}; from position 0, 8 × 200: {engine_tps:.1}",
        bands.join(", ")
    );
    println!(
        "  with prefix reuse: {t_reuse:7.2} s, {:6.2} scenarios/s, {:7.1} tokens/scenario evaluated (must-evaluate {:.1}, naive {:.1})",
        items.len() as f64 / t_reuse,
        per(evaluated),
        per(unique),
        per(requested)
    );
    println!(
        "  ratio to the floor (must-evaluate tokens at their positions ÷ engine throughput there = {floor:.2} s): {:.2} (target ≥ 0.85)",
        floor / t_reuse
    );
    // What exactness costs: scoring decodes one sequence per call (multi-sequence micro-batches
    // change log-probs on this llama.cpp build), so each call is small; the same engine on
    // single-sequence calls of the run's mean size is the floor of that design.
    let calls = run.decode_calls;
    let per_call = (evaluated / calls.max(1)).clamp(16, 512);
    let one = vec![seqs[0]
        .iter()
        .cycle()
        .take(per_call)
        .copied()
        .collect::<Vec<TokenId>>()];
    lm.raw_decode(&one, 0)?;
    let reps = 16;
    let mut t_one = 0.0;
    for _ in 0..reps {
        t_one += lm.raw_decode(&one, 0)?.0;
    }
    let single_tps = (reps * per_call) as f64 / t_one;
    println!(
        "  decode calls: {calls} ({:.1} per scenario, {per_call} tokens each on average); engine on single {per_call}-token calls {single_tps:.1} tok/s; ratio to that floor {:.2}",
        calls as f64 / items.len() as f64,
        unique as f64 / single_tps / t_reuse
    );
    let culture = culturesteer_methods::Country {
        code,
        name: country.name.clone(),
    };
    // A fresh method (its own, empty gap cache, so every prompt is really evaluated) under one
    // engine setting: (seconds, the run's statistics, max |Δp| against the reuse run).
    let compare = |lm: &mut culturesteer_llm::llama::LlamaLm,
                   set: &dyn Fn(&mut culturesteer_llm::llama::LlamaLm, bool)|
     -> Result<(f64, culturesteer_llm::llama::RunStats, f64)> {
        let mut m = fresh()?;
        set(lm, true);
        let before = lm.totals();
        let t = Instant::now();
        let answers = m.answer(lm, &culture, &items);
        let took = t.elapsed().as_secs_f64();
        set(lm, false);
        let answers = answers?;
        let max_diff = reuse
            .iter()
            .zip(&answers)
            .flat_map(|(x, y)| x.probs.iter().zip(&y.probs).map(|(p, q)| (p - q).abs()))
            .fold(0.0, f64::max);
        Ok((took, lm.totals().since(&before), max_diff))
    };
    if a.naive {
        let (t_naive, st, max_diff) = compare(&mut lm, &|lm, on| lm.set_prefix_reuse(!on))?;
        anyhow::ensure!(
            st.tokens_evaluated >= requested,
            "the naive run evaluated {} tokens, fewer than the {requested} its prompts hold",
            st.tokens_evaluated
        );
        println!(
            "  naive (10 full prompts per scenario): {t_naive:7.2} s; speedup {:.2}× (token ratio {:.2}×, target ≥ 2.5×); max |Δp| {max_diff:.1e}",
            t_naive / t_reuse,
            requested as f64 / evaluated.max(1) as f64
        );
    }
    if a.packed {
        // The opt-in packed mode: a wave's segments share decode calls and prefixes are shared
        // at any token. Faster, but no longer exact: the difference to the exact run is shown.
        let (t_packed, st, max_diff) = compare(&mut lm, &|lm, on| lm.set_pack_sequences(on))?;
        println!(
            "  packed (--pack-sequences): {t_packed:7.2} s, {:7.1} tokens/scenario evaluated in {} calls; ratio to the floor {:.2}; max |Δp| vs exact {max_diff:.1e}",
            per(st.tokens_evaluated),
            st.decode_calls,
            floor / t_packed
        );
    }
    match (rss_loaded, proc_status_kib("VmHWM:")) {
        (Some(l), Some(p)) => println!(
            "  memory: RSS after load {:.0} MiB, peak {:.0} MiB, ratio {:.2} (target ≤ 1.5)",
            l as f64 / 1024.0,
            p as f64 / 1024.0,
            p as f64 / l as f64
        ),
        _ => println!("  memory: not measured (no /proc/self/status)"),
    }
    Ok(())
}
