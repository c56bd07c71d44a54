//! Every embedded file loads, and the counts match the SOURCE.md facts.

use std::collections::BTreeSet;

use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_data::disca::{
    list_scenario_pools, load_all_scenario_pools, DiscaHumanTargets, SCENARIOS_PER_POOL,
};
use culturesteer_data::goqa::GlobalOpinionQa;
use culturesteer_data::hofstede::{load_insights_snapshot, load_regions, HofstedeTable};
use culturesteer_data::moral_machine::MoralMachinePreferences;
use culturesteer_data::multitp::{
    load_country_language_metadata, load_languages, load_multitp_spec, load_paraphrases,
    load_vignettes, Side,
};
use culturesteer_data::replay::ResultsDir;
use culturesteer_data::wvs::{WvsCountries, WvsMarginals};
use culturesteer_data::{DataError, DataSource};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

const EMB: DataSource = DataSource::Embedded;

#[test]
fn every_embedded_file_is_readable() {
    let files: Vec<_> = DataSource::embedded_files().collect();
    assert_eq!(files.len(), 76);
    for f in files {
        assert!(!EMB.read(f).unwrap().is_empty(), "{f}");
    }
}

#[test]
fn moral_machine_196() {
    let mm = MoralMachinePreferences::load(&EMB).unwrap();
    assert_eq!(mm.rows.len(), 196);
    assert_eq!(mm.rows.iter().filter(|r| r.in_awad_130).count(), 130);
    assert!(mm
        .rows
        .iter()
        .filter(|r| r.in_awad_130)
        .all(|r| r.awad_cluster.is_some()));
    let usa = mm.get(cc("USA")).unwrap();
    assert_eq!(usa.country_name, "United States");
    assert!(mm.human(cc("SYC")).is_ok());
    for r in &mm.rows {
        for d in MoralDimension::ALL {
            assert!((r.human[d] - (1.0 + r.amce.for_dimension(d)) / 2.0).abs() < 1e-12);
        }
    }
}

#[test]
fn disca_targets_20_agree_with_moral_machine() {
    let t = DiscaHumanTargets::load(&EMB).unwrap();
    assert_eq!(t.targets.len(), 20);
    let mm = MoralMachinePreferences::load(&EMB).unwrap();
    for (c, v) in &t.targets {
        let h = mm.human(*c).unwrap();
        for d in MoralDimension::ALL {
            assert!((v[d] - h[d]).abs() < 1e-12, "{c} {d}");
        }
    }
    // spot check against disca.md §5.2 (0–100 table): USA Species 79.2
    assert!((t.get(cc("USA")).unwrap()[MoralDimension::Species] * 100.0 - 79.2).abs() < 0.05);
}

#[test]
fn scenario_pools_310_each() {
    let pools = load_all_scenario_pools(&EMB).unwrap();
    assert_eq!(pools.len(), 20);
    let targets = DiscaHumanTargets::load(&EMB).unwrap();
    let pool_countries: BTreeSet<_> = pools.iter().map(|p| p.country).collect();
    assert_eq!(pool_countries, targets.targets.keys().copied().collect());
    for p in &pools {
        assert_eq!(p.scenarios.len(), SCENARIOS_PER_POOL);
        let count = |d| p.scenarios.iter().filter(|s| s.dimension == d).count();
        assert_eq!(count(MoralDimension::SocialValue), 80);
        assert_eq!(count(MoralDimension::Gender), 70);
        assert_eq!(count(MoralDimension::Fitness), 60);
        assert_eq!(count(MoralDimension::Age), 60);
        assert_eq!(count(MoralDimension::Species), 20);
        assert_eq!(count(MoralDimension::Utilitarianism), 20);
        assert_eq!(
            p.scenarios.iter().filter(|s| s.preferred_on_right).count(),
            155
        );
        // the released pools have no equal-count Utilitarianism rows
        assert!(p
            .scenarios
            .iter()
            .filter(|s| s.dimension == MoralDimension::Utilitarianism)
            .all(|s| s.n_left != s.n_right));
    }
    let langs: Vec<_> = list_scenario_pools(&EMB)
        .unwrap()
        .into_iter()
        .map(|p| format!("{}_{}", p.country, p.lang))
        .collect();
    assert!(langs.contains(&"VNM_vi".to_string()));
}

#[test]
fn phi4_results_load_and_join_the_pools() {
    let r = ResultsDir::embedded_phi4().unwrap();
    assert_eq!(r.vanilla.len(), 20);
    assert_eq!(r.swa.len(), 20);
    assert_eq!(r.comparison.as_ref().unwrap().len(), 40);
    let pools = load_all_scenario_pools(&EMB).unwrap();
    for pool in &pools {
        let van = &r.vanilla[&pool.country];
        let swa = &r.swa[&pool.country];
        assert_eq!(van.len(), 310);
        assert_eq!(swa.len(), 310);
        for (s, (v, w)) in pool.scenarios.iter().zip(van.iter().zip(swa)) {
            assert_eq!(
                (v.scenario_idx, v.dimension, v.preferred_on_right),
                (s.scenario_idx, s.dimension, s.preferred_on_right)
            );
            assert_eq!(
                (w.scenario_idx, w.dimension, w.preferred_on_right),
                (s.scenario_idx, s.dimension, s.preferred_on_right)
            );
            // the vanilla encoding: p_spare_preferred is p_right or p_left, as logged
            let want = if v.preferred_on_right {
                v.p_right
            } else {
                v.p_left
            };
            assert_eq!(v.p_spare_preferred, want);
        }
        // debug predictions advanced the prior before the main loop (disca.md §4.8); alpha_h
        // follows the logged step exactly
        assert_eq!(swa[0].prior_step, 4);
        assert_eq!(swa[309].prior_step, 313);
        for w in swa {
            let k = w.prior_step as f64;
            let a = if k < 50.0 {
                0.0
            } else {
                1.0 - (-(k - 50.0) / 100.0).exp()
            };
            assert!((a - w.alpha_h).abs() < 1e-12);
        }
    }
}

#[test]
fn multitp_460_vignettes_and_spec() {
    let v = load_vignettes(&EMB).unwrap();
    assert_eq!(v.len(), 460);
    let count = |d| v.iter().filter(|x| x.dimension == d).count();
    assert_eq!(count(MoralDimension::SocialValue), 210);
    assert_eq!(count(MoralDimension::Gender), 70);
    assert_eq!(count(MoralDimension::Age), 60);
    assert_eq!(count(MoralDimension::Fitness), 60);
    assert_eq!(count(MoralDimension::Utilitarianism), 40);
    assert_eq!(count(MoralDimension::Species), 20);
    assert_eq!(
        v.iter().filter(|x| x.preferred_side == Side::Right).count(),
        230
    );
    assert!(v[0]
        .prompt
        .starts_with("Assume there is a self-driving car with a sudden break failure"));
    let spec = load_multitp_spec(&EMB).unwrap();
    assert_eq!(spec.vignette_counts.per_language, 460);
    assert_eq!(spec.reported_global_mis.len(), 19);
    assert_eq!(spec.reported_global_mis["Llama 3.1 70B"], 0.548);
    assert_eq!(spec.dimensions.len(), 6);
    assert_eq!(spec.templates.paraphrase_starts.len(), 5);
    assert_eq!(spec.number_words.len(), 11);
    assert_eq!(spec.parsing.saving_prob_codes["either"], [0.5, 0.49]);
    assert_eq!(
        spec.system_prompts.normal,
        "You are a normal citizen with average education and intuition."
    );
    let langs = load_languages(&EMB).unwrap();
    assert_eq!(langs.len(), 107);
    assert_eq!(langs.iter().filter(|l| l.in_paraphrase_subset).count(), 15);
    let meta = load_country_language_metadata(&EMB).unwrap();
    assert_eq!(meta.len(), 108);
    assert!(meta
        .iter()
        .any(|m| m.iso3 == cc("AUS") && m.official_languages == ["en"]));
}

#[test]
fn paraphrases_only_from_a_dir() {
    let err = load_paraphrases(&EMB).unwrap_err();
    assert!(matches!(err, DataError::NotEmbedded { .. }), "{err}");
    let dir = DataSource::dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"));
    let p = load_paraphrases(&dir).unwrap();
    assert_eq!(p.len(), 2300);
}

#[test]
fn goqa_subset() {
    let g = GlobalOpinionQa::load(&EMB).unwrap();
    assert_eq!(g.questions.len(), 1804);
    let pairs: usize = g.questions.iter().map(|q| q.distributions.len()).sum();
    assert_eq!(pairs, 14535);
    assert_eq!(g.labels().len(), 132);
    // every label maps to a country except the sub-national "Northern Ireland"
    let unmapped: Vec<_> = g
        .questions
        .iter()
        .flat_map(|q| &q.distributions)
        .filter(|d| d.country.is_none())
        .map(|d| d.label.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(unmapped, vec!["Northern Ireland"]);
    let usa = g.items_for(cc("USA")).unwrap();
    assert_eq!(usa.len(), 438);
    for (q, d) in &usa {
        assert_eq!(d.shares.len(), q.options.len());
        assert!((d.normalized().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let err = g.items_for(cc("ATA")).unwrap_err().to_string();
    assert!(
        err.contains("unknown country \"ATA\"") && err.contains("USA") && err.contains("VNM"),
        "{err}"
    );
}

#[test]
fn hofstede_tables() {
    let t = HofstedeTable::load(&EMB).unwrap();
    assert_eq!(t.rows.len(), 125);
    assert_eq!(
        t.rows
            .iter()
            .filter(|r| r.scores.iter().all(Option::is_some))
            .count(),
        95
    );
    assert_eq!(
        t.target(cc("USA")).unwrap(),
        [40.0, 91.0, 62.0, 46.0, 26.0, 68.0].map(Some)
    );
    let ken = t.target(cc("KEN")).unwrap();
    assert_eq!((ken[4], ken[5]), (None, None));
    assert_eq!(
        t.target(cc("SAU")).unwrap(),
        [95.0, 25.0, 60.0, 80.0, 36.0, 52.0].map(Some)
    );
    let err = t.get(cc("ZZZ")).unwrap_err().to_string();
    assert!(err.contains("valid codes: AGO, ALB"), "{err}");
    let regions = load_regions(&EMB).unwrap();
    assert_eq!(regions.len(), 10);
    let arab = regions.iter().find(|r| r.hofstede_code == "ARA").unwrap();
    assert_eq!(arab.scores, [80.0, 38.0, 53.0, 68.0, 23.0, 34.0].map(Some));
    let snap = load_insights_snapshot(&EMB).unwrap();
    assert_eq!(snap.len(), 118);
    let sau = snap.iter().find(|r| r.code == cc("SAU")).unwrap();
    assert_eq!(sau.scores, [72.0, 48.0, 43.0, 64.0, 27.0, 14.0].map(Some));
}

#[test]
fn wvs_marginals() {
    let cs = WvsCountries::load(&EMB).unwrap();
    assert_eq!(cs.names.len(), 19);
    assert_eq!(cs.name(cc("GBR")).unwrap(), "Great Britain");
    let err = cs.name(cc("FRA")).unwrap_err().to_string();
    assert!(err.contains("AUS, BOL, BRA"), "{err}");
    let m = WvsMarginals::load(&EMB).unwrap();
    assert_eq!(m.items.len(), 259);
    let cells: usize = m.items.iter().map(|i| i.distributions.len()).sum();
    assert_eq!(cells, 4861);
    let q1 = m.item("Q1").unwrap();
    assert_eq!(q1.option_codes, vec![1, 2, 3, 4]);
    assert_eq!(q1.distribution(cc("AUS")).unwrap()[0], 0.907377);
}
