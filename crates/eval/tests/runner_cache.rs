//! The runner asks the model once per item for country-independent methods (vanilla), however
//! many countries share the item; on the scripted stand-in model (no llama.cpp).

use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTp, MultiTpOptions};
use culturesteer_eval::runner::{run, NoProgress, RunConfig};
use culturesteer_llm::standin::StandIn;
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
    let bench = MultiTp::load(&DataSource::Embedded, MultiTpOptions::default()).unwrap();
    let countries: Vec<CountryCode> = ["USA", "DEU", "JPN"]
        .iter()
        .map(|c| CountryCode::new(c).unwrap())
        .collect();
    let mut asked_by = Vec::new();
    let mut prompts_by = Vec::new();
    let mut records = Vec::new();
    for per_country in [false, true] {
        let mut lm = StandIn::new();
        let log = lm.log();
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
        prompts_by.push(log.scored_prompts());
        records.push(std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap());
    }
    assert_eq!(
        asked_by,
        vec![4, 12],
        "shared answers vs one call per country"
    );
    // The model itself was asked three times as much.
    assert!(
        prompts_by[0] > 0 && prompts_by[1] == 3 * prompts_by[0],
        "{prompts_by:?}"
    );
    // Same records either way (three countries × four items).
    assert_eq!(records[0], records[1]);
    assert_eq!(records[0].lines().count(), 12);
}
