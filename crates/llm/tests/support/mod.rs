pub mod gguf;

use culturesteer_llm::fetch::ensure_default_model;
use std::path::PathBuf;

/// The model under test: `CULTURESTEER_MODEL`, or the default model (fetched if missing).
#[allow(dead_code)]
pub fn model_path() -> PathBuf {
    match std::env::var_os("CULTURESTEER_MODEL") {
        Some(p) => PathBuf::from(p),
        None => ensure_default_model(&mut |m| eprintln!("{m}")).expect("default model"),
    }
}
