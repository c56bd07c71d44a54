//! Helpers shared by the llm crate's integration tests (each test file is its own crate, so
//! not every file uses every helper).
#![allow(dead_code)]

pub mod gguf;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The model under test: `CULTURESTEER_MODEL` (a registry name or a GGUF path), or the default
/// model (fetched if missing); resolved once per test binary.
pub fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        culturesteer_llm::models::resolve(
            std::env::var_os("CULTURESTEER_MODEL")
                .as_deref()
                .map(std::path::Path::new),
            &mut |m| eprintln!("{m}"),
        )
        .expect("model")
    })
    .clone()
}
