//! The resumable runner.
//!
//! An output directory holds:
//! * `manifest.json` — what produced the results: project version, benchmark and its options,
//!   model (SHA-256, chat format), data checksums, seed, method configurations. A second run in
//!   the same directory must agree on all of these (methods and countries may be added).
//! * `results.jsonl` — one [`ItemRecord`] per line, appended and flushed after every batch. A
//!   torn last line (a run killed mid-write) is detected and redone; a malformed line elsewhere
//!   is an error naming the line.
//! * `summary.md`, `report.html`, `scores.json` and `plots/*.svg` — rebuilt from all records at
//!   the end of every run.
//!
//! Re-running the same command skips finished items, so a killed run completes with every
//! item answered exactly once.

use crate::report::{write_report, ReportInput};
use crate::{BenchError, Benchmark, CountryScore, ItemRecord};
use culturesteer_core::hash::fnv1a64;
use culturesteer_core::CountryCode;
use culturesteer_data::DataSource;
use culturesteer_llm::{LanguageModel, ModelDescription};
use culturesteer_methods::{Answer, Country, Item, Method, PromptSpec, View};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Receives progress updates (the CLI draws a bar).
pub trait Progress {
    fn start(&mut self, total: u64);
    fn inc(&mut self, n: u64);
    fn message(&mut self, msg: &str);
    fn finish(&mut self);
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn start(&mut self, _: u64) {}
    fn inc(&mut self, _: u64) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub out_dir: PathBuf,
    pub countries: Vec<CountryCode>,
    /// Only the first N items of each country.
    pub limit: Option<usize>,
    /// Items per model call.
    pub batch_size: usize,
    pub seed: u64,
    /// Bootstrap resamples for the intervals of the headline metric (0 = none).
    pub bootstrap: usize,
    /// What started the run (command line, build, engine settings, host), recorded in the
    /// manifest with the run's start and end times; informational, never compared on resume.
    pub invocation: serde_json::Value,
}

/// Resamples for the report's intervals unless told otherwise.
pub const DEFAULT_BOOTSTRAP: usize = 200;

/// The run manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub culturesteer_version: String,
    pub benchmark: String,
    pub benchmark_options: serde_json::Value,
    pub model: ModelDescription,
    pub model_sha256: String,
    /// SHA-256 of every data file the benchmark reads.
    pub data: BTreeMap<String, String>,
    pub seed: u64,
    /// Configuration of every method that has written results here.
    pub methods: BTreeMap<String, serde_json::Value>,
    /// Countries and limit of the latest run (informational).
    pub countries: Vec<String>,
    pub limit: Option<usize>,
    /// The latest invocation (informational): [`RunConfig::invocation`] plus `started_at` and
    /// `finished_at` (UTC, RFC 3339).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub invocation: serde_json::Value,
}

impl Manifest {
    /// Why `other` (the new run) may not continue in a directory written under `self`.
    fn mismatch(&self, other: &Manifest) -> Option<String> {
        let short = |s: &str| s.chars().take(12).collect::<String>();
        if self.benchmark != other.benchmark {
            return Some(format!(
                "benchmark is {} there, {} now",
                self.benchmark, other.benchmark
            ));
        }
        if self.model_sha256 != other.model_sha256 {
            return Some(format!(
                "results come from another model (SHA-256 {}… there, {}… now: {})",
                short(&self.model_sha256),
                short(&other.model_sha256),
                other.model.source
            ));
        }
        if self.model.chat_format != other.model.chat_format {
            return Some(format!(
                "chat format is {} there, {} now",
                self.model.chat_format, other.model.chat_format
            ));
        }
        if self.benchmark_options != other.benchmark_options {
            return Some(format!(
                "benchmark options differ ({} there, {} now)",
                self.benchmark_options, other.benchmark_options
            ));
        }
        if self.data != other.data {
            let f = self
                .data
                .iter()
                .find(|(k, v)| other.data.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            return Some(format!("data files differ ({f})"));
        }
        if self.seed != other.seed {
            return Some(format!("seed is {} there, {} now", self.seed, other.seed));
        }
        for (m, cfg) in &other.methods {
            if let Some(old) = self.methods.get(m) {
                if old != cfg {
                    return Some(format!(
                        "method {m} was configured differently ({old} there, {cfg} now)"
                    ));
                }
            }
        }
        None
    }
}

/// Scores of one run, recomputed from every record in the directory.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: ReportInput,
    /// (method, country, why) for pairs that could not be scored yet.
    pub unscored: Vec<(String, CountryCode, String)>,
    /// Items answered by this invocation.
    pub answered: usize,
    /// Items found already done.
    pub skipped: usize,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads `results.jsonl`, truncating a torn last line. Returns the records in file order.
pub fn load_results(path: &Path) -> Result<Vec<ItemRecord>, BenchError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < text.len() {
        line_no += 1;
        let end = text[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| offset + p);
        let (line, next, complete) = match end {
            Some(e) => (&text[offset..e], e + 1, true),
            None => (&text[offset..], text.len(), false),
        };
        let parsed = std::str::from_utf8(line).ok().and_then(|l| {
            if l.trim().is_empty() {
                None
            } else {
                Some(serde_json::from_str::<ItemRecord>(l))
            }
        });
        match parsed {
            Some(Ok(r)) if complete => records.push(r),
            _ if next >= text.len() => {
                // A torn (or unterminated) last line: drop it, it will be redone.
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(offset as u64).map_err(io_err(path))?;
                break;
            }
            None if line.iter().all(|b| b.is_ascii_whitespace()) => {}
            Some(Err(e)) => {
                return Err(BenchError::Results {
                    path: path.display().to_string(),
                    line: line_no,
                    what: format!("not a result record ({e})"),
                })
            }
            _ => {
                return Err(BenchError::Results {
                    path: path.display().to_string(),
                    line: line_no,
                    what: "not valid UTF-8 JSON".into(),
                })
            }
        }
        offset = next;
    }
    Ok(records)
}

/// One copy of the methods and of the model. [`run_jobs`] gives each its own thread.
pub struct Worker<'a> {
    pub methods: &'a mut [Box<dyn Method>],
    pub lm: &'a mut dyn LanguageModel,
}

/// Runs `methods` on `bench` for the configured countries, resuming from `cfg.out_dir`: one
/// worker ([`run_jobs`]).
pub fn run(
    bench: &dyn Benchmark,
    methods: &mut [Box<dyn Method>],
    lm: &mut dyn LanguageModel,
    model_sha256: &str,
    data: &DataSource,
    cfg: &RunConfig,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, BenchError> {
    run_jobs(
        bench,
        &mut [Worker { methods, lm }],
        model_sha256,
        data,
        cfg,
        progress,
    )
}

/// Runs the workers' methods on `bench` for the configured countries, resuming from
/// `cfg.out_dir`. Every worker holds the same methods (same names, same order) over a copy of
/// one model; with more than one, each answers one batch of one (method, country) at a time on
/// its own thread, taking the next batch off a shared queue when it is done (`eval --jobs N`).
/// An item's answer does not depend on which worker gave it, so the records are those of one
/// worker, in another order.
///
/// Phases: [`resolve_items`] (bad input fails before anything is written), [`open_manifest`]
/// (a directory holding another run is refused), [`load_done`], [`answer_missing`] (appended
/// and flushed per batch), [`score_all`] (scores, views, floors, bootstrap replicates), then
/// the report and the manifest's end time.
pub fn run_jobs(
    bench: &dyn Benchmark,
    workers: &mut [Worker<'_>],
    model_sha256: &str,
    data: &DataSource,
    cfg: &RunConfig,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, BenchError> {
    let Some(first) = workers.first() else {
        return Err(BenchError::Invalid("no worker given".into()));
    };
    if first.methods.is_empty() {
        return Err(BenchError::Invalid("no method given".into()));
    }
    if workers
        .iter()
        .any(|w| method_names(w.methods) != method_names(first.methods))
    {
        return Err(BenchError::Invalid(
            "the workers hold different methods".into(),
        ));
    }
    let (countries, items) = resolve_items(bench, cfg)?;
    let mut manifest = open_manifest(bench, first.methods, &*first.lm, model_sha256, data, cfg)?;
    let results_path = cfg.out_dir.join("results.jsonl");
    let (mut records, mut done) = load_done(&results_path)?;
    let (answered, skipped) = answer_missing(
        workers,
        &countries,
        &items,
        cfg,
        &results_path,
        &mut records,
        &mut done,
        progress,
    )?;
    let scored = score_all(bench, workers[0].methods, &countries, &items, &records, cfg);
    let same_as_parent = views_equal_to_their_method(&scored, &countries);
    let report = ReportInput {
        benchmark: bench.name().to_string(),
        metric: bench.metric(),
        model: format!(
            "{} (SHA-256 {}, chat format {})",
            manifest.model.source, model_sha256, manifest.model.chat_format
        ),
        methods: scored.display_order(),
        scores: scored.scores,
        floors: scored.floors,
        floor_label: "uniform (p = 1/n)".to_string(),
        bootstrap: scored.replicates,
        same_as_parent,
    };
    write_report(&cfg.out_dir, &report)?;
    manifest.invocation["finished_at"] = serde_json::json!(now_rfc3339());
    write_manifest(&cfg.out_dir, &manifest)?;
    Ok(RunOutcome {
        report,
        unscored: scored.unscored,
        answered,
        skipped,
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The configured countries and their items (the first `limit` of each).
fn resolve_items(
    bench: &dyn Benchmark,
    cfg: &RunConfig,
) -> Result<(Vec<Country>, Vec<Vec<Item>>), BenchError> {
    let mut countries: Vec<Country> = Vec::new();
    for &c in &cfg.countries {
        countries.push(bench.country(c)?);
    }
    let mut items: Vec<Vec<Item>> = Vec::new();
    for c in &countries {
        let mut v = bench.items(c)?;
        if let Some(n) = cfg.limit {
            v.truncate(n);
        }
        items.push(v);
    }
    Ok((countries, items))
}

/// This run's manifest, checked against the one already in the directory (another run there
/// is refused; methods recorded earlier are kept) and written.
fn open_manifest(
    bench: &dyn Benchmark,
    methods: &[Box<dyn Method>],
    lm: &dyn LanguageModel,
    model_sha256: &str,
    data: &DataSource,
    cfg: &RunConfig,
) -> Result<Manifest, BenchError> {
    let mut data_sums = BTreeMap::new();
    for f in bench.data_files() {
        let text = data.read(&f)?;
        data_sums.insert(f, sha256_hex(text.as_bytes()));
    }
    let manifest_path = cfg.out_dir.join("manifest.json");
    let mut manifest = Manifest {
        culturesteer_version: env!("CARGO_PKG_VERSION").to_string(),
        benchmark: bench.name().to_string(),
        benchmark_options: bench.options(),
        model: lm.describe(),
        model_sha256: model_sha256.to_string(),
        data: data_sums,
        seed: cfg.seed,
        methods: methods
            .iter()
            .map(|m| (m.name().to_string(), m.config()))
            .collect(),
        countries: cfg.countries.iter().map(|c| c.to_string()).collect(),
        limit: cfg.limit,
        invocation: {
            let mut v = if cfg.invocation.is_object() {
                cfg.invocation.clone()
            } else {
                serde_json::json!({})
            };
            v["started_at"] = serde_json::json!(now_rfc3339());
            v
        },
    };
    std::fs::create_dir_all(&cfg.out_dir).map_err(io_err(&cfg.out_dir))?;
    if let Ok(text) = std::fs::read_to_string(&manifest_path) {
        let old: Manifest = serde_json::from_str(&text).map_err(|e| {
            BenchError::Manifest(format!(
                "{} is not a culturesteer manifest ({e})",
                manifest_path.display()
            ))
        })?;
        if let Some(why) = old.mismatch(&manifest) {
            return Err(BenchError::Manifest(format!(
                "{} holds another run: {why}; use a new --out directory",
                cfg.out_dir.display()
            )));
        }
        for (m, c) in old.methods {
            manifest.methods.entry(m).or_insert(c);
        }
    }
    write_manifest(&cfg.out_dir, &manifest)?;
    Ok(manifest)
}

/// (method, country, item) of a record.
type Done = HashSet<(String, CountryCode, String)>;

/// The records already written (a torn last line dropped, duplicates dropped) and their keys.
fn load_done(results_path: &Path) -> Result<(Vec<ItemRecord>, Done), BenchError> {
    let mut records = load_results(results_path)?;
    let mut done = Done::new();
    records.retain(|r| done.insert((r.method.clone(), r.country, r.item_id.clone())));
    Ok((records, done))
}

/// (method index, country index, at most one batch of items it has not answered yet): what one
/// worker answers at a time. A unit is one batch, not a whole (method, country), so that the
/// workers share even a single country's items.
type Unit = (usize, usize, Vec<Item>);

/// The methods' names, in order.
fn method_names(methods: &[Box<dyn Method>]) -> Vec<String> {
    methods.iter().map(|m| m.name().to_string()).collect()
}

/// Asks every method for the items it has not answered yet, in batches, appending and flushing
/// each batch's records. Returns (items answered now, items found done).
fn answer_missing(
    workers: &mut [Worker<'_>],
    countries: &[Country],
    items: &[Vec<Item>],
    cfg: &RunConfig,
    results_path: &Path,
    records: &mut Vec<ItemRecord>,
    done: &mut Done,
    progress: &mut dyn Progress,
) -> Result<(usize, usize), BenchError> {
    let names = method_names(workers[0].methods);
    let batch = cfg.batch_size.max(1);
    let mut units: Vec<Unit> = Vec::new();
    let mut skipped = 0usize;
    for (mi, mname) in names.iter().enumerate() {
        for (ci, (c, its)) in countries.iter().zip(items).enumerate() {
            let todo: Vec<Item> = its
                .iter()
                .filter(|it| !done.contains(&(mname.clone(), c.code, it.id.clone())))
                .cloned()
                .collect();
            skipped += its.len() - todo.len();
            units.extend(todo.chunks(batch).map(|chunk| (mi, ci, chunk.to_vec())));
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(results_path)
        .map_err(io_err(results_path))?;
    file.seek(SeekFrom::End(0)).map_err(io_err(results_path))?;
    progress.start(units.iter().map(|u| u.2.len() as u64).sum());
    let mut answered = 0usize;
    // Appends one answered batch to the file and the run's records.
    let mut keep = |mi: usize, ci: usize, chunk: &[Item], answers: Vec<Answer>| {
        let mname = &names[mi];
        let c = &countries[ci];
        let mut buf = String::new();
        for (it, a) in chunk.iter().zip(answers) {
            let rec = ItemRecord {
                method: mname.clone(),
                country: c.code,
                item_id: it.id.clone(),
                probs: a.probs,
                logprobs: a.logprobs,
                meta: it.meta.clone(),
                prompt_id: prompt_id(&it.prompt),
                options: it.question.options.clone(),
                diagnostics: a.diagnostics,
            };
            buf.push_str(
                &serde_json::to_string(&rec).map_err(|e| BenchError::Invalid(e.to_string()))?,
            );
            buf.push('\n');
            done.insert((mname.clone(), c.code, it.id.clone()));
            records.push(rec);
        }
        write_flush(&mut file, buf.as_bytes()).map_err(io_err(results_path))?;
        answered += chunk.len();
        Ok::<(), BenchError>(())
    };
    if let [one] = workers {
        // Answers of country-independent methods, reused across countries within this run.
        let mut shared: HashMap<String, Answer> = HashMap::new();
        for (mi, ci, chunk) in units {
            progress.message(&format!("{} {}", names[mi], countries[ci].code));
            let m = &mut *one.methods[mi];
            let answers = answer_cached(m, &mut *one.lm, &countries[ci], &chunk, &mut shared)?;
            keep(mi, ci, &chunk, answers)?;
            progress.inc(chunk.len() as u64);
        }
    } else {
        // Each worker takes the next batch off the queue and sends its answers here, where
        // the file is written; the first error stops every worker before its next batch.
        let queue = std::sync::Mutex::new(std::collections::VecDeque::from(units));
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel::<
            Result<(usize, usize, Vec<Item>, Vec<Answer>), BenchError>,
        >();
        std::thread::scope(|scope| -> Result<(), BenchError> {
            for w in workers.iter_mut() {
                let (tx, queue, stop) = (tx.clone(), &queue, &stop);
                scope.spawn(move || {
                    let mut shared: HashMap<String, Answer> = HashMap::new();
                    loop {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                        let Some((mi, ci, chunk)) = next else { return };
                        let m = &mut *w.methods[mi];
                        let got = answer_cached(m, &mut *w.lm, &countries[ci], &chunk, &mut shared)
                            .map(|a| (mi, ci, chunk, a));
                        let failed = got.is_err();
                        if tx.send(got).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for got in rx {
                let kept = got.and_then(|(mi, ci, chunk, answers)| {
                    progress.message(&format!("{} {}", names[mi], countries[ci].code));
                    keep(mi, ci, &chunk, answers)?;
                    progress.inc(chunk.len() as u64);
                    Ok(())
                });
                if let Err(e) = kept {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        })?;
    }
    progress.finish();
    Ok((answered, skipped))
}

/// Everything scored from the records: per (name, country) the score of each method, of its
/// headline transform and of its views, the uniform floor per country, bootstrap replicates,
/// and what could not be scored.
struct Scored {
    method_names: Vec<String>,
    /// (method, view) for every view of every method.
    views: Vec<(String, View)>,
    scores: Vec<(String, CountryScore)>,
    unscored: Vec<(String, CountryCode, String)>,
    floors: Vec<(CountryCode, f64)>,
    replicates: Vec<(String, CountryCode, Vec<f64>)>,
}

impl Scored {
    /// Each method followed by its views.
    fn display_order(&self) -> Vec<String> {
        self.method_names
            .iter()
            .flat_map(|m| {
                std::iter::once(m.clone()).chain(
                    self.views
                        .iter()
                        .filter(move |(b, _)| b == m)
                        .map(|(_, v)| v.name.clone()),
                )
            })
            .collect()
    }

    fn value_of(&self, name: &str, c: CountryCode) -> Option<f64> {
        self.scores
            .iter()
            .rev()
            .find(|(n, s)| n == name && s.country == c)
            .map(|(_, s)| s.value)
    }
}

/// Scores from all records of the selected items.
fn score_all(
    bench: &dyn Benchmark,
    methods: &[Box<dyn Method>],
    countries: &[Country],
    items: &[Vec<Item>],
    records: &[ItemRecord],
    cfg: &RunConfig,
) -> Scored {
    let method_names = method_names(methods);
    let views: Vec<(String, View)> = methods
        .iter()
        .flat_map(|m| m.views().into_iter().map(|v| (m.name().to_string(), v)))
        .collect();
    let headlines: HashMap<String, View> = methods
        .iter()
        .filter_map(|m| m.headline().map(|h| (m.name().to_string(), h)))
        .collect();
    let mut scores: Vec<(String, CountryScore)> = Vec::new();
    let mut unscored = Vec::new();
    let mut floors = Vec::new();
    let mut replicates: Vec<(String, CountryCode, Vec<f64>)> = Vec::new();
    for (c, its) in countries.iter().zip(items) {
        let ids: HashSet<&str> = its.iter().map(|i| i.id.as_str()).collect();
        for m in &method_names {
            let recs: Vec<ItemRecord> = records
                .iter()
                .filter(|r| {
                    &r.method == m && r.country == c.code && ids.contains(r.item_id.as_str())
                })
                .cloned()
                .collect();
            let own = match headlines.get(m) {
                Some(h) => view_records(its, &recs, h).map(|r| {
                    r.into_iter()
                        .map(|x| ItemRecord {
                            method: m.clone(),
                            ..x
                        })
                        .collect()
                }),
                None => Ok(recs.clone()),
            };
            let named = std::iter::once((m.clone(), own)).chain(
                views
                    .iter()
                    .filter(|(base, _)| base == m)
                    .map(|(_, v)| (v.name.clone(), view_records(its, &recs, v))),
            );
            for (name, recs) in named {
                match recs.and_then(|r| {
                    bench
                        .score(c, &r)
                        .map(|s| (with_drafts(with_position(s, &r), &r), r))
                }) {
                    Ok((mut s, r)) => {
                        if let Some(boot) =
                            bootstrap(bench, c, its, &r, s.value, cfg.bootstrap, cfg.seed)
                        {
                            if let Some((lo, hi)) = boot.content_ci {
                                s.secondary.push(("content_r_ci_lo".into(), lo));
                                s.secondary.push(("content_r_ci_hi".into(), hi));
                            }
                            replicates.push((name.clone(), c.code, boot.values));
                        }
                        scores.push((name, s));
                    }
                    Err(e) => unscored.push((name, c.code, e.to_string())),
                }
            }
        }
        if let Some(v) = uniform_floor(bench, c, its) {
            floors.push((c.code, v));
        }
    }
    Scored {
        method_names,
        views,
        scores,
        unscored,
        floors,
        replicates,
    }
}

/// Uniform answers on the same items: the constant-0.5 floor on MultiTP.
fn uniform_floor(bench: &dyn Benchmark, c: &Country, its: &[Item]) -> Option<f64> {
    let uniform: Vec<ItemRecord> = its
        .iter()
        .map(|it| {
            let n = it.readout.n_options();
            ItemRecord {
                method: "uniform".into(),
                country: c.code,
                item_id: it.id.clone(),
                probs: vec![1.0 / n as f64; n],
                logprobs: vec![-(n as f64).ln(); n],
                meta: it.meta.clone(),
                prompt_id: prompt_id(&it.prompt),
                options: it.question.options.clone(),
                diagnostics: serde_json::Value::Null,
            }
        })
        .collect();
    bench.score(c, &uniform).ok().map(|s| s.value)
}

/// (view, method) pairs where the view's scores equal its method's on every country: not a
/// separate result here.
fn views_equal_to_their_method(scored: &Scored, countries: &[Country]) -> Vec<(String, String)> {
    scored
        .views
        .iter()
        .filter(|(base, v)| {
            let both: Vec<(Option<f64>, Option<f64>)> = countries
                .iter()
                .map(|c| {
                    (
                        scored.value_of(&v.name, c.code),
                        scored.value_of(base, c.code),
                    )
                })
                .collect();
            both.iter().any(|(a, _)| a.is_some()) && both.iter().all(|(a, b)| a == b)
        })
        .map(|(base, v)| (v.name.clone(), base.clone()))
        .collect()
}

/// Writes `manifest.json` atomically (temporary file, then rename).
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BenchError> {
    let (tmp, path) = (dir.join("manifest.json.tmp"), dir.join("manifest.json"));
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(manifest).map_err(|e| BenchError::Invalid(e.to_string()))?,
    )
    .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// A short, stable id of a prompt (FNV-1a of its system text, user text and mode), recorded
/// with every result.
pub fn prompt_id(prompt: &PromptSpec) -> String {
    format!(
        "{:016x}",
        fnv1a64(0, serde_json::to_string(prompt).unwrap_or_default().bytes())
    )
}

/// Adds the position-bias diagnostic: the share of answered items whose most probable option
/// is the first one listed (about 1/n for a model that reads the content, 1 for one that always
/// answers "A").
fn with_position(mut s: CountryScore, records: &[ItemRecord]) -> CountryScore {
    let firsts: Vec<bool> = records
        .iter()
        .filter(|r| !r.probs.is_empty())
        .map(|r| r.probs.iter().skip(1).all(|&p| r.probs[0] > p))
        .collect();
    if !firsts.is_empty() {
        s.secondary.push((
            "first_option_share".into(),
            firsts.iter().filter(|&&f| f).count() as f64 / firsts.len() as f64,
        ));
    }
    s
}

/// Adds Cultural Palette's draft diagnostic when the records hold continent drafts: the share
/// of drafts whose chosen option ("Answer: X") was parsed (`drafts_parsed_share`) and how many
/// drafts there were (`drafts`); the report sums them per method.
fn with_drafts(mut s: CountryScore, records: &[ItemRecord]) -> CountryScore {
    let (parsed, total) = records
        .iter()
        .filter_map(|r| culturesteer_methods::palette::drafts_parsed(&r.diagnostics))
        .fold((0usize, 0usize), |(p, t), (a, b)| (p + a, t + b));
    if total > 0 {
        s.secondary
            .push(("drafts_parsed_share".into(), parsed as f64 / total as f64));
        s.secondary.push(("drafts".into(), total as f64));
    }
    s
}

/// `b` bootstrap replicates of a country's headline metric: the country's items resampled
/// with replacement and scored by the benchmark. The draws are of item positions in `items`,
/// replicate k's from a ChaCha20 seeded by the run seed, the country and k only, so replicate
/// k of every method on a country resamples the same items: differences between methods are
/// paired. An item a method has no record for is left out of its resamples. A resample the
/// benchmark cannot score (e.g. one that lost a dimension) is drawn again from a stream of its
/// own (that replicate is then not paired with the other methods'), at most `b` times in all;
/// `None` when `b` is 0 or too many draws fail.
///
/// The replicates are bias-corrected: shifted so that their mean is the point estimate
/// `point`. Metrics such as MIS are norms of per-dimension errors, so resampling noise alone
/// inflates them (for a model whose answers are 0 or 1 the raw replicates can all lie above
/// the point estimate); the percentiles of the shifted replicates give an interval around it.
/// Bootstrap replicates of a country's headline metric, and the 95% percentile interval of
/// the benchmark's `content_r` diagnostic over the same resamples when it has one.
struct Boot {
    values: Vec<f64>,
    content_ci: Option<(f64, f64)>,
}

fn bootstrap(
    bench: &dyn Benchmark,
    country: &Country,
    items: &[Item],
    records: &[ItemRecord],
    point: f64,
    b: usize,
    seed: u64,
) -> Option<Boot> {
    if b == 0 || records.is_empty() || items.is_empty() {
        return None;
    }
    // Scores need the answers and the item data, not the diagnostics.
    let by_id: HashMap<&str, ItemRecord> = records
        .iter()
        .map(|r| {
            (
                r.item_id.as_str(),
                ItemRecord {
                    diagnostics: serde_json::Value::Null,
                    ..r.clone()
                },
            )
        })
        .collect();
    let at: Vec<Option<&ItemRecord>> = items.iter().map(|i| by_id.get(i.id.as_str())).collect();
    let n = at.len();
    let (mut out, mut failed) = (Vec::with_capacity(b), 0usize);
    let mut content = Vec::with_capacity(b);
    let mut attempt = 0u64;
    while out.len() < b {
        let k = out.len() as u64;
        let mut rng = ChaCha20Rng::seed_from_u64(fnv1a64(
            seed,
            country
                .code
                .as_str()
                .bytes()
                .chain(k.to_le_bytes())
                .chain(attempt.to_le_bytes()),
        ));
        let sample: Vec<ItemRecord> = (0..n)
            .filter_map(|_| at[rng.gen_range(0..n)].cloned())
            .collect();
        match bench.score(country, &sample) {
            Ok(s) if s.value.is_finite() => {
                out.push(s.value);
                attempt = 0;
                content.extend(
                    s.secondary
                        .iter()
                        .find(|(k, _)| k == "content_r")
                        .map(|(_, v)| *v),
                );
            }
            _ => {
                attempt += 1;
                failed += 1;
                if failed > b {
                    return None;
                }
            }
        }
    }
    let bias = out.iter().sum::<f64>() / out.len() as f64 - point;
    // The correlation's interval only when (nearly) every resample has one.
    let content_ci = if content.len() * 10 >= b * 9 {
        crate::report::percentile_ci(&content)
    } else {
        None
    };
    Some(Boot {
        values: out.into_iter().map(|x| x - bias).collect(),
        content_ci,
    })
}

fn write_flush(f: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)?;
    f.flush()
}

/// Answers a chunk; for methods whose answers do not depend on the country, items already
/// answered for another country in this run (same id, prompt, readout and temperature) are
/// taken from `cache` instead of asking the model again.
fn answer_cached(
    m: &mut dyn Method,
    lm: &mut dyn LanguageModel,
    country: &Country,
    chunk: &[Item],
    cache: &mut HashMap<String, Answer>,
) -> Result<Vec<Answer>, BenchError> {
    let name = m.name().to_string();
    let check = |n: usize, want: usize| {
        if n == want {
            Ok(())
        } else {
            Err(BenchError::Invalid(format!(
                "method {name} returned {n} answers for {want} items"
            )))
        }
    };
    if m.uses_country() {
        let answers = m.answer(lm, country, chunk)?;
        check(answers.len(), chunk.len())?;
        return Ok(answers);
    }
    let key = |it: &Item| {
        format!(
            "{name}\u{1f}{}",
            serde_json::to_string(&(&it.id, &it.prompt, &it.readout, it.temperature))
                .unwrap_or_default()
        )
    };
    let keys: Vec<String> = chunk.iter().map(key).collect();
    let missing: Vec<Item> = chunk
        .iter()
        .zip(&keys)
        .filter(|(_, k)| !cache.contains_key(*k))
        .map(|(it, _)| it.clone())
        .collect();
    if !missing.is_empty() {
        let answers = m.answer(lm, country, &missing)?;
        check(answers.len(), missing.len())?;
        for (it, a) in missing.iter().zip(answers) {
            cache.insert(key(it), a);
        }
    }
    Ok(keys.iter().map(|k| cache[k].clone()).collect())
}

/// A view's records for one country: the base records put in item order (the order the
/// benchmark gives, which recursive views such as DISCA's prior rely on), transformed.
fn view_records(
    items: &[Item],
    recs: &[ItemRecord],
    view: &View,
) -> Result<Vec<ItemRecord>, BenchError> {
    let by_id: HashMap<&str, &ItemRecord> = recs.iter().map(|r| (r.item_id.as_str(), r)).collect();
    let ordered: Vec<&ItemRecord> = items
        .iter()
        .filter_map(|it| by_id.get(it.id.as_str()).copied())
        .collect();
    let answers: Vec<Answer> = ordered
        .iter()
        .map(|r| Answer {
            probs: r.probs.clone(),
            logprobs: r.logprobs.clone(),
            diagnostics: r.diagnostics.clone(),
        })
        .collect();
    let out = (view.transform)(&answers)
        .map_err(|e| BenchError::Invalid(format!("{}: {e}", view.name)))?;
    if out.len() != ordered.len() {
        return Err(BenchError::Invalid(format!(
            "{}: {} answers for {} items",
            view.name,
            out.len(),
            ordered.len()
        )));
    }
    Ok(ordered
        .into_iter()
        .zip(out)
        .map(|(r, a)| ItemRecord {
            method: view.name.clone(),
            probs: a.probs,
            logprobs: a.logprobs,
            diagnostics: a.diagnostics,
            ..r.clone()
        })
        .collect())
}
