//! Where data files come from: embedded in the binary, or a user-given data directory with
//! the same relative layout as the project's `data/` folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::error::DataError;

macro_rules! embed {
    ($($p:literal,)*) => {
        /// Every embedded file: (path relative to `data/`, contents).
        pub(crate) static EMBEDDED: &[(&str, &str)] = &[
            $( ($p, include_str!(concat!("../../../data/", $p))), )*
        ];
    };
}

embed! {
    "continents/continents.csv",
    "disca_reference/human_targets_20.csv",
    "disca_reference/results/phi_4/comparison.csv",
    "disca_reference/results/phi_4/swa_results_ARG.csv",
    "disca_reference/results/phi_4/swa_results_BGD.csv",
    "disca_reference/results/phi_4/swa_results_BRA.csv",
    "disca_reference/results/phi_4/swa_results_CHN.csv",
    "disca_reference/results/phi_4/swa_results_COL.csv",
    "disca_reference/results/phi_4/swa_results_DEU.csv",
    "disca_reference/results/phi_4/swa_results_ETH.csv",
    "disca_reference/results/phi_4/swa_results_GBR.csv",
    "disca_reference/results/phi_4/swa_results_IDN.csv",
    "disca_reference/results/phi_4/swa_results_IRN.csv",
    "disca_reference/results/phi_4/swa_results_JPN.csv",
    "disca_reference/results/phi_4/swa_results_KGZ.csv",
    "disca_reference/results/phi_4/swa_results_MEX.csv",
    "disca_reference/results/phi_4/swa_results_MMR.csv",
    "disca_reference/results/phi_4/swa_results_MYS.csv",
    "disca_reference/results/phi_4/swa_results_ROU.csv",
    "disca_reference/results/phi_4/swa_results_SRB.csv",
    "disca_reference/results/phi_4/swa_results_THA.csv",
    "disca_reference/results/phi_4/swa_results_USA.csv",
    "disca_reference/results/phi_4/swa_results_VNM.csv",
    "disca_reference/results/phi_4/vanilla_results_ARG.csv",
    "disca_reference/results/phi_4/vanilla_results_BGD.csv",
    "disca_reference/results/phi_4/vanilla_results_BRA.csv",
    "disca_reference/results/phi_4/vanilla_results_CHN.csv",
    "disca_reference/results/phi_4/vanilla_results_COL.csv",
    "disca_reference/results/phi_4/vanilla_results_DEU.csv",
    "disca_reference/results/phi_4/vanilla_results_ETH.csv",
    "disca_reference/results/phi_4/vanilla_results_GBR.csv",
    "disca_reference/results/phi_4/vanilla_results_IDN.csv",
    "disca_reference/results/phi_4/vanilla_results_IRN.csv",
    "disca_reference/results/phi_4/vanilla_results_JPN.csv",
    "disca_reference/results/phi_4/vanilla_results_KGZ.csv",
    "disca_reference/results/phi_4/vanilla_results_MEX.csv",
    "disca_reference/results/phi_4/vanilla_results_MMR.csv",
    "disca_reference/results/phi_4/vanilla_results_MYS.csv",
    "disca_reference/results/phi_4/vanilla_results_ROU.csv",
    "disca_reference/results/phi_4/vanilla_results_SRB.csv",
    "disca_reference/results/phi_4/vanilla_results_THA.csv",
    "disca_reference/results/phi_4/vanilla_results_USA.csv",
    "disca_reference/results/phi_4/vanilla_results_VNM.csv",
    "disca_reference/scenarios/ARG_es.csv",
    "disca_reference/scenarios/BGD_bn.csv",
    "disca_reference/scenarios/BRA_pt.csv",
    "disca_reference/scenarios/CHN_zh.csv",
    "disca_reference/scenarios/COL_es.csv",
    "disca_reference/scenarios/DEU_de.csv",
    "disca_reference/scenarios/ETH_am.csv",
    "disca_reference/scenarios/GBR_en.csv",
    "disca_reference/scenarios/IDN_id.csv",
    "disca_reference/scenarios/IRN_fa.csv",
    "disca_reference/scenarios/JPN_ja.csv",
    "disca_reference/scenarios/KGZ_ky.csv",
    "disca_reference/scenarios/MEX_es.csv",
    "disca_reference/scenarios/MMR_my.csv",
    "disca_reference/scenarios/MYS_ms.csv",
    "disca_reference/scenarios/ROU_ro.csv",
    "disca_reference/scenarios/SRB_sr.csv",
    "disca_reference/scenarios/THA_th.csv",
    "disca_reference/scenarios/USA_en.csv",
    "disca_reference/scenarios/VNM_vi.csv",
    "globalopinionqa/goqa_recovered_subset.jsonl",
    "hofstede/hofstede_insights_snapshot_2023.csv",
    "hofstede/regions_2015.csv",
    "hofstede/six_dimensions.csv",
    "moral_machine/country_preferences.csv",
    "multitp/country_language_metadata_2023.csv",
    "multitp/languages.csv",
    "multitp/multitp_spec.json",
    "multitp/vignettes_en.jsonl",
    "palette/templates.json",
    "wvs/country_codes.json",
    "wvs/goqa_wvs_items.json",
    "wvs/wvs7_country_marginals.jsonl",
}

/// Where to read the datasets from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DataSource {
    /// The copies compiled into the binary (everything under `data/` except the MultiTP
    /// paraphrase file, the Hofstede provenance table and the `SOURCE.md` notes).
    #[default]
    Embedded,
    /// A directory laid out like the project's `data/` folder
    /// (`moral_machine/country_preferences.csv`, `disca_reference/...`, ...).
    Dir(PathBuf),
}

/// Reads a file; errors name it. Returns how messages name the file and its text.
pub fn read_file(path: &Path) -> Result<(String, String), DataError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    Ok((name, text))
}

impl DataSource {
    /// A data directory source.
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        DataSource::Dir(path.into())
    }

    /// How errors name the file `rel`: `data/<rel>` when embedded, the full path otherwise.
    pub fn display_path(&self, rel: &str) -> String {
        match self {
            DataSource::Embedded => format!("data/{rel}"),
            DataSource::Dir(d) => join(d, rel).display().to_string(),
        }
    }

    /// Reads the file at `rel` (relative to the data root, `/`-separated).
    pub fn read(&self, rel: &str) -> Result<Cow<'static, str>, DataError> {
        match self {
            DataSource::Embedded => EMBEDDED
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, text)| Cow::Borrowed(*text))
                .ok_or_else(|| DataError::NotEmbedded {
                    path: self.display_path(rel),
                }),
            DataSource::Dir(d) => read_file(&join(d, rel)).map(|(_, text)| Cow::Owned(text)),
        }
    }

    /// Names of the files directly inside directory `rel_dir`, sorted.
    pub fn list(&self, rel_dir: &str) -> Result<Vec<String>, DataError> {
        let mut out = Vec::new();
        match self {
            DataSource::Embedded => {
                let prefix = if rel_dir.is_empty() {
                    String::new()
                } else {
                    format!("{}/", rel_dir.trim_end_matches('/'))
                };
                for (p, _) in EMBEDDED {
                    if let Some(rest) = p.strip_prefix(&prefix) {
                        if !rest.contains('/') {
                            out.push(rest.to_string());
                        }
                    }
                }
                if out.is_empty() {
                    return Err(DataError::NotEmbedded {
                        path: self.display_path(rel_dir),
                    });
                }
            }
            DataSource::Dir(d) => {
                let path = join(d, rel_dir);
                let rd = std::fs::read_dir(&path).map_err(|source| DataError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                for entry in rd {
                    let entry = entry.map_err(|source| DataError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                    if entry.path().is_file() {
                        if let Some(name) = entry.file_name().to_str() {
                            out.push(name.to_string());
                        }
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Paths (relative to the data root) of every embedded file.
    pub fn embedded_files() -> impl Iterator<Item = &'static str> {
        EMBEDDED.iter().map(|(p, _)| *p)
    }
}

fn join(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in rel.split('/').filter(|s| !s.is_empty()) {
        p.push(part);
    }
    p
}

/// Joins a directory and a file name with `/` (for relative data paths).
pub(crate) fn rel_join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), name)
    }
}
