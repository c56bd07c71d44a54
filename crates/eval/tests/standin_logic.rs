//! The logic most likely to break, on the scripted stand-in model (no llama.cpp, milliseconds):
//! the runner's resume (torn last line, only missing items asked, a complete run asks nothing,
//! another configuration refused), bootstrap replicates paired across methods, and DISCA's
//! expansion into prompts and its shared gap cache.

use culturesteer_core::disca::DiscaConfig;
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::runner::{run, NoProgress, RunConfig};
use culturesteer_eval::Benchmark;
use culturesteer_llm::standin::{Call, StandIn};
use culturesteer_methods::disca::GapCache;
use culturesteer_methods::{Country, Disca, Item, Method, Vanilla};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

fn bench() -> MultiTpDisca {
    MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap()
}

fn usa() -> CountryCode {
    CountryCode::new("USA").unwrap()
}

fn cfg(dir: &Path, seed: u64) -> RunConfig {
    RunConfig {
        out_dir: dir.to_path_buf(),
        countries: vec![usa()],
        limit: Some(6),
        batch_size: 2,
        seed,
        bootstrap: 0,
        invocation: serde_json::Value::Null,
    }
}

fn vanilla_run(lm: &mut StandIn, dir: &Path, seed: u64) -> Result<usize, String> {
    let mut methods: Vec<Box<dyn Method>> = vec![Box::new(Vanilla)];
    run(
        &bench(),
        &mut methods,
        lm,
        "stand-in",
        &DataSource::Embedded,
        &cfg(dir, seed),
        &mut NoProgress,
    )
    .map(|o| o.answered)
    .map_err(|e| e.to_string())
}

fn item_ids(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("complete JSON line");
            v["item_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_torn_run_resumes_asking_only_for_the_missing_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut lm = StandIn::new();
    let log = lm.log();
    assert_eq!(vanilla_run(&mut lm, dir.path(), 1), Ok(6));
    let full = log.scored_prompts();
    let all = item_ids(dir.path());
    assert_eq!(all.len(), 6);
    // Keep three records and half of the fourth, as a kill in mid-write leaves it.
    let path = dir.path().join("results.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut f = std::fs::File::create(&path).unwrap();
    for l in &lines[..3] {
        writeln!(f, "{l}").unwrap();
    }
    write!(f, "{}", &lines[3][..lines[3].len() / 2]).unwrap();
    drop(f);
    let mut lm = StandIn::new();
    let log = lm.log();
    assert_eq!(vanilla_run(&mut lm, dir.path(), 1), Ok(3));
    assert_eq!(
        log.scored_prompts() * 2,
        full,
        "only the three missing items are asked"
    );
    let ids = item_ids(dir.path());
    assert_eq!(ids.len(), 6);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        all.iter().collect::<BTreeSet<_>>(),
        "every item exactly once"
    );
    // Complete: a rerun needs no model at all.
    assert_eq!(vanilla_run(&mut StandIn::refusing(), dir.path(), 1), Ok(0));
    // Another configuration in the same directory is refused and nothing is written.
    let err = vanilla_run(&mut StandIn::refusing(), dir.path(), 2).unwrap_err();
    assert!(err.contains("another run"), "{err}");
    assert_eq!(item_ids(dir.path()).len(), 6);
}

fn items(n: usize) -> (Country, Vec<Item>) {
    let b = bench();
    let c = b.country(usa()).unwrap();
    let items = b.items(&c).unwrap().into_iter().take(n).collect();
    (
        Country {
            code: c.code,
            name: c.name,
        },
        items,
    )
}

fn disca(config: DiscaConfig, personas: usize, seed: u64, gaps: &GapCache) -> Disca {
    let panel: Vec<String> = (0..personas)
        .map(|k| format!("You are person {k} from the United States."))
        .collect();
    Disca::new("disca", config, BTreeMap::from([(usa(), panel)]), seed).with_gap_cache(gaps.clone())
}

#[test]
fn disca_asks_every_agent_in_both_label_orders_once_and_caches_the_gaps() {
    let (country, items) = items(3);
    let gaps = GapCache::default();
    let mut lm = StandIn::new();
    let log = lm.log();
    let first = disca(DiscaConfig::paper(), 3, 42, &gaps)
        .answer(&mut lm, &country, &items)
        .unwrap();
    // Base agent + three personas, each in both label orders, per item.
    assert_eq!(log.scored_prompts(), 3 * 2 * (1 + 3));
    let prompts: BTreeSet<String> = log
        .calls()
        .into_iter()
        .flat_map(|c| match c {
            Call::Score(p) => p,
            Call::Generate(_) => vec![],
        })
        .collect();
    assert_eq!(prompts.len(), 24, "no prompt asked twice");
    for k in 0..3 {
        let persona = format!("You are person {k} from the United States.");
        assert_eq!(prompts.iter().filter(|p| p.contains(&persona)).count(), 6);
    }
    // Every item's swapped prompt differs from its own only in the exchanged labels.
    for it in &items {
        let swapped = it.swapped.as_ref().expect("benchmark renders both orders");
        assert_ne!(swapped.user, it.prompt.user);
        assert_eq!(swapped.user.len(), it.prompt.user.len());
    }
    // Another seed with the same cache: no model call, same gaps, other random draws.
    let again = disca(DiscaConfig::paper(), 3, 43, &gaps)
        .answer(&mut StandIn::refusing(), &country, &items)
        .unwrap();
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.diagnostics["gaps"], b.diagnostics["gaps"]);
    }
    // Without debiasing both orders are still asked (one model pass serves every variant of a
    // run through the shared cache), but the swapped gaps are not used.
    let mut lm = StandIn::new();
    let log = lm.log();
    let no_debias = DiscaConfig {
        debias: false,
        ..DiscaConfig::paper()
    };
    let answers = disca(no_debias, 3, 42, &GapCache::default())
        .answer(&mut lm, &country, &items)
        .unwrap();
    assert_eq!(log.scored_prompts(), 3 * 2 * (1 + 3));
    assert!(answers
        .iter()
        .all(|a| a.diagnostics["debiased"] == serde_json::json!(false)));
}

/// Replicate k of every method on a country resamples the same items: two methods with the
/// same answers differ by exactly zero on every replicate, so the interval of their difference
/// is a point at zero (unpaired draws would give an interval of some width).
#[test]
fn bootstrap_replicates_are_paired_across_methods() {
    use culturesteer_eval::report::verdicts;
    use culturesteer_methods::CountryPrompt;
    // Answers that depend on the item (the end of the prompt) but not on the country line.
    let tail = |p: &str| p.chars().rev().take(300).collect::<String>();
    let mut lm = StandIn::new()
        .with_logprobs(move |p, c| culturesteer_llm::standin::pseudo_random_logprob(&tail(p), c));
    let dir = tempfile::tempdir().unwrap();
    let mut methods: Vec<Box<dyn Method>> = vec![Box::new(Vanilla), Box::new(CountryPrompt)];
    let config = RunConfig {
        limit: Some(40),
        bootstrap: 100,
        ..cfg(dir.path(), 1)
    };
    let outcome = run(
        &bench(),
        &mut methods,
        &mut lm,
        "stand-in",
        &DataSource::Embedded,
        &config,
        &mut NoProgress,
    )
    .unwrap();
    let v = verdicts(&outcome.report);
    let cp = v.iter().find(|v| v.method == "country-prompt").unwrap();
    assert_eq!(cp.macro_value, v[0].macro_value, "the same answers");
    let (lo, hi) = v[0].macro_ci95.expect("an interval");
    assert!(hi > lo, "the replicates vary: {lo} {hi}");
    assert_eq!(cp.vanilla_diff_ci95, Some((0.0, 0.0)));
}
