//! Ground truth: replaying the DISCA authors' Phi-4 results reproduces their numbers.

use culturesteer_core::replay::ReplayMethod;
use culturesteer_data::replay::{
    load_results_dir, render_table, replay_with_disca_targets, replay_with_moral_machine,
    ResultsDir,
};
use culturesteer_data::DataSource;

#[test]
fn macro_mis_matches_published_0454_0346() {
    let r = ResultsDir::embedded_phi4().unwrap();
    let s = replay_with_disca_targets(&r, &DataSource::Embedded).unwrap();
    assert_eq!(s.countries.len(), 20);
    let v = s.vanilla.unwrap();
    let d = s.disca.unwrap();
    assert_eq!(format!("{:.3}", v.mis), "0.454");
    assert_eq!(format!("{:.3}", d.mis), "0.346");
    let p = s.paired.unwrap();
    assert_eq!(format!("{:.1}", p.gain_pct), "23.7"); // paper: 23.6 (from rounded .454/.346)
    assert_eq!(p.wins, 18);
    // paper Table 6.3: mean DISCA JSD .057 / r .559
    assert_eq!(format!("{:.3}", d.jsd), "0.057");
    assert_eq!(format!("{:.3}", d.pearson_r.unwrap()), "0.559");
}

#[test]
fn per_country_matches_comparison_csv() {
    let r = ResultsDir::embedded_phi4().unwrap();
    let s = replay_with_disca_targets(&r, &DataSource::Embedded).unwrap();
    let comp = r.comparison.as_ref().unwrap();
    assert_eq!(comp.len(), 40);
    for row in comp {
        let c = s
            .countries
            .iter()
            .find(|c| c.country == row.country)
            .unwrap();
        let m = match row.replay_method() {
            ReplayMethod::Vanilla => c.vanilla.unwrap(),
            ReplayMethod::Disca => c.disca.unwrap(),
        };
        assert_eq!(m.n_scenarios as u32, row.n_scenarios);
        assert!(
            (m.mis - row.align_mis).abs() < 1e-9,
            "{} {}: {} vs {}",
            row.country,
            row.method,
            m.mis,
            row.align_mis
        );
        assert!(
            (m.jsd - row.align_jsd).abs() < 1e-9,
            "{} {}: {} vs {}",
            row.country,
            row.method,
            m.jsd,
            row.align_jsd
        );
        let pr = m.pearson_r.unwrap();
        let want = row.align_pearson_r.unwrap();
        assert!(
            (pr - want).abs() < 1e-9,
            "{} {}: {} vs {}",
            row.country,
            row.method,
            pr,
            want
        );
    }
}

#[test]
fn moral_machine_targets_give_the_same_numbers() {
    let r = ResultsDir::embedded_phi4().unwrap();
    let a = replay_with_disca_targets(&r, &DataSource::Embedded).unwrap();
    let b = replay_with_moral_machine(&r, &DataSource::Embedded).unwrap();
    for (x, y) in a.countries.iter().zip(&b.countries) {
        assert!((x.vanilla.unwrap().mis - y.vanilla.unwrap().mis).abs() < 1e-12);
        assert!((x.disca.unwrap().mis - y.disca.unwrap().mis).abs() < 1e-12);
    }
}

#[test]
fn loads_the_same_directory_from_disk() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/disca_reference/results/phi_4");
    let disk = load_results_dir(&dir).unwrap();
    assert_eq!(disk.label, "phi_4");
    let emb = ResultsDir::embedded_phi4().unwrap();
    assert_eq!(disk.replay_input(), emb.replay_input());
}

#[test]
fn table_renders() {
    let r = ResultsDir::embedded_phi4().unwrap();
    let s = replay_with_disca_targets(&r, &DataSource::Embedded).unwrap();
    let t = render_table(&s);
    assert!(t.contains("| USA "), "{t}");
    assert!(t.contains("| macro "), "{t}");
    assert!(t.contains("0.454") && t.contains("0.346"), "{t}");
    assert!(t.contains("better in 18/20"), "{t}");
    assert_eq!(t.lines().filter(|l| l.starts_with("| ")).count(), 22); // header + 20 + macro
}
