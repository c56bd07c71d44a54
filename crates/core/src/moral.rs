//! The six MultiTP / Moral Machine dimensions and 6-vectors indexed by them.

use std::fmt;
use std::ops::{Index, IndexMut};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the six moral dimensions scored by MultiTP and DISCA.
///
/// The canonical order ([`MoralDimension::ALL`]) is Species, Gender, Age, Fitness,
/// SocialValue, Utilitarianism; [`MoralVector`] uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MoralDimension {
    /// Sparing humans over pets (preferred side: Humans).
    Species,
    /// Sparing females over males (preferred side: Female).
    Gender,
    /// Sparing the young over the elderly (preferred side: Young).
    Age,
    /// Sparing the fit over the large (preferred side: Fit).
    Fitness,
    /// Sparing higher social status (preferred side: High).
    SocialValue,
    /// Sparing more lives (preferred side: More).
    Utilitarianism,
}

/// A label that names none of the six dimensions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown moral dimension {input:?}: expected one of Species, Gender, Age, Fitness, SocialValue, Utilitarianism (or a MultiTP / Moral Machine alias such as \"social_status\", \"No. Characters\", \"Species_Humans\")")]
pub struct ParseDimensionError {
    /// The rejected label, as given.
    pub input: String,
}

impl MoralDimension {
    /// All six dimensions in canonical order.
    pub const ALL: [MoralDimension; 6] = [
        MoralDimension::Species,
        MoralDimension::Gender,
        MoralDimension::Age,
        MoralDimension::Fitness,
        MoralDimension::SocialValue,
        MoralDimension::Utilitarianism,
    ];

    /// Position in [`MoralDimension::ALL`] (0..6).
    pub fn index(self) -> usize {
        self as usize
    }

    /// MultiTP's `phenomenon_category` name (also DISCA's category name), e.g. `"SocialValue"`.
    pub fn category(self) -> &'static str {
        match self {
            MoralDimension::Species => "Species",
            MoralDimension::Gender => "Gender",
            MoralDimension::Age => "Age",
            MoralDimension::Fitness => "Fitness",
            MoralDimension::SocialValue => "SocialValue",
            MoralDimension::Utilitarianism => "Utilitarianism",
        }
    }

    /// Name of the preferred side (the side the AMCE measures toward), e.g. `"Humans"`.
    pub fn preferred(self) -> &'static str {
        match self {
            MoralDimension::Species => "Humans",
            MoralDimension::Gender => "Female",
            MoralDimension::Age => "Young",
            MoralDimension::Fitness => "Fit",
            MoralDimension::SocialValue => "High",
            MoralDimension::Utilitarianism => "More",
        }
    }

    /// Name of the non-preferred side, e.g. `"Animals"`.
    pub fn non_preferred(self) -> &'static str {
        match self {
            MoralDimension::Species => "Animals",
            MoralDimension::Gender => "Male",
            MoralDimension::Age => "Old",
            MoralDimension::Fitness => "Unfit",
            MoralDimension::SocialValue => "Low",
            MoralDimension::Utilitarianism => "Less",
        }
    }

    /// The criterion key used by MultiTP/DISCA, e.g. `"SocialValue_High"`.
    pub fn criterion(self) -> &'static str {
        match self {
            MoralDimension::Species => "Species_Humans",
            MoralDimension::Gender => "Gender_Female",
            MoralDimension::Age => "Age_Young",
            MoralDimension::Fitness => "Fitness_Fit",
            MoralDimension::SocialValue => "SocialValue_High",
            MoralDimension::Utilitarianism => "Utilitarianism_More",
        }
    }

    /// The `dimension` key of the vignette file and the column suffix of
    /// `country_preferences.csv`, e.g. `"social_status"`.
    pub fn snake_key(self) -> &'static str {
        match self {
            MoralDimension::Species => "species",
            MoralDimension::Gender => "gender",
            MoralDimension::Age => "age",
            MoralDimension::Fitness => "fitness",
            MoralDimension::SocialValue => "social_status",
            MoralDimension::Utilitarianism => "no_characters",
        }
    }

    /// The Moral Machine AMCE label, e.g. `"Social Status"`, `"No. Characters"`.
    pub fn moral_machine_label(self) -> &'static str {
        match self {
            MoralDimension::Species => "Species",
            MoralDimension::Gender => "Gender",
            MoralDimension::Age => "Age",
            MoralDimension::Fitness => "Fitness",
            MoralDimension::SocialValue => "Social Status",
            MoralDimension::Utilitarianism => "No. Characters",
        }
    }

    /// The paper's dimension label, e.g. `"Sparing Higher Status"`.
    pub fn paper_label(self) -> &'static str {
        match self {
            MoralDimension::Species => "Sparing Humans",
            MoralDimension::Gender => "Sparing Females",
            MoralDimension::Age => "Sparing the Young",
            MoralDimension::Fitness => "Sparing the Fit",
            MoralDimension::SocialValue => "Sparing Higher Status",
            MoralDimension::Utilitarianism => "Sparing More",
        }
    }

    /// Parses any of the labels used in the data files: category names (`SocialValue`),
    /// snake keys (`social_status`, `no_characters`), criteria (`Species_Humans`), Moral
    /// Machine labels (`Social Status`, `No. Characters`) and paper labels (`Sparing More`).
    /// Matching ignores case, spaces, dots, underscores and hyphens.
    pub fn parse_label(s: &str) -> Result<Self, ParseDimensionError> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let d = match norm.as_str() {
            "species" | "specieshumans" | "sparinghumans" => MoralDimension::Species,
            "gender" | "genderfemale" | "sparingfemales" => MoralDimension::Gender,
            "age" | "ageyoung" | "sparingtheyoung" => MoralDimension::Age,
            "fitness" | "fitnessfit" | "sparingthefit" => MoralDimension::Fitness,
            "socialvalue" | "socialvaluehigh" | "socialstatus" | "sparinghigherstatus" => {
                MoralDimension::SocialValue
            }
            "utilitarianism" | "utilitarianismmore" | "nocharacters" | "sparingmore" => {
                MoralDimension::Utilitarianism
            }
            _ => {
                return Err(ParseDimensionError {
                    input: s.to_string(),
                })
            }
        };
        Ok(d)
    }
}

impl FromStr for MoralDimension {
    type Err = ParseDimensionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MoralDimension::parse_label(s)
    }
}

impl fmt::Display for MoralDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.category())
    }
}

/// Six values, one per [`MoralDimension`], in canonical order.
///
/// Preferences are on the 0–1 scale (share of sparing the preferred side) unless a function
/// says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MoralVector(pub [f64; 6]);

impl MoralVector {
    /// Builds a vector by evaluating `f` on every dimension.
    pub fn from_fn(mut f: impl FnMut(MoralDimension) -> f64) -> Self {
        let mut v = [0.0; 6];
        for d in MoralDimension::ALL {
            v[d.index()] = f(d);
        }
        MoralVector(v)
    }

    /// The value of dimension `d`.
    pub fn get(&self, d: MoralDimension) -> f64 {
        self.0[d.index()]
    }

    /// The six values as a slice, canonical order.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// Every value multiplied by `k` (e.g. 100 for the percentage scale).
    pub fn scaled(&self, k: f64) -> Self {
        MoralVector(self.0.map(|x| x * k))
    }

    /// `(dimension, value)` pairs in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (MoralDimension, f64)> + '_ {
        MoralDimension::ALL.iter().map(move |&d| (d, self.get(d)))
    }
}

impl Index<MoralDimension> for MoralVector {
    type Output = f64;
    fn index(&self, d: MoralDimension) -> &f64 {
        &self.0[d.index()]
    }
}

impl IndexMut<MoralDimension> for MoralVector {
    fn index_mut(&mut self, d: MoralDimension) -> &mut f64 {
        &mut self.0[d.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_aliases() {
        use MoralDimension::*;
        let cases = [
            ("Species", Species),
            ("species", Species),
            ("Species_Humans", Species),
            ("Sparing Humans", Species),
            ("Gender", Gender),
            ("Gender_Female", Gender),
            ("Sparing Females", Gender),
            ("age", Age),
            ("Age_Young", Age),
            ("Sparing the Young", Age),
            ("Fitness", Fitness),
            ("Fitness_Fit", Fitness),
            ("SocialValue", SocialValue),
            ("social_status", SocialValue),
            ("Social Status", SocialValue),
            ("SocialValue_High", SocialValue),
            ("Sparing Higher Status", SocialValue),
            ("Utilitarianism", Utilitarianism),
            ("no_characters", Utilitarianism),
            ("No. Characters", Utilitarianism),
            ("Utilitarianism_More", Utilitarianism),
            ("Sparing More", Utilitarianism),
        ];
        for (s, d) in cases {
            assert_eq!(s.parse::<MoralDimension>().unwrap(), d, "{s}");
        }
        assert!("Intervention".parse::<MoralDimension>().is_err());
        assert!("".parse::<MoralDimension>().is_err());
    }

    #[test]
    fn names_roundtrip() {
        for (i, d) in MoralDimension::ALL.into_iter().enumerate() {
            assert_eq!(d.index(), i);
            for s in [
                d.category(),
                d.criterion(),
                d.snake_key(),
                d.moral_machine_label(),
                d.paper_label(),
            ] {
                assert_eq!(MoralDimension::parse_label(s).unwrap(), d);
            }
        }
        let prefs: Vec<_> = MoralDimension::ALL.iter().map(|d| d.preferred()).collect();
        assert_eq!(prefs, ["Humans", "Female", "Young", "Fit", "High", "More"]);
    }

    #[test]
    fn vector_indexing() {
        let mut v = MoralVector::from_fn(|d| d.index() as f64);
        assert_eq!(v[MoralDimension::SocialValue], 4.0);
        v[MoralDimension::Age] = 9.0;
        assert_eq!(v.get(MoralDimension::Age), 9.0);
        assert_eq!(v.scaled(2.0).0[5], 10.0);
    }
}
