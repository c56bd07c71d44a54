//! Kullback–Leibler and Jensen–Shannon measures with a selectable log base, and DISCA's
//! shifted "JSD" on 6-dimension preference vectors.
//!
//! Conventions (as SciPy's `jensenshannon`): both inputs are rescaled to sum to 1 first, and
//! `0 · log 0 = 0`.

use serde::{Deserialize, Serialize};

use super::{check_same_len, MetricError};
use crate::moral::MoralVector;
use crate::prob::{normalize, validate_weights};

/// Logarithm base of an information measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LogBase {
    /// Natural log (nats); SciPy's default.
    #[default]
    E,
    /// Base 2 (bits); JS divergence and distance then lie in [0, 1].
    Two,
}

impl LogBase {
    /// `ln(base)`: divide a natural-log quantity by this to change base.
    pub fn ln_base(self) -> f64 {
        match self {
            LogBase::E => 1.0,
            LogBase::Two => std::f64::consts::LN_2,
        }
    }
}

/// Whether a Jensen–Shannon comparison reports the divergence or its square root, the
/// distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JsMeasure {
    /// `JS(p, q) = ½ KL(p‖m) + ½ KL(q‖m)`, `m = (p + q)/2`.
    Divergence,
    /// `sqrt(JS(p, q))` (what SciPy's `jensenshannon` returns).
    Distance,
}

/// `Σ p_i log(p_i / q_i)` in nats of already-normalised inputs; `0 · log 0 = 0`, and `+∞` if
/// `q_i = 0 < p_i`.
fn kl_normalised(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            if a == 0.0 {
                0.0
            } else if b == 0.0 {
                f64::INFINITY
            } else {
                a * (a / b).ln()
            }
        })
        .sum()
}

/// Kullback–Leibler divergence `KL(p‖q)` after rescaling both to sum 1; `+∞` when `q` puts
/// zero mass where `p` does not.
pub fn kl_divergence(p: &[f64], q: &[f64], base: LogBase) -> Result<f64, MetricError> {
    check_same_len(p, q)?;
    let (p, q) = (normalize(p)?, normalize(q)?);
    Ok((kl_normalised(&p, &q) / base.ln_base()).max(0.0))
}

/// Jensen–Shannon divergence after rescaling both inputs to sum 1. Range `[0, ln 2]` in nats,
/// `[0, 1]` in bits.
pub fn js_divergence(p: &[f64], q: &[f64], base: LogBase) -> Result<f64, MetricError> {
    check_same_len(p, q)?;
    validate_weights(p)?;
    validate_weights(q)?;
    let (p, q) = (normalize(p)?, normalize(q)?);
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| 0.5 * (a + b)).collect();
    let js = 0.5 * kl_normalised(&p, &m) + 0.5 * kl_normalised(&q, &m);
    // Rounding can give a tiny negative number for identical inputs.
    Ok((js / base.ln_base()).max(0.0))
}

/// Jensen–Shannon distance `sqrt(JS divergence)` (SciPy `jensenshannon(p, q, base)`).
/// Range `[0, sqrt(ln 2)]` in nats, `[0, 1]` in bits.
pub fn js_distance(p: &[f64], q: &[f64], base: LogBase) -> Result<f64, MetricError> {
    js_divergence(p, q, base).map(f64::sqrt)
}

/// Either Jensen–Shannon measure, chosen at run time.
pub fn js(p: &[f64], q: &[f64], measure: JsMeasure, base: LogBase) -> Result<f64, MetricError> {
    match measure {
        JsMeasure::Divergence => js_divergence(p, q, base),
        JsMeasure::Distance => js_distance(p, q, base),
    }
}

/// The constant DISCA adds to both vectors after the non-negativity shift.
pub const DISCA_JSD_EPSILON: f64 = 1e-10;

/// JS distance between two real vectors that may contain negative values: both are shifted by
/// the same `max(0, −min(a ∪ b)) + epsilon`, then rescaled to sum 1 and compared.
pub fn shifted_js_distance(
    a: &[f64],
    b: &[f64],
    epsilon: f64,
    base: LogBase,
) -> Result<f64, MetricError> {
    check_same_len(a, b)?;
    super::check_finite(a)?;
    super::check_finite(b)?;
    let min = a.iter().chain(b).copied().fold(f64::INFINITY, f64::min);
    let shift = (-min).max(0.0) + epsilon;
    let sa: Vec<f64> = a.iter().map(|x| x + shift).collect();
    let sb: Vec<f64> = b.iter().map(|x| x + shift).collect();
    js_distance(&sa, &sb, base)
}

/// DISCA's "JSD" between a model and a human preference vector (both on the 0–1 scale).
///
/// As in the DISCA authors' evaluation: both vectors are put on the 0–100 percentage scale,
/// shifted by the common `max(0, −min) + 1e-10`, L1-normalised over the six dimensions and
/// compared with the base-2 JS **distance** (SciPy `jensenshannon(·, ·, base=2)`). This is a
/// shape comparison, not a probability distance.
pub fn disca_jsd(model: &MoralVector, human: &MoralVector) -> Result<f64, MetricError> {
    shifted_js_distance(
        &model.scaled(100.0).0,
        &human.scaled(100.0).0,
        DISCA_JSD_EPSILON,
        LogBase::Two,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::LN_2;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-14
    }

    #[test]
    fn js_disjoint_supports() {
        let (p, q) = ([1.0, 0.0], [0.0, 1.0]);
        assert!(close(js_divergence(&p, &q, LogBase::E).unwrap(), LN_2));
        assert!(close(js_divergence(&p, &q, LogBase::Two).unwrap(), 1.0));
        assert!(close(js_distance(&p, &q, LogBase::Two).unwrap(), 1.0));
        assert!(close(js_distance(&p, &q, LogBase::E).unwrap(), LN_2.sqrt()));
    }

    #[test]
    fn js_hand_value() {
        // p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4):
        // KL(p‖m) = ½ ln(4/3), KL(q‖m) = ln(4/3)  =>  JS = ¾ ln(4/3) nats.
        let want = 0.75 * (4.0f64 / 3.0).ln();
        let (p, q) = ([0.5, 0.5], [1.0, 0.0]);
        assert!(close(js_divergence(&p, &q, LogBase::E).unwrap(), want));
        assert!(close(
            js_divergence(&p, &q, LogBase::Two).unwrap(),
            want / LN_2
        ));
        assert!(close(js_distance(&p, &q, LogBase::E).unwrap(), want.sqrt()));
        assert!(close(
            js(&q, &p, JsMeasure::Distance, LogBase::Two).unwrap(),
            (want / LN_2).sqrt()
        ));
        // unnormalised inputs are rescaled first, like SciPy
        assert!(close(
            js_divergence(&[2.0, 2.0], &[5.0, 0.0], LogBase::E).unwrap(),
            want
        ));
    }

    #[test]
    fn js_identical_is_zero() {
        let p = [0.2, 0.3, 0.5];
        assert_eq!(js_divergence(&p, &p, LogBase::E).unwrap(), 0.0);
        assert_eq!(js_distance(&p, &p, LogBase::Two).unwrap(), 0.0);
    }

    #[test]
    fn kl_values() {
        // KL((1/2,1/2) ‖ (1/4,3/4)) = ½ ln 2 + ½ ln(2/3)
        let want = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        assert!(close(
            kl_divergence(&[0.5, 0.5], &[0.25, 0.75], LogBase::E).unwrap(),
            want
        ));
        assert_eq!(
            kl_divergence(&[0.5, 0.5], &[1.0, 0.0], LogBase::E).unwrap(),
            f64::INFINITY
        );
        assert_eq!(
            kl_divergence(&[1.0, 0.0], &[0.5, 0.5], LogBase::Two).unwrap(),
            1.0
        );
    }

    #[test]
    fn js_errors() {
        assert_eq!(
            js_divergence(&[1.0], &[0.5, 0.5], LogBase::E),
            Err(MetricError::LengthMismatch { left: 1, right: 2 })
        );
        assert!(matches!(
            js_divergence(&[1.0, -0.1], &[0.5, 0.5], LogBase::E),
            Err(MetricError::Negative { index: 1, .. })
        ));
        assert_eq!(
            js_divergence(&[0.0, 0.0], &[0.5, 0.5], LogBase::E),
            Err(MetricError::ZeroMass)
        );
        assert_eq!(js_divergence(&[], &[], LogBase::E), Err(MetricError::Empty));
        assert!(matches!(
            js_distance(&[f64::NAN, 1.0], &[0.5, 0.5], LogBase::E),
            Err(MetricError::NonFinite { .. })
        ));
    }

    #[test]
    fn shifted_handles_negatives() {
        // a = (-1, 1), b = (1, -1): shift 1 (+0) -> (0, 2) vs (2, 0): disjoint -> 1 bit.
        assert!(close(
            shifted_js_distance(&[-1.0, 1.0], &[1.0, -1.0], 0.0, LogBase::Two).unwrap(),
            1.0
        ));
        // non-negative inputs are not shifted beyond epsilon
        let d = shifted_js_distance(&[1.0, 3.0], &[1.0, 1.0], 0.0, LogBase::E).unwrap();
        assert!(close(
            d,
            js_distance(&[0.25, 0.75], &[0.5, 0.5], LogBase::E).unwrap()
        ));
    }

    #[test]
    fn disca_jsd_identical_and_scale() {
        let h = MoralVector([0.79, 0.56, 0.745, 0.588, 0.679, 0.766]);
        assert_eq!(disca_jsd(&h, &h).unwrap(), 0.0);
        let m = MoralVector([0.5; 6]);
        let want = js_distance(
            &m.scaled(100.0).0.map(|x| x + 1e-10),
            &h.scaled(100.0).0.map(|x| x + 1e-10),
            LogBase::Two,
        )
        .unwrap();
        assert_eq!(disca_jsd(&m, &h).unwrap(), want);
    }
}
