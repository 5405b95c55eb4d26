//! Loading a Gemma 3 vision projector ("mmproj") GGUF in llama.cpp's clip format: the geometry
//! from `clip.vision.*` metadata, every tensor's shape checked against it before anything large is
//! read, then the SigLIP encoder and the Gemma 3 projector built from the tensors.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use serde::Serialize;

use super::projector::Projector;
use super::siglip::{Block, Siglip};
use crate::config::Config;
use crate::gguf::{GgufFile, MetadataExt};
use crate::linear::Linear;
use crate::{EngineError, Result};

/// The SigLIP encoder and projector hyper-parameters of an mmproj GGUF.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisionConfig {
    /// Side of the square image the encoder reads, in pixels (896 for Gemma 3).
    pub image_size: usize,
    /// Side of one patch in pixels (14): the image is a `grid() x grid()` grid of patches.
    pub patch_size: usize,
    /// Encoder width (1152 for SigLIP-So400m).
    pub hidden: usize,
    pub ffn: usize,
    pub layers: usize,
    pub heads: usize,
    /// Epsilon of the encoder's LayerNorms and of the projector's RMSNorm.
    pub eps: f64,
    /// Side of the average-pooling window over the patch grid (4: 64x64 patches to 16x16 tokens).
    pub pool: usize,
    /// Width of the embeddings the projector writes: the text model's hidden size.
    pub projection_dim: usize,
    /// Per-channel normalisation the encoder was trained with (`(x - mean) / std` on 0..1 values).
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl VisionConfig {
    /// The vision tower of every Gemma 3 vision model (4B, 12B, 27B): SigLIP-So400m at 896x896,
    /// as llama.cpp's mmproj files describe it, projecting to a text model `projection_dim` wide.
    /// For planning memory before the mmproj is downloaded.
    pub fn gemma3(projection_dim: usize) -> Self {
        Self {
            image_size: 896,
            patch_size: 14,
            hidden: 1152,
            ffn: 4304,
            layers: 27,
            heads: 16,
            eps: 1e-6,
            pool: 4,
            projection_dim,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patches per image: the encoder's sequence length.
    pub fn patches(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Embeddings per image after pooling: the soft tokens an image takes in the prompt (256).
    pub fn tokens_per_image(&self) -> usize {
        let side = self.grid() / self.pool;
        side * side
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Values one image's pixels take as the encoder's input: 3 channels of `image_size` squared.
    pub fn pixel_len(&self) -> usize {
        3 * self.image_size * self.image_size
    }

    /// Reads and checks the geometry. `projection_dim` is taken from the projection tensor by the
    /// loader when the metadata lacks it; here it is the metadata's value or 0.
    pub fn from_metadata(md: &impl MetadataExt) -> Result<Self> {
        let arch = md.str_opt("general.architecture")?.unwrap_or("");
        if arch != "clip" {
            return Err(EngineError::Metadata {
                key: "general.architecture".into(),
                reason: format!("`{arch}` is not a vision projector (expected `clip`)"),
            });
        }
        let projector = match md.str_opt("clip.projector_type")? {
            Some(p) => Some(p),
            None => md.str_opt("clip.vision.projector_type")?,
        };
        if projector != Some("gemma3") {
            return Err(EngineError::Metadata {
                key: "clip.projector_type".into(),
                reason: format!(
                    "{} is not a Gemma 3 vision projector (expected `gemma3`)",
                    projector.map_or("missing".to_string(), |p| format!("`{p}`"))
                ),
            });
        }
        let k = |s: &str| format!("clip.vision.{s}");
        // Bounds far above any SigLIP keep a hostile header from driving huge allocations.
        let req = |name: &str, max: usize| -> Result<usize> {
            let v = md.u32_req(&k(name))? as usize;
            if v == 0 || v > max {
                return Err(EngineError::Metadata { key: k(name), reason: format!("absurd value {v}") });
            }
            Ok(v)
        };
        let image_size = req("image_size", 4096)?;
        let patch_size = req("patch_size", 256)?;
        let hidden = req("embedding_length", 1 << 14)?;
        let ffn = req("feed_forward_length", 1 << 16)?;
        let layers = req("block_count", 256)?;
        let heads = req("attention.head_count", 256)?;
        let eps = md.f32_opt(&k("attention.layer_norm_epsilon"))?.unwrap_or(1e-6) as f64;
        // llama.cpp's default for gemma3; its converter writes the key only for other values.
        let pool = md.u32_opt(&k("projector.scale_factor"))?.map_or(4, |v| v as usize);
        let projection_dim = md.u32_opt(&k("projection_dim"))?.unwrap_or(0) as usize;
        fn bad<T>(key: &str, reason: String) -> Result<T> {
            Err(EngineError::Metadata { key: format!("clip.vision.{key}"), reason })
        }
        if !image_size.is_multiple_of(patch_size) {
            return bad("patch_size", format!("{patch_size} does not divide the image size {image_size}"));
        }
        let grid = image_size / patch_size;
        if pool == 0 || !grid.is_multiple_of(pool) {
            return bad("projector.scale_factor", format!("{pool} does not divide the {grid}x{grid} patch grid"));
        }
        if !hidden.is_multiple_of(heads) {
            return bad("attention.head_count", format!("{heads} heads do not divide the width {hidden}"));
        }
        let triple = |name: &str, default: f32| -> Result<[f32; 3]> {
            match md.get_value(&k(name)) {
                None => Ok([default; 3]),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, v) in out.iter_mut().zip(a) {
                        *o = match v {
                            Value::F32(x) => *x,
                            Value::F64(x) => *x as f32,
                            other => {
                                return bad(name, format!("expected numbers, found {:?}", other.value_type()));
                            }
                        };
                    }
                    Ok(out)
                }
                Some(other) => bad(name, format!("expected 3 numbers, found {other:?}")),
            }
        };
        let image_mean = triple("image_mean", 0.5)?;
        let image_std = triple("image_std", 0.5)?;
        // The preprocessing contract (`vision` module docs) is Gemma 3's: (x - 0.5) / 0.5.
        for (name, v) in [("image_mean", image_mean), ("image_std", image_std)] {
            if v.iter().any(|x| (x - 0.5).abs() > 1e-6) {
                return bad(name, format!("{v:?}; Gemma 3's encoder expects 0.5 for every channel"));
            }
        }
        Ok(Self {
            image_size,
            patch_size,
            hidden,
            ffn,
            layers,
            heads,
            eps,
            pool,
            projection_dim,
            image_mean,
            image_std,
        })
    }
}

/// A loaded Gemma 3 vision tower: pixels in, one embedding per image soft token out.
pub struct VisionEncoder {
    cfg: VisionConfig,
    device: Device,
    siglip: Siglip,
    projector: Projector,
    weight_bytes: u64,
    resident_bytes: u64,
}

impl VisionEncoder {
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::from_gguf(&GgufFile::open(path)?, device)
    }

    pub fn from_gguf(gguf: &GgufFile, device: &Device) -> Result<Self> {
        let Plan { cfg, swapped, tensors: plan, file_bytes: total, memory } = Plan::of(gguf)?;
        // The weights as held plus one image's activations, before the first large read.
        if device.is_cpu() {
            if let Some(avail) = crate::memory::available_bytes() {
                if memory.total() > avail {
                    return Err(EngineError::InsufficientMemory { needed: memory.total(), available: avail });
                }
            }
        }
        // Each tensor is read as the plan holds it, so the plan's memory is what loading holds
        // (a name read the other way is a bug that fails every load).
        let q = |name: &str, held: Held| match plan.iter().find(|t| t.name == name) {
            Some(t) if t.held == held => gguf.tensor(name, &t.shape, device),
            _ => Err(EngineError::InvalidArgument(format!("mmproj loader: `{name}` is not planned as {held:?}"))),
        };
        // Measured from what is built, not from the plan: the plan is checked against it.
        let resident = std::cell::Cell::new(0u64);
        let dense = |name: &str| -> Result<Tensor> {
            let t = q(name, Held::Dense)?.dequantize(device)?;
            resident.set(resident.get() + (t.elem_count() * t.dtype().size_in_bytes()) as u64);
            Ok(t)
        };
        let lin = |name: &str| -> Result<Linear> {
            let l = Linear::new(q(name, Held::Matrix)?)?;
            resident.set(resident.get() + l.storage_bytes() as u64);
            Ok(l)
        };
        let (fc1, fc2) = if swapped { ("ffn_down", "ffn_up") } else { ("ffn_up", "ffn_down") };
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str, what: &str| format!("v.blk.{i}.{s}.{what}");
            blocks.push(Block {
                ln1: (dense(&n("ln1", "weight"))?, dense(&n("ln1", "bias"))?),
                q: (lin(&n("attn_q", "weight"))?, dense(&n("attn_q", "bias"))?),
                k: (lin(&n("attn_k", "weight"))?, dense(&n("attn_k", "bias"))?),
                v: (lin(&n("attn_v", "weight"))?, dense(&n("attn_v", "bias"))?),
                o: (lin(&n("attn_out", "weight"))?, dense(&n("attn_out", "bias"))?),
                ln2: (dense(&n("ln2", "weight"))?, dense(&n("ln2", "bias"))?),
                fc1: (lin(&n(fc1, "weight"))?, dense(&n(fc1, "bias"))?),
                fc2: (lin(&n(fc2, "weight"))?, dense(&n(fc2, "bias"))?),
            });
        }
        let patch_w = dense("v.patch_embd.weight")?.reshape((cfg.hidden, 3 * cfg.patch_size * cfg.patch_size))?;
        let siglip = Siglip {
            patch: (patch_w, dense("v.patch_embd.bias")?),
            position: dense("v.position_embd.weight")?,
            blocks,
            post_ln: (dense("v.post_ln.weight")?, dense("v.post_ln.bias")?),
            heads: cfg.heads,
            eps: cfg.eps,
            grid: cfg.grid(),
            patch_size: cfg.patch_size,
        };
        let projector = Projector {
            norm: dense("mm.soft_emb_norm.weight")?,
            // [vision, text] as stored: embeddings multiply it on the right.
            projection: dense(PROJECTION)?,
            grid: cfg.grid(),
            pool: cfg.pool,
            eps: cfg.eps,
        };
        Ok(Self { cfg, device: device.clone(), siglip, projector, weight_bytes: total, resident_bytes: resident.get() })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes of the weights as stored in the file.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Bytes of the weights as held in memory, measured on what was built (what
    /// `VisionMemory::read` of the file plans).
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    /// Refuses a text model this projector was not made for: its embeddings must be exactly as
    /// wide as the text model's hidden state.
    pub fn check_text_model(&self, text: &Config) -> Result<()> {
        if self.cfg.projection_dim != text.hidden {
            return Err(EngineError::MmprojMismatch { projection: self.cfg.projection_dim, text: text.hidden });
        }
        Ok(())
    }

    /// One image's embeddings `[tokens_per_image, projection_dim]` (f32) from its pixels: f32,
    /// channels first (3 x image_size x image_size), each value `(u8 / 255 - 0.5) / 0.5`.
    /// Runs on the rayon pool it is called from (see `Engine::install`).
    pub fn encode(&self, pixels: &[f32]) -> Result<Tensor> {
        let s = self.cfg.image_size;
        if pixels.len() != self.cfg.pixel_len() {
            return Err(EngineError::InvalidArgument(format!(
                "an image for this encoder is 3x{s}x{s} = {} values, got {}",
                self.cfg.pixel_len(),
                pixels.len()
            )));
        }
        self.encode_tensor(&Tensor::from_slice(pixels, (3, s, s), &self.device)?)
    }

    /// `encode` of a `[3, image_size, image_size]` f32 tensor.
    pub fn encode_tensor(&self, pixels: &Tensor) -> Result<Tensor> {
        let s = self.cfg.image_size;
        if pixels.dims() != [3, s, s] {
            return Err(EngineError::InvalidArgument(format!(
                "an image for this encoder is [3, {s}, {s}], got {:?}",
                pixels.dims()
            )));
        }
        if self.device.is_cpu() {
            self.check_room(crate::memory::available_bytes())?;
        }
        let x = self.siglip.forward(&pixels.to_dtype(candle_core::DType::F32)?.to_device(&self.device)?)?;
        self.projector.forward(&x)
    }

    /// Refuses an encoding whose activation peak (`activation_peak_bytes`) is more than
    /// `available` bytes (`None`: the OS does not say; no check), with both numbers: memory
    /// taken since the model was loaded is found here, before the first large allocation, not
    /// by the allocator.
    #[doc(hidden)]
    pub fn check_room(&self, available: Option<u64>) -> Result<()> {
        let needed = super::activation_peak_bytes(&self.cfg);
        match available {
            Some(available) if needed > available => Err(EngineError::InsufficientMemory { needed, available }),
            _ => Ok(()),
        }
    }
}

const PROJECTION: &str = "mm.input_projection.weight";

/// How the encoder holds a tensor it reads: the block matrices as `Linear` weights, everything
/// else (norms, biases, the patch and position embeddings, the projection) dequantized to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Matrix,
    Dense,
}

impl Held {
    /// Bytes of a tensor of `shape` (candle order) stored as `dtype`, once loaded on the CPU: a
    /// matrix as `Linear` holds it (`linear::held_bytes`), anything else as f32.
    fn bytes(self, dtype: GgmlDType, shape: &[usize]) -> u64 {
        let elems = shape.iter().product::<usize>() as u64;
        match (self, shape) {
            (Held::Matrix, &[out, inp]) => {
                // A quantized type whose blocks do not divide the tensor is refused by the reader.
                crate::linear::held_bytes(dtype, out, inp, &candle_core::Device::Cpu).unwrap_or(4 * elems)
            }
            _ => 4 * elems,
        }
    }
}

/// One tensor the encoder reads: its expected shape (candle order: the GGUF dimensions
/// reversed) and how it is held.
struct Planned {
    name: String,
    shape: Vec<usize>,
    held: Held,
}

/// Every tensor the encoder and projector read; the one list the shape check, the memory plan
/// and the loading use.
fn tensor_plan(cfg: &VisionConfig, ffn_swapped: bool) -> Vec<Planned> {
    let (d, f, p) = (cfg.hidden, cfg.ffn, cfg.patch_size);
    let t = |name: String, shape: Vec<usize>, held| Planned { name, shape, held };
    let dense = |name: &str, shape: Vec<usize>| t(name.to_string(), shape, Held::Dense);
    let mut plan = vec![
        dense("v.patch_embd.weight", vec![d, 3, p, p]),
        dense("v.patch_embd.bias", vec![d]),
        dense("v.position_embd.weight", vec![cfg.patches(), d]),
        dense("v.post_ln.weight", vec![d]),
        dense("v.post_ln.bias", vec![d]),
        dense("mm.soft_emb_norm.weight", vec![d]),
        dense(PROJECTION, vec![d, cfg.projection_dim]),
    ];
    let (up, down) = if ffn_swapped { (vec![d, f], vec![f, d]) } else { (vec![f, d], vec![d, f]) };
    let (up_b, down_b) = if ffn_swapped { (d, f) } else { (f, d) };
    for i in 0..cfg.layers {
        let n = |s: &str| format!("v.blk.{i}.{s}");
        for s in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            plan.push(t(n(&format!("{s}.weight")), vec![d, d], Held::Matrix));
            plan.push(t(n(&format!("{s}.bias")), vec![d], Held::Dense));
        }
        for s in ["ln1", "ln2"] {
            plan.push(t(n(&format!("{s}.weight")), vec![d], Held::Dense));
            plan.push(t(n(&format!("{s}.bias")), vec![d], Held::Dense));
        }
        plan.push(t(n("ffn_up.weight"), up.clone(), Held::Matrix));
        plan.push(t(n("ffn_up.bias"), vec![up_b], Held::Dense));
        plan.push(t(n("ffn_down.weight"), down.clone(), Held::Matrix));
        plan.push(t(n("ffn_down.bias"), vec![down_b], Held::Dense));
    }
    plan
}

/// What an mmproj costs in memory once loaded, planned before anything large is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VisionMemory {
    /// The encoder's and projector's weights as held in memory (matrices as `Linear` holds them,
    /// F16 ones as stored; norms, biases and embeddings as f32).
    pub weight_bytes: u64,
    /// The encoder's activations for one image on top of them (`activation_peak_bytes`).
    pub activation_peak_bytes: u64,
}

impl VisionMemory {
    /// Weights plus one image's activations: what loading and using the encoder takes.
    pub fn total(&self) -> u64 {
        self.weight_bytes + self.activation_peak_bytes
    }

    /// From an mmproj's header alone (checked as loading checks it; no tensor data is read).
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Plan::of(&GgufFile::open(path)?)?.memory)
    }

    /// An encoder of geometry `cfg` whose block matrices are stored as `matrices` (e.g.
    /// `VisionConfig::gemma3` in llama.cpp's F16 mmproj), before its file is at hand.
    pub fn of_config(cfg: &VisionConfig, matrices: GgmlDType) -> Self {
        let weight_bytes = tensor_plan(cfg, false).iter().map(|t| t.held.bytes(matrices, &t.shape)).sum();
        Self { weight_bytes, activation_peak_bytes: super::activation_peak_bytes(cfg) }
    }
}

/// An mmproj's header checked against the encoder it describes: the geometry, every tensor's
/// shape, and the memory loading it takes.
struct Plan {
    cfg: VisionConfig,
    swapped: bool,
    tensors: Vec<Planned>,
    /// The weights' bytes in the file.
    file_bytes: u64,
    memory: VisionMemory,
}

impl Plan {
    fn of(gguf: &GgufFile) -> Result<Self> {
        let path = gguf.path().to_owned();
        let invalid = |reason: String| EngineError::InvalidGguf { path: path.clone(), reason };
        let mut cfg = VisionConfig::from_metadata(gguf).map_err(|e| match e {
            EngineError::Metadata { key, reason } if key == "general.architecture" || key == "clip.projector_type" => {
                EngineError::UnsupportedModel { path: path.clone(), reason }
            }
            other => other,
        })?;
        // The projection's output width is the text width; the metadata may omit it.
        let proj = gguf.tensor_info(PROJECTION).ok_or_else(|| invalid(format!("tensor `{PROJECTION}` is missing")))?;
        let text = match proj.shape.dims() {
            [v, t] if *v == cfg.hidden => *t,
            d => {
                return Err(invalid(format!(
                    "tensor `{PROJECTION}` has shape {d:?}, expected [{}, text width]",
                    cfg.hidden
                )))
            }
        };
        if cfg.projection_dim != 0 && cfg.projection_dim != text {
            return Err(invalid(format!(
                "clip.vision.projection_dim is {} but `{PROJECTION}` projects to {text}",
                cfg.projection_dim
            )));
        }
        cfg.projection_dim = text;
        // llama.cpp swaps ffn_up/ffn_down when their shapes show they were written the other way
        // round; so do we. (With ffn == hidden the shapes cannot tell, and the names are taken.)
        let swapped = cfg.ffn != cfg.hidden
            && gguf.tensor_info("v.blk.0.ffn_up.weight").map(|i| i.shape.dims()) == Some(&[cfg.hidden, cfg.ffn][..]);
        let tensors = tensor_plan(&cfg, swapped);
        let (mut file_bytes, mut weight_bytes) = (0u64, 0u64);
        for t in &tensors {
            let info = gguf.tensor_info(&t.name).ok_or_else(|| invalid(format!("tensor `{}` is missing", t.name)))?;
            if info.shape.dims() != t.shape.as_slice() {
                return Err(invalid(format!(
                    "tensor `{}` has shape {:?}, expected {:?}",
                    t.name,
                    info.shape.dims(),
                    t.shape
                )));
            }
            let elems = info.shape.elem_count() as u64;
            file_bytes += crate::gguf::tensor_bytes(info.ggml_dtype, elems).unwrap_or(0);
            weight_bytes += t.held.bytes(info.ggml_dtype, &t.shape);
        }
        let memory = VisionMemory { weight_bytes, activation_peak_bytes: super::activation_peak_bytes(&cfg) };
        Ok(Self { cfg, swapped, tensors, file_bytes, memory })
    }
}
