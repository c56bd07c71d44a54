//! A full-precision copy of a quantised GGUF: every tensor dequantised to f32 by llama.cpp's own
//! quantisation tool (`llama_model_quantize` with the `ALL_F32` type and requantising allowed).
//!
//! The same weights, without 8-bit activations in the matrix products: what a reference
//! implementation sees when it dequantises the GGUF (Hugging Face transformers loads a GGUF as
//! fp32 this way). Used to compare our arithmetic with such implementations.

use crate::error::{LlmError, Result};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Writes `dst`, an f32 copy of the GGUF `src` (atomically: a temporary file beside `dst` is
/// renamed into place once complete).
pub fn dequantize_to_f32(src: &Path, dst: &Path) -> Result<()> {
    super::check_gguf(src)?;
    let tmp = tmp_path(dst);
    let cstr = |p: &Path| {
        CString::new(p.to_string_lossy().as_bytes()).map_err(|_| LlmError::LoadFailed {
            path: p.to_path_buf(),
        })
    };
    let (c_src, c_tmp) = (cstr(src)?, cstr(&tmp)?);
    super::backend()?;
    // SAFETY: plain C call with valid NUL-terminated paths and a params struct built from
    // llama.cpp's own defaults.
    let rc = unsafe {
        let mut params = sys::llama_model_quantize_default_params();
        params.ftype = sys::LLAMA_FTYPE_ALL_F32;
        params.allow_requantize = true;
        params.nthread = 0;
        sys::llama_model_quantize(c_src.as_ptr(), c_tmp.as_ptr(), &params)
    };
    if rc != 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(LlmError::LoadFailed {
            path: src.to_path_buf(),
        });
    }
    std::fs::rename(&tmp, dst).map_err(|e| LlmError::Io {
        path: dst.to_path_buf(),
        source: e,
    })
}

fn tmp_path(dst: &Path) -> PathBuf {
    let mut name = dst.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dst.with_file_name(name)
}
