//! `GET /metrics` in Prometheus' text format: requests by route and status, latency
//! histograms by route, requests waiting for the model, running and waiting generations, and
//! the prefix cache (hit rate, KV held).
//!
//! Must not know: any endpoint's body or the model.

use super::state::Shared;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

/// The routes counted by name; anything else is counted as `other` (no label explosion).
const ROUTES: &[&str] = &[
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/choose",
    "/tokenize",
    "/detokenize",
    "/apply-template",
];

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 120.0];

#[derive(Default)]
struct Latency {
    /// Observations at most each bucket's bound (not cumulative here).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// What the model thread reports after each job and generation step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineGauges {
    /// Generations running (holding a stream slot) and waiting for one; the slots.
    pub running: usize,
    pub waiting: usize,
    pub slots: usize,
    /// The prefix cache, when the model keeps one.
    pub cache: Option<culturesteer_llm::backend::PrefixCacheStats>,
}

/// Counters of one server.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    engine: Mutex<EngineGauges>,
}

#[derive(Default)]
struct Inner {
    prompt_tokens: u64,
    generated_tokens: u64,
    /// Generation steps run (one shared decode each with `--parallel-generation`), and the
    /// generations they held, summed over steps: their ratio is the busy slots per step, as
    /// llama.cpp's server reports busy slots per decode.
    steps: u64,
    step_streams: u64,
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Latency>,
}

fn route_of(path: &str) -> &'static str {
    ROUTES
        .iter()
        .copied()
        .find(|r| *r == path)
        .unwrap_or("other")
}

impl Metrics {
    /// Tokens of an answered (non-streamed) completion: the rate of these is tokens/s.
    pub fn count_tokens(&self, prompt: usize, generated: usize) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.prompt_tokens += prompt as u64;
        m.generated_tokens += generated as u64;
    }

    /// A generation step that holds `streams` generations (counted as it starts).
    pub fn count_step(&self, streams: usize) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.steps += 1;
        m.step_streams += streams as u64;
    }

    /// The model thread's latest report.
    pub fn set_engine(&self, g: EngineGauges) {
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = g;
    }

    fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests.entry((route, status)).or_default() += 1;
        let l = m.latency.entry(route).or_default();
        if l.counts.is_empty() {
            l.counts = vec![0; BUCKETS.len()];
        }
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            l.counts[i] += 1;
        }
        l.sum += seconds;
        l.count += 1;
    }

    /// The text exposition.
    pub fn render(&self, queued: usize) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        family(
            &mut out,
            "culturesteer_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
        );
        for ((route, status), n) in &m.requests {
            out.push_str(&format!(
                "culturesteer_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        family(
            &mut out,
            "culturesteer_request_duration_seconds",
            "histogram",
            "Time to answer a request (until its headers; a stream runs on after).",
        );
        for (route, l) in &m.latency {
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(&l.counts) {
                cumulative += c;
                out.push_str(&format!(
                    "culturesteer_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "culturesteer_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n",
                l.count
            ));
            out.push_str(&format!(
                "culturesteer_request_duration_seconds_sum{{route=\"{route}\"}} {}\n",
                l.sum
            ));
            out.push_str(&format!(
                "culturesteer_request_duration_seconds_count{{route=\"{route}\"}} {}\n",
                l.count
            ));
        }
        family(
            &mut out,
            "culturesteer_tokens_total",
            "counter",
            "Tokens of answered non-streamed completions, by kind (rate() gives tokens/s).",
        );
        out.push_str(&format!(
            "culturesteer_tokens_total{{kind=\"prompt\"}} {}\nculturesteer_tokens_total{{kind=\"generated\"}} {}\n",
            m.prompt_tokens, m.generated_tokens
        ));
        family(
            &mut out,
            "culturesteer_queue_depth",
            "gauge",
            "Requests waiting for or running on the model thread.",
        );
        out.push_str(&format!("culturesteer_queue_depth {queued}\n"));
        let e = *self.engine.lock().unwrap_or_else(|e| e.into_inner());
        let gauge = |out: &mut String, name: &str, help: &str, v: String| {
            family(out, name, "gauge", help);
            out.push_str(&format!("{name} {v}\n"));
        };
        gauge(
            &mut out,
            "culturesteer_generations_running",
            "Generations holding a stream slot (continuous generation).",
            e.running.to_string(),
        );
        gauge(
            &mut out,
            "culturesteer_generations_waiting",
            "Generations waiting for a free stream slot.",
            e.waiting.to_string(),
        );
        gauge(
            &mut out,
            "culturesteer_stream_slots",
            "Stream slots (--slots).",
            e.slots.to_string(),
        );
        family(
            &mut out,
            "culturesteer_generation_steps_total",
            "counter",
            "Generation steps run (one token for every running generation).",
        );
        out.push_str(&format!(
            "culturesteer_generation_steps_total {}\n",
            m.steps
        ));
        family(
            &mut out,
            "culturesteer_generation_step_streams_total",
            "counter",
            "Generations held by the steps, summed over steps (divided by the steps: busy slots per step).",
        );
        out.push_str(&format!(
            "culturesteer_generation_step_streams_total {}\n",
            m.step_streams
        ));
        if let Some(c) = e.cache {
            family(
                &mut out,
                "culturesteer_prefix_cache_tokens_total",
                "counter",
                "Prompt tokens planned with the prefix cache, and those loaded from it instead of decoded (their ratio is the hit rate).",
            );
            out.push_str(&format!(
                "culturesteer_prefix_cache_tokens_total{{kind=\"planned\"}} {}\nculturesteer_prefix_cache_tokens_total{{kind=\"loaded\"}} {}\n",
                c.tokens_planned, c.tokens_loaded
            ));
            let rate = if c.tokens_planned == 0 {
                0.0
            } else {
                c.tokens_loaded as f64 / c.tokens_planned as f64
            };
            gauge(
                &mut out,
                "culturesteer_prefix_cache_hit_rate",
                "Share of planned prompt tokens loaded from the prefix cache, since start.",
                format!("{rate:.4}"),
            );
            gauge(
                &mut out,
                "culturesteer_prefix_cache_sequences",
                "Prompts the prefix cache holds.",
                c.held.to_string(),
            );
            gauge(
                &mut out,
                "culturesteer_prefix_cache_slots",
                "Prompts the prefix cache may hold (--prefix-cache).",
                c.slots.to_string(),
            );
            gauge(
                &mut out,
                "culturesteer_prefix_cache_tokens_held",
                "Tokens of KV the prefix cache holds.",
                c.tokens_held.to_string(),
            );
        }
        out
    }
}

/// The middleware: times and counts every request.
pub(super) async fn record(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let t0 = Instant::now();
    let res = next.run(req).await;
    s.metrics
        .observe(route, res.status().as_u16(), t0.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`.
pub(super) async fn metrics(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(s.queued.load(Ordering::SeqCst)),
    )
        .into_response()
}

/// Writes a metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_exposition_counts_routes_statuses_and_buckets() {
        let m = Metrics::default();
        m.observe(route_of("/v1/choose"), 200, 0.02);
        m.observe(route_of("/v1/choose"), 200, 3.0);
        m.observe(route_of("/v1/choose"), 422, 0.001);
        m.observe(route_of("/nope/123"), 404, 0.001);
        let text = m.render(2);
        assert!(
            text.contains("culturesteer_requests_total{route=\"/v1/choose\",status=\"200\"} 2\n")
        );
        assert!(text.contains("culturesteer_requests_total{route=\"other\",status=\"404\"} 1\n"));
        assert!(text.contains(
            "culturesteer_request_duration_seconds_bucket{route=\"/v1/choose\",le=\"0.025\"} 2\n"
        ));
        assert!(text.contains(
            "culturesteer_request_duration_seconds_bucket{route=\"/v1/choose\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("culturesteer_queue_depth 2\n"));
        assert!(text.contains("# TYPE culturesteer_request_duration_seconds histogram\n"));
        assert_eq!(
            text.matches("# HELP ").count(),
            text.matches("# TYPE ").count()
        );
    }
}
