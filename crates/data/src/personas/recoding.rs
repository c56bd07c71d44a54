//! The recoding of a WVS item from its original coding (the marginals, GlobalOpinionQA's WVS
//! codes) to the inverted file's coding of §3.1.

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
