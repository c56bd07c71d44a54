//! Rows of a GGUF model's token-embedding matrix (`token_embd.weight`), read from the file and
//! dequantised with ggml's type traits: the starting point of soft prompts.

use crate::error::{LlmError, Result};
use crate::types::{SoftPrompt, TokenId};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const TENSOR: &str = "token_embd.weight";

/// Where the token embeddings lie in the file and how to decode a row.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingTable {
    path: PathBuf,
    ty: sys::ggml_type,
    /// Values per row (the model's embedding size).
    pub dim: usize,
    /// Rows (the vocabulary size).
    pub rows: usize,
    /// Absolute file offset of row 0.
    offset: u64,
    row_bytes: usize,
}

impl EmbeddingTable {
    /// Reads the tensor's type, shape and offset from the GGUF header (no tensor data).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let bad = |what: String| LlmError::Config(format!("{}: {what}", path.display()));
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| bad("path contains a NUL byte".into()))?;
        let mut meta: *mut sys::ggml_context = std::ptr::null_mut();
        let params = sys::gguf_init_params {
            no_alloc: true,
            ctx: &mut meta,
        };
        // SAFETY: valid C string; with no_alloc only metadata is read; freed below.
        let g = unsafe { sys::gguf_init_from_file(c.as_ptr(), params) };
        if g.is_null() {
            return Err(LlmError::LoadFailed {
                path: path.to_path_buf(),
            });
        }
        let name = CString::new(TENSOR).expect("static name");
        // SAFETY: g and meta come from gguf_init_from_file; both are freed before returning.
        let out = unsafe {
            let id = sys::gguf_find_tensor(g, name.as_ptr());
            let t = if meta.is_null() {
                std::ptr::null_mut()
            } else {
                sys::ggml_get_tensor(meta, name.as_ptr())
            };
            let r = if id < 0 || t.is_null() {
                Err(bad(format!("no {TENSOR} tensor (not a language model?)")))
            } else {
                let ty = sys::gguf_get_tensor_type(g, id);
                let (dim, rows) = ((*t).ne[0] as usize, (*t).ne[1] as usize);
                let row_bytes = sys::ggml_row_size(ty, dim as i64);
                let traits = sys::ggml_get_type_traits(ty);
                if traits.is_null()
                    || ((*traits).is_quantized || ty != sys::GGML_TYPE_F32)
                        && (*traits).to_float.is_none()
                {
                    Err(bad(format!(
                        "{TENSOR} has a type ggml cannot dequantise ({ty})"
                    )))
                } else {
                    Ok(Self {
                        path: path.to_path_buf(),
                        ty,
                        dim,
                        rows,
                        offset: (sys::gguf_get_data_offset(g) + sys::gguf_get_tensor_offset(g, id))
                            as u64,
                        row_bytes,
                    })
                }
            };
            sys::gguf_free(g);
            if !meta.is_null() {
                sys::ggml_free(meta);
            }
            r
        };
        out
    }

    fn to_float(&self, src: &[u8], dst: &mut [f32]) {
        if self.ty == sys::GGML_TYPE_F32 {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            return;
        }
        // SAFETY: checked in open() that the type has a to_float; src holds one row
        // (row_bytes) and dst `dim` floats.
        unsafe {
            let f = (*sys::ggml_get_type_traits(self.ty))
                .to_float
                .expect("checked in open");
            f(src.as_ptr().cast(), dst.as_mut_ptr(), self.dim as i64);
        }
    }

    /// The dequantised rows of `tokens`, in order.
    pub(crate) fn rows_of(&self, tokens: &[TokenId]) -> Result<SoftPrompt> {
        let io = |e: std::io::Error| LlmError::Io {
            path: self.path.clone(),
            source: e,
        };
        let mut f = std::fs::File::open(&self.path).map_err(io)?;
        let mut buf = vec![0u8; self.row_bytes];
        let mut data = vec![0f32; tokens.len() * self.dim];
        for (k, t) in tokens.iter().enumerate() {
            if t.0 < 0 || t.0 as usize >= self.rows {
                return Err(LlmError::TokenOutOfRange {
                    token: t.0,
                    vocab: self.rows,
                });
            }
            f.seek(SeekFrom::Start(
                self.offset + t.0 as u64 * self.row_bytes as u64,
            ))
            .map_err(io)?;
            f.read_exact(&mut buf).map_err(io)?;
            self.to_float(&buf, &mut data[k * self.dim..(k + 1) * self.dim]);
        }
        SoftPrompt::new(tokens.len(), self.dim, data)
            .map_err(|e| LlmError::Config(format!("{}: {TENSOR}: {e}", self.path.display())))
    }

    /// Standard deviation of all values of the matrix (read in blocks of rows).
    pub(crate) fn std(&self) -> Result<f64> {
        let io = |e: std::io::Error| LlmError::Io {
            path: self.path.clone(),
            source: e,
        };
        let mut f = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&self.path).map_err(io)?,
        );
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut buf = vec![0u8; self.row_bytes];
        let mut row = vec![0f32; self.dim];
        let (mut sum, mut sum2) = (0f64, 0f64);
        for _ in 0..self.rows {
            f.read_exact(&mut buf).map_err(io)?;
            self.to_float(&buf, &mut row);
            for &x in &row {
                sum += f64::from(x);
                sum2 += f64::from(x) * f64::from(x);
            }
        }
        let n = (self.rows * self.dim) as f64;
        let mean = sum / n;
        Ok((sum2 / n - mean * mean).max(0.0).sqrt())
    }
}
