//! The model thread: one thread owns the model. It runs queued jobs one after another (the
//! async front end never blocks on the engine) and, between jobs, advances every running
//! generation by one token: continuous generation ([`culturesteer_llm::streams`]). A
//! generation request joins the running ones at the next step (or waits for a free stream
//! slot), leaves when it ends or its client goes away, and meanwhile scoring jobs (echo,
//! `/v1/choose`) run between steps. Backends without streams generate each request to its end
//! inside its job, as before.

use super::api::ApiError;
use culturesteer_core::disca::DiscaConfig;
use culturesteer_core::hash::fnv1a64;
use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_data::palette::{ContinentMap, PaletteTemplates};
use culturesteer_data::personas::resolve_panel;
use culturesteer_data::DataSource;
use culturesteer_llm::{
    GenerateRequest, Generation, LanguageModel, LlmError, Prompt, ScoreRequest, StepToken,
    StreamId, StreamStep, TokenId,
};
use culturesteer_methods::{
    Answer, Country, CountryPrompt, Disca, Item, Method, MethodError, Palette, PaletteConfig,
    PromptSpec, Question, Readout, Vanilla,
};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;

/// A unit of work for the model thread.
pub type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// Where a generation's progress goes.
pub struct GenSink {
    /// Every step (text that became final, the token picked, and on the last step the whole
    /// generation), or the error that ended it. Returning `false` ends the generation (its
    /// client went away).
    pub on_step: Box<dyn FnMut(Result<StreamStep, ApiError>) -> bool + Send>,
    /// Whether the client has gone (checked before a waiting generation's prompt is
    /// evaluated).
    pub gone: Box<dyn Fn() -> bool + Send>,
}

impl GenSink {
    fn send(&mut self, m: Result<StreamStep, ApiError>) -> bool {
        (self.on_step)(m)
    }
}

/// A generation waiting for a free stream slot.
struct Waiting {
    request: GenerateRequest,
    top_logprobs: Option<usize>,
    sink: GenSink,
}

/// How an answer is steered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    Vanilla,
    CountryPrompt,
    Disca,
    /// Cultural Palette (drafts, summary, decision): `/v1/choose` only.
    Palette,
}

impl Steering {
    /// The registry's servable methods (`MethodSpec::servable`; a test keeps the two in step).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "vanilla" => Ok(Steering::Vanilla),
            "country-prompt" => Ok(Steering::CountryPrompt),
            "disca" => Ok(Steering::Disca),
            "palette" => Ok(Steering::Palette),
            "soft-prompt" => Err(ApiError::invalid(
                "steering",
                "a soft prompt steers the whole server: start it with --soft-prompt FILE",
            )),
            other => Err(ApiError::invalid(
                "steering",
                format!(
                    "unknown steering {other:?} ({})",
                    culturesteer_registry::methods::names(|m| m.servable)
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Steering::Vanilla => "vanilla",
            Steering::CountryPrompt => "country-prompt",
            Steering::Disca => "disca",
            Steering::Palette => "palette",
        }
    }
}

/// The country-prompt baseline's system text (the wording of the multitp-disca protocol).
pub fn country_instruction(name: &str) -> String {
    format!("Answer as a typical respondent from {name} would.")
}

/// The `/v1/choose` question: the DISCA protocol's frame generalised to n options (labels
/// "Option A", "Option B", …). Returns the question's structure and its user turn; with
/// `swap_first_two` the labels of the first two options are exchanged and the texts stay in
/// place (the second label order DISCA debiases with).
pub fn choose_question(
    question: &str,
    options: &[String],
    swap_first_two: bool,
) -> (Question, String) {
    let letters: Vec<String> = ('A'..='Z')
        .take(options.len())
        .map(|c| c.to_string())
        .collect();
    let mut shown = letters.clone();
    if swap_first_two && shown.len() >= 2 {
        shown.swap(0, 1);
    }
    let listed: Vec<String> = options
        .iter()
        .zip(&shown)
        .map(|(o, l)| format!("Option {l}: {o}"))
        .collect();
    let (head, last) = letters.split_at(letters.len().saturating_sub(1));
    let stem = format!(
        "{question}\n\n{}\n\nIf you must choose, which option would you choose? Answer with exactly one letter: {} or {}.",
        listed.join("\n"),
        head.join(", "),
        last.first().map(String::as_str).unwrap_or("")
    );
    let user = format!("{stem}\n\n{CHOOSE_CUE}");
    (
        Question {
            stem,
            options: options.to_vec(),
            labels: letters,
            cue: CHOOSE_CUE.into(),
        },
        user,
    )
}

/// The answer cue of `/v1/choose` (as in the DISCA frame, with its trailing space).
pub const CHOOSE_CUE: &str = "Choice: ";

/// What the model thread owns.
pub struct Worker {
    pub lm: Box<dyn LanguageModel>,
    pub data: DataSource,
    pub personas: Option<PathBuf>,
    pub disca: DiscaConfig,
    pub seed: u64,
    /// Cultural Palette's settings, templates and continent map (`steering: "palette"`).
    pub palette: Option<(PaletteConfig, PaletteTemplates, ContinentMap)>,
    /// Most generations that may wait for a stream slot (more are refused as busy).
    pub max_waiting: usize,
    /// How long the model thread waits, after a step that ended generations and left at least
    /// half the slots free, for that many new requests before it steps the few still running
    /// (`serve --admit-wait`; zero: never waits). Clients that send their next request as
    /// soon as an answer comes then join the next decode instead of the one after it.
    pub admit_wait: std::time::Duration,
    panels: HashMap<CountryCode, Vec<String>>,
    bos: Option<Option<TokenId>>,
    running: Vec<(StreamId, GenSink)>,
    waiting: VecDeque<Waiting>,
    /// Where the gauges of `/metrics` go after each job and step.
    pub metrics: Option<std::sync::Arc<super::metrics::Metrics>>,
}

impl Worker {
    pub fn new(
        lm: Box<dyn LanguageModel>,
        data: DataSource,
        personas: Option<PathBuf>,
        disca: DiscaConfig,
        seed: u64,
    ) -> Self {
        Self {
            lm,
            data,
            personas,
            disca,
            seed,
            palette: None,
            max_waiting: 64,
            admit_wait: std::time::Duration::ZERO,
            panels: HashMap::new(),
            bos: None,
            running: Vec::new(),
            waiting: VecDeque::new(),
            metrics: None,
        }
    }

    /// Runs jobs, and steps the running generations whenever no job is queued, until every
    /// sender is gone and the last generation has ended. A panicking job is reported and the
    /// loop goes on; a panicking step ends the generations it was advancing.
    pub fn run(mut self, jobs: mpsc::Receiver<Job>) {
        // Requests that may come back soon (generations the last step ended), and until when
        // to wait for them.
        let mut expect = 0usize;
        let mut until = std::time::Instant::now();
        loop {
            let busy = !self.running.is_empty() || !self.waiting.is_empty();
            let wait = until.saturating_duration_since(std::time::Instant::now());
            let next = if !busy {
                jobs.recv().map_err(|_| true)
            } else if expect > 0 && !wait.is_zero() {
                jobs.recv_timeout(wait)
                    .map_err(|e| e == mpsc::RecvTimeoutError::Disconnected)
            } else {
                jobs.try_recv()
                    .map_err(|e| e == mpsc::TryRecvError::Disconnected)
            };
            match next {
                Ok(job) => {
                    expect = expect.saturating_sub(1);
                    let run = std::panic::AssertUnwindSafe(|| job(&mut self));
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!("a request panicked in the model thread; continuing");
                    }
                    self.report();
                    continue;
                }
                Err(true) if !busy => break,
                Err(_) => {}
            }
            expect = 0;
            let step = std::panic::AssertUnwindSafe(|| {
                self.admit();
                self.step()
            });
            match std::panic::catch_unwind(step) {
                Ok(ended) => {
                    // Many slots just came free: their clients' next requests are likely on
                    // the way (a closed loop answers within milliseconds); a step run now
                    // would decode the few remaining streams alone and leave those requests
                    // for the step after it. Requests already waiting fill slots without it.
                    let slots = self.lm.streams().map_or(0, |s| s.stream_slots());
                    let missing = ended.saturating_sub(self.waiting.len());
                    if missing > 0 && self.running.len() * 2 <= slots && !self.admit_wait.is_zero()
                    {
                        expect = missing;
                        until = std::time::Instant::now() + self.admit_wait;
                    }
                }
                Err(_) => {
                    tracing::error!("a generation step panicked in the model thread; continuing");
                    self.fail_all(ApiError::internal(
                        "the generation failed inside the engine",
                    ));
                }
            }
            self.report();
        }
    }

    /// Updates the gauges of `/metrics`.
    fn report(&mut self) {
        let Some(m) = &self.metrics else {
            return;
        };
        let slots = self.lm.streams().map_or(0, |s| s.stream_slots());
        m.set_engine(super::metrics::EngineGauges {
            running: self.running.len(),
            waiting: self.waiting.len(),
            slots,
            cache: self.lm.prefix_cache(),
        });
    }

    /// Starts a generation. With continuous generation it joins the running ones at the next
    /// step (or waits for a free slot); otherwise it runs to its end now. With
    /// `top_logprobs`, each step's token carries its log-prob and that many alternatives.
    pub fn generate(
        &mut self,
        request: GenerateRequest,
        top_logprobs: Option<usize>,
        mut sink: GenSink,
    ) {
        if self.lm.streams().is_none() {
            self.generate_now(request, top_logprobs, sink);
            return;
        }
        if self.waiting.len() >= self.max_waiting {
            sink.send(Err(ApiError::busy(self.waiting.len())));
            return;
        }
        // Admitted before the next step, together with every other request that arrived
        // meanwhile (their prompts evaluated in one plan, or, where the backend co-schedules
        // prefill, in the following steps' decodes).
        self.waiting.push_back(Waiting {
            request,
            top_logprobs,
            sink,
        });
    }

    /// Opens streams for waiting generations while slots are free, all in one batch: queued
    /// (`Streams::queue_streams`), so a backend that co-schedules prefill evaluates their
    /// prompts during the next steps, with the running generations' tokens; a request it
    /// refuses (too long, no slot) is answered now.
    fn admit(&mut self) {
        let Some(streams) = self.lm.streams() else {
            return;
        };
        let free = streams
            .stream_slots()
            .saturating_sub(streams.open_streams());
        let mut batch: Vec<Waiting> = Vec::new();
        while batch.len() < free {
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            // A client that left while waiting costs no prefill.
            if !(w.sink.gone)() {
                batch.push(w);
            }
        }
        if batch.is_empty() {
            return;
        }
        let asked: Vec<(&GenerateRequest, Option<usize>)> =
            batch.iter().map(|w| (&w.request, w.top_logprobs)).collect();
        let opened = streams.queue_streams(&asked);
        for (mut w, r) in batch.into_iter().zip(opened) {
            match r {
                Ok(id) => self.running.push((id, w.sink)),
                Err(e) => {
                    w.sink.send(Err(model_error(e)));
                }
            }
        }
    }

    /// One token for every running generation; ended ones and those whose client went away
    /// leave (checked before the step too: a stream whose prompt is still being evaluated
    /// gets no step, so nothing is sent to notice its client left). Returns how many
    /// generations ended (finished or failed, not those whose client left).
    fn step(&mut self) -> usize {
        let Some(streams) = self.lm.streams() else {
            return 0;
        };
        let mut k = 0;
        while k < self.running.len() {
            if (self.running[k].1.gone)() {
                let (id, _) = self.running.swap_remove(k);
                streams.close_stream(id);
            } else {
                k += 1;
            }
        }
        if self.running.is_empty() {
            return 0;
        }
        let mut ended = 0;
        if let Some(m) = &self.metrics {
            m.count_step(self.running.len());
        }
        let t = std::time::Instant::now();
        let result = streams.step_streams();
        // CULTURESTEER_LOG=culturesteer=debug: one line per step (how full, how long).
        tracing::debug!(
            streams = self.running.len(),
            ms = t.elapsed().as_secs_f64() * 1e3,
            "generation step"
        );
        match result {
            Ok(steps) => {
                for step in steps {
                    let id = step.id;
                    let done = step.finished.is_some();
                    let Some(k) = self.running.iter().position(|(i, _)| *i == id) else {
                        streams.close_stream(id);
                        continue;
                    };
                    let keep = self.running[k].1.send(Ok(step));
                    if done || !keep {
                        if done {
                            ended += 1;
                        } else {
                            streams.close_stream(id);
                        }
                        self.running.swap_remove(k);
                    }
                }
            }
            Err(e) => {
                ended = self.running.len();
                self.fail_all(model_error(e));
            }
        }
        ended
    }

    /// Ends every running generation with `e` (the backend has closed their streams).
    fn fail_all(&mut self, e: ApiError) {
        for (id, mut sink) in std::mem::take(&mut self.running) {
            if let Some(s) = self.lm.streams() {
                s.close_stream(id);
            }
            sink.send(Err(e.clone()));
        }
    }

    /// A whole generation inside this job (backends without streams): text as it comes, then
    /// the last step with the generation and, when asked, its tokens' log-probs by scoring.
    fn generate_now(
        &mut self,
        request: GenerateRequest,
        top_logprobs: Option<usize>,
        mut sink: GenSink,
    ) {
        let id = StreamId(0);
        let text_step = |text: &str| StreamStep {
            id,
            text: text.to_string(),
            token: None,
            finished: None,
        };
        if (sink.gone)() {
            return;
        }
        let mut on_text = |t: &str| sink.send(Ok(text_step(t)));
        let g = match self.lm.generate_stream(&request, &mut on_text) {
            Ok(g) => g,
            Err(e) => {
                sink.send(Err(model_error(e)));
                return;
            }
        };
        if let Some(n) = top_logprobs {
            match self.score_generation(&request.prompt, &g, n) {
                Ok(tokens) => {
                    for t in tokens {
                        let step = StreamStep {
                            token: Some(t),
                            ..text_step("")
                        };
                        if !sink.send(Ok(step)) {
                            return;
                        }
                    }
                }
                Err(e) => {
                    sink.send(Err(e));
                    return;
                }
            }
        }
        sink.send(Ok(StreamStep {
            finished: Some(g),
            ..text_step("")
        }));
    }

    /// Each generated token's log-prob and the `n` most likely tokens at its position, by
    /// scoring (one batch: the positions share the prompt).
    fn score_generation(
        &mut self,
        prompt: &Prompt,
        g: &Generation,
        n: usize,
    ) -> Result<Vec<StepToken>, ApiError> {
        let base = match &prompt.tokens {
            Some(t) => t.clone(),
            None => self.lm.tokenize(&prompt.text).map_err(model_error)?,
        };
        let reqs: Vec<ScoreRequest> = (0..g.tokens.len())
            .map(|i| ScoreRequest {
                prompt: Prompt::from_tokens([base.as_slice(), &g.tokens[..i]].concat()),
                next_tokens: vec![g.tokens[i]],
                top_k: n,
                ..Default::default()
            })
            .collect();
        let results = if reqs.is_empty() {
            vec![]
        } else {
            self.lm.score(&reqs).map_err(model_error)?
        };
        Ok(g.tokens
            .iter()
            .zip(results)
            .map(|(&t, r)| StepToken {
                token: t,
                piece: self.lm.token_piece(t),
                logprob: r.next_token_logprobs.first().copied().unwrap_or(f64::NAN),
                top: r.top_k,
            })
            .collect())
    }

    /// The BOS token the model's tokenizer puts before every prompt, if any.
    pub fn bos(&mut self) -> Option<TokenId> {
        if self.bos.is_none() {
            self.bos = Some(self.lm.tokenize("").ok().and_then(|t| t.first().copied()));
        }
        self.bos.flatten()
    }

    /// Tokenises without the BOS token the model's tokenizer adds.
    pub fn tokenize(&mut self, text: &str, add_special: bool) -> Result<Vec<TokenId>, ApiError> {
        let mut t = self.lm.tokenize(text).map_err(model_error)?;
        if !add_special {
            if self.bos.is_none() {
                self.bos = Some(self.lm.tokenize("").map_err(model_error)?.first().copied());
            }
            if let (Some(Some(b)), Some(&first)) = (self.bos, t.first()) {
                if first == b {
                    t.remove(0);
                }
            }
        }
        Ok(t)
    }

    fn panel(&mut self, c: CountryCode) -> Result<Vec<String>, ApiError> {
        if let Some(p) = self.panels.get(&c) {
            return Ok(p.clone());
        }
        let panel = resolve_panel(self.personas.as_deref(), &self.data, c)
            .map_err(|e| ApiError::invalid("culture", e.to_string()))?;
        let texts: Vec<String> = panel.personas.into_iter().map(|p| p.text).collect();
        self.panels.insert(c, texts.clone());
        Ok(texts)
    }

    /// `/v1/choose`: one question, its options, one country, one steering method.
    pub fn choose(
        &mut self,
        country: Country,
        question: &str,
        options: &[String],
        steering: Steering,
        category: MoralDimension,
        seed: Option<u64>,
    ) -> Result<Answer, ApiError> {
        let (q, user) = choose_question(question, options, false);
        let base = |user: String| PromptSpec {
            system: Some(culturesteer_eval::multitp::DISCA_BASE_SYSTEM.into()),
            user,
            chat: true,
        };
        let item = Item {
            id: format!(
                "choose-{:016x}",
                fnv1a64(
                    0,
                    [question, &options.join("\u{1f}")]
                        .iter()
                        .flat_map(|p| p.bytes().chain([0]))
                )
            ),
            readout: Readout::NextToken {
                labels: q.labels.clone(),
            },
            question: q,
            prompt: base(user.clone()),
            country_prompt: PromptSpec {
                system: Some(country_instruction(&country.name)),
                user,
                chat: true,
            },
            swapped: (options.len() == 2).then(|| base(choose_question(question, options, true).1)),
            dimension: Some(category),
            temperature: 1.0,
            meta: json!({ "dimension": category }),
        };
        let mut method: Box<dyn Method> = match steering {
            Steering::Vanilla => Box::new(Vanilla),
            Steering::CountryPrompt => Box::new(CountryPrompt),
            Steering::Disca => {
                let panel = self.panel(country.code)?;
                let panels = std::iter::once((country.code, panel)).collect();
                Box::new(Disca::new(
                    "disca",
                    self.disca.clone(),
                    panels,
                    seed.unwrap_or(self.seed),
                ))
            }
            Steering::Palette => {
                let (cfg, templates, continents) = self
                    .palette
                    .clone()
                    .ok_or_else(|| ApiError::internal("palette is not configured"))?;
                continents
                    .continent_of(&country.code)
                    .map_err(|e| ApiError::invalid("culture", e.to_string()))?;
                Box::new(Palette::new(cfg, templates, continents).map_err(method_error)?)
            }
        };
        let mut answers = method
            .answer(self.lm.as_mut(), &country, std::slice::from_ref(&item))
            .map_err(method_error)?;
        answers
            .pop()
            .ok_or_else(|| ApiError::internal("the method returned no answer"))
    }
}

/// Model errors caused by the request (too long, bad token id, template) are 422; engine
/// failures 500; an unreachable upstream server 503.
pub fn model_error(e: LlmError) -> ApiError {
    match &e {
        LlmError::Decode(_) | LlmError::Context(_) => ApiError::internal(e.to_string()),
        LlmError::Http { .. } | LlmError::NoLogprobs { .. } => {
            ApiError::unavailable(format!("upstream model: {e}"))
        }
        _ => ApiError::invalid("prompt", e.to_string()),
    }
}

pub fn method_error(e: MethodError) -> ApiError {
    match e {
        MethodError::Model(m) => model_error(m),
        other => ApiError::invalid("options", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists_lettered_options() {
        let (q, f) = choose_question(
            "Tea or coffee?",
            &["tea".into(), "coffee".into(), "water".into()],
            false,
        );
        assert!(
            f.starts_with("Tea or coffee?\n\nOption A: tea\nOption B: coffee\nOption C: water\n\n")
        );
        assert!(f.contains("exactly one letter: A, B or C."));
        assert!(f.ends_with("Choice: "));
        assert_eq!(f, format!("{}\n\n{}", q.stem, q.cue));
        assert_eq!(q.labels, ["A", "B", "C"]);
        let (_, two) = choose_question("Q", &["x".into(), "y".into()], false);
        assert!(two.contains("letter: A or B."));
        // The second label order for DISCA: labels exchanged, texts and everything else in place.
        let (_, swapped) = choose_question("Q", &["x".into(), "y".into()], true);
        assert_eq!(
            swapped,
            two.replace("Option A: x\nOption B: y", "Option B: x\nOption A: y")
        );
    }

    /// Four clients in a closed loop on four slots: each sends its next request when its
    /// answer comes, the k-th after k × 15 ms. With an admission wait the model thread holds
    /// the next step until all four are back, so every step holds all four generations;
    /// without one (the old loop) it stepped the first returner alone.
    #[test]
    fn answered_clients_that_come_back_share_the_next_step() {
        use culturesteer_llm::standin::StandIn;
        use std::time::Duration;
        let run = |wait: Duration| -> Vec<usize> {
            let lm = StandIn::new()
                .with_replies(|_| "abcd".into())
                .with_stream_slots(4)
                .with_step_delay(Duration::from_millis(5));
            let log = lm.log();
            let mut worker = Worker::new(
                Box::new(lm),
                DataSource::Embedded,
                None,
                culturesteer_registry::disca_preset(culturesteer_registry::Preset::Paper),
                42,
            );
            worker.admit_wait = wait;
            let (tx, rx) = mpsc::channel::<Job>();
            // A client's request; when answered, its next one comes back after a delay.
            fn send(tx: mpsc::Sender<Job>, client: u64, left: usize) {
                let back = tx.clone();
                let job: Job = Box::new(move |w: &mut Worker| {
                    let request = GenerateRequest {
                        prompt: format!("client {client}").into(),
                        max_tokens: 16,
                        sampling: culturesteer_llm::Sampling::Greedy,
                        stop: vec![],
                    };
                    let on_step = move |m: Result<StreamStep, ApiError>| {
                        if matches!(&m, Ok(s) if s.finished.is_some()) && left > 1 {
                            let back = back.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(Duration::from_millis(15 * client));
                                send(back, client, left - 1);
                            });
                        }
                        true
                    };
                    let sink = GenSink {
                        on_step: Box::new(on_step),
                        gone: Box::new(|| false),
                    };
                    w.generate(request, None, sink);
                });
                let _ = tx.send(job);
            }
            // The first four arrive before the thread starts: they share the first step.
            for c in 0..4 {
                send(tx.clone(), c, 3);
            }
            drop(tx);
            worker.run(rx);
            log.steps()
        };
        let steps = run(Duration::from_millis(500));
        assert_eq!(steps.len(), 12, "three waves of four tokens: {steps:?}");
        assert!(steps.iter().all(|&n| n == 4), "{steps:?}");
        let steps = run(Duration::ZERO);
        assert!(steps.iter().any(|&n| n < 4), "without a wait: {steps:?}");
    }

    #[test]
    fn steering_names() {
        assert_eq!(Steering::parse("disca").unwrap(), Steering::Disca);
        assert_eq!(Steering::parse("palette").unwrap(), Steering::Palette);
        assert_eq!(
            Steering::parse("soft-prompt").unwrap_err().status.as_u16(),
            422
        );
        assert!(Steering::parse("DISCA").is_err());
    }
}

#[cfg(test)]
mod steering_tests {
    use super::Steering;

    #[test]
    fn the_servable_methods_of_the_registry_are_the_steerings() {
        for m in culturesteer_registry::METHODS {
            match Steering::parse(m.name) {
                Ok(s) => {
                    assert!(m.servable, "{} is served but not marked servable", m.name);
                    assert_eq!(s.as_str(), m.name);
                }
                Err(_) => assert!(!m.servable, "{} is marked servable but not served", m.name),
            }
        }
    }
}
