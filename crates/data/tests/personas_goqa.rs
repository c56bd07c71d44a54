//! The GlobalOpinionQA fallback of the default persona source: every DISCA country gets a
//! panel, the marginals countries are unchanged, provenance is recorded, and the mapping file
//! is validated.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use culturesteer_core::CountryCode;
use culturesteer_data::personas::{
    load_panel, resolve_panel, shipped_countries, shipped_country_sources, wvs_profile_text,
    DimensionOrigin, GoqaPersonaItems, MarginalsPersonas, Persona, PersonaPanel, PersonaSource,
    PersonaSourceKind, ValueDimension,
};
use culturesteer_data::wvs::{parse_goqa_wvs_items, GoqaWvsItems};
use culturesteer_data::DataSource;

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

const DISCA_20: [&str; 20] = [
    "USA", "GBR", "DEU", "ARG", "BRA", "MEX", "COL", "VNM", "MMR", "THA", "MYS", "IDN", "CHN",
    "JPN", "BGD", "IRN", "SRB", "ROU", "KGZ", "ETH",
];
const MARGINALS_8: [&str; 8] = ["USA", "GBR", "DEU", "BRA", "MEX", "CHN", "THA", "ETH"];
const GOQA_12: [&str; 12] = [
    "ARG", "COL", "VNM", "MMR", "MYS", "IDN", "JPN", "BGD", "IRN", "SRB", "ROU", "KGZ",
];

fn default_source() -> PersonaSource {
    PersonaSource::resolve(None, None, &DataSource::Embedded)
}

/// The embedded marginals with their GlobalOpinionQA fallback, loaded once for all tests.
fn embedded() -> &'static MarginalsPersonas {
    static M: OnceLock<MarginalsPersonas> = OnceLock::new();
    M.get_or_init(|| MarginalsPersonas::load(&DataSource::Embedded).unwrap())
}

/// The panel of DISCA country `c` from the default source, built once for all tests through
/// `load_panel` (a country it fails for panics with the country and the error).
fn disca_panel(c: &str) -> &'static PersonaPanel {
    static PANELS: OnceLock<BTreeMap<&'static str, PersonaPanel>> = OnceLock::new();
    let panels = PANELS.get_or_init(|| {
        let src = default_source();
        DISCA_20
            .iter()
            .map(|&c| {
                let p = load_panel(&src, cc(c)).unwrap_or_else(|e| panic!("{c}: {e}"));
                (c, p)
            })
            .collect()
    });
    &panels[c]
}

#[test]
fn every_disca_country_gets_a_four_persona_panel() {
    for c in DISCA_20 {
        let p = disca_panel(c);
        assert_eq!(p.len(), 4, "{c}");
        assert_eq!(
            p.personas.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["q25", "q50", "q75", "all"],
            "{c}"
        );
        let want = if MARGINALS_8.contains(&c) {
            PersonaSourceKind::Marginals
        } else {
            PersonaSourceKind::Goqa
        };
        assert_eq!(p.source, want, "{c}");
        // No source mixing within a country.
        let origin = if want == PersonaSourceKind::Goqa {
            DimensionOrigin::GlobalOpinionQa
        } else {
            DimensionOrigin::Wvs7Marginals
        };
        assert!(p.dimensions.iter().all(|d| d.source == origin), "{c}");
        assert_eq!(p.dimensions.len() + p.missing_dimensions.len(), 10, "{c}");
        assert!(!p.dimensions.is_empty(), "{c}");
        // Same through resolve_panel.
        assert_eq!(
            &resolve_panel(None, &DataSource::Embedded, cc(c)).unwrap(),
            p
        );
        // The WVS-profile prompt works too.
        assert!(
            wvs_profile_text(&DataSource::Embedded, cc(c)).is_ok(),
            "{c}"
        );
    }
    let listed: BTreeSet<CountryCode> = shipped_countries(&DataSource::Embedded)
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert!(DISCA_20.iter().all(|c| listed.contains(&cc(c))));
    let sources = shipped_country_sources(&DataSource::Embedded).unwrap();
    let kind = |c: &str| sources.iter().find(|(x, _, _)| *x == cc(c)).unwrap().2;
    assert_eq!(kind("USA"), PersonaSourceKind::Marginals);
    assert_eq!(kind("IRN"), PersonaSourceKind::Goqa);
    assert_eq!(
        sources
            .iter()
            .filter(|(_, _, k)| *k == PersonaSourceKind::Marginals)
            .count(),
        19
    );
    let irn = sources.iter().find(|(c, _, _)| *c == cc("IRN")).unwrap();
    assert_eq!(irn.1, "Iran");
}

#[test]
fn marginals_panels_are_unchanged() {
    // Captured from the code before the GOQA fallback existed (all 19 marginals countries).
    let text = include_str!("fixtures/marginals_panels_before_goqa.json");
    let before: std::collections::BTreeMap<String, Vec<Persona>> =
        serde_json::from_str(text).unwrap();
    assert_eq!(before.len(), 19);
    for c in MARGINALS_8 {
        assert!(before.contains_key(c), "{c}");
    }
    let m = embedded();
    for (c, personas) in &before {
        let p = m.panel(cc(c)).unwrap();
        assert_eq!(&p.personas, personas, "{c}");
        assert_eq!(p.source, PersonaSourceKind::Marginals);
    }
}

#[test]
fn iran_names_its_goqa_provenance() {
    let p = disca_panel("IRN");
    assert_eq!(p.source, PersonaSourceKind::Goqa);
    assert_eq!(p.source.to_string(), "WVS items of GlobalOpinionQA");
    use ValueDimension::*;
    assert_eq!(
        p.dimensions.iter().map(|d| d.dimension).collect::<Vec<_>>(),
        [PoliticalParticipation, ToleranceDiversity]
    );
    assert_eq!(p.dimensions[0].items, ["Q199 (goqa-f556c6365188)"]);
    assert_eq!(
        p.dimensions[1].items,
        [
            "Q19 (goqa-354a61422525)",
            "Q20 (goqa-15c3c52b2061)",
            "Q23 (goqa-74a15e6490c7)"
        ]
    );
    assert_eq!(
        p.missing_dimensions,
        [
            Religiosity,
            ChildRearing,
            MoralAcceptability,
            SocialTrust,
            NationalPride,
            Happiness,
            GenderEquality,
            MaterialismOrientation
        ]
    );
    for x in &p.personas {
        assert!(
            x.text.starts_with("You are a adult citizen from Iran. "),
            "{}",
            x.text
        );
        assert!(x.text.contains("Civically you are"));
        assert!(x.text.contains("Toward people unlike yourself"));
        assert!(!x.text.contains("On matters of faith"));
    }
    // Serialised provenance.
    let v = serde_json::to_value(p).unwrap();
    assert_eq!(v["source"], "goqa");
    assert_eq!(v["dimensions"][0]["dimension"], "political_participation");
    assert_eq!(v["dimensions"][0]["source"], "globalopinionqa");
    assert_eq!(v["missing_dimensions"][0], "religiosity");
    // A marginals country records its items without GOQA ids.
    let usa = disca_panel("USA");
    assert_eq!(usa.dimensions.len(), 10);
    assert_eq!(usa.dimensions[0].items, ["Q6"]);
    assert_eq!(usa.dimensions[0].source, DimensionOrigin::Wvs7Marginals);
    // Old panel JSON (without provenance) still parses.
    let old = r#"{"country": "USA", "source": "marginals", "personas": [{"id": "p1", "label": "l", "text": "t"}]}"#;
    let p: PersonaPanel = serde_json::from_str(old).unwrap();
    assert!(p.dimensions.is_empty() && p.missing_dimensions.is_empty());
}

#[test]
fn goqa_panels_differ_where_the_data_allow() {
    // Distinct texts among the four personas (BGD: every dimension's quartiles and mean fall
    // in the same descriptor, so its four texts are identical).
    let expected = [
        ("ARG", 4),
        ("COL", 3),
        ("VNM", 4),
        ("MMR", 4),
        ("MYS", 3),
        ("IDN", 3),
        ("JPN", 4),
        ("BGD", 1),
        ("IRN", 3),
        ("SRB", 4),
        ("ROU", 3),
        ("KGZ", 4),
    ];
    assert_eq!(expected.map(|e| e.0), GOQA_12);
    for (c, n) in expected {
        let p = disca_panel(c);
        let set: BTreeSet<&str> = p.texts().into_iter().collect();
        assert_eq!(set.len(), n, "{c}");
    }
}

#[test]
fn an_unknown_country_is_one_error() {
    for code in ["XXX", "ATA"] {
        for e in [
            load_panel(&default_source(), cc(code)).unwrap_err(),
            resolve_panel(None, &DataSource::Embedded, cc(code)).unwrap_err(),
            wvs_profile_text(&DataSource::Embedded, cc(code)).unwrap_err(),
        ] {
            let e = e.to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
            assert!(
                e.contains(&format!("no persona source for {code}"))
                    && e.contains("--personas FILE")
                    && e.contains("--wvs FILE"),
                "{e}"
            );
            assert!(
                e.contains("19 countries with shipped WVS-7 marginals"),
                "{e}"
            );
            assert!(e.contains("WVS items in GlobalOpinionQA"), "{e}");
            assert!(
                e.contains("IRN") && e.contains("VNM") && e.contains("USA"),
                "{e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The mapping file
// ---------------------------------------------------------------------------------------------

#[test]
fn the_shipped_mapping_is_valid() {
    let m = GoqaWvsItems::load(&DataSource::Embedded).unwrap();
    assert_eq!(m.items.len(), 18);
    assert_eq!(m.items[0].wvs_item, "Q6");
    assert_eq!(m.items[0].goqa_id, "goqa-c474a7e9f85a");
    assert_eq!(
        m.items[0].option_codes,
        [Some(1), Some(2), Some(3), Some(4), None, None, None]
    );
    let g = embedded().goqa.as_ref().unwrap();
    // Derived shares sum to 1; answered shares are in (0, 1].
    for item in &g.items.items {
        for (c, s) in &item.distributions {
            assert!(
                (s.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{} {c}",
                item.id
            );
            let a = item.answered_share[c];
            assert!(a > 0.0 && a <= 1.0, "{} {c}", item.id);
        }
    }
}

fn entry(item: &str, id: &str, codes: &str) -> String {
    format!("    {{\"wvs_item\": \"{item}\", \"goqa_id\": \"{id}\", \"option_codes\": {codes}}}")
}

fn mapping(entries: &[String]) -> String {
    format!("{{\n  \"items\": [\n{}\n  ]\n}}\n", entries.join(",\n"))
}

#[test]
fn mapping_errors_name_the_file_line_and_field() {
    let f = "data/wvs/goqa_wvs_items.json";
    let ok = entry("Q6", "goqa-c474a7e9f85a", "[1, 2, 3, 4, null, null, null]");
    let cases = [
        (
            mapping(&[ok.clone(), entry("Q999", "goqa-000000000000", "[1, 2]")]),
            "line 4 field items[1].wvs_item: Q999 feeds no persona value dimension",
        ),
        (
            mapping(&[
                ok.clone(),
                entry("Q57", "goqa-343e6a6bf836", "[1, 3, null]"),
            ]),
            "line 4 field items[1].option_codes[1]: 3 is not a WVS code of Q57",
        ),
        (
            mapping(&[
                ok.clone(),
                entry("Q57", "goqa-343e6a6bf836", "[1, 1, null]"),
            ]),
            "line 4 field items[1].option_codes[1]: code 1 repeats",
        ),
        (
            mapping(&[
                ok.clone(),
                entry("Q57", "goqa-343e6a6bf836", "[null, null]"),
            ]),
            "line 4 field items[1].option_codes: no option has a WVS code",
        ),
        (
            mapping(&[ok.clone(), entry("Q6", "goqa-343e6a6bf836", "[1, 2]")]),
            "line 4 field items[1].wvs_item: Q6 is mapped twice (also at line 3)",
        ),
        (
            mapping(&[ok.clone(), entry("Q57", "goqa-c474a7e9f85a", "[1, 2]")]),
            "line 4 field items[1].goqa_id: goqa-c474a7e9f85a is mapped twice",
        ),
        (
            mapping(&[ok.clone(), entry("Q57", "c474a7e9f85a", "[1, 2]")]),
            "line 4 field items[1].goqa_id: \"c474a7e9f85a\" is not goqa- + 12 hex digits",
        ),
        (
            mapping(&[ok.clone(), entry("Q57", "goqa-343e6a6bf836", "[1, \"2\"]")]),
            "line 4 field items[1].option_codes[1]: expected a WVS code or null, got a string",
        ),
        (
            mapping(&[entry("Q57", "goqa-343e6a6bf836", "[1, 2]").replace("}", ", \"x\": 1}")]),
            "line 3 field items[0].x: unknown field",
        ),
        (
            mapping(&[
                entry("Q57", "goqa-343e6a6bf836", "[1, 2]").replace("\"goqa_id\"", "\"goqa\"")
            ]),
            "line 3 field items[0].goqa: unknown field",
        ),
        (
            "{\"items\": []}".to_string(),
            "line 1 field items: no entries",
        ),
        ("[1]".to_string(), "expected a JSON object"),
        ("{\"items\": [".to_string(), "line 1: invalid JSON"),
    ];
    for (text, want) in cases {
        let e = parse_goqa_wvs_items(f, &text).unwrap_err().to_string();
        assert!(e.starts_with(f) && e.contains(want), "{e}\nwanted: {want}");
    }
    // A missing field.
    let e = parse_goqa_wvs_items(f, &mapping(&["    {\"wvs_item\": \"Q6\"}".into()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3 field items[0].goqa_id: missing"), "{e}");
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A data directory with the shipped files except `wvs/goqa_wvs_items.json`, given here.
fn dir_with_mapping(text: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "wvs/country_codes.json",
        "wvs/wvs7_country_marginals.jsonl",
        "globalopinionqa/goqa_recovered_subset.jsonl",
    ] {
        write(dir.path(), rel, &DataSource::Embedded.read(rel).unwrap());
    }
    if let Some(t) = text {
        write(dir.path(), "wvs/goqa_wvs_items.json", t);
    }
    dir
}

/// The error of loading `country`'s panel from the marginals of a data directory made by
/// [`dir_with_mapping`] with `mapping_text`.
fn dir_panel_error(mapping_text: Option<&str>, country: &str) -> String {
    let d = dir_with_mapping(mapping_text);
    load_panel(
        &PersonaSource::Marginals(DataSource::dir(d.path())),
        cc(country),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn mapping_is_checked_against_the_goqa_questions() {
    // A question that is not in the GOQA file.
    let e = dir_panel_error(
        Some(&mapping(&[entry("Q57", "goqa-000000000000", "[1, 2]")])),
        "IRN",
    );
    assert!(
        e.contains(
            "goqa_wvs_items.json line 3 field items[0].goqa_id: goqa-000000000000 is not in"
        ),
        "{e}"
    );
    // Wrong number of codes for the question's options.
    let e = dir_panel_error(
        Some(&mapping(&[entry("Q57", "goqa-343e6a6bf836", "[1, 2]")])),
        "IRN",
    );
    assert!(
        e.contains(
            "line 3 field items[0].option_codes: 2 codes for the 5 options of goqa-343e6a6bf836"
        ),
        "{e}"
    );
    // Only one of the two fallback files is an error…
    let e = dir_panel_error(None, "USA");
    assert!(e.contains("goqa_wvs_items.json"), "{e}");
    // …neither is no fallback (marginals countries still work, others are the one error).
    let dir = tempfile::tempdir().unwrap();
    for rel in ["wvs/country_codes.json", "wvs/wvs7_country_marginals.jsonl"] {
        write(dir.path(), rel, &DataSource::Embedded.read(rel).unwrap());
    }
    let data = DataSource::dir(dir.path());
    assert!(GoqaPersonaItems::load(&data).unwrap().is_none());
    let src = PersonaSource::Marginals(data);
    assert!(load_panel(&src, cc("USA")).is_ok());
    let e = load_panel(&src, cc("IRN")).unwrap_err().to_string();
    assert!(
        e.contains("no persona source for IRN") && !e.contains("GlobalOpinionQA"),
        "{e}"
    );
    // The full shipped set read from a directory equals the embedded one.
    let d = dir_with_mapping(Some(
        &DataSource::Embedded
            .read("wvs/goqa_wvs_items.json")
            .unwrap(),
    ));
    let src = PersonaSource::Marginals(DataSource::dir(d.path()));
    assert_eq!(&load_panel(&src, cc("IRN")).unwrap(), disca_panel("IRN"));
}
