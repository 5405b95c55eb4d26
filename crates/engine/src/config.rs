//! Gemma 3 hyper-parameters, all read from GGUF metadata, with the known mistakes of early GGUFs
//! corrected by model size (as Ollama does) and each correction logged.

use candle_core::quantized::gguf_file::Value;
use serde::Serialize;

use crate::gguf::MetadataExt;
use crate::kv_cache::KvDType;
use crate::{EngineError, Result};

/// The sizes Gemma 3 ships in, told apart by layer count (the GGUFs carry no size field we can
/// trust).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ModelSize {
    M270,
    B1,
    B4,
    B12,
    B27,
    Other,
}

impl ModelSize {
    fn from_layers(layers: usize) -> Self {
        match layers {
            18 => Self::M270,
            26 => Self::B1,
            34 => Self::B4,
            48 => Self::B12,
            62 => Self::B27,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub size: ModelSize,
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub rms_eps: f64,
    /// The context the model was trained for.
    pub context_length: usize,
    /// Local layers attend to this many positions: the query's own and the `window - 1` before.
    pub sliding_window: usize,
    /// `is_global[i]` for each layer.
    pub is_global: Vec<bool>,
    pub rope_local_base: f32,
    pub rope_global_base: f32,
    /// Linear RoPE scaling on global layers only (positions divided by it); 1.0 for none.
    pub rope_global_scale: f32,
    /// Multiplies q·k: 1/sqrt(query_pre_attn_scalar).
    pub attn_scale: f64,
    /// Gemma 3 has none; kept so a future model that does can be honoured.
    pub final_logit_softcap: Option<f64>,
    /// What was corrected in the metadata, for logs and `hearth` output.
    pub corrections: Vec<String>,
}

impl Config {
    pub fn from_metadata(md: &impl MetadataExt, vocab_size: usize) -> Result<Self> {
        let arch = md.str_opt("general.architecture")?.unwrap_or("");
        if arch != "gemma3" {
            return Err(EngineError::Metadata {
                key: "general.architecture".into(),
                reason: format!("`{arch}` is not a Gemma 3 model (expected `gemma3`)"),
            });
        }
        let k = |s: &str| format!("gemma3.{s}");
        let hidden = md.u32_req(&k("embedding_length"))? as usize;
        let layers = md.u32_req(&k("block_count"))? as usize;
        let heads = md.u32_req(&k("attention.head_count"))? as usize;
        let kv_heads = md.u32_opt(&k("attention.head_count_kv"))?.map_or(heads, |v| v as usize);
        let ffn = md.u32_req(&k("feed_forward_length"))? as usize;
        let size = ModelSize::from_layers(layers);
        let mut corrections = Vec::new();

        for (name, v) in [
            ("embedding_length", hidden),
            ("block_count", layers),
            ("attention.head_count", heads),
            ("attention.head_count_kv", kv_heads),
            ("feed_forward_length", ffn),
        ] {
            // Bounds far above any Gemma 3 keep a hostile header from driving huge allocations.
            if v == 0 || v > 1 << 16 {
                return Err(EngineError::Metadata { key: k(name), reason: format!("absurd value {v}") });
            }
        }
        if !heads.is_multiple_of(kv_heads) {
            return Err(EngineError::Metadata {
                key: k("attention.head_count_kv"),
                reason: format!("{heads} heads are not a multiple of {kv_heads} kv heads"),
            });
        }
        let head_dim = md.u32_opt(&k("attention.key_length"))?.map_or(hidden / heads, |v| v as usize);
        if let Some(v) = md.u32_opt(&k("attention.value_length"))? {
            if v as usize != head_dim {
                return Err(EngineError::Metadata {
                    key: k("attention.value_length"),
                    reason: format!("{v} differs from key_length {head_dim}; Gemma 3 uses one head size"),
                });
            }
        }
        if head_dim == 0 || head_dim % 2 != 0 || head_dim > 1024 {
            return Err(EngineError::Metadata {
                key: k("attention.key_length"),
                reason: format!("absurd head size {head_dim}"),
            });
        }
        let rms_eps = md.f32_opt(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6) as f64;
        let context_length = md.u32_opt(&k("context_length"))?.map_or(32768, |v| v as usize);
        let default_window = if matches!(size, ModelSize::M270 | ModelSize::B1) { 512 } else { 1024 };
        let sliding_window = md.u32_opt(&k("attention.sliding_window"))?.map_or(default_window, |v| v as usize);
        if sliding_window == 0 {
            return Err(EngineError::Metadata { key: k("attention.sliding_window"), reason: "zero".into() });
        }
        let is_global = layer_pattern(md, &k("attention.sliding_window_pattern"), layers)?;

        let rope_global_base = md.f32_opt(&k("rope.freq_base"))?.unwrap_or(1_000_000.0);
        let rope_local_base = md.f32_opt(&k("rope.freq_base_swa"))?.unwrap_or(10_000.0);
        let rope_global_scale = match md.f32_opt(&k("rope.scaling.factor"))? {
            Some(f) if f > 0.0 => f,
            Some(f) => {
                return Err(EngineError::Metadata {
                    key: k("rope.scaling.factor"),
                    reason: format!("invalid factor {f}"),
                })
            }
            None if matches!(size, ModelSize::B4 | ModelSize::B12 | ModelSize::B27) => {
                corrections.push(format!(
                    "rope.scaling.factor missing: using 8.0 on global layers, as Gemma 3 {size:?} was trained"
                ));
                8.0
            }
            None => 1.0,
        };
        // Gemma 3 27B scales queries by 1/sqrt(hidden/heads) = 1/sqrt(168), not 1/sqrt(head_dim);
        // the GGUF has no key for it, so follow llama.cpp and decide by size.
        let query_pre_attn_scalar = match md.f32_opt(&k("attention.query_pre_attn_scalar"))? {
            Some(s) if s > 0.0 => s as f64,
            _ if size == ModelSize::B27 => (hidden / heads) as f64,
            _ => head_dim as f64,
        };
        let final_logit_softcap = match md.f32_opt(&k("final_logit_softcapping"))? {
            Some(c) if c > 0.0 => {
                corrections.push(format!(
                    "final_logit_softcapping {c} ignored: Gemma 3 has no final soft-cap (early GGUFs carry a wrong one)"
                ));
                None
            }
            _ => None,
        };
        for c in &corrections {
            log::warn!("gemma3 metadata: {c}");
        }
        Ok(Self {
            size,
            vocab_size,
            hidden,
            layers,
            heads,
            kv_heads,
            head_dim,
            ffn,
            rms_eps,
            context_length,
            sliding_window,
            is_global,
            rope_local_base,
            rope_global_base,
            rope_global_scale,
            attn_scale: 1.0 / query_pre_attn_scalar.sqrt(),
            final_logit_softcap,
            corrections,
        })
    }

    pub fn n_global(&self) -> usize {
        self.is_global.iter().filter(|g| **g).count()
    }

    pub fn n_local(&self) -> usize {
        self.layers - self.n_global()
    }

    /// What the KV-cache size depends on.
    pub fn kv_shape(&self) -> KvShape {
        KvShape {
            n_global: self.n_global(),
            n_local: self.n_local(),
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            sliding_window: self.sliding_window,
        }
    }

    /// Bytes of K and V for one position of one layer in a cache of element type `dtype`.
    pub fn kv_bytes_per_token_layer(&self, dtype: KvDType) -> usize {
        self.kv_shape().bytes_per_token_layer(dtype) as usize
    }

    /// The KV-cache size the sliding-window design allows for a context of `ctx` positions
    /// (see `KvShape::bytes`). Exactly what `KvCache::new` allocates for the same `ctx` and
    /// `dtype`.
    pub fn kv_bytes(&self, ctx: usize, dtype: KvDType) -> usize {
        self.kv_shape().bytes(ctx as u64, dtype) as usize
    }
}

/// Gemma 3's layer pattern when a GGUF does not state one: every sixth layer (i + 1 divisible by
/// 6) is global, the rest are local (sliding-window).
pub const GEMMA3_GLOBAL_PERIOD: usize = 6;

/// The numbers a Gemma 3 KV cache's size depends on. `Config::kv_shape` gives them for a loaded
/// file; `KvShape::gemma3` for shape numbers from elsewhere (the model catalog), so
/// `hearth models fit` and the engine's allocation share one formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KvShape {
    pub n_global: usize,
    pub n_local: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub sliding_window: usize,
}

impl KvShape {
    /// A model with Gemma 3's default layer pattern (`GEMMA3_GLOBAL_PERIOD`).
    pub fn gemma3(layers: usize, kv_heads: usize, head_dim: usize, sliding_window: usize) -> Self {
        let n_global = layers / GEMMA3_GLOBAL_PERIOD;
        Self { n_global, n_local: layers - n_global, kv_heads, head_dim, sliding_window }
    }

    /// Bytes of K and V for one position of one layer.
    pub fn bytes_per_token_layer(&self, dtype: KvDType) -> u64 {
        2 * self.kv_heads as u64 * self.head_dim as u64 * dtype.size_in_bytes() as u64
    }

    /// The cache for `ctx` positions: global layers hold all of them, local layers at most
    /// `sliding_window` (a ring buffer of exactly that many; llama.cpp pads its local part to
    /// window + ubatch rounded up to 256 cells, so its figures are larger). u64 so a 27B at
    /// 128K (about 11 GB) cannot overflow on any target.
    pub fn bytes(&self, ctx: u64, dtype: KvDType) -> u64 {
        let cells = self.n_global as u64 * ctx + self.n_local as u64 * ctx.min(self.sliding_window as u64);
        self.bytes_per_token_layer(dtype) * cells
    }
}

/// Which layers are global. GGUFs say it as a period (`N`: every N-th layer is global), as a
/// per-layer array of "is sliding" flags, or not at all (Gemma 3's period of 6).
fn layer_pattern(md: &impl MetadataExt, key: &str, layers: usize) -> Result<Vec<bool>> {
    match md.get_value(key) {
        Some(Value::Array(flags)) => {
            if flags.len() != layers {
                return Err(EngineError::Metadata {
                    key: key.into(),
                    reason: format!("{} entries for {layers} layers", flags.len()),
                });
            }
            flags
                .iter()
                .map(|f| match f {
                    Value::Bool(sliding) => Ok(!sliding),
                    other => Err(EngineError::Metadata {
                        key: key.into(),
                        reason: format!("expected booleans, found {:?}", other.value_type()),
                    }),
                })
                .collect()
        }
        _ => {
            let period = md.u32_opt(key)?.map_or(GEMMA3_GLOBAL_PERIOD, |p| p.max(1) as usize);
            Ok((0..layers).map(|i| (i + 1) % period == 0).collect())
        }
    }
}
