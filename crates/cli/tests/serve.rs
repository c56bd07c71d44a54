//! `culturesteer serve` on the real default model: a benchmark through the HTTP backend gives
//! the local scores, streaming equals non-streaming, and bad requests get the right status
//! while the server keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{eval, probs};

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start culturesteer serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            if let Some(a) = line.split("listening on http://").nth(1) {
                break a.trim().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// One raw HTTP/1.1 exchange: (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        read_response(&mut s)
    }

    fn json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = self.http("POST", path, &body.to_string());
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

fn key(r: &serde_json::Value) -> String {
    format!("{} {} {}", r["method"], r["country"], r["item_id"])
}

#[test]
fn real_model_benchmarks_through_http_equal_local_scores() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    // MultiTP with DISCA (next-token labels, persona panels, both label orders) and GOQA with
    // Modular Pluralism's top-k reader (top-k lists through the server).
    for (i, args) in [
        vec![
            "multitp-disca",
            "--method",
            "vanilla,disca",
            "--countries",
            "USA",
            "--limit",
            "4",
        ],
        vec![
            "goqa",
            "--method",
            "vanilla,country-prompt",
            "--countries",
            "NGA",
            "--limit",
            "3",
        ],
    ]
    .iter()
    .enumerate()
    {
        let local = eval(args, &dir.path().join(format!("local{i}")));
        let mut remote_args = args.clone();
        remote_args.extend(["--model-url", url.as_str()]);
        let remote = eval(&remote_args, &dir.path().join(format!("http{i}")));
        assert_eq!(local.len(), remote.len());
        assert!(!local.is_empty());
        for l in &local {
            let r = remote
                .iter()
                .find(|r| key(r) == key(l))
                .unwrap_or_else(|| panic!("missing {}", key(l)));
            for (a, b) in probs(l).iter().zip(probs(r)) {
                assert!((a - b).abs() <= 1e-3, "{}: local {a} http {b}", key(l));
            }
        }
    }
    // Continuation scoring (echo) and prompt scoring agree with the local backend too.
    let score = |extra: &[&str]| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
            .args([
                "score",
                "--prompt",
                "The capital of France is",
                "--candidates",
                " Paris, London",
                "--top-k",
                "5",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (l, r) = (score(&[]), score(&["--model-url", url.as_str()]));
    for i in 0..2 {
        let (a, b) = (
            l["continuations"][i]["logprob"].as_f64().unwrap(),
            r["continuations"][i]["logprob"].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-3, "continuation {i}: {a} vs {b}");
    }
    for i in 0..5 {
        assert_eq!(l["top_k"][i]["token"], r["top_k"][i]["token"]);
        assert_eq!(l["top_k"][i]["piece"], r["top_k"][i]["piece"]);
    }

    // The chat-completions path (servers without a tokenizer): label scores read by text from
    // the top log-probs of the first generated token give the local numbers too, and chat
    // generation gives the local greedy text.
    let chat = ["--model-url", url.as_str(), "--http-api", "chat"];
    let args = [
        "multitp-disca",
        "--method",
        "vanilla,country-prompt",
        "--countries",
        "USA",
        "--limit",
        "3",
    ];
    let local = eval(&args, &dir.path().join("chat-local"));
    let remote = eval(&[args.as_slice(), &chat].concat(), &dir.path().join("chat"));
    assert_eq!(local.len(), remote.len());
    // A label outside the server's top 20 gets the smallest listed log-prob (an upper bound),
    // so the numbers are close, not equal: the preferred option must agree.
    let argmax = |p: Vec<f64>| (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    for l in &local {
        let r = remote
            .iter()
            .find(|r| key(r) == key(l))
            .unwrap_or_else(|| panic!("missing {}", key(l)));
        assert_eq!(
            argmax(probs(l)),
            argmax(probs(r)),
            "chat API, {}: local {:?} http {:?}",
            key(l),
            probs(l),
            probs(r)
        );
    }
    // The top list itself comes through exactly.
    let top = |extra: &[&str]| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
            .args([
                "score",
                "--chat",
                "--prompt",
                "Which is larger, 2 or 3? Answer with one digit.",
                "--top-k",
                "10",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (l, r) = (top(&[]), top(&chat));
    for i in 0..10 {
        assert_eq!(
            l["top_k"][i]["piece"], r["top_k"][i]["piece"],
            "chat API top-k entry {i}"
        );
        let (a, b) = (
            l["top_k"][i]["logprob"].as_f64().unwrap(),
            r["top_k"][i]["logprob"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-3,
            "chat API top-k entry {i}: {a} vs {b}"
        );
    }
    // GOQA's prompts are raw completions: through the chat API they become one user turn, so
    // the numbers differ from a local run, but the run completes with valid distributions.
    let goqa = eval(
        &[
            &[
                "goqa",
                "--method",
                "vanilla",
                "--countries",
                "NGA",
                "--limit",
                "2",
            ][..],
            &chat,
        ]
        .concat(),
        &dir.path().join("chat-goqa"),
    );
    assert_eq!(goqa.len(), 2);
    for r in &goqa {
        assert!((probs(r).iter().sum::<f64>() - 1.0).abs() < 1e-9, "{r}");
    }
    let generate = |extra: &[&str]| -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_culturesteer"))
            .args([
                "generate",
                "--chat",
                "--prompt",
                "Name one colour.",
                "--max-tokens",
                "12",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let (l, r) = (generate(&[]), generate(&chat));
    assert!(
        l.status.success() && r.status.success(),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&l.stdout),
        String::from_utf8_lossy(&r.stdout)
    );
    // Whole-continuation scores need echo, which the chat API lacks: a one-line error.
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "score",
            "--prompt",
            "The capital of France is",
            "--candidates",
            " Paris, London",
        ])
        .args(chat)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("echo") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn real_model_streaming_choose_and_abuse() {
    let server = Server::start(&[
        "--max-body-bytes",
        "65536",
        "--max-queue",
        "2",
        "--max-tokens-limit",
        "512",
        "--palette-draft-tokens",
        "8",
        "--palette-summary-tokens",
        "8",
    ]);
    // Streaming gives the same greedy text as a plain request.
    let body = serde_json::json!({"messages": [{"role": "user", "content": "Name three rivers."}], "max_tokens": 12, "temperature": 0});
    let (status, plain) = server.json("/v1/chat/completions", body.clone());
    assert_eq!(status, 200, "{plain}");
    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let (status, sse) = server.http("POST", "/v1/chat/completions", &streamed.to_string());
    assert_eq!(status, 200);
    let mut text = String::new();
    let mut done = false;
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            done = true;
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert!(done, "{sse}");
    assert_eq!(
        text,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let roles = sse
        .lines()
        .filter(|l| l.contains("\"role\":\"assistant\""))
        .count();
    assert_eq!(roles, 1, "the role is named in the first chunk only: {sse}");

    // Chat log-probs: one entry per generated token, each with its top list; the greedy token
    // is the first of its list.
    let mut with_lp = body.clone();
    with_lp["logprobs"] = true.into();
    with_lp["top_logprobs"] = 3.into();
    let (status, lp) = server.json("/v1/chat/completions", with_lp.clone());
    assert_eq!(status, 200, "{lp}");
    assert_eq!(lp["choices"][0]["message"], plain["choices"][0]["message"]);
    let content = lp["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert!(!content.is_empty() && content.len() <= 12);
    for e in content {
        let top = e["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3, "{e}");
        assert!(
            (top[0]["logprob"].as_f64().unwrap() - e["logprob"].as_f64().unwrap()).abs() < 1e-9,
            "{e}"
        );
    }
    with_lp["top_logprobs"] = 500.into();
    assert_eq!(server.json("/v1/chat/completions", with_lp).0, 422);

    // /v1/choose: steered probabilities over the options, with DISCA's diagnostics.
    let (status, c) = server.json(
        "/v1/choose",
        serde_json::json!({"question": "Should the car swerve to save five pedestrians and kill its passenger?", "options": ["Swerve", "Stay"], "culture": "NGA"}),
    );
    assert_eq!(status, 200, "{c}");
    let p: f64 = c["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["probability"].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-9);
    assert_eq!(c["steering"], "disca");
    assert!(c["diagnostics"]["delta_micro"].is_number(), "{c}");

    // Cultural Palette through /v1/choose: five drafts, the meta agent's summary, its decision.
    let (status, c) = server.json(
        "/v1/choose",
        serde_json::json!({"question": "Is it acceptable to eat with your left hand at a shared meal?", "options": ["Yes", "No", "It depends"], "culture": "NGA", "steering": "palette"}),
    );
    assert_eq!(status, 200, "{c}");
    let p: f64 = c["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["probability"].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-9, "{c}");
    assert_eq!(c["steering"], "palette");
    assert_eq!(
        c["diagnostics"]["drafts"].as_array().unwrap().len(),
        5,
        "{c}"
    );
    assert!(
        c["diagnostics"]["summary"].is_string() && c["diagnostics"]["continent"] == "Africa",
        "{c}"
    );
    let (status, e) = server.json("/v1/chat/completions", serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "culture": "NGA", "steering": "palette"}));
    assert_eq!(status, 422, "{e}");

    // Bad requests: the right status and an OpenAI-style error.
    let cases: Vec<(&str, String, u16)> = vec![
        ("/v1/chat/completions", "{\"messages\": [".into(), 400),
        ("/v1/completions", serde_json::json!({"prompt": "x", "max_tokens": -5}).to_string(), 422),
        ("/v1/completions", serde_json::json!({"prompt": "x", "max_tokens": 100000}).to_string(), 422),
        ("/v1/chat/completions", serde_json::json!({"messages": [{"role": "user", "content": "x"}], "culture": "XYZ"}).to_string(), 422),
        ("/v1/choose", serde_json::json!({"question": "q", "options": ["a", "b", "c"], "culture": "USA", "steering": "disca"}).to_string(), 422),
        ("/v1/chat/completions", serde_json::json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}).to_string(), 404),
        ("/no/such/route", "{}".into(), 404),
        ("/v1/completions", format!("{{\"prompt\": \"{}\"}}", "a".repeat(100_000)), 413),
    ];
    for (path, body, want) in &cases {
        let (status, text) = server.http("POST", path, body);
        assert_eq!(
            status,
            *want,
            "{path} {}: {text}",
            &body[..body.len().min(80)]
        );
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }

    // Oversized headers (40 KiB, and 150 lines) get a JSON 431, not hyper's empty one.
    for (lines, len) in [(1, 40 * 1024), (150, 8)] {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let extra: String = (0..lines)
            .map(|i| format!("X-Filler-{i}: {}\r\n", "y".repeat(len)))
            .collect();
        write!(
            s,
            "GET /v1/models HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
        )
        .unwrap();
        let (status, text) = read_response(&mut s);
        assert_eq!(status, 431, "{lines} lines: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("431: {e}: {text}"));
        assert_eq!(v["error"]["code"], 431, "{text}");
    }

    // A client that disconnects mid-stream: the server stops that generation and goes on.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let b = serde_json::json!({"prompt": "Once upon a time", "max_tokens": 400, "stream": true})
        .to_string();
    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()).unwrap();
    let mut first = [0u8; 256];
    let n = s.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    let t0 = Instant::now();
    let (status, _) = server.json(
        "/v1/completions",
        serde_json::json!({"prompt": "Hello", "max_tokens": 2, "temperature": 0}),
    );
    assert_eq!(status, 200);
    // Far less than 400 tokens' worth of time: the abandoned stream was cut short.
    assert!(t0.elapsed() < Duration::from_secs(60));

    // A full queue answers 429 with Retry-After instead of waiting without bound.
    let addr = server.addr.clone();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let b = serde_json::json!({"prompt": "Tell me a story", "max_tokens": 48, "temperature": 0}).to_string();
                let mut s = TcpStream::connect(&addr).unwrap();
                write!(s, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len()).unwrap();
                read_response(&mut s).0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    let (status, h) = server.http("GET", "/health", "");
    assert_eq!(status, 200, "{h}");
}

#[test]
fn real_model_sigterm_stops_the_server_gracefully() {
    let mut server = Server::start(&[]);
    let (status, _) = server.http("GET", "/health", "");
    assert_eq!(status, 200);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            assert!(st.success(), "{st:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the server to exit; returns (seconds, exit status).
fn wait_exit(server: &mut Server, limit: Duration) -> (f64, std::process::ExitStatus) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            return (t0.elapsed().as_secs_f64(), st);
        }
        assert!(t0.elapsed() < limit, "server did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn real_model_half_sent_requests_do_not_block_shutdown() {
    let kill = |server: &Server, sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &server.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    let half_sent = |server: &Server| {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        write!(s, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pro").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s
    };
    // The drain deadline ends a shutdown that a half-sent body would hold for its 30 s.
    let mut server = Server::start(&["--drain-timeout", "2"]);
    let _open = half_sent(&server);
    kill(&server, "-TERM");
    let (took, st) = wait_exit(&mut server, Duration::from_secs(20));
    assert!(took < 10.0 && !st.success(), "{took} s, {st:?}");
    // A second signal exits at once.
    let mut server = Server::start(&[]);
    let _open = half_sent(&server);
    kill(&server, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    kill(&server, "-INT");
    let (took, _) = wait_exit(&mut server, Duration::from_secs(20));
    assert!(
        took < 10.0,
        "{took} s after the second signal (drain deadline is 30 s)"
    );
}

#[test]
fn bad_model_servers_are_one_line_errors() {
    // Nothing listens: a clear connection error, exit code 2, no panic.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "score",
            "--prompt",
            "x",
            "--top-k",
            "1",
            "--model-url",
            &dead,
            "--http-retries",
            "0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot connect") && err.lines().count() == 1,
        "{err}"
    );

    // A server that answers garbage.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().take(8) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!",
            );
        }
    });
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "score",
            "--prompt",
            "x",
            "--top-k",
            "1",
            "--model-url",
            &format!("http://{addr}"),
            "--http-retries",
            "0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid JSON") && err.lines().count() == 1,
        "{err}"
    );
}

/// DISCA `/v1/choose` twice for one culture: the second question loads the culture's persona
/// prefixes from the prefix cache (the hit rate shows in `/metrics`), and the answers equal
/// those of a server without the cache.
#[test]
fn real_model_choose_reuses_persona_prefixes_across_requests() {
    let questions = [
        "Should the car swerve to save five pedestrians and kill its passenger?",
        "Should a doctor lie to a patient to keep them calm before surgery?",
    ];
    let ask = |server: &Server, q: &str| {
        let (status, c) = server.json(
            "/v1/choose",
            serde_json::json!({"question": q, "options": ["Yes", "No"], "culture": "DEU", "steering": "disca"}),
        );
        assert_eq!(status, 200, "{c}");
        c["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["probability"].as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    let cached = Server::start(&["--prefix-cache", "16"]);
    let with: Vec<Vec<f64>> = questions.iter().map(|q| ask(&cached, q)).collect();
    let (status, metrics) = cached.http("GET", "/metrics", "");
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    let rate = value("culturesteer_prefix_cache_hit_rate");
    assert!(rate > 0.1, "hit rate {rate}\n{metrics}");
    assert!(
        value("culturesteer_prefix_cache_sequences") >= 4.0,
        "{metrics}"
    );
    drop(cached);
    let plain = Server::start(&["--prefix-cache", "0"]);
    let without: Vec<Vec<f64>> = questions.iter().map(|q| ask(&plain, q)).collect();
    assert_eq!(with, without, "the prefix cache changed an answer");
}

#[test]
fn real_model_parallel_generation_co_schedules_new_prompts_with_running_generations() {
    let server = Server::start(&["--parallel-generation", "--ctx", "256", "--slots", "4"]);
    let addr = server.addr.clone();
    let long = format!(
        "{} Tell me about the sea.",
        "The weather was calm and the harbour was quiet that morning. ".repeat(12)
    );
    // Several generations at once, one with a long prompt, one streamed.
    let prompts = [
        "Once upon a time",
        "The capital of France is",
        long.as_str(),
    ];
    let handles: Vec<_> = prompts
        .iter()
        .map(|p| {
            let addr = addr.clone();
            let b = serde_json::json!({"prompt": p, "max_tokens": 24, "temperature": 0});
            std::thread::spawn(move || {
                let b = b.to_string();
                let mut s = TcpStream::connect(&addr).unwrap();
                write!(s, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len()).unwrap();
                let (status, text) = read_response(&mut s);
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                (status, v)
            })
        })
        .collect();
    let streamed = serde_json::json!({"prompt": "Name three rivers.", "max_tokens": 16, "temperature": 0, "stream": true});
    let (status, sse) = server.http("POST", "/v1/completions", &streamed.to_string());
    assert_eq!(status, 200, "{sse}");
    assert!(sse.contains("[DONE]"), "{sse}");
    assert!(
        sse.contains("\"finish_reason\":\"length\"") || sse.contains("\"finish_reason\":\"stop\""),
        "{sse}"
    );
    // A prompt over the context is refused before it starts, while the others run.
    let (status, e) = server.json(
        "/v1/completions",
        serde_json::json!({"prompt": "word ".repeat(400), "max_tokens": 4}),
    );
    assert_eq!(status, 422, "{e}");
    for (p, h) in prompts.iter().zip(handles) {
        let (status, v) = h.join().unwrap();
        assert_eq!(status, 200, "{v}");
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 3, "{v}");
        assert!(
            v["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{p:.30}: {v}"
        );
    }
    let (status, m) = server.http("GET", "/metrics", "");
    assert_eq!(status, 200, "{m}");
    assert!(m.contains("culturesteer_stream_slots 4"), "{m}");
}
