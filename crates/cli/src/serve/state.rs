//! What every request handler shares: the job queue to the model thread, the served name,
//! limits, known countries and id counter, and the validation that needs them.

use super::api::{self, ApiError};
use super::worker::{GenSink, Job, Steering, Worker};
use super::Limits;
use culturesteer_core::CountryCode;
use culturesteer_llm::{GenerateRequest, Generation, Sampling, StepToken};
use culturesteer_methods::Country;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// Shared by every request handler.
pub struct AppState {
    pub(super) jobs: mpsc::SyncSender<Job>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) name: String,
    pub(super) limits: Limits,
    pub(super) countries: BTreeMap<CountryCode, String>,
    pub(super) counter: AtomicU64,
    pub(super) seed: u64,
    pub(super) access: super::access::Access,
    pub(super) metrics: Arc<super::metrics::Metrics>,
}

pub(super) type Shared = Arc<AppState>;

impl AppState {
    /// Queues a job for the model thread and waits for its answer. A job whose request is
    /// gone by the time the model thread reaches it (the client disconnected and the handler
    /// was dropped) is skipped: abandoned requests cost no model time.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |w: &mut Worker| {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(f(w));
        }))?;
        rx.await
            .map_err(|_| ApiError::internal("the model thread dropped the request"))?
    }

    /// Generates one request on the model thread and waits for its end: the generation and,
    /// with `top_logprobs`, its tokens with their log-probs. `make` builds the request on the
    /// model thread (a chat prompt needs the model's template). The generation joins the
    /// running ones (continuous generation) and stops at the next step once the client has
    /// gone (this future dropped).
    pub(super) async fn generate(
        &self,
        make: impl FnOnce(&mut Worker) -> Result<GenerateRequest, ApiError> + Send + 'static,
        top_logprobs: Option<usize>,
    ) -> Result<(Generation, Vec<StepToken>), ApiError> {
        type Done = Result<(Generation, Vec<StepToken>), ApiError>;
        let (tx, rx) = tokio::sync::oneshot::channel::<Done>();
        self.submit(Box::new(move |w: &mut Worker| {
            if tx.is_closed() {
                return;
            }
            let request = match make(w) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
            let probe = tx.clone();
            let mut tokens = Vec::new();
            let on_step = move |m: Result<culturesteer_llm::StreamStep, ApiError>| {
                let mut slot = tx.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_none_or(|t| t.is_closed()) {
                    return false;
                }
                let done = match m {
                    Ok(step) => {
                        tokens.extend(step.token);
                        match step.finished {
                            Some(g) => Ok((g, std::mem::take(&mut tokens))),
                            None => return true,
                        }
                    }
                    Err(e) => Err(e),
                };
                if let Some(t) = slot.take() {
                    let _ = t.send(done);
                }
                false
            };
            let gone = move || {
                probe
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_none_or(|t| t.is_closed())
            };
            w.generate(
                request,
                top_logprobs,
                GenSink {
                    on_step: Box::new(on_step),
                    gone: Box::new(gone),
                },
            );
        }))?;
        rx.await
            .map_err(|_| ApiError::internal("the model thread dropped the request"))?
    }

    pub(super) fn submit(&self, job: Job) -> Result<(), ApiError> {
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::SeqCst);
        let q2 = queued.clone();
        let wrapped: Job = Box::new(move |w: &mut Worker| {
            q2.fetch_sub(1, Ordering::SeqCst);
            job(w)
        });
        match self.jobs.try_send(wrapped) {
            Ok(()) => Ok(()),
            Err(e) => {
                queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    mpsc::TrySendError::Full(_) => ApiError::busy(self.limits.max_queue),
                    mpsc::TrySendError::Disconnected(_) => {
                        ApiError::unavailable("the model thread has stopped")
                    }
                })
            }
        }
    }

    /// Refuses a request whose prompts (`prompt_tokens`: an upper bound, a text's bytes + 2)
    /// plus `max_tokens` per prompt exceed the per-request budget.
    pub(super) fn check_cost(
        &self,
        prompt_tokens: usize,
        n_prompts: usize,
        max_tokens: usize,
    ) -> Result<(), ApiError> {
        let cost = prompt_tokens + n_prompts * max_tokens;
        if cost > self.limits.max_request_tokens {
            return Err(ApiError::invalid(
                "prompt",
                format!(
                    "this request may cost up to {cost} tokens (prompts + max_tokens per prompt), more than this server's --max-request-tokens {}",
                    self.limits.max_request_tokens
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn check_model(&self, model: &Option<String>) -> Result<(), ApiError> {
        match model {
            Some(m) if !m.is_empty() && *m != self.name => Err(ApiError {
                param: Some("model".into()),
                ..ApiError::not_found(format!(
                    "model {m:?} is not served here (this server serves {:?})",
                    self.name
                ))
            }),
            _ => Ok(()),
        }
    }

    /// [`AppState::steering`] for the generation endpoints: DISCA and Palette steer a choice
    /// between given options, which only `/v1/choose` has.
    pub(super) fn generation_steering(
        &self,
        s: &Steering2,
    ) -> Result<(Steering, Option<Country>), ApiError> {
        let (steering, country) = self.steering(s)?;
        if matches!(steering, Steering::Disca | Steering::Palette) {
            return Err(ApiError::invalid(
                "steering",
                format!(
                    "{} steers a choice between given options: use /v1/choose",
                    steering.as_str()
                ),
            ));
        }
        Ok((steering, country))
    }

    /// Validates `culture` + `steering`. Without `steering`, a culture means country-prompt.
    pub(super) fn steering(&self, s: &Steering2) -> Result<(Steering, Option<Country>), ApiError> {
        let country = s.culture.as_deref().map(|c| self.country(c)).transpose()?;
        let steering = match (&s.steering, &country) {
            (Some(name), _) => Steering::parse(name)?,
            (None, Some(_)) => Steering::CountryPrompt,
            (None, None) => Steering::Vanilla,
        };
        if steering != Steering::Vanilla && country.is_none() {
            return Err(ApiError::invalid(
                "culture",
                format!(
                    "steering {:?} needs a culture (ISO 3166-1 alpha-3 code)",
                    steering.as_str()
                ),
            ));
        }
        Ok((steering, country))
    }

    pub(super) fn country(&self, code: &str) -> Result<Country, ApiError> {
        let c = CountryCode::new(code.trim())
            .map_err(|e| ApiError::invalid("culture", format!("culture {code:?}: {e}")))?;
        let name = self.countries.get(&c).ok_or_else(|| {
            ApiError::invalid("culture", format!("unknown culture {code:?}: not among the {} countries of the Moral Machine data", self.countries.len()))
        })?;
        Ok(Country {
            code: c,
            name: name.clone(),
        })
    }

    pub(super) fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn max_tokens(&self, asked: Option<u32>, default: u32) -> Result<usize, ApiError> {
        let n = asked.unwrap_or(default.min(self.limits.max_tokens));
        if n > self.limits.max_tokens {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "max_tokens {n} is above this server's limit of {}",
                    self.limits.max_tokens
                ),
            ));
        }
        Ok(n as usize)
    }

    pub(super) fn sampling(
        &self,
        temperature: Option<f64>,
        top_p: Option<f64>,
        seed: Option<u64>,
    ) -> Result<Sampling, ApiError> {
        let t = temperature.unwrap_or(1.0);
        let p = top_p.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature must be between 0 and 2, got {t}"),
            ));
        }
        if !(p > 0.0 && p <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p must be in (0, 1], got {p}"),
            ));
        }
        Ok(if t == 0.0 {
            Sampling::Greedy
        } else {
            Sampling::Seeded {
                temperature: t,
                top_p: p,
                seed: seed
                    .unwrap_or_else(|| self.seed ^ self.counter.fetch_add(1, Ordering::Relaxed)),
            }
        })
    }
}

/// `culture` + `steering` as both request kinds carry them.
type Steering2 = api::Steering;
