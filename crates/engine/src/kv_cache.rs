//! Keys and values of past positions, per layer, shaped by Gemma 3's 5:1 local/global design:
//! a global layer keeps every position of the context, a local (sliding-window) layer keeps a ring
//! buffer of exactly `window` positions. Keys are stored after RoPE, so a slot never needs to know
//! where it sits in the ring to be used.

use candle_core::{DType, Device, Tensor};

use crate::config::Config;
use crate::{EngineError, Result};

pub(crate) enum LayerKv {
    /// Invariant: `k`, `v` are `[kv_heads, capacity, head_dim]` f32; positions `0..len` (the
    /// cache's `len`) are at their own index; the rest is unused (zero pages the OS has not
    /// committed yet).
    Global { k: Tensor, v: Tensor },
    /// Invariant: `k`, `v` are `[kv_heads, window, head_dim]` f32; position `p` lives in slot
    /// `p % window`, and the slots hold exactly positions `len.saturating_sub(window)..len`.
    Local { k: Tensor, v: Tensor },
}

/// The cache of one session.
pub struct KvCache {
    pub(crate) layers: Vec<LayerKv>,
    /// Number of positions already processed (and cached): the next token's position.
    pub(crate) len: usize,
    /// Maximum positions this cache can hold (the session's context size).
    pub(crate) capacity: usize,
    pub(crate) window: usize,
    bytes: usize,
}

impl KvCache {
    pub fn new(cfg: &Config, capacity: usize, device: &Device) -> Result<Self> {
        if capacity == 0 {
            return Err(EngineError::InvalidArgument("context size must be at least 1".into()));
        }
        let window = cfg.sliding_window;
        let mut layers = Vec::with_capacity(cfg.layers);
        for &global in &cfg.is_global {
            // A local layer never needs more slots than the context itself.
            let slots = if global { capacity } else { window.min(capacity) };
            let shape = (cfg.kv_heads, slots, cfg.head_dim);
            let k = Tensor::zeros(shape, DType::F32, device)?;
            let v = Tensor::zeros(shape, DType::F32, device)?;
            layers.push(if global { LayerKv::Global { k, v } } else { LayerKv::Local { k, v } });
        }
        Ok(Self { layers, len: 0, capacity, window: window.min(capacity), bytes: cfg.kv_bytes(capacity) })
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes allocated for keys and values (the sliding-window formula of `Config::kv_bytes`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets positions from `len` on and says whether the cache still holds everything before
    /// `len`. Global layers just stop reading the tail; a local layer's ring keeps only the last
    /// `window` positions, so once it has wrapped, rolling back loses positions that the
    /// shortened sequence still needs — then the cache empties itself and returns false, and
    /// the caller must prefill from position 0.
    pub fn truncate(&mut self, len: usize) -> bool {
        if len >= self.len {
            return true;
        }
        let has_local = self.layers.iter().any(|l| matches!(l, LayerKv::Local { .. }));
        let intact = !has_local || self.len <= self.window;
        self.len = if intact { len } else { 0 };
        intact
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}
