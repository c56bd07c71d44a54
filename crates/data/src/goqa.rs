//! GlobalOpinionQA recovered subset (`globalopinionqa/goqa_recovered_subset.jsonl`).
//!
//! Distributions are keyed by GOQA's country *labels* (e.g. `Britain`, `S. Korea`,
//! `India (Current national sample)`); [`parse_country_label`] maps them to ISO3 plus the
//! sampling qualifier. Validation: each distribution has one share per option, every share is
//! finite and ≥ 0, and the raw sum lies within [`SUM_TOLERANCE`] of 1 (the upstream sums range
//! 0.997–1.072; the file's builders dropped pairs outside [0.9, 1.1]). Use
//! [`CountryDistribution::normalized`] before any divergence.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use crate::error::DataError;
use crate::json::{parse_jsonl, shares_of, Rec};
use crate::source::DataSource;

/// Path relative to the data root.
pub const GOQA_SUBSET: &str = "globalopinionqa/goqa_recovered_subset.jsonl";
/// Accepted |Σ shares − 1|.
pub const SUM_TOLERANCE: f64 = 0.1;
/// Questions in the shipped subset.
pub const N_QUESTIONS: usize = 1804;

/// Survey behind a question (inferred in the recovered file, see its SOURCE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GoqaSource {
    /// Pew Global Attitudes Survey.
    Gas,
    /// World Values Survey.
    Wvs,
}

/// The sampling qualifier carried by a country label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SampleKind {
    /// No qualifier (a national sample).
    National,
    /// "(Current national sample)".
    CurrentNational,
    /// "(Old national sample)".
    OldNational,
    /// "(Non-national sample)".
    NonNational,
}

impl SampleKind {
    /// Whether this is a (current) national sample.
    pub fn is_current_national(self) -> bool {
        matches!(self, SampleKind::National | SampleKind::CurrentNational)
    }
}

/// GOQA base country names → ISO3. `Northern Ireland` is a sub-national sample and has none.
const NAME_TO_ISO3: &[(&str, &str)] = &[
    ("Albania", "ALB"),
    ("Andorra", "AND"),
    ("Angola", "AGO"),
    ("Argentina", "ARG"),
    ("Armenia", "ARM"),
    ("Australia", "AUS"),
    ("Austria", "AUT"),
    ("Azerbaijan", "AZE"),
    ("Bangladesh", "BGD"),
    ("Belarus", "BLR"),
    ("Belgium", "BEL"),
    ("Bolivia", "BOL"),
    ("Bosnia Herzegovina", "BIH"),
    ("Brazil", "BRA"),
    ("Britain", "GBR"),
    ("Bulgaria", "BGR"),
    ("Burkina Faso", "BFA"),
    ("Canada", "CAN"),
    ("Chile", "CHL"),
    ("China", "CHN"),
    ("Colombia", "COL"),
    ("Croatia", "HRV"),
    ("Cyprus", "CYP"),
    ("Czech Rep.", "CZE"),
    ("Czechia", "CZE"),
    ("Denmark", "DNK"),
    ("Ecuador", "ECU"),
    ("Egypt", "EGY"),
    ("El Salvador", "SLV"),
    ("Estonia", "EST"),
    ("Ethiopia", "ETH"),
    ("Finland", "FIN"),
    ("France", "FRA"),
    ("Georgia", "GEO"),
    ("Germany", "DEU"),
    ("Ghana", "GHA"),
    ("Great Britain", "GBR"),
    ("Greece", "GRC"),
    ("Guatemala", "GTM"),
    ("Honduras", "HND"),
    ("Hong Kong SAR", "HKG"),
    ("Hungary", "HUN"),
    ("Iceland", "ISL"),
    ("India", "IND"),
    ("Indonesia", "IDN"),
    ("Iran", "IRN"),
    ("Iraq", "IRQ"),
    ("Israel", "ISR"),
    ("Italy", "ITA"),
    ("Ivory Coast", "CIV"),
    ("Japan", "JPN"),
    ("Jordan", "JOR"),
    ("Kazakhstan", "KAZ"),
    ("Kenya", "KEN"),
    ("Kuwait", "KWT"),
    ("Kyrgyzstan", "KGZ"),
    ("Latvia", "LVA"),
    ("Lebanon", "LBN"),
    ("Libya", "LBY"),
    ("Lithuania", "LTU"),
    ("Macau SAR", "MAC"),
    ("Malaysia", "MYS"),
    ("Maldives", "MDV"),
    ("Mali", "MLI"),
    ("Mexico", "MEX"),
    ("Mongolia", "MNG"),
    ("Montenegro", "MNE"),
    ("Morocco", "MAR"),
    ("Myanmar", "MMR"),
    ("Netherlands", "NLD"),
    ("New Zealand", "NZL"),
    ("Nicaragua", "NIC"),
    ("Nigeria", "NGA"),
    ("North Macedonia", "MKD"),
    ("Norway", "NOR"),
    ("Pakistan", "PAK"),
    ("Palest. ter.", "PSE"),
    ("Peru", "PER"),
    ("Philippines", "PHL"),
    ("Poland", "POL"),
    ("Portugal", "PRT"),
    ("Puerto Rico", "PRI"),
    ("Romania", "ROU"),
    ("Russia", "RUS"),
    ("S. Africa", "ZAF"),
    ("S. Korea", "KOR"),
    ("Senegal", "SEN"),
    ("Serbia", "SRB"),
    ("Singapore", "SGP"),
    ("Slovakia", "SVK"),
    ("Slovenia", "SVN"),
    ("South Korea", "KOR"),
    ("Spain", "ESP"),
    ("Sweden", "SWE"),
    ("Switzerland", "CHE"),
    ("Taiwan", "TWN"),
    ("Taiwan ROC", "TWN"),
    ("Tajikistan", "TJK"),
    ("Tanzania", "TZA"),
    ("Thailand", "THA"),
    ("Tunisia", "TUN"),
    ("Turkey", "TUR"),
    ("Uganda", "UGA"),
    ("Ukraine", "UKR"),
    ("United States", "USA"),
    ("Uruguay", "URY"),
    ("Uzbekistan", "UZB"),
    ("Venezuela", "VEN"),
    ("Vietnam", "VNM"),
    ("Zimbabwe", "ZWE"),
];

/// Splits a GOQA label into its base name, ISO3 code (if it names a country we know) and
/// sampling qualifier. Unknown names give `None`, never an error.
pub fn parse_country_label(label: &str) -> (String, Option<CountryCode>, SampleKind) {
    let (base, sample) = match label.strip_suffix(')').and_then(|s| s.rsplit_once(" (")) {
        Some((b, "Non-national sample")) => (b, SampleKind::NonNational),
        Some((b, "Current national sample")) => (b, SampleKind::CurrentNational),
        Some((b, "Old national sample")) => (b, SampleKind::OldNational),
        _ => (label, SampleKind::National),
    };
    let base = base.trim();
    let iso = NAME_TO_ISO3
        .iter()
        .find(|(n, _)| *n == base)
        .and_then(|(_, c)| c.parse().ok());
    (base.to_string(), iso, sample)
}

/// The GOQA base names that map to `code` (e.g. GBR → Britain, Great Britain).
pub fn names_for_iso3(code: CountryCode) -> Vec<&'static str> {
    NAME_TO_ISO3
        .iter()
        .filter(|(_, c)| *c == code.as_str())
        .map(|(n, _)| *n)
        .collect()
}

/// One country's answer distribution for a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryDistribution {
    /// The label exactly as in the file.
    pub label: String,
    /// ISO3, when the label names a known country.
    pub country: Option<CountryCode>,
    /// Sampling qualifier.
    pub sample: SampleKind,
    /// Raw shares in option order (sum within [`SUM_TOLERANCE`] of 1).
    pub shares: Vec<f64>,
}

impl CountryDistribution {
    /// Shares rescaled to sum to 1.
    pub fn normalized(&self) -> Vec<f64> {
        let s: f64 = self.shares.iter().sum();
        self.shares.iter().map(|x| x / s).collect()
    }
}

/// One GOQA question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoqaQuestion {
    /// 1-based line in the file.
    pub line: usize,
    /// Stable id (`goqa-` + 12 hex digits).
    pub id: String,
    /// Inferred survey.
    pub source: GoqaSource,
    /// Question text.
    pub question: String,
    /// Answer options (2–18).
    pub options: Vec<String>,
    /// Per-label distributions, sorted by label.
    pub distributions: Vec<CountryDistribution>,
    /// Source tags.
    pub provenance: Vec<String>,
}

impl GoqaQuestion {
    /// The distribution to use for `code`: a (current) national sample first, then an old
    /// national one, then a non-national one.
    pub fn distribution_for(&self, code: CountryCode) -> Option<&CountryDistribution> {
        self.distributions
            .iter()
            .filter(|d| d.country == Some(code))
            .min_by_key(|d| d.sample)
    }
}

/// The loaded subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalOpinionQa {
    /// Questions in file order.
    pub questions: Vec<GoqaQuestion>,
}

/// Parses GOQA JSON Lines text.
pub fn parse_goqa(file: &str, text: &str) -> Result<GlobalOpinionQa, DataError> {
    let mut questions = Vec::new();
    for (line, obj) in parse_jsonl(file, text)? {
        let r = Rec::new(file, line, &obj);
        let source = match r.str("source")? {
            "GAS" => GoqaSource::Gas,
            "WVS" => GoqaSource::Wvs,
            s => return Err(r.err("source", format!("{s:?} is not GAS or WVS"))),
        };
        let options = r.strings("options")?;
        if options.len() < 2 {
            return Err(r.err(
                "options",
                format!("{} options; need at least 2", options.len()),
            ));
        }
        let mut distributions = Vec::new();
        for (label, v) in r.object("distributions")? {
            let field = format!("distributions.{label}");
            let shares = shares_of(&r, &field, v, options.len(), SUM_TOLERANCE)?;
            let (_, country, sample) = parse_country_label(label);
            distributions.push(CountryDistribution {
                label: label.clone(),
                country,
                sample,
                shares,
            });
        }
        if distributions.is_empty() {
            return Err(r.err("distributions", "no countries"));
        }
        let provenance = match r.value("provenance") {
            Ok(_) => r.strings("provenance")?,
            Err(_) => vec![],
        };
        questions.push(GoqaQuestion {
            line,
            id: r.string("id")?,
            source,
            question: r.string("question")?,
            options,
            distributions,
            provenance,
        });
    }
    if questions.is_empty() {
        return Err(DataError::File {
            file: file.to_string(),
            message: "no questions".into(),
        });
    }
    Ok(GlobalOpinionQa { questions })
}

impl GlobalOpinionQa {
    /// Loads and validates the recovered subset.
    pub fn load(source: &DataSource) -> Result<Self, DataError> {
        let text = source.read(GOQA_SUBSET)?;
        parse_goqa(&source.display_path(GOQA_SUBSET), &text)
    }

    /// Every ISO3 code that has at least one distribution.
    pub fn countries(&self) -> BTreeSet<CountryCode> {
        self.questions
            .iter()
            .flat_map(|q| q.distributions.iter().filter_map(|d| d.country))
            .collect()
    }

    /// Every label in the file, sorted.
    pub fn labels(&self) -> BTreeSet<&str> {
        self.questions
            .iter()
            .flat_map(|q| q.distributions.iter().map(|d| d.label.as_str()))
            .collect()
    }

    /// The (question, distribution) items for `code` (one per question, chosen by
    /// [`GoqaQuestion::distribution_for`]), or an error listing the covered countries.
    pub fn items_for(
        &self,
        code: CountryCode,
    ) -> Result<Vec<(&GoqaQuestion, &CountryDistribution)>, DataError> {
        let items: Vec<_> = self
            .questions
            .iter()
            .filter_map(|q| q.distribution_for(code).map(|d| (q, d)))
            .collect();
        if items.is_empty() {
            let valid = self.countries();
            return Err(DataError::unknown_country(
                GOQA_SUBSET,
                code.as_str(),
                valid.iter().map(|c| c.as_str()),
            ));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let (b, c, s) = parse_country_label("India (Current national sample)");
        assert_eq!(
            (b.as_str(), c.map(|c| c.to_string()), s),
            ("India", Some("IND".into()), SampleKind::CurrentNational)
        );
        let (_, c, s) = parse_country_label("Brazil (Non-national sample)");
        assert_eq!((c.unwrap().as_str(), s), ("BRA", SampleKind::NonNational));
        assert_eq!(parse_country_label("S. Korea").1.unwrap().as_str(), "KOR");
        assert_eq!(
            parse_country_label("Great Britain").1.unwrap().as_str(),
            "GBR"
        );
        assert_eq!(parse_country_label("Northern Ireland").1, None);
        assert_eq!(
            names_for_iso3("GBR".parse().unwrap()),
            vec!["Britain", "Great Britain"]
        );
    }
}
