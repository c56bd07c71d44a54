//! DISCA persona panels built from World Values Survey wave 7 (specs/disca.md §3).
//!
//! A panel is the set of N system prompts ("personas") whose disagreement DISCA reads. The
//! DISCA panel has N = 4 personas per country, in the reference order
//! `[young, middle, older, all]` (§3). The *base* agent — the model with the plain system
//! prompt "You are a helpful assistant." (§2.4) — is **not** part of the panel; methods add it
//! themselves. Each persona text is meant to be the system message; for chat templates without
//! a system role the model layer merges it into the user turn (§8 row 9).
//!
//! # Three sources ([`PersonaSource`])
//!
//! 1. **A WVS-7 individual-level file** ([`PersonaSource::WvsFile`], `--wvs FILE`): the official
//!    "inverted" CSV (`WVS_Cross-National_Wave_7_inverted_csv_v6_0.csv`, §8 row 13), which users
//!    obtain from worldvaluessurvey.org under its terms; it is not shipped. The exact cohort
//!    procedure of §3.1 is applied (see [`parse_wvs_csv`]):
//!    * respondents with 1900 ≤ `Q261` (birth year) ≤ 2010 and `A_YEAR` (survey year) ≥ 2015;
//!    * age = `A_YEAR − Q261`; cohorts young (age < 36), middle (36 ≤ age < 56), older
//!      (age ≥ 56); every kept respondent also counts in "all";
//!    * negative codes (−1, −2, −4, −5, …) are dropped, 0 is kept;
//!    * a dimension's score is the unweighted mean over all valid (respondent, item) values of
//!      its items (multi-item dimensions pooled), rounded to 3 decimals;
//!    * a score ≤ 0 means "missing" and its sentence is skipped (§8 row 13);
//!    * descriptor by quartile of the normalised score ([`ValueDimension::describe`]);
//!    * a cohort without usable answers (its religiosity ≤ 0) is replaced by the whole-country
//!      persona; a country whose whole-country religiosity is ≤ 0 is an error (the reference
//!      code falls back to hand-written personas, which are not shipped).
//! 2. **The shipped country marginals** ([`PersonaSource::Marginals`], the default;
//!    `data/wvs/wvs7_country_marginals.jsonl`, 19 countries; other countries fall back to the
//!    WVS items of GlobalOpinionQA, see below). The file has no age breakdown, so
//!    the cohort procedure cannot be run; **this is culturesteer's own extension, not the
//!    paper's**. Each marginals item (original WVS coding) is first recoded to the inverted
//!    file's coding of §3.1 ([`marginal_recoding`]):
//!    * `Q6`, `Q46`, `Q29`–`Q31`, `Q199`: value = 5 − code; `Q254`: 5 − code with code 5
//!      ("I am not of this nationality") dropped; `Q57`: 3 − code; `Q200`: 4 − code;
//!      `Q33` (five-point in the marginals): 6 − code (values above the §3.1 range 1–4 clamp
//!      when normalised, as they would in the inverted file);
//!    * `Q17`, `Q19`–`Q23` ("mentioned" items): code 1 (mentioned) → 1, code 2 → 0;
//!    * `Q152`, `Q153`, `Q177`–`Q182`: the code itself (these have no `P` variant).
//!
//!    Each item's answers are weighted by the item's `answered_share`, so pooling several items
//!    weighs them by how many respondents answered, as pooling respondent rows does. Then:
//!    * **whole country** (`all`, 4th): the pooled mean of each dimension, rounded to 3
//!      decimals, with the descriptor logic of source 1 (including "≤ 0 → skipped"). This equals
//!      the "all" persona of source 1 up to the birth-year/survey-year filter;
//!    * **lower quartile, median, upper quartile** (`q25`, `q50`, `q75`): for each dimension,
//!      the answer of the respondent at the 25th, 50th or 75th percentile of the dimension's
//!      pooled answer distribution, ordered along the dimension's named pole (more religious,
//!      more independence-oriented, more permissive, more trusting, more participative, prouder,
//!      happier, more egalitarian, more post-materialist, more tolerant), so `q25` sits nearer
//!      the opposite pole and `q75` nearer the named one. The percentile is the answer where
//!      the cumulative share, walking toward the named pole, first reaches p (within 1e-9),
//!      e.g. religiosity shares 0.25 each on 1, 2, 3, 4 give 1, 2, 3. The descriptor of that
//!      answer is used; here 0 is a real answer ("not mentioned"), so the "≤ 0 → skipped" rule
//!      does not apply. Multi-item dimensions use the pooled answers of their items (the joint
//!      distribution per respondent is not in the marginals).
//!
//!    The four personas share the "adult citizen" header (no age is known). Check: for the
//!    USA the whole-country persona has exactly the descriptors of the paper's printed US
//!    aggregate persona (§3.2); all 19 countries give four distinct texts.
//!
//!    **GlobalOpinionQA fallback** ([`PersonaSourceKind::Goqa`], [`GoqaPersonaItems`]): for a
//!    country without marginals (not in `wvs/country_codes.json`), the same source builds the
//!    panel from the WVS-sourced GOQA questions that `data/wvs/goqa_wvs_items.json` maps to
//!    WVS items (18 items; GOQA country names → ISO3 as in [`crate::goqa`], national samples
//!    first). Per item: the options with a WVS code are kept, their shares (of the GOQA
//!    distribution rescaled to 1) renormalised to sum 1, and their sum is the item's
//!    `answered_share`; then recoding, pooling, means, quartiles and text are exactly those
//!    above. Sources are never mixed: a marginals country uses only the marginals. Dimensions
//!    without data are left out (most GOQA countries have 2–6 of the 10); such a profile is
//!    usable when at least one dimension has data (the religiosity rule stays for marginals
//!    countries). Every panel records each dimension's source and items
//!    ([`PersonaPanel::dimensions`], [`PersonaPanel::missing_dimensions`]). With few answer
//!    levels the quartile personas can coincide (e.g. Bangladesh: four identical texts).
//! 3. **A JSON file of persona texts** ([`PersonaSource::Json`], `--personas FILE`), see
//!    [`parse_persona_json`] for the schema.
//!
//! [`PersonaSource::resolve`] picks the source the commands use: JSON if given, else the WVS
//! file if given, else the marginals. A country that the chosen source lacks is one error that
//! names the options.
//!
//! # Text
//!
//! English only (§3.2): the reference code ships persona texts pre-translated into 18+
//! languages (PI18N); those translations are **not shipped** here, so personas for every
//! country are English (a deviation from §8 row 7, where non-English countries get native
//! personas). Country names are English prompt names ([`country_prompt_name`], e.g. "the
//! United States"). The template is reproduced verbatim, including the reference's "You are a
//! adult citizen" for the whole-country header.
//!
//! [`wvs_profile_text`] (shipped marginals) and [`load_wvs_profile_text`] (any source) render
//! the whole-country profile as one paragraph ([`render_wvs_profile`]), for the "WVS-profile
//! prompt" baseline.

mod dimensions;
mod goqa_items;
mod json_file;
mod load;
mod marginals;
mod recoding;
mod text;
mod wvs_file;

pub use dimensions::{round3, ValueDimension, ValueProfile};
pub use goqa_items::GoqaPersonaItems;
pub use json_file::{
    load_persona_json, parse_persona_json, JsonPanels, JsonPersona, JsonPersonaList, PersonaFile,
    MAX_JSON_PERSONAS,
};
pub use load::{
    load_country_profile, load_panel, load_wvs_profile_text, resolve_panel, wvs_profile_text,
};
pub use marginals::{
    marginal_countries, shipped_countries, shipped_country_sources, MarginalStat,
    MarginalsPersonas, MARGINAL_QUANTILES,
};
pub use recoding::{marginal_recoding, Recoding};
pub use text::{country_prompt_name, persona_text, render_wvs_profile, Cohort};
pub use wvs_file::{
    load_wvs_file, parse_wvs_csv, CohortProfile, WvsFileProfiles, BIRTH_YEARS, COL_BIRTH_YEAR,
    COL_COUNTRY, COL_SURVEY_YEAR, MIN_SURVEY_YEAR,
};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::source::DataSource;
use crate::wvs::WVS7_MARGINALS;

/// Personas in a DISCA panel (§3).
pub const DISCA_PANEL_SIZE: usize = 4;

// ---------------------------------------------------------------------------------------------
// Personas and panels
// ---------------------------------------------------------------------------------------------

/// One persona: a system prompt with a short identifier and a human-readable label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    /// Short identifier: `young`, `middle`, `older`, `all` (WVS file); `q25`, `q50`, `q75`,
    /// `all` (marginals); as given or `p1`, `p2`, … (JSON).
    pub id: String,
    /// What the persona stands for, e.g. `young adults (age < 36), n = 812`.
    pub label: String,
    /// The system prompt.
    pub text: String,
}

/// Which kind of source a panel came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonaSourceKind {
    /// A WVS-7 individual-level file (the paper's cohort procedure).
    WvsFile,
    /// The shipped country marginals (culturesteer's quartile extension).
    Marginals,
    /// A JSON file of persona texts.
    Json,
    /// The WVS items of the shipped GlobalOpinionQA subset (for countries without shipped
    /// marginals; same quartile extension as [`PersonaSourceKind::Marginals`]).
    Goqa,
}

impl fmt::Display for PersonaSourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PersonaSourceKind::WvsFile => "WVS-7 individual-level file",
            PersonaSourceKind::Marginals => "shipped WVS-7 country marginals",
            PersonaSourceKind::Json => "persona JSON file",
            PersonaSourceKind::Goqa => "WVS items of GlobalOpinionQA",
        })
    }
}

/// The personas of one country.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonaPanel {
    /// The country.
    pub country: CountryCode,
    /// Where the personas came from.
    pub source: PersonaSourceKind,
    /// The personas, in panel order (for DISCA panels `[young, middle, older, all]` or
    /// `[q25, q50, q75, all]`).
    pub personas: Vec<Persona>,
    /// Provenance of every value dimension the personas draw on, in template order (empty for
    /// JSON persona files, which carry no value profile).
    #[serde(default)]
    pub dimensions: Vec<DimensionSource>,
    /// The value dimensions left out for lack of data, in template order (their sentences are
    /// skipped; empty for JSON persona files).
    #[serde(default)]
    pub missing_dimensions: Vec<ValueDimension>,
}

/// The data behind one value dimension of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DimensionOrigin {
    /// A WVS-7 individual-level file (`--wvs FILE`).
    #[serde(rename = "wvs7-file")]
    Wvs7File,
    /// The shipped WVS-7 country marginals.
    #[serde(rename = "wvs7-marginals")]
    Wvs7Marginals,
    /// WVS-sourced GlobalOpinionQA questions mapped to WVS items (`wvs/goqa_wvs_items.json`).
    #[serde(rename = "globalopinionqa")]
    GlobalOpinionQa,
}

impl DimensionOrigin {
    /// `wvs7-file`, `wvs7-marginals` or `globalopinionqa` (as serialised).
    pub fn key(self) -> &'static str {
        match self {
            DimensionOrigin::Wvs7File => "wvs7-file",
            DimensionOrigin::Wvs7Marginals => "wvs7-marginals",
            DimensionOrigin::GlobalOpinionQa => "globalopinionqa",
        }
    }
}

impl fmt::Display for DimensionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Where one value dimension of a panel came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionSource {
    /// The dimension (serialised as its key, e.g. `religiosity`).
    pub dimension: ValueDimension,
    /// The data source.
    pub source: DimensionOrigin,
    /// The items used: WVS file columns (`Q6P`), marginals items (`Q6`) or mapped GOQA
    /// questions (`Q6 (goqa-c474a7e9f85a)`).
    pub items: Vec<String>,
}

impl PersonaPanel {
    /// The persona texts, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.personas.iter().map(|p| p.text.as_str()).collect()
    }

    /// Number of personas.
    pub fn len(&self) -> usize {
        self.personas.len()
    }

    /// `true` when the panel has no persona (never the case for loaded panels).
    pub fn is_empty(&self) -> bool {
        self.personas.is_empty()
    }
}

/// Where persona panels come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonaSource {
    /// A WVS-7 "inverted" individual-level CSV (cohort personas, §3.1).
    WvsFile(PathBuf),
    /// The shipped per-country marginals (quartile personas, this module's extension).
    Marginals(DataSource),
    /// A JSON file of persona texts ([`parse_persona_json`]).
    Json(PathBuf),
}

impl PersonaSource {
    /// The source the commands use: the JSON file if given, else the WVS file if given, else
    /// the marginals of `data`.
    pub fn resolve(
        personas_json: Option<&Path>,
        wvs_file: Option<&Path>,
        data: &DataSource,
    ) -> Self {
        match (personas_json, wvs_file) {
            (Some(j), _) => PersonaSource::Json(j.to_path_buf()),
            (None, Some(w)) => PersonaSource::WvsFile(w.to_path_buf()),
            (None, None) => PersonaSource::Marginals(data.clone()),
        }
    }

    /// The kind of this source.
    pub fn kind(&self) -> PersonaSourceKind {
        match self {
            PersonaSource::WvsFile(_) => PersonaSourceKind::WvsFile,
            PersonaSource::Marginals(_) => PersonaSourceKind::Marginals,
            PersonaSource::Json(_) => PersonaSourceKind::Json,
        }
    }

    /// The file behind this source, as errors name it.
    pub fn display(&self) -> String {
        match self {
            PersonaSource::WvsFile(p) | PersonaSource::Json(p) => p.display().to_string(),
            PersonaSource::Marginals(d) => d.display_path(WVS7_MARGINALS),
        }
    }
}
