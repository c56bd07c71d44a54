//! The ten value dimensions of §3.1 (items, ranges, poles, descriptors, sentences) and a
//! country's or cohort's [`ValueProfile`] over them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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
