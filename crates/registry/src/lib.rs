//! The assembly layer: one list of methods and one list of benchmarks, each entry with its
//! name, help and a constructor from one context struct.
//!
//! Everything that offers methods or benchmarks by name — `eval`, `ablate`, `serve`, the speed
//! benchmarks, `--help`, `list` — reads these lists; nothing else keeps a list of names.
//! Adding a method is its file in `culturesteer-methods` plus one entry in [`methods::METHODS`]
//! (the checklist is in ARCHITECTURE.md).
//!
//! Must not know: command-line parsing, HTTP, terminals, the inference engine.

pub mod benchmarks;
pub mod methods;

pub use benchmarks::{benchmark, load_benchmark, BenchOptions, BenchmarkSpec, BENCHMARKS};
pub use methods::{
    build_methods, build_one, disca_preset, method, MethodContext, MethodSpec, PaletteSettings,
    Preset, METHODS,
};

/// Why a name could not be turned into a method or benchmark.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown method {name:?} (available: {available})")]
    UnknownMethod { name: String, available: String },
    #[error("unknown benchmark {name:?} (available: {available})")]
    UnknownBenchmark { name: String, available: String },
    #[error("{what}: {message}")]
    Build { what: String, message: String },
}

impl RegistryError {
    pub(crate) fn build(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        RegistryError::Build {
            what: what.into(),
            message: err.to_string(),
        }
    }
}
