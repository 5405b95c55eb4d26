//! Gemma 3's multimodal projector: the encoder's patch grid average-pooled (4x4 windows: 64x64
//! patches to 16x16 tokens), Gemma's RMSNorm (`mm.soft_emb_norm`, its weight stored with the +1
//! already added), then the input projection to the text model's width. As transformers'
//! `Gemma3MultiModalProjector`.

use candle_core::Tensor;
use candle_nn::ops::rms_norm;

use crate::Result;

pub(crate) struct Projector {
    pub norm: Tensor,
    /// `[vision, text]`.
    pub projection: Tensor,
    pub grid: usize,
    pub pool: usize,
    pub eps: f64,
}

impl Projector {
    /// `[grid * grid, vision]` to `[(grid / pool)^2, text]`, tokens in row-major order.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (g, k) = (self.grid, self.pool);
        let (t, d) = (g / k, x.dim(1)?);
        // Patch index (r*k + y)*g + c*k + x: pool over y (dim 1) and x (dim 3).
        let pooled = (x.reshape((t, k, t, k, d))?.sum(3)?.sum(1)? / (k * k) as f64)?.reshape((t * t, d))?;
        let normed = rms_norm(&pooled, &self.norm, self.eps as f32)?;
        Ok(normed.matmul(&self.projection)?)
    }
}
