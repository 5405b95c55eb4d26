//! The Gemma 3 forward pass: embeddings scaled by sqrt(hidden), then per layer
//! `x += post_norm(attn(pre_norm(x)))`, `x += post_norm(mlp(pre_norm(x)))` with QK-norm, RoPE per
//! layer type and a GeGLU (tanh-GELU) feed-forward, then the final norm and the tied output.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use candle_core::cpu::kernels::VecOps;
use candle_core::quantized::gguf_file::TensorInfo;
use candle_core::{CpuStorage, Device, InplaceOp1, Layout, Tensor};
use candle_nn::ops::{rms_norm, softmax_last_dim};
use candle_nn::rotary_emb::rope_thd;

use crate::attention::{self, Rows, Visible};
use crate::config::Config;
use crate::gelu::GeluMul;
use crate::gguf::GgufFile;
use crate::kv_cache::{self, KvCache, KvDType, LayerKv};
use crate::kv_kernels;
use crate::linear::pool::{par_for, threads, SendPtr};
use crate::linear::{kernels, Embedding, Linear};
use crate::{EngineError, Result};

/// One image's embeddings (`[tokens, hidden]`) in a forward call, from token `offset` of its ids.
#[derive(Debug, Clone, Copy)]
pub struct ImageAt<'a> {
    pub offset: usize,
    pub embeddings: &'a Tensor,
}

/// Which logits a forward call computes. The output projection over a 262k vocabulary is the
/// most expensive matmul per token, so prompt chunks skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    None,
    Last,
    All,
}

struct Layer {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
    post_attn_norm: Tensor,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Tensor,
    global: bool,
}

pub struct Model {
    cfg: Config,
    device: Device,
    /// Our CPU kernels (in-place softmax and GELU, f16 KV attention); `false`: candle's ops only,
    /// as on a GPU (see `linear::native_on`).
    native: bool,
    embed: Embedding,
    layers: Vec<Layer>,
    output_norm: Tensor,
    output: Linear,
    /// RoPE inverse frequencies, already divided by the linear scaling factor, per layer type.
    inv_freq_local: Vec<f64>,
    inv_freq_global: Vec<f64>,
    weight_bytes: usize,
}

impl Model {
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let gguf = GgufFile::open(path)?;
        Self::from_gguf(&gguf, device)
    }

    pub fn from_gguf(gguf: &GgufFile, device: &Device) -> Result<Self> {
        Self::from_gguf_with_progress(gguf, device, &mut |_| {})
    }

    /// `from_gguf`, reporting the fraction of weight bytes read so far (0..=1).
    pub fn from_gguf_with_progress(gguf: &GgufFile, device: &Device, progress: &mut dyn FnMut(f32)) -> Result<Self> {
        let unsupported = |reason: String| EngineError::UnsupportedModel { path: gguf.path().to_owned(), reason };
        let embd =
            gguf.tensor_info("token_embd.weight").ok_or_else(|| unsupported("no `token_embd.weight` tensor".into()))?;
        let vocab = match embd.shape.dims() {
            [v, _] => *v,
            d => return Err(unsupported(format!("`token_embd.weight` has shape {d:?}, expected 2 dimensions"))),
        };
        let cfg = Config::from_metadata(gguf, vocab).map_err(|e| match e {
            EngineError::Metadata { key, reason } if key == "general.architecture" => unsupported(reason),
            other => other,
        })?;
        let plan = tensor_plan(&cfg, gguf.tensor_info("output.weight").is_some());
        // Check every shape and the total size before the first large read, so a bad file or
        // a model too big for this machine fails fast without allocating.
        let mut total = 0u64;
        for (name, shape) in &plan {
            let info = gguf.tensor_info(name).ok_or_else(|| EngineError::InvalidGguf {
                path: gguf.path().to_owned(),
                reason: format!("tensor `{name}` is missing"),
            })?;
            if info.shape.dims() != shape.as_slice() {
                return Err(EngineError::InvalidGguf {
                    path: gguf.path().to_owned(),
                    reason: format!("tensor `{name}` has shape {:?}, expected {:?}", info.shape.dims(), shape),
                });
            }
            total += tensor_bytes(info);
        }
        // Weights stay quantized wherever they go. On a GPU they must all fit its memory: there
        // is no partial offload to the CPU (yet), so a model too big for VRAM is refused here.
        let available =
            if device.is_cpu() { crate::memory::available_bytes() } else { crate::memory::device_free_bytes(device) };
        if let Some(avail) = available {
            if total > avail {
                return Err(EngineError::InsufficientMemory { needed: total, available: avail });
            }
        }

        // Loading takes each shape from the plan, once: a tensor loaded but not in the plan, or
        // in the plan but never loaded, is a bug that fails every load (below and in `t`).
        let unloaded: RefCell<HashMap<&str, &[usize]>> =
            RefCell::new(plan.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect());
        // Bytes read so far, for `progress`; a RefCell because both closures below report.
        let done = RefCell::new((0u64, progress));
        let t = |name: &str| -> Result<_> {
            let shape = unloaded.borrow_mut().remove(name);
            let shape = shape.unwrap_or_else(|| panic!("tensor `{name}` is not in `tensor_plan`, or loaded twice"));
            let tensor = gguf.tensor(name, shape, device)?;
            if let Some(info) = gguf.tensor_info(name) {
                let mut d = done.borrow_mut();
                d.0 += tensor_bytes(info);
                let fraction = (d.0 as f64 / total.max(1) as f64).min(1.0) as f32;
                (d.1)(fraction);
            }
            Ok(tensor)
        };
        let norm = |name: &str| -> Result<Tensor> { Ok(t(name)?.dequantize(device)?) };
        // The embedding first: it is the largest tensor, read while memory is still empty.
        let embd = t("token_embd.weight")?;
        let output = match gguf.tensor_info("output.weight") {
            Some(_) => Linear::new(t("output.weight")?)?,
            None => Linear::new(embd.clone())?,
        };
        let embed = Embedding::new(embd)?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str| layer_tensor_name(i, s);
            let lin = |s: &str| -> Result<Linear> { Linear::new(t(&n(s))?) };
            layers.push(Layer {
                attn_norm: norm(&n("attn_norm"))?,
                q: lin("attn_q")?,
                k: lin("attn_k")?,
                v: lin("attn_v")?,
                o: lin("attn_output")?,
                q_norm: norm(&n("attn_q_norm"))?,
                k_norm: norm(&n("attn_k_norm"))?,
                post_attn_norm: norm(&n("post_attention_norm"))?,
                ffn_norm: norm(&n("ffn_norm"))?,
                gate: lin("ffn_gate")?,
                up: lin("ffn_up")?,
                down: lin("ffn_down")?,
                post_ffn_norm: norm(&n("post_ffw_norm"))?,
                global: cfg.is_global[i],
            });
        }
        let output_norm = norm("output_norm.weight")?;
        let left = unloaded.borrow();
        assert!(left.is_empty(), "tensors in `tensor_plan` but never loaded: {:?}", left.keys());
        let hd = cfg.head_dim;
        let inv_freq = |base: f32, scale: f32| -> Vec<f64> {
            (0..hd / 2).map(|i| (base as f64).powf(-((2 * i) as f64) / hd as f64) / scale as f64).collect()
        };
        let inv_freq_local = inv_freq(cfg.rope_local_base, 1.0);
        let inv_freq_global = inv_freq(cfg.rope_global_base, cfg.rope_global_scale);
        Ok(Self {
            cfg,
            device: device.clone(),
            native: crate::linear::native_on(device),
            embed,
            layers,
            output_norm,
            output,
            inv_freq_local,
            inv_freq_global,
            weight_bytes: total as usize,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes of all weights as loaded.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// A cache of `capacity` positions with the default element type (f16).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        self.new_cache_with(capacity, KvDType::default())
    }

    pub fn new_cache_with(&self, capacity: usize, dtype: KvDType) -> Result<KvCache> {
        KvCache::new(&self.cfg, capacity, dtype, &self.device)
    }

    /// Runs `ids` at positions `cache.len()..`, appends their keys and values to `cache`, and
    /// returns the requested logits (`[rows, vocab]` f32). Callers split long prompts into chunks
    /// (any size works; about 512 is fastest). Its parallel work runs on the rayon pool it is
    /// called from: `Session` and `Engine::install` call it on the engine's CPU threads.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, want: Logits) -> Result<Option<Tensor>> {
        self.forward_with_images(ids, &[], cache, want)
    }

    /// `forward` with image embeddings in place of some of the tokens' embeddings: each image's
    /// rows replace the rows of the tokens from its `offset`, unscaled (text embeddings are scaled
    /// by sqrt(hidden), image embeddings are not), and an image's tokens attend to each other in
    /// both directions in every layer, as in Gemma 3's reference. An image must lie whole in `ids`.
    pub fn forward_with_images(
        &self,
        ids: &[u32],
        images: &[ImageAt<'_>],
        cache: &mut KvCache,
        want: Logits,
    ) -> Result<Option<Tensor>> {
        let n = ids.len();
        if n == 0 {
            return Err(EngineError::InvalidArgument("forward needs at least one token".into()));
        }
        let pos = cache.len;
        if pos + n > cache.capacity {
            return Err(EngineError::ContextOverflow { tokens: pos + n, context: cache.capacity });
        }
        let eps = self.cfg.rms_eps;
        let mut x = (self.embed.lookup(ids)? * (self.cfg.hidden as f64).sqrt())?;
        // Absolute positions of each image's tokens: the blocks that see each other both ways.
        let mut blocks: Vec<Range<usize>> = Vec::with_capacity(images.len());
        for im in images {
            let rows = match im.embeddings.dims() {
                [r, h] if *h == self.cfg.hidden => *r,
                d => {
                    return Err(EngineError::InvalidArgument(format!(
                        "image embeddings of shape {d:?}, expected [tokens, {}]",
                        self.cfg.hidden
                    )))
                }
            };
            let span = im.offset..im.offset + rows;
            if rows == 0 || span.end > n || blocks.last().is_some_and(|b| b.end > pos + span.start) {
                return Err(EngineError::InvalidArgument(format!(
                    "image at tokens {span:?} of a {n}-token call: images must lie whole in it, in order, apart"
                )));
            }
            x = x.slice_scatter0(&im.embeddings.to_dtype(x.dtype())?.to_device(x.device())?, im.offset)?;
            blocks.push(pos + span.start..pos + span.end);
        }
        let (cos_l, sin_l) = self.rope_tables(&self.inv_freq_local, pos, n)?;
        let (cos_g, sin_g) = self.rope_tables(&self.inv_freq_global, pos, n)?;
        let (window, dtype) = (cache.window, cache.dtype);
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let (cos, sin) = if layer.global { (&cos_g, &sin_g) } else { (&cos_l, &sin_l) };
            let h = rms_norm(&x, &layer.attn_norm, eps as f32)?;
            let h = self.attention(layer, kv, dtype, &h, pos, window, cos, sin, &blocks)?;
            x = (x + rms_norm(&h, &layer.post_attn_norm, eps as f32)?)?;
            let h = self.mlp(layer, &rms_norm(&x, &layer.ffn_norm, eps as f32)?)?;
            x = (x + rms_norm(&h, &layer.post_ffn_norm, eps as f32)?)?;
        }
        cache.len = pos + n;
        let x = match want {
            Logits::None => return Ok(None),
            Logits::Last => x.narrow(0, n - 1, 1)?,
            Logits::All => x,
        };
        let x = rms_norm(&x, &self.output_norm, eps as f32)?;
        let mut logits = self.output.forward(&x)?;
        if let Some(cap) = self.cfg.final_logit_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(Some(logits))
    }

    /// `down(gelu(gate(x)) * up(x))`. On the CPU the product is formed in place in the gate's
    /// output, so a prompt chunk holds two `[n, ffn]` tensors at a time rather than four.
    fn mlp(&self, layer: &Layer, x: &Tensor) -> Result<Tensor> {
        if !self.native {
            return layer.down.forward(&(layer.gate.forward(x)?.gelu()? * layer.up.forward(x)?)?);
        }
        let g = layer.gate.forward(x)?;
        g.inplace_op2(&layer.up.forward(x)?, &GeluMul)?;
        layer.down.forward(&g)
    }

    /// cos/sin `[n, head_dim/2]` for positions `pos..pos+n`, angles in f64 so positions deep into
    /// a 128K context keep their precision.
    fn rope_tables(&self, inv_freq: &[f64], pos: usize, n: usize) -> Result<(Tensor, Tensor)> {
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in pos..pos + n {
            for f in inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Ok((Tensor::from_vec(cos, (n, half), &self.device)?, Tensor::from_vec(sin, (n, half), &self.device)?))
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        kv: &mut LayerKv,
        dtype: KvDType,
        x: &Tensor,
        pos: usize,
        window: usize,
        cos: &Tensor,
        sin: &Tensor,
        blocks: &[Range<usize>],
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (n, h, kvh, hd) = (x.dim(0)?, cfg.heads, cfg.kv_heads, cfg.head_dim);
        let groups = h / kvh;
        let eps = cfg.rms_eps as f32;
        // Each step replaces the tensor before it (an assignment drops the old value), so a
        // prompt chunk holds at most two copies of q, k or v at a time.
        let mut q = layer.q.forward(x)?;
        q = rms_norm(&q.reshape((n, h, hd))?, &layer.q_norm, eps)?;
        q = rope_thd(&q.unsqueeze(0)?, cos, sin)?;
        // Scaling q rather than the scores touches n*h*hd numbers instead of n*h*len.
        q = (q.squeeze(0)? * cfg.attn_scale)?;
        // Heads h*groups..(h+1)*groups share kv head h: group them so one matmul per kv head
        // serves all of its query heads without repeating K and V.
        q = q.transpose(0, 1)?.contiguous()?.reshape((kvh, groups * n, hd))?;
        let mut k = layer.k.forward(x)?;
        k = rms_norm(&k.reshape((n, kvh, hd))?, &layer.k_norm, eps)?;
        k = rope_thd(&k.unsqueeze(0)?, cos, sin)?.squeeze(0)?;
        k = k.transpose(0, 1)?.contiguous()?;
        let mut v = layer.v.forward(x)?.reshape((n, kvh, hd))?;
        v = v.transpose(0, 1)?.contiguous()?;
        // In the cache's element type; attention then reads every key and value as stored (an
        // f16 cache's own rounding included, for the chunk's keys too), so full, chunked and
        // one-token runs see the same numbers.
        k = kv_cache::to_cache_dtype(&k, dtype)?;
        v = kv_cache::to_cache_dtype(&v, dtype)?;
        // One query on an f16 CPU cache: attend straight from the f16 rows; a prompt chunk on
        // one: in tiles converted as they are read (`attention::attend_chunk`).
        let fused = n == 1 && dtype == KvDType::F16 && self.native;
        let tiled = n > 1 && dtype == KvDType::F16 && self.native && attention::supports(hd);

        // `seen`: which keys each query may attend to; None when it sees all of them.
        let (keys, values, seen) = match kv {
            LayerKv::Global { k: kc, v: vc } => {
                kc.slice_set(&k, 1, pos)?;
                vc.slice_set(&v, 1, pos)?;
                let len = pos + n;
                if fused {
                    return self.attend_one_f16(layer, &q, kc, vc, len);
                }
                let seen = (n > 1).then(|| Visible { ring: Vec::new(), first: 0, window: None, blocks });
                if let (true, Some(seen)) = (tiled, &seen) {
                    return self.attend_chunk_f16(layer, &q, (kc, vc), len, None, seen, pos);
                }
                (kv_cache::read_f32(kc, len)?, kv_cache::read_f32(vc, len)?, seen)
            }
            LayerKv::Local { k: kc, v: vc } if n == 1 => {
                // Position pos overwrites pos - window, which this query no longer sees: write
                // first, then every filled slot is exactly the window.
                ring_write(kc, &k, pos, window)?;
                ring_write(vc, &v, pos, window)?;
                let filled = (pos + 1).min(window);
                if fused {
                    return self.attend_one_f16(layer, &q, kc, vc, filled);
                }
                (kv_cache::read_f32(kc, filled)?, kv_cache::read_f32(vc, filled)?, None)
            }
            LayerKv::Local { k: kc, v: vc } => {
                // A chunk's first queries still need positions its later keys would overwrite:
                // attend over ring + chunk, each key's position given, then write the chunk's tail.
                let filled = pos.min(window);
                let ring = (0..filled).map(|s| ring_slot_position(s, pos, window)).collect();
                let seen = Visible { ring, first: pos, window: Some(window), blocks };
                let keep = n.min(window);
                if tiled {
                    // Attend before the ring is overwritten with the chunk's tail.
                    let out = self.attend_chunk_f16(layer, &q, (kc, vc), filled, Some((&k, &v)), &seen, pos)?;
                    ring_write(kc, &k.narrow(1, n - keep, keep)?, pos + n - keep, window)?;
                    ring_write(vc, &v.narrow(1, n - keep, keep)?, pos + n - keep, window)?;
                    return Ok(out);
                }
                let (keys, values) = if filled == 0 {
                    (kv_cache::read_f32(&k, n)?, kv_cache::read_f32(&v, n)?)
                } else {
                    (
                        Tensor::cat(&[&kv_cache::read_f32(kc, filled)?, &kv_cache::read_f32(&k, n)?], 1)?,
                        Tensor::cat(&[&kv_cache::read_f32(vc, filled)?, &kv_cache::read_f32(&v, n)?], 1)?,
                    )
                };
                ring_write(kc, &k.narrow(1, n - keep, keep)?, pos + n - keep, window)?;
                ring_write(vc, &v.narrow(1, n - keep, keep)?, pos + n - keep, window)?;
                (keys, values, Some(seen))
            }
        };
        drop((k, v));
        let len = keys.dim(1)?;
        let (keys_t, values) = (keys.t()?, values.contiguous()?);
        let out = if self.native {
            // Query rows in blocks of about SCORE_BLOCK scores per kv head, each block's scores
            // turned into probabilities in place: a 512-token chunk never holds all of its
            // [heads, n, len] scores, nor a mask or a second copy of them.
            let rows = groups * n;
            let block = (SCORE_BLOCK / len).max(16).min(rows);
            let mut outs = Vec::with_capacity(rows.div_ceil(block));
            for r0 in (0..rows).step_by(block) {
                let scores = q.narrow(1, r0, block.min(rows - r0))?.contiguous()?.matmul(&keys_t)?;
                scores.inplace_op1(&MaskedSoftmax { seen: seen.as_ref(), n, pos, row0: r0 })?;
                outs.push(scores.matmul(&values)?);
            }
            drop(q);
            if outs.len() == 1 {
                outs.pop().expect("one block")
            } else {
                Tensor::cat(&outs, 1)?
            }
        } else {
            let scores = q.matmul(&keys_t)?;
            let scores = match &seen {
                Some(seen) => {
                    let mask = additive_mask(seen, n, pos, len)?.to_device(&self.device)?;
                    scores.reshape((kvh, groups, n, len))?.broadcast_add(&mask)?.reshape((kvh, groups * n, len))?
                }
                None => scores,
            };
            softmax_last_dim(&scores)?.matmul(&values)?
        }; // [kvh, groups*n, hd]
        let out = out.reshape((h, n, hd))?.transpose(0, 1)?.contiguous()?.reshape((n, h * hd))?;
        layer.o.forward(&out)
    }

    /// Attention of a prompt chunk's queries (`q`: `[kv_heads, groups * n, head_dim]`, scaled)
    /// over the first `rows` slots of an f16 CPU cache, then, on a sliding layer, the chunk's own
    /// keys and values (`[kv_heads, n, head_dim]` f16); then the output projection.
    #[allow(clippy::too_many_arguments)]
    fn attend_chunk_f16(
        &self,
        layer: &Layer,
        q: &Tensor,
        cache: (&Tensor, &Tensor),
        rows: usize,
        chunk: Option<(&Tensor, &Tensor)>,
        seen: &Visible,
        pos: usize,
    ) -> Result<Tensor> {
        let (kvh, qrows, hd) = q.dims3()?;
        let h = self.cfg.heads;
        let (groups, n) = (h / kvh, qrows / (h / kvh));
        let qv: Vec<f32> = q.flatten_all()?.to_vec1()?;
        let stride = cache.0.dim(1)?;
        let (kc, vc) = (kv_cache::f16_data(cache.0)?, kv_cache::f16_data(cache.1)?);
        let own = match chunk {
            Some((k, v)) => Some((kv_cache::f16_data(k)?, kv_cache::f16_data(v)?)),
            None => None,
        };
        let (k1, v1) = match &own {
            Some((k, v)) => {
                (Rows { data: k.slice(), stride: n, rows: n }, Rows { data: v.slice(), stride: n, rows: n })
            }
            None => (Rows::none(), Rows::none()),
        };
        let keys = [Rows { data: kc.slice(), stride, rows }, k1];
        let values = [Rows { data: vc.slice(), stride, rows }, v1];
        let out = attention::attend_chunk(&qv, kvh, groups, n, hd, pos, keys, values, seen, kernels());
        // [kv_heads, groups * n, hd] is [heads, n, hd].
        let out =
            Tensor::from_vec(out, (h, n, hd), &self.device)?.transpose(0, 1)?.contiguous()?.reshape((n, h * hd))?;
        layer.o.forward(&out)
    }

    /// Attention of one query (`q`: `[kv_heads, groups, head_dim]`, scaled) over positions
    /// `0..len` of an f16 cache on the CPU, every one of them visible; then the output projection.
    fn attend_one_f16(&self, layer: &Layer, q: &Tensor, kc: &Tensor, vc: &Tensor, len: usize) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (kvh, groups, hd) = q.dims3()?;
        let q: Vec<f32> = q.flatten_all()?.to_vec1()?;
        let stride = kc.dim(1)?;
        let (kd, vd) = (kv_cache::f16_data(kc)?, kv_cache::f16_data(vc)?);
        let out = kv_kernels::attend_one(&q, kd.slice(), vd.slice(), kvh, groups, hd, stride, len);
        // [kv_heads, groups, hd] is [heads, hd] for one position.
        layer.o.forward(&Tensor::from_vec(out, (1, cfg.heads * hd), &self.device)?)
    }
}

/// The position held by ring slot `s` when positions `0..pos` have been written.
pub(crate) fn ring_slot_position(s: usize, pos: usize, window: usize) -> usize {
    if pos <= window {
        s
    } else {
        // The unique p in pos-window..pos with p % window == s.
        let base = pos - window;
        base + (s + window - base % window) % window
    }
}

/// Writes `src` (`[kvh, m, hd]`, positions `start..start+m`, `m <= window`) into the ring.
fn ring_write(ring: &Tensor, src: &Tensor, start: usize, window: usize) -> Result<()> {
    let m = src.dim(1)?;
    let slot = start % window;
    let first = m.min(window - slot);
    ring.slice_set(&src.narrow(1, 0, first)?.contiguous()?, 1, slot)?;
    if first < m {
        ring.slice_set(&src.narrow(1, first, m - first)?.contiguous()?, 1, 0)?;
    }
    Ok(())
}

/// Scores per kv head computed at once in a prompt chunk's attention over an f32 cache (f32:
/// 1 MiB); over an f16 cache on the CPU, `attention::attend_chunk` holds a tile at a time.
const SCORE_BLOCK: usize = 1 << 18;

/// `[n, len]` additive mask (0 or -inf) for queries at positions `pos..pos+n`.
fn additive_mask(seen: &Visible, n: usize, pos: usize, len: usize) -> Result<Tensor> {
    let mut m = vec![0f32; n * len];
    for (i, row) in m.chunks_mut(len).enumerate() {
        seen.mask_row(pos + i, row);
    }
    Ok(Tensor::from_vec(m, (n, len), &Device::Cpu)?)
}

/// Softmax over the last dimension of `[kv_heads, rows, len]` f32 scores, in place, keys a
/// query does not see masked first. Rows are rows `row0..` of `[groups * n]` query rows, row r
/// being query `r % n` (position `pos + r % n`). Same arithmetic as candle's `softmax_last_dim`.
struct MaskedSoftmax<'a> {
    seen: Option<&'a Visible<'a>>,
    n: usize,
    pos: usize,
    row0: usize,
}

impl InplaceOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(data), Some((a, b)), &[_, rows, len]) =
            (storage, layout.contiguous_offsets(), layout.dims())
        else {
            candle_core::bail!("masked softmax needs contiguous f32 [heads, rows, len] scores");
        };
        let data = &mut data[a..b];
        let total = data.len() / len;
        let tasks = (threads() * 4).min(total);
        let per = total.div_ceil(tasks);
        let ptr = SendPtr(data.as_mut_ptr());
        par_for(tasks, |t| {
            for r in t * per..((t + 1) * per).min(total) {
                // SAFETY: task t alone touches rows t*per.., each `len` long, inside `data`.
                let row = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(r * len), len) };
                if let Some(seen) = self.seen {
                    seen.mask_row(self.pos + (self.row0 + r % rows) % self.n, row);
                }
                let mut max = f32::NEG_INFINITY;
                // SAFETY: `row` holds `len` values.
                unsafe { f32::vec_reduce_max(row.as_ptr(), &mut max, len) };
                let inv = 1.0 / crate::vmath::exp_sub_sum(row, max);
                for x in row.iter_mut() {
                    *x *= inv;
                }
            }
        });
        Ok(())
    }
}

/// Every tensor a Gemma 3 text model needs, with its expected shape (candle order): the one
/// list both the pre-load check and the loading read (`from_gguf_with_progress`).
fn tensor_plan(cfg: &Config, has_output: bool) -> Vec<(String, Vec<usize>)> {
    let (h, kvh, hd, hid, ffn, vocab) = (cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.hidden, cfg.ffn, cfg.vocab_size);
    let mut plan =
        vec![("token_embd.weight".to_string(), vec![vocab, hid]), ("output_norm.weight".to_string(), vec![hid])];
    if has_output {
        plan.push(("output.weight".into(), vec![vocab, hid]));
    }
    for i in 0..cfg.layers {
        let layer = [
            ("attn_norm", vec![hid]),
            ("attn_q", vec![h * hd, hid]),
            ("attn_k", vec![kvh * hd, hid]),
            ("attn_v", vec![kvh * hd, hid]),
            ("attn_output", vec![hid, h * hd]),
            ("attn_q_norm", vec![hd]),
            ("attn_k_norm", vec![hd]),
            ("post_attention_norm", vec![hid]),
            ("ffn_norm", vec![hid]),
            ("ffn_gate", vec![ffn, hid]),
            ("ffn_up", vec![ffn, hid]),
            ("ffn_down", vec![hid, ffn]),
            ("post_ffw_norm", vec![hid]),
        ];
        plan.extend(layer.into_iter().map(|(s, shape)| (layer_tensor_name(i, s), shape)));
    }
    plan
}

/// The GGUF name of layer `i`'s tensor `s`.
fn layer_tensor_name(i: usize, s: &str) -> String {
    format!("blk.{i}.{s}.weight")
}

/// The one block-size arithmetic (`gguf::tensor_bytes`); a shape that is not whole blocks was
/// refused when the file was read, so 0 here only means "nothing to count".
fn tensor_bytes(info: &TensorInfo) -> u64 {
    crate::gguf::tensor_bytes(info.ggml_dtype, info.shape.elem_count() as u64).unwrap_or(0)
}
