//! Will a model run on this machine? Weights + Gemma 3's sliding-window KV cache + a runtime
//! allowance, against the memory that is free now.
//!
//! KV formula (Hearth's engine keeps exactly `window` tokens in a local layer, so no padding):
//!   per layer-token bytes = 2 (K and V) x kv_heads x head_dim x bytes(kv type)
//!   KV = per layer-token x [n_global x n_ctx + n_local x min(n_ctx, window)]
//! with n_global = layers / 6 (every sixth layer is global) and n_local = the rest.
//! `kv_cache_bytes_llama_cpp` gives llama.cpp's padded variant for comparison with its numbers.

use serde::Serialize;

use super::catalog::{Architecture, Catalog, CatalogEntry, Variant};
use super::gguf_check::GgufSummary;
use super::ModelsError;

const MIB: u64 = 1024 * 1024;

/// Fixed allowance for compute buffers, tokenizer and the process itself.
pub const RUNTIME_OVERHEAD_BYTES: u64 = 256 * MIB;
/// Below this fraction of available memory a model "fits"; up to all of it is "tight".
pub const FIT_FRACTION: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    F16,
    F32,
    Q8_0,
}

impl KvType {
    /// Bytes per element, as a fraction (Q8_0 is 34 bytes per 32 values).
    fn bytes_num_den(self) -> (u64, u64) {
        match self {
            KvType::F16 => (2, 1),
            KvType::F32 => (4, 1),
            KvType::Q8_0 => (34, 32),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Some(KvType::F16),
            "f32" => Some(KvType::F32),
            "q8_0" => Some(KvType::Q8_0),
            _ => None,
        }
    }
}

/// Number of (global, local) attention layers: layer i is global when (i + 1) % 6 == 0.
pub fn layer_split(arch: &Architecture) -> (u64, u64) {
    let global = u64::from(arch.layers / 6);
    (global, u64::from(arch.layers) - global)
}

/// KV-cache bytes for one sequence of `n_ctx` tokens, Hearth's layout (see module docs).
pub fn kv_cache_bytes(arch: &Architecture, n_ctx: u64, kv: KvType) -> u64 {
    let (global, local) = layer_split(arch);
    let cells = global * n_ctx + local * n_ctx.min(u64::from(arch.sliding_window));
    per_cell_bytes(arch, cells, kv)
}

/// llama.cpp's iSWA layout: the local part holds window + ubatch cells, padded to 256.
pub fn kv_cache_bytes_llama_cpp(arch: &Architecture, n_ctx: u64, kv: KvType, n_ubatch: u64) -> u64 {
    let (global, local) = layer_split(arch);
    let local_cells = n_ctx.min(u64::from(arch.sliding_window) + n_ubatch).div_ceil(256) * 256;
    per_cell_bytes(arch, global * n_ctx + local * local_cells, kv)
}

fn per_cell_bytes(arch: &Architecture, layer_tokens: u64, kv: KvType) -> u64 {
    let (num, den) = kv.bytes_num_den();
    2 * u64::from(arch.kv_heads) * u64::from(arch.head_dim) * layer_tokens * num / den
}

/// Free memory of the largest NVIDIA GPU, asked of the driver through `nvidia-smi` (which ships
/// with it). sysinfo's GPU list was tried first and found nothing on an H200 server: it walks
/// `/sys/class/drm`, which datacenter GPUs without nvidia-drm do not populate.
pub fn gpu_free_memory() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_nvidia_smi_free(&String::from_utf8_lossy(&out.stdout))
}

/// One line per GPU, free memory in MiB; the largest wins.
pub fn parse_nvidia_smi_free(text: &str) -> Option<u64> {
    text.lines().filter_map(|l| l.trim().parse::<u64>().ok()).map(|mib| mib * MIB).max()
}

/// The memory a model can use, measured now.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub total_ram: u64,
    pub available_ram: u64,
    /// Free dedicated GPU memory (largest GPU) where the CUDA backend is compiled in and the
    /// driver answers. Metal shares system RAM, so it has none.
    pub vram: Option<u64>,
    /// The GPU backend compiled into this build, if any.
    pub gpu_backend: Option<&'static str>,
}

impl Memory {
    pub fn detect() -> Self {
        let (total_ram, available_ram) = match sysinfo::System::new() {
            Ok(mut sys) => {
                sys.refresh_memory();
                (sys.total_memory(), sys.available_memory())
            }
            Err(e) => {
                log::warn!("cannot read memory information: {e}");
                (0, 0)
            }
        };
        let gpu_backend = if cfg!(feature = "cuda") {
            Some("cuda")
        } else if cfg!(feature = "metal") {
            Some("metal")
        } else {
            None
        };
        // Only a CUDA build puts the model in VRAM; Metal shares system RAM.
        let vram = if cfg!(feature = "cuda") { gpu_free_memory() } else { None };
        Memory { total_ram, available_ram, vram, gpu_backend }
    }

    /// What the model has to fit in: VRAM when it is known, else available RAM.
    pub fn budget(&self) -> u64 {
        self.vram.unwrap_or(self.available_ram)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Fits,
    Tight,
    TooBig,
    /// The requested context is beyond the model's maximum.
    ContextTooLong,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::Tight => "tight",
            Verdict::TooBig => "too big",
            Verdict::ContextTooLong => "context too long",
        }
    }
}

/// Memory needed by one model variant at one context length.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub model: String,
    pub variant: String,
    pub quant: String,
    pub context: u64,
    pub max_context: u64,
    pub weights_bytes: u64,
    pub mmproj_bytes: u64,
    pub kv_bytes: u64,
    pub overhead_bytes: u64,
    pub total_bytes: u64,
}

/// The estimate for `variant` at `n_ctx`; refuses a context beyond the model's maximum.
pub fn estimate(entry: &CatalogEntry, variant: &Variant, n_ctx: u64, kv: KvType) -> Result<Estimate, ModelsError> {
    if n_ctx == 0 {
        return Err(ModelsError::ZeroContext);
    }
    if n_ctx > entry.context_length {
        return Err(ModelsError::ContextTooLong {
            model: entry.id.clone(),
            requested: n_ctx,
            max: entry.context_length,
        });
    }
    let kv_bytes = kv_cache_bytes(&entry.architecture, n_ctx, kv);
    let mmproj_bytes = entry.mmproj_for(variant).map_or(0, |m| m.size_bytes);
    let weights_bytes = variant.size_bytes;
    Ok(Estimate {
        model: entry.id.clone(),
        variant: variant.name.clone(),
        quant: variant.quant.clone(),
        context: n_ctx,
        max_context: entry.context_length,
        weights_bytes,
        mmproj_bytes,
        kv_bytes,
        overhead_bytes: RUNTIME_OVERHEAD_BYTES,
        total_bytes: weights_bytes + mmproj_bytes + kv_bytes + RUNTIME_OVERHEAD_BYTES,
    })
}

/// Shape numbers and maximum context from a Gemma 3 GGUF header (for models outside the
/// catalog, e.g. imports).
pub fn architecture_from_gguf(s: &GgufSummary) -> Result<(Architecture, u64), ModelsError> {
    let get = |key: &str| {
        s.metadata.get(&format!("gemma3.{key}")).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok())
    };
    let need = |key: &str| {
        get(key).ok_or_else(|| ModelsError::InvalidGguf {
            path: s.path.clone(),
            reason: format!("gemma3.{key} is missing from its metadata"),
        })
    };
    let layers = need("block_count")?;
    let heads = need("attention.head_count")?;
    let arch = Architecture {
        layers,
        hidden: need("embedding_length")?,
        heads,
        kv_heads: get("attention.head_count_kv").unwrap_or(heads),
        // Gemma 3's head size is 256 except the 27B's 128; GGUFs normally state it.
        head_dim: need("attention.key_length")?,
        // Early GGUFs may lack it: 512 for the two small sizes, 1024 from 4B (34 layers) up.
        sliding_window: get("attention.sliding_window").unwrap_or(if layers <= 26 { 512 } else { 1024 }),
    };
    let max_ctx = s.context_length().unwrap_or(32_768);
    Ok((arch, max_ctx))
}

/// The estimate for a GGUF file (plus an optional projector of `mmproj_bytes`).
pub fn estimate_file(name: &str, s: &GgufSummary, mmproj_bytes: u64, n_ctx: u64, kv: KvType) -> Result<Estimate, ModelsError> {
    let (arch, max) = architecture_from_gguf(s)?;
    if n_ctx == 0 {
        return Err(ModelsError::ZeroContext);
    }
    if n_ctx > max {
        return Err(ModelsError::ContextTooLong { model: name.to_string(), requested: n_ctx, max });
    }
    let kv_bytes = kv_cache_bytes(&arch, n_ctx, kv);
    Ok(Estimate {
        model: name.to_string(),
        variant: s.quant().unwrap_or("?").to_string(),
        quant: s.quant().unwrap_or("?").to_string(),
        context: n_ctx,
        max_context: max,
        weights_bytes: s.file_size,
        mmproj_bytes,
        kv_bytes,
        overhead_bytes: RUNTIME_OVERHEAD_BYTES,
        total_bytes: s.file_size + mmproj_bytes + kv_bytes + RUNTIME_OVERHEAD_BYTES,
    })
}

/// fits: at most 80% of the budget; tight: within the budget, or within 90% of total RAM (other
/// programs could be closed); too big: otherwise.
pub fn verdict(total_bytes: u64, memory: &Memory) -> Verdict {
    let budget = memory.budget() as f64;
    let need = total_bytes as f64;
    if need <= budget * FIT_FRACTION {
        Verdict::Fits
    } else if need <= budget || (memory.vram.is_none() && need <= memory.total_ram as f64 * 0.9) {
        Verdict::Tight
    } else {
        Verdict::TooBig
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FitRow {
    pub verdict: Verdict,
    pub recommended_variant: bool,
    /// None when the context is beyond the model's maximum.
    pub estimate: Option<Estimate>,
    pub model: String,
    pub variant: String,
    pub max_context: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub memory: Memory,
    pub context: u64,
    pub kv_type: KvType,
    pub rows: Vec<FitRow>,
    /// `model` + `variant` of the recommendation, if anything fits.
    pub recommended: Option<(String, String)>,
}

/// Every catalog variant at `n_ctx`, with a recommendation: the largest model whose recommended
/// variant fits; failing that, the smallest whose recommended variant is tight.
pub fn fit_catalog(catalog: &Catalog, memory: &Memory, n_ctx: u64, kv: KvType) -> Result<FitReport, ModelsError> {
    if n_ctx == 0 {
        return Err(ModelsError::ZeroContext);
    }
    let mut rows = Vec::new();
    for entry in &catalog.models {
        for variant in &entry.variants {
            let row = match estimate(entry, variant, n_ctx, kv) {
                Ok(e) => FitRow {
                    verdict: verdict(e.total_bytes, memory),
                    recommended_variant: variant.name == entry.recommended,
                    estimate: Some(e),
                    model: entry.id.clone(),
                    variant: variant.name.clone(),
                    max_context: entry.context_length,
                },
                Err(ModelsError::ContextTooLong { .. }) => FitRow {
                    verdict: Verdict::ContextTooLong,
                    recommended_variant: variant.name == entry.recommended,
                    estimate: None,
                    model: entry.id.clone(),
                    variant: variant.name.clone(),
                    max_context: entry.context_length,
                },
                Err(e) => return Err(e),
            };
            rows.push(row);
        }
    }
    let weight = |r: &FitRow| r.estimate.as_ref().map_or(0, |e| e.weights_bytes);
    let candidates = || rows.iter().filter(|r| r.recommended_variant);
    let recommended = candidates()
        .filter(|r| r.verdict == Verdict::Fits)
        .max_by_key(|r| weight(r))
        .or_else(|| candidates().filter(|r| r.verdict == Verdict::Tight).min_by_key(|r| weight(r)))
        .map(|r| (r.model.clone(), r.variant.clone()));
    Ok(FitReport { memory: memory.clone(), context: n_ctx, kv_type: kv, rows, recommended })
}
