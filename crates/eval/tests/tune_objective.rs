//! The tuning objective's logic on the stand-in model (milliseconds, no model file): held-out
//! VSM13 items frozen at the start candidate's answers, generate-and-parse over several
//! sampling seeds, the VSM13 constants reaching the loss, the black-box tuner with held-out
//! items and its checkpoint, and the transfer check's paired bootstrap interval.

use culturesteer_core::metrics::{MasSecondWeight, Vsm13Config};
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaOptions};
use culturesteer_eval::tune::blackbox::{BlackBoxConfig, BlackBoxTuner, PersonaChoice};
use culturesteer_eval::tune::{
    held_out_items, paired_bootstrap_ci, transfer_check, Candidate, ObjectiveSettings, Transfer,
    Vsm13Objective,
};
use culturesteer_eval::vsm13::{item_question, Vsm13, Vsm13AnswerMode, Vsm13Options, ITEMS};
use culturesteer_eval::Benchmark;
use culturesteer_llm::standin::StandIn;
use culturesteer_llm::{
    ChatMessage, GenerateRequest, Generation, LanguageModel, ModelDescription, Prompt, Sampling,
    ScoreRequest, ScoreResult, TokenId,
};
use culturesteer_methods::Country;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn bench(options: Vsm13Options) -> Vsm13 {
    Vsm13::load(&DataSource::Embedded, options).unwrap()
}

fn usa(b: &Vsm13) -> Country {
    b.country(CountryCode::new("USA").unwrap()).unwrap()
}

fn sys(s: &str) -> Candidate {
    Candidate::System(s.to_string())
}

#[test]
fn held_out_items_are_seeded_one_per_dimension_first_and_bounded() {
    let cfg = Vsm13Config::default();
    let dims = cfg.items_of();
    let six = held_out_items(6, 0, &cfg).unwrap();
    assert_eq!(six, held_out_items(6, 0, &cfg).unwrap(), "deterministic");
    assert_eq!(six.len(), 6);
    for d in dims {
        assert_eq!(six.iter().filter(|i| d.contains(i)).count(), 1, "{six:?}");
    }
    let twelve = held_out_items(12, 0, &cfg).unwrap();
    for d in dims {
        assert_eq!(twelve.iter().filter(|i| d.contains(i)).count(), 2);
    }
    assert!(
        six.iter().all(|i| twelve.contains(i)),
        "a larger k extends the smaller one"
    );
    assert!(
        (1..20).any(|seed| held_out_items(6, seed, &cfg).unwrap() != six),
        "the seed picks the items"
    );
    assert!(held_out_items(0, 3, &cfg).unwrap().is_empty());
    assert_eq!(held_out_items(18, 3, &cfg).unwrap().len(), 18);
    let e = held_out_items(19, 0, &cfg).unwrap_err().to_string();
    assert!(e.contains("--held-out 19"), "{e}");
    // A whole dimension held out leaves nothing to tune.
    let mut s = ObjectiveSettings::plain(Vsm13Options::default());
    s.held_out = dims[2].to_vec();
    s.held_out.sort_unstable();
    assert!(s.validate().unwrap_err().to_string().contains("MAS"));
}

/// A stand-in on which "other2" answers exactly like "other" except on the held-out items.
fn differs_on(held: &[usize]) -> StandIn {
    let held_texts: Vec<String> = held.iter().map(|&i| item_question(&ITEMS[i - 1])).collect();
    StandIn::new().with_logprobs(move |prompt, cand| {
        let on_held = held_texts.iter().any(|t| prompt.contains(t.as_str()));
        let key = if on_held {
            prompt.to_string()
        } else {
            prompt.replace("other2", "other")
        };
        culturesteer_llm::standin::pseudo_random_logprob(&key, cand)
    })
}

#[test]
fn held_out_items_keep_the_start_answers_during_tuning() {
    let b = bench(Vsm13Options::default());
    let held = held_out_items(6, 1, &Vsm13Config::default()).unwrap();
    let settings = ObjectiveSettings {
        held_out: held.clone(),
        ..ObjectiveSettings::plain(Vsm13Options::default())
    };
    let mut obj = Vsm13Objective::with_settings(&b, usa(&b), settings).unwrap();
    let mut lm = differs_on(&held);
    let log = lm.log();
    let e = obj
        .evaluate_in_sample(&mut lm, &[sys("other")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not frozen"), "{e}");

    obj.freeze_held_out(&mut lm, &sys("start")).unwrap();
    assert_eq!(
        log.scored_prompts(),
        6,
        "freezing asks the held-out items only"
    );

    let before = log.scored_prompts();
    let in_sample = obj
        .evaluate_in_sample(&mut lm, &[sys("start"), sys("other"), sys("other2")])
        .unwrap();
    assert_eq!(
        log.scored_prompts() - before,
        3 * 18,
        "candidates answer the 18 in-sample items only"
    );
    let full = obj
        .evaluate(&mut lm, &[sys("start"), sys("other"), sys("other2")])
        .unwrap();
    // The start's objective is its own loss (its held-out answers are the frozen ones).
    assert_eq!(in_sample[0], full[0]);
    // The optimiser cannot see how a candidate answers held-out items ...
    assert_eq!(in_sample[1].loss, in_sample[2].loss);
    // ... though its own answers to them change the loss.
    assert_ne!(full[1].loss, full[2].loss);
    assert_ne!(in_sample[1].loss, full[1].loss);

    // Without held-out items the objective is the plain evaluation.
    let plain = Vsm13Objective::new(&b, usa(&b)).unwrap();
    let p = plain.evaluate_in_sample(&mut lm, &[sys("other")]).unwrap();
    assert_eq!(p[0], full[1]);
}

#[test]
fn constants_and_mas_weight_reach_the_objective() {
    let plain = bench(Vsm13Options::default());
    let shifted = bench(Vsm13Options {
        config: Vsm13Config {
            constants: [10.0, -20.0, 0.0, 0.0, 0.0, 5.0],
            mas_second_weight: MasSecondWeight::Masoud25,
        },
        ..Vsm13Options::default()
    });
    let mut lm = StandIn::new();
    let a = Vsm13Objective::new(&plain, usa(&plain))
        .unwrap()
        .evaluate(&mut lm, &[sys("x")])
        .unwrap()
        .remove(0);
    let b = Vsm13Objective::new(&shifted, usa(&shifted))
        .unwrap()
        .evaluate(&mut lm, &[sys("x")])
        .unwrap()
        .remove(0);
    assert!((b.dims[0] - a.dims[0] - 10.0).abs() < 1e-9);
    assert!((b.dims[1] - a.dims[1] + 20.0).abs() < 1e-9);
    assert!((b.dims[5] - a.dims[5] - 5.0).abs() < 1e-9);
    assert_eq!(b.dims[3], a.dims[3]);
    assert_ne!(b.dims[2], a.dims[2], "MAS's second weight changed");
    assert_ne!(a.loss, b.loss);
    // The benchmark records the configuration in its options (the run manifest).
    let o = shifted.options();
    assert_eq!(o["config"]["constants"][1], -20.0);
    assert_eq!(o["config"]["mas_second_weight"], "Masoud25");
}

/// Delegates to a stand-in and records the sampling of every generation request.
struct Recording {
    inner: StandIn,
    sampling: Arc<Mutex<Vec<Sampling>>>,
}

impl LanguageModel for Recording {
    fn describe(&self) -> ModelDescription {
        self.inner.describe()
    }
    fn chat_prompt(&self, messages: &[ChatMessage]) -> culturesteer_llm::Result<Prompt> {
        self.inner.chat_prompt(messages)
    }
    fn tokenize(&self, text: &str) -> culturesteer_llm::Result<Vec<TokenId>> {
        self.inner.tokenize(text)
    }
    fn token_piece(&self, token: TokenId) -> String {
        self.inner.token_piece(token)
    }
    fn score(&mut self, r: &[ScoreRequest]) -> culturesteer_llm::Result<Vec<ScoreResult>> {
        self.inner.score(r)
    }
    fn generate(&mut self, r: &[GenerateRequest]) -> culturesteer_llm::Result<Vec<Generation>> {
        self.sampling
            .lock()
            .unwrap()
            .extend(r.iter().map(|q| q.sampling.clone()));
        self.inner.generate(r)
    }
}

#[test]
fn generate_parse_pools_several_seeds_into_item_means() {
    let gen = Vsm13Options {
        answer_mode: Vsm13AnswerMode::GenerateParse,
        ..Vsm13Options::default()
    };
    let b = bench(gen);
    let country = usa(&b);
    let target = b.target(country.code).unwrap();
    let settings = |seeds, temperature| ObjectiveSettings {
        seeds,
        temperature,
        ..ObjectiveSettings::plain(gen)
    };
    // Several seeds need sampling and generate_parse; a temperature needs generate_parse.
    assert!(settings(2, 0.0)
        .validate()
        .unwrap_err()
        .to_string()
        .contains("greedy"));
    assert!(settings(0, 1.0).validate().is_err());
    let logits = ObjectiveSettings {
        seeds: 3,
        temperature: 1.0,
        ..ObjectiveSettings::plain(Vsm13Options::default())
    };
    assert!(logits
        .validate()
        .unwrap_err()
        .to_string()
        .contains("generate_parse only"));

    // Answers alternate 2, 4, 2, 4, … in request order: with two seeds every item's mean is 3,
    // so every dimension is 0 and the loss is Σ|target|.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let sampling = Arc::new(Mutex::new(vec![]));
    let mut lm = Recording {
        inner: StandIn::new().with_replies(move |_| {
            if c.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                "2".into()
            } else {
                "4 (usually)".into()
            }
        }),
        sampling: sampling.clone(),
    };
    let obj = Vsm13Objective::with_settings(&b, country.clone(), settings(2, 0.7)).unwrap();
    let e = obj.evaluate(&mut lm, &[sys("a"), sys("b")]).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2 * 24 * 2);
    let want: f64 = target.iter().flatten().map(|t| t.abs()).sum();
    for x in &e {
        assert!(x.dims.iter().all(|d| d.abs() < 1e-9), "{x:?}");
        assert!((x.loss - want).abs() < 1e-9);
        assert_eq!(x.parse_failures, 0);
    }
    // Common random numbers: seeds 1 and 2 for every item of every candidate.
    let s = sampling.lock().unwrap().clone();
    assert_eq!(s.len(), 96);
    for (k, x) in s.iter().enumerate() {
        assert_eq!(
            *x,
            Sampling::Seeded {
                temperature: 0.7,
                top_p: 1.0,
                seed: (k % 2) as u64 + 1
            }
        );
    }

    // One greedy seed; an answer without a digit is a parse failure, and an item with no
    // parsed answer counts as the neutral 3 instead of stopping the run.
    let sampling = Arc::new(Mutex::new(vec![]));
    let mut lm = Recording {
        inner: StandIn::new().with_replies(|p| {
            if p.contains("nervous or tense") {
                "I cannot say".into()
            } else {
                "3".into()
            }
        }),
        sampling: sampling.clone(),
    };
    let obj = Vsm13Objective::with_settings(&b, country, settings(1, 0.0)).unwrap();
    let e = obj.evaluate(&mut lm, &[sys("a")]).unwrap().remove(0);
    assert_eq!((e.parse_failures, e.unanswered_items), (1, 1));
    assert!((e.loss - want).abs() < 1e-9);
    assert!(sampling
        .lock()
        .unwrap()
        .iter()
        .all(|x| *x == Sampling::Greedy));
}

#[test]
fn blackbox_tuning_with_held_out_items_reports_both_losses_and_guards_resume() {
    let b = bench(Vsm13Options::default());
    let country = usa(&b);
    let held = held_out_items(6, 0, &Vsm13Config::default()).unwrap();
    let settings = ObjectiveSettings {
        held_out: held.clone(),
        ..ObjectiveSettings::plain(Vsm13Options::default())
    };
    let mut config = BlackBoxConfig::default();
    config.de.np = 6;
    config.de.max_generations = 2;
    let start = PersonaChoice::from_profile(1, None);
    let tuner = BlackBoxTuner::new(config.clone(), start, &country.name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("checkpoint.json");
    let mut obj = Vsm13Objective::with_settings(&b, country.clone(), settings.clone()).unwrap();
    let mut lm = StandIn::new();
    let out = tuner
        .run(&mut lm, &mut obj, &cp, false, &[], &mut |_| {})
        .unwrap();
    // DE minimised the in-sample loss; the tuned persona's own answers give the other.
    let best = out.reports.last().unwrap().best;
    assert_eq!(out.in_sample.loss, best);
    let own = obj
        .evaluate(&mut lm, &[Candidate::System(out.text.clone())])
        .unwrap()
        .remove(0);
    assert_eq!(out.eval, own);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    let items: Vec<usize> = saved["objective"]["held_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(items, held);
    // Resuming under other held-out items is refused.
    let other = ObjectiveSettings {
        held_out: vec![],
        ..settings
    };
    let mut obj = Vsm13Objective::with_settings(&b, country, other).unwrap();
    let e = tuner
        .run(&mut lm, &mut obj, &cp, true, &[], &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("belongs to another run"), "{e}");
}

#[test]
fn paired_bootstrap_interval_and_the_transfer_sentence() {
    let (a, b) = paired_bootstrap_ci(&[0.1; 30], 200, 0).unwrap();
    assert!(
        (a - 0.1).abs() < 1e-12 && (b - 0.1).abs() < 1e-12,
        "{a} {b}"
    );
    let mixed: Vec<f64> = (0..40)
        .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let (lo, hi) = paired_bootstrap_ci(&mixed, 500, 0).unwrap();
    assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    assert_eq!(
        paired_bootstrap_ci(&mixed, 500, 0),
        Some((lo, hi)),
        "seeded"
    );
    assert_eq!(
        paired_bootstrap_ci(&mixed, 10, 0),
        None,
        "too few resamples"
    );
    let t = |ci| Transfer {
        naive: 0.5,
        tuned: 0.5,
        questions: 40,
        available: 40,
        ci95: ci,
        resamples: 500,
    };
    assert!(t(Some((lo, hi)))
        .verdict()
        .starts_with("No measurable transfer"));
    assert!(t(Some((0.01, 0.2))).verdict().contains("measurably higher"));
    assert!(t(Some((-0.2, -0.01)))
        .verdict()
        .contains("measurably lower"));
}

#[test]
fn transfer_check_asks_all_questions_by_default_and_pairs_them() {
    let goqa = Goqa::load(&DataSource::Embedded, GoqaOptions::default()).unwrap();
    let country = goqa.country(CountryCode::new("USA").unwrap()).unwrap();
    let mut lm = StandIn::new();
    let all = transfer_check(&mut lm, &goqa, &country, &sys("tuned"), None, 200, 0)
        .unwrap()
        .unwrap();
    assert_eq!(all.questions, all.available);
    assert!(all.questions > 5, "{} questions", all.questions);
    let few = transfer_check(&mut lm, &goqa, &country, &sys("tuned"), Some(5), 200, 0)
        .unwrap()
        .unwrap();
    assert_eq!((few.questions, few.available), (5, all.available));
    // The naive model against itself: a difference of exactly 0, no measurable transfer.
    let same = transfer_check(&mut lm, &goqa, &country, &Candidate::Plain, None, 200, 0)
        .unwrap()
        .unwrap();
    assert_eq!(same.difference(), 0.0);
    assert_eq!(same.ci95, Some((0.0, 0.0)));
    assert!(same.verdict().starts_with("No measurable transfer"));
    assert_eq!(
        same.naive, all.naive,
        "the naive side is the same questions"
    );
}
