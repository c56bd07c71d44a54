//! Soft prompts on disk, and a backend wrapper that puts one in front of every prompt.
//!
//! The file is JSON: a manifest (format, the model it was tuned for, how it was made) and the
//! `rows × dim` values. JSON keeps the values exact (shortest round-trip decimals) and the file
//! readable; soft prompts are small (8 × 640 values for the default model).

use crate::backend::{LanguageModel, ModelDescription};
use crate::error::{LlmError, Result};
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The format tag of soft-prompt files.
pub const FORMAT: &str = "culturesteer-soft-prompt/1";

/// Where a soft prompt comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftPromptManifest {
    pub format: String,
    /// The model it was tuned on (architecture, embedding size, source file name).
    pub model_architecture: Option<String>,
    pub model_source: String,
    pub embedding_size: usize,
    pub rows: usize,
    /// Target country (ISO3) and the text whose embeddings started the search.
    pub country: Option<String>,
    pub init_text: Option<String>,
    /// The objective's value at the end (VSM13 L1 loss).
    pub loss: Option<f64>,
    /// Tool and version that wrote it.
    pub created_by: String,
}

impl SoftPromptManifest {
    /// A manifest for `soft` tuned on the model `describe` describes.
    pub fn for_model(describe: &ModelDescription, soft: &SoftPrompt) -> Self {
        let source = std::path::Path::new(&describe.source)
            .file_name()
            .map_or(describe.source.clone(), |f| {
                f.to_string_lossy().into_owned()
            });
        Self {
            format: FORMAT.into(),
            model_architecture: describe.architecture.clone(),
            model_source: source,
            embedding_size: soft.dim,
            rows: soft.rows,
            country: None,
            init_text: None,
            loss: None,
            created_by: format!("culturesteer {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FileBody {
    manifest: SoftPromptManifest,
    values: Vec<f32>,
}

/// Writes a soft prompt with its manifest.
pub fn save(path: &Path, soft: &SoftPrompt, manifest: &SoftPromptManifest) -> Result<()> {
    let body = FileBody {
        manifest: manifest.clone(),
        values: soft.data.clone(),
    };
    let text = serde_json::to_string(&body)
        .map_err(|e| LlmError::Config(format!("cannot encode the soft prompt: {e}")))?;
    std::fs::write(path, text).map_err(|e| LlmError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Reads a soft prompt file; every problem is one line naming the file.
pub fn load(path: &Path) -> Result<(SoftPrompt, SoftPromptManifest)> {
    let bad = |what: String| LlmError::Config(format!("soft prompt {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("file not found".into()),
        _ => LlmError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let body: FileBody =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a soft-prompt file ({e})")))?;
    if body.manifest.format != FORMAT {
        return Err(bad(format!(
            "format {:?}, expected {FORMAT:?}",
            body.manifest.format
        )));
    }
    let soft = SoftPrompt::new(
        body.manifest.rows,
        body.manifest.embedding_size,
        body.values,
    )
    .map_err(bad)?;
    Ok((soft, body.manifest))
}

/// Checks that a soft prompt fits a model (same embedding size).
pub fn check_fits(path: &Path, soft: &SoftPrompt, describe: &ModelDescription) -> Result<()> {
    match describe.embedding_size {
        Some(d) if d == soft.dim => Ok(()),
        Some(d) => Err(LlmError::Config(format!(
            "soft prompt {} has rows of {} values but {} embeds tokens in {d}: it was tuned for another model",
            path.display(),
            soft.dim,
            describe.source
        ))),
        None => Err(LlmError::Config(format!("soft prompt {}: {} cannot take soft prompts", path.display(), describe.source))),
    }
}

/// A backend with a soft prompt in front of every prompt that has none of its own.
pub struct SoftPrompted {
    inner: Box<dyn LanguageModel>,
    soft: Arc<SoftPrompt>,
}

impl SoftPrompted {
    pub fn new(inner: Box<dyn LanguageModel>, soft: Arc<SoftPrompt>) -> Self {
        Self { inner, soft }
    }

    fn with(&self, p: &Prompt) -> Prompt {
        let mut p = p.clone();
        if p.soft.is_none() {
            p.soft = Some(self.soft.clone());
        }
        p
    }
}

impl LanguageModel for SoftPrompted {
    fn describe(&self) -> ModelDescription {
        self.inner.describe()
    }
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        self.inner.chat_prompt(messages)
    }
    fn tokenize(&self, text: &str) -> Result<Vec<TokenId>> {
        self.inner.tokenize(text)
    }
    fn token_piece(&self, token: TokenId) -> String {
        self.inner.token_piece(token)
    }
    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ScoreResult>> {
        let reqs: Vec<ScoreRequest> = requests
            .iter()
            .map(|r| ScoreRequest {
                prompt: self.with(&r.prompt),
                ..r.clone()
            })
            .collect();
        self.inner.score(&reqs)
    }
    fn generate(&mut self, requests: &[GenerateRequest]) -> Result<Vec<Generation>> {
        let reqs: Vec<GenerateRequest> = requests
            .iter()
            .map(|r| GenerateRequest {
                prompt: self.with(&r.prompt),
                ..r.clone()
            })
            .collect();
        self.inner.generate(&reqs)
    }
    fn generate_stream(
        &mut self,
        request: &GenerateRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let req = GenerateRequest {
            prompt: self.with(&request.prompt),
            ..request.clone()
        };
        self.inner.generate_stream(&req, on_text)
    }
    fn generate_then_score(
        &mut self,
        requests: &[GenerateRequest],
        follow: &mut dyn FnMut(usize, &Generation) -> Result<ScoreRequest>,
    ) -> Result<Vec<(Generation, ScoreResult)>> {
        let reqs: Vec<GenerateRequest> = requests
            .iter()
            .map(|r| GenerateRequest {
                prompt: self.with(&r.prompt),
                ..r.clone()
            })
            .collect();
        let soft = self.soft.clone();
        let mut with_soft = |i: usize, g: &Generation| -> Result<ScoreRequest> {
            let mut r = follow(i, g)?;
            if r.prompt.soft.is_none() {
                r.prompt.soft = Some(soft.clone());
            }
            Ok(r)
        };
        self.inner.generate_then_score(&reqs, &mut with_soft)
    }
    fn resolve_answer_tokens(&self, prompt: &Prompt, labels: &[&str]) -> Result<Vec<TokenId>> {
        self.inner.resolve_answer_tokens(prompt, labels)
    }
    fn token_embeddings(&self, tokens: &[TokenId]) -> Result<SoftPrompt> {
        self.inner.token_embeddings(tokens)
    }
    fn input_embedding_std(&self) -> Result<f64> {
        self.inner.input_embedding_std()
    }
    fn experts(&self) -> Vec<String> {
        self.inner.experts()
    }
    fn set_expert_scales(&mut self, scales: &[f32]) -> Result<()> {
        self.inner.set_expert_scales(scales)
    }
    /// The inner model's hidden states, without the soft prompt (they represent the text).
    fn hidden_states(&mut self, prompts: &[Prompt]) -> Result<Vec<Vec<f32>>> {
        self.inner.hidden_states(prompts)
    }
}
