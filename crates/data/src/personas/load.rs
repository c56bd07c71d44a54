//! Picking a persona source and loading from it: the one room that knows all three sources
//! ([`PersonaSource`]: WVS-7 file, shipped marginals with the GlobalOpinionQA fallback, JSON).

use std::path::Path;

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::source::DataSource;

use super::{
    country_prompt_name, load_persona_json, load_wvs_file, render_wvs_profile, MarginalsPersonas,
    PersonaPanel, PersonaSource, ValueProfile,
};

/// The persona panel of `country` from `source`.
///
/// Errors: unreadable or malformed files (naming file, line and column or field); a country
/// the source does not cover (WVS file: lists the countries present in the file; JSON: lists
/// the file's countries; marginals: one message naming `--personas FILE`, `--wvs FILE`, the
/// countries with shipped marginals and those with GlobalOpinionQA WVS items). With
/// [`PersonaSource::Marginals`], a country without marginals gets a
/// [`PersonaSourceKind::Goqa`](super::PersonaSourceKind::Goqa) panel when GOQA covers it (see
/// the module docs).
pub fn load_panel(source: &PersonaSource, country: CountryCode) -> Result<PersonaPanel, DataError> {
    match source {
        PersonaSource::WvsFile(path) => load_wvs_file(path, Some(&[country]))?.panel(country),
        PersonaSource::Json(path) => load_persona_json(path)?.panel(country),
        PersonaSource::Marginals(data) => {
            let m = MarginalsPersonas::load(data)?;
            m.panel(country)
        }
    }
}

/// The whole-country value profile of `country` (the "all" group), for the WVS-profile prompt.
/// A JSON source has no profile and is an error.
pub fn load_country_profile(
    source: &PersonaSource,
    country: CountryCode,
) -> Result<ValueProfile, DataError> {
    match source {
        PersonaSource::WvsFile(path) => {
            let f = load_wvs_file(path, Some(&[country]))?;
            let all = f.usable_all(country)?;
            Ok(all.profile.clone())
        }
        PersonaSource::Marginals(data) => MarginalsPersonas::load(data)?.country_profile(country),
        PersonaSource::Json(path) => Err(DataError::File {
            file: path.display().to_string(),
            message: "a persona JSON file holds persona texts, not a WVS value profile; use --wvs FILE or the shipped marginals for a WVS-profile prompt".into(),
        }),
    }
}

/// The WVS-profile prompt of `country` from the shipped marginals of `data`
/// ([`render_wvs_profile`] of the whole-country profile).
pub fn wvs_profile_text(data: &DataSource, country: CountryCode) -> Result<String, DataError> {
    load_wvs_profile_text(&PersonaSource::Marginals(data.clone()), country)
}

/// The panel a command uses when only `--personas` is wired: the JSON file if given, else
/// the shipped marginals with the GlobalOpinionQA fallback (one error naming
/// `--personas FILE`, `--wvs FILE` and the covered countries for a country neither covers). Same as
/// `load_panel(&PersonaSource::resolve(json, None, data), country)`.
pub fn resolve_panel(
    json: Option<&Path>,
    data: &DataSource,
    country: CountryCode,
) -> Result<PersonaPanel, DataError> {
    load_panel(&PersonaSource::resolve(json, None, data), country)
}

/// The WVS-profile prompt of `country` from `source` ([`render_wvs_profile`]).
pub fn load_wvs_profile_text(
    source: &PersonaSource,
    country: CountryCode,
) -> Result<String, DataError> {
    let profile = load_country_profile(source, country)?;
    Ok(render_wvs_profile(&country_prompt_name(country), &profile))
}
