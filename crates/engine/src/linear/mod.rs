//! Multiplication by quantized weights, and embedding rows looked up from a quantized table.
//!
//! Public API (other modules rely on it): `Linear::new`, `Linear::forward`, `Linear::in_dim`,
//! `Linear::out_dim`, `Linear::storage_bytes`, `Embedding::new`, `Embedding::lookup`.
//!
//! On the CPU the weights stay in their GGUF format (no repacked or dequantized copy is kept)
//! and are multiplied by our own kernels for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K:
//! the activations are quantized to Q8_0-style blocks once per call, then
//! - few rows (token generation): one integer dot product per weight row and activation row,
//!   AVX-512 VNNI or AVX2 chosen at run time, weight rows split across threads (`pool.rs`);
//! - many rows (prompt processing, AVX-512 VNNI only): 16 weight rows at a time are unpacked
//!   into a small per-thread tile laid out for `vpdpbusd`, which then meets every activation row.
//!
//! F32/BF16 weights are dequantized to f32 once and use candle's matmul; F16 weights stay f16,
//! multiplied by f16 dot products for a few rows and by our f32 GEMM for more (`f16.rs`, on the
//! AVX2 and AVX-512 levels; without SIMD widened to f32 a block of rows at a time for candle's
//! matmul); other types (and non-CPU devices) use candle's `QMatMul`.

mod acts;
mod f16;
mod formats;
mod isa;
pub(crate) mod pool;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Storage, Tensor};

use crate::{EngineError, Result};
use acts::QActs;
use formats::{WType, QK};
pub use isa::{generic_requested, kernel_level, native_on, Level};
pub(crate) use isa::{kernels, Isa};
use pool::{par_for, SendPtr};

/// Activation rows from which the AVX-512 level uses the GEMM rather than per-row dot products
/// (measured crossover; `HEARTH_GEMM_MIN_ROWS` overrides it, for experiments).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn gemm_min_rows(t: WType) -> usize {
    static N: OnceLock<Option<usize>> = OnceLock::new();
    let forced = *N.get_or_init(|| std::env::var("HEARTH_GEMM_MIN_ROWS").ok().and_then(|v| v.parse().ok()));
    forced.unwrap_or(match t {
        // Their per-row kernels are the slowest (5-bit unpacking, minimums).
        WType::Q4_1 | WType::Q5_0 | WType::Q5_1 => 4,
        _ => 6,
    })
}

/// Weight bytes x activation rows below which a per-row call stays on the calling thread
/// (`HEARTH_PAR_MIN_BYTES` overrides it): below it, handing out work costs more than it saves.
/// One core streams weights from memory at 26-32 GB/s with these kernels; two reach 50-60 GB/s
/// on the 2-core test machine when it is quiet.
fn par_min_bytes() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::env::var("HEARTH_PAR_MIN_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(256 << 10))
}

/// Weights an F16 matrix widens at a time for candle's matmul, without SIMD kernels (f32:
/// 32 MiB): every SigLIP-So400m matrix in one block (each further block repeats candle's
/// packing of the activations), against the 850 MB an f32 copy of the whole tower would hold.
const F16_BLOCK_ELEMS: usize = 1 << 23;

/// Rows of activations up to which an F16 matrix multiplies by dot products (`f16_dots`)
/// rather than a GEMM.
const F16_DOT_MAX_ROWS: usize = 8;

enum Backend {
    /// Our kernels on the GGUF bytes of `w`.
    Native(WType, Arc<QTensor>),
    /// Float weights, dequantized to f32 `[out, in]`.
    Dense(Tensor),
    /// F16 weights kept as f16 `[out, in]` on the CPU, multiplied with f32 sums (`f16.rs`, or
    /// widened a block of rows at a time for candle's f32 matmul): half the memory of `Dense`,
    /// the same arithmetic.
    F16(Tensor),
    /// Anything else.
    Candle(QMatMul),
}

/// Whether `w` is of a type that candle's CPU code only has scalar dot products for
/// (`vec_dot_unopt`). Small Gemma 3 files store most of their matrices so (Q4_K_M falls back to
/// Q5_0 for rows of 640), and the device-generic path on the CPU then ran ~20x slower than the
/// rest. Such a matrix is dequantized once instead: the same arithmetic as candle's CUDA
/// fallback for these types (dequantize, then a float matmul), at 4 bytes a weight.
fn candle_scalar_on_cpu(dtype: GgmlDType, device: &Device) -> bool {
    device.is_cpu() && matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// How [`Linear::new`] holds a matrix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Holding {
    /// As stored, multiplied by our kernels.
    Native(WType),
    /// Dequantized to f32.
    Dense,
    /// As stored in f16, multiplied with f32 sums (`Backend::F16`).
    F16,
    /// As stored, multiplied by candle.
    Candle,
}

/// How a matrix stored as `dtype`, `in_dim` values a row, is held on `device`: the one rule
/// `Linear::new` follows and the memory plans count ([`held_bytes`]).
fn holding(dtype: GgmlDType, in_dim: usize, device: &Device) -> Holding {
    let native = WType::from_ggml(dtype).filter(|t| {
        // Without SIMD, candle's own kernels (NEON on ARM) beat our portable ones on the
        // types it has vectorized; keep ours for the types it only has scalar code for.
        native_on(device)
            && in_dim.is_multiple_of(t.block_elems())
            && (kernel_level() > Level::Scalar || matches!(t, WType::Q4_1 | WType::Q5_0 | WType::Q5_1))
    });
    match native {
        Some(t) => Holding::Native(t),
        // The vision projectors store their matrices so (llama.cpp's mmproj files): as f32 they
        // would take twice their file.
        None if dtype == GgmlDType::F16 && native_on(device) => Holding::F16,
        None if matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
            || candle_scalar_on_cpu(dtype, device) =>
        {
            Holding::Dense
        }
        None => Holding::Candle,
    }
}

/// Bytes a `Linear` holds for an `[out_dim, in_dim]` matrix stored as `dtype` on `device`,
/// known before reading it. `None` when `dtype`'s blocks do not divide the matrix (the reader
/// refuses such a tensor).
pub fn held_bytes(dtype: GgmlDType, out_dim: usize, in_dim: usize, device: &Device) -> Option<u64> {
    let elems = (out_dim * in_dim) as u64;
    match holding(dtype, in_dim, device) {
        Holding::Dense => Some(4 * elems),
        Holding::Native(_) | Holding::F16 | Holding::Candle => crate::gguf::tensor_bytes(dtype, elems),
    }
}

/// A weight matrix of shape `[out, in]` (GGUF stores it so), applied as `x @ W^T`.
pub struct Linear {
    backend: Backend,
    in_dim: usize,
    out_dim: usize,
    bytes: usize,
}

impl Linear {
    pub fn new(w: Arc<QTensor>) -> Result<Self> {
        let (out_dim, in_dim) = w.shape().dims2()?;
        let (backend, bytes) = match holding(w.dtype(), in_dim, &w.device()) {
            Holding::Native(t) => {
                let bytes = w.storage_size_in_bytes();
                (Backend::Native(t, w), bytes)
            }
            Holding::Dense => {
                let t = w.dequantize(&w.device())?;
                (Backend::Dense(t), out_dim * in_dim * 4)
            }
            Holding::F16 => {
                let t = w.dequantize_f16(&w.device())?;
                (Backend::F16(t), out_dim * in_dim * 2)
            }
            Holding::Candle => {
                let bytes = w.storage_size_in_bytes();
                (Backend::Candle(QMatMul::from_arc(w)?), bytes)
            }
        };
        Ok(Self { backend, in_dim, out_dim, bytes })
    }

    /// `x`: `[..., in]` f32 → `[..., out]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, kernels())
    }

    /// `forward` with the native kernels of instruction-set level `level` (capped at what the
    /// CPU has). For tests and benchmarks.
    #[doc(hidden)]
    pub fn forward_at(&self, x: &Tensor, level: Level) -> Result<Tensor> {
        self.forward_with(x, Isa::at_most(level))
    }

    fn forward_with(&self, x: &Tensor, isa: Isa) -> Result<Tensor> {
        let dims = x.dims();
        if dims.last() != Some(&self.in_dim) {
            return Err(EngineError::InvalidArgument(format!(
                "linear layer of input size {} applied to a tensor of shape {:?}",
                self.in_dim, dims
            )));
        }
        match &self.backend {
            Backend::Native(t, w) => self.forward_native(*t, w, x, isa),
            Backend::Dense(w) => {
                let m = x.elem_count() / self.in_dim;
                let x2 = x.to_dtype(w.dtype())?.reshape((m, self.in_dim))?;
                let y = x2.matmul(&w.t()?)?.to_dtype(x.dtype())?;
                let mut out = dims.to_vec();
                *out.last_mut().unwrap() = self.out_dim;
                Ok(y.reshape(out)?)
            }
            Backend::F16(w) => {
                let m = x.elem_count() / self.in_dim;
                let x2 = x.to_dtype(DType::F32)?.contiguous()?.reshape((m, self.in_dim))?;
                let mut out = dims.to_vec();
                *out.last_mut().unwrap() = self.out_dim;
                if m <= F16_DOT_MAX_ROWS {
                    let y = self.f16_dots(w, &x2.flatten_all()?.to_vec1()?, m, isa)?;
                    return Ok(Tensor::from_vec(y, out, &Device::Cpu)?.to_dtype(x.dtype())?);
                }
                let data = crate::kv_cache::f16_data(w)?;
                let y = {
                    let (storage, layout) = x2.storage_and_layout();
                    let Storage::Cpu(cpu) = &*storage else {
                        return Err(EngineError::InvalidArgument("expected a CPU tensor".into()));
                    };
                    let xs = &cpu.as_slice::<f32>()?[layout.start_offset()..][..m * self.in_dim];
                    f16::gemm(xs, m, self.in_dim, data.slice(), self.out_dim, isa)
                };
                if let Some(y) = y {
                    return Ok(Tensor::from_vec(y, out, &Device::Cpu)?.to_dtype(x.dtype())?);
                }
                let rows = (F16_BLOCK_ELEMS / self.in_dim).clamp(1, self.out_dim.max(1));
                let mut parts = Vec::with_capacity(self.out_dim.div_ceil(rows));
                for r0 in (0..self.out_dim).step_by(rows) {
                    let r = rows.min(self.out_dim - r0);
                    let mut b = vec![0f32; r * self.in_dim];
                    crate::kv_kernels::f16_to_f32(&data.slice()[r0 * self.in_dim..][..r * self.in_dim], &mut b);
                    parts.push(x2.matmul(&Tensor::from_vec(b, (r, self.in_dim), &Device::Cpu)?.t()?)?);
                }
                let y = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(&parts, 1)? };
                Ok(y.to_dtype(x.dtype())?.reshape(out)?)
            }
            Backend::Candle(q) => Ok(q.forward(&x.contiguous()?)?),
        }
    }

    /// `x @ Wᵀ` for a few rows `x` (`[m, in]`) by one f16 dot product per weight row and row
    /// of `x`, weight rows split across threads: token generation reads the f16 weights once,
    /// where widening them would write and read them again as f32.
    fn f16_dots(&self, w: &Tensor, x: &[f32], m: usize, isa: Isa) -> Result<Vec<f32>> {
        let (k, n) = (self.in_dim, self.out_dim);
        let data = crate::kv_cache::f16_data(w)?;
        let data = data.slice();
        let mut y = vec![0f32; m * n];
        let per = n.div_ceil(pool::threads() * 4).max(16);
        let dst = SendPtr(y.as_mut_ptr());
        par_for(n.div_ceil(per), |t| {
            for r in t * per..((t + 1) * per).min(n) {
                let row = &data[r * k..][..k];
                for i in 0..m {
                    let v = crate::kv_kernels::dot(&x[i * k..][..k], row, isa);
                    // SAFETY: task t alone writes the columns t*per.. of each of the m rows.
                    unsafe { *dst.get().add(i * n + r) = v };
                }
            }
        });
        Ok(y)
    }

    fn forward_native(&self, t: WType, w: &QTensor, x: &Tensor, isa: Isa) -> Result<Tensor> {
        let (k, n) = (self.in_dim, self.out_dim);
        let m = x.elem_count() / k;
        let mut out_dims = x.dims().to_vec();
        *out_dims.last_mut().unwrap() = n;
        if !x.device().is_cpu() {
            return Err(EngineError::InvalidArgument("CPU weights applied to a tensor on another device".into()));
        }
        let x = if x.dtype() == DType::F32 { x.contiguous()? } else { x.to_dtype(DType::F32)?.contiguous()? };
        let mut dst: Vec<f32> = Vec::with_capacity(m * n);
        if m > 0 && n > 0 {
            let wdata = w.data()?;
            with_acts(|acts| -> Result<()> {
                {
                    let (storage, layout) = x.storage_and_layout();
                    let Storage::Cpu(cpu) = &*storage else {
                        return Err(EngineError::InvalidArgument("expected a CPU tensor".into()));
                    };
                    let xs = &cpu.as_slice::<f32>()?[layout.start_offset()..][..m * k];
                    acts.quantize(xs, m, k, isa);
                }
                let dp = SendPtr(dst.spare_capacity_mut().as_mut_ptr() as *mut f32);
                // SAFETY: `dst` has capacity for m * n values and is not touched until `matmul`
                // returns.
                unsafe { matmul(t, &wdata, n, k, acts, dp, isa) };
                Ok(())
            })?;
        }
        // SAFETY: `matmul` wrote all m * n outputs.
        unsafe { dst.set_len(m * n) };
        Ok(Tensor::from_vec(dst, out_dims, &Device::Cpu)?)
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Bytes the weights take in memory.
    pub fn storage_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `forward` runs our CPU kernels (`false`: candle's matmul, the GPU's path).
    pub fn is_native(&self) -> bool {
        matches!(self.backend, Backend::Native(..))
    }
}

/// Runs `f` with this thread's reusable activation buffer (a fresh one if it is in use).
fn with_acts<R>(f: impl FnOnce(&mut QActs) -> R) -> R {
    thread_local! {
        static ACTS: RefCell<Option<QActs>> = const { RefCell::new(None) };
    }
    let mut acts = ACTS.with(|a| a.borrow_mut().take()).unwrap_or_default();
    let r = f(&mut acts);
    // Keep small buffers only; a 512-row prompt chunk is well under this.
    if acts.q.capacity() <= 16 << 20 {
        ACTS.with(|a| *a.borrow_mut() = Some(acts));
    }
    r
}

/// `dst[i, r] = sum_j x[i, j] * w[r, j]` for the `m` quantized rows in `acts` and the `n` rows
/// of the `[n, k]` matrix `w` stored as `t`. Writes every element of `dst` (`m * n`).
///
/// # Safety
///
/// `dst` must be valid for writes of `acts.m * n` f32 values, and nothing else may access them
/// during the call.
unsafe fn matmul(t: WType, w: &[u8], n: usize, k: usize, acts: &QActs, dst: SendPtr<f32>, isa: Isa) {
    let m = acts.m;
    let rb = t.row_bytes(k);
    // The kernels read whole rows through raw pointers: these are their bounds.
    assert!(w.len() >= n * rb && acts.k == k, "weights or activations of the wrong size");
    let threads = pool::threads();

    #[cfg(target_arch = "x86_64")]
    if let Isa::Avx512(avx512) = isa {
        if m >= gemm_min_rows(t) {
            use x86::avx512::{tile_rows, Tile};
            thread_local! {
                static TILES: RefCell<Vec<Tile>> = const { RefCell::new(Vec::new()) };
            }
            let kb = k / QK;
            let fill =
                |tile: &mut Tile, r0: usize, nr: usize| tile.fill(avx512, t, &w[r0 * rb..(r0 + nr) * rb], rb, nr);
            // SAFETY: the `avx512` token proves the CPU features; `tiled` passes rows below m and
            // a tile's first column below n (the kernel's mask stops at n), inside the m * n
            // values `dst` may write (this fn's contract); groups write disjoint columns.
            let rows = |tile: &Tile, r: std::ops::Range<usize>, col0: usize| unsafe {
                tile_rows(t, tile, acts, r, dst.get(), n, col0)
            };
            tiled(&TILES, (m, n, k), 16, 4, || Tile::new(kb), |tile| tile.kb() == kb, fill, rows);
            return;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if let Isa::Avx2(_) = isa {
        if m >= gemm_min_rows(t) && x86::avx2::gemm8_supports(t) {
            use x86::avx2::{tile8_rows, Tile8};
            thread_local! {
                static TILES8: RefCell<Vec<Tile8>> = const { RefCell::new(Vec::new()) };
            }
            let kb = k / QK;
            let fill = |tile: &mut Tile8, r0: usize, nr: usize| tile.fill(t, &w[r0 * rb..(r0 + nr) * rb], rb, nr);
            // SAFETY: `isa` is the AVX2 level, so the CPU has AVX2, FMA and F16C; `t` is
            // supported (checked above); rows and columns as for the AVX-512 tiles above.
            let rows = |tile: &Tile8, r: std::ops::Range<usize>, col0: usize| unsafe {
                tile8_rows(t, tile, acts, r, dst.get(), n, col0)
            };
            tiled(&TILES8, (m, n, k), 8, 8, || Tile8::new(kb), |tile| tile.kb() == kb, fill, rows);
            return;
        }
    }

    // Per-row kernels: split the weight rows into chunks; each chunk meets every activation row
    // while it is in cache.
    let work = n * rb * m.max(1);
    let tasks = if threads > 1 && work >= par_min_bytes() { (threads * 8).min(n.div_ceil(8)) } else { 1 };
    let chunk = n.div_ceil(tasks).next_multiple_of(4).min(n);
    let nchunks = n.div_ceil(chunk);
    let run = |c: usize| {
        let r0 = c * chunk;
        let nr = chunk.min(n - r0);
        let wc = &w[r0 * rb..(r0 + nr) * rb];
        for i in 0..m {
            // SAFETY: `dst` holds m * n values (this fn's contract) and chunk c alone owns
            // columns r0..r0+nr of every output row.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add(i * n + r0), nr) };
            rows(t, wc, rb, nr, acts, i, out, isa);
        }
    };
    par_for(nchunks, run);
}

/// The many-row GEMM's split of the work, for the tile kernels of every level: groups of up to
/// `max_group` tiles of `cols` output columns (about 64 columns a group), each tile repacked once
/// by `fill(tile, first weight row, rows)` and then met by the activation rows in chunks small
/// enough (about 128 KB) to stay in L2 across the group's tiles, by `rows(tile, rows, first
/// column)`. A thread keeps its tiles in `cache` for the next call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn tiled<T: 'static>(
    cache: &'static std::thread::LocalKey<RefCell<Vec<T>>>,
    (m, n, k): (usize, usize, usize),
    cols: usize,
    max_group: usize,
    new: impl Fn() -> T + Sync,
    reusable: impl Fn(&T) -> bool + Sync,
    fill: impl Fn(&mut T, usize, usize) + Sync,
    rows: impl Fn(&T, std::ops::Range<usize>, usize) + Sync,
) {
    let ntiles = n.div_ceil(cols);
    let group = ntiles.div_ceil(pool::threads() * 4).clamp(1, max_group);
    let rc = ((128 << 10) / (k + 16 * (k / QK))).clamp(16, 512) / 4 * 4;
    par_for(ntiles.div_ceil(group), |gi| {
        let mut tiles = cache.with(|c| c.take());
        tiles.retain(&reusable);
        let t0 = gi * group;
        tiles.resize_with(group.min(ntiles - t0), &new);
        for (j, tile) in tiles.iter_mut().enumerate() {
            let r0 = (t0 + j) * cols;
            fill(tile, r0, (n - r0).min(cols));
        }
        let mut i0 = 0;
        while i0 < m {
            let i1 = (i0 + rc).min(m);
            for (j, tile) in tiles.iter().enumerate() {
                rows(tile, i0..i1, (t0 + j) * cols);
            }
            i0 = i1;
        }
        cache.with(|c| *c.borrow_mut() = tiles);
    });
}

/// `out[r] = w_r . x_i` for `nrows` rows of `w` (row stride `rb`), with the kernels of `isa`.
#[allow(clippy::too_many_arguments)] // the kernels' own arguments, passed straight through
fn rows(t: WType, w: &[u8], rb: usize, nrows: usize, a: &QActs, i: usize, out: &mut [f32], isa: Isa) {
    // The SIMD kernels read `nrows` rows of `rb` bytes and row i's activations through raw
    // pointers: check what they rely on (per call, not per row).
    assert!(
        i < a.m && rb >= t.row_bytes(a.k) && w.len() >= nrows * rb && out.len() >= nrows,
        "rows: buffers smaller than the kernel reads"
    );
    #[cfg(target_arch = "x86_64")]
    if isa.avx2().is_some() {
        use x86::*;
        let ar = ARow::new(a, i);
        let (wp, op) = (w.as_ptr(), out.as_mut_ptr());
        // SAFETY: the `Isa` token proves the level's CPU features; the bounds were asserted
        // above, and `QActs` pads its per-block arrays to whole groups of 8 blocks.
        unsafe {
            if let Isa::Avx512(_) = isa {
                use x86::avx512::*;
                match t {
                    WType::Q4_0 => rows_legacy512::<T_Q4_0>(wp, rb, nrows, &ar, op),
                    WType::Q4_1 => rows_legacy512::<T_Q4_1>(wp, rb, nrows, &ar, op),
                    WType::Q5_0 => rows_legacy512::<T_Q5_0>(wp, rb, nrows, &ar, op),
                    WType::Q5_1 => rows_legacy512::<T_Q5_1>(wp, rb, nrows, &ar, op),
                    WType::Q8_0 => rows_legacy512::<T_Q8_0>(wp, rb, nrows, &ar, op),
                    WType::Q4K => rows_k45::<false>(wp, rb, nrows, &ar, op),
                    WType::Q5K => rows_k45::<true>(wp, rb, nrows, &ar, op),
                    WType::Q6K => rows_q6k(wp, rb, nrows, &ar, op),
                }
            } else {
                use x86::avx2::*;
                match t {
                    WType::Q4_0 => rows_legacy::<T_Q4_0>(wp, rb, nrows, &ar, op),
                    WType::Q4_1 => rows_legacy::<T_Q4_1>(wp, rb, nrows, &ar, op),
                    WType::Q5_0 => rows_legacy::<T_Q5_0>(wp, rb, nrows, &ar, op),
                    WType::Q5_1 => rows_legacy::<T_Q5_1>(wp, rb, nrows, &ar, op),
                    WType::Q8_0 => rows_legacy::<T_Q8_0>(wp, rb, nrows, &ar, op),
                    WType::Q4K => rows_k45::<false>(wp, rb, nrows, &ar, op),
                    WType::Q5K => rows_k45::<true>(wp, rb, nrows, &ar, op),
                    WType::Q6K => rows_q6k(wp, rb, nrows, &ar, op),
                }
            }
        }
        return;
    }
    let _ = isa;
    rows_scalar(t, w, rb, nrows, a, i, out)
}

fn rows_scalar(t: WType, w: &[u8], rb: usize, nrows: usize, a: &QActs, i: usize, out: &mut [f32]) {
    let (xq, xd, xs16, xds) = (a.row_q(i), a.row_d(i), a.row_s16(i), a.row_ds(i));
    let off = t.offset();
    for (r, o) in out.iter_mut().enumerate().take(nrows) {
        let row = &w[r * rb..(r + 1) * rb];
        let mut acc = 0f32;
        for b in 0..a.kb {
            let u = formats::unpack32(t, row, b);
            let x = &xq[b * QK..(b + 1) * QK];
            let (mut lo, mut hi) = (0i32, 0i32);
            for j in 0..16 {
                lo += u.v[j] as i32 * x[j] as i32;
                hi += u.v[j + 16] as i32 * x[j + 16] as i32;
            }
            lo -= off * xs16[2 * b];
            hi -= off * xs16[2 * b + 1];
            acc += xd[b] * (u.sc[0] * lo as f32 + u.sc[1] * hi as f32) + u.mn * xds[b];
        }
        *o = acc;
    }
}

/// A quantized `[vocab, hidden]` table; rows are dequantized only when looked up, so a 262k-token
/// vocabulary never sits in memory as f32.
pub struct Embedding {
    table: Arc<QTensor>,
    native: Option<WType>,
    vocab: usize,
    hidden: usize,
}

impl Embedding {
    pub fn new(table: Arc<QTensor>) -> Result<Self> {
        let (vocab, hidden) = table.shape().dims2()?;
        let native =
            WType::from_ggml(table.dtype()).filter(|t| native_on(&table.device()) && hidden % t.block_elems() == 0);
        Ok(Self { table, native, vocab, hidden })
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Rows for `ids` as `[ids.len(), hidden]` f32 (unscaled).
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(EngineError::InvalidArgument(format!(
                "token id {bad} out of range for a vocabulary of {}",
                self.vocab
            )));
        }
        let Some(t) = self.native else {
            let ids = Tensor::from_slice(ids, ids.len(), &self.table.device())?;
            return Ok(self.table.embedding(&ids)?);
        };
        let h = self.hidden;
        let rb = t.row_bytes(h);
        let data = self.table.data()?;
        let mut out = vec![0f32; ids.len() * h];
        let op = SendPtr(out.as_mut_ptr());
        let rows = |i0: usize, i1: usize| {
            for (i, &id) in ids.iter().enumerate().take(i1).skip(i0) {
                let r = id as usize;
                // SAFETY: each i is handled once; out has ids.len() rows of h.
                let o = unsafe { std::slice::from_raw_parts_mut(op.get().add(i * h), h) };
                formats::dequantize_row(t, &data[r * rb..(r + 1) * rb], o);
            }
        };
        if ids.len() >= 64 {
            par_for(ids.len().div_ceil(16), |c| rows(c * 16, (c * 16 + 16).min(ids.len())));
        } else {
            rows(0, ids.len());
        }
        Ok(Tensor::from_vec(out, (ids.len(), h), &Device::Cpu)?)
    }
}
