//! Cultural Palette data: the continent table covers every shipped country, overrides and
//! validation work, and the templates render.

use std::collections::BTreeSet;
use std::fs;

use culturesteer_core::CountryCode;
use culturesteer_data::disca::{load_all_scenario_pools, DiscaHumanTargets};
use culturesteer_data::goqa::GlobalOpinionQa;
use culturesteer_data::hofstede::{load_insights_snapshot, HofstedeTable};
use culturesteer_data::moral_machine::MoralMachinePreferences;
use culturesteer_data::multitp::load_country_language_metadata;
use culturesteer_data::palette::{
    names, Continent, ContinentMap, Origin, PaletteTemplates, Role, Stage, Variant, CULTURESPA_18,
    SOURCE_CULTURESPA, SOURCE_M49, SOURCE_UNSPECIFIED, SOURCE_USER,
};
use culturesteer_data::wvs::{WvsCountries, WvsMarginals};
use culturesteer_data::{DataError, DataSource};

const EMB: DataSource = DataSource::Embedded;

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn map() -> ContinentMap {
    ContinentMap::embedded().unwrap()
}

fn assert_all_mapped(what: &str, codes: impl IntoIterator<Item = CountryCode>) {
    let m = map();
    let mut n = 0;
    for c in codes {
        n += 1;
        if let Err(e) = m.continent_of(&c) {
            panic!("{what}: {c} has no continent: {e}");
        }
    }
    assert!(n > 0, "{what}: no countries");
}

// --- continent table ----------------------------------------------------------------------

#[test]
fn every_shipped_country_has_a_continent() {
    let goqa = GlobalOpinionQa::load(&EMB).unwrap();
    assert_all_mapped("goqa", goqa.countries());

    let hof = HofstedeTable::load(&EMB).unwrap();
    assert_all_mapped("hofstede six_dimensions", hof.rows.iter().map(|r| r.code));
    let snap = load_insights_snapshot(&EMB).unwrap();
    assert_all_mapped("hofstede snapshot", snap.iter().map(|r| r.code));

    let mm = MoralMachinePreferences::load(&EMB).unwrap();
    assert_eq!(mm.countries().len(), 196);
    assert_all_mapped("moral machine", mm.countries());

    let wvs = WvsCountries::load(&EMB).unwrap();
    assert_all_mapped("wvs countries", wvs.names.keys().copied());
    let marg = WvsMarginals::load(&EMB).unwrap();
    let marg_codes: BTreeSet<CountryCode> = marg
        .items
        .iter()
        .flat_map(|i| i.distributions.keys().copied())
        .collect();
    assert_all_mapped("wvs marginals", marg_codes);

    let disca = DiscaHumanTargets::load(&EMB).unwrap();
    assert_all_mapped("disca targets", disca.countries());
    let pools = load_all_scenario_pools(&EMB).unwrap();
    assert_all_mapped("disca pools", pools.iter().map(|p| p.country));

    let meta = load_country_language_metadata(&EMB).unwrap();
    assert_all_mapped("multitp metadata", meta.iter().map(|r| r.iso3));
}

#[test]
fn known_mappings() {
    let m = map();
    for (code, want) in [
        ("USA", Continent::America),
        ("BRA", Continent::America),
        ("MEX", Continent::America),
        ("NGA", Continent::Africa),
        ("EGY", Continent::Africa),
        ("DEU", Continent::Europe),
        ("RUS", Continent::Asia),
        ("JPN", Continent::Asia),
        ("TUR", Continent::Asia),
        ("CYP", Continent::Asia),
        ("TWN", Continent::Asia),
        ("AUS", Continent::Oceania),
        ("NZL", Continent::Oceania),
    ] {
        assert_eq!(m.continent_of(&cc(code)).unwrap(), want, "{code}");
    }
}

#[test]
fn table_shape() {
    let m = map();
    assert_eq!(m.len(), 248);
    assert_eq!(m.file(), "data/continents/continents.csv");
    let counts: Vec<usize> = Continent::ALL
        .iter()
        .map(|c| m.countries_in(*c).len())
        .collect();
    assert_eq!(counts, vec![60, 57, 52, 50, 29]);
    assert_eq!(
        ContinentMap::load(&EMB).unwrap(),
        m,
        "load(Embedded) = embedded()"
    );
}

#[test]
fn unknown_country_names_code_and_file() {
    let err = map().continent_of(&cc("ATA")).unwrap_err();
    assert!(matches!(err, DataError::UnknownCountry { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown country \"ATA\" in data/continents/continents.csv"),
        "{msg}"
    );
}

#[test]
fn the_default_grouping_is_culturespas_for_its_18_countries_and_m49_otherwise() {
    let m = map();
    let groups = [
        (Continent::America, ["USA", "CAN", "BOL", "BRA"].as_slice()),
        (Continent::Europe, &["GBR", "NLD", "DEU", "UKR"]),
        (Continent::Asia, &["CHN", "RUS", "IND", "THA"]),
        (Continent::Africa, &["KEN", "NGA", "ETH", "ZWE"]),
        (Continent::Oceania, &["AUS", "NZL"]),
    ];
    for (continent, codes) in groups {
        for c in codes {
            assert_eq!(m.continent_of(&cc(c)).unwrap(), continent, "{c}");
            assert!(CULTURESPA_18.contains(&(*c, continent)), "{c}");
        }
    }
    let mut spa = 0;
    for (code, _) in m.iter() {
        let source = m.source_of(&code).unwrap();
        if CULTURESPA_18.iter().any(|(c, _)| *c == code.as_str()) {
            assert_eq!(source, SOURCE_CULTURESPA, "{code}");
            spa += 1;
        } else if code.as_str() == "TWN" {
            assert_eq!(source, "geography", "M49 lists no Taiwan");
        } else {
            assert_eq!(source, SOURCE_M49, "{code}");
        }
    }
    assert_eq!(spa, 18);
    assert!(
        m.overrides().is_empty(),
        "the grouping is the table, not an override"
    );
    // Russia is the one country where CultureSPA and M49 differ; an override restores M49.
    let o = m.with_override_spec("RUS=Europe").unwrap();
    assert_eq!(o.continent_of(&cc("RUS")).unwrap(), Continent::Europe);
    assert_eq!(o.source_of(&cc("RUS")), Some(SOURCE_USER));
    assert_eq!(o.source_of(&cc("CHN")), Some(SOURCE_CULTURESPA));
    assert_eq!(o.source_of(&cc("ATA")), None);
}

#[test]
fn the_source_column_is_optional_and_user_is_reserved() {
    let f = "t.csv";
    let m = ContinentMap::parse(f, "iso3,continent\nUSA,America\n").unwrap();
    assert_eq!(m.source_of(&cc("USA")), Some(SOURCE_UNSPECIFIED));
    let m = ContinentMap::parse(
        f,
        "iso3,continent,source\nUSA,America,\nFRA,Europe, mine \n",
    )
    .unwrap();
    assert_eq!(m.source_of(&cc("USA")), Some(SOURCE_UNSPECIFIED));
    assert_eq!(m.source_of(&cc("FRA")), Some("mine"));
    let e = ContinentMap::parse(f, "iso3,continent,source\nUSA,America,User\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.csv") && e.contains("source") && !e.contains('\n'),
        "{e}"
    );
}

// --- overrides --------------------------------------------------------------------------------

#[test]
fn overrides_replace_and_add() {
    let m = map().with_overrides(&[
        (cc("USA"), Continent::Europe),
        (cc("XKX"), Continent::Europe),
    ]);
    assert_eq!(m.continent_of(&cc("USA")).unwrap(), Continent::Europe);
    assert_eq!(m.continent_of(&cc("XKX")).unwrap(), Continent::Europe);
    assert_eq!(m.continent_of(&cc("CAN")).unwrap(), Continent::America);
    assert_eq!(m.len(), 249);
    assert_eq!(m.overrides().len(), 2);
}

#[test]
fn override_spec_parsing() {
    let o = ContinentMap::parse_overrides(" usa=europe , RUS = Asia,, cyp=Europe ").unwrap();
    assert_eq!(
        o,
        vec![
            (cc("USA"), Continent::Europe),
            (cc("RUS"), Continent::Asia),
            (cc("CYP"), Continent::Europe),
        ]
    );
    assert!(ContinentMap::parse_overrides("").unwrap().is_empty());
    let m = map().with_override_spec("RUS=Asia,CYP=Europe").unwrap();
    assert_eq!(m.continent_of(&cc("RUS")).unwrap(), Continent::Asia);
    assert_eq!(m.continent_of(&cc("CYP")).unwrap(), Continent::Europe);

    let bad = |s: &str| ContinentMap::parse_overrides(s).unwrap_err().to_string();
    assert_eq!(
        bad("USA=Europe,RUS=Eurasia"),
        "continent overrides: entry \"RUS=Eurasia\": unknown continent \"Eurasia\": expected one of Africa, America, Asia, Europe, Oceania"
    );
    assert!(bad("USA").contains("entry \"USA\": expected CODE=Continent"));
    assert!(bad("US=Asia").contains("three ASCII uppercase letters"));
    assert!(bad("USA=Asia,usa=Europe").contains("USA is given twice"));
}

// --- validation -------------------------------------------------------------------------------

#[test]
fn malformed_csv_errors_name_line_and_field() {
    let f = "c.csv";
    let err = |t: &str| ContinentMap::parse(f, t).unwrap_err().to_string();
    assert_eq!(
        err("iso3,continent\nUSA,America\nDEU,Eurasia\n"),
        "c.csv line 3 field continent: unknown continent \"Eurasia\": expected one of Africa, America, Asia, Europe, Oceania"
    );
    assert!(err("iso3,continent\nusa,America\n")
        .starts_with("c.csv line 2 field iso3: invalid country code \"usa\""));
    assert_eq!(
        err("iso3,continent\nUSA,America\nCAN,America\nUSA,Europe\n"),
        "c.csv line 4 field iso3: duplicate country USA (first on line 2)"
    );
    assert_eq!(
        err("iso3,continent\nUSA,America\nCAN,America,extra\n"),
        "c.csv line 3: record has 3 fields, the header has 2"
    );
    assert_eq!(
        err("iso3,continent\nUSA,\n"),
        "c.csv line 2 field continent: is empty"
    );
    assert_eq!(
        err("iso3,region\nUSA,America\n"),
        "c.csv line 1 field continent: column missing from the header"
    );
    assert_eq!(err("iso3,continent\n"), "c.csv: no countries");

    // accepted: case-insensitive names, "Americas", extra columns
    let m =
        ContinentMap::parse(f, "iso3,continent,note\nUSA,americas,x\nFRA, EUROPE ,y\n").unwrap();
    assert_eq!(m.continent_of(&cc("USA")).unwrap(), Continent::America);
    assert_eq!(m.continent_of(&cc("FRA")).unwrap(), Continent::Europe);
}

#[test]
fn from_path_and_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("continents");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("continents.csv");
    fs::write(&p, "iso3,continent\nUSA,America\nVNM,Asia\nVNM,Asia\n").unwrap();
    let e = ContinentMap::from_path(&p).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} line 4 field iso3: duplicate country VNM (first on line 3)",
            p.display()
        )
    );
    fs::write(&p, "iso3,continent\nUSA,America\nVNM,Asia\n").unwrap();
    let m = ContinentMap::load(&DataSource::dir(tmp.path())).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m.file(), p.display().to_string());
    let e = m.continent_of(&cc("DEU")).unwrap_err().to_string();
    assert!(
        e.contains("\"DEU\"") && e.contains(&p.display().to_string()),
        "{e}"
    );
    assert!(ContinentMap::from_path(tmp.path().join("nope.csv")).is_err());
}

#[test]
fn continent_names() {
    assert_eq!(Continent::ALL.len(), 5);
    for c in Continent::ALL {
        assert_eq!(c.to_string().parse::<Continent>().unwrap(), c);
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, format!("\"{c}\""));
        assert_eq!(serde_json::from_str::<Continent>(&j).unwrap(), c);
    }
    assert_eq!("Americas".parse::<Continent>().unwrap(), Continent::America);
    assert_eq!("oceania".parse::<Continent>().unwrap(), Continent::Oceania);
    assert!("Antarctica".parse::<Continent>().is_err());
    assert!("".parse::<Continent>().is_err());
}

// --- templates --------------------------------------------------------------------------------

const ALL_NAMES: [&str; 8] = [
    names::AGENT_SYSTEM,
    names::AGENT_DRAFT,
    names::DRAFT_ENTRY,
    names::META_SYSTEM,
    names::META_AGGREGATE,
    names::META_AGGREGATE_NO_DRAFTS,
    names::DECIDE_TURN,
    names::DECIDE_SYSTEM_NO_SELF_REGULATION,
];

const CONTEXT: [(&str, &str); 6] = [
    ("country", "Nigeria"),
    ("continent", "Africa"),
    ("question", "Q?\nA. yes\nB. no"),
    ("draft", "DRAFT"),
    ("drafts", "DRAFTS"),
    ("summary", "SUMMARY"),
];

fn templates() -> PaletteTemplates {
    PaletteTemplates::embedded().unwrap()
}

#[test]
fn templates_for_all_stages_and_variants() {
    let t = templates();
    assert_eq!(t.names().collect::<Vec<_>>().len(), 8);
    for n in ALL_NAMES {
        t.get(n).unwrap();
    }
    for stage in Stage::ALL {
        assert!(t.iter().any(|(_, x)| x.stage == stage), "{stage:?}");
    }
    let stages = |v: Variant| -> BTreeSet<Stage> {
        t.for_variant(v).into_iter().map(|(_, x)| x.stage).collect()
    };
    assert_eq!(stages(Variant::Full), Stage::ALL.into_iter().collect());
    assert_eq!(
        stages(Variant::NoDrafts),
        [Stage::Aggregate, Stage::Decide].into_iter().collect()
    );
    assert_eq!(
        stages(Variant::NoSelfRegulation),
        [Stage::Draft, Stage::Decide].into_iter().collect()
    );
    // the no-drafts ablation asks no continent agent; the no-SR one skips the meta summary
    assert!(t
        .for_variant(Variant::NoDrafts)
        .iter()
        .all(|(_, x)| !x.uses("drafts") && !x.uses("draft")));
    assert!(t
        .for_variant(Variant::NoSelfRegulation)
        .iter()
        .all(|(_, x)| !x.uses("summary")));

    let origins: Vec<(&str, Origin)> = t.iter().map(|(n, x)| (n, x.origin)).collect();
    for (n, o) in origins {
        let want = if n == names::AGENT_SYSTEM {
            Origin::Paper
        } else {
            Origin::Ours
        };
        assert_eq!(o, want, "{n}");
    }
    assert_eq!(t.get(names::DRAFT_ENTRY).unwrap().role, Role::Fragment);
    assert_eq!(t.get(names::DECIDE_TURN).unwrap().role, Role::User);
    // drafts are about the target country (the stage 1)
    assert!(t.get(names::AGENT_DRAFT).unwrap().uses("country"));
    assert_eq!(PaletteTemplates::load(&EMB).unwrap(), t);
}

#[test]
fn render_fills_placeholders() {
    let t = templates();
    assert_eq!(
        t.render(names::AGENT_SYSTEM, &[("continent", "Asia")]).unwrap(),
        "You are a knowledgeable chatbot about Asia, including its culture, history, and nuances, providing insightful and context-aware responses."
    );
    for n in ALL_NAMES {
        let out = t.render(n, &CONTEXT).unwrap();
        assert!(!out.contains('{') && !out.contains('}'), "{n}: {out}");
        for p in &t.get(n).unwrap().placeholders {
            let v = CONTEXT.iter().find(|(k, _)| k == p).unwrap().1;
            assert!(out.contains(v), "{n} lacks {p}");
        }
    }
    let s = t
        .render(names::DECIDE_TURN, &[("country", "Japan")])
        .unwrap();
    assert!(s.contains("Japan") && s.ends_with("one option."), "{s}");
    // values are inserted verbatim, braces in values are not re-read
    let s = t
        .render(
            names::DECIDE_TURN,
            &[("country", "{x}"), ("summary", "{summary}")],
        )
        .unwrap();
    assert!(s.contains("{x}") && !s.contains("{summary}"));
}

#[test]
fn render_drafts_joins_entries() {
    let t = templates();
    let d = t
        .render_drafts(&[(Continent::Africa, "a"), (Continent::Europe, "e")])
        .unwrap();
    assert_eq!(d, "[Africa agent]\na\n\n[Europe agent]\ne");
    assert_eq!(t.draft_separator(), "\n\n");
}

#[test]
fn render_errors_name_template_and_placeholder() {
    let t = templates();
    let e = t
        .render(
            names::AGENT_DRAFT,
            &[("continent", "Asia"), ("country", "Japan")],
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "data/palette/templates.json template agent_draft: no value for placeholder {question}"
    );
    assert!(!e.contains('\n'));
    let e = t.render("nope", &CONTEXT).unwrap_err().to_string();
    assert!(
        e.starts_with("data/palette/templates.json: no template named \"nope\""),
        "{e}"
    );
}

/// The shipped file with `from` replaced by `to` (once; `from` must occur).
fn edited(from: &str, to: &str) -> String {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/palette/templates.json"
    ))
    .unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn template_file_validation() {
    let f = "t.json";
    let err = |text: &str| PaletteTemplates::parse(f, text).unwrap_err().to_string();
    let shipped = edited("", "");
    let line_of = |key: &str| {
        shipped
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("\"{key}\":")))
            .unwrap()
            + 1
    };

    // a placeholder in the text that is not declared
    let e = err(&edited(
        "Answer as a typical person from {country} would answer the question above,",
        "Answer as a typical person from {country} in {region} would answer the question above,",
    ));
    assert_eq!(
        e,
        format!(
            "t.json line {} field templates.decide_turn.text: unknown placeholder {{region}}: not listed in placeholders",
            line_of("decide_turn")
        )
    );
    // declared but unused
    let e = err(&edited(
        "\"placeholders\": [],",
        "\"placeholders\": [\"country\"],",
    ));
    assert!(
        e.contains("field templates.meta_system.placeholders: {country} is listed but not used"),
        "{e}"
    );
    // bad braces
    let e = err(&edited("[{continent} agent]", "[{continent agent]"));
    assert!(
        e.contains("field templates.draft_entry.text: invalid placeholder"),
        "{e}"
    );
    // a required placeholder removed
    let e = err(&edited(
        "\"placeholders\": [\n        \"continent\",\n        \"draft\"\n      ],\n      \"text\": \"[{continent} agent]\\n{draft}\"",
        "\"placeholders\": [\n        \"continent\"\n      ],\n      \"text\": \"[{continent} agent]\"",
    ));
    assert!(
        e.contains("field templates.draft_entry.placeholders: must use {draft}"),
        "{e}"
    );
    // a placeholder the method cannot fill
    let e = err(&edited(
        "\"text\": \"[{continent} agent]\\n{draft}\"",
        "\"text\": \"[{continent} agent]\\n{draft} {summary}\"",
    )
    .replacen(
        "\"continent\",\n        \"draft\"\n",
        "\"continent\",\n        \"draft\",\n        \"summary\"\n",
        1,
    ));
    assert!(
        e.contains("templates.draft_entry.placeholders: {summary} is not available here"),
        "{e}"
    );
    // missing template, wrong stage, bad JSON, bad format
    let e = err(&edited("\"meta_aggregate_no_drafts\":", "\"renamed\":"));
    assert!(
        e.contains("field templates.meta_aggregate_no_drafts: missing"),
        "{e}"
    );
    let e = err(&edited("\"stage\": \"decide\"", "\"stage\": \"draft\""));
    assert!(e.contains(".stage: is Draft, expected Decide"), "{e}");
    let e = err(&edited("\"format\": 1,", "\"format\": 1"));
    assert!(e.starts_with("t.json line 3: invalid template file"), "{e}");
    let e = err(&edited("\"format\": 1,", "\"format\": 2,"));
    assert_eq!(
        e,
        "t.json line 2 field format: format 2 is not supported (expected 1)"
    );
    let e = err(&edited("\"origin\": \"ours\"", "\"origin\": \"them\""));
    assert!(e.contains("unknown variant `them`"), "{e}");

    // literal braces are allowed and rendered
    let t = PaletteTemplates::parse(
        f,
        &edited(
            "Answer as a typical person",
            "{{Note}} Answer as a typical person",
        ),
    )
    .unwrap();
    let s = t.render(names::DECIDE_TURN, &CONTEXT).unwrap();
    assert!(s.starts_with("{Note} Answer as"), "{s}");
}

#[test]
fn templates_from_path_and_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("palette");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("templates.json");
    fs::write(
        &p,
        edited("Answer as a typical person", "Reply as a typical person"),
    )
    .unwrap();
    let t = PaletteTemplates::load(&DataSource::dir(tmp.path())).unwrap();
    assert_eq!(t.file(), p.display().to_string());
    assert!(t
        .render(names::DECIDE_TURN, &CONTEXT)
        .unwrap()
        .starts_with("Reply as"));
    assert_eq!(PaletteTemplates::from_path(&p).unwrap(), t);
    let e = t.render(names::AGENT_DRAFT, &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} template agent_draft: no value for placeholder {{country}}",
            p.display()
        )
    );
}
