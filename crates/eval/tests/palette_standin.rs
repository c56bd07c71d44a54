//! Cultural Palette's stages on the scripted stand-in model (no llama.cpp): five continent
//! drafts, the meta agent's summary and the decision, for the full method, its ablations and
//! the baselines (palette-modular, palette-joint), the continent map's overrides and sources,
//! and the report's count of parsed drafts. `crates/cli/tests/palette.rs` runs it on the real model.

use culturesteer_core::CountryCode;
use culturesteer_data::palette::{ContinentMap, PaletteTemplates};
use culturesteer_data::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaOptions};
use culturesteer_eval::Benchmark;
use culturesteer_llm::standin::{Call, CallLog, StandIn};
use culturesteer_methods::{Answer, Country, Item, Method, Palette, PaletteConfig, PaletteVariant};

const CONTINENTS: [&str; 5] = ["Africa", "America", "Asia", "Europe", "Oceania"];

/// Drafts say which continent's agent wrote them; the meta agent's summary names itself.
fn scripted() -> StandIn {
    StandIn::new().with_replies(|prompt| {
        if prompt.contains("draft of Africa") {
            return "SUMMARY of five drafts".into();
        }
        // The draft chats open with the agent's continent; the first one named is its own.
        let first = CONTINENTS
            .iter()
            .filter_map(|c| prompt.find(c).map(|at| (at, *c)))
            .min()
            .map_or("nowhere", |(_, c)| c);
        format!("draft of {first}")
    })
}

fn nigeria(n: usize) -> (Country, Vec<Item>) {
    let goqa = Goqa::load(&DataSource::Embedded, GoqaOptions::default()).unwrap();
    let c = goqa.country(CountryCode::new("NGA").unwrap()).unwrap();
    let items = goqa.items(&c).unwrap().into_iter().take(n).collect();
    (
        Country {
            code: c.code,
            name: c.name,
        },
        items,
    )
}

fn palette(variant: PaletteVariant, continents: ContinentMap) -> Palette {
    let data = DataSource::Embedded;
    Palette::new(
        PaletteConfig {
            variant,
            ..PaletteConfig::default()
        },
        PaletteTemplates::load(&data).unwrap(),
        continents,
    )
    .unwrap()
}

fn run(variant: PaletteVariant, continents: ContinentMap, n: usize) -> (Vec<Answer>, CallLog) {
    let (country, items) = nigeria(n);
    let mut lm = scripted();
    let log = lm.log();
    let answers = palette(variant, continents)
        .answer(&mut lm, &country, &items)
        .unwrap();
    (answers, log)
}

fn map() -> ContinentMap {
    ContinentMap::load(&DataSource::Embedded).unwrap()
}

#[test]
fn the_full_method_drafts_per_continent_summarises_and_decides() {
    let (answers, log) = run(PaletteVariant::Full, map(), 2);
    // Per item: five drafts and one summary generated, one decision scored.
    assert_eq!(log.generated_prompts(), 2 * (5 + 1));
    assert_eq!(log.scored_prompts(), 2);
    for a in &answers {
        let d = &a.diagnostics;
        let drafts = d["drafts"].as_array().unwrap();
        let by: Vec<&str> = drafts
            .iter()
            .map(|x| x["continent"].as_str().unwrap())
            .collect();
        assert_eq!(by, CONTINENTS);
        for (x, c) in drafts.iter().zip(CONTINENTS) {
            assert_eq!(
                x["text"],
                format!("draft of {c}"),
                "each agent's own prompt"
            );
        }
        assert_eq!(d["summary"], "SUMMARY of five drafts");
        assert_eq!(d["continent"], "Africa");
        // The decision is the meta agent's next turn after its summary: the scored prompt holds
        // the summary, then the decision turn.
        let decision = d["decision"].as_str().unwrap();
        assert!(decision.contains("Nigeria"), "{decision}");
        let asked = log.calls().into_iter().any(|c| match c {
            Call::Score(p) => p.iter().any(|p| {
                p.find("SUMMARY of five drafts")
                    .zip(p.find(decision))
                    .is_some_and(|(s, q)| s < q)
            }),
            Call::Generate(_) => false,
        });
        assert!(
            asked,
            "no decision prompt holds the summary before the decision turn"
        );
        assert!((a.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    // The summary prompt holds every draft.
    let summary_prompt = log
        .calls()
        .into_iter()
        .flat_map(|c| match c {
            Call::Generate(p) => p,
            Call::Score(_) => vec![],
        })
        .find(|p| p.contains("draft of Africa"))
        .unwrap();
    for c in CONTINENTS {
        assert!(summary_prompt.contains(&format!("draft of {c}")), "{c}");
    }
}

#[test]
fn the_ablations_leave_out_their_stage() {
    // Without cultural drafts: one generation (the summary) per item.
    let (cd, log) = run(PaletteVariant::NoDrafts, map(), 1);
    assert_eq!(log.generated_prompts(), 1);
    assert!(cd[0].diagnostics["drafts"].as_array().unwrap().is_empty());
    assert!(!cd[0].diagnostics["summary"].as_str().unwrap().is_empty());
    // Without self-regulation: drafts straight into the decision, no summary.
    let (sr, log) = run(PaletteVariant::NoSelfRegulation, map(), 1);
    assert_eq!(log.generated_prompts(), 5);
    let d = &sr[0].diagnostics;
    assert!(d["summary"].is_null());
    assert!(d["decision"].as_str().unwrap().contains("draft of Africa"));
    // The drafts are the same whichever variant asks for them.
    let (full, _) = run(PaletteVariant::Full, map(), 1);
    assert_eq!(d["drafts"], full[0].diagnostics["drafts"]);
}

#[test]
fn continent_overrides_are_applied_and_unknown_continents_named() {
    let (a, _) = run(
        PaletteVariant::Full,
        map().with_override_spec("NGA=Europe").unwrap(),
        1,
    );
    assert_eq!(a[0].diagnostics["continent"], "Europe");
    let err = map()
        .with_override_spec("NGA=Atlantis")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Atlantis") && !err.contains('\n'), "{err}");
}

/// The continent whose draft a read-out prompt ends with ("draft of X\nAnswer:").
fn read_after(prompt: &str) -> Option<usize> {
    let at = prompt.rfind("draft of ")?;
    let rest = &prompt[at + "draft of ".len()..];
    let k = CONTINENTS.iter().position(|c| rest.starts_with(c))?;
    rest[CONTINENTS[k].len()..]
        .trim_start()
        .starts_with("Answer:")
        .then_some(k)
}

/// Scripted option scores per agent: agent k's read-out gives option j (A–E) the log-prob
/// −(1 + ((j + 2k) mod 5)) and every other letter −20 (so the labels lead any top-k list); any
/// other prompt scores −3.
fn agent_logprob(prompt: &str, candidate: &str) -> f64 {
    let j = ["A", "B", "C", "D", "E"]
        .iter()
        .position(|l| candidate.trim() == *l);
    match (read_after(prompt), j) {
        (Some(k), Some(j)) => -1.0 - ((j + 2 * k) % 5) as f64,
        (Some(_), None) => -20.0,
        _ => -3.0,
    }
}

#[test]
fn modular_p_gen_is_the_mean_of_the_five_agents_read_after_their_own_drafts() {
    use culturesteer_core::prob::softmax_with_temperature;
    let (country, items) = nigeria(2);
    let mut lm = scripted().with_logprobs(agent_logprob);
    let log = lm.log();
    let answers = palette(PaletteVariant::Modular, map())
        .answer(&mut lm, &country, &items)
        .unwrap();
    // Five drafts per item, each read once after itself; no meta agent (no summary).
    assert_eq!(log.generated_prompts(), 2 * 5);
    assert_eq!(log.scored_prompts(), 2 * 5);
    for c in log.calls() {
        if let Call::Score(ps) = c {
            for p in ps {
                let k = read_after(&p).unwrap_or_else(|| panic!("not read after a draft: {p}"));
                // The agent's own chat: its system prompt names its continent first.
                assert!(p.starts_with(&format!(
                    "You are a knowledgeable chatbot about {}",
                    CONTINENTS[k]
                )));
            }
        }
    }
    for (a, item) in answers.iter().zip(&items) {
        let n = a.probs.len();
        assert!(n >= 2);
        let agents: Vec<Vec<f64>> = (0..5)
            .map(|k| {
                let lp: Vec<f64> = (0..n).map(|j| -1.0 - ((j + 2 * k) % 5) as f64).collect();
                softmax_with_temperature(&lp, item.temperature).unwrap()
            })
            .collect();
        for j in 0..n {
            let mean = agents.iter().map(|p| p[j]).sum::<f64>() / 5.0;
            assert!((a.probs[j] - mean).abs() < 1e-12, "option {j}");
        }
        // Not any single agent's distribution.
        assert!(agents
            .iter()
            .all(|p| p.iter().zip(&a.probs).any(|(x, y)| (x - y).abs() > 1e-6)));
        let d = &a.diagnostics;
        assert_eq!(d["variant"], "modular");
        assert!(d["summary"].is_null() && d["decision"].is_null());
        for (k, agent) in d["agents"].as_array().unwrap().iter().enumerate() {
            assert_eq!(agent["continent"], CONTINENTS[k]);
            let p: Vec<f64> = serde_json::from_value(agent["probs"].clone()).unwrap();
            assert_eq!(p.len(), n);
            assert!(p.iter().zip(&agents[k]).all(|(x, y)| (x - y).abs() < 1e-12));
        }
        assert_eq!(d["drafts"].as_array().unwrap().len(), 5);
    }
}

#[test]
fn joint_without_expert_adapters_equals_palette() {
    let (full, full_log) = run(PaletteVariant::Full, map(), 2);
    let (joint, joint_log) = run(PaletteVariant::Joint, map(), 2);
    assert_eq!(full_log.calls(), joint_log.calls(), "the same model calls");
    for (f, j) in full.iter().zip(&joint) {
        assert_eq!(f.probs, j.probs);
        assert_eq!(j.diagnostics["variant"], "joint");
        assert_eq!(f.diagnostics["summary"], j.diagnostics["summary"]);
        assert_eq!(f.diagnostics["merging"], j.diagnostics["merging"]);
    }
}

#[test]
fn the_continent_and_its_source_are_recorded() {
    let (a, _) = run(PaletteVariant::Full, map(), 1);
    assert_eq!(a[0].diagnostics["continent"], "Africa");
    assert_eq!(a[0].diagnostics["continent_source"], "culturespa");
    let (a, _) = run(
        PaletteVariant::Full,
        map().with_override_spec("NGA=Europe").unwrap(),
        1,
    );
    assert_eq!(a[0].diagnostics["continent_source"], "user");
    let cfg = palette(PaletteVariant::Full, map())
        .with_targets(&[
            CountryCode::new("RUS").unwrap(),
            CountryCode::new("FRA").unwrap(),
        ])
        .config();
    assert_eq!(
        cfg["target_continents"]["RUS"],
        serde_json::json!({ "continent": "Asia", "source": "culturespa" })
    );
    assert_eq!(
        cfg["target_continents"]["FRA"],
        serde_json::json!({ "continent": "Europe", "source": "un-m49" })
    );
}

#[test]
fn the_report_counts_the_parsed_drafts_per_method() {
    use culturesteer_eval::runner::{run as run_bench, NoProgress, RunConfig};
    // Africa's and Asia's agents end with an option, the other three do not.
    let lm_script = |prompt: &str| {
        let first = CONTINENTS
            .iter()
            .filter_map(|c| prompt.find(c).map(|at| (at, *c)))
            .min()
            .map_or("nowhere", |(_, c)| c);
        if prompt.contains("draft of Africa") {
            "SUMMARY".to_string()
        } else if first == "Africa" || first == "Asia" {
            format!("draft of {first}\nAnswer: A")
        } else {
            format!("draft of {first}")
        }
    };
    let mut lm = StandIn::new().with_replies(lm_script);
    let goqa = Goqa::load(&DataSource::Embedded, GoqaOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut methods: Vec<Box<dyn Method>> = vec![
        Box::new(palette(PaletteVariant::Full, map())),
        Box::new(palette(PaletteVariant::NoDrafts, map())),
    ];
    run_bench(
        &goqa,
        &mut methods,
        &mut lm,
        "stand-in",
        &DataSource::Embedded,
        &RunConfig {
            out_dir: dir.path().to_path_buf(),
            countries: vec![CountryCode::new("NGA").unwrap()],
            limit: Some(3),
            batch_size: 3,
            seed: 1,
            bootstrap: 0,
            invocation: serde_json::Value::Null,
        },
        &mut NoProgress,
    )
    .unwrap();
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("palette: drafts parsed: 6/15 (40%)"),
        "{summary}"
    );
    assert!(!summary.contains("palette-cd: drafts parsed"), "{summary}");
}

/// One recorded call: its kind, the expert scales in force, its prompts.
type Seen = (&'static str, Vec<f32>, Vec<String>);

/// The stand-in with five named expert adapters (in a shuffled order), recording the scales in
/// force at every generation and scoring call.
struct Experted {
    inner: StandIn,
    scales: Vec<f32>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

const EXPERTS: [&str; 5] = ["oceania", "africa", "asia", "america", "europe"];

impl Experted {
    fn new(inner: StandIn) -> Self {
        Self {
            inner,
            scales: vec![0.0; 5],
            seen: Default::default(),
        }
    }
    fn note(&self, what: &'static str, prompts: Vec<String>) {
        self.seen
            .lock()
            .unwrap()
            .push((what, self.scales.clone(), prompts));
    }
}

impl culturesteer_llm::LanguageModel for Experted {
    fn describe(&self) -> culturesteer_llm::ModelDescription {
        self.inner.describe()
    }
    fn chat_prompt(
        &self,
        m: &[culturesteer_llm::ChatMessage],
    ) -> culturesteer_llm::Result<culturesteer_llm::Prompt> {
        self.inner.chat_prompt(m)
    }
    fn tokenize(&self, t: &str) -> culturesteer_llm::Result<Vec<culturesteer_llm::TokenId>> {
        self.inner.tokenize(t)
    }
    fn token_piece(&self, t: culturesteer_llm::TokenId) -> String {
        self.inner.token_piece(t)
    }
    fn score(
        &mut self,
        r: &[culturesteer_llm::ScoreRequest],
    ) -> culturesteer_llm::Result<Vec<culturesteer_llm::ScoreResult>> {
        self.note("score", r.iter().map(|x| x.prompt.text.clone()).collect());
        self.inner.score(r)
    }
    fn generate(
        &mut self,
        r: &[culturesteer_llm::GenerateRequest],
    ) -> culturesteer_llm::Result<Vec<culturesteer_llm::Generation>> {
        self.note(
            "generate",
            r.iter().map(|x| x.prompt.text.clone()).collect(),
        );
        self.inner.generate(r)
    }
    fn experts(&self) -> Vec<String> {
        EXPERTS.iter().map(|e| e.to_string()).collect()
    }
    fn set_expert_scales(&mut self, scales: &[f32]) -> culturesteer_llm::Result<()> {
        assert_eq!(scales.len(), 5);
        self.scales = scales.to_vec();
        Ok(())
    }
}

/// The expert at scale 1 in a one-hot setting, by name.
fn one_hot(scales: &[f32]) -> Option<&'static str> {
    let on: Vec<usize> = (0..5).filter(|&k| scales[k] == 1.0).collect();
    (on.len() == 1 && scales.iter().sum::<f32>() == 1.0).then(|| EXPERTS[on[0]])
}

#[test]
fn joint_merges_all_five_experts_at_one_fifth_without_a_gate() {
    let (country, items) = nigeria(2);
    let mut lm = Experted::new(scripted());
    let seen = lm.seen.clone();
    let answers = palette(PaletteVariant::Joint, map())
        .answer(&mut lm, &country, &items)
        .unwrap();
    let seen = seen.lock().unwrap();
    // Five draft batches (one per continent, under its own expert), then the meta agent's
    // summary and decision for both items in one batch each, all five experts at 1/5.
    assert_eq!(seen.len(), 5 + 2, "{seen:?}");
    for (what, scales, prompts) in &seen[..5] {
        assert_eq!(*what, "generate");
        let e = one_hot(scales).unwrap();
        for p in prompts {
            let c = &p["You are a knowledgeable chatbot about ".len()..];
            assert!(c.to_ascii_lowercase().starts_with(e), "{e}: {p}");
        }
    }
    for (_, scales, prompts) in &seen[5..] {
        assert_eq!(scales, &vec![0.2f32; 5]);
        assert_eq!(prompts.len(), 2, "batched over the items");
    }
    assert_eq!(lm.scales, vec![0.0; 5], "left without adapters");
    for a in &answers {
        assert_eq!(
            a.diagnostics["merging"]["weights"]["asia"],
            serde_json::json!(0.2)
        );
        assert_eq!(a.diagnostics["drafts_by"], "continent expert adapters");
    }
}

#[test]
fn modular_drafts_and_reads_each_agent_under_its_own_expert() {
    let (country, items) = nigeria(2);
    let mut lm = Experted::new(scripted().with_logprobs(agent_logprob));
    let seen = lm.seen.clone();
    let answers = palette(PaletteVariant::Modular, map())
        .answer(&mut lm, &country, &items)
        .unwrap();
    let seen = seen.lock().unwrap();
    // Per continent: its drafts generated, then read, under its expert alone.
    assert_eq!(seen.len(), 5 * 2, "{seen:?}");
    for (what, scales, prompts) in seen.iter() {
        let e = one_hot(scales).unwrap_or_else(|| panic!("{what} under {scales:?}"));
        for p in prompts {
            let c = &p["You are a knowledgeable chatbot about ".len()..];
            assert!(c.to_ascii_lowercase().starts_with(e), "{e}: {p}");
            if *what == "score" {
                assert!(read_after(p).is_some(), "{p}");
            }
        }
    }
    assert_eq!(lm.scales, vec![0.0; 5]);
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|a| a.probs.len() >= 2));
}
