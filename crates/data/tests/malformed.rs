//! Malformed inputs produce errors naming file, line and field; unknown countries list the
//! valid codes.

use std::fs;
use std::path::Path;

use culturesteer_core::CountryCode;
use culturesteer_data::disca::{load_scenario_pool, parse_scenario_pool, DiscaHumanTargets};
use culturesteer_data::goqa::parse_goqa;
use culturesteer_data::hofstede::HofstedeTable;
use culturesteer_data::moral_machine::MoralMachinePreferences;
use culturesteer_data::multitp::{load_vignettes, parse_multitp_spec, parse_vignettes};
use culturesteer_data::replay::{load_results_dir, parse_swa, parse_vanilla, ResultsDir};
use culturesteer_data::wvs::{parse_wvs_marginals, WvsCountries};
use culturesteer_data::{DataError, DataSource};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// The real country_preferences.csv with one cell replaced on data line `n` (1-based file line).
fn mm_with_bad_cell(line: usize, column: &str, value: &str) -> String {
    let text = DataSource::Embedded
        .read("moral_machine/country_preferences.csv")
        .unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == column).unwrap();
    let mut cells: Vec<String> = lines[line - 1].split(',').map(str::to_string).collect();
    // a quoted country name may contain a comma: index the later columns from the end
    let idx = if col <= 1 {
        col
    } else {
        cells.len() - (header.len() - col)
    };
    cells[idx] = value.to_string();
    lines[line - 1] = cells.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn country_preferences_bad_number_names_file_line_field() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "moral_machine/country_preferences.csv",
        &mm_with_bad_cell(17, "pref_age", "abc"),
    );
    let err = MoralMachinePreferences::load(&DataSource::dir(tmp.path())).unwrap_err();
    let want = format!(
        "{} line 17 field pref_age: \"abc\" is not a number",
        tmp.path()
            .join("moral_machine")
            .join("country_preferences.csv")
            .display()
    );
    assert_eq!(err.to_string(), want);
    // the same text, named as the embedded file would be
    let err = MoralMachinePreferences::parse(
        "data/moral_machine/country_preferences.csv",
        &mm_with_bad_cell(17, "pref_age", "abc"),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "data/moral_machine/country_preferences.csv line 17 field pref_age: \"abc\" is not a number");
}

#[test]
fn country_preferences_semantic_errors() {
    let err = MoralMachinePreferences::parse("f.csv", &mm_with_bad_cell(5, "pref_species", "0.1"))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "f.csv line 5 field pref_species: 0.1 disagrees with (1 + amce_species)/2"
        ),
        "{err}"
    );
    let err =
        MoralMachinePreferences::parse("f.csv", &mm_with_bad_cell(3, "iso3", "usa")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("f.csv line 3 field iso3: invalid country code \"usa\""),
        "{err}"
    );
    let err =
        MoralMachinePreferences::parse("f.csv", &mm_with_bad_cell(3, "iso3", "ABW")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "f.csv line 3 field iso3: duplicate country ABW (first on line 2)"
    );
    let err = MoralMachinePreferences::parse("f.csv", &mm_with_bad_cell(4, "in_awad_130", "yes"))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("f.csv line 4 field in_awad_130:"),
        "{err}"
    );
}

#[test]
fn unknown_country_lists_valid_codes() {
    let mm = MoralMachinePreferences::load(&DataSource::Embedded).unwrap();
    let err = mm.get(cc("XXX")).unwrap_err();
    match &err {
        DataError::UnknownCountry { code, valid, .. } => {
            assert_eq!(code, "XXX");
            assert_eq!(valid.len(), 196);
        }
        other => panic!("{other}"),
    }
    let t = DiscaHumanTargets::load(&DataSource::Embedded).unwrap();
    let msg = t.get(cc("FRA")).unwrap_err().to_string();
    assert_eq!(
        msg,
        "unknown country \"FRA\" in disca_reference/human_targets_20.csv; valid codes: ARG, BGD, BRA, CHN, COL, DEU, ETH, GBR, IDN, IRN, JPN, KGZ, MEX, MMR, MYS, ROU, SRB, THA, USA, VNM"
    );
    let msg = load_scenario_pool(&DataSource::Embedded, cc("FRA"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("valid codes: ARG, BGD") && msg.contains("VNM"),
        "{msg}"
    );
}

#[test]
fn human_targets_errors() {
    let head = "country,dimension,human_amce\n";
    let e = DiscaHumanTargets::parse(
        "t.csv",
        &format!("{head}USA,Species_Humans,79.2\nUSA,Intervention,50\n"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("t.csv line 3 field dimension: unknown moral dimension \"Intervention\""),
        "{e}"
    );
    let e = DiscaHumanTargets::parse(
        "t.csv",
        &format!("{head}USA,Species_Humans,79.2\nUSA,Species,80\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv line 3 field dimension: duplicate Species for USA"
    );
    let e = DiscaHumanTargets::parse("t.csv", &format!("{head}USA,Species_Humans,179.2\n"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv line 2 field human_amce: 179.2 is outside [0, 100]"
    );
    let e =
        DiscaHumanTargets::parse("t.csv", &format!("{head}USA,Species_Humans,79.2\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv: country USA has no Gender_Female target"
    );
    let e =
        DiscaHumanTargets::parse("t.csv", "country,dim,human_amce\nUSA,Species,1\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv line 1 field dimension: column missing from the header"
    );
    let e = DiscaHumanTargets::parse("t.csv", &format!("{head}USA,Species\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv line 2: record has 2 fields, the header has 3"
    );
}

#[test]
fn scenario_pool_line_numbers_survive_multiline_prompts() {
    let text = "scenario_idx,phenomenon_category,preferred_on_right,n_left,n_right,Prompt\n\
                0,Fitness,0,3,3,\"Line one\n\nOption A\nOption B\"\n\
                1,Species,2,1,1,\"x\"\n";
    let e = parse_scenario_pool("p.csv", text, cc("USA"), "en").unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.csv line 6 field preferred_on_right: \"2\" is not a boolean (0/1, True/False)"
    );
    let text = "scenario_idx,phenomenon_category,preferred_on_right,n_left,n_right,Prompt\n1,Fitness,0,3,3,x\n";
    let e = parse_scenario_pool("p.csv", text, cc("USA"), "en").unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.csv line 2 field scenario_idx: expected 0 (rows must be in order)"
    );
}

#[test]
fn results_errors() {
    let head = "country,scenario_idx,phenomenon_category,preferred_on_right,p_left,p_right,p_spare_preferred\n";
    let e = parse_vanilla(
        "v.csv",
        &format!("{head}USA,0,Age,1,0.2,0.8,0.8\nUSA,1,Age,1,1.5,0.8,0.8\n"),
        cc("USA"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.csv line 3 field p_left: 1.5 is outside [0, 1]"
    );
    let e = parse_vanilla(
        "v.csv",
        &format!("{head}DEU,0,Age,1,0.2,0.8,0.8\n"),
        cc("USA"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.csv line 2 field country: DEU does not match the file name's country USA"
    );
    let e = parse_vanilla(
        "v.csv",
        &format!("{head}USA,0,Trolley,1,0.2,0.8,0.8\n"),
        cc("USA"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("v.csv line 2 field phenomenon_category: unknown moral dimension"),
        "{e}"
    );
    let e = parse_swa("s.csv", "country,scenario_idx,phenomenon_category,preferred_on_right,p_spare_preferred\nUSA,0,Age,1,0.5\n", cc("USA")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.csv line 1 field logit_temp_used: column missing from the header"
    );
}

#[test]
fn results_dir_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_results_dir(tmp.path()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("no vanilla_results_<ISO3>.csv or swa_results_<ISO3>.csv files"),
        "{e}"
    );
    // a directory holding only one vanilla file replays that country alone
    let src = DataSource::Embedded
        .read("disca_reference/results/phi_4/vanilla_results_USA.csv")
        .unwrap();
    write(tmp.path(), "vanilla_results_USA.csv", &src);
    let r = load_results_dir(tmp.path()).unwrap();
    assert_eq!(r.countries(), vec![cc("USA")]);
    let s =
        culturesteer_data::replay::replay_with_disca_targets(&r, &DataSource::Embedded).unwrap();
    assert!(s.disca.is_none() && s.paired.is_none());
    assert!((s.vanilla.unwrap().mis - 0.49745778895562415).abs() < 1e-9);
    // a bad value deep in the file
    let mut lines: Vec<&str> = src.lines().collect();
    lines[42] = "USA,41,Age,0,oops,0.5,0.5";
    write(
        tmp.path(),
        "vanilla_results_USA.csv",
        &(lines.join("\n") + "\n"),
    );
    let e = load_results_dir(tmp.path()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("vanilla_results_USA.csv line 43 field p_left: \"oops\" is not a number"),
        "{e}"
    );
    // results of a country without a DISCA target
    write(
        tmp.path(),
        "vanilla_results_USA.csv",
        &src.replace("USA,", "FRA,"),
    );
    fs::rename(
        tmp.path().join("vanilla_results_USA.csv"),
        tmp.path().join("vanilla_results_FRA.csv"),
    )
    .unwrap();
    let r = load_results_dir(tmp.path()).unwrap();
    let e = culturesteer_data::replay::replay_with_disca_targets(&r, &DataSource::Embedded)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("no human target for country FRA; targets exist for: ARG, BGD"),
        "{e}"
    );
    let s =
        culturesteer_data::replay::replay_with_moral_machine(&r, &DataSource::Embedded).unwrap();
    assert_eq!(s.countries[0].country, cc("FRA"));
    let _ = ResultsDir::embedded_phi4().unwrap();
}

#[test]
fn vignette_errors() {
    let good = DataSource::Embedded
        .read("multitp/vignettes_en.jsonl")
        .unwrap();
    let first = good.lines().next().unwrap();
    let missing = first.replace("\"prompt\":", "\"prompt_x\":");
    let e = parse_vignettes("v.jsonl", &format!("{first}\n{missing}\n")).unwrap_err();
    assert_eq!(e.to_string(), "v.jsonl line 2 field prompt: missing");
    let bad_count = first.replace("\"left_count\": 1", "\"left_count\": \"one\"");
    let e = parse_vignettes("v.jsonl", &bad_count).unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.jsonl line 1 field left_count: expected a non-negative integer, got \"one\""
    );
    let bad_side = first.replace(
        "\"preferred_side\": \"right\"",
        "\"preferred_side\": \"left\"",
    );
    let e = parse_vignettes("v.jsonl", &bad_side).unwrap_err();
    assert_eq!(e.to_string(), "v.jsonl line 1 field left_attribute: \"Animals\" on the preferred side, expected \"Humans\"");
    let e = parse_vignettes("v.jsonl", &format!("{first}\n\n{{not json\n")).unwrap_err();
    assert!(
        e.to_string().starts_with("v.jsonl line 3: invalid JSON"),
        "{e}"
    );
    let e = parse_multitp_spec("s.json", "{\n\"characters\": {}\n}").unwrap_err();
    assert!(
        e.to_string().starts_with("s.json line 3: missing field"),
        "{e}"
    );
    // a data dir without the file: the error names the path
    let tmp = tempfile::tempdir().unwrap();
    let e = load_vignettes(&DataSource::dir(tmp.path())).unwrap_err();
    assert!(
        matches!(e, DataError::Io { .. }) && e.to_string().contains("vignettes_en.jsonl"),
        "{e}"
    );
}

#[test]
fn goqa_errors() {
    let ok = r#"{"id": "goqa-1", "source": "GAS", "question": "Q?", "options": ["a", "b"], "distributions": {"Mexico": [0.5, 0.5]}, "provenance": ["x"]}"#;
    let g = parse_goqa("g.jsonl", ok).unwrap();
    assert_eq!(g.questions[0].distributions[0].country, Some(cc("MEX")));
    let e = parse_goqa(
        "g.jsonl",
        &format!("{ok}\n{}", ok.replace("[0.5, 0.5]", "[0.5, 0.3, 0.2]")),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.jsonl line 2 field distributions.Mexico: 3 shares for 2 options"
    );
    let e = parse_goqa("g.jsonl", &ok.replace("[0.5, 0.5]", "[0.5, 0.7]")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.jsonl line 1 field distributions.Mexico: shares sum to 1.2, outside 1 ± 0.1"
    );
    let e = parse_goqa("g.jsonl", &ok.replace("[0.5, 0.5]", "[1.1, -0.1]")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.jsonl line 1 field distributions.Mexico[1]: -0.1 is negative"
    );
    let e = parse_goqa("g.jsonl", &ok.replace("[0.5, 0.5]", "[0.5, \"x\"]")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.jsonl line 1 field distributions.Mexico[1]: \"x\" is not a number"
    );
    let e = parse_goqa("g.jsonl", &ok.replace("\"GAS\"", "\"ESS\"")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.jsonl line 1 field source: \"ESS\" is not GAS or WVS"
    );
}

#[test]
fn hofstede_and_wvs_errors() {
    let head = "country_code,country,pdi,idv,mas,uai,lto,ivr\n";
    let t =
        HofstedeTable::parse("h.csv", &format!("{head}USA,United States,40,91,62,46,,\n")).unwrap();
    assert_eq!(t.rows[0].scores[4], None);
    let e = HofstedeTable::parse(
        "h.csv",
        &format!("{head}USA,United States,40,91,62,4x6,26,68\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.csv line 2 field uai: \"4x6\" is not a number"
    );
    let cs = WvsCountries::parse("c.json", "{\n \"USA\": \"United States\"\n}").unwrap();
    let line = r#"{"id": "Q1", "question": "Q", "options": ["a", "b"], "option_codes": [1, 2], "distributions": {"USA": [0.6, 0.4]}, "answered_share": {"USA": 0.98}}"#;
    assert!(parse_wvs_marginals("w.jsonl", line, Some(&cs)).is_ok());
    let e = parse_wvs_marginals(
        "w.jsonl",
        &line.replace("[0.6, 0.4]", "[0.6, 0.5]"),
        Some(&cs),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "w.jsonl line 1 field distributions.USA: shares sum to 1.1, outside 1 ± 0.001"
    );
    let e = parse_wvs_marginals(
        "w.jsonl",
        &line.replace("\"USA\": [", "\"DEU\": ["),
        Some(&cs),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "w.jsonl line 1 field distributions.DEU: DEU is not in wvs/country_codes.json"
    );
    let e = parse_wvs_marginals("w.jsonl", &line.replace("0.98", "1.5"), Some(&cs)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "w.jsonl line 1 field answered_share.USA: 1.5 is not a share in [0, 1]"
    );
    let e = WvsCountries::parse("c.json", "{\n \"usa\": \"United States\"\n}").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("c.json line 2 field usa: invalid country code"),
        "{e}"
    );
}
