//! Multiplication by quantized weights, and embedding rows looked up from a quantized table.
//!
//! Public API (other modules rely on it): `Linear::new`, `Linear::forward`, `Linear::in_dim`,
//! `Linear::out_dim`, `Linear::storage_bytes`, `Embedding::new`, `Embedding::lookup`.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Tensor};

use crate::Result;

/// A weight matrix of shape `[out, in]` (GGUF stores it so), applied as `x @ W^T`.
pub struct Linear {
    inner: QMatMul,
    in_dim: usize,
    out_dim: usize,
    bytes: usize,
}

impl Linear {
    pub fn new(w: Arc<QTensor>) -> Result<Self> {
        let (out_dim, in_dim) = w.shape().dims2()?;
        let bytes = w.storage_size_in_bytes();
        let inner = QMatMul::from_arc(w)?;
        Ok(Self { inner, in_dim, out_dim, bytes })
    }

    /// `x`: `[..., in]` f32 → `[..., out]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.inner.forward(x)?)
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Bytes the weights take in memory.
    pub fn storage_bytes(&self) -> usize {
        self.bytes
    }
}

/// A quantized `[vocab, hidden]` table; rows are dequantized only when looked up, so a 262k-token
/// vocabulary never sits in memory as f32.
pub struct Embedding {
    table: Arc<QTensor>,
    vocab: usize,
    hidden: usize,
}

impl Embedding {
    pub fn new(table: Arc<QTensor>) -> Result<Self> {
        let (vocab, hidden) = table.shape().dims2()?;
        Ok(Self { table, vocab, hidden })
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Rows for `ids` as `[ids.len(), hidden]` f32 (unscaled).
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(crate::EngineError::InvalidArgument(format!(
                "token id {bad} out of range for a vocabulary of {}",
                self.vocab
            )));
        }
        let ids = Tensor::from_slice(ids, ids.len(), &self.table.device())?;
        Ok(self.table.embedding(&ids)?)
    }
}
