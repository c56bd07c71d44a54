//! Opening a model from one description: a GGUF with its llama.cpp settings, expert adapters
//! and soft prompt, or a model behind an OpenAI-compatible server. Front ends (the CLI, the
//! server) map their options to a [`ModelSpec`] and nothing more.

use crate::backend::LanguageModel;
use crate::error::{LlmError, Result};
use crate::fetch;
use crate::llama::{LlamaConfig, LlamaLm};
use crate::openai::{OpenAiConfig, OpenAiLm};
use crate::soft_prompt::{self, SoftPrompted};
use std::path::PathBuf;
use std::sync::Arc;

/// A local GGUF and what goes with it.
#[derive(Debug, Clone)]
pub struct GgufSpec {
    pub path: PathBuf,
    pub config: LlamaConfig,
    /// LoRA adapters as named experts (Cultural Palette's continent experts).
    pub experts: Vec<(String, PathBuf)>,
    /// A soft prompt (from `tune softprompt`) put in front of every prompt.
    pub soft_prompt: Option<PathBuf>,
}

/// Which model to open.
#[derive(Debug, Clone)]
pub enum ModelSpec {
    Gguf(GgufSpec),
    Http(OpenAiConfig),
}

/// A model ready for any command: the backend, and what identifies it in run manifests (the
/// GGUF's SHA-256 with those of its experts and soft prompt, or the server URL and model name).
pub struct OpenedModel {
    pub lm: Box<dyn LanguageModel>,
    pub identity: String,
    /// The GGUF file, for local models.
    pub path: Option<PathBuf>,
}

/// `NAME=FILE` expert arguments as (lower-case name, file) pairs.
pub fn parse_experts(args: &[String]) -> Result<Vec<(String, PathBuf)>> {
    args.iter()
        .map(|e| {
            let bad = || LlmError::Config(format!("--experts {e:?}: expected NAME=FILE"));
            let (name, file) = e.split_once('=').ok_or_else(bad)?;
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || file.trim().is_empty() {
                return Err(bad());
            }
            Ok((name, PathBuf::from(file.trim())))
        })
        .collect()
}

impl GgufSpec {
    /// Loads the GGUF and its experts (the llama.cpp backend itself, without the soft prompt).
    pub fn load(&self) -> Result<LlamaLm> {
        let mut lm = LlamaLm::load(&self.path, self.config.clone())?;
        if !self.experts.is_empty() {
            lm.load_experts(&self.experts)?;
        }
        Ok(lm)
    }
}

impl ModelSpec {
    /// Opens the model.
    pub fn open(&self) -> Result<OpenedModel> {
        match self {
            ModelSpec::Http(cfg) => {
                let lm = OpenAiLm::connect(cfg.clone())?;
                let identity = format!(
                    "openai-http {} model {} api {}",
                    lm.base_url(),
                    lm.model_name(),
                    lm.api()
                );
                Ok(OpenedModel {
                    lm: Box::new(lm),
                    identity,
                    path: None,
                })
            }
            ModelSpec::Gguf(g) => {
                let lm = g.load()?;
                let mut identity = fetch::sha256_file(lm.path())?;
                for (name, file) in &g.experts {
                    identity = format!("{identity} expert {name}={}", fetch::sha256_file(file)?);
                }
                let path = Some(lm.path().to_path_buf());
                let lm: Box<dyn LanguageModel> = match &g.soft_prompt {
                    Some(file) => {
                        let (soft, _) = soft_prompt::load(file)?;
                        soft_prompt::check_fits(file, &soft, &lm.describe())?;
                        identity = format!("{identity} soft-prompt {}", fetch::sha256_file(file)?);
                        Box::new(SoftPrompted::new(Box::new(lm), Arc::new(soft)))
                    }
                    None => Box::new(lm),
                };
                Ok(OpenedModel { lm, identity, path })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experts_are_name_equals_file() {
        let e = parse_experts(&["Asia = a.gguf".into(), "europe=e.gguf".into()]).unwrap();
        assert_eq!(
            e,
            vec![
                ("asia".to_string(), PathBuf::from("a.gguf")),
                ("europe".to_string(), PathBuf::from("e.gguf"))
            ]
        );
        for bad in ["asia", "=a.gguf", "asia= "] {
            let err = parse_experts(&[bad.into()]).unwrap_err().to_string();
            assert!(err.contains("expected NAME=FILE"), "{err}");
        }
    }

    #[test]
    fn a_missing_gguf_is_named() {
        let spec = ModelSpec::Gguf(GgufSpec {
            path: PathBuf::from("no/such/model.gguf"),
            config: LlamaConfig::default(),
            experts: vec![],
            soft_prompt: None,
        });
        let err = spec.open().err().unwrap().to_string();
        assert!(err.contains("no/such/model.gguf"), "{err}");
    }
}
