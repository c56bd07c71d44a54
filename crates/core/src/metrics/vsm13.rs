//! Hofstede Values Survey Module 2013: the six dimension indices from the 24 item means, and
//! the L1 loss against a country's published scores (vsm13.md §4, softprompt_de.md §2).
//!
//! ```text
//! PDI = 35 (m07 − m02) + 25 (m20 − m23) + C(pd)
//! IDV = 35 (m04 − m01) + 35 (m09 − m06) + C(ic)
//! MAS = 35 (m05 − m03) + 35 (m08 − m10) + C(mf)     (Masoud et al. 2024 print 25 for the 2nd term)
//! UAI = 40 (m18 − m15) + 25 (m21 − m24) + C(ua)
//! LTO = 40 (m13 − m14) + 25 (m19 − m22) + C(ls)
//! IVR = 35 (m12 − m11) + 40 (m17 − m16) + C(ir)
//! ```
//! Item means are on the 1..5 answer-code scale. There are no official constants C; they
//! default to 0.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MetricError;

/// One of Hofstede's six dimensions, in the order PDI, IDV, MAS, UAI, LTO, IVR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Vsm13Dimension {
    /// Power distance.
    Pdi,
    /// Individualism.
    Idv,
    /// Masculinity.
    Mas,
    /// Uncertainty avoidance.
    Uai,
    /// Long- vs short-term orientation.
    Lto,
    /// Indulgence vs restraint.
    Ivr,
}

impl Vsm13Dimension {
    /// All six in canonical order.
    pub const ALL: [Vsm13Dimension; 6] = [
        Vsm13Dimension::Pdi,
        Vsm13Dimension::Idv,
        Vsm13Dimension::Mas,
        Vsm13Dimension::Uai,
        Vsm13Dimension::Lto,
        Vsm13Dimension::Ivr,
    ];

    /// Position in [`Vsm13Dimension::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Upper-case abbreviation, e.g. `"PDI"`.
    pub fn abbrev(self) -> &'static str {
        ["PDI", "IDV", "MAS", "UAI", "LTO", "IVR"][self.index()]
    }

    /// Lower-case column name used in the Hofstede CSVs, e.g. `"pdi"`.
    pub fn column(self) -> &'static str {
        ["pdi", "idv", "mas", "uai", "lto", "ivr"][self.index()]
    }

    /// The dimension of an abbreviation, any case (`"PDI"`, `"pdi"`).
    pub fn from_abbrev(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.abbrev().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Vsm13Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbrev())
    }
}

/// One difference term `weight · (m[plus] − m[minus])` (items 1-based, as in the manual).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vsm13Term {
    /// Multiplier.
    pub weight: f64,
    /// Item whose mean is added (1..=24).
    pub plus_item: usize,
    /// Item whose mean is subtracted (1..=24).
    pub minus_item: usize,
}

/// The second weight of the MAS formula: the manual's 35, or the 25 printed by Masoud et al.
/// 2024 (Eq. 3), which vsm13.md treats as a typo but keeps selectable for replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MasSecondWeight {
    /// `35 (m08 − m10)`, as in the VSM 2013 manual (default).
    #[default]
    Manual35,
    /// `25 (m08 − m10)`, as printed in Masoud et al. 2024.
    Masoud25,
}

/// Scoring configuration: per-dimension constants C and the MAS switch.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Vsm13Config {
    /// C(pd), C(ic), C(mf), C(ua), C(ls), C(ir), in PDI..IVR order; default all 0.
    pub constants: [f64; 6],
    /// Which MAS second weight to use.
    pub mas_second_weight: MasSecondWeight,
}

impl MasSecondWeight {
    /// The weight itself: 35 or 25.
    pub fn weight(self) -> f64 {
        match self {
            MasSecondWeight::Manual35 => 35.0,
            MasSecondWeight::Masoud25 => 25.0,
        }
    }

    /// The switch of a weight: `"35"` or `"25"`; anything else is `None`.
    pub fn from_weight(s: &str) -> Option<Self> {
        match s.trim() {
            "35" => Some(MasSecondWeight::Manual35),
            "25" => Some(MasSecondWeight::Masoud25),
            _ => None,
        }
    }
}

/// Parses per-dimension constants written as `KEY=NUMBER` pairs separated by commas, e.g.
/// `"PDI=20,IVR=-5.5"`: any subset of PDI, IDV, MAS, UAI, LTO, IVR (any case), the rest 0; an
/// empty text is all 0. The error names the offending token.
pub fn parse_vsm13_constants(spec: &str) -> Result<[f64; 6], String> {
    let mut c = [0.0; 6];
    let mut seen = [false; 6];
    for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let bad = |why: &str| format!("{token:?}: {why}");
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=NUMBER"))?;
        let d = Vsm13Dimension::from_abbrev(key)
            .ok_or_else(|| bad("the key must be one of PDI, IDV, MAS, UAI, LTO, IVR"))?;
        let v: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| bad("not a finite number"))?;
        if seen[d.index()] {
            return Err(bad("this dimension is given twice"));
        }
        seen[d.index()] = true;
        c[d.index()] = v;
    }
    Ok(c)
}

impl Vsm13Config {
    /// The four items (1-based) of each dimension's formula, in PDI..IVR order: the first
    /// term's plus and minus item, then the second's.
    pub fn items_of(&self) -> [[usize; 4]; 6] {
        self.terms()
            .map(|[a, b]| [a.plus_item, a.minus_item, b.plus_item, b.minus_item])
    }

    /// The two terms of each dimension's formula, in PDI..IVR order.
    pub fn terms(&self) -> [[Vsm13Term; 2]; 6] {
        let t = |weight, plus_item, minus_item| Vsm13Term {
            weight,
            plus_item,
            minus_item,
        };
        let mas2 = self.mas_second_weight.weight();
        [
            [t(35.0, 7, 2), t(25.0, 20, 23)],
            [t(35.0, 4, 1), t(35.0, 9, 6)],
            [t(35.0, 5, 3), t(mas2, 8, 10)],
            [t(40.0, 18, 15), t(25.0, 21, 24)],
            [t(40.0, 13, 14), t(25.0, 19, 22)],
            [t(35.0, 12, 11), t(40.0, 17, 16)],
        ]
    }
}

/// The six indices PDI, IDV, MAS, UAI, LTO, IVR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vsm13Scores(pub [f64; 6]);

impl Vsm13Scores {
    /// The score of one dimension.
    pub fn get(&self, d: Vsm13Dimension) -> f64 {
        self.0[d.index()]
    }
}

/// Number of scored VSM 2013 items.
pub const VSM13_ITEMS: usize = 24;

/// Computes the six indices from the 24 item means `m1..m24` (index 0 = item 1). Every mean
/// must be finite and within the answer-code range `[1, 5]`.
pub fn vsm13_scores(item_means: &[f64], config: &Vsm13Config) -> Result<Vsm13Scores, MetricError> {
    if item_means.len() != VSM13_ITEMS {
        return Err(MetricError::WrongLength {
            expected: VSM13_ITEMS,
            found: item_means.len(),
        });
    }
    for (index, &value) in item_means.iter().enumerate() {
        if !value.is_finite() {
            return Err(MetricError::NonFinite { index, value });
        }
        if !(1.0..=5.0).contains(&value) {
            return Err(MetricError::OutOfRange {
                index,
                value,
                min: 1.0,
                max: 5.0,
            });
        }
    }
    let m = |item: usize| item_means[item - 1];
    let mut out = [0.0; 6];
    for (k, terms) in config.terms().iter().enumerate() {
        out[k] = terms
            .iter()
            .map(|t| t.weight * (m(t.plus_item) - m(t.minus_item)))
            .sum::<f64>()
            + config.constants[k];
    }
    Ok(Vsm13Scores(out))
}

/// L1 loss of model scores against a target profile, with the per-dimension breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vsm13Loss {
    /// `Σ |d_i − t_i|` over the dimensions that have a target.
    pub total: f64,
    /// `|d_i − t_i|`, or `None` where the target has no score (e.g. Kenya's LTO/IVR).
    pub per_dimension: [Option<f64>; 6],
    /// Number of dimensions compared.
    pub dims_compared: usize,
}

impl Vsm13Loss {
    /// Mean absolute error over the compared dimensions (`total / dims_compared`); `None` if
    /// nothing was compared.
    pub fn mean(&self) -> Option<f64> {
        (self.dims_compared > 0).then(|| self.total / self.dims_compared as f64)
    }
}

/// L1 loss `Σ_i |scores_i − target_i|`; dimensions whose target is `None` are skipped.
pub fn vsm13_l1_loss(scores: &Vsm13Scores, target: &[Option<f64>; 6]) -> Vsm13Loss {
    let mut per = [None; 6];
    let mut total = 0.0;
    let mut n = 0;
    for k in 0..6 {
        if let Some(t) = target[k] {
            let e = (scores.0[k] - t).abs();
            per[k] = Some(e);
            total += e;
            n += 1;
        }
    }
    Vsm13Loss {
        total,
        per_dimension: per,
        dims_compared: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_scores(m: &[f64], want: [f64; 6]) {
        let s = vsm13_scores(m, &Vsm13Config::default()).unwrap();
        for (k, (got, want)) in s.0.iter().zip(want).enumerate() {
            assert!((got - want).abs() < 1e-9, "dim {k}: {got} vs {want}");
        }
    }

    // vsm13.md §5 test vectors (C = 0).
    #[test]
    fn spec_vector_all_three() {
        assert_scores(&[3.0; 24], [0.0; 6]);
    }

    #[test]
    fn spec_vector_cycle() {
        let m: Vec<f64> = (0..24).map(|i| (i % 5 + 1) as f64).collect();
        assert_scores(&m, [50.0, 210.0, 0.0, -155.0, 10.0, 75.0]);
    }

    #[test]
    fn spec_vector_integers() {
        let m = [
            2., 1., 2., 3., 2., 1., 3., 2., 3., 2., 2., 3., 2., 2., 3., 2., 3., 2., 2., 4., 2., 2.,
            2., 2.,
        ];
        assert_scores(&m, [120.0, 105.0, 0.0, -40.0, 0.0, 75.0]);
    }

    #[test]
    fn spec_vector_fractional_and_us_loss() {
        let m = [
            1.4, 1.8, 2.0, 1.6, 1.9, 1.7, 2.2, 2.4, 2.6, 2.0, 2.1, 2.9, 1.9, 2.5, 3.1, 2.2, 3.0,
            2.1, 1.8, 3.3, 2.4, 1.9, 2.8, 2.6,
        ];
        assert_scores(&m, [26.5, 38.5, 10.5, -45.0, -26.5, 60.0]);
        let s = vsm13_scores(&m, &Vsm13Config::default()).unwrap();
        let us = [40.0, 91.0, 62.0, 46.0, 26.0, 68.0].map(Some);
        let loss = vsm13_l1_loss(&s, &us);
        assert!((loss.total - 269.0).abs() < 1e-9);
        let per = loss.per_dimension.map(|x| x.unwrap());
        for (got, want) in per.iter().zip([13.5, 52.5, 51.5, 91.0, 52.5, 8.0]) {
            assert!((got - want).abs() < 1e-9);
        }
        assert_eq!(loss.dims_compared, 6);
        assert!((loss.mean().unwrap() - 269.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn constants_and_mas_switch() {
        let m = [
            1.4, 1.8, 2.0, 1.6, 1.9, 1.7, 2.2, 2.4, 2.6, 2.0, 2.1, 2.9, 1.9, 2.5, 3.1, 2.2, 3.0,
            2.1, 1.8, 3.3, 2.4, 1.9, 2.8, 2.6,
        ];
        let cfg = Vsm13Config {
            constants: [10.0, 0.0, 0.0, 50.0, 0.0, -1.0],
            mas_second_weight: MasSecondWeight::Masoud25,
        };
        let s = vsm13_scores(&m, &cfg).unwrap();
        assert!((s.get(Vsm13Dimension::Pdi) - 36.5).abs() < 1e-9);
        assert!((s.get(Vsm13Dimension::Uai) - 5.0).abs() < 1e-9);
        assert!((s.get(Vsm13Dimension::Ivr) - 59.0).abs() < 1e-9);
        // MAS = 35 (1.9 − 2.0) + 25 (2.4 − 2.0) = −3.5 + 10 = 6.5
        assert!((s.get(Vsm13Dimension::Mas) - 6.5).abs() < 1e-9);
    }

    #[test]
    fn constants_parse_any_subset_and_name_bad_tokens() {
        assert_eq!(parse_vsm13_constants("").unwrap(), [0.0; 6]);
        assert_eq!(
            parse_vsm13_constants("PDI=20, ivr=-5.5").unwrap(),
            [20.0, 0.0, 0.0, 0.0, 0.0, -5.5]
        );
        assert_eq!(
            parse_vsm13_constants("PDI=1,IDV=2,MAS=3,UAI=4,LTO=5,IVR=6").unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        for (bad, token) in [
            ("XYZ=1", "XYZ=1"),
            ("PDI=abc", "PDI=abc"),
            ("PDI=1,MAS", "MAS"),
            ("PDI=inf", "PDI=inf"),
            ("PDI=1,pdi=2", "pdi=2"),
        ] {
            let e = parse_vsm13_constants(bad).unwrap_err();
            assert!(e.contains(&format!("{token:?}")), "{bad}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
        assert_eq!(
            MasSecondWeight::from_weight("25"),
            Some(MasSecondWeight::Masoud25)
        );
        assert_eq!(MasSecondWeight::from_weight("30"), None);
        assert_eq!(MasSecondWeight::Manual35.weight(), 35.0);
    }

    #[test]
    fn every_item_belongs_to_exactly_one_dimension() {
        let items = Vsm13Config::default().items_of();
        let mut all: Vec<usize> = items.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (1..=24).collect::<Vec<_>>());
        assert_eq!(items[0], [7, 2, 20, 23]);
    }

    #[test]
    fn missing_target_dims_skipped() {
        let s = Vsm13Scores([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let kenya_like = [Some(0.0), Some(0.0), Some(0.0), Some(0.0), None, None];
        let loss = vsm13_l1_loss(&s, &kenya_like);
        assert_eq!(loss.total, 100.0);
        assert_eq!(loss.dims_compared, 4);
        assert_eq!(loss.per_dimension[4], None);
        let none = vsm13_l1_loss(&s, &[None; 6]);
        assert_eq!(none.mean(), None);
    }

    #[test]
    fn input_validation() {
        let cfg = Vsm13Config::default();
        assert_eq!(
            vsm13_scores(&[3.0; 23], &cfg),
            Err(MetricError::WrongLength {
                expected: 24,
                found: 23
            })
        );
        let mut m = [3.0; 24];
        m[5] = 5.5;
        assert!(matches!(
            vsm13_scores(&m, &cfg),
            Err(MetricError::OutOfRange { index: 5, .. })
        ));
        m[5] = f64::NAN;
        assert!(matches!(
            vsm13_scores(&m, &cfg),
            Err(MetricError::NonFinite { index: 5, .. })
        ));
    }
}
