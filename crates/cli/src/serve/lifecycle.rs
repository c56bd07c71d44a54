//! Starting and stopping: load the model, start the model thread and the HTTP thread, and
//! shut both down gracefully (Ctrl-C, SIGTERM or `Running::shutdown`).

use super::state::Shared;
use super::worker::{Job, Worker};
use super::{router, Access, AppState, Limits, ServeArgs};
use anyhow::{bail, Context, Result};
use culturesteer_core::CountryCode;
use culturesteer_data::moral_machine::MoralMachinePreferences;
use culturesteer_data::DataSource;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc};

/// A running server: its address and a handle to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, then stops the model thread.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the server thread panicked"),
            None => Ok(()),
        }
    }
}

/// The model name to report: `--served-name`, else the file stem or the upstream name.
fn served_name(
    args: &ServeArgs,
    identity_path: Option<&std::path::Path>,
    describe: &culturesteer_llm::ModelDescription,
) -> String {
    if let Some(n) = &args.served_name {
        return n.clone();
    }
    match identity_path {
        Some(p) => p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "culturesteer".into()),
        None => describe
            .source
            .rsplit(" model ")
            .next()
            .unwrap_or("culturesteer")
            .to_string(),
    }
}

/// The countries a request may name as its culture, with their names (from the Moral Machine
/// preferences).
pub(in crate::serve) fn served_countries(
    data: &DataSource,
) -> Result<BTreeMap<CountryCode, String>> {
    let mm = MoralMachinePreferences::load(data)?;
    Ok(mm
        .countries()
        .into_iter()
        .filter_map(|c| Some((c, mm.get(c).ok()?.country_name.clone())))
        .collect())
}

/// Starts the model thread on `worker` (a queue of `limits.max_queue` jobs) and builds the
/// state the handlers share.
pub(in crate::serve) fn spawn_state(
    mut worker: Worker,
    name: String,
    limits: Limits,
    countries: BTreeMap<CountryCode, String>,
    seed: u64,
    access: Access,
) -> Result<(Shared, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel::<Job>(limits.max_queue);
    let metrics = Arc::new(super::metrics::Metrics::default());
    worker.metrics = Some(metrics.clone());
    let model_thread = std::thread::Builder::new()
        .name("model".into())
        .spawn(move || worker.run(rx))
        .context("starting the model thread")?;
    let state = Arc::new(AppState {
        jobs: tx,
        queued: Arc::new(AtomicUsize::new(0)),
        name,
        limits,
        countries,
        counter: AtomicU64::new(0),
        seed,
        access,
        metrics,
    });
    Ok((state, model_thread))
}

/// How long a client may take to send a request's headers (slow senders are cut off).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until `stop` completes, each served by hyper's HTTP/1 with a header
/// read timeout; then waits for the open connections to finish their requests.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Above `access::MAX_HEADERS` / `MAX_HEADER_BYTES`, so oversized headers reach the
        // access check and get a JSON 431; only requests past these get hyper's bare one.
        .max_headers(4 * super::access::MAX_HEADERS)
        .max_buf_size(1 << 20);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let (stream, _) = match conn {
                    Ok(c) => c,
                    // Out of file descriptors and the like: wait a moment, go on.
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The next Ctrl-C (SIGINT) or SIGTERM.
async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Loads the model and starts serving on a background thread; returns once the port is bound.
pub fn start(args: &ServeArgs) -> Result<Running> {
    let data = match &args.data_dir {
        Some(d) => DataSource::dir(d),
        None => DataSource::Embedded,
    };
    let countries = served_countries(&data)?;
    if !(args.drain_timeout.is_finite() && args.drain_timeout > 0.0 && args.drain_timeout <= 3600.0)
    {
        bail!("--drain-timeout must be a number of seconds in (0, 3600]");
    }
    if !(args.admit_wait.is_finite() && (0.0..=1000.0).contains(&args.admit_wait)) {
        bail!("--admit-wait must be a number of milliseconds in [0, 1000]");
    }
    if args.max_queue == 0
        || args.max_prompts == 0
        || args.max_request_tokens == 0
        || args.max_body_bytes < 1024
    {
        bail!("--max-queue and --max-prompts must be positive and --max-body-bytes at least 1024");
    }
    if args.slots == 0 || args.slots > 64 || args.prefix_cache > 128 {
        bail!("--slots must be between 1 and 64 and --prefix-cache at most 128");
    }
    let mut spec = args.model.spec()?;
    if let culturesteer_llm::spec::ModelSpec::Gguf(g) = &mut spec {
        g.config.stream_slots = args.slots;
        g.config.prefix_cache = args.prefix_cache;
    }
    let opened = spec.open()?;
    let name = served_name(args, opened.path.as_deref(), &opened.lm.describe());
    let disca = culturesteer_registry::disca_preset(culturesteer_registry::Preset::Paper);
    let mut worker = Worker::new(
        opened.lm,
        data.clone(),
        args.personas.clone(),
        disca,
        args.seed,
    );
    worker.palette = Some(args.palette.settings().parts(&data)?);
    worker.max_waiting = args.max_queue;
    worker.admit_wait = std::time::Duration::from_secs_f64(args.admit_wait / 1000.0);
    let limits = Limits {
        max_tokens: args.max_tokens_limit,
        max_queue: args.max_queue,
        max_logprobs: args.max_logprobs,
        max_prompts: args.max_prompts,
        max_request_tokens: args.max_request_tokens,
    };
    let access = args.access()?;
    if !access.loopback && access.api_key.is_none() {
        eprintln!(
            "warning: serving on {} without --api-key: anyone who can reach this address can use the model",
            args.host
        );
    }
    let (state, model_thread) = spawn_state(worker, name, limits, countries, args.seed, access)?;
    let app = router(state, args.max_body_bytes);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((
            args.host.as_str(),
            args.port,
        )))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = std::time::Duration::from_secs_f64(args.drain_timeout);
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || -> Result<()> {
            rt.block_on(async move {
                let stop = async move {
                    let by_signal = tokio::select! {
                        _ = signal() => true,
                        _ = stop_rx => false,
                    };
                    eprintln!(
                        "shutting down: finishing requests in flight (at most {} s; a second Ctrl-C or SIGTERM exits at once)",
                        drain.as_secs_f64()
                    );
                    if by_signal {
                        // A request that never completes (a half-sent body, a stuck client)
                        // must not hold the process: a second signal or the drain deadline
                        // ends it.
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = signal() => eprintln!("second signal: exiting now"),
                                _ = tokio::time::sleep(drain) => eprintln!(
                                    "requests still open after {} s: exiting",
                                    drain.as_secs_f64()
                                ),
                            }
                            std::process::exit(1);
                        });
                    }
                };
                serve_connections(listener, app, stop).await
            })?;
            // The router (and with it the job sender) is gone: the model thread ends.
            model_thread
                .join()
                .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
            Ok(())
        })
        .context("starting the HTTP thread")?;
    Ok(Running {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

pub fn run(args: ServeArgs) -> Result<()> {
    let Running {
        addr,
        stop: _stop,
        thread,
    } = start(&args)?;
    eprintln!("culturesteer serve: listening on http://{addr}");
    eprintln!("  try: curl -s http://{addr}/v1/choose -H 'Content-Type: application/json' -d '{{\"question\": \"…\", \"options\": [\"…\", \"…\"], \"culture\": \"VNM\"}}'");
    // `_stop` stays alive: dropping it would stop the server. Ctrl-C or SIGTERM stop it.
    match thread.map(|t| t.join()) {
        Some(Ok(r)) => r,
        Some(Err(_)) => bail!("the server thread panicked"),
        None => Ok(()),
    }
}
