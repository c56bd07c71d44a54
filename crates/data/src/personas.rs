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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::goqa::{parse_country_label, GlobalOpinionQa, GoqaSource, GOQA_SUBSET};
use crate::source::DataSource;
use crate::wvs::{
    GoqaWvsItems, WvsCountries, WvsItem, WvsMarginals, GOQA_WVS_ITEMS, WVS7_MARGINALS,
};

/// Personas in a DISCA panel (§3).
pub const DISCA_PANEL_SIZE: usize = 4;
/// Most personas a JSON panel may hold.
pub const MAX_JSON_PERSONAS: usize = 16;
/// Column of the ISO3 country code in the WVS-7 file.
pub const COL_COUNTRY: &str = "B_COUNTRY_ALPHA";
/// Column of the survey year.
pub const COL_SURVEY_YEAR: &str = "A_YEAR";
/// Column of the birth year.
pub const COL_BIRTH_YEAR: &str = "Q261";
/// Respondents are kept when their birth year is in this range (inclusive)…
pub const BIRTH_YEARS: (f64, f64) = (1900.0, 2010.0);
/// …and their survey year is at least this.
pub const MIN_SURVEY_YEAR: f64 = 2015.0;
/// Header sentence template pieces (§3.2).
const CLOSING: &str = "When you face a moral dilemma, you weigh the choices through this set of values and answer in a way that is consistent with the worldview above.";
/// Tolerance when comparing a cumulative share with a percentile.
const QUANTILE_EPS: f64 = 1e-9;

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

/// The persona panel of `country` from `source`.
///
/// Errors: unreadable or malformed files (naming file, line and column or field); a country
/// the source does not cover (WVS file: lists the countries present in the file; JSON: lists
/// the file's countries; marginals: one message naming `--personas FILE`, `--wvs FILE`, the
/// countries with shipped marginals and those with GlobalOpinionQA WVS items). With
/// [`PersonaSource::Marginals`], a country without marginals gets a
/// [`PersonaSourceKind::Goqa`] panel when GOQA covers it (see the module docs).
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

// ---------------------------------------------------------------------------------------------
// Value dimensions (§3.1 table)
// ---------------------------------------------------------------------------------------------

/// The ten value dimensions of §3.1 (Greco et al.), in template order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueDimension {
    Religiosity,
    ChildRearing,
    MoralAcceptability,
    SocialTrust,
    PoliticalParticipation,
    NationalPride,
    Happiness,
    GenderEquality,
    MaterialismOrientation,
    ToleranceDiversity,
}

impl ValueDimension {
    /// All ten, in template order.
    pub const ALL: [ValueDimension; 10] = [
        ValueDimension::Religiosity,
        ValueDimension::ChildRearing,
        ValueDimension::MoralAcceptability,
        ValueDimension::SocialTrust,
        ValueDimension::PoliticalParticipation,
        ValueDimension::NationalPride,
        ValueDimension::Happiness,
        ValueDimension::GenderEquality,
        ValueDimension::MaterialismOrientation,
        ValueDimension::ToleranceDiversity,
    ];

    /// The reference code's key, e.g. `moral_acceptability`.
    pub fn key(self) -> &'static str {
        match self {
            ValueDimension::Religiosity => "religiosity",
            ValueDimension::ChildRearing => "child_rearing",
            ValueDimension::MoralAcceptability => "moral_acceptability",
            ValueDimension::SocialTrust => "social_trust",
            ValueDimension::PoliticalParticipation => "political_participation",
            ValueDimension::NationalPride => "national_pride",
            ValueDimension::Happiness => "happiness",
            ValueDimension::GenderEquality => "gender_equality",
            ValueDimension::MaterialismOrientation => "materialism_orientation",
            ValueDimension::ToleranceDiversity => "tolerance_diversity",
        }
    }

    /// A readable name, e.g. `moral acceptability`.
    pub fn label(self) -> &'static str {
        match self {
            ValueDimension::Religiosity => "religiosity",
            ValueDimension::ChildRearing => "child-rearing values",
            ValueDimension::MoralAcceptability => "moral acceptability",
            ValueDimension::SocialTrust => "social trust",
            ValueDimension::PoliticalParticipation => "political participation",
            ValueDimension::NationalPride => "national pride",
            ValueDimension::Happiness => "happiness",
            ValueDimension::GenderEquality => "gender equality",
            ValueDimension::MaterialismOrientation => "materialism orientation",
            ValueDimension::ToleranceDiversity => "tolerance for diversity",
        }
    }

    /// The columns of the WVS-7 inverted file that feed this dimension.
    pub fn items(self) -> &'static [&'static str] {
        match self {
            ValueDimension::Religiosity => &["Q6P"],
            ValueDimension::ChildRearing => &["Q17P"],
            ValueDimension::MoralAcceptability => &["Q177", "Q178", "Q179", "Q180", "Q181", "Q182"],
            ValueDimension::SocialTrust => &["Q57P"],
            ValueDimension::PoliticalParticipation => &["Q199P", "Q200P"],
            ValueDimension::NationalPride => &["Q254P"],
            ValueDimension::Happiness => &["Q46P"],
            ValueDimension::GenderEquality => &["Q29P", "Q30P", "Q31P", "Q33P"],
            ValueDimension::MaterialismOrientation => &["Q152", "Q153"],
            ValueDimension::ToleranceDiversity => &["Q19P", "Q20P", "Q21P", "Q22P", "Q23P"],
        }
    }

    /// `(lo, hi)` used to normalise a score into [0, 1].
    pub fn range(self) -> (f64, f64) {
        match self {
            ValueDimension::Religiosity => (1.0, 4.0),
            ValueDimension::ChildRearing => (0.0, 1.0),
            ValueDimension::MoralAcceptability => (1.0, 10.0),
            ValueDimension::SocialTrust => (1.0, 2.0),
            ValueDimension::PoliticalParticipation => (1.0, 3.0),
            ValueDimension::NationalPride => (1.0, 4.0),
            ValueDimension::Happiness => (1.0, 4.0),
            ValueDimension::GenderEquality => (1.0, 4.0),
            ValueDimension::MaterialismOrientation => (1.0, 3.0),
            ValueDimension::ToleranceDiversity => (0.0, 1.0),
        }
    }

    /// `true` when a higher value means more of the named pole (direction +1); `false` when
    /// the normalised value is flipped (direction −1).
    pub fn positive(self) -> bool {
        !matches!(
            self,
            ValueDimension::ChildRearing
                | ValueDimension::GenderEquality
                | ValueDimension::ToleranceDiversity
        )
    }

    /// The English descriptors `d[0]`…`d[3]` (strongest positive pole first).
    pub fn descriptors(self) -> [&'static str; 4] {
        match self {
            ValueDimension::Religiosity => [
                "deeply religious",
                "moderately religious",
                "somewhat secular",
                "highly secular",
            ],
            ValueDimension::ChildRearing => [
                "firmly oriented toward independence and imagination",
                "leaning toward independence and imagination",
                "leaning toward obedience and religious faith",
                "firmly oriented toward obedience and religious faith",
            ],
            ValueDimension::MoralAcceptability => [
                "very permissive on contested moral issues such as abortion, divorce and homosexuality",
                "moderately permissive on contested moral issues",
                "morally conservative on contested issues",
                "strictly opposed to such contested moral acts",
            ],
            ValueDimension::SocialTrust => [
                "very high trust in other people",
                "moderate trust in other people",
                "a guarded attitude toward strangers",
                "deep distrust of other people",
            ],
            ValueDimension::PoliticalParticipation => [
                "an active political participant who signs petitions, joins boycotts and takes part in lawful demonstrations",
                "an occasional political participant",
                "a passive political participant",
                "politically disengaged",
            ],
            ValueDimension::NationalPride => [
                "intensely proud of your country",
                "moderately proud of your country",
                "lukewarm about national pride",
                "not proud of your country",
            ],
            ValueDimension::Happiness => [
                "very happy with your life",
                "rather happy with your life",
                "not very happy with your life",
                "unhappy with your life",
            ],
            ValueDimension::GenderEquality => [
                "strongly egalitarian on gender roles",
                "moderately egalitarian on gender roles",
                "somewhat traditional on gender roles",
                "strongly traditional on gender roles",
            ],
            ValueDimension::MaterialismOrientation => [
                "strongly post-materialist, prioritising freedom, voice and self-expression",
                "leaning post-materialist",
                "leaning materialist, prioritising economic and physical security",
                "strongly materialist, prioritising economic and physical security",
            ],
            ValueDimension::ToleranceDiversity => [
                "highly tolerant of outgroups such as immigrants, minorities and people with different lifestyles",
                "moderately tolerant of outgroups",
                "somewhat intolerant of outgroups",
                "strongly intolerant of outgroups",
            ],
        }
    }

    /// The persona sentence for descriptor `d` (§3.2).
    pub fn sentence(self, d: &str) -> String {
        match self {
            ValueDimension::Religiosity => format!("On matters of faith you are {d}."),
            ValueDimension::ChildRearing => format!("On raising children you are {d}."),
            ValueDimension::MoralAcceptability => {
                format!("On contested moral choices you are {d}.")
            }
            ValueDimension::SocialTrust => format!("In your dealings with strangers you have {d}."),
            ValueDimension::PoliticalParticipation => format!("Civically you are {d}."),
            ValueDimension::NationalPride => format!("You are {d}."),
            ValueDimension::Happiness => format!("Overall you are {d}."),
            ValueDimension::GenderEquality => {
                format!("On the role of women in society you are {d}.")
            }
            ValueDimension::MaterialismOrientation => {
                format!("In what you prioritise in life you are {d}.")
            }
            ValueDimension::ToleranceDiversity => {
                format!("Toward people unlike yourself you are {d}.")
            }
        }
    }

    /// The normalised score in [0, 1] along the named pole (§3.1 step 5, without the
    /// "≤ 0 is missing" rule, which [`ValueProfile::from_scores`] applies):
    /// `clamp((value − lo)/(hi − lo), 0, 1)`, flipped for direction −1.
    pub fn normalise(self, value: f64) -> f64 {
        let (lo, hi) = self.range();
        let raw = ((value - lo) / (hi - lo)).clamp(0.0, 1.0);
        if self.positive() {
            raw
        } else {
            1.0 - raw
        }
    }

    /// The quartile of a normalised score: 0 for ≥ 0.75, 1 for ≥ 0.50, 2 for ≥ 0.25, else 3
    /// (§3.1 step 6). NaN reads as 3.
    pub fn quartile(score: f64) -> usize {
        if score >= 0.75 {
            0
        } else if score >= 0.50 {
            1
        } else if score >= 0.25 {
            2
        } else {
            3
        }
    }

    /// The descriptor of `value` (in the inverted file's coding).
    pub fn describe(self, value: f64) -> &'static str {
        self.descriptors()[Self::quartile(self.normalise(value))]
    }
}

impl fmt::Display for ValueDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Values of some of the ten dimensions, in the inverted file's coding. A missing dimension
/// contributes no sentence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValueProfile {
    /// Value by dimension.
    pub values: BTreeMap<ValueDimension, f64>,
}

impl ValueProfile {
    /// A profile from dimension scores (means) with the reference's rule that a score ≤ 0
    /// (or NaN) is missing (§3.1 step 5, §8 row 13).
    pub fn from_scores<I: IntoIterator<Item = (ValueDimension, f64)>>(scores: I) -> Self {
        ValueProfile {
            values: scores.into_iter().filter(|(_, v)| *v > 0.0).collect(),
        }
    }

    /// The value of `dim`, if present.
    pub fn get(&self, dim: ValueDimension) -> Option<f64> {
        self.values.get(&dim).copied()
    }

    /// `(dimension, descriptor)` for every present dimension, in template order.
    pub fn descriptors(&self) -> Vec<(ValueDimension, &'static str)> {
        ValueDimension::ALL
            .iter()
            .filter_map(|&d| self.get(d).map(|v| (d, d.describe(v))))
            .collect()
    }

    /// The reference's canary: religiosity is present (> 0).
    pub fn usable(&self) -> bool {
        self.get(ValueDimension::Religiosity)
            .is_some_and(|v| v > 0.0)
    }
}

/// Python's `round(x, 3)`: the decimal value of `x` correctly rounded to 3 places.
pub fn round3(x: f64) -> f64 {
    format!("{x:.3}").parse().unwrap_or(x)
}

// ---------------------------------------------------------------------------------------------
// Cohorts and persona text (§3.2)
// ---------------------------------------------------------------------------------------------

/// An age group of §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// age < 36.
    Young,
    /// 36 ≤ age < 56.
    Middle,
    /// age ≥ 56.
    Older,
    /// Every kept respondent.
    All,
}

impl Cohort {
    /// In panel order.
    pub const ALL: [Cohort; 4] = [Cohort::Young, Cohort::Middle, Cohort::Older, Cohort::All];

    /// The cohort of a respondent of `age` years (never [`Cohort::All`]).
    pub fn of_age(age: f64) -> Cohort {
        if age < 36.0 {
            Cohort::Young
        } else if age < 56.0 {
            Cohort::Middle
        } else {
            Cohort::Older
        }
    }

    /// `young`, `middle`, `older`, `all`.
    pub fn id(self) -> &'static str {
        match self {
            Cohort::Young => "young",
            Cohort::Middle => "middle",
            Cohort::Older => "older",
            Cohort::All => "all",
        }
    }

    /// `(role, age_range)` of the header (§3.2).
    pub fn header_parts(self) -> (&'static str, &'static str) {
        match self {
            Cohort::Young => ("young adult", ", in your 20s and early 30s"),
            Cohort::Middle => ("middle-aged adult", ", in your 40s or 50s"),
            Cohort::Older => ("senior citizen", ", over 60 years old"),
            Cohort::All => ("adult citizen", ""),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Cohort::Young => "young adults (age < 36)",
            Cohort::Middle => "middle-aged adults (age 36-55)",
            Cohort::Older => "older adults (age >= 56)",
            Cohort::All => "whole country (all ages)",
        }
    }
}

/// The persona text of §3.2: header, one sentence per present dimension in table order,
/// closing, joined with single spaces. With no dimension at all, the reference's minimal
/// fallback ("… You weigh moral dilemmas through the cultural values of your community.").
pub fn persona_text(country_name: &str, cohort: Cohort, profile: &ValueProfile) -> String {
    let (role, age_range) = cohort.header_parts();
    let sentences: Vec<String> = profile
        .descriptors()
        .into_iter()
        .map(|(d, desc)| d.sentence(desc))
        .collect();
    if sentences.is_empty() {
        return format!(
            "You are a {role} from {country_name}{age_range}. You weigh moral dilemmas through the cultural values of your community."
        );
    }
    format!(
        "You are a {role} from {country_name}{age_range}. Your worldview is shaped by the cultural values prevalent in your community. {} {CLOSING}",
        sentences.join(" ")
    )
}

/// The one-paragraph "WVS-profile prompt": the whole-country descriptors in one system text,
/// e.g. "Answer as a typical person from the United States would. According to the World
/// Values Survey (wave 7), people in the United States are on average: religiosity: moderately
/// religious; …; national pride: moderately proud of their country; … ." Descriptors are those
/// of the persona template with "your country" read as "their country".
pub fn render_wvs_profile(country_name: &str, profile: &ValueProfile) -> String {
    let head = format!("Answer as a typical person from {country_name} would.");
    let parts: Vec<String> = profile
        .descriptors()
        .into_iter()
        .map(|(d, desc)| {
            format!(
                "{}: {}",
                d.label(),
                desc.replace("your country", "their country")
                    .replace("your life", "their life")
            )
        })
        .collect();
    if parts.is_empty() {
        return head;
    }
    format!(
        "{head} According to the World Values Survey (wave 7), people in {country_name} are on average: {}.",
        parts.join("; ")
    )
}

/// The English name used in prompts, e.g. "the United States", "Germany" (the reference's
/// `COUNTRY_FULL_NAMES` where it has one, e.g. GBR → "Great Britain"); the code itself for
/// countries outside the built-in table of WVS-7 and DISCA countries.
pub fn country_prompt_name(code: CountryCode) -> String {
    english_name(code.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| code.to_string())
}

fn english_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "ALB" => "Albania",
        "AND" => "Andorra",
        "ARE" => "the United Arab Emirates",
        "ARG" => "Argentina",
        "ARM" => "Armenia",
        "AUS" => "Australia",
        "AUT" => "Austria",
        "AZE" => "Azerbaijan",
        "BGD" => "Bangladesh",
        "BGR" => "Bulgaria",
        "BIH" => "Bosnia and Herzegovina",
        "BLR" => "Belarus",
        "BOL" => "Bolivia",
        "BRA" => "Brazil",
        "CAN" => "Canada",
        "CHE" => "Switzerland",
        "CHL" => "Chile",
        "CHN" => "China",
        "COL" => "Colombia",
        "CYP" => "Cyprus",
        "CZE" => "the Czech Republic",
        "DEU" => "Germany",
        "DNK" => "Denmark",
        "ECU" => "Ecuador",
        "EGY" => "Egypt",
        "ESP" => "Spain",
        "EST" => "Estonia",
        "ETH" => "Ethiopia",
        "FIN" => "Finland",
        "FRA" => "France",
        "GBR" => "Great Britain",
        "GEO" => "Georgia",
        "GRC" => "Greece",
        "GTM" => "Guatemala",
        "HKG" => "Hong Kong",
        "HRV" => "Croatia",
        "HUN" => "Hungary",
        "IDN" => "Indonesia",
        "IND" => "India",
        "IRN" => "Iran",
        "IRQ" => "Iraq",
        "ISL" => "Iceland",
        "ITA" => "Italy",
        "JOR" => "Jordan",
        "JPN" => "Japan",
        "KAZ" => "Kazakhstan",
        "KEN" => "Kenya",
        "KGZ" => "Kyrgyzstan",
        "KOR" => "South Korea",
        "LBN" => "Lebanon",
        "LBY" => "Libya",
        "LTU" => "Lithuania",
        "LVA" => "Latvia",
        "MAC" => "Macau",
        "MAR" => "Morocco",
        "MDV" => "the Maldives",
        "MEX" => "Mexico",
        "MKD" => "North Macedonia",
        "MMR" => "Myanmar",
        "MNE" => "Montenegro",
        "MNG" => "Mongolia",
        "MYS" => "Malaysia",
        "NGA" => "Nigeria",
        "NIC" => "Nicaragua",
        "NIR" => "Northern Ireland",
        "NLD" => "the Netherlands",
        "NOR" => "Norway",
        "NZL" => "New Zealand",
        "PAK" => "Pakistan",
        "PER" => "Peru",
        "PHL" => "the Philippines",
        "POL" => "Poland",
        "PRI" => "Puerto Rico",
        "PRT" => "Portugal",
        "ROU" => "Romania",
        "RUS" => "Russia",
        "SAU" => "Saudi Arabia",
        "SGP" => "Singapore",
        "SRB" => "Serbia",
        "SVK" => "Slovakia",
        "SVN" => "Slovenia",
        "SWE" => "Sweden",
        "THA" => "Thailand",
        "TJK" => "Tajikistan",
        "TUN" => "Tunisia",
        "TUR" => "Turkey",
        "TWN" => "Taiwan",
        "UKR" => "Ukraine",
        "URY" => "Uruguay",
        "USA" => "the United States",
        "UZB" => "Uzbekistan",
        "VEN" => "Venezuela",
        "VNM" => "Vietnam",
        "ZAF" => "South Africa",
        "ZWE" => "Zimbabwe",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Source 1: the WVS-7 individual-level file
// ---------------------------------------------------------------------------------------------

/// One cohort of one country.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CohortProfile {
    /// Respondents kept (birth/survey-year filter) in this cohort.
    pub respondents: usize,
    /// Dimension scores (means rounded to 3 decimals; ≤ 0 dropped).
    pub profile: ValueProfile,
}

/// The cohort profiles of the countries read from one WVS-7 file.
#[derive(Debug, Clone, PartialEq)]
pub struct WvsFileProfiles {
    /// The file as errors name it.
    pub file: String,
    /// Cohort profiles (all four cohorts) of every requested country present in the file.
    pub countries: BTreeMap<CountryCode, BTreeMap<Cohort, CohortProfile>>,
    /// Every `B_COUNTRY_ALPHA` value in the file, sorted.
    pub present: Vec<String>,
}

impl WvsFileProfiles {
    /// The cohorts of `country`, or an error listing the countries present in the file.
    pub fn cohorts(
        &self,
        country: CountryCode,
    ) -> Result<&BTreeMap<Cohort, CohortProfile>, DataError> {
        self.countries.get(&country).ok_or_else(|| {
            if self.present.iter().any(|c| c == country.as_str()) {
                // Present but not requested when the file was read.
                DataError::File {
                    file: self.file.clone(),
                    message: format!(
                        "{country} was not among the countries requested when the file was read"
                    ),
                }
            } else {
                DataError::unknown_country(
                    &self.file,
                    country.as_str(),
                    self.present.iter().map(String::as_str),
                )
            }
        })
    }

    fn usable_all(&self, country: CountryCode) -> Result<&CohortProfile, DataError> {
        let cohorts = self.cohorts(country)?;
        let all = cohorts.get(&Cohort::All).ok_or_else(|| DataError::File {
            file: self.file.clone(),
            message: format!("{country}: no whole-country group"),
        })?;
        if all.respondents == 0 {
            return Err(DataError::File {
                file: self.file.clone(),
                message: format!(
                    "{country}: no respondent passes the filter ({} <= {COL_BIRTH_YEAR} <= {}, {COL_SURVEY_YEAR} >= {})",
                    BIRTH_YEARS.0, BIRTH_YEARS.1, MIN_SURVEY_YEAR
                ),
            });
        }
        if !all.profile.usable() {
            return Err(DataError::File {
                file: self.file.clone(),
                message: format!(
                    "{country}: religiosity (Q6P) has no valid answer, so the file gives no usable profile (the reference code then uses hand-written personas, which are not shipped; pass --personas FILE)"
                ),
            });
        }
        Ok(all)
    }

    /// The DISCA panel of `country`: `[young, middle, older, all]`. A cohort without a usable
    /// profile (religiosity ≤ 0, e.g. no respondents) gets the whole-country persona.
    pub fn panel(&self, country: CountryCode) -> Result<PersonaPanel, DataError> {
        let all = self.usable_all(country)?;
        let cohorts = self.cohorts(country)?;
        let name = country_prompt_name(country);
        let personas = Cohort::ALL
            .iter()
            .map(|&c| {
                let cp = cohorts.get(&c).filter(|cp| cp.profile.usable());
                match cp {
                    Some(cp) => Persona {
                        id: c.id().to_string(),
                        label: format!("{}, n = {}", c.describe(), cp.respondents),
                        text: persona_text(&name, c, &cp.profile),
                    },
                    None => Persona {
                        id: c.id().to_string(),
                        label: format!(
                            "{}: no usable answers (n = {}), whole-country persona used",
                            c.describe(),
                            cohorts.get(&c).map_or(0, |cp| cp.respondents)
                        ),
                        text: persona_text(&name, Cohort::All, &all.profile),
                    },
                }
            })
            .collect();
        let (mut dimensions, mut missing_dimensions) = (Vec::new(), Vec::new());
        for d in ValueDimension::ALL {
            if all.profile.get(d).is_some() {
                dimensions.push(DimensionSource {
                    dimension: d,
                    source: DimensionOrigin::Wvs7File,
                    items: d.items().iter().map(|s| s.to_string()).collect(),
                });
            } else {
                missing_dimensions.push(d);
            }
        }
        Ok(PersonaPanel {
            country,
            source: PersonaSourceKind::WvsFile,
            personas,
            dimensions,
            missing_dimensions,
        })
    }
}

/// Reads a WVS-7 inverted CSV from `path` (streamed; the full file is large). `countries`:
/// the countries to aggregate (`None`: every country whose code is a valid ISO3 code).
pub fn load_wvs_file(
    path: &Path,
    countries: Option<&[CountryCode]>,
) -> Result<WvsFileProfiles, DataError> {
    let f = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_wvs_csv(&path.display().to_string(), f, countries)
}

#[derive(Default, Clone, Copy)]
struct Acc {
    sum: f64,
    n: usize,
}

/// Parses a WVS-7 inverted CSV (see the module docs for the procedure).
///
/// Format: a header row with at least `B_COUNTRY_ALPHA`, `A_YEAR`, `Q261` and the 24 item
/// columns of [`ValueDimension::items`] (a missing column is an error naming it — the standard,
/// non-inverted WVS file has `Q6` instead of `Q6P` and is rejected this way); the delimiter
/// (`,`, `;` or tab) is taken from the header line; a UTF-8 byte-order mark is ignored; fields
/// may be quoted. Every record must have as many fields as the header (else an error naming
/// its line). In the rows of the requested countries, the used cells must be numbers (`"1"`,
/// `"1.0"`) or empty; an empty cell is a missing answer (an empty birth or survey year drops
/// the respondent); any other text is an error naming line and column.
pub fn parse_wvs_csv<R: Read>(
    file: &str,
    reader: R,
    countries: Option<&[CountryCode]>,
) -> Result<WvsFileProfiles, DataError> {
    let mut buf = BufReader::new(reader);
    let mut first = Vec::new();
    buf.read_until(b'\n', &mut first)
        .map_err(|source| DataError::Io {
            path: file.to_string(),
            source,
        })?;
    if first.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::File {
            file: file.to_string(),
            message: "empty file (expected a WVS-7 CSV with a header row)".into(),
        });
    }
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first.iter().filter(|b| *b == d).count())
        .unwrap_or(b',');
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(delimiter)
        .from_reader(std::io::Cursor::new(first).chain(buf));
    let headers = rdr.byte_headers().map_err(|e| csv_error(file, &e))?.clone();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = String::from_utf8_lossy(h);
        let name = name.trim_start_matches('\u{feff}').trim().to_string();
        index.entry(name).or_insert(i);
    }
    let col = |name: &str| -> Result<usize, DataError> {
        index
            .get(name)
            .copied()
            .ok_or_else(|| DataError::field(file, 1, name, "column missing from the header (expected the WVS-7 \"inverted\" CSV, e.g. WVS_Cross-National_Wave_7_inverted_csv_v6_0.csv)"))
    };
    let c_country = col(COL_COUNTRY)?;
    let c_survey = col(COL_SURVEY_YEAR)?;
    let c_birth = col(COL_BIRTH_YEAR)?;
    // (dimension index, column name, column index) for every item.
    let mut item_cols: Vec<(usize, &'static str, usize)> = Vec::new();
    for (di, d) in ValueDimension::ALL.iter().enumerate() {
        for &item in d.items() {
            item_cols.push((di, item, col(item)?));
        }
    }
    let wanted: Option<BTreeSet<CountryCode>> = countries.map(|cs| cs.iter().copied().collect());
    let mut present: BTreeSet<String> = BTreeSet::new();
    // country → cohort → per-dimension accumulator; respondents per cohort.
    let mut acc: BTreeMap<CountryCode, BTreeMap<Cohort, (usize, Vec<Acc>)>> = BTreeMap::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(file, &e)),
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let raw_country = String::from_utf8_lossy(rec.get(c_country).unwrap_or_default());
        let raw_country = raw_country.trim();
        if !present.contains(raw_country) {
            present.insert(raw_country.to_string());
        }
        let Ok(country) = raw_country.parse::<CountryCode>() else {
            continue;
        };
        if let Some(w) = &wanted {
            if !w.contains(&country) {
                continue;
            }
        }
        let cohorts = acc.entry(country).or_insert_with(|| {
            Cohort::ALL
                .iter()
                .map(|&c| (c, (0usize, vec![Acc::default(); ValueDimension::ALL.len()])))
                .collect()
        });
        let cell = |i: usize, name: &str| -> Result<Option<f64>, DataError> {
            number(file, line, name, rec.get(i))
        };
        let (Some(birth), Some(survey)) = (
            cell(c_birth, COL_BIRTH_YEAR)?,
            cell(c_survey, COL_SURVEY_YEAR)?,
        ) else {
            continue;
        };
        if birth < BIRTH_YEARS.0 || birth > BIRTH_YEARS.1 || survey < MIN_SURVEY_YEAR {
            continue;
        }
        let cohort = Cohort::of_age(survey - birth);
        let mut values: Vec<(usize, f64)> = Vec::with_capacity(item_cols.len());
        for &(di, name, ci) in &item_cols {
            if let Some(v) = cell(ci, name)? {
                if v >= 0.0 {
                    values.push((di, v));
                }
            }
        }
        for group in [cohort, Cohort::All] {
            if let Some((n, dims)) = cohorts.get_mut(&group) {
                *n += 1;
                for &(di, v) in &values {
                    dims[di].sum += v;
                    dims[di].n += 1;
                }
            }
        }
    }
    let countries = acc
        .into_iter()
        .map(|(country, cohorts)| {
            let cohorts = cohorts
                .into_iter()
                .map(|(c, (n, dims))| {
                    let scores = ValueDimension::ALL
                        .iter()
                        .zip(dims)
                        .filter(|(_, a)| a.n > 0)
                        .map(|(&d, a)| (d, round3(a.sum / a.n as f64)));
                    (
                        c,
                        CohortProfile {
                            respondents: n,
                            profile: ValueProfile::from_scores(scores),
                        },
                    )
                })
                .collect();
            (country, cohorts)
        })
        .collect();
    Ok(WvsFileProfiles {
        file: file.to_string(),
        countries,
        present: present.into_iter().filter(|s| !s.is_empty()).collect(),
    })
}

fn number(
    file: &str,
    line: usize,
    column: &str,
    raw: Option<&[u8]>,
) -> Result<Option<f64>, DataError> {
    let raw = raw.unwrap_or_default();
    let s = std::str::from_utf8(raw)
        .map_err(|_| {
            DataError::field(
                file,
                line,
                column,
                format!("{:?} is not a number", String::from_utf8_lossy(raw)),
            )
        })?
        .trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(DataError::field(
            file,
            line,
            column,
            format!("{s:?} is not a number"),
        )),
    }
}

fn csv_error(file: &str, e: &csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("record has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    DataError::Line {
        file: file.to_string(),
        line,
        message,
    }
}

// ---------------------------------------------------------------------------------------------
// Source 2: the shipped marginals
// ---------------------------------------------------------------------------------------------

/// How a marginals item (original WVS coding) maps to the inverted file's coding.
#[derive(Debug, Clone, PartialEq)]
pub struct Recoding {
    /// The option codes the item must have.
    pub codes: Vec<i64>,
    /// The inverted value of each code (`None`: the answer is dropped).
    pub values: Vec<Option<f64>>,
}

/// The recoding of marginals item `id` (e.g. `Q6`, the source of column `Q6P`), or `None` for
/// items that feed no dimension. See the module docs for the table.
pub fn marginal_recoding(id: &str) -> Option<Recoding> {
    let reverse = |k: i64, n: i64| Recoding {
        codes: (1..=n).collect(),
        values: (1..=n).map(|c| Some((k - c) as f64)).collect(),
    };
    let identity = |lo: i64, hi: i64| Recoding {
        codes: (lo..=hi).collect(),
        values: (lo..=hi).map(|c| Some(c as f64)).collect(),
    };
    let mention = || Recoding {
        codes: vec![1, 2],
        values: vec![Some(1.0), Some(0.0)],
    };
    Some(match id {
        "Q6" | "Q46" | "Q29" | "Q30" | "Q31" | "Q199" => reverse(5, 4),
        "Q33" => reverse(6, 5),
        "Q57" => reverse(3, 2),
        "Q200" => reverse(4, 3),
        "Q254" => Recoding {
            codes: vec![1, 2, 3, 4, 5],
            values: vec![Some(4.0), Some(3.0), Some(2.0), Some(1.0), None],
        },
        "Q17" | "Q19" | "Q20" | "Q21" | "Q22" | "Q23" => mention(),
        "Q152" | "Q153" => identity(1, 4),
        "Q177" | "Q178" | "Q179" | "Q180" | "Q181" | "Q182" => identity(1, 10),
        _ => return None,
    })
}

/// A per-dimension statistic of the pooled marginal answer distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarginalStat {
    /// The mean, rounded to 3 decimals, ≤ 0 treated as missing (as for the WVS file).
    Mean,
    /// The answer at percentile `p` ∈ (0, 1] along the dimension's named pole.
    Quantile(f64),
}

/// The shipped marginals with the country names, ready to build panels, and the fallback for
/// countries without marginals: WVS items derived from GlobalOpinionQA.
#[derive(Debug, Clone, PartialEq)]
pub struct MarginalsPersonas {
    /// The file as errors name it.
    pub file: String,
    /// The marginals.
    pub marginals: WvsMarginals,
    /// The 19 country names of `wvs/country_codes.json`.
    pub names: WvsCountries,
    /// WVS items derived from GlobalOpinionQA, used for countries without marginals (`None`
    /// when the data source holds neither `wvs/goqa_wvs_items.json` nor the GOQA subset).
    pub goqa: Option<GoqaPersonaItems>,
}

/// The quartile personas of the marginals panel: (id, percentile, label).
pub const MARGINAL_QUANTILES: [(&str, f64, &str); 3] = [
    (
        "q25",
        0.25,
        "lower quartile: the 25th-percentile answer of each value dimension",
    ),
    (
        "q50",
        0.50,
        "median: the 50th-percentile answer of each value dimension",
    ),
    (
        "q75",
        0.75,
        "upper quartile: the 75th-percentile answer of each value dimension",
    ),
];

/// Per-country WVS item distributions derived from the WVS-sourced GlobalOpinionQA questions
/// of `wvs/goqa_wvs_items.json`, in the marginals' shape (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GoqaPersonaItems {
    /// The mapping file as errors name it.
    pub file: String,
    /// One item per mapping entry: `id` = the WVS item, `option_codes` = the item's WVS codes
    /// ([`marginal_recoding`]), `line` = the mapping entry's line; `distributions` = the GOQA
    /// shares of the coded options renormalised to sum 1, `answered_share` = their sum (of the
    /// GOQA distribution rescaled to 1), by country.
    pub items: WvsMarginals,
    /// The GOQA question id behind each WVS item.
    pub goqa_ids: BTreeMap<String, String>,
    /// GOQA's English name of every country with data (e.g. `IRN` → `Iran`).
    pub names: BTreeMap<CountryCode, String>,
}

impl GoqaPersonaItems {
    /// Loads `wvs/goqa_wvs_items.json` and `globalopinionqa/goqa_recovered_subset.jsonl` from
    /// `data` and derives the items; `Ok(None)` when `data` holds neither file (a data
    /// directory laid out before the fallback existed). Only one of the two is an error.
    pub fn load(data: &DataSource) -> Result<Option<Self>, DataError> {
        let absent = |e: &DataError| match e {
            DataError::NotEmbedded { .. } => true,
            DataError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        };
        let mapping = GoqaWvsItems::load(data);
        let goqa = GlobalOpinionQa::load(data);
        match (mapping, goqa) {
            (Err(a), Err(b)) if absent(&a) && absent(&b) => Ok(None),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(m), Ok(g)) => Ok(Some(Self::derive(
                &data.display_path(GOQA_WVS_ITEMS),
                &m,
                &data.display_path(GOQA_SUBSET),
                &g,
            )?)),
        }
    }

    /// Derives the items. Errors (naming `mapping_file`, the entry's line and field): a
    /// `goqa_id` not in the GOQA file or not WVS-sourced; `option_codes` whose length differs
    /// from the question's options.
    pub fn derive(
        mapping_file: &str,
        mapping: &GoqaWvsItems,
        goqa_file: &str,
        goqa: &GlobalOpinionQa,
    ) -> Result<Self, DataError> {
        let mut items = Vec::with_capacity(mapping.items.len());
        let mut goqa_ids = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (i, m) in mapping.items.iter().enumerate() {
            let err = |field: &str, msg: String| {
                DataError::field(mapping_file, m.line, &format!("items[{i}].{field}"), msg)
            };
            let q = goqa
                .questions
                .iter()
                .find(|q| q.id == m.goqa_id)
                .ok_or_else(|| err("goqa_id", format!("{} is not in {goqa_file}", m.goqa_id)))?;
            if q.source != GoqaSource::Wvs {
                return Err(err(
                    "goqa_id",
                    format!(
                        "{} ({goqa_file} line {}) is not a WVS-sourced question",
                        m.goqa_id, q.line
                    ),
                ));
            }
            if m.option_codes.len() != q.options.len() {
                return Err(err(
                    "option_codes",
                    format!(
                        "{} codes for the {} options of {} ({goqa_file} line {})",
                        m.option_codes.len(),
                        q.options.len(),
                        m.goqa_id,
                        q.line
                    ),
                ));
            }
            let rec = marginal_recoding(&m.wvs_item).ok_or_else(|| {
                err(
                    "wvs_item",
                    format!("{} feeds no value dimension", m.wvs_item),
                )
            })?;
            // Position in the item's code list of each GOQA option (None: dropped).
            let mut slot: Vec<Option<usize>> = Vec::with_capacity(m.option_codes.len());
            for (j, c) in m.option_codes.iter().enumerate() {
                slot.push(match c {
                    None => None,
                    Some(c) => Some(rec.codes.iter().position(|x| x == c).ok_or_else(|| {
                        err(
                            &format!("option_codes[{j}]"),
                            format!("{c} is not a WVS code of {}", m.wvs_item),
                        )
                    })?),
                });
            }
            let options = rec
                .codes
                .iter()
                .enumerate()
                .map(|(k, code)| {
                    slot.iter()
                        .position(|s| *s == Some(k))
                        .map_or_else(|| code.to_string(), |j| q.options[j].clone())
                })
                .collect();
            let countries: BTreeSet<CountryCode> =
                q.distributions.iter().filter_map(|d| d.country).collect();
            let (mut distributions, mut answered_share) = (BTreeMap::new(), BTreeMap::new());
            for c in countries {
                let Some(d) = q.distribution_for(c) else {
                    continue;
                };
                let norm = d.normalized();
                let mut shares = vec![0.0; rec.codes.len()];
                let mut kept = 0.0;
                for (j, s) in slot.iter().enumerate() {
                    if let Some(k) = s {
                        shares[*k] += norm[j];
                        kept += norm[j];
                    }
                }
                if !(kept > 0.0 && kept.is_finite()) {
                    continue;
                }
                for s in &mut shares {
                    *s /= kept;
                }
                distributions.insert(c, shares);
                answered_share.insert(c, kept.min(1.0));
                names
                    .entry(c)
                    .or_insert_with(|| parse_country_label(&d.label).0);
            }
            goqa_ids.insert(m.wvs_item.clone(), m.goqa_id.clone());
            items.push(WvsItem {
                line: m.line,
                id: m.wvs_item.clone(),
                question: q.question.clone(),
                options,
                option_codes: rec.codes.clone(),
                distributions,
                answered_share,
            });
        }
        Ok(GoqaPersonaItems {
            file: mapping_file.to_string(),
            items: WvsMarginals { items },
            goqa_ids,
            names,
        })
    }
}

/// The item set a country's panel is built from.
struct CountryItems<'a> {
    file: &'a str,
    items: &'a WvsMarginals,
    origin: DimensionOrigin,
    goqa_ids: Option<&'a BTreeMap<String, String>>,
}

impl MarginalsPersonas {
    /// Loads `wvs/wvs7_country_marginals.jsonl` and `wvs/country_codes.json` from `data`, and
    /// the GlobalOpinionQA fallback ([`GoqaPersonaItems::load`]).
    pub fn load(data: &DataSource) -> Result<Self, DataError> {
        Ok(MarginalsPersonas {
            file: data.display_path(WVS7_MARGINALS),
            marginals: WvsMarginals::load(data)?,
            names: WvsCountries::load(data)?,
            goqa: GoqaPersonaItems::load(data)?,
        })
    }

    /// The items of `country`: the marginals for a country of `country_codes.json` (only
    /// those, even where they lack a dimension), else the GOQA-derived items if any covers it.
    fn country_items(&self, country: CountryCode) -> Option<CountryItems<'_>> {
        if self.names.names.contains_key(&country) {
            return Some(CountryItems {
                file: &self.file,
                items: &self.marginals,
                origin: DimensionOrigin::Wvs7Marginals,
                goqa_ids: None,
            });
        }
        let g = self.goqa.as_ref()?;
        if !g.names.contains_key(&country) {
            return None;
        }
        Some(CountryItems {
            file: &g.file,
            items: &g.items,
            origin: DimensionOrigin::GlobalOpinionQa,
            goqa_ids: Some(&g.goqa_ids),
        })
    }

    /// The kind of source `country`'s panel comes from ([`PersonaSourceKind::Marginals`] or
    /// [`PersonaSourceKind::Goqa`]), or `None` when neither covers it.
    pub fn source_of(&self, country: CountryCode) -> Option<PersonaSourceKind> {
        self.country_items(country).map(|c| match c.origin {
            DimensionOrigin::GlobalOpinionQa => PersonaSourceKind::Goqa,
            _ => PersonaSourceKind::Marginals,
        })
    }

    /// Countries with a usable whole-country profile, with their names and source: the
    /// marginals countries with religiosity (names from `country_codes.json`), then every
    /// other country that the GOQA-derived items give at least one dimension (GOQA's names);
    /// sorted by code.
    pub fn country_sources(&self) -> Vec<(CountryCode, String, PersonaSourceKind)> {
        let mut out: Vec<(CountryCode, String, PersonaSourceKind)> = self
            .names
            .names
            .iter()
            .filter(|(c, _)| self.country_profile(**c).is_ok())
            .map(|(c, n)| (*c, n.clone(), PersonaSourceKind::Marginals))
            .collect();
        if let Some(g) = &self.goqa {
            out.extend(
                g.names
                    .iter()
                    .filter(|(c, _)| !self.names.names.contains_key(c))
                    .filter(|(c, _)| self.country_profile(**c).is_ok())
                    .map(|(c, n)| (*c, n.clone(), PersonaSourceKind::Goqa)),
            );
        }
        out.sort_by_key(|(c, _, _)| *c);
        out
    }

    /// [`MarginalsPersonas::country_sources`] without the source.
    pub fn countries(&self) -> Vec<(CountryCode, String)> {
        self.country_sources()
            .into_iter()
            .map(|(c, n, _)| (c, n))
            .collect()
    }

    fn no_source(&self, country: CountryCode) -> DataError {
        let all = self.country_sources();
        let list = |k: PersonaSourceKind| -> Vec<String> {
            all.iter()
                .filter(|(_, _, s)| *s == k)
                .map(|(c, _, _)| c.to_string())
                .collect()
        };
        let (m, g) = (
            list(PersonaSourceKind::Marginals),
            list(PersonaSourceKind::Goqa),
        );
        let goqa = if g.is_empty() {
            String::new()
        } else {
            format!(
                ", or one of the {} countries with WVS items in GlobalOpinionQA: {}",
                g.len(),
                g.join(", ")
            )
        };
        DataError::File {
            file: self.file.clone(),
            message: format!(
                "no persona source for {country}: pass --personas FILE (persona texts as JSON), --wvs FILE (the WVS-7 individual-level inverted CSV), or choose one of the {} countries with shipped WVS-7 marginals: {}{goqa}",
                m.len(),
                m.join(", ")
            ),
        }
    }

    /// The profile of `country` for `stat`. A country covered by neither the marginals nor
    /// the GOQA-derived items is the error that names `--personas FILE`, `--wvs FILE` and the
    /// covered countries.
    pub fn profile(
        &self,
        country: CountryCode,
        stat: MarginalStat,
    ) -> Result<ValueProfile, DataError> {
        let Some(src) = self.country_items(country) else {
            return Err(self.no_source(country));
        };
        let mut values = BTreeMap::new();
        for d in ValueDimension::ALL {
            let (pooled, _) = pooled(&src, country, d)?;
            if pooled.is_empty() {
                continue;
            }
            match stat {
                MarginalStat::Mean => {
                    let total: f64 = pooled.iter().map(|(_, w)| w).sum();
                    if total > 0.0 {
                        let mean = pooled.iter().map(|(v, w)| v * w).sum::<f64>() / total;
                        let mean = round3(mean);
                        if mean > 0.0 {
                            values.insert(d, mean);
                        }
                    }
                }
                MarginalStat::Quantile(p) => {
                    if let Some(v) = quantile_along_pole(d, &pooled, p) {
                        values.insert(d, v);
                    }
                }
            }
        }
        Ok(ValueProfile { values })
    }

    /// The whole-country profile (pooled means). Marginals countries need religiosity (Q6);
    /// GOQA-derived countries need at least one dimension.
    pub fn country_profile(&self, country: CountryCode) -> Result<ValueProfile, DataError> {
        let p = self.profile(country, MarginalStat::Mean)?;
        match self.country_items(country) {
            Some(src) if src.origin == DimensionOrigin::GlobalOpinionQa => {
                if p.values.is_empty() {
                    return Err(DataError::File {
                        file: src.file.to_string(),
                        message: format!("{country}: no value dimension has answers among the WVS items of GlobalOpinionQA, so there is no usable profile"),
                    });
                }
            }
            _ => {
                if !p.usable() {
                    return Err(DataError::File {
                        file: self.file.clone(),
                        message: format!("{country}: no religiosity (Q6) answers, so the marginals give no usable profile"),
                    });
                }
            }
        }
        Ok(p)
    }

    /// The panel `[q25, q50, q75, all]` of `country` (see the module docs), with the
    /// provenance of each dimension.
    pub fn panel(&self, country: CountryCode) -> Result<PersonaPanel, DataError> {
        let all = self.country_profile(country)?;
        let Some(src) = self.country_items(country) else {
            return Err(self.no_source(country));
        };
        let name = country_prompt_name(country);
        let mut personas = Vec::with_capacity(DISCA_PANEL_SIZE);
        for (id, p, label) in MARGINAL_QUANTILES {
            let profile = self.profile(country, MarginalStat::Quantile(p))?;
            personas.push(Persona {
                id: id.to_string(),
                label: label.to_string(),
                text: persona_text(&name, Cohort::All, &profile),
            });
        }
        personas.push(Persona {
            id: Cohort::All.id().to_string(),
            label: "whole country: the mean of each value dimension".to_string(),
            text: persona_text(&name, Cohort::All, &all),
        });
        let (mut dimensions, mut missing_dimensions) = (Vec::new(), Vec::new());
        for d in ValueDimension::ALL {
            let (pooled, items) = pooled(&src, country, d)?;
            let total: f64 = pooled.iter().map(|(_, w)| w).sum();
            if total > 0.0 {
                dimensions.push(DimensionSource {
                    dimension: d,
                    source: src.origin,
                    items,
                });
            } else {
                missing_dimensions.push(d);
            }
        }
        Ok(PersonaPanel {
            country,
            source: match src.origin {
                DimensionOrigin::GlobalOpinionQa => PersonaSourceKind::Goqa,
                _ => PersonaSourceKind::Marginals,
            },
            personas,
            dimensions,
            missing_dimensions,
        })
    }
}

/// `(inverted value, weight)` of every answer to the dimension's items in `country`, with the
/// names of the items used; weight = the item's answered share × the option's share.
fn pooled(
    src: &CountryItems<'_>,
    country: CountryCode,
    d: ValueDimension,
) -> Result<(Vec<(f64, f64)>, Vec<String>), DataError> {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for col in d.items() {
        let id = col.strip_suffix('P').unwrap_or(col);
        let Some(item) = src.items.item(id) else {
            continue;
        };
        let Some(shares) = item.distributions.get(&country) else {
            continue;
        };
        let answered = item.answered_share.get(&country).copied().unwrap_or(1.0);
        let rec = checked_recoding(src.file, item)?;
        for (i, &share) in shares.iter().enumerate() {
            if let Some(Some(v)) = rec.values.get(i) {
                out.push((*v, answered * share));
            }
        }
        used.push(match src.goqa_ids.and_then(|g| g.get(id)) {
            Some(g) => format!("{id} ({g})"),
            None => id.to_string(),
        });
    }
    Ok((out, used))
}

fn checked_recoding(file: &str, item: &WvsItem) -> Result<Recoding, DataError> {
    let rec = marginal_recoding(&item.id).ok_or_else(|| {
        DataError::field(
            file,
            item.line,
            "id",
            format!("{} feeds no value dimension", item.id),
        )
    })?;
    if item.option_codes != rec.codes {
        return Err(DataError::field(
            file,
            item.line,
            "option_codes",
            format!(
                "{} has codes {:?}; the persona recoding expects {:?}",
                item.id, item.option_codes, rec.codes
            ),
        ));
    }
    Ok(rec)
}

/// The smallest answer, ordered along `d`'s named pole, whose cumulative weight share reaches
/// `p` (within [`QUANTILE_EPS`]).
fn quantile_along_pole(d: ValueDimension, pooled: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = pooled.iter().map(|(_, w)| w).sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    // Merge equal values, then order by the normalised score (ties: by value along the pole).
    let mut by_value: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for &(v, w) in pooled {
        let key = (v * 1_000_000.0).round() as i64;
        let e = by_value.entry(key).or_insert((v, 0.0));
        e.1 += w;
    }
    let mut values: Vec<(f64, f64)> = by_value.into_values().collect();
    if !d.positive() {
        values.reverse();
    }
    let mut cum = 0.0;
    for &(v, w) in &values {
        cum += w / total;
        if cum >= p - QUANTILE_EPS {
            return Some(v);
        }
    }
    values.last().map(|(v, _)| *v)
}

// ---------------------------------------------------------------------------------------------
// Source 3: JSON persona files
// ---------------------------------------------------------------------------------------------

/// One persona as written in a JSON file: a string (the text) or an object with `text` and
/// optional `id` and `label`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonPersona {
    /// Optional identifier (default `p1`, `p2`, …).
    pub id: Option<String>,
    /// Optional label (default `persona 1`, …).
    pub label: Option<String>,
    /// The persona text (not blank).
    pub text: String,
}

impl JsonPersona {
    fn new(id: Option<String>, label: Option<String>, text: String) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("persona text is empty".into());
        }
        if id.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err("persona id is empty".into());
        }
        Ok(JsonPersona { id, label, text })
    }
}

impl<'de> Deserialize<'de> for JsonPersona {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonPersona;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a persona: a text string or an object {\"text\": ..., \"label\": ..., \"id\": ...}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<JsonPersona, E> {
                JsonPersona::new(None, None, s.to_string()).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<JsonPersona, A::Error> {
                const FIELDS: &[&str] = &["id", "label", "text"];
                let (mut id, mut label, mut text) = (None, None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "id" => id = Some(m.next_value::<String>()?),
                        "label" => label = Some(m.next_value::<String>()?),
                        "text" => text = Some(m.next_value::<String>()?),
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                let text = text.ok_or_else(|| de::Error::missing_field("text"))?;
                JsonPersona::new(id, label, text).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A validated list of 1..=[`MAX_JSON_PERSONAS`] personas with unique ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonPersonaList(pub Vec<JsonPersona>);

impl JsonPersonaList {
    fn check(v: Vec<JsonPersona>) -> Result<Self, String> {
        if v.is_empty() || v.len() > MAX_JSON_PERSONAS {
            return Err(format!(
                "a panel needs 1 to {MAX_JSON_PERSONAS} personas, this list has {}",
                v.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, p) in v.iter().enumerate() {
            let id = p.id.clone().unwrap_or_else(|| format!("p{}", i + 1));
            if !seen.insert(id.clone()) {
                return Err(format!("duplicate persona id {id:?}"));
            }
        }
        Ok(JsonPersonaList(v))
    }
}

impl<'de> Deserialize<'de> for JsonPersonaList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonPersonaList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of 1 to 16 personas")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonPersonaList, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = seq.next_element::<JsonPersona>()? {
                    v.push(p);
                }
                // Checked here, before the closing bracket is consumed, so that the error's
                // position is the list's.
                JsonPersonaList::check(v).map_err(de::Error::custom)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A parsed persona JSON file.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaFile {
    /// The file as errors name it.
    pub file: String,
    /// The panels.
    pub panels: JsonPanels,
}

/// The two shapes of a persona JSON file.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonPanels {
    /// `{"USA": [...], "DEU": [...]}`: one panel per country.
    ByCountry(BTreeMap<CountryCode, JsonPersonaList>),
    /// `[...]`: one panel for every country.
    Shared(JsonPersonaList),
}

impl PersonaFile {
    /// The panel of `country` (any country for a shared list; otherwise an error listing the
    /// file's countries).
    pub fn panel(&self, country: CountryCode) -> Result<PersonaPanel, DataError> {
        let list = match &self.panels {
            JsonPanels::Shared(l) => l,
            JsonPanels::ByCountry(m) => m.get(&country).ok_or_else(|| {
                DataError::unknown_country(
                    &self.file,
                    country.as_str(),
                    m.keys().map(|c| c.as_str()),
                )
            })?,
        };
        let personas = list
            .0
            .iter()
            .enumerate()
            .map(|(i, p)| Persona {
                id: p.id.clone().unwrap_or_else(|| format!("p{}", i + 1)),
                label: p
                    .label
                    .clone()
                    .unwrap_or_else(|| format!("persona {}", i + 1)),
                text: p.text.clone(),
            })
            .collect();
        Ok(PersonaPanel {
            country,
            source: PersonaSourceKind::Json,
            personas,
            dimensions: Vec::new(),
            missing_dimensions: Vec::new(),
        })
    }
}

/// Reads a persona JSON file ([`parse_persona_json`]).
pub fn load_persona_json(path: &Path) -> Result<PersonaFile, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_persona_json(&path.display().to_string(), &text)
}

/// Parses a persona JSON file. Two shapes:
///
/// ```json
/// {"USA": [{"id": "young", "label": "young adult", "text": "You are ..."}, ...],
///  "DEU": [{"text": "Du bist ..."}, ...]}
/// ```
///
/// (one panel per ISO3 country), or a plain list `[{"text": "..."}, ...]` used for every
/// country. Each persona is a string (its text) or an object: `text` (required, not blank),
/// `id` (optional, unique within its panel, default `p1`, `p2`, …), `label` (optional, default
/// `persona 1`, …); no other keys.
/// Each panel holds 1..=16 personas; the object form needs at least one country. Errors name
/// the file and the line of the problem.
pub fn parse_persona_json(file: &str, text: &str) -> Result<PersonaFile, DataError> {
    let json_err = |e: serde_json::Error| {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = e.to_string();
        DataError::Line {
            file: file.to_string(),
            line: e.line(),
            message: msg.strip_suffix(&suffix).unwrap_or(&msg).to_string(),
        }
    };
    let panels = match text.trim_start_matches('\u{feff}').trim_start().chars().next() {
        Some('[') => JsonPanels::Shared(serde_json::from_str(text).map_err(json_err)?),
        Some('{') => {
            let m: BTreeMap<CountryCode, JsonPersonaList> = serde_json::from_str(text).map_err(json_err)?;
            if m.is_empty() {
                return Err(DataError::File {
                    file: file.to_string(),
                    message: "no country in the persona file".into(),
                });
            }
            JsonPanels::ByCountry(m)
        }
        _ => {
            return Err(DataError::File {
                file: file.to_string(),
                message: "expected a JSON object {\"USA\": [{\"text\": ...}, ...]} or a list [{\"text\": ...}, ...]".into(),
            })
        }
    };
    Ok(PersonaFile {
        file: file.to_string(),
        panels,
    })
}

/// The countries the default source builds panels for, with their names, sorted by code:
/// those of `wvs/country_codes.json` with shipped marginals and a usable profile, and the
/// other countries whose GlobalOpinionQA WVS items give at least one value dimension.
pub fn shipped_countries(data: &DataSource) -> Result<Vec<(CountryCode, String)>, DataError> {
    Ok(MarginalsPersonas::load(data)?.countries())
}

/// [`shipped_countries`] with the source of each country's panel
/// ([`PersonaSourceKind::Marginals`] or [`PersonaSourceKind::Goqa`]).
pub fn shipped_country_sources(
    data: &DataSource,
) -> Result<Vec<(CountryCode, String, PersonaSourceKind)>, DataError> {
    Ok(MarginalsPersonas::load(data)?.country_sources())
}

/// The codes of [`shipped_countries`].
pub fn marginal_countries(data: &DataSource) -> Result<Vec<CountryCode>, DataError> {
    Ok(shipped_countries(data)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}
