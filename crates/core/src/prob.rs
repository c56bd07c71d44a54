//! Numerically stable probability helpers (all `f64`): log-sum-exp, (log-)softmax with a
//! temperature, sigmoid, and distribution normalisation.

use crate::metrics::MetricError;

/// `ln Σ exp(x_i)`, computed stably. Empty input gives `-inf`; a `NaN` propagates.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if xs.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    if max.is_infinite() {
        return max;
    }
    let s: f64 = xs.iter().map(|&x| (x - max).exp()).sum();
    max + s.ln()
}

fn check_logits(xs: &[f64]) -> Result<(), MetricError> {
    if xs.is_empty() {
        return Err(MetricError::Empty);
    }
    if let Some((index, &value)) = xs
        .iter()
        .enumerate()
        .find(|(_, x)| x.is_nan() || **x == f64::INFINITY)
    {
        return Err(MetricError::NonFinite { index, value });
    }
    if xs.iter().all(|&x| x == f64::NEG_INFINITY) {
        return Err(MetricError::ZeroMass);
    }
    Ok(())
}

/// `x_i − log Σ exp(x_j)`. `-inf` entries are allowed (probability 0) unless all are `-inf`.
pub fn log_softmax(xs: &[f64]) -> Result<Vec<f64>, MetricError> {
    check_logits(xs)?;
    let lse = log_sum_exp(xs);
    Ok(xs.iter().map(|&x| x - lse).collect())
}

/// `softmax(x)`; see [`log_softmax`] for the accepted inputs.
pub fn softmax(xs: &[f64]) -> Result<Vec<f64>, MetricError> {
    Ok(log_softmax(xs)?.into_iter().map(f64::exp).collect())
}

/// `log_softmax(x / t)`; `t` must be finite and > 0.
pub fn log_softmax_with_temperature(xs: &[f64], t: f64) -> Result<Vec<f64>, MetricError> {
    if !(t.is_finite() && t > 0.0) {
        return Err(MetricError::InvalidTemperature(t));
    }
    check_logits(xs)?;
    let scaled: Vec<f64> = xs.iter().map(|&x| x / t).collect();
    log_softmax(&scaled)
}

/// `softmax(x / t)`; `t` must be finite and > 0.
pub fn softmax_with_temperature(xs: &[f64], t: f64) -> Result<Vec<f64>, MetricError> {
    Ok(log_softmax_with_temperature(xs, t)?
        .into_iter()
        .map(f64::exp)
        .collect())
}

/// The logistic function `1 / (1 + e^{-x})`, stable for large `|x|`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Checks that `p` is a non-empty vector of finite, non-negative weights with a positive sum.
pub fn validate_weights(p: &[f64]) -> Result<(), MetricError> {
    if p.is_empty() {
        return Err(MetricError::Empty);
    }
    for (index, &value) in p.iter().enumerate() {
        if !value.is_finite() {
            return Err(MetricError::NonFinite { index, value });
        }
        if value < 0.0 {
            return Err(MetricError::Negative { index, value });
        }
    }
    if p.iter().sum::<f64>() <= 0.0 {
        return Err(MetricError::ZeroMass);
    }
    Ok(())
}

/// Rescales non-negative weights to sum to 1 (what SciPy's `jensenshannon` does first).
pub fn normalize(p: &[f64]) -> Result<Vec<f64>, MetricError> {
    validate_weights(p)?;
    let s: f64 = p.iter().sum();
    Ok(p.iter().map(|&x| x / s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn lse_hand_values() {
        // ln(e^0 + e^0) = ln 2
        assert!(close(
            log_sum_exp(&[0.0, 0.0]),
            std::f64::consts::LN_2,
            1e-15
        ));
        // huge values do not overflow: 1000 + ln 2
        assert!(close(
            log_sum_exp(&[1000.0, 1000.0]),
            1000.0 + std::f64::consts::LN_2,
            1e-12
        ));
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
        assert_eq!(
            log_sum_exp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            f64::NEG_INFINITY
        );
        assert!(log_sum_exp(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn softmax_hand_values() {
        // softmax([0, ln 3]) = [1/4, 3/4]
        let p = softmax(&[0.0, 3f64.ln()]).unwrap();
        assert!(close(p[0], 0.25, 1e-15) && close(p[1], 0.75, 1e-15));
        // temperature 0.5 doubles the gap: softmax([0, 2 ln 3]) = [1/10, 9/10]
        let p = softmax_with_temperature(&[0.0, 3f64.ln()], 0.5).unwrap();
        assert!(close(p[0], 0.1, 1e-15) && close(p[1], 0.9, 1e-15));
        let lp = log_softmax(&[0.0, 0.0, f64::NEG_INFINITY]).unwrap();
        assert!(close(lp[0], -std::f64::consts::LN_2, 1e-15));
        assert_eq!(lp[2], f64::NEG_INFINITY);
        // no overflow on large logits
        let p = softmax(&[1e4, 1e4 - 1.0]).unwrap();
        assert!(close(p[0], 1.0 / (1.0 + (-1f64).exp()), 1e-11));
    }

    #[test]
    fn softmax_errors() {
        assert_eq!(softmax(&[]), Err(MetricError::Empty));
        assert!(matches!(
            softmax(&[0.0, f64::NAN]),
            Err(MetricError::NonFinite { index: 1, .. })
        ));
        assert_eq!(softmax(&[f64::NEG_INFINITY]), Err(MetricError::ZeroMass));
        assert_eq!(
            softmax_with_temperature(&[0.0], 0.0),
            Err(MetricError::InvalidTemperature(0.0))
        );
        assert!(softmax_with_temperature(&[0.0], -1.0).is_err());
    }

    #[test]
    fn sigmoid_values() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(close(sigmoid(3f64.ln()), 0.75, 1e-15));
        assert!(close(sigmoid(-3f64.ln()), 0.25, 1e-15));
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn normalize_values() {
        assert_eq!(normalize(&[1.0, 3.0]).unwrap(), vec![0.25, 0.75]);
        assert!(matches!(
            normalize(&[1.0, -1.0]),
            Err(MetricError::Negative { index: 1, .. })
        ));
        assert_eq!(normalize(&[0.0, 0.0]), Err(MetricError::ZeroMass));
    }
}
