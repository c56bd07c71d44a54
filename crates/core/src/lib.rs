//! Pure maths of culturesteer: country codes, moral dimensions, probability helpers and the
//! alignment metrics (MIS, Jensen–Shannon variants, S_align, Pearson, VSM 2013), plus the
//! model-free replay summary of released per-scenario results.
//!
//! Nothing here does I/O or touches a model, so the tests compile and run in seconds.

pub mod country;
pub mod de;
pub mod disca;
pub mod hash;
pub mod metrics;
pub mod moral;
pub mod prob;
pub mod replay;

pub use country::{CountryCode, CountryCodeError};
pub use metrics::MetricError;
pub use moral::{MoralDimension, MoralVector, ParseDimensionError};
