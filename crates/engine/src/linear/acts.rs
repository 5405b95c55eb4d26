//! Activations quantized once per `forward` to Q8_0-style blocks: 32 signed bytes and one f32
//! scale per block, plus the integer sums the kernels need for offset and minimum terms.

use super::formats::QK;
use super::pool::{par_for, SendPtr};
use super::Isa;

/// `m` rows of `k` activations. Per-block arrays are padded to `kbp` (a multiple of 8) blocks per
/// row, the padding zeroed, so kernels may read whole groups of 8 blocks.
#[derive(Default)]
pub(crate) struct QActs {
    pub m: usize,
    pub k: usize,
    pub kb: usize,
    pub kbp: usize,
    /// `m * k` quantized values, row stride `k`.
    pub q: Vec<i8>,
    /// Scale per block, `m * kbp`.
    pub d: Vec<f32>,
    /// Sum of the block's quantized values, `m * kbp`.
    pub s: Vec<i32>,
    /// Sums of the two 16-value halves, `m * kbp * 2` (lo, hi).
    pub s16: Vec<i32>,
    /// `d * s`, `m * kbp`.
    pub ds: Vec<f32>,
}

impl QActs {
    #[inline(always)]
    pub fn row_q(&self, i: usize) -> &[i8] {
        &self.q[i * self.k..(i + 1) * self.k]
    }
    #[inline(always)]
    pub fn row_d(&self, i: usize) -> &[f32] {
        &self.d[i * self.kbp..(i + 1) * self.kbp]
    }
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub fn row_s(&self, i: usize) -> &[i32] {
        &self.s[i * self.kbp..(i + 1) * self.kbp]
    }
    #[inline(always)]
    pub fn row_s16(&self, i: usize) -> &[i32] {
        &self.s16[i * self.kbp * 2..(i + 1) * self.kbp * 2]
    }
    #[inline(always)]
    pub fn row_ds(&self, i: usize) -> &[f32] {
        &self.ds[i * self.kbp..(i + 1) * self.kbp]
    }

    /// Quantizes `x` (`m` rows of `k`, contiguous) into `self`, reusing its allocations.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize, isa: Isa) {
        debug_assert_eq!(x.len(), m * k);
        debug_assert_eq!(k % QK, 0);
        let kb = k / QK;
        let kbp = kb.div_ceil(8) * 8;
        self.m = m;
        self.k = k;
        self.kb = kb;
        self.kbp = kbp;
        resize(&mut self.q, m * k);
        resize(&mut self.d, m * kbp);
        resize(&mut self.s, m * kbp);
        resize(&mut self.s16, m * kbp * 2);
        resize(&mut self.ds, m * kbp);
        let q = SendPtr(self.q.as_mut_ptr());
        let d = SendPtr(self.d.as_mut_ptr());
        let s = SendPtr(self.s.as_mut_ptr());
        let s16 = SendPtr(self.s16.as_mut_ptr());
        let ds = SendPtr(self.ds.as_mut_ptr());
        let row = |i: usize| {
            // SAFETY: row i's slices are disjoint from every other row's; the vectors were sized
            // above.
            let (q, d, s, s16, ds) = unsafe {
                (
                    std::slice::from_raw_parts_mut(q.get().add(i * k), k),
                    std::slice::from_raw_parts_mut(d.get().add(i * kbp), kbp),
                    std::slice::from_raw_parts_mut(s.get().add(i * kbp), kbp),
                    std::slice::from_raw_parts_mut(s16.get().add(i * 2 * kbp), 2 * kbp),
                    std::slice::from_raw_parts_mut(ds.get().add(i * kbp), kbp),
                )
            };
            let xr = &x[i * k..(i + 1) * k];
            quantize_row(xr, q, &mut d[..kb], &mut s16[..2 * kb], isa);
            for b in 0..kb {
                s[b] = s16[2 * b] + s16[2 * b + 1];
                ds[b] = d[b] * s[b] as f32;
            }
            d[kb..].fill(0.0);
            s[kb..].fill(0);
            s16[2 * kb..].fill(0);
            ds[kb..].fill(0.0);
        };
        if m * k >= 1 << 16 {
            const ROWS: usize = 8;
            par_for(m.div_ceil(ROWS), |c| (c * ROWS..(c * ROWS + ROWS).min(m)).for_each(row));
        } else {
            (0..m).for_each(row);
        }
    }
}

fn resize<T: Copy + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.clear();
        v.resize(n, T::default());
    }
}

fn quantize_row(x: &[f32], q: &mut [i8], d: &mut [f32], s16: &mut [i32], isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2().is_some() {
        // The AVX2 kernel stores through raw pointers: its bounds.
        assert!(q.len() >= x.len(), "quantize_row: output shorter than input");
        // SAFETY: the `Isa` token proves AVX2, FMA and F16C; `q` holds all of `x`'s blocks.
        unsafe { quantize_row_avx2(x, q, d, s16) };
        return;
    }
    let _ = isa;
    quantize_row_scalar(x, q, d, s16)
}

pub(crate) fn quantize_row_scalar(x: &[f32], q: &mut [i8], d: &mut [f32], s16: &mut [i32]) {
    for (b, (xb, qb)) in x.chunks_exact(QK).zip(q.chunks_exact_mut(QK)).enumerate() {
        let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
        let db = amax / 127.0;
        let id = if db != 0.0 { 1.0 / db } else { 0.0 };
        let mut sums = [0i32; 2];
        for (j, (o, &v)) in qb.iter_mut().zip(xb).enumerate() {
            let r = (v * id).round_ties_even() as i32;
            *o = r as i8;
            sums[j / 16] += r;
        }
        d[b] = db;
        s16[2 * b] = sums[0];
        s16[2 * b + 1] = sums[1];
    }
}

/// `quantize_row_scalar` with AVX2, bit for bit.
///
/// # Safety
///
/// The CPU must have AVX2, FMA and F16C, and `q.len() >= x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(x: &[f32], q: &mut [i8], d: &mut [f32], s16: &mut [i32]) {
    use std::arch::x86_64::*;
    let kb = x.len() / QK;
    let sign = _mm256_set1_ps(-0.0);
    let xp = x.as_ptr();
    let qp = q.as_mut_ptr();
    for b in 0..kb {
        // SAFETY: block b < x.len() / QK of `x`, 32 values.
        let (v0, v1, v2, v3) = unsafe {
            let p = xp.add(b * QK);
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)), _mm256_loadu_ps(p.add(16)), _mm256_loadu_ps(p.add(24)))
        };
        let mut m = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
        let m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        let amax = _mm_cvtss_f32(m4);
        let db = amax / 127.0;
        let id = if db != 0.0 { 1.0 / db } else { 0.0 };
        d[b] = db;
        let idv = _mm256_set1_ps(id);
        const R: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let i0 = _mm256_cvtps_epi32(_mm256_round_ps::<R>(_mm256_mul_ps(v0, idv)));
        let i1 = _mm256_cvtps_epi32(_mm256_round_ps::<R>(_mm256_mul_ps(v1, idv)));
        let i2 = _mm256_cvtps_epi32(_mm256_round_ps::<R>(_mm256_mul_ps(v2, idv)));
        let i3 = _mm256_cvtps_epi32(_mm256_round_ps::<R>(_mm256_mul_ps(v3, idv)));
        // half sums
        let lo = _mm256_add_epi32(i0, i1);
        let hi = _mm256_add_epi32(i2, i3);
        let t = _mm256_hadd_epi32(lo, hi); // [lo01 lo23 hi01 hi23 | lo45 lo67 hi45 hi67]
        let t = _mm256_hadd_epi32(t, t); // [lo0123 hi0123 .. | lo4567 hi4567 ..]
        let t2 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        s16[2 * b] = _mm_cvtsi128_si32(t2);
        s16[2 * b + 1] = _mm_extract_epi32::<1>(t2);
        // pack to bytes in order
        let a = _mm256_packs_epi32(i0, i1); // [0..4 8..12 | 4..8 12..16] as i16
        let c = _mm256_packs_epi32(i2, i3);
        let e = _mm256_packs_epi16(a, c); // bytes in lane-interleaved order
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let e = _mm256_permutevar8x32_epi32(e, perm);
        // SAFETY: block b of `q`, which is at least as long as `x` (contract).
        unsafe { _mm256_storeu_si256(qp.add(b * QK) as *mut __m256i, e) };
    }
}
