//! The server's handlers in process, on the scripted stand-in model: no TCP, no binary, no
//! llama.cpp. Requests go through the real router, queue and model thread.

use super::lifecycle::{served_countries, spawn_state};
use super::worker::Worker;
use super::{router, Access, Limits};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use culturesteer_data::DataSource;
use culturesteer_llm::standin::{Call, CallLog, StandIn};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A router over a stand-in that prefers option A, except when the prompt asks for a
/// respondent from Japan, and replies " world and more" to anything.
fn app() -> (axum::Router, CallLog) {
    app_with(Access {
        loopback: true,
        ..Access::default()
    })
}

fn app_with(access: Access) -> (axum::Router, CallLog) {
    let lm = StandIn::new()
        .with_logprobs(|prompt, piece| {
            let japan = prompt.contains("respondent from Japan");
            match (piece, japan) {
                ("A", false) | ("B", true) => -0.2,
                ("A", true) | ("B", false) => -2.0,
                _ => -9.0,
            }
        })
        .with_replies(|_| " world and more".into())
        .with_context(4000)
        .with_stream_slots(4);
    app_on(lm, access)
}

fn app_on(lm: StandIn, access: Access) -> (axum::Router, CallLog) {
    let log = lm.log();
    let data = DataSource::Embedded;
    let worker = Worker::new(
        Box::new(lm),
        data.clone(),
        None,
        culturesteer_registry::disca_preset(culturesteer_registry::Preset::Paper),
        42,
    );
    let limits = Limits {
        max_tokens: 64,
        max_queue: 8,
        max_logprobs: 5,
        max_prompts: 8,
        max_request_tokens: 8000,
    };
    let countries = served_countries(&data).unwrap();
    let (state, _model_thread) =
        spawn_state(worker, "stand-in".into(), limits, countries, 42, access).unwrap();
    (router(state, 1 << 20), log)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_with(app, method, uri, body, &[]).await
}

async fn call_with(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

/// A streamed request: its status and the JSON chunks of its events (before `[DONE]`, which
/// must close the stream).
async fn stream(app: &axum::Router, uri: &str, body: Value) -> (StatusCode, Vec<Value>) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    if status == StatusCode::OK {
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
    let chunks = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (status, chunks)
}

fn p(res: &Value, i: usize) -> f64 {
    res["options"][i]["probability"].as_f64().unwrap()
}

#[tokio::test]
async fn health_models_and_unknown_routes() {
    let (app, log) = app();
    let (st, v) = call(&app, "GET", "/health", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = call(&app, "GET", "/v1/models", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"][0]["id"], "stand-in", "{v}");
    let (st, v) = call(&app, "GET", "/v2/nothing", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], 404, "{v}");
    assert!(log.calls().is_empty(), "no model work for these");
}

#[tokio::test]
async fn completions_and_chat_return_the_scripted_text_with_stop_and_length() {
    let (app, log) = app();
    let (st, v) = call(
        &app,
        "POST",
        "/v1/completions",
        Some(json!({ "prompt": "Hello", "max_tokens": 5, "temperature": 0 })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["text"], " worl");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let (st, v) = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(json!({
            "messages": [{ "role": "user", "content": "Hi" }],
            "max_tokens": 50, "stop": ["and"], "temperature": 0,
        })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], " world ");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(log.generated_prompts(), 2);
}

#[tokio::test]
async fn choose_applies_the_steering_it_names() {
    let (app, log) = app();
    let ask = |steering: &str, culture: &str| {
        json!({
            "question": "A self-driving car must choose whom to spare.",
            "options": ["the child", "the dog"],
            "culture": culture, "steering": steering,
        })
    };
    let (st, v) = call(&app, "POST", "/v1/choose", Some(ask("vanilla", "JPN"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(p(&v, 0) > p(&v, 1), "vanilla prefers A: {v}");
    let (st, v) = call(
        &app,
        "POST",
        "/v1/choose",
        Some(ask("country-prompt", "JPN")),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        p(&v, 1) > p(&v, 0),
        "the country prompt reached the model: {v}"
    );
    assert_eq!(v["choice"], "B");
    let before = log.scored_prompts();
    let (st, v) = call(&app, "POST", "/v1/choose", Some(ask("disca", "USA"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["steering"], "disca");
    assert_eq!(v["diagnostics"]["debiased"], true, "{v}");
    let personas = v["diagnostics"]["gaps"]["personas_orig"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        log.scored_prompts() - before,
        2 * (1 + personas),
        "base and every persona, both label orders"
    );
    let total: f64 = (0..2).map(|i| p(&v, i)).sum();
    assert!((total - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_model_work() {
    let (app, log) = app();
    let base = json!({ "question": "Whom?", "options": ["a", "b"], "culture": "USA" });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let (st, v) = call(
        &app,
        "POST",
        "/v1/choose",
        Some(with("steering", json!("dsica"))),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("vanilla, country-prompt, disca, palette"),
        "{msg}"
    );
    let (st, v) = call(
        &app,
        "POST",
        "/v1/choose",
        Some(with("culture", json!("XYZ"))),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["param"], "culture");
    let (st, _) = call(
        &app,
        "POST",
        "/v1/choose",
        Some(with("options", json!(["a", "b", "c"]))),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "disca needs two options"
    );
    assert!(log.calls().is_empty());
}

#[tokio::test]
async fn access_rules_keep_out_web_pages_rebound_hosts_and_keyless_clients() {
    let (app, log) = app_with(Access {
        api_key: Some("s3cret".into()),
        allowed_origins: vec!["http://tool.local".into()],
        allowed_hosts: vec!["box.lan".into()],
        loopback: true,
    });
    let body = json!({ "prompt": "Hi", "max_tokens": 2 });
    let ok_key = ("authorization", "Bearer s3cret");
    let post = |headers: Vec<(&'static str, &'static str)>| {
        let (app, body) = (app.clone(), body.clone());
        async move { call_with(&app, "POST", "/v1/completions", Some(body), &headers).await }
    };
    // No key, a wrong key: 401 with a JSON error.
    let (st, v) = post(vec![]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("API key"));
    assert_eq!(
        post(vec![("authorization", "Bearer s3cre")]).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Health stays open; everything else needs the key.
    assert_eq!(call(&app, "GET", "/health", None).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, "GET", "/v1/models", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(vec![ok_key]).await.0, StatusCode::OK);
    // A page's Origin: refused unless allowed.
    let (st, v) = post(vec![ok_key, ("origin", "https://evil.example")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        post(vec![ok_key, ("origin", "http://tool.local")]).await.0,
        StatusCode::OK
    );
    // A rebound host name on a loopback server: refused unless allowed.
    assert_eq!(
        post(vec![ok_key, ("host", "evil.example:8080")]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(vec![ok_key, ("host", "localhost:8080")]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(vec![ok_key, ("host", "box.lan")]).await.0,
        StatusCode::OK
    );
    let generated = log.generated_prompts();
    // JSON only: a text/plain body (what a page may send without a preflight) is refused.
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/completions")
        .header("authorization", "Bearer s3cret")
        .header("content-type", "text/plain");
    req = req.header("host", "localhost");
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        log.generated_prompts(),
        generated,
        "refused requests cost no model time"
    );
    // A wrong method gets a JSON 405.
    let (st, v) = call_with(&app, "GET", "/v1/completions", None, &[ok_key]).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"]["code"], 405, "{v}");
}

#[tokio::test]
async fn a_stream_starts_only_for_a_request_the_model_takes() {
    let (app, _) = app();
    let chat = |content: String| json!({ "messages": [{ "role": "user", "content": content }], "max_tokens": 8, "stream": true });
    // Too long for the context: an HTTP error before any event, not a 200 with an error event.
    let (st, v) = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(chat("x".repeat(5000))),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("context"),
        "{v}"
    );
    // A prompt that fits streams its text, then [DONE].
    let (st, chunks) = stream(&app, "/v1/chat/completions", chat("Hi".into())).await;
    assert_eq!(st, StatusCode::OK);
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, " world a", "{chunks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_cost_no_model_time() {
    // A slow model: each generation takes 300 ms.
    let lm = StandIn::new().with_replies(|p| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        format!("reply to {p}")
    });
    let log = lm.log();
    let (app, _) = app_on(lm, Access::default());
    let ask = |prompt: &str| json!({ "prompt": prompt, "max_tokens": 40 });
    // The first request occupies the model thread; the second waits in the queue and its
    // client goes away.
    let first = tokio::spawn({
        let (app, body) = (app.clone(), ask("first"));
        async move { call(&app, "POST", "/v1/completions", Some(body)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let abandoned = tokio::spawn({
        let (app, body) = (app.clone(), ask("abandoned"));
        async move { call(&app, "POST", "/v1/completions", Some(body)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    abandoned.abort();
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    let (st, v) = call(&app, "POST", "/v1/completions", Some(ask("third"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let asked: Vec<String> = log
        .calls()
        .into_iter()
        .flat_map(|c| match c {
            Call::Generate(p) => p,
            Call::Score(_) => vec![],
        })
        .collect();
    assert_eq!(asked, vec!["first".to_string(), "third".to_string()]);
}

#[tokio::test]
async fn a_request_over_the_token_budget_is_refused_up_front() {
    let (app, log) = app();
    let long = "word ".repeat(200);
    let prompts: Vec<String> = (0..8).map(|_| long.clone()).collect();
    let (st, v) = call(
        &app,
        "POST",
        "/v1/completions",
        Some(json!({ "prompt": prompts, "max_tokens": 64, "echo": true, "logprobs": 1 })),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--max-request-tokens 8000"), "{msg}");
    let (st, _) = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(json!({ "messages": [{ "role": "user", "content": long.repeat(10) }], "max_tokens": 64 })),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(log.calls().is_empty());
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let (app, _) = app();
    call(&app, "GET", "/health", None).await;
    call(&app, "GET", "/nowhere", None).await;
    let (st, _) = call(
        &app,
        "POST",
        "/v1/completions",
        Some(json!({ "prompt": "Hello", "max_tokens": 4 })),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(
        &app,
        "POST",
        "/v1/choose",
        Some(json!({ "question": "Q?", "options": ["a", "b"], "culture": "XYZ" })),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        "culturesteer_requests_total{route=\"/health\",status=\"200\"} 1",
        "culturesteer_requests_total{route=\"other\",status=\"404\"} 1",
        "culturesteer_requests_total{route=\"/v1/choose\",status=\"422\"} 1",
        "culturesteer_queue_depth 0",
        "culturesteer_tokens_total{kind=\"prompt\"} 5",
        "culturesteer_tokens_total{kind=\"generated\"} 4",
        // Four steps of one generation (each counted as it starts, before its answer).
        "culturesteer_generation_steps_total 4",
        "culturesteer_generation_step_streams_total 4",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_stream_ends_with_the_usage_when_asked() {
    let (app, _) = app();
    let (st, chunks) = stream(
        &app,
        "/v1/completions",
        json!({ "prompt": "Hello", "max_tokens": 4, "stream": true,
                "stream_options": { "include_usage": true } }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{chunks:?}");
    assert_eq!(last["usage"]["prompt_tokens"], 5);
    assert_eq!(last["usage"]["completion_tokens"], 4);
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(streamed, " wor");
}

/// Completions with `max_tokens`, greedy, on `app`.
fn complete(prompt: &str, max_tokens: usize) -> Value {
    json!({ "prompt": prompt, "max_tokens": max_tokens, "temperature": 0 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_generations_share_steps_and_each_keeps_its_own_text() {
    let lm = StandIn::new()
        .with_replies(|p| format!("<reply to {p}>"))
        .with_stream_slots(2)
        .with_step_delay(std::time::Duration::from_millis(2));
    let log = lm.log();
    let (app, _) = app_on(lm, Access::default());
    let runs: Vec<_> = ["one", "two", "three"]
        .into_iter()
        .map(|p| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = call(&app, "POST", "/v1/completions", Some(complete(p, 64))).await;
                (p, r)
            })
        })
        .collect();
    for run in runs {
        let (p, (st, v)) = run.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["choices"][0]["text"], format!("<reply to {p}>"), "{v}");
    }
    let steps = log.steps();
    // Two slots: at most two generations per step, and the requests did share steps; the
    // third joined when a slot was free.
    assert_eq!(steps.iter().max(), Some(&2), "{steps:?}");
    let tokens: usize = ["one", "two", "three"]
        .iter()
        .map(|p| format!("<reply to {p}>").chars().count())
        .sum();
    assert!(
        steps.len() < tokens,
        "{} steps for {tokens} tokens",
        steps.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_whose_client_leaves_stops_at_the_next_step() {
    let lm = StandIn::new()
        .with_replies(|_| "x".repeat(500))
        .with_stream_slots(2)
        .with_step_delay(std::time::Duration::from_millis(5));
    let log = lm.log();
    let (app, _) = app_on(lm, Access::default());
    let gone = tokio::spawn({
        let app = app.clone();
        async move { call(&app, "POST", "/v1/completions", Some(complete("p", 500))).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    gone.abort();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after_leaving = log.steps().len();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        log.steps().len(),
        after_leaving,
        "steps went on after the client left"
    );
    assert!(after_leaving < 200, "{after_leaving} steps of 500");
    // The server goes on serving.
    let (st, v) = call(&app, "POST", "/v1/completions", Some(complete("q", 3))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["text"], "xxx");
}

#[tokio::test]
async fn generated_tokens_carry_their_logprobs_whole_and_streamed() {
    let (app, _) = app();
    // Completions: one entry per generated token, offsets along the text.
    let (st, v) = call(
        &app,
        "POST",
        "/v1/completions",
        Some(json!({ "prompt": "Hello", "max_tokens": 6, "temperature": 0, "logprobs": 2 })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"], json!([" ", "w", "o", "r", "l", "d"]), "{v}");
    // Offsets count from the prompt's start ("Hello"), as the legacy API does.
    assert_eq!(lp["text_offset"], json!([5, 6, 7, 8, 9, 10]), "{v}");
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 6);
    // With echo: the prompt's entries first, the generated ones after, offsets in the echo.
    let (st, v) = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(
            json!({ "messages": [{ "role": "user", "content": "Hi" }], "max_tokens": 3,
                     "temperature": 0, "logprobs": true, "top_logprobs": 1 }),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 3, "{v}");
    assert_eq!(content[1]["token"], "w");
    // Streamed chat: every chunk with text carries the log-probs of its tokens.
    let (st, chunks) = stream(
        &app,
        "/v1/chat/completions",
        json!({ "messages": [{ "role": "user", "content": "Hi" }], "max_tokens": 4,
                "temperature": 0, "stream": true, "logprobs": true }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let tokens: Vec<String> = chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["logprobs"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| e["token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens, [" ", "w", "o", "r"], "{chunks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_generations_wait_for_their_prompt_and_a_client_that_leaves_meanwhile_frees_its_slot(
) {
    // One slot; a prompt "slow…" takes (practically) forever to evaluate, others 3 steps.
    let lm = StandIn::new()
        .with_replies(|p| format!("<{p}>"))
        .with_stream_slots(1)
        .with_prefill_steps(|p| if p.starts_with("slow") { 1_000_000 } else { 3 })
        .with_step_delay(std::time::Duration::from_millis(2));
    let log = lm.log();
    let (app, _) = app_on(lm, Access::default());
    let (st, v) = call(&app, "POST", "/v1/completions", Some(complete("quick", 64))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["text"], "<quick>", "{v}");
    // Three waiting steps, then one per character and the finishing one.
    assert_eq!(log.steps().len(), 3 + "<quick>".len(), "{:?}", log.steps());
    let gone = tokio::spawn({
        let app = app.clone();
        async move { call(&app, "POST", "/v1/completions", Some(complete("slow", 8))).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    gone.abort();
    // The slot is freed although the stream never stepped: the next request gets it.
    let next = call(&app, "POST", "/v1/completions", Some(complete("next", 64)));
    let (st, v) = tokio::time::timeout(std::time::Duration::from_secs(20), next)
        .await
        .expect("the slot of the client that left was freed");
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["text"], "<next>", "{v}");
}
