//! Keys and values of past positions, per layer, shaped by Gemma 3's 5:1 local/global design:
//! a global layer keeps every position of the context, a local (sliding-window) layer keeps a ring
//! buffer of exactly `window` positions. Keys are stored after RoPE, so a slot never needs to know
//! where it sits in the ring to be used.
//!
//! Elements are f16 by default (as llama.cpp's cache, and what `hearth models fit` counts), or
//! f32: see `KvDType`. Attention reads an f16 cache through `kv_kernels`.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Storage, Tensor};
use half::f16;
use half::vec::HalfBitsVecExt;

use crate::config::Config;
use crate::kv_kernels;
use crate::{EngineError, Result};

/// The element type of a KV cache, chosen when the cache (or session) is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDType {
    /// Half the memory of f32; keys and values rounded to 11 significant bits. llama.cpp's
    /// default, and ours.
    #[default]
    F16,
    F32,
}

impl KvDType {
    /// Bytes per stored key or value element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
        }
    }

    pub(crate) fn dtype(self) -> DType {
        match self {
            Self::F16 => DType::F16,
            Self::F32 => DType::F32,
        }
    }
}

impl fmt::Display for KvDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KvDType {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            _ => Err(EngineError::InvalidArgument(format!("unknown KV cache type `{s}` (expected f16 or f32)"))),
        }
    }
}

pub(crate) enum LayerKv {
    /// Invariant: `k`, `v` are `[kv_heads, capacity, head_dim]` of the cache's `KvDType`,
    /// contiguous; positions `0..len` (the cache's `len`) are at their own index; the rest is
    /// unused (zero pages the OS has not committed yet).
    Global { k: Tensor, v: Tensor },
    /// Invariant: `k`, `v` are `[kv_heads, window, head_dim]` of the cache's `KvDType`,
    /// contiguous; position `p` lives in slot `p % window`, and the slots hold exactly positions
    /// `len.saturating_sub(window)..len`.
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
    pub(crate) dtype: KvDType,
    bytes: usize,
}

impl KvCache {
    pub fn new(cfg: &Config, capacity: usize, dtype: KvDType, device: &Device) -> Result<Self> {
        if capacity == 0 {
            return Err(EngineError::InvalidArgument("context size must be at least 1".into()));
        }
        let window = cfg.sliding_window;
        let mut layers = Vec::with_capacity(cfg.layers);
        for &global in &cfg.is_global {
            // A local layer never needs more slots than the context itself.
            let slots = if global { capacity } else { window.min(capacity) };
            let shape = (cfg.kv_heads, slots, cfg.head_dim);
            let k = zeros(shape, dtype, device)?;
            let v = zeros(shape, dtype, device)?;
            layers.push(if global { LayerKv::Global { k, v } } else { LayerKv::Local { k, v } });
        }
        // What was really allocated (tests hold it to `Config::kv_bytes`).
        let bytes = layers
            .iter()
            .map(|l| match l {
                LayerKv::Global { k, v } | LayerKv::Local { k, v } => {
                    (k.elem_count() + v.elem_count()) * dtype.size_in_bytes()
                }
            })
            .sum();
        Ok(Self { layers, len: 0, capacity, window: window.min(capacity), dtype, bytes })
    }

    /// The element type of keys and values.
    pub fn dtype(&self) -> KvDType {
        self.dtype
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

    /// Bytes allocated for keys and values (equal to the sliding-window formula of
    /// `Config::kv_bytes` for this cache's element type).
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

/// A zero tensor whose pages, on the CPU, stay uncommitted until written: candle's own
/// `zeros` fills an f16 vector element by element (only primitive zeros get `calloc`), which
/// would make the whole capacity resident at once.
fn zeros(shape: (usize, usize, usize), dtype: KvDType, device: &Device) -> Result<Tensor> {
    match dtype {
        KvDType::F16 if device.is_cpu() => {
            let n = shape.0 * shape.1 * shape.2;
            let data: Vec<f16> = vec![0u16; n].reinterpret_into();
            Ok(Tensor::from_vec(data, shape, device)?)
        }
        _ => Ok(Tensor::zeros(shape, dtype.dtype(), device)?),
    }
}

/// `x` (f32) in the cache's element type, ready for `slice_set`.
pub(crate) fn to_cache_dtype(x: &Tensor, dtype: KvDType) -> Result<Tensor> {
    match dtype {
        KvDType::F32 => Ok(x.clone()),
        KvDType::F16 if crate::linear::native_on(x.device()) => {
            let x = x.contiguous()?;
            let mut out = vec![f16::ZERO; x.elem_count()];
            {
                let (storage, layout) = x.storage_and_layout();
                let Storage::Cpu(cpu) = &*storage else { unreachable!("checked: a CPU tensor") };
                let src = &cpu.as_slice::<f32>()?[layout.start_offset()..][..out.len()];
                kv_kernels::f32_to_f16(src, &mut out);
            }
            Ok(Tensor::from_vec(out, x.shape(), x.device())?)
        }
        KvDType::F16 => Ok(x.to_dtype(DType::F16)?),
    }
}

/// Positions `0..len` of a cache tensor (`[kv_heads, slots, head_dim]`, contiguous) as f32
/// `[kv_heads, len, head_dim]`.
pub(crate) fn read_f32(cache: &Tensor, len: usize) -> Result<Tensor> {
    if cache.dtype() == DType::F32 {
        return Ok(cache.narrow(1, 0, len)?);
    }
    if cache.dtype() != DType::F16 || !crate::linear::native_on(cache.device()) {
        return Ok(cache.narrow(1, 0, len)?.to_dtype(DType::F32)?);
    }
    let (heads, slots, hd) = cache.dims3()?;
    let mut out = vec![0f32; heads * len * hd];
    {
        let data = f16_data(cache)?;
        for h in 0..heads {
            let src = &data.slice()[h * slots * hd..][..len * hd];
            kv_kernels::f16_to_f32(src, &mut out[h * len * hd..][..len * hd]);
        }
    }
    Ok(Tensor::from_vec(out, (heads, len, hd), cache.device())?)
}

/// Read access to the f16 elements of a contiguous CPU cache tensor.
pub(crate) struct F16Data<'a> {
    guard: candle_core::StorageRef<'a>,
    start: usize,
    len: usize,
}

impl F16Data<'_> {
    pub(crate) fn slice(&self) -> &[f16] {
        match &*self.guard {
            Storage::Cpu(cpu) => &cpu.as_slice::<f16>().expect("checked in f16_data")[self.start..][..self.len],
            _ => unreachable!("checked in f16_data"),
        }
    }
}

pub(crate) fn f16_data(t: &Tensor) -> Result<F16Data<'_>> {
    if !t.is_contiguous() {
        return Err(EngineError::InvalidArgument("f16 cache tensor is not contiguous".into()));
    }
    let (guard, layout) = t.storage_and_layout();
    let start = layout.start_offset();
    match &*guard {
        Storage::Cpu(cpu) => {
            cpu.as_slice::<f16>()?;
        }
        _ => return Err(EngineError::InvalidArgument("f16 cache tensor is not on the CPU".into())),
    }
    Ok(F16Data { guard, start, len: t.elem_count() })
}
