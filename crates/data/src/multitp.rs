//! MultiTP English vignettes, protocol spec, languages and country-language metadata
//! (`multitp/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use culturesteer_core::{CountryCode, MoralDimension};

use crate::error::DataError;
use crate::json::{parse_jsonl, Rec};
use crate::source::DataSource;
use crate::table::Csv;

/// The 460 main-run English vignettes.
pub const VIGNETTES_EN: &str = "multitp/vignettes_en.jsonl";
/// The 2,300 paraphrase vignettes (not embedded; needs a data directory).
pub const VIGNETTES_EN_PARAPHRASES: &str = "multitp/vignettes_en_paraphrases.jsonl";
/// Protocol as data.
pub const MULTITP_SPEC: &str = "multitp/multitp_spec.json";
/// The 107 language codes.
pub const LANGUAGES: &str = "multitp/languages.csv";
/// The 108-country metadata table.
pub const COUNTRY_LANGUAGE_METADATA: &str = "multitp/country_language_metadata_2023.csv";
/// Vignettes per language.
pub const N_VIGNETTES: usize = 460;

/// Which bullet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The first bullet.
    Left,
    /// The second bullet.
    Right,
}

/// One MultiTP vignette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vignette {
    /// 1-based line in the file.
    pub line: usize,
    /// Our id, e.g. `mtp-en-0000`.
    pub id: String,
    /// Joins the two orders of the same vignette.
    pub pair_id: String,
    /// The dimension (from `dimension`, checked against `phenomenon_category`).
    pub dimension: MoralDimension,
    /// Left bullet text.
    pub left_group: String,
    /// Right bullet text.
    pub right_group: String,
    /// Left group label (Humans/Animals, High/Low, ...).
    pub left_attribute: String,
    /// Right group label.
    pub right_attribute: String,
    /// Left character key (e.g. `Dog`).
    pub left_character: String,
    /// Left count.
    pub left_count: u32,
    /// Right character key.
    pub right_character: String,
    /// Right count.
    pub right_count: u32,
    /// The side carrying the dimension's preferred label.
    pub preferred_side: Side,
    /// `original` or `swapped` generator order.
    pub order: String,
    /// `original` for the main set, `0`..`4` for paraphrases.
    pub scenario_start: String,
    /// Short form with digits.
    pub two_choices: String,
    /// The exact prompt text.
    pub prompt: String,
}

/// Parses vignette JSON Lines text (main or paraphrase file).
pub fn parse_vignettes(file: &str, text: &str) -> Result<Vec<Vignette>, DataError> {
    let mut out = Vec::new();
    for (line, obj) in parse_jsonl(file, text)? {
        let r = Rec::new(file, line, &obj);
        let dim_str = r.str("dimension")?;
        let dimension =
            MoralDimension::parse_label(dim_str).map_err(|e| r.err("dimension", e.to_string()))?;
        let cat = r.str("phenomenon_category")?;
        match MoralDimension::parse_label(cat) {
            Ok(d) if d == dimension => {}
            _ => {
                return Err(r.err(
                    "phenomenon_category",
                    format!("{cat:?} does not match dimension {dim_str:?}"),
                ))
            }
        }
        let preferred_side = match r.str("preferred_side")? {
            "left" => Side::Left,
            "right" => Side::Right,
            s => {
                return Err(r.err(
                    "preferred_side",
                    format!("{s:?} is not \"left\" or \"right\""),
                ))
            }
        };
        let pref_attr = r.str("preferred_attribute")?;
        if pref_attr != dimension.preferred() {
            return Err(r.err(
                "preferred_attribute",
                format!(
                    "{pref_attr:?} is not {:?}, the preferred side of {dimension}",
                    dimension.preferred()
                ),
            ));
        }
        let v = Vignette {
            line,
            id: r.string("id")?,
            pair_id: r.string("pair_id")?,
            dimension,
            left_group: r.string("left_group")?,
            right_group: r.string("right_group")?,
            left_attribute: r.string("left_attribute")?,
            right_attribute: r.string("right_attribute")?,
            left_character: r.string("left_character")?,
            left_count: r.u32("left_count")?,
            right_character: r.string("right_character")?,
            right_count: r.u32("right_count")?,
            preferred_side,
            order: r.string("order")?,
            scenario_start: r.string("scenario_start")?,
            two_choices: r.string("two_choices")?,
            prompt: r.string("prompt")?,
        };
        let (attr, field) = match preferred_side {
            Side::Left => (&v.left_attribute, "left_attribute"),
            Side::Right => (&v.right_attribute, "right_attribute"),
        };
        if attr != pref_attr {
            return Err(r.err(
                field,
                format!("{attr:?} on the preferred side, expected {pref_attr:?}"),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// Loads the 460 English vignettes.
pub fn load_vignettes(source: &DataSource) -> Result<Vec<Vignette>, DataError> {
    let text = source.read(VIGNETTES_EN)?;
    parse_vignettes(&source.display_path(VIGNETTES_EN), &text)
}

/// Loads the 2,300 paraphrase vignettes (only from a data directory; not embedded).
pub fn load_paraphrases(source: &DataSource) -> Result<Vec<Vignette>, DataError> {
    let text = source.read(VIGNETTES_EN_PARAPHRASES)?;
    parse_vignettes(&source.display_path(VIGNETTES_EN_PARAPHRASES), &text)
}

/// Surface forms of one character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterForms {
    /// e.g. "dog".
    pub singular: String,
    /// e.g. "dogs".
    pub plural: String,
    /// e.g. "a dog".
    pub with_article: String,
    /// False for the two characters the generator never uses.
    pub used_in_generator: bool,
}

/// One dimension's protocol entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecDimension {
    /// e.g. `SocialValue`.
    pub phenomenon_category: String,
    /// e.g. `social_status`.
    pub dimension: String,
    /// e.g. "Sparing Higher Status".
    pub label: String,
    /// e.g. `Low`.
    pub non_preferred_attribute: String,
    /// e.g. `High`.
    pub preferred_attribute: String,
    /// e.g. "Social Status".
    pub human_label_in_moral_machine: String,
    /// The (non-preferred, preferred) character pairs.
    pub distinct_pairs: Vec<SpecPair>,
}

/// One generator pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecPair {
    /// First character key.
    pub group1_character: String,
    /// Its label.
    pub group1_attribute: String,
    /// Second character key.
    pub group2_character: String,
    /// Its label.
    pub group2_attribute: String,
    /// Count rule, as text.
    pub counts: String,
}

/// Vignette counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VignetteCounts {
    /// 460.
    pub per_language: usize,
    /// Per category.
    pub by_category: BTreeMap<String, usize>,
    /// 107.
    pub languages: usize,
}

/// Prompt templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Templates {
    /// `"{scenario_start}\n- {left}\n- {right}\n\n{scenario_end}"`.
    pub layout: String,
    /// "Assume there is a self-driving car with a sudden break failure, ..." (sic).
    pub scenario_start_original: String,
    /// "If the self-driving car has to make a decision, between the two choices, it should save".
    pub scenario_end: String,
    /// The five paraphrased starts.
    pub paraphrase_starts: Vec<String>,
    /// Country variant, with `{country_name}`.
    pub country_variant_start: String,
}

/// System prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemPrompts {
    /// Used in all paper runs.
    pub normal: String,
    /// "You are a helpful assistant."
    pub default: String,
    /// "You are a moral philosopher."
    pub expert: String,
}

/// Decoding settings of the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decoding {
    /// 0.
    pub temperature: f64,
    /// 1024.
    pub max_new_tokens: u32,
}

/// Direct-match parsing rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectMatch {
    /// Preprocessing, as text.
    pub preprocess: String,
    /// Candidate prefixes per answer key (left/right/either/neither).
    pub candidates: BTreeMap<String, Vec<String>>,
    /// The matching rule, as text.
    pub rule: String,
}

/// The LLM-classifier fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmClassifier {
    /// Classifier model of the main runs.
    pub model_main_runs: String,
    /// 100.
    pub max_tokens: u32,
    /// 0.
    pub temperature: f64,
    /// Prompt with `{prompt}`, `{response}`, `{left_choice}`, `{right_choice}`.
    pub prompt_template: String,
}

/// Answer parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsing {
    /// Step 2.
    pub step2_direct_match: DirectMatch,
    /// Step 3.
    pub step3_llm_classifier: LlmClassifier,
    /// `this_saving_prob` codes (left row, right row) per answer.
    pub saving_prob_codes: BTreeMap<String, [f64; 2]>,
}

/// The typed subset of `multitp/multitp_spec.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultitpSpec {
    /// Character key → forms.
    pub characters: BTreeMap<String, CharacterForms>,
    /// "zero" … "ten".
    pub number_words: Vec<String>,
    /// Six dimension entries.
    pub dimensions: Vec<SpecDimension>,
    /// Counts.
    pub vignette_counts: VignetteCounts,
    /// Templates.
    pub templates: Templates,
    /// System prompts.
    pub system_prompts: SystemPrompts,
    /// Decoding.
    pub decoding: Decoding,
    /// Parsing rules.
    pub parsing: Parsing,
    /// Score definitions, as text.
    pub scoring: BTreeMap<String, String>,
    /// Global human references (averaging → label → percent).
    pub human_reference_global_percent: BTreeMap<String, BTreeMap<String, f64>>,
    /// Paper-reported global MIS per model name.
    pub reported_global_mis: BTreeMap<String, f64>,
    /// Model name → checkpoint id.
    pub models: BTreeMap<String, String>,
}

/// Parses the spec JSON; errors give the line and serde's description (which names the
/// missing or mistyped field).
pub fn parse_multitp_spec(file: &str, text: &str) -> Result<MultitpSpec, DataError> {
    serde_json::from_str(text).map_err(|e| DataError::Line {
        file: file.to_string(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// Loads `multitp/multitp_spec.json`.
pub fn load_multitp_spec(source: &DataSource) -> Result<MultitpSpec, DataError> {
    let text = source.read(MULTITP_SPEC)?;
    parse_multitp_spec(&source.display_path(MULTITP_SPEC), &text)
}

/// One MultiTP language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Language {
    /// Google-Translate code (e.g. `zh-cn`).
    pub code: String,
    /// English name.
    pub name: String,
    /// In the 15-language paraphrase study.
    pub in_paraphrase_subset: bool,
}

/// Loads `multitp/languages.csv` (107 rows).
pub fn load_languages(source: &DataSource) -> Result<Vec<Language>, DataError> {
    let text = source.read(LANGUAGES)?;
    let file = source.display_path(LANGUAGES);
    let csv = Csv::parse(
        &file,
        &text,
        &["lang_code", "language_name", "in_paraphrase_subset"],
    )?;
    csv.rows()
        .map(|r| {
            Ok(Language {
                code: r.text("lang_code")?.to_string(),
                name: r.text("language_name")?.to_string(),
                in_paraphrase_subset: r.bool("in_paraphrase_subset")?,
            })
        })
        .collect()
}

/// One row of the 108-country metadata (a partial stand-in for the paper's language shares).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryLanguageMeta {
    /// ISO2 code.
    pub iso2: String,
    /// ISO3 code.
    pub iso3: CountryCode,
    /// Continent code (`EU`, `AS`, ..., or "North America").
    pub continent: String,
    /// Primary language code.
    pub primary_language: String,
    /// Culture label.
    pub culture: String,
    /// Free-text "Languages Spoken".
    pub languages_spoken: String,
    /// Official language codes.
    pub official_languages: Vec<String>,
    /// Country name.
    pub country: String,
    /// Cluster id (0, 1, 2).
    pub cluster: u32,
}

/// Parses a Python list literal of strings such as `['ar', 'en']`.
fn parse_py_list(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(vec![]);
    }
    inner
        .split(',')
        .map(|p| {
            let p = p.trim();
            p.strip_prefix('\'')
                .and_then(|q| q.strip_suffix('\''))
                .or_else(|| p.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
                .map(str::to_string)
        })
        .collect()
}

/// Loads `multitp/country_language_metadata_2023.csv`.
pub fn load_country_language_metadata(
    source: &DataSource,
) -> Result<Vec<CountryLanguageMeta>, DataError> {
    let text = source.read(COUNTRY_LANGUAGE_METADATA)?;
    let file = source.display_path(COUNTRY_LANGUAGE_METADATA);
    let csv = Csv::parse(
        &file,
        &text,
        &[
            "ISO",
            "ISO3",
            "Continent",
            "Languages",
            "Culture",
            "Languages Spoken",
            "official_languages",
            "Country",
            "Cluster",
        ],
    )?;
    csv.rows()
        .map(|r| {
            let ol = r.raw("official_languages");
            Ok(CountryLanguageMeta {
                iso2: r.text("ISO")?.to_string(),
                iso3: r.country("ISO3")?,
                continent: r.text("Continent")?.to_string(),
                primary_language: r.text("Languages")?.to_string(),
                culture: r.raw("Culture").to_string(),
                languages_spoken: r.raw("Languages Spoken").to_string(),
                official_languages: parse_py_list(ol).ok_or_else(|| {
                    r.err(
                        "official_languages",
                        format!("{ol:?} is not a list like ['en']"),
                    )
                })?,
                country: r.text("Country")?.to_string(),
                cluster: r.u32("Cluster")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_py_list;

    #[test]
    fn py_lists() {
        assert_eq!(parse_py_list("['ar']").unwrap(), vec!["ar"]);
        assert_eq!(parse_py_list("['en', 'fr']").unwrap(), vec!["en", "fr"]);
        assert_eq!(parse_py_list("[]").unwrap(), Vec::<String>::new());
        assert!(parse_py_list("en").is_none());
    }
}
