//! DISCA persona panels (specs/disca.md §3).
//!
//! Two sources today:
//!
//! * **A JSON file** of persona texts: `{"USA": ["You are …", …], "DEU": [{"label": "…",
//!   "text": "…"}, …]}` — per country a list of 1 to 16 strings or `{label, text}` objects.
//! * **The shipped WVS-7 country marginals** (our extension: the authors build age-cohort
//!   personas from individual-level WVS data, which is not shipped). We score the ten value
//!   dimensions of §3.1 on the country's answer distributions and render them with the §3.2
//!   template: one whole-country persona from the mean of each dimension, and three personas
//!   grounded in the same distributions — the respondent at the lower quartile, the median and
//!   the upper quartile of each dimension. Order: [lower quartile, median, upper quartile,
//!   whole country], mirroring the authors' [young, middle, older, aggregate].
//!
//! Marginal items are recoded to the direction of the WVS "inverted" variables the authors use
//! (higher = more of the named quality): 1..n scales whose code 1 is the strongest answer are
//! reversed, yes/no items become 1 (mentioned) / 0. Political participation uses Q200 (discussing
//! politics with friends), materialism Q152–Q153 with options 3–4 counted post-materialist (3) and
//! 1–2 materialist (1), gender equality Q29–Q31 (Q33 has another scale in the marginals). The
//! individual-level WVS route (`--wvs FILE`, age cohorts) is not implemented yet.

use crate::wvs::{WvsCountries, WvsMarginals, WVS7_MARGINALS};
use crate::{DataError, DataSource};
use culturesteer_core::CountryCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One persona: a label for reports and the system text the model sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    pub label: String,
    pub text: String,
}

/// Where a panel came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonaSourceKind {
    Json,
    Marginals,
}

/// The persona panel of one country (the base agent is not part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonaPanel {
    pub country: CountryCode,
    pub source: PersonaSourceKind,
    pub personas: Vec<Persona>,
}

/// Where to take personas from.
#[derive(Debug, Clone)]
pub enum PersonaSource {
    Json(PathBuf),
    Marginals(DataSource),
}

/// Most personas per country in a JSON file.
pub const MAX_PERSONAS: usize = 16;

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonPersona {
    Text(String),
    Full { label: String, text: String },
}

/// Loads the panel of `country`.
pub fn load_panel(source: &PersonaSource, country: CountryCode) -> Result<PersonaPanel, DataError> {
    match source {
        PersonaSource::Json(path) => json_panel(path, country),
        PersonaSource::Marginals(data) => marginals_panel(data, country),
    }
}

fn json_panel(path: &Path, country: CountryCode) -> Result<PersonaPanel, DataError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io { path: file.clone(), source })?;
    let raw: BTreeMap<String, Vec<JsonPersona>> = serde_json::from_str(&text)
        .map_err(|e| DataError::Line { file: file.clone(), line: e.line(), message: format!("{e} (expected {{\"ISO3\": [persona text, …]}})") })?;
    let line_of = |k: &str| text.lines().position(|l| l.contains(&format!("\"{k}\""))).map_or(1, |i| i + 1);
    let mut found = None;
    let mut codes = Vec::new();
    for (k, list) in raw {
        let code: CountryCode = k.parse().map_err(|e: culturesteer_core::CountryCodeError| DataError::field(&file, line_of(&k), &k, e.to_string()))?;
        codes.push(code.to_string());
        if code != country {
            continue;
        }
        if list.is_empty() || list.len() > MAX_PERSONAS {
            return Err(DataError::field(&file, line_of(&k), &k, format!("needs 1 to {MAX_PERSONAS} personas, got {}", list.len())));
        }
        let mut personas = Vec::with_capacity(list.len());
        for (i, p) in list.into_iter().enumerate() {
            let (label, text) = match p {
                JsonPersona::Text(t) => (format!("persona {}", i + 1), t),
                JsonPersona::Full { label, text } => (label, text),
            };
            if text.trim().is_empty() {
                return Err(DataError::field(&file, line_of(&k), &format!("{k}[{i}]"), "empty persona text"));
            }
            personas.push(Persona { label, text });
        }
        found = Some(PersonaPanel { country, source: PersonaSourceKind::Json, personas });
    }
    found.ok_or_else(|| DataError::unknown_country(&file, country.as_str(), codes.iter().map(String::as_str)))
}

/// How a marginal item's answer codes map onto the dimension's scale.
#[derive(Debug, Clone, Copy)]
enum Recode {
    /// code c on a 1..=n scale → n + 1 − c (codes above n are dropped).
    Reverse(i64),
    /// code == yes → 1, any other code → 0.
    Yes(i64),
    /// codes ≥ threshold → hi, others → lo.
    Split { threshold: i64, lo: f64, hi: f64 },
    /// The code itself.
    Same,
}

impl Recode {
    fn apply(self, code: i64) -> Option<f64> {
        match self {
            Recode::Reverse(n) => (1..=n).contains(&code).then(|| (n + 1 - code) as f64),
            Recode::Yes(y) => Some(f64::from(u8::from(code == y))),
            Recode::Split { threshold, lo, hi } => Some(if code >= threshold { hi } else { lo }),
            Recode::Same => Some(code as f64),
        }
    }
}

struct Dimension {
    items: &'static [&'static str],
    recode: Recode,
    lo: f64,
    hi: f64,
    /// −1: a higher value means the *last* descriptor.
    direction: i8,
    sentence: &'static str,
    descriptors: [&'static str; 4],
}

/// The ten dimensions of §3.1 in template order, with the §3.2 sentences.
const DIMENSIONS: [Dimension; 10] = [
    Dimension { items: &["Q6"], recode: Recode::Reverse(4), lo: 1.0, hi: 4.0, direction: 1, sentence: "On matters of faith you are {}.",
        descriptors: ["deeply religious", "moderately religious", "somewhat secular", "highly secular"] },
    Dimension { items: &["Q17"], recode: Recode::Yes(1), lo: 0.0, hi: 1.0, direction: -1, sentence: "On raising children you are {}.",
        descriptors: ["firmly oriented toward independence and imagination", "leaning toward independence and imagination",
            "leaning toward obedience and religious faith", "firmly oriented toward obedience and religious faith"] },
    Dimension { items: &["Q177", "Q178", "Q179", "Q180", "Q181", "Q182"], recode: Recode::Same, lo: 1.0, hi: 10.0, direction: 1,
        sentence: "On contested moral choices you are {}.",
        descriptors: ["very permissive on contested moral issues such as abortion, divorce and homosexuality", "moderately permissive on contested moral issues",
            "morally conservative on contested issues", "strictly opposed to such contested moral acts"] },
    Dimension { items: &["Q57"], recode: Recode::Reverse(2), lo: 1.0, hi: 2.0, direction: 1, sentence: "In your dealings with strangers you have {}.",
        descriptors: ["very high trust in other people", "moderate trust in other people", "a guarded attitude toward strangers", "deep distrust of other people"] },
    Dimension { items: &["Q200"], recode: Recode::Reverse(3), lo: 1.0, hi: 3.0, direction: 1, sentence: "Civically you are {}.",
        descriptors: ["an active political participant who signs petitions, joins boycotts and takes part in lawful demonstrations",
            "an occasional political participant", "a passive political participant", "politically disengaged"] },
    Dimension { items: &["Q254"], recode: Recode::Reverse(4), lo: 1.0, hi: 4.0, direction: 1, sentence: "You are {}.",
        descriptors: ["intensely proud of your country", "moderately proud of your country", "lukewarm about national pride", "not proud of your country"] },
    Dimension { items: &["Q46"], recode: Recode::Reverse(4), lo: 1.0, hi: 4.0, direction: 1, sentence: "Overall you are {}.",
        descriptors: ["very happy with your life", "rather happy with your life", "not very happy with your life", "unhappy with your life"] },
    Dimension { items: &["Q29", "Q30", "Q31"], recode: Recode::Reverse(4), lo: 1.0, hi: 4.0, direction: -1,
        sentence: "On the role of women in society you are {}.",
        descriptors: ["strongly egalitarian on gender roles", "moderately egalitarian on gender roles", "somewhat traditional on gender roles", "strongly traditional on gender roles"] },
    Dimension { items: &["Q152", "Q153"], recode: Recode::Split { threshold: 3, lo: 1.0, hi: 3.0 }, lo: 1.0, hi: 3.0, direction: 1,
        sentence: "In what you prioritise in life you are {}.",
        descriptors: ["strongly post-materialist, prioritising freedom, voice and self-expression", "leaning post-materialist",
            "leaning materialist, prioritising economic and physical security", "strongly materialist, prioritising economic and physical security"] },
    Dimension { items: &["Q19", "Q20", "Q21", "Q22", "Q23"], recode: Recode::Yes(1), lo: 0.0, hi: 1.0, direction: -1,
        sentence: "Toward people unlike yourself you are {}.",
        descriptors: ["highly tolerant of outgroups such as immigrants, minorities and people with different lifestyles", "moderately tolerant of outgroups",
            "somewhat intolerant of outgroups", "strongly intolerant of outgroups"] },
];

/// A dimension's pooled distribution over recoded values (items weighted equally).
fn pooled(m: &WvsMarginals, dim: &Dimension, country: CountryCode) -> Result<Vec<(f64, f64)>, DataError> {
    let mut mass: BTreeMap<i64, f64> = BTreeMap::new();
    let mut n_items = 0.0;
    for id in dim.items {
        let item = m.item(id).ok_or_else(|| DataError::File { file: WVS7_MARGINALS.into(), message: format!("item {id} is missing") })?;
        let dist = item.distribution(country)?;
        let total: f64 = item.option_codes.iter().zip(dist).filter(|(c, _)| dim.recode.apply(**c).is_some()).map(|(_, p)| p).sum();
        if total <= 0.0 {
            continue;
        }
        n_items += 1.0;
        for (c, p) in item.option_codes.iter().zip(dist) {
            if let Some(v) = dim.recode.apply(*c) {
                // Values are small integers or halves: key by thousandths.
                *mass.entry((v * 1000.0).round() as i64).or_default() += p / total;
            }
        }
    }
    if n_items == 0.0 {
        return Ok(vec![]);
    }
    Ok(mass.into_iter().map(|(k, p)| (k as f64 / 1000.0, p / n_items)).collect())
}

/// The descriptor of a dimension value (§3.1 steps 5–6), `None` when the value is missing.
fn descriptor(dim: &Dimension, value: f64) -> Option<&'static str> {
    if value <= 0.0 && dim.lo > 0.0 {
        return None;
    }
    let mut raw = ((value - dim.lo) / (dim.hi - dim.lo)).clamp(0.0, 1.0);
    if dim.direction < 0 {
        raw = 1.0 - raw;
    }
    Some(match raw {
        r if r >= 0.75 => dim.descriptors[0],
        r if r >= 0.50 => dim.descriptors[1],
        r if r >= 0.25 => dim.descriptors[2],
        _ => dim.descriptors[3],
    })
}

/// How a persona summarises each dimension's distribution.
#[derive(Debug, Clone, Copy)]
enum Summary {
    Mean,
    Quantile(f64),
}

fn summarise(dist: &[(f64, f64)], s: Summary) -> Option<f64> {
    if dist.is_empty() {
        return None;
    }
    let v = match s {
        Summary::Mean => dist.iter().map(|(v, p)| v * p).sum(),
        Summary::Quantile(q) => {
            let mut acc = 0.0;
            dist.iter().find(|(_, p)| {
                acc += p;
                acc >= q - 1e-12
            })?.0
        }
    };
    Some((v * 1000.0).round() / 1000.0)
}

/// "the United States", "Germany", …
fn country_phrase(name: &str) -> String {
    let the = ["United States", "Netherlands", "United Kingdom", "Great Britain", "Philippines", "United Arab Emirates"];
    if the.contains(&name) {
        format!("the {name}")
    } else {
        name.to_string()
    }
}

fn render(country_name: &str, header_extra: &str, sentences: &[String]) -> String {
    let mut parts = vec![format!(
        "You are an adult citizen from {}{header_extra}. Your worldview is shaped by the cultural values prevalent in your community.",
        country_phrase(country_name)
    )];
    parts.extend(sentences.iter().cloned());
    parts.push("When you face a moral dilemma, you weigh the choices through this set of values and answer in a way that is consistent with the worldview above.".into());
    parts.join(" ")
}

fn marginals_panel(data: &DataSource, country: CountryCode) -> Result<PersonaPanel, DataError> {
    let names = WvsCountries::load(data)?;
    let name = names.name(country)?.to_string();
    let m = WvsMarginals::load(data)?;
    let dists = DIMENSIONS.iter().map(|d| pooled(&m, d, country)).collect::<Result<Vec<_>, _>>()?;
    let make = |s: Summary| -> Vec<String> {
        DIMENSIONS
            .iter()
            .zip(&dists)
            .filter_map(|(d, dist)| summarise(dist, s).and_then(|v| descriptor(d, v)).map(|desc| d.sentence.replace("{}", desc)))
            .collect()
    };
    let variants = [
        ("lower quartile", ", with views at the lower quartile of your compatriots' on every value", Summary::Quantile(0.25)),
        ("median", ", with views at the median of your compatriots' on every value", Summary::Quantile(0.5)),
        ("upper quartile", ", with views at the upper quartile of your compatriots' on every value", Summary::Quantile(0.75)),
        ("whole country", "", Summary::Mean),
    ];
    let personas = variants
        .iter()
        .map(|(label, extra, s)| Persona { label: label.to_string(), text: render(&name, extra, &make(*s)) })
        .collect();
    Ok(PersonaPanel { country, source: PersonaSourceKind::Marginals, personas })
}

/// One prompt with the country's aggregate value descriptors (the "WVS profile" baseline).
pub fn wvs_profile_text(data: &DataSource, country: CountryCode) -> Result<String, DataError> {
    let panel = marginals_panel(data, country)?;
    Ok(panel.personas.last().map(|p| p.text.clone()).unwrap_or_default())
}

/// Countries with shipped marginals.
pub fn marginal_countries(data: &DataSource) -> Result<Vec<CountryCode>, DataError> {
    Ok(WvsCountries::load(data)?.names.keys().copied().collect())
}

/// Resolves the panel for a command: a JSON file if given, else the shipped marginals; a
/// country neither covers gets one error naming the options.
pub fn resolve_panel(json: Option<&Path>, data: &DataSource, country: CountryCode) -> Result<PersonaPanel, DataError> {
    if let Some(p) = json {
        return json_panel(p, country);
    }
    marginals_panel(data, country).map_err(|e| match e {
        DataError::UnknownCountry { valid, .. } => DataError::File {
            file: "personas".into(),
            message: format!(
                "no persona source for {country}: give --personas FILE (JSON of persona texts) or use a country with shipped WVS marginals ({})",
                valid.join(", ")
            ),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usa() -> CountryCode {
        CountryCode::new("USA").unwrap()
    }

    #[test]
    fn marginals_panel_follows_the_template() {
        let p = load_panel(&PersonaSource::Marginals(DataSource::Embedded), usa()).unwrap();
        assert_eq!(p.personas.len(), 4);
        let whole = &p.personas[3].text;
        assert!(whole.starts_with("You are an adult citizen from the United States. Your worldview"), "{whole}");
        assert!(whole.ends_with("consistent with the worldview above."));
        assert_eq!(whole.matches("On matters of faith you are").count(), 1);
        // USA: 33% "very important" religion → mean of the reversed 1–4 scale ≈ 2.7 → raw 0.57.
        assert!(whole.contains("On matters of faith you are moderately religious."), "{whole}");
        // Obedience mentioned by 20% → raw 1 − 0.2 = 0.8 → independence.
        assert!(whole.contains("firmly oriented toward independence"), "{whole}");
        // The quartile personas differ from each other and are deterministic.
        assert_ne!(p.personas[0].text, p.personas[2].text);
        assert_eq!(p, load_panel(&PersonaSource::Marginals(DataSource::Embedded), usa()).unwrap());
    }

    #[test]
    fn descriptors_and_quantiles() {
        let d = &DIMENSIONS[0];
        assert_eq!(descriptor(d, 4.0), Some("deeply religious"));
        assert_eq!(descriptor(d, 3.25), Some("deeply religious"));
        assert_eq!(descriptor(d, 3.2), Some("moderately religious"));
        assert_eq!(descriptor(d, 1.0), Some("highly secular"));
        assert_eq!(descriptor(d, 0.0), None, "missing values skip the sentence");
        let dist = [(1.0, 0.2), (2.0, 0.3), (3.0, 0.5)];
        assert_eq!(summarise(&dist, Summary::Quantile(0.25)), Some(2.0));
        assert_eq!(summarise(&dist, Summary::Quantile(0.5)), Some(2.0));
        assert_eq!(summarise(&dist, Summary::Quantile(0.75)), Some(3.0));
        assert_eq!(summarise(&dist, Summary::Mean), Some(2.3));
    }

    #[test]
    fn json_file_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(&f, r#"{"USA": ["A farmer.", {"label": "teacher", "text": "A teacher."}], "DEU": []}"#).unwrap();
        let p = load_panel(&PersonaSource::Json(f.clone()), usa()).unwrap();
        assert_eq!(p.personas.iter().map(|x| x.label.as_str()).collect::<Vec<_>>(), ["persona 1", "teacher"]);
        let e = load_panel(&PersonaSource::Json(f.clone()), CountryCode::new("DEU").unwrap()).unwrap_err().to_string();
        assert!(e.contains("needs 1 to 16 personas"), "{e}");
        let e = load_panel(&PersonaSource::Json(f), CountryCode::new("JPN").unwrap()).unwrap_err().to_string();
        assert!(e.contains("JPN") && e.contains("USA"), "{e}");
        let e = resolve_panel(None, &DataSource::Embedded, CountryCode::new("JPN").unwrap()).unwrap_err().to_string();
        assert!(e.contains("--personas FILE") && e.contains("USA"), "{e}");
    }
}
