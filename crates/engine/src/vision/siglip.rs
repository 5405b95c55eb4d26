//! The SigLIP vision encoder as Gemma 3 uses it: 14x14 patches embedded by one matmul (the
//! stride-14 convolution), learned position embeddings, pre-norm transformer blocks (LayerNorm
//! with bias, multi-head attention with biases and no mask, GELU-tanh MLP), then a final
//! LayerNorm. As transformers' `SiglipVisionTransformer` (its `last_hidden_state`).

use candle_core::Tensor;
use candle_nn::ops::{layer_norm, softmax_last_dim};

use crate::attention::{self, Rows, Visible};
use crate::gelu::Gelu;
use crate::linear::{kernels, native_on, Linear};
use crate::Result;

/// Attention scores computed at once (f32, 32 MiB): 4096 patches attend in blocks of query rows,
/// so one layer never holds all `heads x patches x patches` scores (1 GiB for SigLIP-So400m).
pub(crate) const SCORE_BLOCK: usize = 1 << 23;

/// One encoder layer; each pair is (weight, bias).
pub(crate) struct Block {
    pub ln1: (Tensor, Tensor),
    pub q: (Linear, Tensor),
    pub k: (Linear, Tensor),
    pub v: (Linear, Tensor),
    pub o: (Linear, Tensor),
    pub ln2: (Tensor, Tensor),
    pub fc1: (Linear, Tensor),
    pub fc2: (Linear, Tensor),
}

pub(crate) struct Siglip {
    /// `[hidden, 3 * patch * patch]`: the convolution kernel, channel-major as the pixels are.
    pub patch: (Tensor, Tensor),
    /// `[patches, hidden]`.
    pub position: Tensor,
    pub blocks: Vec<Block>,
    pub post_ln: (Tensor, Tensor),
    pub heads: usize,
    pub eps: f64,
    pub grid: usize,
    pub patch_size: usize,
}

fn linear(x: &Tensor, (w, b): &(Linear, Tensor)) -> Result<Tensor> {
    Ok(w.forward(x)?.broadcast_add(b)?)
}

fn norm(x: &Tensor, (w, b): &(Tensor, Tensor), eps: f64) -> Result<Tensor> {
    Ok(layer_norm(x, w, b, eps as f32)?)
}

impl Siglip {
    /// `[3, S, S]` pixels to `[patches, hidden]`, patches in row-major order of the grid.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (g, p) = (self.grid, self.patch_size);
        // Patch (row, col) holds pixels[c, row*p + y, col*p + x], flattened as (c, y, x): the
        // kernel's own order, so the convolution is one matmul.
        let patches =
            pixels.reshape((3, g, p, g, p))?.permute((1, 3, 0, 2, 4))?.contiguous()?.reshape((g * g, 3 * p * p))?;
        let mut x = patches.matmul(&self.patch.0.t()?)?.broadcast_add(&self.patch.1)?;
        drop(patches);
        x = (x + &self.position)?;
        for b in &self.blocks {
            let h = self.attention(b, &norm(&x, &b.ln1, self.eps)?)?;
            x = (x + h)?;
            let mut h = linear(&norm(&x, &b.ln2, self.eps)?, &b.fc1)?;
            if native_on(h.device()) {
                h.inplace_op1(&Gelu)?;
            } else {
                h = h.gelu()?;
            }
            x = (x + linear(&h, &b.fc2)?)?;
        }
        norm(&x, &self.post_ln, self.eps)
    }

    /// Full (unmasked) multi-head attention over all patches.
    fn attention(&self, b: &Block, x: &Tensor) -> Result<Tensor> {
        let (n, d) = x.dims2()?;
        let (h, hd) = (self.heads, d / self.heads);
        let heads = |t: Tensor| -> Result<Tensor> { Ok(t.reshape((n, h, hd))?.transpose(0, 1)?.contiguous()?) };
        let q = heads((linear(x, &b.q)? * (1.0 / (hd as f64).sqrt()))?)?;
        if native_on(x.device()) && attention::supports(hd) {
            // On the CPU: in tiles with the text model's prompt attention, every patch one
            // block that sees itself whole.
            let flat = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1()?) };
            let (q, k, v) = (flat(q)?, flat(heads(linear(x, &b.k)?)?)?, flat(heads(linear(x, &b.v)?)?)?);
            #[allow(clippy::single_range_in_vec_init)] // one block: every patch
            let all = [0..n];
            let seen = Visible { ring: Vec::new(), first: 0, window: None, blocks: &all };
            let rows = |data| [Rows { data, stride: n, rows: n }, Rows::none()];
            let out = attention::attend_chunk(&q, h, 1, n, hd, 0, rows(&k), rows(&v), &seen, kernels());
            let out = Tensor::from_vec(out, (h, n, hd), x.device())?;
            return linear(&out.transpose(0, 1)?.contiguous()?.reshape((n, d))?, &b.o);
        }
        let kt = heads(linear(x, &b.k)?)?.transpose(1, 2)?.contiguous()?;
        let v = heads(linear(x, &b.v)?)?;
        let rows = (SCORE_BLOCK / (h * n)).clamp(16, n.max(16));
        let mut outs = Vec::with_capacity(n.div_ceil(rows));
        for r0 in (0..n).step_by(rows) {
            let scores = q.narrow(1, r0, rows.min(n - r0))?.matmul(&kt)?;
            outs.push(softmax_last_dim(&scores)?.matmul(&v)?);
        }
        drop((q, kt, v));
        let out = Tensor::cat(&outs, 1)?; // [heads, n, hd]
        drop(outs);
        linear(&out.transpose(0, 1)?.contiguous()?.reshape((n, d))?, &b.o)
    }
}

/// Peak bytes of the encoder's activations for one image (f32), beside its weights: the largest
/// set of tensors alive at once in `Siglip::forward` (and the projector, far smaller). In a block
/// the MLP holds the residual, its normed input, fc1's output and GELU's (`patches x ffn` each)
/// and fc2's output; attention holds the residual, the normed input, q/k/v with their per-head
/// copies, one block of scores (`SCORE_BLOCK`) with its softmax, and the per-head outputs with
/// their concatenation. Before the blocks: the pixels, the patch matrix and the embeddings.
/// Those live tensors are then counted 1.5 times: on SigLIP-So400m (`hearth bench --mmproj`) the
/// peak RSS rose 340 MB above the resident weights, where the live tensors come to 237 MB (the
/// allocator keeps freed 19 MB blocks).
pub fn activation_peak_bytes(cfg: &super::VisionConfig) -> u64 {
    let (n, d, f) = (cfg.patches() as u64, cfg.hidden as u64, cfg.ffn as u64);
    let p2 = (cfg.patch_size * cfg.patch_size) as u64;
    let score_rows = (SCORE_BLOCK as u64 / (cfg.heads as u64 * n)).clamp(16, n.max(16));
    let scores = 2 * cfg.heads as u64 * score_rows * n;
    let mlp = n * (3 * d + 2 * f);
    let attention = n * 9 * d + scores;
    let embed = 2 * 3 * n * p2 + 2 * n * d;
    4 * mlp.max(attention).max(embed) * 3 / 2
}
