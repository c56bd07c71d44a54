//! Alignment metrics: MIS (MultiTP / DISCA), Jensen–Shannon divergence and distance with a
//! selectable log base, DISCA's shifted "JSD", S_align (Cultural Palette), the Modular
//! Pluralism distance, Pearson r, and the Hofstede VSM 2013 scores and L1 loss.

pub mod divergence;
pub mod mis;
pub mod s_align;
pub mod stats;
pub mod vsm13;

pub use divergence::{disca_jsd, js_distance, js_divergence, kl_divergence, JsMeasure, LogBase};
pub use mis::{human_from_amce, macro_mean, mis, model_preference};
pub use s_align::{modular_pluralism_distance, s_align, SAlignVariant};
pub use stats::{mean, pearson};
pub use vsm13::{
    parse_vsm13_constants, vsm13_l1_loss, vsm13_scores, MasSecondWeight, Vsm13Config,
    Vsm13Dimension, Vsm13Loss, Vsm13Scores,
};

use crate::moral::MoralDimension;

/// Why a metric could not be computed from its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Two vectors that must be compared element-wise have different lengths.
    #[error("length mismatch: {left} values vs {right} values")]
    LengthMismatch {
        /// Length of the first argument.
        left: usize,
        /// Length of the second argument.
        right: usize,
    },
    /// A vector has the wrong fixed length (e.g. VSM 2013 needs 24 item means).
    #[error("expected {expected} values, got {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Given length.
        found: usize,
    },
    /// No values at all.
    #[error("empty input")]
    Empty,
    /// Too few values for the statistic (e.g. Pearson r needs two).
    #[error("need at least {needed} values, got {found}")]
    TooFew {
        /// Minimum count.
        needed: usize,
        /// Given count.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("value {value} at index {index} is not finite")]
    NonFinite {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A probability weight is negative.
    #[error(
        "value {value} at index {index} is negative; a distribution needs non-negative weights"
    )]
    Negative {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A distribution sums to zero (or every log-probability is −∞).
    #[error("distribution has zero total mass")]
    ZeroMass,
    /// A value lies outside its allowed range.
    #[error("value {value} at index {index} is outside [{min}, {max}]")]
    OutOfRange {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
        /// Lower bound (inclusive).
        min: f64,
        /// Upper bound (inclusive).
        max: f64,
    },
    /// A correlation is undefined because one input is constant.
    #[error("correlation undefined: one input has zero variance")]
    ZeroVariance,
    /// A softmax temperature is not a finite positive number.
    #[error("temperature {0} must be finite and > 0")]
    InvalidTemperature(f64),
    /// No observation for a moral dimension.
    #[error("no scenarios for dimension {0}")]
    MissingDimension(MoralDimension),
}

pub(crate) fn check_same_len(a: &[f64], b: &[f64]) -> Result<(), MetricError> {
    if a.len() != b.len() {
        return Err(MetricError::LengthMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    if a.is_empty() {
        return Err(MetricError::Empty);
    }
    Ok(())
}

pub(crate) fn check_finite(a: &[f64]) -> Result<(), MetricError> {
    match a.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        Some((index, &value)) => Err(MetricError::NonFinite { index, value }),
        None => Ok(()),
    }
}
