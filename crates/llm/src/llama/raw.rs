//! The inference context, token and mixed token/embedding batches, and LoRA adapters on `llama-cpp-sys-2` directly.
//!
//! `llama-cpp-2` (pinned) keeps the raw pointers of its model and context private, and its safe
//! API has no embedding batches (soft prompts) and sets at most one LoRA adapter at a time, so
//! the context is created and driven here. The model stays a `llama_cpp_2::model::LlamaModel`
//! (tokenizer, metadata, chat templates); its raw pointer is read through the layout check in
//! [`model_ptr`].

use crate::error::{LlmError, Result};
use crate::types::TokenId;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

/// The raw `llama_model` behind a `LlamaModel`.
///
/// `LlamaModel` holds exactly one field, a `#[repr(transparent)]` wrapper of
/// `NonNull<llama_model>`: a struct no larger than its only field has that field at offset 0.
/// The size check below fails the build if a future `llama-cpp-2` adds fields.
pub(crate) fn model_ptr(model: &LlamaModel) -> *mut sys::llama_model {
    const _: () =
        assert!(std::mem::size_of::<LlamaModel>() == std::mem::size_of::<*mut sys::llama_model>());
    // SAFETY: layout argument above; the pointer is only passed to llama.cpp functions.
    unsafe { *(model as *const LlamaModel as *const *mut sys::llama_model) }
}

/// A LoRA adapter loaded for one model (freed with the model by llama.cpp): the continent
/// experts of Cultural Palette's gated merging.
pub(crate) struct LoraAdapter {
    ptr: NonNull<sys::llama_adapter_lora>,
}

impl LoraAdapter {
    /// Loads a LoRA GGUF for `model`; llama.cpp checks architecture and tensor shapes.
    pub(crate) fn load(model: &LlamaModel, path: &Path) -> Result<Self> {
        crate::llama::check_gguf(path)?;
        let c = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| {
            LlmError::Config(format!(
                "adapter path {} contains a NUL byte",
                path.display()
            ))
        })?;
        // SAFETY: valid model pointer and C string; llama.cpp returns null on any error.
        let ptr = unsafe { sys::llama_adapter_lora_init(model_ptr(model), c.as_ptr()) };
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or_else(|| {
            LlmError::Config(format!("{} is not a LoRA adapter for this model (llama.cpp rejected its type, architecture or tensor shapes)", path.display()))
        })
    }
}

// SAFETY: adapters are immutable once loaded; they are only read by decode calls.
unsafe impl Send for LoraAdapter {}

/// A token batch (`llama_batch_init`), freed on drop.
pub(crate) struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
    /// Sequence ids one token may belong to.
    max_seqs: usize,
}

impl Batch {
    pub(crate) fn tokens(capacity: usize) -> Self {
        Self::tagged(capacity, 1)
    }

    /// A batch whose tokens may each belong to up to `max_seqs` sequences (with one KV cache
    /// for all sequences, llama.cpp stores such a token once for all of them).
    pub(crate) fn tagged(capacity: usize, max_seqs: usize) -> Self {
        let max_seqs = max_seqs.max(1);
        // SAFETY: allocates arrays for `capacity` tokens with `max_seqs` sequence ids each.
        let raw = unsafe { sys::llama_batch_init(capacity as i32, 0, max_seqs as i32) };
        Self {
            raw,
            capacity,
            max_seqs,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    fn slot(&mut self, pos: usize, seq: usize, logits: bool) -> Result<usize> {
        let i = self.len();
        if i >= self.capacity {
            return Err(LlmError::Decode(format!(
                "batch full ({} entries)",
                self.capacity
            )));
        }
        // SAFETY: i < capacity; the arrays were allocated by llama_batch_init for that many.
        unsafe {
            *self.raw.pos.add(i) = pos as i32;
            *self.raw.n_seq_id.add(i) = 1;
            **self.raw.seq_id.add(i) = seq as i32;
            *self.raw.logits.add(i) = i8::from(logits);
        }
        self.raw.n_tokens += 1;
        Ok(i)
    }

    pub(crate) fn add_token(
        &mut self,
        token: TokenId,
        pos: usize,
        seq: usize,
        logits: bool,
    ) -> Result<()> {
        let i = self.slot(pos, seq, logits)?;
        // SAFETY: i < capacity (checked in slot).
        unsafe { *self.raw.token.add(i) = token.0 };
        Ok(())
    }

    /// Adds a token that belongs to every sequence of `seqs` (at least one; see
    /// [`Batch::tagged`]).
    pub(crate) fn add_token_tagged(
        &mut self,
        token: TokenId,
        pos: usize,
        seqs: &[usize],
        logits: bool,
    ) -> Result<()> {
        let (&first, rest) = seqs
            .split_first()
            .ok_or_else(|| LlmError::Decode("a token without a sequence".into()))?;
        if seqs.len() > self.max_seqs {
            return Err(LlmError::Decode(format!(
                "a token in {} sequences, the batch allows {}",
                seqs.len(),
                self.max_seqs
            )));
        }
        let i = self.slot(pos, first, logits)?;
        // SAFETY: i < capacity (checked in slot); each token's id array holds max_seqs entries.
        unsafe {
            *self.raw.token.add(i) = token.0;
            *self.raw.n_seq_id.add(i) = seqs.len() as i32;
            let ids = *self.raw.seq_id.add(i);
            for (k, &s) in rest.iter().enumerate() {
                *ids.add(k + 1) = s as i32;
            }
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: allocated by llama_batch_init, freed once.
        unsafe { sys::llama_batch_free(self.raw) };
    }
}

/// A batch that may mix token and embedding entries (llama.cpp's extended batch API), so a
/// soft prompt and the tokens around it are decoded in the same micro-batch shapes as an
/// all-token prompt of the same length.
pub(crate) struct MixedBatch {
    ptr: NonNull<sys::llama_batch_ext>,
    len: usize,
}

impl MixedBatch {
    pub(crate) fn new(ctx: &mut Context<'_>) -> Result<Self> {
        // SAFETY: valid context; null on failure.
        let ptr = unsafe { sys::llama_batch_ext_init(ctx.ptr.as_ptr()) };
        NonNull::new(ptr)
            .map(|ptr| Self { ptr, len: 0 })
            .ok_or_else(|| LlmError::Decode("cannot allocate a mixed batch".into()))
    }

    pub(crate) fn clear(&mut self) {
        // SAFETY: valid batch.
        unsafe { sys::llama_batch_ext_clear(self.ptr.as_ptr()) };
        self.len = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn finish(&mut self, idx: i32, pos: usize, logits: bool) -> Result<()> {
        if idx < 0 {
            return Err(LlmError::Decode(format!(
                "mixed batch refused an entry (code {idx})"
            )));
        }
        let p = pos as i32;
        // SAFETY: idx is an entry of this batch; pos points to one position.
        let ok = unsafe {
            sys::llama_batch_ext_set_pos(self.ptr.as_ptr(), idx, &p)
                && sys::llama_batch_ext_set_output_logits(self.ptr.as_ptr(), idx, logits)
        };
        if !ok {
            return Err(LlmError::Decode(format!(
                "mixed batch entry {idx}: position or output not accepted"
            )));
        }
        self.len += 1;
        Ok(())
    }

    pub(crate) fn add_token(
        &mut self,
        token: TokenId,
        pos: usize,
        seq: usize,
        logits: bool,
    ) -> Result<()> {
        // SAFETY: valid batch.
        let idx = unsafe { sys::llama_batch_ext_add_token(self.ptr.as_ptr(), seq as i32, token.0) };
        self.finish(idx, pos, logits)
    }

    pub(crate) fn add_embedding(
        &mut self,
        row: &[f32],
        pos: usize,
        seq: usize,
        logits: bool,
    ) -> Result<()> {
        let e = sys::llama_embd {
            data: row.as_ptr(),
            n_rows: 1,
            n_embd: row.len(),
        };
        // SAFETY: valid batch; the row is copied into the batch.
        let idx = unsafe { sys::llama_batch_ext_add_embd(self.ptr.as_ptr(), seq as i32, e) };
        self.finish(idx, pos, logits)
    }
}

impl Drop for MixedBatch {
    fn drop(&mut self) {
        // SAFETY: created by llama_batch_ext_init, freed once.
        unsafe { sys::llama_batch_ext_free(self.ptr.as_ptr()) };
    }
}

/// An inference context of a model.
pub(crate) struct Context<'m> {
    ptr: NonNull<sys::llama_context>,
    n_vocab: usize,
    _model: PhantomData<&'m LlamaModel>,
}

impl<'m> Context<'m> {
    pub(crate) fn new(model: &'m LlamaModel, params: sys::llama_context_params) -> Result<Self> {
        // SAFETY: valid model pointer; null on failure.
        let ptr = unsafe { sys::llama_init_from_model(model_ptr(model), params) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            LlmError::Context("llama.cpp could not create the context (out of memory?)".into())
        })?;
        Ok(Self {
            ptr,
            n_vocab: model.n_vocab().max(0) as usize,
            _model: PhantomData,
        })
    }

    pub(crate) fn decode(&mut self, batch: &mut Batch) -> Result<()> {
        // SAFETY: valid context and batch; the batch outlives the call.
        let rc = unsafe { sys::llama_decode(self.ptr.as_ptr(), batch.raw) };
        match rc {
            0 => Ok(()),
            1 => Err(LlmError::Decode(
                "no KV cache slot for the batch (context too small)".into(),
            )),
            rc => Err(LlmError::Decode(format!("llama_decode returned {rc}"))),
        }
    }

    pub(crate) fn decode_mixed(&mut self, batch: &mut MixedBatch) -> Result<()> {
        // SAFETY: valid context and batch.
        let rc = unsafe {
            sys::llama_process(
                self.ptr.as_ptr(),
                sys::LLAMA_PROCESS_TYPE_DECODE,
                batch.ptr.as_ptr(),
            )
        };
        match rc {
            0 => Ok(()),
            1 => Err(LlmError::Decode(
                "no KV cache slot for the batch (context too small)".into(),
            )),
            rc => Err(LlmError::Decode(format!("llama_process returned {rc}"))),
        }
    }

    /// Whether decodes also keep the final hidden state (after the output norm) of every entry
    /// that requests output.
    pub(crate) fn set_embeddings(&mut self, on: bool) {
        // SAFETY: valid context.
        unsafe { sys::llama_set_embeddings(self.ptr.as_ptr(), on) };
    }

    /// The hidden state of batch entry `i` of the last decode (embeddings on, output requested).
    pub(crate) fn embeddings_ith(&self, i: usize, n_embd: usize) -> Result<&[f32]> {
        // SAFETY: null for an entry without output; otherwise n_embd floats valid until the next
        // decode (which needs `&mut self`).
        let p = unsafe { sys::llama_get_embeddings_ith(self.ptr.as_ptr(), i as i32) };
        if p.is_null() {
            return Err(LlmError::Decode(format!(
                "no hidden state for batch entry {i}"
            )));
        }
        Ok(unsafe { std::slice::from_raw_parts(p, n_embd) })
    }

    /// Logits of batch entry `i` of the last decode (which must have requested them).
    pub(crate) fn logits_ith(&self, i: usize) -> Result<&[f32]> {
        // SAFETY: llama.cpp returns null for an entry without logits; otherwise n_vocab floats
        // that stay valid until the next decode (which needs `&mut self`).
        let p = unsafe { sys::llama_get_logits_ith(self.ptr.as_ptr(), i as i32) };
        if p.is_null() {
            return Err(LlmError::Decode(format!("no logits for batch entry {i}")));
        }
        Ok(unsafe { std::slice::from_raw_parts(p, self.n_vocab) })
    }

    fn memory(&self) -> sys::llama_memory_t {
        // SAFETY: valid context.
        unsafe { sys::llama_get_memory(self.ptr.as_ptr()) }
    }

    /// Empties the whole KV cache.
    pub(crate) fn clear_kv(&mut self) {
        // SAFETY: valid memory handle; `true` also clears the data buffers.
        unsafe { sys::llama_memory_clear(self.memory(), true) };
    }

    /// Removes every position of sequence `seq`.
    pub(crate) fn clear_seq(&mut self, seq: usize) {
        // SAFETY: valid memory handle; p0 = p1 = -1 means the whole sequence.
        unsafe { sys::llama_memory_seq_rm(self.memory(), seq as i32, -1, -1) };
    }

    /// Removes the positions of sequence `seq` from `pos` on.
    pub(crate) fn remove_from(&mut self, seq: usize, pos: usize) {
        // SAFETY: valid memory handle; p1 = -1 means to the end.
        unsafe { sys::llama_memory_seq_rm(self.memory(), seq as i32, pos as i32, -1) };
    }

    /// Makes sequence `dst` a copy of `src`. `dst` is emptied first: with one KV cache for all
    /// sequences llama.cpp's copy only adds `dst` to `src`'s cells, so whatever `dst` held
    /// before would stay beside the copy (two cells at one position); with one cache per
    /// sequence the copy replaces the whole cache anyway.
    pub(crate) fn copy_seq(&mut self, src: usize, dst: usize) {
        if src == dst {
            return;
        }
        self.clear_seq(dst);
        // SAFETY: as above.
        unsafe { sys::llama_memory_seq_cp(self.memory(), src as i32, dst as i32, -1, -1) };
    }

    /// Applies `adapters` with their scales to every following decode (replacing any set
    /// before; an empty list removes all).
    pub(crate) fn set_adapters(&mut self, adapters: &[(&LoraAdapter, f32)]) -> Result<()> {
        let mut ptrs: Vec<*mut sys::llama_adapter_lora> =
            adapters.iter().map(|(a, _)| a.ptr.as_ptr()).collect();
        let mut scales: Vec<f32> = adapters.iter().map(|(_, s)| *s).collect();
        let (p, s) = if ptrs.is_empty() {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            (ptrs.as_mut_ptr(), scales.as_mut_ptr())
        };
        // SAFETY: arrays of equal length, adapters loaded for this context's model.
        let rc = unsafe { sys::llama_set_adapters_lora(self.ptr.as_ptr(), p, ptrs.len(), s) };
        if rc != 0 {
            return Err(LlmError::Decode(format!(
                "llama_set_adapters_lora returned {rc}"
            )));
        }
        Ok(())
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: created by llama_init_from_model, freed once.
        unsafe { sys::llama_free(self.ptr.as_ptr()) };
    }
}

// SAFETY: a llama.cpp context is not tied to its creating thread; it is only used through
// `&mut self` of the owning backend.
unsafe impl Send for Context<'_> {}
