//! The tanh GELU as candle in-place ops on the CPU, over `vmath`'s vectorised formula: the
//! feed-forward's `gelu(gate) * up` ([`GeluMul`]) and the vision encoder's `gelu(x)` ([`Gelu`]).
//! candle's own `gelu` calls libm's scalar `tanhf` per value (about 8 % of an image's encoding).

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout};

use crate::linear::pool::{par_for, threads, SendPtr};

/// `gate = gelu(gate) * up` in place, f32.
pub(crate) struct GeluMul;

/// `x = gelu(x)` in place, f32.
pub(crate) struct Gelu;

impl InplaceOp2 for GeluMul {
    fn name(&self) -> &'static str {
        "gelu-mul"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(g), CpuStorage::F32(u), Some((a1, b1)), Some((a2, b2))) =
            (s1, s2, l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("gelu-mul needs contiguous f32 tensors");
        };
        let (g, u) = (&mut g[a1..b1], &u[a2..b2]);
        if g.len() != u.len() {
            candle_core::bail!("gelu-mul of {} and {} elements", g.len(), u.len());
        }
        par_gelu(g, Some(u));
        Ok(())
    }
}

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(x), Some((a, b))) = (s, l.contiguous_offsets()) else {
            candle_core::bail!("gelu needs a contiguous f32 tensor");
        };
        par_gelu(&mut x[a..b], None);
        Ok(())
    }
}

/// `vmath::gelu_mul` over `g` in parts across the pool.
fn par_gelu(g: &mut [f32], u: Option<&[f32]>) {
    let chunk = g.len().div_ceil(threads() * 4).max(1 << 12);
    let (len, tasks) = (g.len(), g.len().div_ceil(chunk));
    let ptr = SendPtr(g.as_mut_ptr());
    par_for(tasks, |t| {
        let (s, e) = (t * chunk, ((t + 1) * chunk).min(len));
        // SAFETY: task t alone touches elements s..e of `g`.
        let g = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(s), e - s) };
        crate::vmath::gelu_mul(g, u.map(|u| &u[s..e]));
    });
}
