//! `culturesteer bench serve`: N concurrent clients against the server on a loopback port for a
//! bounded time; throughput, latency percentiles, errors and the process's memory.

use crate::model_opts::ModelOpts;
use crate::serve::{self, ServeArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// Concurrent clients (at most 256).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds to drive load (at most 600).
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

pub fn run(a: ServeBenchArgs) -> Result<()> {
    if a.clients == 0 || a.clients > 256 {
        bail!("--clients must be between 1 and 256");
    }
    if !(a.duration > 0.0 && a.duration <= 600.0) {
        bail!("--duration must be between 0 and 600 seconds");
    }
    let args = ServeArgs {
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
        api_key: None,
        api_key_env_in: None,
        allow_origin: vec![],
        allow_host: vec![],
    };
    let running = serve::start(&args).context("starting the server")?;
    let base = format!("http://{}", running.addr);
    let (rss0, _) = memory_mib();
    eprintln!(
        "bench serve: {} clients for {} s against {base} (loopback)",
        a.clients, a.duration
    );
    // Three request kinds in rotation: a steered chat completion, a vanilla choice, a DISCA choice.
    let kinds = ["chat", "choose-vanilla", "choose-disca"];
    let body = |k: usize, i: usize| match k {
        0 => (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": format!("Describe a typical meal ({i}).")}], "culture": "DEU", "max_tokens": a.max_tokens, "temperature": 0}),
        ),
        1 => (
            "/v1/choose",
            json!({"question": format!("Is it acceptable to lie to protect a friend? (case {i})"), "options": ["Yes", "No"], "culture": "USA", "steering": "vanilla"}),
        ),
        _ => (
            "/v1/choose",
            json!({"question": format!("Should the car swerve to spare more lives? (case {i})"), "options": ["Swerve", "Stay"], "culture": "NGA", "steering": "disca"}),
        ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let t0 = Instant::now();
    let peak = std::sync::Arc::new(std::sync::Mutex::new(0.0f64));
    let results: Vec<(usize, f64, Option<String>)> = rt.block_on(async {
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
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let client = client.clone();
            let base = base.clone();
            let reqs: Vec<(usize, &'static str, serde_json::Value)> = (0..10_000)
                .map(|i| {
                    let k = (c + i) % kinds.len();
                    let (path, b) = body(k, i * a.clients + c);
                    (k, path, b)
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for (k, path, b) in reqs {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    let r = client.post(format!("{base}{path}")).json(&b).send().await;
                    let err = match r {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(_) => None,
                            Err(e) => Some(e.to_string()),
                        },
                        Ok(r) => Some(format!("HTTP {}", r.status())),
                        Err(e) => Some(e.to_string()),
                    };
                    out.push((k, t.elapsed().as_secs_f64(), err));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        sampler.abort();
        all
    });
    let wall = t0.elapsed().as_secs_f64();
    let (rss1, hwm) = memory_mib();
    running.shutdown()?;
    let errors: Vec<&String> = results.iter().filter_map(|r| r.2.as_ref()).collect();
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
        let mut l: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == k && r.2.is_none())
            .map(|r| r.1)
            .collect();
        l.sort_by(f64::total_cmp);
        println!(
            "{:<16} {:>8} {:>10.3} {:>10.3}",
            name,
            l.len(),
            pct(&l, 0.5),
            pct(&l, 0.95)
        );
    }
    let mut all: Vec<f64> = results
        .iter()
        .filter(|r| r.2.is_none())
        .map(|r| r.1)
        .collect();
    all.sort_by(f64::total_cmp);
    println!(
        "{:<16} {:>8} {:>10.3} {:>10.3}",
        "all",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.95)
    );
    let sampled = peak.lock().map(|p| *p).unwrap_or(0.0);
    println!("memory: RSS {rss0:.0} MiB after load, {rss1:.0} MiB at the end, peak {:.0} MiB (growth ratio {:.2})", hwm.max(sampled), rss1 / rss0.max(1.0));
    if let Some(e) = errors.first() {
        println!("first error: {e}");
        bail!("{} of {} requests failed", errors.len(), results.len());
    }
    Ok(())
}
