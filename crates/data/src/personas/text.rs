//! Persona text (§3.2): the cohort headers, the persona template, the one-paragraph
//! WVS-profile prompt and the English country names used in prompts.

use serde::{Deserialize, Serialize};

use culturesteer_core::CountryCode;

use super::ValueProfile;

/// Header sentence template pieces (§3.2).
const CLOSING: &str = "When you face a moral dilemma, you weigh the choices through this set of values and answer in a way that is consistent with the worldview above.";

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

    pub(super) fn describe(self) -> &'static str {
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
