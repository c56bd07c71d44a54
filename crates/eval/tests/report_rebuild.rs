//! The committed DISCA run (`docs/results/disca`) rebuilds from its `results.jsonl` without a
//! model: every record is present, so the runner asks nothing and only rewrites the report. The
//! rebuilt `summary.md`, `report.html`, `scores.json` and plots must equal the committed files
//! byte for byte.

use culturesteer_core::disca::DiscaConfig;
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::runner::{run, NoProgress, RunConfig, DEFAULT_BOOTSTRAP};
use culturesteer_llm::{
    ChatMessage, GenerateRequest, Generation, LanguageModel, ModelDescription, Prompt,
    ScoreRequest, ScoreResult, TokenId,
};
use culturesteer_methods::{Disca, Method, Vanilla};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model that only describes itself (as the manifest recorded it): any call to it fails the
/// test, since a complete results file needs no answers.
struct Absent(ModelDescription);

impl LanguageModel for Absent {
    fn describe(&self) -> ModelDescription {
        self.0.clone()
    }
    fn chat_prompt(&self, _: &[ChatMessage]) -> culturesteer_llm::Result<Prompt> {
        panic!("the rebuild asked the model for a chat prompt")
    }
    fn tokenize(&self, _: &str) -> culturesteer_llm::Result<Vec<TokenId>> {
        panic!("the rebuild asked the model to tokenize")
    }
    fn token_piece(&self, _: TokenId) -> String {
        panic!("the rebuild asked the model for a token")
    }
    fn score(&mut self, _: &[ScoreRequest]) -> culturesteer_llm::Result<Vec<ScoreResult>> {
        panic!("the rebuild asked the model to score")
    }
    fn generate(&mut self, _: &[GenerateRequest]) -> culturesteer_llm::Result<Vec<Generation>> {
        panic!("the rebuild asked the model to generate")
    }
}

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/disca")
}

/// Copies the committed run's inputs into a fresh directory and re-runs it there.
fn rebuild_disca(out: &Path) {
    let src = committed_dir();
    for f in ["manifest.json", "results.jsonl"] {
        std::fs::copy(src.join(f), out.join(f)).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    let model: ModelDescription = serde_json::from_value(manifest["model"].clone()).unwrap();
    let disca = &manifest["methods"]["disca"];
    let config: DiscaConfig = serde_json::from_value(disca["disca"].clone()).unwrap();
    let panels: BTreeMap<CountryCode, Vec<String>> =
        serde_json::from_value(disca["panels"].clone()).unwrap();
    let provenance: BTreeMap<CountryCode, serde_json::Value> =
        serde_json::from_value(disca["panel_sources"].clone()).unwrap();
    let countries: Vec<CountryCode> =
        serde_json::from_value(manifest["countries"].clone()).unwrap();
    let seed = manifest["seed"].as_u64().unwrap();
    let bench = MultiTpDisca::load(
        &DataSource::Embedded,
        MultiTpDiscaOptions {
            decision_temperature: manifest["benchmark_options"]["decision_temperature"]
                .as_f64()
                .unwrap(),
        },
    )
    .unwrap();
    let mut methods: Vec<Box<dyn Method>> = vec![
        Box::new(Vanilla),
        Box::new(Disca::new("disca", config, panels, seed).with_provenance(provenance)),
    ];
    let cfg = RunConfig {
        out_dir: out.to_path_buf(),
        countries,
        limit: manifest["limit"].as_u64().map(|n| n as usize),
        batch_size: 64,
        seed,
        bootstrap: DEFAULT_BOOTSTRAP,
        invocation: serde_json::Value::Null,
    };
    let outcome = run(
        &bench,
        &mut methods,
        &mut Absent(model),
        manifest["model_sha256"].as_str().unwrap(),
        &DataSource::Embedded,
        &cfg,
        &mut NoProgress,
    )
    .expect("rebuild");
    assert_eq!(outcome.answered, 0, "the rebuild answered items");
}

#[test]
fn committed_disca_report_rebuilds_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    rebuild_disca(dir.path());
    let src = committed_dir();
    let mut files = vec![
        "summary.md".to_string(),
        "report.html".to_string(),
        "scores.json".to_string(),
    ];
    for e in std::fs::read_dir(src.join("plots")).unwrap() {
        files.push(format!(
            "plots/{}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    // CULTURESTEER_BLESS=1: a deliberate change of the report (its wording, its intervals)
    // rewrites the committed files instead; review the diff before committing it.
    if std::env::var_os("CULTURESTEER_BLESS").is_some() {
        for f in &files {
            std::fs::copy(dir.path().join(f), src.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
    for f in &files {
        let want = std::fs::read(src.join(f)).unwrap();
        let got = std::fs::read(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(got == want, "{f} differs from the committed file");
    }
}
