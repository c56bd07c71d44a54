//! Typed, validated loaders for culturesteer's shipped datasets.
//!
//! Every file is embedded in the binary by default ([`DataSource::Embedded`]); the same
//! relative layout can be read from a directory instead ([`DataSource::Dir`]). Every error
//! names the file, and where it applies the 1-based line and the field, e.g.
//! `data/moral_machine/country_preferences.csv line 17 field pref_age: "abc" is not a number`.
//! Country lookups that fail list the dataset's valid codes.
//!
//! | module | files |
//! |---|---|
//! | [`moral_machine`] | `moral_machine/country_preferences.csv` (196 countries) |
//! | [`disca`] | `disca_reference/human_targets_20.csv`, `disca_reference/scenarios/*.csv` |
//! | [`replay`] | `disca_reference/results/<model>/` (any directory in that format) |
//! | [`multitp`] | `multitp/vignettes_en.jsonl`, `multitp_spec.json`, `languages.csv`, `country_language_metadata_2023.csv` |
//! | [`goqa`] | `globalopinionqa/goqa_recovered_subset.jsonl` |
//! | [`hofstede`] | `hofstede/six_dimensions.csv`, `regions_2015.csv`, `hofstede_insights_snapshot_2023.csv` |
//! | [`wvs`] | `wvs/wvs7_country_marginals.jsonl`, `wvs/country_codes.json`, `wvs/goqa_wvs_items.json` |

pub mod disca;
pub mod error;
pub mod goqa;
pub mod hofstede;
mod json;
pub mod moral_machine;
pub mod multitp;
pub mod palette;
pub mod personas;
pub mod replay;
pub mod source;
mod table;
pub mod wvs;

pub use error::DataError;
pub use source::DataSource;
