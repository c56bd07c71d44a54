//! DISCA end to end on the real default model: the summary's columns, the stored diagnostics,
//! and ablations that change what they should.

use std::process::{Command, Stdio};

mod support;
use support::records;

#[test]
fn real_model_disca_runs_with_prior_view_and_ablations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "eval",
            "multitp-disca",
            "--method",
            "disca,disca-consensus,disca-no-debias,disca-no-persona",
            "--countries",
            "USA",
        ])
        .args([
            "--limit",
            "20",
            "--seeds",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run culturesteer");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --seeds 2: the stochastic methods once more with seed 43 (vanilla not), same model gaps,
    // other importance-sampling draws; the spread over the seeds in seeds.md / seeds.json.
    let again = records(&out.join("seeds/seed-43"));
    assert_eq!(again.len(), 4 * 20);
    assert!(again.iter().all(|r| r["method"] != "vanilla"));
    let first = records(&out);
    let same_item = |r: &serde_json::Value| {
        first
            .iter()
            .find(|f| f["method"] == r["method"] && f["item_id"] == r["item_id"])
            .unwrap()
            .clone()
    };
    let mut moved = 0;
    for r in again.iter().filter(|r| r["method"] == "disca") {
        let f = same_item(r);
        assert_eq!(r["diagnostics"]["gaps"], f["diagnostics"]["gaps"]);
        moved += usize::from(r["probs"] != f["probs"]);
    }
    assert!(moved > 0, "seed 43 drew the same noise as seed 42");
    let seeds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("seeds.json")).unwrap()).unwrap();
    assert_eq!(seeds["seeds"], serde_json::json!([42, 43]));
    let n_of = |m: &str| {
        seeds["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["method"] == m)
            .map(|x| x["macro"]["n"].clone())
    };
    assert_eq!(n_of("disca"), Some(serde_json::json!(2)));
    assert_eq!(n_of("vanilla"), Some(serde_json::json!(1)));
    assert!(
        stdout.contains("## Across seeds (2 runs; seeds 42, 43)"),
        "{stdout}"
    );
    // Vanilla is added, and every DISCA method also appears with the country prior.
    let header = stdout.lines().find(|l| l.starts_with("| Country")).unwrap();
    for col in ["vanilla", "disca", "uniform"] {
        assert!(header.contains(col), "{header}");
    }
    // Within the prior's warm-up the +prior views cannot differ: named, not shown as columns.
    for view in ["disca+prior", "disca-consensus+prior"] {
        assert!(
            !header.contains(view) && stdout.contains(&format!("**{view}** equals")),
            "{stdout}"
        );
    }
    let recs = records(&out);
    assert_eq!(recs.len(), 5 * 20);
    let of = |m: &str| recs.iter().filter(|r| r["method"] == m).collect::<Vec<_>>();
    for r in of("disca") {
        let d = &r["diagnostics"];
        let micro = d["delta_micro"].as_f64().unwrap();
        let p: Vec<f64> = r["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        // p_right = σ(δ_micro / 0.5); four personas, both label orders.
        assert!(
            (p[1] - 1.0 / (1.0 + (-micro / 0.5).exp())).abs() < 1e-12,
            "{r}"
        );
        assert_eq!(d["gaps"]["personas_orig"].as_array().unwrap().len(), 4);
        assert!(d["gaps"]["personas_swap"].is_array());
        assert_eq!(d["disca"]["delta_star"].as_array().unwrap().len(), 2);
    }
    // Consensus-only = δ̄; no persona = δ_base; no debias asks the original order only.
    let by_item = |m: &str, id: &str| {
        of(m)
            .into_iter()
            .find(|r| r["item_id"] == id)
            .unwrap()
            .clone()
    };
    for r in of("disca") {
        let id = r["item_id"].as_str().unwrap();
        let d = &r["diagnostics"]["disca"];
        let cons = by_item("disca-consensus", id);
        assert!(
            (cons["diagnostics"]["delta_micro"].as_f64().unwrap()
                - d["delta_consensus"].as_f64().unwrap())
            .abs()
                < 1e-12
        );
        // No persona (the authors' ablation): one agent equal to the base agent, IS still on.
        let nop = by_item("disca-no-persona", id);
        let nd = &nop["diagnostics"]["disca"];
        assert!(
            (nd["delta_consensus"].as_f64().unwrap() - d["delta_base"].as_f64().unwrap()).abs()
                < 1e-12
        );
        assert_eq!(nd["delta_star"].as_array().unwrap().len(), 2);
        let nod = by_item("disca-no-debias", id);
        assert!(nod["diagnostics"]["gaps"]["personas_swap"].is_null());
        assert!(nod["diagnostics"]["disca"]["positional_bias"].is_null());
    }
    // Every item was asked in both label orders.
    assert!(recs
        .iter()
        .filter(|r| r["method"] == "disca")
        .all(|r| r["diagnostics"]["debiased"] == true));
    // An unknown country is a one-line error, exit 2.
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "eval",
            "multitp-disca",
            "--method",
            "disca",
            "--countries",
            "NGA",
            "--limit",
            "6",
            "--out",
            dir.path().join("x").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("NGA") && err.lines().count() == 1, "{err}");
}

#[test]
fn real_model_ablate_prints_one_table_over_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "ablate",
            "multitp-disca",
            "--countries",
            "USA",
            "--limit",
            "20",
            "--out",
            dir.path().join("a").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for m in [
        "vanilla",
        "country-prompt",
        "disca-consensus",
        "disca",
        "disca+prior",
        "disca-no-persona",
        "disca-always-is",
        "disca-no-debias",
        "disca-floor",
    ] {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("| {m} |")))
            .unwrap_or_else(|| panic!("no row {m}:\n{out}"));
        assert!(!row.contains('–'), "{row}");
    }
    // The reference row has Δ 0 by definition.
    assert!(
        out.lines()
            .any(|l| l.starts_with("| disca | ") && l.contains("+0.000") && l.ends_with("0/1 |")),
        "{out}"
    );
}

#[test]
fn real_model_disca_takes_its_panel_from_a_wvs_file() {
    let dir = tempfile::tempdir().unwrap();
    let items = [
        "Q6P", "Q17P", "Q177", "Q178", "Q179", "Q180", "Q181", "Q182", "Q57P", "Q199P", "Q200P",
        "Q254P", "Q46P", "Q29P", "Q30P", "Q31P", "Q33P", "Q152", "Q153", "Q19P", "Q20P", "Q21P",
        "Q22P", "Q23P",
    ];
    let mut cols = vec!["B_COUNTRY_ALPHA", "A_YEAR", "Q261"];
    cols.extend(items);
    let row = |birth: &str, q6: &str| {
        let mut r = vec![
            "USA".to_string(),
            "2020".to_string(),
            birth.to_string(),
            q6.to_string(),
        ];
        r.extend(std::iter::repeat_n("1".to_string(), items.len() - 1));
        r.join(",")
    };
    let wvs = dir.path().join("wvs.csv");
    std::fs::write(
        &wvs,
        format!(
            "{}\n{}\n{}\n{}\n",
            cols.join(","),
            row("1995", "4"),
            row("1970", "1"),
            row("1950", "2")
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_culturesteer"))
        .args([
            "eval",
            "multitp-disca",
            "--method",
            "disca",
            "--countries",
            "USA",
            "--limit",
            "6",
        ])
        .args([
            "--wvs",
            wvs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The manifest records the cohort panel: young, middle, older, everyone.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let panel = manifest["methods"]["disca"]["panels"]["USA"]
        .as_array()
        .unwrap();
    assert_eq!(panel.len(), 4);
    assert!(
        panel[0].as_str().unwrap().contains("young adult"),
        "{panel:?}"
    );
    assert!(
        panel[2].as_str().unwrap().contains("senior citizen"),
        "{panel:?}"
    );
    assert_eq!(
        records(&out)
            .iter()
            .filter(|r| r["method"] == "disca")
            .count(),
        6
    );
}
