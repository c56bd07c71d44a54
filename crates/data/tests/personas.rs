//! DISCA persona panels: the WVS-7 cohort procedure on a synthetic individual-level file, the
//! marginals extension (embedded and synthetic), JSON persona files, source resolution and the
//! WVS-profile prompt.

use std::fs;
use std::path::{Path, PathBuf};

use culturesteer_core::CountryCode;
use culturesteer_data::personas::{
    load_country_profile, load_panel, load_persona_json, load_wvs_file, parse_persona_json,
    parse_wvs_csv, persona_text, render_wvs_profile, resolve_panel, round3, wvs_profile_text,
    Cohort, MarginalStat, MarginalsPersonas, PersonaSource, PersonaSourceKind, ValueDimension,
    ValueProfile,
};
use culturesteer_data::{DataError, DataSource};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// A synthetic WVS-7 inverted file
// ---------------------------------------------------------------------------------------------

const ITEMS: [&str; 24] = [
    "Q6P", "Q17P", "Q177", "Q178", "Q179", "Q180", "Q181", "Q182", "Q57P", "Q199P", "Q200P",
    "Q254P", "Q46P", "Q29P", "Q30P", "Q31P", "Q33P", "Q152", "Q153", "Q19P", "Q20P", "Q21P",
    "Q22P", "Q23P",
];

fn header() -> String {
    let mut h = vec!["B_COUNTRY_ALPHA", "A_YEAR", "Q261", "D_INTERVIEW"];
    h.extend(ITEMS);
    h.join(",")
}

/// A respondent: every item is -1 (missing) unless set in `set`.
fn row(country: &str, survey: &str, birth: &str, set: &[(&str, &str)]) -> String {
    let mut cells = vec![
        country.to_string(),
        survey.to_string(),
        birth.to_string(),
        "12345".to_string(),
    ];
    for item in ITEMS {
        let v = set
            .iter()
            .find(|(k, _)| *k == item)
            .map_or("-1", |(_, v)| v);
        cells.push(v.to_string());
    }
    cells.join(",")
}

const MORAL: [&str; 6] = ["Q177", "Q178", "Q179", "Q180", "Q181", "Q182"];

/// USA: four kept respondents aged exactly 35, 36, 55 and 56, plus four that the filters drop;
/// DEU: only middle-aged respondents; FRA: no religiosity answer at all.
fn synthetic_rows() -> Vec<String> {
    let mut young: Vec<(&str, &str)> = vec![
        ("Q6P", "4"),
        ("Q17P", "0"), // mean 0 → skipped
        ("Q57P", "2"),
        ("Q199P", "3"),
        ("Q200P", "3"),
        ("Q254P", "4"),
        ("Q46P", "4"),
        ("Q29P", "1"),
        ("Q30P", "1"),
        ("Q31P", "1"),
        ("Q33P", "1"),
        ("Q152", "3"),
        ("Q153", "3"),
    ];
    young.extend(MORAL.iter().map(|m| (*m, "10")));
    vec![
        header(),
        // age 35: young
        row("USA", "2020", "1985", &young),
        // age 36 and 55: middle. Q17P 1 and 0 → 0.5 (the 0 counts); Q46P −2 is dropped;
        // Q57P 2 and 1.4991 → 1.74955 → rounds to 1.75 → raw 0.75 exactly.
        row(
            "USA",
            "2020",
            "1984",
            &[("Q6P", "1"), ("Q17P", "1"), ("Q46P", "-2"), ("Q57P", "2")],
        ),
        row(
            "USA",
            "2020",
            "1965",
            &[
                ("Q6P", "1"),
                ("Q17P", "0"),
                ("Q46P", "2"),
                ("Q57P", "1.4991"),
            ],
        ),
        // age 56: older.
        row(
            "USA",
            "2020",
            "1964",
            &[("Q6P", "3"), ("Q17P", "1"), ("Q46P", "-5")],
        ),
        // Dropped: born before 1900, born after 2010, surveyed before 2015, no birth year.
        row("USA", "2020", "1899", &[("Q6P", "4")]),
        row("USA", "2020", "2011", &[("Q6P", "4")]),
        row("USA", "2014", "1980", &[("Q6P", "4")]),
        row("USA", "2020", "", &[("Q6P", "4")]),
        row("DEU", "2018", "1970", &[("Q6P", "2")]),
        row("DEU", "2018", "1975", &[("Q6P", "2")]),
        row("FRA", "2018", "1970", &[("Q6P", "-1"), ("Q46P", "3")]),
    ]
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn synthetic_wvs(dir: &Path) -> PathBuf {
    write_file(dir, "wvs.csv", &(synthetic_rows().join("\n") + "\n"))
}

fn texts_by_id(panel: &culturesteer_data::personas::PersonaPanel) -> Vec<(&str, &str)> {
    panel
        .personas
        .iter()
        .map(|p| (p.id.as_str(), p.text.as_str()))
        .collect()
}

#[test]
fn wvs_file_young_persona_is_the_exact_template() {
    let dir = tempfile::tempdir().unwrap();
    let f = synthetic_wvs(dir.path());
    let panel = load_panel(&PersonaSource::WvsFile(f), cc("USA")).unwrap();
    assert_eq!(panel.source, PersonaSourceKind::WvsFile);
    assert_eq!(
        panel
            .personas
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["young", "middle", "older", "all"]
    );
    // Child rearing (mean 0) and tolerance (all missing) are skipped.
    let expected = "You are a young adult from the United States, in your 20s and early 30s. Your worldview is \
shaped by the cultural values prevalent in your community. On matters of faith you are deeply religious. On contested \
moral choices you are very permissive on contested moral issues such as abortion, divorce and homosexuality. In your \
dealings with strangers you have very high trust in other people. Civically you are an active political participant \
who signs petitions, joins boycotts and takes part in lawful demonstrations. You are intensely proud of your country. \
Overall you are very happy with your life. On the role of women in society you are strongly egalitarian on gender \
roles. In what you prioritise in life you are strongly post-materialist, prioritising freedom, voice and \
self-expression. When you face a moral dilemma, you weigh the choices through this set of values and answer in a way \
that is consistent with the worldview above.";
    assert_eq!(panel.personas[0].text, expected);
    assert_eq!(panel.personas[0].label, "young adults (age < 36), n = 1");
}

#[test]
fn wvs_file_cohort_boundaries_filters_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = synthetic_wvs(dir.path());
    let profiles = load_wvs_file(&f, None).unwrap();
    let usa = profiles.cohorts(cc("USA")).unwrap();
    // 35 → young, 36 and 55 → middle, 56 → older; the four filtered rows count nowhere.
    let n: Vec<usize> = Cohort::ALL.iter().map(|c| usa[c].respondents).collect();
    assert_eq!(n, [1, 2, 1, 4]);
    let rel = |c: Cohort| usa[&c].profile.get(ValueDimension::Religiosity);
    assert_eq!(rel(Cohort::Young), Some(4.0));
    assert_eq!(rel(Cohort::Middle), Some(1.0));
    assert_eq!(rel(Cohort::Older), Some(3.0));
    assert_eq!(rel(Cohort::All), Some(2.25));
    // 0 is a valid answer (mean 0.5, not 1); a mean of 0 is missing.
    assert_eq!(
        usa[&Cohort::Middle]
            .profile
            .get(ValueDimension::ChildRearing),
        Some(0.5)
    );
    assert_eq!(
        usa[&Cohort::Young]
            .profile
            .get(ValueDimension::ChildRearing),
        None
    );
    assert_eq!(
        usa[&Cohort::Older]
            .profile
            .get(ValueDimension::ChildRearing),
        Some(1.0)
    );
    // Negative codes are dropped, not averaged: middle happiness is 2, older has none.
    assert_eq!(
        usa[&Cohort::Middle].profile.get(ValueDimension::Happiness),
        Some(2.0)
    );
    assert_eq!(
        usa[&Cohort::Older].profile.get(ValueDimension::Happiness),
        None
    );
    // Rounded to 3 decimals before the quartile cut.
    assert_eq!(
        usa[&Cohort::Middle]
            .profile
            .get(ValueDimension::SocialTrust),
        Some(1.75)
    );
    assert_eq!(
        usa[&Cohort::All]
            .profile
            .get(ValueDimension::ToleranceDiversity),
        None
    );

    let panel = profiles.panel(cc("USA")).unwrap();
    let t = texts_by_id(&panel);
    assert!(t[0].1.contains("you are deeply religious."));
    assert!(
        !t[0].1.contains("On raising children"),
        "a mean of 0 skips the sentence"
    );
    assert!(!t[0].1.contains("Toward people unlike yourself"));
    let middle = t[1].1;
    assert!(middle
        .starts_with("You are a middle-aged adult from the United States, in your 40s or 50s. "));
    assert!(middle.contains("On matters of faith you are highly secular."));
    assert!(
        middle.contains("On raising children you are leaning toward independence and imagination.")
    );
    assert!(middle.contains("Overall you are not very happy with your life."));
    // 1.74955 → 1.75 → raw 0.75 → the top descriptor.
    assert!(
        middle
            .contains("In your dealings with strangers you have very high trust in other people."),
        "{middle}"
    );
    let older = t[2].1;
    assert!(
        older.starts_with("You are a senior citizen from the United States, over 60 years old. ")
    );
    assert!(older.contains("On matters of faith you are moderately religious."));
    assert!(older.contains(
        "On raising children you are firmly oriented toward obedience and religious faith."
    ));
    assert!(!older.contains("Overall you are"));
    let all = t[3].1;
    assert!(
        all.starts_with("You are a adult citizen from the United States. Your worldview"),
        "{all}"
    );
    // (4 + 1 + 1 + 3) / 4 = 2.25 → raw 0.417. The dropped rows (all Q6P = 4) would lift it.
    assert!(
        all.contains("On matters of faith you are somewhat secular."),
        "{all}"
    );
    // Social trust: 2, 2, 1.4991 → 1.833 → very high; moral acceptability from the young only.
    assert!(all.contains("very permissive on contested moral issues"));
}

#[test]
fn wvs_file_missing_cohorts_take_the_whole_country_persona() {
    let dir = tempfile::tempdir().unwrap();
    let f = synthetic_wvs(dir.path());
    let panel = load_panel(&PersonaSource::WvsFile(f), cc("DEU")).unwrap();
    assert_eq!(panel.len(), 4);
    let all = &panel.personas[3];
    assert!(all
        .text
        .starts_with("You are a adult citizen from Germany."));
    assert!(all
        .text
        .contains("On matters of faith you are somewhat secular."));
    for i in [0, 2] {
        assert_eq!(panel.personas[i].text, all.text);
        assert!(
            panel.personas[i]
                .label
                .contains("whole-country persona used"),
            "{}",
            panel.personas[i].label
        );
    }
    assert!(panel.personas[1].text.contains("in your 40s or 50s"));
}

#[test]
fn wvs_file_country_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = synthetic_wvs(dir.path());
    // Not in the file: the error lists the countries that are.
    match load_panel(&PersonaSource::WvsFile(f.clone()), cc("JPN")).unwrap_err() {
        DataError::UnknownCountry {
            code,
            valid,
            dataset,
        } => {
            assert_eq!(code, "JPN");
            assert_eq!(valid, ["DEU", "FRA", "USA"]);
            assert!(dataset.ends_with("wvs.csv"));
        }
        e => panic!("{e}"),
    }
    // No religiosity answer: the reference's canary fails.
    let e = load_panel(&PersonaSource::WvsFile(f), cc("FRA"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("religiosity") && e.contains("FRA") && e.contains("--personas FILE"),
        "{e}"
    );
    // Only filtered respondents.
    let text = format!(
        "{}\n{}\n",
        header(),
        row("USA", "2010", "1970", &[("Q6P", "3")])
    );
    let e = parse_wvs_csv("w.csv", text.as_bytes(), None)
        .unwrap()
        .panel(cc("USA"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no respondent passes the filter"), "{e}");
}

#[test]
fn wvs_file_parsing_is_robust_and_errors_name_line_and_column() {
    // Semicolons, quotes, a byte-order mark and CRLF give the same profiles.
    let rows = synthetic_rows();
    let semi: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cells: Vec<String> = r
                .split(',')
                .map(|c| {
                    if i > 0 && c == "USA" {
                        "\"USA\"".to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            cells.join(";")
        })
        .collect();
    let text = format!("\u{feff}{}\r\n", semi.join("\r\n"));
    let a = parse_wvs_csv("semi.csv", text.as_bytes(), Some(&[cc("USA")])).unwrap();
    let b = parse_wvs_csv(
        "plain.csv",
        (rows.join("\n") + "\n").as_bytes(),
        Some(&[cc("USA")]),
    )
    .unwrap();
    assert_eq!(a.countries, b.countries);
    assert_eq!(a.panel(cc("USA")).unwrap(), b.panel(cc("USA")).unwrap());

    // A record with an extra field: the error names its line.
    let mut bad = synthetic_rows();
    bad[3].push_str(",7");
    let e = parse_wvs_csv("bad.csv", bad.join("\n").as_bytes(), None).unwrap_err();
    match &e {
        DataError::Line {
            file,
            line,
            message,
        } => {
            assert_eq!((file.as_str(), *line), ("bad.csv", 4), "{e}");
            assert!(message.contains("fields"), "{e}");
        }
        _ => panic!("{e}"),
    }
    // A non-numeric answer: line and column.
    let mut bad = synthetic_rows();
    bad[2] = row("USA", "2020", "1985", &[("Q6P", "very")]);
    let e = parse_wvs_csv("bad.csv", bad.join("\n").as_bytes(), None).unwrap_err();
    match &e {
        DataError::Field {
            line,
            field,
            message,
            ..
        } => {
            assert_eq!((*line, field.as_str()), (3, "Q6P"), "{e}");
            assert!(message.contains("\"very\""), "{e}");
        }
        _ => panic!("{e}"),
    }
    assert!(e.to_string().starts_with("bad.csv line 3 field Q6P"), "{e}");
    // A non-numeric birth year too.
    let mut bad = synthetic_rows();
    bad[5] = row("USA", "2020", "19x4", &[]);
    let e = parse_wvs_csv("bad.csv", bad.join("\n").as_bytes(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 6 field Q261"), "{e}");
    // An empty cell is a missing answer, not an error.
    let mut ok = synthetic_rows();
    assert!(ok[1].contains(",12345,4,0,"), "{}", ok[1]);
    ok[1] = ok[1].replacen(",12345,4,0,", ",12345,,0,", 1);
    let p = parse_wvs_csv("ok.csv", ok.join("\n").as_bytes(), None).unwrap();
    assert_eq!(
        p.cohorts(cc("USA")).unwrap()[&Cohort::Young]
            .profile
            .get(ValueDimension::Religiosity),
        None
    );
    // The standard (non-inverted) file lacks the P columns.
    let std_header = header().replace("Q6P", "Q6");
    let e = parse_wvs_csv("std.csv", format!("{std_header}\n").as_bytes(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("std.csv line 1 field Q6P") && e.contains("inverted"),
        "{e}"
    );
    // Empty file.
    let e = parse_wvs_csv("empty.csv", &b""[..], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    // Missing file.
    let e = load_wvs_file(Path::new("/nonexistent/wvs.csv"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/wvs.csv"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Descriptor logic
// ---------------------------------------------------------------------------------------------

#[test]
fn quartile_edges_direction_and_rounding() {
    use ValueDimension::*;
    assert_eq!(Religiosity.describe(3.25), "deeply religious"); // raw 0.75
    assert_eq!(Religiosity.describe(3.249), "moderately religious");
    assert_eq!(Religiosity.describe(2.5), "moderately religious"); // raw 0.5
    assert_eq!(Religiosity.describe(1.75), "somewhat secular"); // raw 0.25
    assert_eq!(Religiosity.describe(1.749), "highly secular");
    assert_eq!(Religiosity.describe(9.0), "deeply religious", "clamped");
    assert_eq!(
        MoralAcceptability.describe(3.25),
        "morally conservative on contested issues"
    ); // 2.25 / 9
       // Direction −1: a high value is the last descriptor.
    assert_eq!(
        GenderEquality.describe(1.0),
        "strongly egalitarian on gender roles"
    );
    assert_eq!(
        GenderEquality.describe(3.25),
        "somewhat traditional on gender roles"
    ); // 1 − 0.75 = 0.25
    assert_eq!(
        GenderEquality.describe(3.26),
        "strongly traditional on gender roles"
    );
    assert_eq!(
        GenderEquality.describe(1.75),
        "strongly egalitarian on gender roles"
    ); // 1 − 0.25 = 0.75
    assert_eq!(
        GenderEquality.describe(1.76),
        "moderately egalitarian on gender roles"
    );
    assert_eq!(ToleranceDiversity.describe(0.0), "highly tolerant of outgroups such as immigrants, minorities and people with different lifestyles");
    assert_eq!(
        ChildRearing.describe(0.5),
        "leaning toward independence and imagination"
    );
    // ≤ 0 is missing for means.
    let p = ValueProfile::from_scores([
        (Religiosity, 0.0),
        (Happiness, -1.0),
        (SocialTrust, 1.5),
        (ChildRearing, f64::NAN),
    ]);
    assert_eq!(p.values.keys().copied().collect::<Vec<_>>(), [SocialTrust]);
    assert!(!p.usable());
    // Python's round(x, 3).
    assert_eq!(round3(1.74955), 1.75);
    assert_eq!(round3(1.7494999), 1.749);
    assert_eq!(round3(2.0), 2.0);
    // No dimension at all: the reference's minimal fallback.
    let t = persona_text("Testland", Cohort::Older, &ValueProfile::default());
    assert_eq!(
        t,
        "You are a senior citizen from Testland, over 60 years old. You weigh moral dilemmas through the cultural values of your community."
    );
}

// ---------------------------------------------------------------------------------------------
// Shipped marginals
// ---------------------------------------------------------------------------------------------

#[test]
fn embedded_marginals_panel_for_the_usa() {
    let src = PersonaSource::Marginals(DataSource::Embedded);
    let panel = load_panel(&src, cc("USA")).unwrap();
    assert_eq!(panel.source, PersonaSourceKind::Marginals);
    assert_eq!(
        panel
            .personas
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["q25", "q50", "q75", "all"]
    );
    // Deterministic.
    assert_eq!(panel, load_panel(&src, cc("USA")).unwrap());
    // The four texts differ.
    let t = panel.texts();
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(t[i], t[j], "{i} {j}");
        }
    }
    // Religiosity: P = 5 − Q6 has shares 0.2, 0.228, 0.239, 0.333 on 1..4, so the quartiles
    // are 2, 3, 4 and the mean 2.705 (raw 0.568).
    assert!(t[0].contains("On matters of faith you are somewhat secular."));
    assert!(t[1].contains("On matters of faith you are moderately religious."));
    assert!(t[2].contains("On matters of faith you are deeply religious."));
    // The whole-country persona matches the paper's US aggregate persona (specs/disca.md §3.2:
    // the young example with moral acceptability "strictly opposed").
    let expected = [
        "On matters of faith you are moderately religious.",
        "On raising children you are firmly oriented toward independence and imagination.",
        "On contested moral choices you are strictly opposed to such contested moral acts.",
        "In your dealings with strangers you have a guarded attitude toward strangers.",
        "Civically you are an active political participant who signs petitions, joins boycotts and takes part in lawful demonstrations.",
        "You are moderately proud of your country.",
        "Overall you are rather happy with your life.",
        "On the role of women in society you are moderately egalitarian on gender roles.",
        "In what you prioritise in life you are leaning materialist, prioritising economic and physical security.",
        "Toward people unlike yourself you are highly tolerant of outgroups such as immigrants, minorities and people with different lifestyles.",
    ];
    let body = format!(
        "You are a adult citizen from the United States. Your worldview is shaped by the cultural values prevalent in your community. {} When you face a moral dilemma, you weigh the choices through this set of values and answer in a way that is consistent with the worldview above.",
        expected.join(" ")
    );
    assert_eq!(t[3], body);
    // Every shipped country gives four distinct personas.
    let m = MarginalsPersonas::load(&DataSource::Embedded).unwrap();
    let countries: Vec<_> = m
        .country_sources()
        .into_iter()
        .filter(|(_, _, k)| *k == PersonaSourceKind::Marginals)
        .collect();
    assert_eq!(countries.len(), 19);
    for (c, _, _) in countries {
        let p = m.panel(c).unwrap();
        let set: std::collections::BTreeSet<&str> = p.texts().into_iter().collect();
        assert_eq!(set.len(), 4, "{c}");
        assert!(
            p.personas
                .iter()
                .all(|x| x.text.contains("On matters of faith")),
            "{c}"
        );
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn item(id: &str, codes: &[i64], shares: &[f64], answered: f64) -> String {
    let options: Vec<String> = codes.iter().map(|c| format!("\"o{c}\"")).collect();
    let shares: Vec<String> = shares.iter().map(|s| s.to_string()).collect();
    format!(
        "{{\"id\": \"{id}\", \"question\": \"q\", \"options\": [{}], \"option_codes\": {:?}, \"distributions\": {{\"NLD\": [{}]}}, \"answered_share\": {{\"NLD\": {answered}}}}}",
        options.join(", "),
        codes,
        shares.join(", ")
    )
}

fn synthetic_marginals(items: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wvs/country_codes.json",
        "{\n \"NLD\": \"Netherlands\"\n}\n",
    );
    write(
        dir.path(),
        "wvs/wvs7_country_marginals.jsonl",
        &(items.join("\n") + "\n"),
    );
    dir
}

#[test]
fn marginals_quantiles_weights_and_recoding_by_hand() {
    let dir = synthetic_marginals(&[
        // Religiosity: P = 4, 3, 2, 1 with 0.25 each → quantiles 1, 2, 3 (edges hit exactly),
        // mean 2.5 (raw 0.5).
        item("Q6", &[1, 2, 3, 4], &[0.25, 0.25, 0.25, 0.25], 1.0),
        // Obedience mentioned by 20%: along the independence pole 1 (0.2) then 0 (0.8).
        item("Q17", &[1, 2], &[0.2, 0.8], 1.0),
        // Tolerance: Q19 20% mentioned (answered 1.0), Q20 100% mentioned (answered 0.2):
        // pooled by answered share 0.4 / 1.2 = 0.333 mentioned (equal item weights: 0.6).
        item("Q19", &[1, 2], &[0.2, 0.8], 1.0),
        item("Q20", &[1, 2], &[1.0, 0.0], 0.2),
        // National pride: code 5 ("not of this nationality") is dropped → all "very proud".
        item("Q254", &[1, 2, 3, 4, 5], &[0.5, 0.0, 0.0, 0.0, 0.5], 1.0),
    ]);
    let data = DataSource::dir(dir.path());
    let m = MarginalsPersonas::load(&data).unwrap();
    let nld = cc("NLD");
    use ValueDimension::*;
    let mean = m.profile(nld, MarginalStat::Mean).unwrap();
    assert_eq!(mean.get(Religiosity), Some(2.5));
    assert_eq!(mean.get(ChildRearing), Some(0.2));
    assert_eq!(mean.get(ToleranceDiversity), Some(0.333));
    assert_eq!(mean.get(NationalPride), Some(4.0));
    assert_eq!(
        mean.get(SocialTrust),
        None,
        "items absent from the file are skipped"
    );
    let q = |p: f64| m.profile(nld, MarginalStat::Quantile(p)).unwrap();
    assert_eq!(
        [q(0.25), q(0.5), q(0.75)].map(|x| x.get(Religiosity)),
        [Some(1.0), Some(2.0), Some(3.0)]
    );
    assert_eq!(
        [q(0.25), q(0.5), q(0.75)].map(|x| x.get(ToleranceDiversity)),
        [Some(1.0), Some(0.0), Some(0.0)]
    );
    assert_eq!(
        q(0.25).get(ChildRearing),
        Some(0.0),
        "0 is a real answer for quantiles"
    );

    let panel = load_panel(&PersonaSource::Marginals(data.clone()), nld).unwrap();
    let t = panel.texts();
    assert!(t[0].starts_with("You are a adult citizen from the Netherlands. "));
    assert!(t[0].contains("On matters of faith you are highly secular."));
    assert!(t[0].contains(
        "On raising children you are firmly oriented toward independence and imagination."
    ));
    assert!(
        t[0].contains("Toward people unlike yourself you are strongly intolerant of outgroups.")
    );
    assert!(t[1].contains("On matters of faith you are somewhat secular."));
    assert!(t[1].contains("Toward people unlike yourself you are highly tolerant"));
    assert!(t[2].contains("On matters of faith you are moderately religious."));
    assert!(t[3].contains("On matters of faith you are moderately religious."));
    assert!(t[3].contains(
        "On raising children you are firmly oriented toward independence and imagination."
    ));
    assert!(
        t[3].contains("Toward people unlike yourself you are moderately tolerant of outgroups.")
    );
    assert!(t[3].contains("You are intensely proud of your country."));
    assert!(panel.personas.iter().all(|p| !p.text.contains("strangers")));

    // Unexpected option codes are an error naming the item's line.
    let dir = synthetic_marginals(&[
        item("Q6", &[1, 2, 3, 4], &[0.25; 4], 1.0),
        item("Q57", &[0, 1], &[0.5, 0.5], 1.0),
    ]);
    let e = load_panel(&PersonaSource::Marginals(DataSource::dir(dir.path())), nld)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2 field option_codes") && e.contains("Q57"),
        "{e}"
    );
    // No religiosity: no usable profile.
    let dir = synthetic_marginals(&[item("Q46", &[1, 2, 3, 4], &[0.25; 4], 1.0)]);
    let e = load_panel(&PersonaSource::Marginals(DataSource::dir(dir.path())), nld)
        .unwrap_err()
        .to_string();
    assert!(e.contains("religiosity"), "{e}");
}

#[test]
fn a_country_without_a_source_gets_one_error_naming_the_options() {
    for e in [
        load_panel(&PersonaSource::Marginals(DataSource::Embedded), cc("XXX")).unwrap_err(),
        resolve_panel(None, &DataSource::Embedded, cc("XXX")).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains("XXX") && e.contains("--personas FILE") && e.contains("--wvs FILE"),
            "{e}"
        );
        assert!(
            e.contains("19 countries") && e.contains("AUS, BOL") && e.contains("USA, ZWE"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// JSON persona files and resolution
// ---------------------------------------------------------------------------------------------

#[test]
fn json_personas_by_country_and_shared() {
    let text = r#"{
  "USA": [
    "A farmer.",
    {"label": "teacher", "text": "A teacher."},
    {"id": "nurse", "text": "A nurse."}
  ],
  "DEU": [{"text": "Eine Lehrerin."}]
}"#;
    let f = parse_persona_json("p.json", text).unwrap();
    let usa = f.panel(cc("USA")).unwrap();
    assert_eq!(usa.source, PersonaSourceKind::Json);
    let rows: Vec<(&str, &str, &str)> = usa
        .personas
        .iter()
        .map(|p| (p.id.as_str(), p.label.as_str(), p.text.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("p1", "persona 1", "A farmer."),
            ("p2", "teacher", "A teacher."),
            ("nurse", "persona 3", "A nurse.")
        ]
    );
    assert_eq!(f.panel(cc("DEU")).unwrap().texts(), ["Eine Lehrerin."]);
    match f.panel(cc("JPN")).unwrap_err() {
        DataError::UnknownCountry { valid, .. } => assert_eq!(valid, ["DEU", "USA"]),
        e => panic!("{e}"),
    }
    // A plain list serves every country.
    let shared =
        parse_persona_json("s.json", r#"[{"label": "a", "text": "Alpha."}, "Beta."]"#).unwrap();
    assert_eq!(
        shared.panel(cc("JPN")).unwrap().texts(),
        ["Alpha.", "Beta."]
    );
    // Sixteen is the maximum.
    let sixteen = format!("[{}]", vec!["\"x\""; 16].join(","));
    let ids: Vec<String> = parse_persona_json("s.json", &sixteen)
        .unwrap()
        .panel(cc("USA"))
        .unwrap()
        .personas
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids.len(), 16);
}

#[test]
fn json_persona_errors_name_the_line() {
    let line_err = |text: &str| match parse_persona_json("p.json", text) {
        Err(DataError::Line {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, "p.json");
            (line, message)
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted {text}"),
    };
    let (line, m) =
        line_err("{\n \"USA\": [\n  \"ok\",\n  {\"label\": \"x\", \"text\": \"  \"}\n ]\n}");
    assert_eq!(line, 4, "{m}");
    assert!(m.contains("empty"), "{m}");
    let (line, m) = line_err("{\n \"USA\": []\n}");
    assert_eq!(line, 2);
    assert!(m.contains("1 to 16") && m.contains("has 0"), "{m}");
    let (_, m) = line_err(&format!("[{}]", vec!["\"x\""; 17].join(",")));
    assert!(m.contains("has 17"), "{m}");
    let (line, m) = line_err("[\n {\"txt\": \"typo\"}\n]");
    assert_eq!(line, 2);
    assert!(m.contains("txt"), "{m}");
    let (_, m) = line_err("[{\"label\": \"no text\"}]");
    assert!(m.contains("text"), "{m}");
    let (_, m) = line_err("[{\"id\": \"a\", \"text\": \"A\"}, {\"id\": \"a\", \"text\": \"B\"}]");
    assert!(m.contains("duplicate persona id \"a\""), "{m}");
    let (_, m) = line_err("{\"usa\": [\"x\"]}");
    assert!(m.contains("invalid country code"), "{m}");
    let (_, m) = line_err("[1, 2]");
    assert!(m.contains("persona"), "{m}");
    let (line, _) = line_err("{\n \"USA\": [\"x\",\n");
    assert!(line >= 2);
    assert!(matches!(
        parse_persona_json("p.json", "\"just text\""),
        Err(DataError::File { .. })
    ));
    assert!(matches!(
        parse_persona_json("p.json", "{}"),
        Err(DataError::File { .. })
    ));
    let e = load_persona_json(Path::new("/nonexistent/p.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/p.json"), "{e}");
}

#[test]
fn resolution_prefers_json_then_wvs_then_marginals() {
    let dir = tempfile::tempdir().unwrap();
    let json = write_file(dir.path(), "p.json", r#"{"USA": ["Only me."]}"#);
    let wvs = synthetic_wvs(dir.path());
    let data = DataSource::Embedded;
    let s = PersonaSource::resolve(Some(&json), Some(&wvs), &data);
    assert_eq!(s, PersonaSource::Json(json.clone()));
    assert_eq!(load_panel(&s, cc("USA")).unwrap().texts(), ["Only me."]);
    let s = PersonaSource::resolve(None, Some(&wvs), &data);
    assert_eq!(
        load_panel(&s, cc("USA")).unwrap().source,
        PersonaSourceKind::WvsFile
    );
    let s = PersonaSource::resolve(None, None, &data);
    assert_eq!(s, PersonaSource::Marginals(DataSource::Embedded));
    assert_eq!(
        resolve_panel(Some(&json), &data, cc("USA")).unwrap().len(),
        1
    );
    assert_eq!(resolve_panel(None, &data, cc("USA")).unwrap().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// WVS-profile prompt
// ---------------------------------------------------------------------------------------------

#[test]
fn wvs_profile_prompt() {
    use ValueDimension::*;
    let p = ValueProfile::from_scores([(Religiosity, 4.0), (NationalPride, 1.0), (Happiness, 2.5)]);
    assert_eq!(
        render_wvs_profile("Testland", &p),
        "Answer as a typical person from Testland would. According to the World Values Survey (wave 7), people in \
Testland are on average: religiosity: deeply religious; national pride: not proud of their country; happiness: rather \
happy with their life."
    );
    assert_eq!(
        render_wvs_profile("Testland", &ValueProfile::default()),
        "Answer as a typical person from Testland would."
    );

    let usa = wvs_profile_text(&DataSource::Embedded, cc("USA")).unwrap();
    assert!(
        usa.starts_with("Answer as a typical person from the United States would. According to"),
        "{usa}"
    );
    assert!(
        usa.contains("religiosity: moderately religious; child-rearing values: firmly oriented"),
        "{usa}"
    );
    assert!(!usa.contains("your"), "{usa}");
    assert!(wvs_profile_text(&DataSource::Embedded, cc("XXX"))
        .unwrap_err()
        .to_string()
        .contains("--wvs FILE"));

    // From a WVS file: the "all" group.
    let dir = tempfile::tempdir().unwrap();
    let f = synthetic_wvs(dir.path());
    let all = load_country_profile(&PersonaSource::WvsFile(f), cc("USA")).unwrap();
    assert_eq!(all.get(Religiosity), Some(2.25));
    // A JSON source has no profile.
    let j = write_file(dir.path(), "p.json", "[\"x\"]");
    let e = load_country_profile(&PersonaSource::Json(j), cc("USA"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a WVS value profile"), "{e}");
}
