//! `eval --jobs N` on the scripted stand-in model: several workers give the records and the
//! scores of one worker (in another order), the work is spread over them, and a failing worker
//! stops the run with its error while the answers already written are kept for the resume.

use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
use culturesteer_eval::runner::{run, run_jobs, NoProgress, RunConfig, RunOutcome, Worker};
use culturesteer_eval::BenchError;
use culturesteer_llm::standin::{pseudo_random_logprob, StandIn};
use culturesteer_methods::{CountryPrompt, Method, Vanilla};
use std::path::Path;
use std::time::Duration;

fn bench() -> MultiTpDisca {
    MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap()
}

fn cfg(dir: &Path) -> RunConfig {
    RunConfig {
        out_dir: dir.to_path_buf(),
        countries: ["USA", "DEU", "CHN"]
            .iter()
            .map(|c| CountryCode::new(c).unwrap())
            .collect(),
        limit: Some(5),
        batch_size: 2,
        seed: 1,
        bootstrap: 50,
        invocation: serde_json::Value::Null,
    }
}

fn methods() -> Vec<Box<dyn Method>> {
    vec![Box::new(Vanilla), Box::new(CountryPrompt)]
}

/// A stand-in that takes a few milliseconds per scored prompt (so that every worker gets
/// units while the others are busy).
fn slow() -> StandIn {
    StandIn::new().with_logprobs(|p, c| {
        std::thread::sleep(Duration::from_millis(2));
        pseudo_random_logprob(p, c)
    })
}

/// The run's records, one JSON line each, sorted (the order depends on the workers).
fn sorted_records(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn one_worker(dir: &Path) -> usize {
    let mut m = methods();
    run(
        &bench(),
        &mut m,
        &mut slow(),
        "stand-in",
        &DataSource::Embedded,
        &cfg(dir),
        &mut NoProgress,
    )
    .unwrap()
    .answered
}

/// `run_jobs` with one worker per (methods, model) pair.
fn jobs(
    sets: &mut [Vec<Box<dyn Method>>],
    models: &mut [StandIn],
    cfg: &RunConfig,
) -> Result<RunOutcome, BenchError> {
    let mut workers: Vec<Worker> = sets
        .iter_mut()
        .zip(models.iter_mut())
        .map(|(m, lm)| Worker {
            methods: m.as_mut_slice(),
            lm,
        })
        .collect();
    run_jobs(
        &bench(),
        &mut workers,
        "stand-in",
        &DataSource::Embedded,
        cfg,
        &mut NoProgress,
    )
}

#[test]
fn jobs_give_the_records_and_scores_of_one_worker() {
    let one = tempfile::tempdir().unwrap();
    assert_eq!(one_worker(one.path()), 30);

    let three = tempfile::tempdir().unwrap();
    let mut sets: Vec<Vec<Box<dyn Method>>> = (0..3).map(|_| methods()).collect();
    let mut models: Vec<StandIn> = (0..3).map(|_| slow()).collect();
    let logs: Vec<_> = models.iter().map(StandIn::log).collect();
    let outcome = jobs(&mut sets, &mut models, &cfg(three.path())).unwrap();
    assert_eq!((outcome.answered, outcome.skipped), (30, 0));
    assert_eq!(sorted_records(three.path()), sorted_records(one.path()));
    let scores = |d: &Path| std::fs::read_to_string(d.join("scores.json")).unwrap();
    assert_eq!(scores(three.path()), scores(one.path()));
    let busy = logs.iter().filter(|l| l.scored_prompts() > 0).count();
    assert!(
        busy >= 2,
        "the units were spread over the workers ({busy} of 3 asked)"
    );
}

#[test]
fn a_failing_worker_stops_the_run_and_the_resume_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut sets: Vec<Vec<Box<dyn Method>>> = (0..2).map(|_| methods()).collect();
    let good = slow().with_logprobs(|p, c| {
        std::thread::sleep(Duration::from_millis(20));
        pseudo_random_logprob(p, c)
    });
    let mut models = vec![good, StandIn::refusing()];
    let e = jobs(&mut sets, &mut models, &cfg(dir.path()))
        .err()
        .expect("the refusing worker's error ends the run");
    assert!(
        e.to_string().contains("this backend does not support"),
        "{e}"
    );
    let kept = sorted_records(dir.path()).len();
    assert!(kept < 30, "the run stopped early ({kept} records)");
    // The resume on one worker answers only what is missing and ends as a clean run does.
    let mut m = methods();
    let resumed = run(
        &bench(),
        &mut m,
        &mut slow(),
        "stand-in",
        &DataSource::Embedded,
        &cfg(dir.path()),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(resumed.answered + resumed.skipped, 30);
    assert_eq!(resumed.skipped, kept);
    let clean = tempfile::tempdir().unwrap();
    one_worker(clean.path());
    assert_eq!(sorted_records(dir.path()), sorted_records(clean.path()));
}

#[test]
fn one_countrys_items_are_shared_by_the_workers() {
    // One method on one country: 6 items in batches of 2 are three units of work, not one.
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.countries = vec![CountryCode::new("USA").unwrap()];
    c.limit = Some(6);
    let mut sets: Vec<Vec<Box<dyn Method>>> =
        (0..3).map(|_| vec![Box::new(Vanilla) as _]).collect();
    let mut models: Vec<StandIn> = (0..3)
        .map(|_| {
            StandIn::new().with_logprobs(|p, c| {
                std::thread::sleep(Duration::from_millis(20));
                pseudo_random_logprob(p, c)
            })
        })
        .collect();
    let logs: Vec<_> = models.iter().map(StandIn::log).collect();
    let outcome = jobs(&mut sets, &mut models, &c).unwrap();
    assert_eq!((outcome.answered, outcome.skipped), (6, 0));
    assert_eq!(sorted_records(dir.path()).len(), 6);
    let busy = logs.iter().filter(|l| l.scored_prompts() > 0).count();
    assert!(
        busy >= 2,
        "one country's batches were spread over the workers ({busy} of 3 asked)"
    );
}
