//! Small descriptive statistics: mean and Pearson correlation.

use super::{check_finite, check_same_len, MetricError};

/// Arithmetic mean of finite values.
pub fn mean(xs: &[f64]) -> Result<f64, MetricError> {
    if xs.is_empty() {
        return Err(MetricError::Empty);
    }
    check_finite(xs)?;
    Ok(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Pearson product-moment correlation of two equally long vectors (at least 2 values).
///
/// Returns [`MetricError::ZeroVariance`] when either input is constant (SciPy returns NaN).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64, MetricError> {
    check_same_len(x, y)?;
    if x.len() < 2 {
        return Err(MetricError::TooFew {
            needed: 2,
            found: x.len(),
        });
    }
    check_finite(x)?;
    check_finite(y)?;
    let mx = mean(x)?;
    let my = mean(y)?;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(MetricError::ZeroVariance);
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_values() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]).unwrap(), 3.0);
        assert_eq!(mean(&[]), Err(MetricError::Empty));
    }

    #[test]
    fn pearson_hand_values() {
        // perfectly linear
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-15);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-15);
        // x = [1,2,3,4], y = [1,3,2,4]: mean 2.5 both; sxy = 2.25+(-0.25)+(-0.25)+2.25 = 4;
        // sxx = syy = 5 -> r = 0.8
        assert!(
            (pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap() - 0.8).abs() < 1e-15
        );
    }

    #[test]
    fn pearson_errors() {
        assert_eq!(
            pearson(&[1.0, 2.0], &[1.0]),
            Err(MetricError::LengthMismatch { left: 2, right: 1 })
        );
        assert_eq!(
            pearson(&[1.0], &[1.0]),
            Err(MetricError::TooFew {
                needed: 2,
                found: 1
            })
        );
        assert_eq!(
            pearson(&[1.0, 1.0], &[1.0, 2.0]),
            Err(MetricError::ZeroVariance)
        );
        assert!(matches!(
            pearson(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(MetricError::NonFinite { index: 1, .. })
        ));
    }
}
