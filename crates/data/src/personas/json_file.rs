//! Source 3: JSON files of persona texts (`--personas FILE`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::source::read_file;

use super::{Persona, PersonaPanel, PersonaSourceKind};

/// Most personas a JSON panel may hold.
pub const MAX_JSON_PERSONAS: usize = 16;

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
    let (file, text) = read_file(path)?;
    parse_persona_json(&file, &text)
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
