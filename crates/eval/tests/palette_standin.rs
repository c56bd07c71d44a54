//! Cultural Palette's stages on the scripted stand-in model (no llama.cpp): five continent
//! drafts, the meta agent's summary and the decision, for the full method and its ablations,
//! and the continent map's overrides. `crates/cli/tests/palette.rs` runs it on the real model.

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
