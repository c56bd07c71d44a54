//! Data for the Cultural Palette method (Yuan, Di, Zhao, Naseem; arXiv 2412.11167): the
//! country → continent table that picks the target country's continent
//! (`continents/continents.csv`) and the prompt templates of the three stages
//! (`palette/templates.json`). Both are embedded in the binary; a data directory or a path can
//! replace them.
//!
//! * [`Continent`]: the five continent agents.
//! * [`ContinentMap`]: ISO3 → continent with the source of each row (`data/continents/SOURCE.md`):
//!   CultureSPA's grouping of its 18 countries ([`CULTURESPA_18`], which Cultural Palette very
//!   likely uses; an inference), UN M49 regions for every other country; overrides (`--continents`)
//!   have the source `user`.
//! * [`PaletteTemplates`]: named templates with `{placeholder}`s; [`PaletteTemplates::render`]
//!   fails on a placeholder that has no value or that the template does not declare.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::source::{read_file, DataSource};
use crate::table::Csv;

/// The continent table, relative to the data root.
pub const CONTINENTS: &str = "continents/continents.csv";
/// The template file, relative to the data root.
pub const TEMPLATES: &str = "palette/templates.json";

/// CultureSPA's 18 countries and their continents (`shaoyangxu/CultureSPA` README), which
/// Cultural Palette very likely evaluates on (`specs/palette.md` §3; an inference). The shipped
/// table gives these rows the source [`SOURCE_CULTURESPA`]; they differ from UN M49 only for
/// Russia (Asia here, Europe in M49).
pub const CULTURESPA_18: [(&str, Continent); 18] = [
    ("USA", Continent::America),
    ("CAN", Continent::America),
    ("BOL", Continent::America),
    ("BRA", Continent::America),
    ("GBR", Continent::Europe),
    ("NLD", Continent::Europe),
    ("DEU", Continent::Europe),
    ("UKR", Continent::Europe),
    ("CHN", Continent::Asia),
    ("RUS", Continent::Asia),
    ("IND", Continent::Asia),
    ("THA", Continent::Asia),
    ("KEN", Continent::Africa),
    ("NGA", Continent::Africa),
    ("ETH", Continent::Africa),
    ("ZWE", Continent::Africa),
    ("AUS", Continent::Oceania),
    ("NZL", Continent::Oceania),
];

/// Source of a row taken from CultureSPA's grouping (an inference: see [`CULTURESPA_18`]).
pub const SOURCE_CULTURESPA: &str = "culturespa";
/// Source of a row taken from the UN M49 regions.
pub const SOURCE_M49: &str = "un-m49";
/// Source of a continent given with `--continents` (an override).
pub const SOURCE_USER: &str = "user";
/// Source of a row of a table without a `source` column (or with the cell empty).
pub const SOURCE_UNSPECIFIED: &str = "unspecified";

/// Where [`ContinentMap::parse_overrides`] errors say the text came from.
const OVERRIDES_ORIGIN: &str = "continent overrides";

// ---------------------------------------------------------------------------------------------
// Continent

/// One of the five Cultural Palette continents. "America" is all of the Americas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Continent {
    /// M49 region Africa (002).
    Africa,
    /// M49 region Americas (019): North, Central, South America and the Caribbean.
    America,
    /// M49 region Asia (142).
    Asia,
    /// M49 region Europe (150).
    Europe,
    /// M49 region Oceania (009).
    Oceania,
}

impl Continent {
    /// All five, in alphabetical order (the order of the paper's agents).
    pub const ALL: [Continent; 5] = [
        Continent::Africa,
        Continent::America,
        Continent::Asia,
        Continent::Europe,
        Continent::Oceania,
    ];

    /// The name as written in the data and in prompts, e.g. `"America"`.
    pub fn name(self) -> &'static str {
        match self {
            Continent::Africa => "Africa",
            Continent::America => "America",
            Continent::Asia => "Asia",
            Continent::Europe => "Europe",
            Continent::Oceania => "Oceania",
        }
    }
}

impl fmt::Display for Continent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a [`Continent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown continent {input:?}: expected one of Africa, America, Asia, Europe, Oceania")]
pub struct ContinentParseError {
    /// The rejected input, as given.
    pub input: String,
}

impl FromStr for Continent {
    type Err = ContinentParseError;

    /// Case-insensitive; surrounding spaces are ignored and `Americas` (the M49 name) is
    /// accepted for `America`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("americas") {
            return Ok(Continent::America);
        }
        Continent::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ContinentParseError {
                input: s.to_string(),
            })
    }
}

// ---------------------------------------------------------------------------------------------
// ContinentMap

/// ISO3 country code → continent, with where each row's continent comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinentMap {
    file: String,
    map: BTreeMap<CountryCode, Continent>,
    /// The `source` column of each row ([`SOURCE_USER`] for overrides).
    sources: BTreeMap<CountryCode, String>,
    overrides: BTreeMap<CountryCode, Continent>,
}

impl ContinentMap {
    /// The embedded `data/continents/continents.csv`.
    pub fn embedded() -> Result<Self, DataError> {
        Self::load(&DataSource::Embedded)
    }

    /// `continents/continents.csv` from `source` (the embedded copy for
    /// [`DataSource::Embedded`]).
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(CONTINENTS)?;
        Self::parse(&source.display_path(CONTINENTS), &text)
    }

    /// A CSV file with the columns `iso3,continent` and optionally `source` (other columns are
    /// ignored).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let (file, text) = read_file(path.as_ref())?;
        Self::parse(&file, &text)
    }

    /// Parses the CSV text; `file` names it in errors. Each code must be three uppercase
    /// letters and appear once; each continent must parse as a [`Continent`]. The optional
    /// `source` column says where a row's continent comes from (a short name such as
    /// [`SOURCE_M49`]); a missing or empty cell reads as [`SOURCE_UNSPECIFIED`].
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let csv = Csv::parse(file, text, &["iso3", "continent"])?;
        let mut seen: BTreeMap<CountryCode, (Continent, usize)> = BTreeMap::new();
        let mut sources = BTreeMap::new();
        for row in csv.rows() {
            let code = row.country("iso3")?;
            let raw = row.text("continent")?;
            let continent: Continent = raw
                .parse()
                .map_err(|e: ContinentParseError| row.err("continent", e.to_string()))?;
            if let Some((_, first)) = seen.get(&code) {
                return Err(row.err(
                    "iso3",
                    format!("duplicate country {code} (first on line {first})"),
                ));
            }
            let source = row.raw("source").trim();
            if source.eq_ignore_ascii_case(SOURCE_USER) {
                return Err(row.err(
                    "source",
                    format!("{SOURCE_USER:?} is reserved for --continents overrides"),
                ));
            }
            let source = if source.is_empty() {
                SOURCE_UNSPECIFIED
            } else {
                source
            };
            sources.insert(code, source.to_string());
            seen.insert(code, (continent, row.line));
        }
        if seen.is_empty() {
            return Err(DataError::File {
                file: file.to_string(),
                message: "no countries".into(),
            });
        }
        Ok(ContinentMap {
            file: file.to_string(),
            map: seen.into_iter().map(|(k, (c, _))| (k, c)).collect(),
            sources,
            overrides: BTreeMap::new(),
        })
    }

    /// The same table with `overrides` applied (later entries win), each with the source
    /// [`SOURCE_USER`]. A code that the table lacks is added.
    pub fn with_overrides(mut self, overrides: &[(CountryCode, Continent)]) -> Self {
        for &(code, continent) in overrides {
            self.map.insert(code, continent);
            self.sources.insert(code, SOURCE_USER.to_string());
            self.overrides.insert(code, continent);
        }
        self
    }

    /// [`parse_overrides`](Self::parse_overrides) then [`with_overrides`](Self::with_overrides).
    pub fn with_override_spec(self, spec: &str) -> Result<Self, DataError> {
        let o = Self::parse_overrides(spec)?;
        Ok(self.with_overrides(&o))
    }

    /// Parses `"RUS=Asia, CYP=Europe"`: comma-separated `CODE=Continent` pairs. Codes are
    /// upper-cased, continents parse as [`Continent::from_str`]; empty entries are skipped; a
    /// code given twice is an error.
    pub fn parse_overrides(spec: &str) -> Result<Vec<(CountryCode, Continent)>, DataError> {
        let err = |message: String| DataError::File {
            file: OVERRIDES_ORIGIN.to_string(),
            message,
        };
        let mut out: Vec<(CountryCode, Continent)> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (code, continent) = entry
                .split_once('=')
                .ok_or_else(|| err(format!("entry {entry:?}: expected CODE=Continent")))?;
            let code: CountryCode = code
                .trim()
                .to_ascii_uppercase()
                .parse()
                .map_err(|e| err(format!("entry {entry:?}: {e}")))?;
            let continent: Continent = continent
                .parse()
                .map_err(|e| err(format!("entry {entry:?}: {e}")))?;
            if out.iter().any(|(c, _)| *c == code) {
                return Err(err(format!("entry {entry:?}: {code} is given twice")));
            }
            out.push((code, continent));
        }
        Ok(out)
    }

    /// The continent of `code`, or an error naming the code and the table's file.
    pub fn continent_of(&self, code: &CountryCode) -> Result<Continent, DataError> {
        self.get(code).ok_or_else(|| {
            DataError::unknown_country(
                &self.file,
                code.as_str(),
                self.map.keys().map(|c| c.as_str()),
            )
        })
    }

    /// The continent of `code`, if the table has it.
    pub fn get(&self, code: &CountryCode) -> Option<Continent> {
        self.map.get(code).copied()
    }

    /// Where the continent of `code` comes from (the table's `source` column, [`SOURCE_USER`]
    /// for an override), if the table has the code.
    pub fn source_of(&self, code: &CountryCode) -> Option<&str> {
        self.sources.get(code).map(String::as_str)
    }

    /// The countries of `continent`, sorted.
    pub fn countries_in(&self, continent: Continent) -> Vec<CountryCode> {
        self.map
            .iter()
            .filter(|(_, c)| **c == continent)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every (code, continent), sorted by code.
    pub fn iter(&self) -> impl Iterator<Item = (CountryCode, Continent)> + '_ {
        self.map.iter().map(|(k, v)| (*k, *v))
    }

    /// Number of countries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty (never, for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The file as errors name it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The overrides applied so far (for run manifests).
    pub fn overrides(&self) -> &BTreeMap<CountryCode, Continent> {
        &self.overrides
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

/// Template names of the shipped file; every template file must have all of them.
pub mod names {
    /// Continent agent, system turn (`{continent}` = the agent's continent). Origin: paper.
    pub const AGENT_SYSTEM: &str = "agent_system";
    /// Continent agent, user turn asking for a cultural draft (`{question}`).
    pub const AGENT_DRAFT: &str = "agent_draft";
    /// One draft inside `{drafts}` (`{continent}`, `{draft}`).
    pub const DRAFT_ENTRY: &str = "draft_entry";
    /// Meta agent, system turn.
    pub const META_SYSTEM: &str = "meta_system";
    /// Meta agent, self-regulated aggregation of the drafts into a summary (`{drafts}`).
    pub const META_AGGREGATE: &str = "meta_aggregate";
    /// Meta agent summary without drafts (ablation "no drafts", CD).
    pub const META_AGGREGATE_NO_DRAFTS: &str = "meta_aggregate_no_drafts";
    /// Final decision: the meta agent's next user turn after its summary (the question is in
    /// its first turn).
    pub const DECIDE_TURN: &str = "decide_turn";
    /// Final decision from the raw drafts (ablation "no self-regulation", SR; `{drafts}`).
    pub const DECIDE_SYSTEM_NO_SELF_REGULATION: &str = "decide_system_no_self_regulation";
}

/// Placeholders every template may use: the method always knows them.
pub const CONTEXT_PLACEHOLDERS: [&str; 3] = ["country", "continent", "question"];

/// (name, stage, placeholders it must use besides the context ones).
const REQUIRED: [(&str, Stage, &[&str]); 8] = [
    (names::AGENT_SYSTEM, Stage::Draft, &[]),
    (names::AGENT_DRAFT, Stage::Draft, &["question"]),
    (names::DRAFT_ENTRY, Stage::Draft, &["draft"]),
    (names::META_SYSTEM, Stage::Aggregate, &[]),
    (names::META_AGGREGATE, Stage::Aggregate, &["drafts"]),
    (names::META_AGGREGATE_NO_DRAFTS, Stage::Aggregate, &[]),
    (names::DECIDE_TURN, Stage::Decide, &[]),
    (
        names::DECIDE_SYSTEM_NO_SELF_REGULATION,
        Stage::Decide,
        &["drafts"],
    ),
];

/// The Palette stage a template belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Continent agents write cultural drafts.
    Draft,
    /// The meta agent regulates and merges them into a summary.
    Aggregate,
    /// The final answer.
    Decide,
}

impl Stage {
    /// All stages in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Draft, Stage::Aggregate, Stage::Decide];
}

/// Which turn a template fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A system turn.
    System,
    /// A user turn.
    User,
    /// A piece of another template (e.g. one draft inside `{drafts}`).
    Fragment,
}

/// Where a template's wording comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The authors' wording (see `data/palette/SOURCE.md`).
    Paper,
    /// Written for this project.
    Ours,
}

/// A Palette pipeline: the full method or one of its ablations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Drafts, self-regulated aggregation, decision.
    Full,
    /// Ablation without cultural drafts (CD).
    NoDrafts,
    /// Ablation without self-regulation (SR).
    NoSelfRegulation,
}

impl Variant {
    /// All variants.
    pub const ALL: [Variant; 3] = [Variant::Full, Variant::NoDrafts, Variant::NoSelfRegulation];
}

/// One prompt template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Stage.
    pub stage: Stage,
    /// Turn it fills.
    pub role: Role,
    /// Wording's origin.
    pub origin: Origin,
    /// Pipelines that use it.
    pub variants: Vec<Variant>,
    /// Exactly the placeholder names used in `text`.
    pub placeholders: Vec<String>,
    /// Text with `{name}` placeholders; `{{` and `}}` are literal braces.
    pub text: String,
    /// Free-text note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Template {
    /// Whether the template uses placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.placeholders.iter().any(|p| p == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    format: u32,
    #[serde(default)]
    #[allow(dead_code)]
    attribution: Option<String>,
    draft_separator: String,
    templates: BTreeMap<String, Template>,
}

/// The Palette prompt templates, by name (see [`names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaletteTemplates {
    file: String,
    draft_separator: String,
    templates: BTreeMap<String, Template>,
}

impl PaletteTemplates {
    /// The embedded `data/palette/templates.json`.
    pub fn embedded() -> Result<Self, DataError> {
        Self::load(&DataSource::Embedded)
    }

    /// `palette/templates.json` from `source` (the embedded copy for
    /// [`DataSource::Embedded`]).
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(TEMPLATES)?;
        Self::parse(&source.display_path(TEMPLATES), &text)
    }

    /// A template file in the format of `data/palette/templates.json`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let (file, text) = read_file(path.as_ref())?;
        Self::parse(&file, &text)
    }

    /// Parses and validates the JSON text; `file` names it in errors. Checks: format 1; every
    /// template of [`names`] present and in its stage; each text's braces well formed; the
    /// declared `placeholders` equal to those in the text; for the required templates, only
    /// [`CONTEXT_PLACEHOLDERS`] plus the template's own (`{draft}`, `{drafts}`, `{summary}`),
    /// and those present.
    pub fn parse(file: &str, text: &str) -> Result<Self, DataError> {
        let parsed: TemplateFile = serde_json::from_str(text).map_err(|e| DataError::Line {
            file: file.to_string(),
            line: e.line().max(1),
            message: format!("invalid template file: {e}"),
        })?;
        if parsed.format != 1 {
            return Err(DataError::field(
                file,
                key_line(text, "format"),
                "format",
                format!("format {} is not supported (expected 1)", parsed.format),
            ));
        }
        for (name, t) in &parsed.templates {
            let line = key_line(text, name);
            let field = |f: &str| format!("templates.{name}.{f}");
            let used = placeholders_in(&t.text)
                .map_err(|m| DataError::field(file, line, &field("text"), m))?;
            let mut declared = BTreeSet::new();
            for p in &t.placeholders {
                if !declared.insert(p.as_str()) {
                    return Err(DataError::field(
                        file,
                        line,
                        &field("placeholders"),
                        format!("{{{p}}} is listed twice"),
                    ));
                }
            }
            if let Some(p) = used.iter().find(|p| !declared.contains(p.as_str())) {
                return Err(DataError::field(
                    file,
                    line,
                    &field("text"),
                    format!("unknown placeholder {{{p}}}: not listed in placeholders"),
                ));
            }
            if let Some(p) = declared.iter().find(|p| !used.contains(**p)) {
                return Err(DataError::field(
                    file,
                    line,
                    &field("placeholders"),
                    format!("{{{p}}} is listed but not used in text"),
                ));
            }
            if t.variants.is_empty() {
                return Err(DataError::field(file, line, &field("variants"), "is empty"));
            }
        }
        for (name, stage, own) in REQUIRED {
            let Some(t) = parsed.templates.get(name) else {
                return Err(DataError::field(
                    file,
                    key_line(text, "templates"),
                    &format!("templates.{name}"),
                    "missing",
                ));
            };
            let line = key_line(text, name);
            if t.stage != stage {
                return Err(DataError::field(
                    file,
                    line,
                    &format!("templates.{name}.stage"),
                    format!("is {:?}, expected {:?}", t.stage, stage),
                ));
            }
            let allowed = |p: &str| CONTEXT_PLACEHOLDERS.contains(&p) || own.contains(&p);
            if let Some(p) = t.placeholders.iter().find(|p| !allowed(p)) {
                return Err(DataError::field(
                    file,
                    line,
                    &format!("templates.{name}.placeholders"),
                    format!(
                        "{{{p}}} is not available here (allowed: {})",
                        CONTEXT_PLACEHOLDERS
                            .iter()
                            .chain(own.iter())
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if let Some(p) = own.iter().find(|p| !t.uses(p)) {
                return Err(DataError::field(
                    file,
                    line,
                    &format!("templates.{name}.placeholders"),
                    format!("must use {{{p}}}"),
                ));
            }
        }
        Ok(PaletteTemplates {
            file: file.to_string(),
            draft_separator: parsed.draft_separator,
            templates: parsed.templates,
        })
    }

    /// The template called `name`.
    pub fn get(&self, name: &str) -> Result<&Template, DataError> {
        self.templates.get(name).ok_or_else(|| DataError::File {
            file: self.file.clone(),
            message: format!(
                "no template named {name:?}; templates: {}",
                self.templates
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Every (name, template), sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Template)> {
        self.templates.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The templates that `variant` uses, sorted by name.
    pub fn for_variant(&self, variant: Variant) -> Vec<(&str, &Template)> {
        self.iter()
            .filter(|(_, t)| t.variants.contains(&variant))
            .collect()
    }

    /// The text that joins rendered drafts inside `{drafts}`.
    pub fn draft_separator(&self) -> &str {
        &self.draft_separator
    }

    /// The file as errors name it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Fills template `name` with `vars` (name, value); values are inserted verbatim. Extra
    /// vars are ignored. Errors (one line, naming the template and the placeholder): unknown
    /// template, a placeholder in the text that the template does not declare, a declared
    /// placeholder with no value.
    pub fn render(&self, name: &str, vars: &[(&str, &str)]) -> Result<String, DataError> {
        let t = self.get(name)?;
        let err = |message: String| DataError::File {
            file: format!("{} template {name}", self.file),
            message,
        };
        let mut out = String::with_capacity(t.text.len() + 64);
        for piece in pieces(&t.text).map_err(err)? {
            match piece {
                Piece::Text(s) => out.push_str(s),
                Piece::Brace(c) => out.push(c),
                Piece::Var(p) => {
                    if !t.uses(p) {
                        return Err(err(format!(
                            "unknown placeholder {{{p}}} (declared: {})",
                            t.placeholders.join(", ")
                        )));
                    }
                    let value = vars
                        .iter()
                        .find(|(k, _)| *k == p)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| err(format!("no value for placeholder {{{p}}}")))?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }

    /// Renders `drafts` (continent, draft text) with [`names::DRAFT_ENTRY`] and joins them with
    /// the draft separator: the value of `{drafts}`.
    pub fn render_drafts(&self, drafts: &[(Continent, &str)]) -> Result<String, DataError> {
        let parts = drafts
            .iter()
            .map(|(c, d)| self.render(names::DRAFT_ENTRY, &[("continent", c.name()), ("draft", d)]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(&self.draft_separator))
    }
}

/// A piece of a template text.
enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Var(&'a str),
}

fn is_placeholder_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Splits `text` into literal text, escaped braces and `{name}` placeholders.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'{' | b'}' if b.get(i + 1) == Some(&b[i]) => {
                if start < i {
                    out.push(Piece::Text(&text[start..i]));
                }
                out.push(Piece::Brace(b[i] as char));
                i += 2;
                start = i;
            }
            b'{' => {
                let close = text[i + 1..]
                    .find('}')
                    .map(|j| i + 1 + j)
                    .ok_or_else(|| format!("unclosed '{{' at byte {i}"))?;
                let name = &text[i + 1..close];
                if !is_placeholder_name(name) {
                    return Err(format!(
                        "invalid placeholder {{{name}}} at byte {i} (names are lowercase \
                         letters, digits and '_'; write {{{{ for a literal brace)"
                    ));
                }
                if start < i {
                    out.push(Piece::Text(&text[start..i]));
                }
                out.push(Piece::Var(name));
                i = close + 1;
                start = i;
            }
            b'}' => {
                return Err(format!(
                    "unmatched '}}' at byte {i} (write }}}} for a literal brace)"
                ))
            }
            _ => i += 1,
        }
    }
    if start < b.len() {
        out.push(Piece::Text(&text[start..]));
    }
    Ok(out)
}

/// The placeholder names used in `text`.
fn placeholders_in(text: &str) -> Result<BTreeSet<String>, String> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v.to_string()),
            _ => None,
        })
        .collect())
}

/// The 1-based line of the first line that starts with the JSON key `"key":` (1 if none).
fn key_line(text: &str, key: &str) -> usize {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(&quoted)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_escape_and_reject() {
        let p = placeholders_in("a {x} {{literal}} {y_2}}}").unwrap();
        assert_eq!(p.into_iter().collect::<Vec<_>>(), vec!["x", "y_2"]);
        assert!(pieces("a { b").is_err());
        assert!(pieces("a } b").is_err());
        assert!(pieces("{Bad}").is_err());
        assert!(pieces("{}").is_err());
    }

    #[test]
    fn key_line_finds_keys() {
        let t = "{\n  \"format\": 1,\n  \"templates\": {\n    \"a\": {}\n  }\n}";
        assert_eq!(key_line(t, "format"), 2);
        assert_eq!(key_line(t, "a"), 4);
        assert_eq!(key_line(t, "zzz"), 1);
    }
}
