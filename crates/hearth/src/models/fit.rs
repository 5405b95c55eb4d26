//! Will a model run on this machine? Weights + Gemma 3's sliding-window KV cache + for a
//! vision model its projector (mmproj) as held in memory and the image encoder's activation
//! peak + a runtime allowance, against the memory that is free now. The runtime refuses a load
//! whose estimate does not fit ([`check_fits`]) before reading anything large.
//!
//! The KV cache is counted by the engine's own formula (`engine::config::KvShape::bytes`, what
//! `KvCache::new` allocates) for the engine's element types (`engine::kv_cache::KvDType`), and
//! RAM is measured by the engine's probe (`engine::memory`), so what `hearth models fit`
//! promises is what loading the model takes. A GGUF outside the catalog is measured through the
//! engine's header summary (`engine::gguf::Summary`); a projector through the engine's own plan
//! of what loading it holds (`engine::vision::VisionMemory`).

use std::path::Path;

use engine::config::KvShape;
use engine::gguf::Summary;
use engine::vision::{VisionConfig, VisionMemory};
// Re-exported: front ends name the cache type without depending on the engine.
pub use engine::kv_cache::KvDType;
use serde::Serialize;

use super::catalog::{Architecture, Catalog, CatalogEntry, HubFile, Variant};
use super::ModelsError;

const MIB: u64 = 1024 * 1024;

/// Fixed allowance for compute buffers, tokenizer and the process itself.
pub const RUNTIME_OVERHEAD_BYTES: u64 = 256 * MIB;
/// Below this fraction of available memory a model "fits"; up to all of it is "tight".
pub const FIT_FRACTION: f64 = 0.8;

/// The KV-cache shape of a catalog model (Gemma 3's layer pattern: every sixth layer global).
pub fn kv_shape(arch: &Architecture) -> KvShape {
    KvShape::gemma3(arch.layers as usize, arch.kv_heads as usize, arch.head_dim as usize, arch.sliding_window as usize)
}

/// KV-cache bytes for one sequence of `n_ctx` tokens of a catalog model.
pub fn kv_cache_bytes(arch: &Architecture, n_ctx: u64, kv: KvDType) -> u64 {
    kv_shape(arch).bytes(n_ctx, kv)
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
    /// Where a model loaded with the `auto` device runs, and why.
    pub device: engine::device::DeviceReport,
}

impl Memory {
    pub fn detect() -> Self {
        let (total_ram, available_ram) = match engine::memory::ram() {
            Some(r) => (r.total, r.available),
            None => {
                log::warn!("cannot read memory information: every model will be judged too big");
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
        Memory { total_ram, available_ram, vram, gpu_backend, device: engine::device::report() }
    }

    /// What the model has to fit in: VRAM when it is known, else available RAM.
    pub fn budget(&self) -> u64 {
        self.vram.unwrap_or(self.available_ram)
    }

    /// What a load is refused against: the [`budget`](Self::budget), or available RAM when the
    /// model is kept on the CPU (`cpu_only`). `None` when the OS told nothing (`detect` then
    /// reads 0): a load is not refused on a made-up number.
    pub fn load_budget(&self, cpu_only: bool) -> Option<u64> {
        match self.vram {
            Some(v) if !cpu_only => Some(v),
            _ => (self.total_ram > 0).then_some(self.available_ram),
        }
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
    /// The vision projector's weights as held in memory (F16 matrices as stored, the rest as
    /// f32: a little above an F16 file); 0 for a text model.
    pub mmproj_bytes: u64,
    /// The projector's file (what downloading it takes); 0 for a text model.
    pub mmproj_file_bytes: u64,
    /// The image encoder's activations for one image, beside its weights; 0 for a text model.
    pub encoder_peak_bytes: u64,
    pub kv_bytes: u64,
    pub overhead_bytes: u64,
    pub total_bytes: u64,
}

/// The estimate for `variant` at `n_ctx`; refuses a context beyond the model's maximum.
pub fn estimate(entry: &CatalogEntry, variant: &Variant, n_ctx: u64, kv: KvDType) -> Result<Estimate, ModelsError> {
    check_context(&entry.id, n_ctx, entry.context_length)?;
    let kv_bytes = kv_cache_bytes(&entry.architecture, n_ctx, kv);
    let projector = entry.mmproj_for(variant).map(|m| ProjectorCost::of_catalog(&m, &entry.architecture));
    Ok(Estimate::new(
        entry.id.clone(),
        variant.name.clone(),
        variant.quant.clone(),
        (n_ctx, entry.context_length),
        variant.size_bytes,
        projector.as_ref(),
        kv_bytes,
    ))
}

/// Refuses a context of 0 tokens or beyond model `model`'s maximum `max`.
fn check_context(model: &str, n_ctx: u64, max: u64) -> Result<(), ModelsError> {
    if n_ctx == 0 {
        return Err(ModelsError::ZeroContext);
    }
    if n_ctx > max {
        return Err(ModelsError::ContextTooLong { model: model.to_string(), requested: n_ctx, max });
    }
    Ok(())
}

impl Estimate {
    /// `context` is (requested, maximum); the total is the sum of the parts.
    fn new(
        model: String,
        variant: String,
        quant: String,
        (context, max_context): (u64, u64),
        weights_bytes: u64,
        projector: Option<&ProjectorCost>,
        kv_bytes: u64,
    ) -> Self {
        let (mmproj_bytes, mmproj_file_bytes, encoder_peak_bytes) =
            projector.map_or((0, 0, 0), |p| (p.memory.weight_bytes, p.file_bytes, p.memory.activation_peak_bytes));
        Self {
            model,
            variant,
            quant,
            context,
            max_context,
            weights_bytes,
            mmproj_bytes,
            mmproj_file_bytes,
            encoder_peak_bytes,
            kv_bytes,
            overhead_bytes: RUNTIME_OVERHEAD_BYTES,
            total_bytes: total_bytes(weights_bytes, projector, kv_bytes),
        }
    }
}

/// What a model needs in memory: its weights, its projector as held and the image encoder's
/// peak (a vision model), the KV cache, and the runtime's allowance. The one sum `models fit`,
/// the load check and a document's plan use.
pub fn total_bytes(weights_bytes: u64, projector: Option<&ProjectorCost>, kv_bytes: u64) -> u64 {
    let projector = projector.map_or(0, |p| p.memory.weight_bytes + p.memory.activation_peak_bytes);
    weights_bytes + projector + kv_bytes + RUNTIME_OVERHEAD_BYTES
}

/// A vision projector's part of an estimate: its file, and what loading and running it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectorCost {
    pub file_bytes: u64,
    pub memory: VisionMemory,
}

impl ProjectorCost {
    /// Of an mmproj file, from its header (checked as loading checks it).
    pub fn of_file(path: &Path) -> Result<Self, ModelsError> {
        let memory = VisionMemory::read(path).map_err(|e| ModelsError::gguf(path, e))?;
        let file_bytes = std::fs::metadata(path).map_err(ModelsError::io("cannot read", path))?.len();
        Ok(Self { file_bytes, memory })
    }

    /// Of a catalog model's projector before it is downloaded: Gemma 3's vision tower
    /// projecting to the model's width, its matrices F16 as in llama.cpp's mmproj files (a
    /// quantized projector would hold less: this is the upper bound).
    pub fn of_catalog(file: &HubFile, arch: &Architecture) -> Self {
        let cfg = VisionConfig::gemma3(arch.hidden as usize);
        Self {
            file_bytes: file.size_bytes,
            memory: VisionMemory::of_config(&cfg, candle_core::quantized::GgmlDType::F16),
        }
    }
}

/// The Gemma 3 hyper-parameters the engine would run `s` with; refuses a file that is not a
/// Gemma 3 text model.
fn gemma3_config(s: &Summary) -> Result<&engine::config::Config, ModelsError> {
    s.check_gemma3().map_err(|m| ModelsError::gguf_mismatch(&s.path, m))
}

/// Shape numbers and maximum context of a Gemma 3 GGUF, as the engine reads them (for
/// comparison with the catalog's).
pub fn architecture_from_gguf(s: &Summary) -> Result<(Architecture, u64), ModelsError> {
    let c = gemma3_config(s)?;
    // The engine bounds every one of these far below u32::MAX (they come from u32 keys).
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let arch = Architecture {
        layers: n(c.layers),
        hidden: n(c.hidden),
        heads: n(c.heads),
        kv_heads: n(c.kv_heads),
        head_dim: n(c.head_dim),
        sliding_window: n(c.sliding_window),
    };
    Ok((arch, c.context_length as u64))
}

/// The estimate for a Gemma 3 GGUF file (plus an optional projector), with the KV cache the
/// engine would allocate for it.
pub fn estimate_file(
    name: &str,
    s: &Summary,
    projector: Option<&ProjectorCost>,
    n_ctx: u64,
    kv: KvDType,
) -> Result<Estimate, ModelsError> {
    let config = gemma3_config(s)?;
    let max = config.context_length as u64;
    check_context(name, n_ctx, max)?;
    let kv_bytes = config.kv_shape().bytes(n_ctx, kv);
    let quant = s.quant().unwrap_or("?").to_string();
    Ok(Estimate::new(name.to_string(), quant.clone(), quant, (n_ctx, max), s.file_size, projector, kv_bytes))
}

/// The estimate for the text model at `path` with its projector at `mmproj`, from their
/// headers: what `hearth models fit` says of an installed model and what the runtime checks
/// before loading one.
pub fn estimate_installed(
    name: &str,
    path: &Path,
    mmproj: Option<&Path>,
    n_ctx: u64,
    kv: KvDType,
) -> Result<Estimate, ModelsError> {
    let summary = super::check_gemma3(path)?;
    let projector = mmproj.map(ProjectorCost::of_file).transpose()?;
    estimate_file(name, &summary, projector.as_ref(), n_ctx, kv)
}

/// Refuses a load whose estimate is more than `available` bytes, with every part in the
/// message (`ModelsError::TooBig`, the `out_of_memory` code).
pub fn check_fits(estimate: &Estimate, available: u64) -> Result<(), ModelsError> {
    if estimate.total_bytes > available {
        return Err(ModelsError::TooBig { estimate: Box::new(estimate.clone()), available });
    }
    Ok(())
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
    pub kv_type: KvDType,
    pub rows: Vec<FitRow>,
    /// `model` + `variant` of the recommendation, if anything fits.
    pub recommended: Option<(String, String)>,
}

/// Every catalog variant at `n_ctx`, with a recommendation: the largest model whose recommended
/// variant fits; failing that, the smallest whose recommended variant is tight.
pub fn fit_catalog(catalog: &Catalog, memory: &Memory, n_ctx: u64, kv: KvDType) -> Result<FitReport, ModelsError> {
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
