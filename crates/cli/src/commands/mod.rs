//! Subcommands.

pub mod ablate;
pub mod bench;
pub mod bench_disca;
pub mod bench_palette;
pub mod bench_serve;
pub mod compare;
pub mod eval;
pub mod list;
pub mod model;
pub mod personas;
pub mod replay;
pub mod score;
pub mod tune;

use culturesteer_llm::LlmError;

/// Exit code for an error: 1 when the engine itself failed, 2 for bad input (files, options,
/// prompts, data) — the common case.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(l) = cause.downcast_ref::<LlmError>() {
            return if l.is_user_error() { 2 } else { 1 };
        }
    }
    2
}
