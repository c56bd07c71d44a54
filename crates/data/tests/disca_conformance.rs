//! Conformance of the DISCA estimator with the authors' released Phi-4 diagnostics
//! (specs/disca.md §9 item 2): the deterministic parts of steps 5–8 recomputed from the logged
//! per-scenario columns of all 20 countries.

use culturesteer_core::disca::{
    combine_passes, p_spare_preferred, CountryPrior, DiscaConfig, PriorConfig,
};
use culturesteer_data::replay::ResultsDir;

#[test]
fn micro_gate_and_prior_match_the_logged_phi4_columns() {
    let r = ResultsDir::embedded_phi4().unwrap();
    assert_eq!(r.swa.len(), 20);
    let prior = PriorConfig::default();
    let (mut e_micro, mut e_r, mut e_v, mut e_alpha, mut e_ah, mut e_dc, mut e_p) =
        (0f64, 0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    let mut rows = 0;
    let mut blended = 0;
    for (country, swa) in &r.swa {
        // The logged δ_country is the state *after* the row's update; the state before the first
        // row (the code advanced it on debug predictions before the main loop) follows from it.
        let first = &swa[0];
        let before =
            (first.delta_country - prior.beta * first.delta_opt_micro) / (1.0 - prior.beta);
        // The logged prior_step and alpha_h are taken after the row's increment of k: the blend
        // of a row uses k = prior_step − 1 (so the main loop starts at k = 3, as the spec says).
        let mut state = CountryPrior {
            delta: before,
            k: first.prior_step as usize - 1,
        };
        for row in swa {
            rows += 1;
            // Steps 5–6 through the library: gate, blend weight (below 1 on most rows) and δ_micro.
            let c = combine_passes(
                &DiscaConfig::reference(),
                row.delta_base(),
                row.delta_consensus,
                &[row.delta_star_1, row.delta_star_2],
                &[row.ess_pass1, row.ess_pass2],
            );
            let (v_r, r_gate, alpha, micro) = (
                c.reliability_var,
                c.reliability_r,
                c.anchor_alpha,
                c.delta_micro,
            );
            if alpha < 1.0 {
                blended += 1;
            }
            e_v = e_v.max((v_r - row.bootstrap_var).abs());
            e_r = e_r.max((r_gate - row.reliability_r).abs());
            e_alpha = e_alpha.max((alpha - row.ess_anchor_alpha).abs());
            e_micro = e_micro.max((micro - row.delta_opt_micro).abs());
            assert_eq!(
                state.k + 1,
                row.prior_step as usize,
                "{country} scenario {}: prior step",
                row.scenario_idx
            );
            let step = state.apply(&prior, row.delta_opt_micro);
            // alpha_h as logged = the weight the next row will use.
            let logged_alpha = CountryPrior {
                delta: 0.0,
                k: state.k,
            }
            .apply(&prior, 0.0)
            .alpha_h;
            e_ah = e_ah.max((logged_alpha - row.alpha_h).abs());
            e_dc = e_dc.max((state.delta - row.delta_country).abs());
            let _ = step.delta_country;
            let p = p_spare_preferred(step.delta_final, 0.5, row.preferred_on_right);
            e_p = e_p.max((p - row.p_spare_preferred).abs());
        }
    }
    eprintln!("{rows} rows: max |Δ| micro {e_micro:.2e}, V_r {e_v:.2e}, r {e_r:.2e}, α {e_alpha:.2e}, α_h {e_ah:.2e}, δ_country {e_dc:.2e}, p {e_p:.2e}");
    assert_eq!(rows, 20 * 310);
    // The blend with a weight below 1 is exercised on most rows (typical α 0.5–0.65).
    assert!(
        blended > rows / 2,
        "{blended} of {rows} rows blend with α < 1"
    );
    // Gate, blend weight and prior: exact up to the float32 logging of the columns.
    assert!(
        e_v < 5e-8 && e_r < 1e-12 && e_alpha < 1e-12 && e_ah < 1e-12,
        "gate/blend/α_h"
    );
    assert!(e_dc < 5e-8, "δ_country {e_dc}");
    // p is within 1e-7 (observed 7.2e-8): δ_micro and p are logged as float32, and a float32
    // δ_micro of magnitude ~3 carries ~1.2e-7 of rounding, times σ' ≤ 0.25 / T_dec = 0.5.
    assert!(e_p < 1e-7, "p_spare_preferred {e_p}");
    // δ_micro only to ~3e-2: the logged δ̄ and agent_reward_mean are the bf16 gaps of the
    // Phi-4 run (multiples of 1/64 and 1/128), so δ_base = δ̄ − agent_reward_mean is rounded
    // while δ_micro was computed from the unrounded values; the spec reports the same (~1e-2).
    // A tolerance of 1e-6 cannot be met from these columns.
    assert!(e_micro < 0.04, "δ_micro {e_micro}");
}
