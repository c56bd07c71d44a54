//! The runner asks the model once per item for country-independent methods (vanilla), however
//! many countries share the item; on the real default model.

use culturesteer_bench::multitp::{MultiTp, MultiTpOptions};
use culturesteer_bench::runner::{run, NoProgress, RunConfig};
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_llm::fetch::ensure_default_model;
use culturesteer_llm::llama::{LlamaConfig, LlamaLm};
use culturesteer_llm::LanguageModel;
use culturesteer_methods::{Answer, Country, Item, Method, MethodError, Vanilla};
use std::sync::{Arc, Mutex};

/// Vanilla, counting the items it is asked; `per_country` pretends answers depend on the country.
struct Counting {
    per_country: bool,
    asked: Arc<Mutex<usize>>,
}

impl Method for Counting {
    fn name(&self) -> &str {
        "vanilla"
    }
    fn uses_country(&self) -> bool {
        self.per_country
    }
    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        *self.asked.lock().unwrap() += items.len();
        Vanilla.answer(lm, country, items)
    }
}

#[test]
fn vanilla_answers_are_shared_across_countries() {
    let path = match std::env::var_os("CULTURESTEER_MODEL") {
        Some(p) => p.into(),
        None => ensure_default_model(&mut |m| eprintln!("{m}")).expect("default model"),
    };
    let mut lm = LlamaLm::load(
        &path,
        LlamaConfig {
            n_seq: 8,
            ctx_per_seq: 512,
            ..Default::default()
        },
    )
    .expect("load");
    let bench = MultiTp::load(&DataSource::Embedded, MultiTpOptions::default()).unwrap();
    let countries: Vec<CountryCode> = ["USA", "DEU", "JPN"]
        .iter()
        .map(|c| CountryCode::new(c).unwrap())
        .collect();
    let mut asked_by = Vec::new();
    let mut records = Vec::new();
    for per_country in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let asked = Arc::new(Mutex::new(0));
        let mut methods: Vec<Box<dyn Method>> = vec![Box::new(Counting {
            per_country,
            asked: asked.clone(),
        })];
        let cfg = RunConfig {
            out_dir: dir.path().to_path_buf(),
            countries: countries.clone(),
            limit: Some(4),
            batch_size: 64,
            seed: 1,
            bootstrap: 0,
            invocation: serde_json::Value::Null,
        };
        run(
            &bench,
            &mut methods,
            &mut lm,
            "test",
            &DataSource::Embedded,
            &cfg,
            &mut NoProgress,
        )
        .unwrap();
        asked_by.push(*asked.lock().unwrap());
        records.push(std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap());
    }
    assert_eq!(
        asked_by,
        vec![4, 12],
        "shared answers vs one call per country"
    );
    // Same records either way (three countries × four items).
    assert_eq!(records[0], records[1]);
    assert_eq!(records[0].lines().count(), 12);
}
