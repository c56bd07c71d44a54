//! `culturesteer bench serve`: N concurrent clients against the server on a loopback port for a
//! bounded time; throughput, latency percentiles, errors and the process's memory.
//!
//! With `--against URL` the same run then drives another OpenAI-compatible server on this
//! machine (llama.cpp's `llama-server`, built by `scripts/build-llama-server`) with the mix that
//! both serve, chat + completions, and prints the two side by side; `--rounds N` repeats both,
//! alternating which goes first, and adds each round's ratio and their median.

use super::bench::median;
use crate::model_opts::ModelOpts;
use crate::serve::{self, ServeArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// Concurrent clients (at most 256).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds to drive load (at most 600), per server.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Tokens per chat completion.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// The server's `--slots` (generations running at once).
    #[arg(long, default_value_t = 8)]
    pub slots: usize,
    /// The server's `--prefix-cache` (prompts kept between requests; 0 = off).
    #[arg(long, default_value_t = 16)]
    pub prefix_cache: usize,
    /// The server's `--admit-wait` (milliseconds).
    #[arg(long, default_value_t = 10.0, value_name = "MS")]
    pub admit_wait: f64,
    /// Also drive another OpenAI-compatible server on this machine (e.g. llama.cpp's
    /// llama-server, see scripts/bench-serve-peer), after ours, with the mix both serve (chat +
    /// completions; our steering kinds are left out) and print both side by side. Loopback only:
    /// 127.0.0.0/8, localhost or [::1].
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,
    /// Model name to send to the --against server (default: the first one its /v1/models lists).
    #[arg(long, value_name = "NAME", requires = "against")]
    pub against_model: Option<String>,
    /// With --against: drive the two servers this many times each (at most 10), alternating
    /// which goes first, and report every round's ratio and their median beside the figures
    /// over all rounds (a busy or shared machine moves one 30 s run by ±10% or more).
    #[arg(long, default_value_t = 1, requires = "against")]
    pub rounds: usize,
    /// Also write every request as a CSV row (server, round, client, kind, start_s, latency_s,
    /// completion_tokens, error; start_s from the start of its server's round), to see where a
    /// latency tail comes from.
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelOpts,
}

/// Resident and peak memory of this process in MiB (Linux; zeros elsewhere).
fn memory_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// The base URL (scheme, host, port and any path before `/v1`) of a server to load-test, which
/// must be on loopback: this machine's own addresses are the only ones a load test may target.
pub(crate) fn loopback_base(url: &str) -> Result<String> {
    let mut u = reqwest::Url::parse(url).with_context(|| format!("--against {url}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("--against {url}: only http and https URLs are supported");
    }
    let host = u.host_str().unwrap_or("").to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "--against {url}: refusing to load-test {host}; only loopback addresses are allowed (127.0.0.0/8, localhost, [::1])"
        );
    }
    u.set_query(None);
    u.set_fragment(None);
    let s = u.to_string();
    let s = s.trim_end_matches('/');
    Ok(s.strip_suffix("/v1").unwrap_or(s).to_string())
}

/// One request's outcome: its client and kind, when it was sent (seconds from the start of
/// the drive), latency in seconds, completion tokens, error.
struct Sample {
    /// The round (1 without --rounds).
    round: usize,
    client: usize,
    kind: usize,
    start: f64,
    secs: f64,
    tokens: u64,
    err: Option<String>,
}

/// Request `i` of kind `k`: path and JSON body.
type BodyFn = dyn Fn(usize, usize) -> (&'static str, Value) + Send + Sync;

/// Drives `clients` clients against `base` until `deadline`, each rotating through the kinds.
async fn drive(
    client: reqwest::Client,
    base: String,
    n_kinds: usize,
    body: Arc<BodyFn>,
    clients: usize,
    deadline: Instant,
) -> Vec<Sample> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let base = base.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..10_000 {
                if Instant::now() >= deadline {
                    break;
                }
                let k = (c + i) % n_kinds;
                let (path, b) = body(k, i * clients + c);
                let t = Instant::now();
                let r = client.post(format!("{base}{path}")).json(&b).send().await;
                let (tokens, err) = match r {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(bytes) => (
                            serde_json::from_slice::<Value>(&bytes)
                                .ok()
                                .and_then(|v| v["usage"]["completion_tokens"].as_u64())
                                .unwrap_or(0),
                            None,
                        ),
                        Err(e) => (0, Some(e.to_string())),
                    },
                    Ok(r) => (0, Some(format!("HTTP {}", r.status()))),
                    Err(e) => (0, Some(e.to_string())),
                };
                out.push(Sample {
                    round: 1,
                    client: c,
                    kind: k,
                    start: t.duration_since(t0).as_secs_f64(),
                    secs: t.elapsed().as_secs_f64(),
                    tokens,
                    err,
                });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all
}

/// Opens the `--samples` file (before the run, so a bad path costs no run).
fn samples_writer(path: Option<&PathBuf>) -> Result<Option<csv::Writer<std::fs::File>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("--samples {}: cannot create the file", path.display()))?;
    w.write_record([
        "server",
        "round",
        "client",
        "kind",
        "start_s",
        "latency_s",
        "completion_tokens",
        "error",
    ])?;
    Ok(Some(w))
}

/// Writes each server's samples as CSV rows (see `--samples`).
fn write_samples(
    w: &mut csv::Writer<std::fs::File>,
    kinds: &[&str],
    runs: &[(&str, &[Sample])],
) -> Result<()> {
    for (server, samples) in runs {
        for s in *samples {
            w.write_record([
                server.to_string(),
                s.round.to_string(),
                s.client.to_string(),
                kinds.get(s.kind).copied().unwrap_or("?").to_string(),
                format!("{:.4}", s.start),
                format!("{:.4}", s.secs),
                s.tokens.to_string(),
                s.err.clone().unwrap_or_default(),
            ])?;
        }
    }
    w.flush().context("--samples: writing the file")?;
    Ok(())
}

fn sorted_latencies(results: &[Sample], kind: Option<usize>) -> Vec<f64> {
    let mut l: Vec<f64> = results
        .iter()
        .filter(|r| r.err.is_none() && kind.is_none_or(|k| r.kind == k))
        .map(|r| r.secs)
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

fn serve_args(a: &ServeBenchArgs) -> ServeArgs {
    ServeArgs {
        model: a.model.clone(),
        host: "127.0.0.1".into(),
        port: 0,
        served_name: None,
        max_body_bytes: 1 << 20,
        max_tokens_limit: 1024,
        max_queue: a.clients * 2,
        slots: a.slots,
        prefix_cache: a.prefix_cache,
        max_logprobs: 20,
        max_prompts: 64,
        max_request_tokens: 32_768,
        personas: None,
        data_dir: None,
        seed: 42,
        palette: crate::commands::eval::PaletteOpts::default(),
        drain_timeout: 30.0,
        admit_wait: a.admit_wait,
        api_key: None,
        api_key_env_in: None,
        allow_origin: vec![],
        allow_host: vec![],
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A client that talks straight to the target: no proxy from the environment, no redirects
/// (a redirect could move the load off loopback).
fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

pub fn run(a: ServeBenchArgs) -> Result<()> {
    if a.clients == 0 || a.clients > 256 {
        bail!("--clients must be between 1 and 256");
    }
    if !(a.duration > 0.0 && a.duration <= 600.0) {
        bail!("--duration must be between 0 and 600 seconds");
    }
    if a.rounds == 0 || a.rounds > 10 {
        bail!("--rounds must be between 1 and 10");
    }
    match a.against.clone() {
        Some(url) => run_against(&a, &url),
        None => run_ours(&a),
    }
}

/// Without --against: our server alone, with the steering kinds in the mix, and its memory.
fn run_ours(a: &ServeBenchArgs) -> Result<()> {
    let mut samples = samples_writer(a.samples.as_ref())?;
    let running = serve::start(&serve_args(a)).context("starting the server")?;
    let base = format!("http://{}", running.addr);
    let (rss0, _) = memory_mib();
    eprintln!(
        "bench serve: {} clients for {} s against {base} (loopback)",
        a.clients, a.duration
    );
    // Three request kinds in rotation: a steered chat completion, a vanilla choice, a DISCA choice.
    let kinds = ["chat", "choose-vanilla", "choose-disca"];
    let max_tokens = a.max_tokens;
    let body: Arc<BodyFn> = Arc::new(move |k, i| match k {
        0 => (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": format!("Describe a typical meal ({i}).")}], "culture": "DEU", "max_tokens": max_tokens, "temperature": 0}),
        ),
        1 => (
            "/v1/choose",
            json!({"question": format!("Is it acceptable to lie to protect a friend? (case {i})"), "options": ["Yes", "No"], "culture": "USA", "steering": "vanilla"}),
        ),
        _ => (
            "/v1/choose",
            json!({"question": format!("Should the car swerve to spare more lives? (case {i})"), "options": ["Swerve", "Stay"], "culture": "NGA", "steering": "disca"}),
        ),
    });
    let rt = runtime()?;
    let client = http_client(Duration::from_secs(600))?;
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let t0 = Instant::now();
    let peak = Arc::new(Mutex::new(0.0f64));
    let results = rt.block_on(async {
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (rss, _) = memory_mib();
                    if let Ok(mut p) = peak.lock() {
                        *p = p.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let all = drive(client, base.clone(), kinds.len(), body, a.clients, deadline).await;
        sampler.abort();
        all
    });
    let wall = t0.elapsed().as_secs_f64();
    let (rss1, hwm) = memory_mib();
    running.shutdown()?;
    let errors: Vec<&String> = results.iter().filter_map(|r| r.err.as_ref()).collect();
    println!(
        "bench serve: {} clients, {:.1} s, {} requests, {:.2} requests/s, {} errors",
        a.clients,
        wall,
        results.len(),
        results.len() as f64 / wall,
        errors.len()
    );
    println!(
        "{:<16} {:>8} {:>10} {:>10}",
        "request", "count", "p50 s", "p95 s"
    );
    for (k, name) in kinds.iter().enumerate() {
        let l = sorted_latencies(&results, Some(k));
        println!(
            "{:<16} {:>8} {:>10.3} {:>10.3}",
            name,
            l.len(),
            pct(&l, 0.5),
            pct(&l, 0.95)
        );
    }
    let all = sorted_latencies(&results, None);
    println!(
        "{:<16} {:>8} {:>10.3} {:>10.3}",
        "all",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.95)
    );
    if let Some(w) = &mut samples {
        write_samples(w, &kinds, &[("ours", &results)])?;
    }
    let sampled = peak.lock().map(|p| *p).unwrap_or(0.0);
    println!("memory: RSS {rss0:.0} MiB after load, {rss1:.0} MiB at the end, peak {:.0} MiB (growth ratio {:.2})", hwm.max(sampled), rss1 / rss0.max(1.0));
    if let Some(e) = errors.first() {
        println!("first error: {e}");
        bail!("{} of {} requests failed", errors.len(), results.len());
    }
    Ok(())
}

/// A server's busy slots per decode from its `/metrics`, over its life: ours (generations
/// held per generation step: one shared decode each with `--parallel-generation`) or
/// llama.cpp's server (`llamacpp:n_busy_slots_per_decode`, when started with `--metrics`).
/// How full the shared decodes are does not depend on the machine's speed, unlike requests/s.
/// `None` when the server reports neither.
async fn busy_per_decode(client: &reqwest::Client, base: &str) -> Option<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    busy_from_metrics(&text)
}

/// [`busy_per_decode`] from a Prometheus text exposition.
fn busy_from_metrics(text: &str) -> Option<f64> {
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    if let Some(v) = value("llamacpp:n_busy_slots_per_decode") {
        return Some(v);
    }
    let steps = value("culturesteer_generation_steps_total")?;
    let held = value("culturesteer_generation_step_streams_total")?;
    (steps > 0.0).then(|| held / steps)
}

/// The first model id a server's GET /v1/models lists.
async fn first_model(client: &reqwest::Client, base: &str) -> Result<String> {
    let r = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}/v1/models"))?;
    let status = r.status();
    if !status.is_success() {
        bail!("{base}/v1/models answered HTTP {status} (is the server still loading its model?)");
    }
    let v: Value = r
        .json()
        .await
        .with_context(|| format!("{base}/v1/models did not answer JSON"))?;
    v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{base}/v1/models lists no model"))
}

/// One server's figures over a timed run.
struct Summary {
    requests: usize,
    errors: usize,
    rps: f64,
    tok_s: f64,
    p50: f64,
    p95: f64,
    first_error: Option<String>,
}

fn summarize(results: &[Sample], wall: f64) -> Summary {
    let ok: Vec<&Sample> = results.iter().filter(|r| r.err.is_none()).collect();
    let all = sorted_latencies(results, None);
    Summary {
        requests: results.len(),
        errors: results.len() - ok.len(),
        rps: ok.len() as f64 / wall,
        tok_s: ok.iter().map(|r| r.tokens).sum::<u64>() as f64 / wall,
        p50: pct(&all, 0.5),
        p95: pct(&all, 0.95),
        first_error: results.iter().find_map(|r| r.err.clone()),
    }
}

/// With --against: ours, then the peer, with the same chat + completions mix; one table.
fn run_against(a: &ServeBenchArgs, url: &str) -> Result<()> {
    // Refuse a non-loopback target before anything else, and fail fast on an unreachable one
    // before our model is loaded.
    let peer = loopback_base(url)?;
    let mut samples = samples_writer(a.samples.as_ref())?;
    let rt = runtime()?;
    let client = http_client(Duration::from_secs(600))?;
    let probe = http_client(Duration::from_secs(10))?;
    let peer_model = match &a.against_model {
        Some(m) => m.clone(),
        None => rt
            .block_on(first_model(&probe, &peer))
            .context("the --against server")?,
    };
    let running = serve::start(&serve_args(a)).context("starting our server")?;
    let ours = format!("http://{}", running.addr);
    let our_model = rt.block_on(first_model(&probe, &ours))?;
    let threads = a.model.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let kinds = ["chat", "completion"];
    let max_tokens = a.max_tokens;
    // The same bodies for both servers but for `model`: plain OpenAI requests, greedy.
    let mix = |model: String| -> Arc<BodyFn> {
        Arc::new(move |k, i| match k {
            0 => (
                "/v1/chat/completions",
                json!({"model": model, "messages": [{"role": "user", "content": format!("Describe a typical meal ({i}).")}], "max_tokens": max_tokens, "temperature": 0}),
            ),
            _ => (
                "/v1/completions",
                json!({"model": model, "prompt": format!("A market day in a small town ({i}):"), "max_tokens": max_tokens, "temperature": 0}),
            ),
        })
    };
    eprintln!(
        "bench serve: {} clients for {} s each, ours at {ours} ({threads} threads) then the peer at {peer} (model {peer_model}); mix: chat + completions, max_tokens {max_tokens}, temperature 0",
        a.clients, a.duration
    );
    let timed = |base: &str, body: Arc<BodyFn>| -> (Vec<Sample>, f64) {
        // One untimed request first, so neither side pays its first-request costs in the figures.
        let (path, b) = body(0, usize::MAX);
        let _ = rt.block_on(async { client.post(format!("{base}{path}")).json(&b).send().await });
        let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
        let t0 = Instant::now();
        let r = rt.block_on(drive(
            client.clone(),
            base.to_string(),
            kinds.len(),
            body,
            a.clients,
            deadline,
        ));
        (r, t0.elapsed().as_secs_f64())
    };
    // Each round drives both servers in turn (the idle one waits for requests and uses no
    // CPU); every other round the peer goes first, so a machine that speeds up or slows down
    // during the run weighs on both alike.
    let (mut ours_results, mut ours_wall) = (Vec::new(), 0.0);
    let (mut peer_results, mut peer_wall) = (Vec::new(), 0.0);
    let mut ratios = Vec::with_capacity(a.rounds);
    for round in 0..a.rounds {
        let run_ours = || timed(&ours, mix(our_model.clone()));
        let run_peer = || timed(&peer, mix(peer_model.clone()));
        let ((mut o, ow), (mut p, pw)) = if round % 2 == 0 {
            let o = run_ours();
            (o, run_peer())
        } else {
            let p = run_peer();
            (run_ours(), p)
        };
        let ratio = summarize(&o, ow).rps / summarize(&p, pw).rps;
        if a.rounds > 1 {
            eprintln!(
                "bench serve: round {} of {}: ours/peer {ratio:.2}x",
                round + 1,
                a.rounds
            );
        }
        ratios.push(ratio);
        for s in o.iter_mut().chain(p.iter_mut()) {
            s.round = round + 1;
        }
        ours_results.extend(o);
        ours_wall += ow;
        peer_results.extend(p);
        peer_wall += pw;
    }
    let busy = rt.block_on(async {
        (
            busy_per_decode(&probe, &ours).await,
            busy_per_decode(&probe, &peer).await,
        )
    });
    running.shutdown()?;
    let o = summarize(&ours_results, ours_wall);
    let p = summarize(&peer_results, peer_wall);
    let rounds = if a.rounds > 1 {
        format!(", {} rounds alternating which goes first", a.rounds)
    } else {
        String::new()
    };
    println!(
        "bench serve --against {peer}: {} clients, {} s each{rounds}, chat + completions (max_tokens {}); our steering kinds (/v1/choose, culture) are not in the shared mix",
        a.clients, a.duration, a.max_tokens
    );
    println!(
        "{:<12} {:>9} {:>9} {:>11} {:>8} {:>8} {:>7}",
        "server", "requests", "req/s", "compl tok/s", "p50 s", "p95 s", "errors"
    );
    for (name, s) in [("ours", &o), ("peer", &p)] {
        println!(
            "{:<12} {:>9} {:>9.2} {:>11.1} {:>8.3} {:>8.3} {:>7}",
            name, s.requests, s.rps, s.tok_s, s.p50, s.p95, s.errors
        );
    }
    println!(
        "{:<12} {:>9} {:>8.2}x {:>10.2}x {:>8.2}x {:>7.2}x {:>7}",
        "ours/peer",
        "",
        o.rps / p.rps,
        o.tok_s / p.tok_s,
        o.p50 / p.p50,
        o.p95 / p.p95,
        ""
    );
    if a.rounds > 1 {
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
        println!(
            "ours/peer requests/s by round: {} (median {:.2}x); the table's figures are over all rounds",
            each.join(", "),
            median(&ratios)
        );
    }
    let shown = |v: Option<f64>| v.map_or("not reported".to_string(), |v| format!("{v:.2}"));
    println!(
        "busy slots per decode (how full the shared decodes are; the machine's speed does not move it): ours {}, peer {}",
        shown(busy.0),
        shown(busy.1)
    );
    println!("peer model: {peer_model}; our threads: {threads} (start the peer with the same)");
    if let Some(w) = &mut samples {
        write_samples(
            w,
            &kinds,
            &[("ours", &ours_results), ("peer", &peer_results)],
        )?;
    }
    for (name, s) in [("ours", &o), ("peer", &p)] {
        if let Some(e) = &s.first_error {
            println!("first error ({name}): {e}");
        }
    }
    if o.errors + p.errors > 0 {
        bail!(
            "{} of {} requests failed on ours, {} of {} on the peer",
            o.errors,
            o.requests,
            p.errors,
            p.requests
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::loopback_base;

    #[test]
    fn the_median_of_round_ratios() {
        assert!(super::median(&[]).is_nan());
        assert_eq!(super::median(&[0.9]), 0.9);
        assert_eq!(super::median(&[1.2, 0.8, 1.0]), 1.0);
        assert_eq!(super::median(&[1.2, 0.8, 1.0, 0.6]), 0.9);
    }

    #[test]
    fn busy_slots_per_decode_are_read_from_either_servers_metrics() {
        let peer = "# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call\n# TYPE llamacpp:n_busy_slots_per_decode counter\nllamacpp:n_busy_slots_per_decode 14.7616\n";
        assert_eq!(super::busy_from_metrics(peer), Some(14.7616));
        let ours = "culturesteer_generation_steps_total 200\nculturesteer_generation_step_streams_total 2900\n";
        assert_eq!(super::busy_from_metrics(ours), Some(14.5));
        let idle =
            "culturesteer_generation_steps_total 0\nculturesteer_generation_step_streams_total 0\n";
        assert_eq!(super::busy_from_metrics(idle), None);
        assert_eq!(super::busy_from_metrics("other_metric 3\n"), None);
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        for (url, base) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.1.2.3:8080/v1", "http://127.1.2.3:8080"),
            ("http://localhost:9000/v1/", "http://localhost:9000"),
            ("https://LOCALHOST/", "https://localhost"),
            ("http://[::1]:8080/v1", "http://[::1]:8080"),
            (
                "http://127.0.0.1:8080/llama/v1?x=1",
                "http://127.0.0.1:8080/llama",
            ),
        ] {
            assert_eq!(loopback_base(url).unwrap(), base, "{url}");
        }
        for url in [
            "http://10.0.0.1:8080",
            "http://192.168.1.5/v1",
            "http://example.com",
            "http://localhost.example.com",
            "http://[::2]:8080",
            "http://[::ffff:10.0.0.1]:8080",
            "http://0.0.0.0:8080",
            "ftp://127.0.0.1/",
            "127.0.0.1:8080",
            "not a url",
        ] {
            assert!(loopback_base(url).is_err(), "{url} was accepted");
        }
    }
}
