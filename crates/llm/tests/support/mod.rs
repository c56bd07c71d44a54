pub mod gguf;

use std::path::PathBuf;

/// The model under test: `CULTURESTEER_MODEL` (a registry name or a GGUF path), or the default
/// model (fetched if missing).
#[allow(dead_code)]
pub fn model_path() -> PathBuf {
    culturesteer_llm::models::resolve(
        std::env::var_os("CULTURESTEER_MODEL")
            .as_deref()
            .map(std::path::Path::new),
        &mut |m| eprintln!("{m}"),
    )
    .expect("model")
}
