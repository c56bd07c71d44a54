//! Interoperability with software no one here wrote, on the real default model:
//!
//! * the official `openai` Python client against `culturesteer serve`
//!   (`openai_client.py` next to this file runs the checks);
//! * `culturesteer eval --model-url` against llama-cpp-python's OpenAI-compatible server.
//!
//! Both need Python packages that `scripts/setup` installs into a virtual environment in the
//! cache directory (`<cache>/py`, next to `<cache>/models`). Without them a test prints why and
//! passes, except under CI (`CI` set), where a missing package fails it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bin, eval, probs};

/// The default model's file, as `culturesteer model path` prints it.
fn model_path() -> PathBuf {
    let o = bin().args(["model", "path"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

/// The interpreter of `scripts/setup`'s virtual environment (`<cache>/py`), else `python3`.
fn python() -> PathBuf {
    let cache = model_path()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap();
    let venv = cache.join("py").join("bin").join("python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// `Some(python)` when it can import `module`; otherwise `None` after a loud message, or a
/// panic under CI (where `scripts/setup` must have installed it).
fn python_with(module: &str, what: &str) -> Option<PathBuf> {
    let py = python();
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "{} cannot import {module} ({what}); run scripts/setup to install it",
        py.display()
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `culturesteer serve` on the default model and a free loopback port: (process, address).
fn start_serve() -> (Proc, String) {
    let mut child = bin()
        .args(["serve", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start culturesteer serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let child = Proc(child);
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(a) = line.split("listening on http://").nth(1) {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[test]
fn real_model_openai_python_client_against_serve() {
    let Some(py) = python_with("openai", "the official OpenAI client") else {
        return;
    };
    let (_server, addr) = start_serve();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let o = Command::new(&py)
        .arg(&script)
        .args(["--base-url", &format!("http://{addr}/v1")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "openai_client.py failed:\n{out}");
    assert!(out.contains("checks passed"), "{out}");
}

/// One `GET`/`POST` over HTTP/1.1 with `Connection: close`: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    Ok((status, body))
}

/// llama-cpp-python's server on the default model and a free loopback port, ready to answer.
fn start_llama_cpp_python(py: &Path, log: &Path) -> (Proc, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let model = model_path();
    assert!(
        model.exists(),
        "{} missing: run scripts/setup",
        model.display()
    );
    let child = Command::new(py)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&model)
        .args(["--model_alias", "gemma-3-270m", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--n_ctx", "2048"])
        .args(["--n_threads", "2", "--n_threads_batch", "2"])
        // The GGUF has no chat template (culturesteer renders Gemma's built-in format); without
        // this the server falls back to llama-2's format.
        .args(["--chat_format", "gemma"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .expect("start llama_cpp.server");
    let mut child = Proc(child);
    let addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            panic!(
                "llama_cpp.server exited ({st}):\n{}",
                std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
            );
        }
        if matches!(http(&addr, "GET", "/v1/models", ""), Ok((200, _))) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "llama_cpp.server did not answer within 180 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    (child, addr)
}

fn argmax(p: &[f64]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

/// llama-cpp-python's server has no `/tokenize` (its tokenizer is under `/extras/`, always adds
/// BOS) and its `/v1/completions` takes text prompts only, one per request, so the exact
/// token-id protocol is out of reach: `--model-url` falls back to `/v1/chat/completions`, where
/// label scores are read by text from the top log-probs of the first generated token (a label
/// outside the top 20 gets the smallest listed one). The check is what the chat protocol
/// promises: the same choices as the local model, on MultiTP's A/B items, whose prompts are
/// chat prompts either way (GOQA's completion-style prompt becomes a user turn over the chat
/// protocol, a different prompt, so its numbers are not comparable with a local run). The
/// numbers beneath agree too: the server's echoed log-prob of a continuation equals the local
/// engine's.
#[test]
fn real_model_interop_llama_cpp_python_server_same_choices() {
    let Some(py) = python_with("llama_cpp.server.app", "llama-cpp-python's server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = start_llama_cpp_python(&py, &dir.path().join("llama-cpp-python.log"));

    // The same GGUF gives the same numbers in both engines. First request on a fresh server
    // (its KV-cache prefix reuse changes how later prompts are split into decode calls, which
    // moves log-probs in the last digits).
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/completions",
        &serde_json::json!({ "prompt": "The capital of France is Paris", "echo": true, "max_tokens": 1, "logprobs": 1, "temperature": 0 }).to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let lp = &v["choices"][0]["logprobs"];
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let paris = tokens.iter().position(|t| *t == " Paris").unwrap();
    let remote = lp["token_logprobs"][paris].as_f64().unwrap();
    let o = bin()
        .args([
            "score",
            "--prompt",
            "The capital of France is",
            "--candidates",
            " Paris",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let local: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let local = local["continuations"][0]["logprob"].as_f64().unwrap();
    eprintln!(
        "log p(' Paris' | 'The capital of France is'): local {local}, llama-cpp-python {remote}"
    );
    assert!(
        (local - remote).abs() <= 1e-3,
        "local {local} vs llama-cpp-python {remote}"
    );

    // MultiTP's A/B protocol (next-token labels) with the question alone: no system message,
    // which llama-cpp-python's gemma format would drop (llama.cpp's merges it into the user turn).
    let args = [
        "multitp-disca",
        "--method",
        "vanilla",
        "--countries",
        "USA,JPN",
        "--limit",
        "6",
        "--bootstrap",
        "0",
    ];
    let local = eval(&args, &dir.path().join("local"));
    let url = format!("http://{addr}");
    let out = dir.path().join("llama-cpp-python");
    let remote = eval(&[args.as_slice(), &["--model-url", &url]].concat(), &out);
    // The protocol `--http-api auto` chose is part of the run's model identity.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let id = manifest["model_sha256"].as_str().unwrap();
    assert!(id.ends_with("api chat"), "model identity {id:?}");
    assert_eq!(local.len(), remote.len());
    assert!(!local.is_empty());
    let key = |r: &serde_json::Value| format!("{} {} {}", r["method"], r["country"], r["item_id"]);
    let mut max_delta = 0f64;
    for l in &local {
        let r = remote
            .iter()
            .find(|r| key(r) == key(l))
            .unwrap_or_else(|| panic!("missing {}", key(l)));
        let (pl, pr) = (probs(l), probs(r));
        for (a, b) in pl.iter().zip(&pr) {
            max_delta = max_delta.max((a - b).abs());
        }
        assert_eq!(
            argmax(&pl),
            argmax(&pr),
            "{}: local {pl:?} llama-cpp-python {pr:?}",
            key(l)
        );
    }
    eprintln!(
        "{} items: same choices; max |Δp| local vs llama-cpp-python (chat protocol) = {max_delta:.5}",
        local.len()
    );
}
