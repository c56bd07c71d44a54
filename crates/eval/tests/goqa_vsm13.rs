//! GlobalOpinionQA and VSM13 benchmarks: items from the shipped data, scoring from records,
//! and one small run of each on the real default model.

use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaMeta, GoqaOptions, GoqaReader, PALETTE_18};
use culturesteer_eval::vsm13::{Vsm13, Vsm13Options};
use culturesteer_eval::{Benchmark, ItemRecord};
use culturesteer_llm::fetch::ensure_default_model;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_methods::{Country, Item, Method, Readout, Vanilla};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn code(s: &str) -> CountryCode {
    CountryCode::new(s).unwrap()
}

fn lm() -> MutexGuard<'static, LlamaLm> {
    static LM: OnceLock<Mutex<LlamaLm>> = OnceLock::new();
    let m = LM.get_or_init(|| {
        let path = match std::env::var_os("CULTURESTEER_MODEL") {
            Some(p) => p.into(),
            None => ensure_default_model(&mut |m| eprintln!("{m}")).expect("default model"),
        };
        Mutex::new(
            LlamaLm::load(
                &path,
                LlamaConfig {
                    n_seq: 8,
                    ctx_per_seq: 512,
                    ..Default::default()
                },
            )
            .expect("load"),
        )
    });
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(bench: &dyn Benchmark, country: &Country, items: &[Item]) -> Vec<ItemRecord> {
    let answers = Vanilla.answer(&mut *lm(), country, items).expect("answer");
    assert_eq!(answers.len(), items.len());
    items
        .iter()
        .zip(answers)
        .map(|(i, a)| {
            assert_eq!(a.probs.len(), i.readout.n_options(), "{}", i.id);
            let sum: f64 = a.probs.iter().sum();
            assert!((sum - 1.0).abs() < 1e-9, "{}: probs sum {sum}", i.id);
            assert!(
                a.probs.iter().all(|p| p.is_finite() && *p >= 0.0),
                "{}: {:?}",
                i.id,
                a.probs
            );
            ItemRecord {
                method: "vanilla".into(),
                country: country.code,
                item_id: i.id.clone(),
                probs: a.probs,
                logprobs: a.logprobs,
                meta: i.meta.clone(),
                prompt_id: String::new(),
                options: vec![],
                diagnostics: a.diagnostics,
            }
        })
        .inspect(|r| eprintln!("{} {}: {:?}", bench.name(), r.item_id, r.probs))
        .collect()
}

#[test]
fn goqa_items_and_countries_from_shipped_data() {
    let b = Goqa::load(&DataSource::Embedded, GoqaOptions::default()).unwrap();
    assert_eq!(b.name(), "goqa");
    assert!(!b.metric().lower_is_better);
    let defaults: Vec<String> = b
        .default_countries()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        defaults,
        PALETTE_18.to_vec(),
        "all 18 Palette countries are in the data"
    );
    let us = b.country(code("USA")).unwrap();
    assert_eq!(us.name, "United States");
    assert_eq!(b.country(code("GBR")).unwrap().name, "Britain");
    let items = b.items(&us).unwrap();
    assert!(items.len() > 300, "{}", items.len());
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "sorted by id, unique");
    // Both surveys appear early.
    let first: Vec<&str> = items[..40]
        .iter()
        .map(|i| i.meta["source"].as_str().unwrap())
        .collect();
    assert!(
        first.contains(&"Gas") && first.contains(&"Wvs"),
        "{first:?}"
    );
    for i in &items {
        let n = i.readout.n_options();
        assert!((2..=5).contains(&n));
        assert!(!i.prompt.chat && i.prompt.system.is_none());
        assert!(i.prompt.user.starts_with("Question: ") && i.prompt.user.ends_with("\nAnswer:"));
        assert!(i.prompt.user.contains("\nOptions: A. "));
        assert_eq!(i.country_prompt.user, i.prompt.user);
        assert_eq!(
            i.country_prompt.system.as_deref(),
            Some(
                "You are from the country of United States, respond to the following instruction. "
            )
        );
        match &i.readout {
            Readout::TopKLabels { labels, k } => {
                assert_eq!(*k, 10);
                assert_eq!(labels[0], "A");
            }
            r => panic!("unexpected readout {r:?}"),
        }
        let m: GoqaMeta = serde_json::from_value(i.meta.clone()).unwrap();
        assert_eq!(m.human.len(), n);
        assert!((m.human.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(m.question_id, i.id);
    }
    let e = b.country(code("XXX")).unwrap_err().to_string();
    assert!(
        e.contains("XXX") && e.contains("USA") && e.contains("ZWE"),
        "{e}"
    );
    // Options land in the manifest.
    assert_eq!(b.options()["s_align"], "js-divergence-e");
}

#[test]
fn goqa_next_token_reader_uses_spaced_letters() {
    let b = Goqa::load(
        &DataSource::Embedded,
        GoqaOptions {
            reader: GoqaReader::NextToken,
            ..Default::default()
        },
    )
    .unwrap();
    let items = b.items(&b.country(code("DEU")).unwrap()).unwrap();
    assert!(
        matches!(&items[0].readout, Readout::NextToken { labels } if labels[0] == " A" && labels[1] == " B")
    );
}

#[test]
fn vsm13_items_and_countries() {
    let b = Vsm13::load(&DataSource::Embedded, Vsm13Options::default()).unwrap();
    assert_eq!(b.name(), "vsm13");
    assert!(b.metric().lower_is_better);
    let defaults: Vec<String> = b
        .default_countries()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(defaults, ["SAU", "USA", "CHN", "IND", "DEU", "JPN"]);
    let sau = b.country(code("SAU")).unwrap();
    let items = b.items(&sau).unwrap();
    assert_eq!(items.len(), 24);
    assert!(items
        .iter()
        .all(|i| i.prompt.chat && i.prompt.system.is_none()));
    assert_eq!(
        items[0].country_prompt.system.as_deref(),
        Some("Act as a person from Saudi Arabia. Answer the following survey question as that person would.")
    );
    assert_eq!(items[23].id, "q24");
    assert!(
        matches!(&items[5].readout, Readout::NextToken { labels } if labels == &["1", "2", "3", "4", "5"])
    );
    let e = b.country(code("XXX")).unwrap_err().to_string();
    assert!(e.contains("USA") && e.contains("SAU"), "{e}");
}

/// Real model: 4 GOQA items of the USA, vanilla, MP's reader.
#[test]
fn goqa_real_model_small() {
    let b = Goqa::load(&DataSource::Embedded, GoqaOptions::default()).unwrap();
    let us = b.country(code("USA")).unwrap();
    let items: Vec<Item> = b.items(&us).unwrap().into_iter().take(4).collect();
    let recs = run(&b, &us, &items);
    let s = b.score(&us, &recs).unwrap();
    eprintln!("goqa USA: {s:?}");
    assert_eq!(s.n_items, 4);
    let floor = (1.0 - std::f64::consts::LN_2) * 100.0;
    assert!(
        s.value.is_finite() && s.value >= floor - 1e-9 && s.value <= 100.0,
        "{}",
        s.value
    );
    let d = s
        .secondary
        .iter()
        .find(|(k, _)| k == "mp_js_distance")
        .unwrap()
        .1;
    assert!((0.0..=std::f64::consts::LN_2.sqrt() + 1e-12).contains(&d));
    // The next-token reader resolves the spaced letters after "Answer:".
    let nt = Goqa::load(
        &DataSource::Embedded,
        GoqaOptions {
            reader: GoqaReader::NextToken,
            ..Default::default()
        },
    )
    .unwrap();
    let items: Vec<Item> = nt.items(&us).unwrap().into_iter().take(2).collect();
    let recs = run(&nt, &us, &items);
    assert!(nt.score(&us, &recs).unwrap().value.is_finite());
}

/// Real model: the 24 VSM13 items for the USA, vanilla, expectation readout.
#[test]
fn vsm13_real_model_usa() {
    let b = Vsm13::load(&DataSource::Embedded, Vsm13Options::default()).unwrap();
    let us = b.country(code("USA")).unwrap();
    let items = b.items(&us).unwrap();
    let recs = run(&b, &us, &items);
    let s = b.score(&us, &recs).unwrap();
    eprintln!("vsm13 USA: {s:?}");
    assert_eq!(s.n_items, 24);
    assert_eq!(s.components.len(), 6);
    let ranges = [240.0, 280.0, 280.0, 260.0, 260.0, 300.0];
    for (c, r) in s.components.iter().zip(ranges) {
        assert!(c.model.is_finite() && c.model.abs() <= r, "{c:?}");
    }
    assert!(s.value.is_finite() && s.value >= 0.0);
}
