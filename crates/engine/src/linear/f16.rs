//! Many-row GEMM for F16 weight matrices (the vision encoders' in llama.cpp's mmproj files):
//! `y[i, j] = sum_l x[i, l] * w[j, l]` with f32 activations `x` `[m, k]`, f16 weights `w`
//! `[n, k]` and f32 sums, without an f32 copy of the matrix.
//!
//! The output columns are split across threads in equal blocks of whole panels of `NR` columns
//! (at most `MAX_PANELS`). A thread widens its block once into a per-thread f32 buffer, laid out
//! for the micro-kernel: `KC` values of k at a time, panel by panel, each k holding the panel's
//! `NR` columns side by side. The micro-kernel multiplies `MR` activation rows by one panel: per k,
//! each row's value is broadcast and multiplied by the `NR` columns, summed into `MR x NR`
//! lanes of vector registers (no horizontal sums). Activation rows go `MC` at a time, so that
//! their `KC`-wide slice stays in L2 while every panel of the block meets it, and one panel's
//! `KC x NR` slice stays in L1 while the rows meet it. Widening costs `n * k` conversions,
//! against `m * n * k` multiply-adds: nothing for an image's thousands of patches.

use std::cell::RefCell;

use half::f16;

use super::isa::Isa;
use super::pool::{self, par_for, SendPtr};

/// Values of k per block: one panel slice (`KC * NR` f32, 32 KB at `NR` = 32) stays in L1.
const KC: usize = 256;
/// Activation rows per block: their `KC`-wide slice (96 KB) stays in L2.
const MC: usize = 96;
/// Panels a thread widens at a time, at most: its buffer, which the thread keeps for the next
/// call, then takes 1 MiB per 1024 values of k at `NR` = 32 (4.2 MiB for SigLIP's fc2). As
/// there are at least 4 blocks a thread, all threads' buffers together hold about a quarter of
/// the largest matrix as f32 (5 MB for SigLIP-So400m's), however many threads there are.
const MAX_PANELS: usize = 8;

/// `C[0..rows, 0..cols] (+)= X[0..rows, 0..kc] * B[0..kc, 0..NR]` (a micro-kernel; arguments:
/// rows, x, x's row stride, packed panel slice, kc, c, c's row stride, cols, accumulate).
type Micro = unsafe fn(usize, *const f32, usize, *const f32, usize, *mut f32, usize, usize, bool);

/// `x @ wᵀ` for `x` `[m, k]` and `w` `[n, k]` with the kernels of `isa`; `None` where `isa` has
/// none (the caller widens the weights for candle's matmul instead).
pub(super) fn gemm(x: &[f32], m: usize, k: usize, w: &[f16], n: usize, isa: Isa) -> Option<Vec<f32>> {
    let (nr, mr, micro): (usize, usize, Micro) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(_) => (x86::NR512, x86::MR512, x86::micro512),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(_) => (x86::NR256, x86::MR256, x86::micro256),
        _ => return None,
    };
    // The micro-kernels read through raw pointers: these are their bounds.
    assert!(x.len() >= m * k && w.len() >= n * k, "f16 gemm: buffers smaller than their shapes");
    let mut y = vec![0f32; m * n];
    if m == 0 || n == 0 || k == 0 {
        return Some(y);
    }
    thread_local! {
        static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    // Equal shares of whole panels, a multiple of the threads in number: the work items are
    // few, and one left over would leave the other threads idle while it runs.
    let panels = n.div_ceil(nr);
    let threads = pool::threads();
    let tasks = (threads * 4).max(panels.div_ceil(MAX_PANELS)).next_multiple_of(threads).min(panels);
    let dst = SendPtr(y.as_mut_ptr());
    par_for(tasks, |t| {
        let p0 = t * panels / tasks;
        let np = (t + 1) * panels / tasks - p0;
        let mut buf = PACKED.with(|b| b.take());
        pack(w, n, k, p0 * nr, np, nr, &mut buf);
        for i0 in (0..m).step_by(MC) {
            let mc = MC.min(m - i0);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                for p in 0..np {
                    let col0 = (p0 + p) * nr;
                    let cols = nr.min(n - col0);
                    let b = &buf[k0 * np * nr + p * kc * nr..][..kc * nr];
                    for ii in (0..mc).step_by(mr) {
                        let rows = mr.min(mc - ii);
                        let i = i0 + ii;
                        // SAFETY: `isa` proves the kernel's CPU features. It reads rows i..i+rows
                        // of x at columns k0..k0+kc (asserted in bounds above) and kc * nr
                        // packed values (`b`), and writes rows i..i+rows of y at columns
                        // col0..col0+cols, inside its m * n values; task t alone owns these
                        // columns, and `y` is not touched until `par_for` returns.
                        unsafe {
                            micro(
                                rows,
                                x.as_ptr().add(i * k + k0),
                                k,
                                b.as_ptr(),
                                kc,
                                dst.get().add(i * n + col0),
                                n,
                                cols,
                                k0 > 0,
                            )
                        };
                    }
                }
            }
        }
        PACKED.with(|b| *b.borrow_mut() = buf);
    });
    Some(y)
}

/// Widens the `np` panels of `nr` weight rows (output columns) from row `c0` into `buf`: block
/// of k `k0..k0 + kc` at `k0 * np * nr`, panel p of it at `+ p * kc * nr`, value (l, c) at
/// `+ l * nr + c`; columns past `n` are zero.
fn pack(w: &[f16], n: usize, k: usize, c0: usize, np: usize, nr: usize, buf: &mut Vec<f32>) {
    buf.clear();
    buf.resize(np * nr * k, 0.0);
    let mut row = vec![0f32; k];
    for p in 0..np {
        for c in 0..nr {
            let col = c0 + p * nr + c;
            if col >= n {
                break;
            }
            crate::kv_kernels::f16_to_f32(&w[col * k..][..k], &mut row);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                let panel = &mut buf[k0 * np * nr + p * kc * nr..][..kc * nr];
                for (l, &v) in row[k0..k0 + kc].iter().enumerate() {
                    panel[l * nr + c] = v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// AVX-512: 8 rows x 32 columns, 16 accumulators of 16 lanes.
    pub(super) const NR512: usize = 32;
    pub(super) const MR512: usize = 8;
    /// AVX2: 6 rows x 16 columns, 12 accumulators of 8 lanes (of 16 registers).
    pub(super) const NR256: usize = 16;
    pub(super) const MR256: usize = 6;

    /// # Safety
    ///
    /// The CPU has AVX-512F; `1 <= rows <= MR512`, `cols <= NR512`; `x` is readable at
    /// `r * ldx + l` and `c` read-writable at `r * ldc + j` for `r < rows`, `l < kc`,
    /// `j < cols`; `b` readable for `kc * NR512` values.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn micro512(
        rows: usize,
        x: *const f32,
        ldx: usize,
        b: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
    ) {
        // SAFETY: passed on from this fn's contract, with `rows` fixed as the const parameter.
        unsafe {
            match rows {
                8 => tile512::<8>(x, ldx, b, kc, c, ldc, cols, acc),
                7 => tile512::<7>(x, ldx, b, kc, c, ldc, cols, acc),
                6 => tile512::<6>(x, ldx, b, kc, c, ldc, cols, acc),
                5 => tile512::<5>(x, ldx, b, kc, c, ldc, cols, acc),
                4 => tile512::<4>(x, ldx, b, kc, c, ldc, cols, acc),
                3 => tile512::<3>(x, ldx, b, kc, c, ldc, cols, acc),
                2 => tile512::<2>(x, ldx, b, kc, c, ldc, cols, acc),
                1 => tile512::<1>(x, ldx, b, kc, c, ldc, cols, acc),
                _ => unreachable!("micro512: {rows} rows"),
            }
        }
    }

    /// `micro512` for `R` rows.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize>(
        x: *const f32,
        ldx: usize,
        b: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
    ) {
        let mut s = [[_mm512_setzero_ps(); 2]; R];
        for l in 0..kc {
            // SAFETY: l < kc and r < R = rows (this fn's contract).
            let (b0, b1) = unsafe { (_mm512_loadu_ps(b.add(l * 32)), _mm512_loadu_ps(b.add(l * 32 + 16))) };
            for (r, s) in s.iter_mut().enumerate() {
                let a = _mm512_set1_ps(unsafe { *x.add(r * ldx + l) });
                s[0] = _mm512_fmadd_ps(a, b0, s[0]);
                s[1] = _mm512_fmadd_ps(a, b1, s[1]);
            }
        }
        let m0 = if cols >= 16 { 0xFFFF } else { ((1u32 << cols) - 1) as u16 };
        let m1 = if cols >= 32 { 0xFFFF } else { ((1u32 << cols.saturating_sub(16)) - 1) as u16 };
        for (r, s) in s.iter().enumerate() {
            let p = c.wrapping_add(r * ldc);
            let q = p.wrapping_add(16);
            // SAFETY: masked loads and stores touch only columns j < cols of row r < rows
            // (this fn's contract); masked-off lanes are not accessed.
            unsafe {
                let (mut v0, mut v1) = (s[0], s[1]);
                if acc {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, p));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, q));
                }
                _mm512_mask_storeu_ps(p, m0, v0);
                _mm512_mask_storeu_ps(q, m1, v1);
            }
        }
    }

    /// # Safety
    ///
    /// As `micro512`, for a CPU with AVX2 and FMA, `rows <= MR256`, `cols <= NR256`, `b`
    /// readable for `kc * NR256` values.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn micro256(
        rows: usize,
        x: *const f32,
        ldx: usize,
        b: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
    ) {
        // SAFETY: passed on from this fn's contract, with `rows` fixed as the const parameter.
        unsafe {
            match rows {
                6 => tile256::<6>(x, ldx, b, kc, c, ldc, cols, acc),
                5 => tile256::<5>(x, ldx, b, kc, c, ldc, cols, acc),
                4 => tile256::<4>(x, ldx, b, kc, c, ldc, cols, acc),
                3 => tile256::<3>(x, ldx, b, kc, c, ldc, cols, acc),
                2 => tile256::<2>(x, ldx, b, kc, c, ldc, cols, acc),
                1 => tile256::<1>(x, ldx, b, kc, c, ldc, cols, acc),
                _ => unreachable!("micro256: {rows} rows"),
            }
        }
    }

    /// `micro256` for `R` rows.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256<const R: usize>(
        x: *const f32,
        ldx: usize,
        b: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
    ) {
        const V: usize = NR256 / 8;
        let mut s = [[_mm256_setzero_ps(); V]; R];
        for l in 0..kc {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: l < kc (this fn's contract).
                *bv = unsafe { _mm256_loadu_ps(b.add(l * NR256 + v * 8)) };
            }
            for (r, s) in s.iter_mut().enumerate() {
                // SAFETY: r < R = rows, l < kc (this fn's contract).
                let a = _mm256_set1_ps(unsafe { *x.add(r * ldx + l) });
                for (s, &bv) in s.iter_mut().zip(&bv) {
                    *s = _mm256_fmadd_ps(a, bv, *s);
                }
            }
        }
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut mask = [lane; V];
        for (v, m) in mask.iter_mut().enumerate() {
            *m = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32 - 8 * v as i32), lane);
        }
        for (r, s) in s.iter().enumerate() {
            for (v, (&s, &m)) in s.iter().zip(&mask).enumerate() {
                let p = c.wrapping_add(r * ldc + v * 8);
                // SAFETY: masked loads and stores touch only columns j < cols of row r < rows
                // (this fn's contract); masked-off lanes are not accessed.
                unsafe {
                    let v = if acc { _mm256_add_ps(s, _mm256_maskload_ps(p, m)) } else { s };
                    _mm256_maskstore_ps(p, m, v);
                }
            }
        }
    }
}
