//! End-to-end tests of the `culturesteer` binary (the model tests use the real default GGUF).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_culturesteer"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run culturesteer")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn replay_reproduces_the_published_phi4_numbers() {
    let o = run(&["replay"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let macro_row = out
        .lines()
        .find(|l| l.contains("macro"))
        .expect("macro row");
    let cells: Vec<&str> = macro_row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], "0.454", "{macro_row}");
    assert_eq!(cells[3], "0.346", "{macro_row}");
    let o = run(&["replay", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v.is_object());
}

#[test]
fn replay_of_a_bad_directory_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vanilla_results_USA.csv"),
        "country,scenario_idx\nUSA,notanumber\n",
    )
    .unwrap();
    let o = run(&["replay", dir.path().to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("vanilla_results_USA.csv"), "{err}");
}

#[test]
fn real_model_bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_gguf = dir.path().join("x.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "score".into(),
                "--prompt".into(),
                "hi".into(),
                "--model".into(),
                dir.path().join("missing.gguf").display().to_string(),
            ],
            "not found",
        ),
        (
            vec![
                "score".into(),
                "--prompt".into(),
                "hi".into(),
                "--model".into(),
                not_gguf.display().to_string(),
            ],
            "not a GGUF",
        ),
        (
            vec![
                "score".into(),
                "--prompt".into(),
                "hi".into(),
                "--candidates".into(),
                "".into(),
            ],
            "empty",
        ),
        (
            vec![
                "score".into(),
                "--prompt".into(),
                "word ".repeat(200),
                "--ctx".into(),
                "64".into(),
            ],
            "context",
        ),
        (
            vec![
                "eval".into(),
                "multitp-disca".into(),
                "--countries".into(),
                "XXX".into(),
                "--out".into(),
                dir.path().join("o").display().to_string(),
            ],
            "valid",
        ),
        (
            vec![
                "eval".into(),
                "multitp".into(),
                "--countries".into(),
                "U$A".into(),
                "--out".into(),
                dir.path().join("o").display().to_string(),
            ],
            "country",
        ),
        (
            vec![
                "eval".into(),
                "multitp".into(),
                "--method".into(),
                "magic".into(),
                "--out".into(),
                dir.path().join("o").display().to_string(),
            ],
            "unknown method",
        ),
        (
            vec![
                "serve".into(),
                "--port".into(),
                "0".into(),
                "--admit-wait".into(),
                "1e30".into(),
            ],
            "--admit-wait",
        ),
    ];
    for (args, needle) in cases {
        let o = bin().args(&args).stdin(Stdio::null()).output().unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        let err = err.trim();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
    }
    // Nothing was written for the rejected eval runs.
    assert!(!dir.path().join("o").join("results.jsonl").exists());
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("complete JSON line"))
        .collect()
}

#[test]
fn real_model_killed_eval_resumes_with_every_item_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.display().to_string();
    let args = [
        "eval",
        "multitp-disca",
        "--method",
        "vanilla",
        "--countries",
        "USA",
        "--limit",
        "14",
        "--batch",
        "2",
        "--out",
        &out_s,
    ];
    let results = out.join("results.jsonl");
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while lines_count(&results) < 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no results written"
        );
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    let before = lines(&results).len();
    assert!(before < 14, "the run finished before it could be killed");
    // Simulate a write torn by the kill.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap();
    f.write_all(br#"{"method":"vanilla","country":"USA","item_id":"s0"#)
        .unwrap();
    drop(f);
    let o = run(&args);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let recs = lines(&results);
    assert_eq!(recs.len(), 14, "{err}");
    let ids: std::collections::BTreeSet<&str> = recs
        .iter()
        .map(|r| r["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 14, "every item exactly once");
    assert!(stdout.contains("MIS"), "{stdout}");
    assert!(out.join("summary.md").exists() && out.join("manifest.json").exists());
    // A third run has nothing left to do.
    let o = run(&args);
    assert!(o.status.success());
    assert!(text(&o).1.contains("0 items answered"));
    // Another configuration in the same directory is refused, and nothing is overwritten.
    let o = run(&[
        "eval",
        "multitp-disca",
        "--countries",
        "USA",
        "--limit",
        "14",
        "--decision-temperature",
        "1.0",
        "--out",
        &out_s,
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("another run"), "{err}");
    assert_eq!(lines(&results).len(), 14);
}

/// `--jobs 2` answers with two copies of the model: the same records as one copy (exact
/// scoring does not depend on which copy, or what it answered before), and the manifest says
/// how it ran.
#[test]
fn real_model_eval_jobs_give_the_answers_of_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let sorted = |out: &Path| {
        let mut v: Vec<String> = lines(&out.join("results.jsonl"))
            .iter()
            .map(|r| r.to_string())
            .collect();
        v.sort();
        v
    };
    let go = |jobs: &str| {
        let out = dir.path().join(format!("jobs-{jobs}"));
        let o = run(&[
            "eval",
            "multitp-disca",
            "--method",
            "disca",
            "--countries",
            "USA,DEU",
            "--limit",
            "1",
            "--bootstrap",
            "0",
            "--jobs",
            jobs,
            "--out",
            &out.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
        out
    };
    let (one, two) = (go("1"), go("2"));
    let records = sorted(&one);
    assert_eq!(
        records.len(),
        4,
        "disca and vanilla on an item of 2 countries"
    );
    assert_eq!(sorted(&two), records);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(two.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["invocation"]["jobs"], 2);
    let o = run(&["eval", "vsm13", "--jobs", "0", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

fn lines_count(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.matches('\n').count())
        .unwrap_or(0)
}

#[test]
fn real_model_every_benchmark_runs_end_to_end_for_two_countries() {
    let dir = tempfile::tempdir().unwrap();
    for (bench, countries, limit) in [
        ("multitp", "USA,DEU", "6"),
        ("multitp-disca", "USA,DEU", "20"),
        ("goqa", "USA,NGA", "3"),
        ("vsm13", "USA,DEU", "24"),
    ] {
        let out = dir.path().join(bench).display().to_string();
        let o = run(&[
            "eval",
            bench,
            "--method",
            "vanilla,country-prompt",
            "--countries",
            countries,
            "--limit",
            limit,
            "--out",
            &out,
        ]);
        let (stdout, err) = text(&o);
        assert!(o.status.success(), "{bench}: {err}");
        let n: usize = limit.parse().unwrap();
        let recs = lines(&dir.path().join(bench).join("results.jsonl"));
        assert_eq!(recs.len(), 2 * 2 * n, "{bench}");
        // A record says which prompt it answers and what its options were.
        for r in &recs {
            assert_eq!(
                r["prompt_id"].as_str().map(str::len),
                Some(16),
                "{bench}: {r}"
            );
            assert_eq!(
                r["options"].as_array().map(Vec::len),
                r["probs"].as_array().map(Vec::len),
                "{bench}: {r}"
            );
        }
        for c in countries.split(',') {
            assert!(
                stdout.contains(&format!("| {c} ")),
                "{bench}: no row for {c} in\n{stdout}"
            );
        }
        assert!(stdout.contains("uniform"), "{bench}: no floor column");
        assert!(!err.contains("not scored"), "{bench}: {err}");
        // stderr is not a terminal here: the progress comes as plain lines, the last at the end.
        assert!(
            err.contains(&format!("eval: {0}/{0} items (", 4 * n)),
            "{bench}: no final progress line in {err}"
        );
        // The manifest says how the run was made; scores.json holds the numbers for programs.
        let m: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(bench).join("manifest.json")).unwrap(),
        )
        .unwrap();
        let inv = &m["invocation"];
        assert!(
            inv["command_line"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == bench),
            "{inv}"
        );
        for k in [
            "git_commit",
            "started_at",
            "finished_at",
            "llama_cpp",
            "threads",
            "culturesteer_version",
        ] {
            assert!(!inv[k].is_null(), "{k}: {inv}");
        }
        let scores: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(bench).join("scores.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(scores["benchmark"], bench);
        assert_eq!(scores["methods"].as_array().unwrap().len(), 2, "{bench}");
    }
}

#[test]
fn personas_show_and_list_need_no_model() {
    // Shipped marginals: four personas, text and JSON.
    let o = run(&["personas", "show", "--country", "USA"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out.matches("\nYou are a adult citizen from the United States.")
            .count(),
        4,
        "{out}"
    );
    for id in ["q25", "q50", "q75", "all"] {
        assert!(out.contains(&format!("] {id} - ")), "{out}");
    }
    let o = run(&[
        "personas",
        "show",
        "--country",
        "USA",
        "--json",
        "--profile",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["country"], "USA");
    assert_eq!(v["source"], "marginals");
    assert_eq!(v["personas"].as_array().unwrap().len(), 4);
    assert!(v["profile"]
        .as_str()
        .unwrap()
        .starts_with("Answer as a typical person from the United States"));
    let o = run(&["personas", "list"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    // 19 countries with WVS-7 marginals, the others from GlobalOpinionQA's WVS questions;
    // every DISCA country is there.
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with("shipped WVS-7 country marginals"))
            .count(),
        19,
        "{out}"
    );
    for c in [
        "USA", "GBR", "DEU", "ARG", "BRA", "MEX", "COL", "VNM", "MMR", "THA", "MYS", "IDN", "CHN",
        "JPN", "BGD", "IRN", "SRB", "ROU", "KGZ", "ETH",
    ] {
        assert!(out.lines().any(|l| l.starts_with(c)), "{c}: {out}");
    }
    // A GOQA panel says where each value dimension came from and what was left out.
    let o = run(&["personas", "show", "--country", "IRN"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("WVS items of GlobalOpinionQA"), "{out}");
    assert!(
        out.contains("tolerance_diversity") && out.contains("globalopinionqa (Q19 (goqa-"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("religiosity")
                && l.ends_with("left out: no data for IRN")),
        "{out}"
    );
    assert!(
        out.lines().next().unwrap().contains("goqa_wvs_items.json"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    // A JSON panel.
    let json = dir.path().join("p.json");
    std::fs::write(
        &json,
        r#"{"VNM": [{"label": "farmer", "text": "You are a rice farmer."}, "You are a teacher."]}"#,
    )
    .unwrap();
    let o = run(&[
        "personas",
        "show",
        "--country",
        "VNM",
        "--personas",
        json.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("[1] p1 - farmer\nYou are a rice farmer.")
            && out.contains("[2] p2 - persona 2"),
        "{out}"
    );
    // A WVS-7 file: the four age cohorts.
    let mut cols = vec!["B_COUNTRY_ALPHA", "A_YEAR", "Q261"];
    let items = [
        "Q6P", "Q17P", "Q177", "Q178", "Q179", "Q180", "Q181", "Q182", "Q57P", "Q199P", "Q200P",
        "Q254P", "Q46P", "Q29P", "Q30P", "Q31P", "Q33P", "Q152", "Q153", "Q19P", "Q20P", "Q21P",
        "Q22P", "Q23P",
    ];
    cols.extend(items);
    let row = |birth: &str, q6: &str| {
        let mut r = vec![
            "VNM".to_string(),
            "2020".to_string(),
            birth.to_string(),
            q6.to_string(),
        ];
        r.extend(std::iter::repeat_n("1".to_string(), items.len() - 1));
        r.join(",")
    };
    let csv = format!(
        "{}\n{}\n{}\n{}\n",
        cols.join(","),
        row("1990", "4"),
        row("1970", "1"),
        row("1950", "2")
    );
    let wvs = dir.path().join("wvs.csv");
    std::fs::write(&wvs, csv).unwrap();
    let o = run(&[
        "personas",
        "show",
        "--country",
        "VNM",
        "--wvs",
        wvs.to_str().unwrap(),
        "--json",
    ]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let ids: Vec<&str> = v["personas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["young", "middle", "older", "all"]);
    assert!(v["personas"][0]["text"]
        .as_str()
        .unwrap()
        .contains("from Vietnam, in your 20s and early 30s. "));
    assert!(v["personas"][0]["text"]
        .as_str()
        .unwrap()
        .contains("you are deeply religious."));

    // Bad input: exit 2, one line.
    let bad_row = dir.path().join("bad.csv");
    std::fs::write(
        &bad_row,
        format!("{}\n{},9\n", cols.join(","), row("1990", "4")),
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["personas", "show", "--country", "XXX"], "--wvs FILE"),
        (vec!["personas", "show", "--country", "U$A"], "country"),
        (
            vec![
                "personas",
                "show",
                "--country",
                "JPN",
                "--wvs",
                wvs.to_str().unwrap(),
            ],
            "VNM",
        ),
        (
            vec![
                "personas",
                "show",
                "--country",
                "VNM",
                "--wvs",
                bad_row.to_str().unwrap(),
            ],
            "line 2",
        ),
        (
            vec![
                "personas",
                "show",
                "--country",
                "USA",
                "--personas",
                json.to_str().unwrap(),
            ],
            "VNM",
        ),
    ];
    for (args, needle) in cases {
        let o = run(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn bench_serve_against_refuses_other_hosts_and_unreachable_peers_without_a_model() {
    // A non-loopback target is refused before anything is loaded or sent: one line, exit 2.
    for url in ["http://10.1.2.3:8080", "http://example.com/v1"] {
        let o = run(&["bench", "serve", "--against", url, "--duration", "1"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("only loopback addresses"), "{err}");
        assert!(out.is_empty(), "{out}");
    }
    // A loopback port that nothing listens on: a clear error, before our model is loaded.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(&["bench", "serve", "--against", &url, "--duration", "1"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("the --against server: cannot reach"), "{err}");
}

#[test]
fn model_list_path_and_unknown_names_need_no_model() {
    let empty = tempfile::tempdir().unwrap();
    let env = |args: &[&str]| {
        bin()
            .args(args)
            .env("CULTURESTEER_CACHE_DIR", empty.path())
            .env_remove("CULTURESTEER_MODEL")
            .stdin(Stdio::null())
            .output()
            .expect("run culturesteer")
    };
    let o = env(&["model", "list", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gemma3-270m", "smollm2-135m-instruct"]);
    assert!(rows.iter().all(|r| r["cached"] == false));
    assert_eq!(rows[0]["default"], true);
    assert_eq!(rows[1]["default"], false);
    assert_eq!(rows[1]["size"], 98_362_432);
    let o = env(&["model", "list"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("gemma3-270m *") && out.contains("smollm2-135m-instruct"),
        "{out}"
    );

    let o = env(&["model", "path", "smollm2-135m-instruct"]);
    let (out, _) = text(&o);
    assert_eq!(
        Path::new(out.trim()),
        empty
            .path()
            .join("models")
            .join("SmolLM2-135M-Instruct.Q4_1.gguf")
    );

    for args in [
        vec!["model", "path", "llama-9000"],
        vec!["model", "fetch", "llama-9000"],
        vec!["score", "--prompt", "hi", "--model", "llama-9000"],
    ] {
        let o = env(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("llama-9000")
                && err.contains("gemma3-270m")
                && err.contains("smollm2-135m-instruct"),
            "{err}"
        );
    }
    let o = bin()
        .args(["score", "--prompt", "hi"])
        .env("CULTURESTEER_CACHE_DIR", empty.path())
        .env("CULTURESTEER_MODEL", "llama-9000")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("smollm2-135m-instruct"));
    let o = env(&["model", "fetch", "smollm2-135m-instruct", "--f32"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--f32"), "{:?}", text(&o));
    // Nothing was fetched.
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn real_model_smollm2_by_name_or_environment_answers_in_chatml() {
    for by_env in [false, true] {
        let mut c = bin();
        c.args([
            "generate",
            "--chat",
            "--prompt",
            "What is the capital of France?",
            "--max-tokens",
            "12",
        ]);
        if by_env {
            c.env("CULTURESTEER_MODEL", "smollm2-135m-instruct");
        } else {
            c.args(["--model", "smollm2-135m-instruct"]);
        }
        let o = c.stdin(Stdio::null()).output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(out.contains("Paris"), "{out}");
    }
}
