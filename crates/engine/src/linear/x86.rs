//! x86-64 kernels.
//!
//! Per-row (matrix-vector) kernels: two instruction-set levels share one body (the
//! `row_kernels!` macro), AVX2 (`_mm256_maddubs_epi16`) and AVX-512 VNNI (`vpdpbusd` on 256-bit
//! registers); for the legacy types the AVX-512 level has its own variant that handles two
//! blocks per 512-bit instruction (`rows_legacy512`). Each weight block's 32 products are summed
//! in integers, eight blocks' sums are gathered into one vector, and the float scales are applied
//! eight blocks at a time.
//!
//! Many-row GEMM (`avx512::Tile` and `avx512::tile_rows`): 16 weight rows are unpacked into a
//! tile where each 64-byte group holds 4 consecutive values of all 16 rows, so that one
//! `vpdpbusd` with a broadcast activation computes 4 products for each of 16 output columns; the
//! tile then meets every activation row. Without AVX-512, `avx2::Tile8` and `avx2::tile8_rows`
//! do the same for 8 rows with `vpmaddubsw` + `vpmaddwd` (the layout llama.cpp's AVX2 repacked
//! GEMMs use too).

use std::arch::x86_64::*;

use super::acts::QActs;
use super::formats::{WType, QK};
use super::isa::Avx512;

/// One quantized activation row, as raw pointers (see `QActs`).
pub(crate) struct ARow {
    pub q: *const i8,
    pub d: *const f32,
    pub s: *const i32,
    pub s16: *const i32,
    pub ds: *const f32,
    pub kb: usize,
}

impl ARow {
    pub fn new(a: &QActs, i: usize) -> Self {
        Self {
            q: a.row_q(i).as_ptr(),
            d: a.row_d(i).as_ptr(),
            s: a.row_s(i).as_ptr(),
            s16: a.row_s16(i).as_ptr(),
            ds: a.row_ds(i).as_ptr(),
            kb: a.kb,
        }
    }
}

pub(crate) const T_Q4_0: u8 = 0;
pub(crate) const T_Q4_1: u8 = 1;
pub(crate) const T_Q5_0: u8 = 2;
pub(crate) const T_Q5_1: u8 = 3;
pub(crate) const T_Q8_0: u8 = 4;

/// The row loop of the legacy-type kernels, around a `$step` that folds groups of 8 (or 4)
/// blocks into an accumulator; the last 1-3 blocks go through the 256-bit `legacy_step`.
/// Rows are read strictly one after another: interleaving several rows' blocks (for more
/// independent work) made the hardware prefetchers give up, and weights streamed from memory at
/// a third of the speed.
macro_rules! legacy_rows_body {
    ($step:ident, $w:ident, $rb:ident, $nrows:ident, $a:ident, $out:ident) => {{
        let kb = $a.kb;
        let full = kb / 8 * 8;
        // SAFETY (every block below): the kernel's contract, stated on the fns that expand
        // this macro: `w` holds `nrows` rows of `rb` bytes, each with `a.kb` blocks of type T,
        // `a` one activation row padded to whole groups of 8 blocks, `out` room for `nrows`
        // values; the CPU has the features the enclosing fn enables.
        let one = |row: *const u8| {
            let mut acc = _mm256_setzero_ps();
            let mut b0 = 0;
            while b0 < full {
                // SAFETY: blocks b0..b0+8 < kb of `row` (see above).
                acc = unsafe { $step::<T>(row, $a, b0, 8, acc) };
                b0 += 8;
            }
            if b0 + 4 <= kb {
                // SAFETY: blocks b0..b0+4 <= kb of `row`.
                acc = unsafe { $step::<T>(row, $a, b0, 4, acc) };
                b0 += 4;
            }
            if b0 < kb {
                // SAFETY: blocks b0..kb of `row`.
                acc = unsafe { legacy_step::<T>(row, $a, b0, kb - b0, acc) };
            }
            acc
        };
        // Four rows share one horizontal reduction.
        let mut r = 0;
        while r + 4 <= $nrows {
            // SAFETY: rows r..r+4 <= nrows of `w`.
            let acc: [__m256; 4] = std::array::from_fn(|i| one(unsafe { $w.add((r + i) * $rb) }));
            // SAFETY: out[r..r+4] is inside `out`.
            unsafe { _mm_storeu_ps($out.add(r), hsum4_ps(&acc)) };
            r += 4;
        }
        for r in r..$nrows {
            // SAFETY: row r < nrows of `w`, out[r] inside `out`.
            unsafe { *$out.add(r) = hsum_ps(one($w.add(r * $rb))) };
        }
    }};
}

/// The bodies of the per-row (matrix-vector) kernels. Expanded once per level, inside a module
/// that defines `dot(u8 values, i8 values) -> 8 x i32 partial sums` and `bits32(u32) -> 32 bytes
/// 0xFF/0x00`, under that level's target features.
macro_rules! row_kernels {
    ($feat:literal) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn hsum8(p: &[__m256i; 8]) -> __m256i {
            let t0 = _mm256_hadd_epi32(p[0], p[1]);
            let t1 = _mm256_hadd_epi32(p[2], p[3]);
            let t2 = _mm256_hadd_epi32(p[4], p[5]);
            let t3 = _mm256_hadd_epi32(p[6], p[7]);
            let u0 = _mm256_hadd_epi32(t0, t1);
            let u1 = _mm256_hadd_epi32(t2, t3);
            let lo = _mm256_permute2x128_si256::<0x20>(u0, u1);
            let hi = _mm256_permute2x128_si256::<0x31>(u0, u1);
            _mm256_add_epi32(lo, hi)
        }

        /// Sums of the two 16-value halves: `([b0lo..b3lo, b0hi..b3hi], [b4lo..b7lo, b4hi..b7hi])`.
        #[inline]
        #[target_feature(enable = $feat)]
        fn hsum8_halves(p: &[__m256i; 8]) -> (__m256i, __m256i) {
            let t0 = _mm256_hadd_epi32(p[0], p[1]);
            let t1 = _mm256_hadd_epi32(p[2], p[3]);
            let t2 = _mm256_hadd_epi32(p[4], p[5]);
            let t3 = _mm256_hadd_epi32(p[6], p[7]);
            (_mm256_hadd_epi32(t0, t1), _mm256_hadd_epi32(t2, t3))
        }

        #[inline]
        #[target_feature(enable = $feat)]
        fn hsum_ps(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }

        /// The horizontal sums of four vectors.
        #[inline]
        #[target_feature(enable = $feat)]
        fn hsum4_ps(v: &[__m256; 4]) -> __m128 {
            let t0 = _mm256_hadd_ps(v[0], v[1]);
            let t1 = _mm256_hadd_ps(v[2], v[3]);
            let u = _mm256_hadd_ps(t0, t1); // [v0a v1a v2a v3a | v0b v1b v2b v3b]
            _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps::<1>(u))
        }

        /// Up to 8 f16 values at `p`, `p + stride`, ... as f32; lanes from `n` on are zero.
        ///
        /// # Safety
        ///
        /// The CPU must have the features this fn enables, and the 2 bytes at `p + j * stride`
        /// must be readable for every `j < n.min(8)`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn load_f16x8(p: *const u8, stride: usize, n: usize) -> __m256 {
            // SAFETY: callers pass only j < n.min(8) (the contract above).
            let ld = |j: usize| unsafe { std::ptr::read_unaligned(p.add(j * stride) as *const u16) };
            let mut v = _mm_setzero_si128();
            if n >= 4 {
                v = _mm_insert_epi16::<0>(v, ld(0) as i32);
                v = _mm_insert_epi16::<1>(v, ld(1) as i32);
                v = _mm_insert_epi16::<2>(v, ld(2) as i32);
                v = _mm_insert_epi16::<3>(v, ld(3) as i32);
                if n >= 8 {
                    v = _mm_insert_epi16::<4>(v, ld(4) as i32);
                    v = _mm_insert_epi16::<5>(v, ld(5) as i32);
                    v = _mm_insert_epi16::<6>(v, ld(6) as i32);
                    v = _mm_insert_epi16::<7>(v, ld(7) as i32);
                } else {
                    for j in 4..n {
                        let mut a = [0u16; 8];
                        // SAFETY: `a` is 16 writable bytes.
                        unsafe { _mm_storeu_si128(a.as_mut_ptr() as *mut __m128i, v) };
                        a[j] = ld(j);
                        // SAFETY: as above.
                        v = unsafe { _mm_loadu_si128(a.as_ptr() as *const __m128i) };
                    }
                }
            } else {
                let mut a = [0u16; 8];
                for (j, a) in a.iter_mut().enumerate().take(n) {
                    *a = ld(j);
                }
                // SAFETY: `a` is 16 readable bytes.
                v = unsafe { _mm_loadu_si128(a.as_ptr() as *const __m128i) };
            }
            _mm256_cvtph_ps(v)
        }

        /// Dot products of the 32-value blocks `b0..b0+n` (n <= 8) of one legacy-type row.
        ///
        /// # Safety
        ///
        /// The CPU must have the features this fn enables; `row` must hold blocks `b0..b0+n`
        /// of type `T` and `a` that many activation blocks.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn legacy_group<const T: u8>(row: *const u8, a: &ARow, b0: usize, n: usize) -> [__m256i; 8] {
            let bb = match T {
                T_Q4_0 => 18,
                T_Q4_1 => 20,
                T_Q5_0 => 22,
                T_Q5_1 => 24,
                _ => 34,
            };
            let m0f = _mm256_set1_epi8(0x0F);
            let m10 = _mm256_set1_epi8(0x10);
            let mut p = [_mm256_setzero_si256(); 8];
            for (j, p) in p.iter_mut().enumerate().take(n) {
                // SAFETY: block b0 + j < b0 + n of `row`, and its 32 activations (contract).
                let (blk, x) = unsafe {
                    let blk = row.add((b0 + j) * bb);
                    (blk, _mm256_loadu_si256(a.q.add((b0 + j) * QK) as *const __m256i))
                };
                *p = if T == T_Q8_0 {
                    // SAFETY: a Q8_0 block is a 2-byte scale and 32 values.
                    let w = unsafe { _mm256_loadu_si256(blk.add(2) as *const __m256i) };
                    dot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
                } else {
                    let qo = match T {
                        T_Q4_0 => 2,
                        T_Q4_1 => 4,
                        T_Q5_0 => 6,
                        _ => 8,
                    };
                    // SAFETY: the block's 16 bytes of nibbles end it, from offset qo.
                    let q = unsafe { _mm_loadu_si128(blk.add(qo) as *const __m128i) };
                    let mut v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), m0f);
                    if T == T_Q5_0 || T == T_Q5_1 {
                        // SAFETY: Q5 blocks keep 4 bytes of high bits just before the nibbles.
                        let qh = unsafe { std::ptr::read_unaligned(blk.add(qo - 4) as *const u32) };
                        v = _mm256_or_si256(v, _mm256_and_si256(bits32(qh), m10));
                    }
                    dot(v, x)
                };
            }
            p
        }

        /// `acc` plus the dot products of blocks `b0..b0+n` (n <= 8) of one legacy-type row.
        ///
        /// # Safety
        ///
        /// As for `legacy_group`; `a`'s per-block arrays must also be readable for 8 blocks
        /// from `b0` (`QActs` pads them to whole groups of 8).
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn legacy_step<const T: u8>(row: *const u8, a: &ARow, b0: usize, n: usize, acc: __m256) -> __m256 {
            let bb = match T {
                T_Q4_0 => 18,
                T_Q4_1 => 20,
                T_Q5_0 => 22,
                T_Q5_1 => 24,
                _ => 34,
            };
            // SAFETY: this fn's contract is `legacy_group`'s.
            let p = unsafe { legacy_group::<T>(row, a, b0, n) };
            let mut isum = hsum8(&p);
            if T == T_Q4_0 || T == T_Q5_0 {
                // SAFETY: 8 block sums from b0 (padded, per the contract).
                let s = unsafe { _mm256_loadu_si256(a.s.add(b0) as *const __m256i) };
                let s = if T == T_Q4_0 { _mm256_slli_epi32::<3>(s) } else { _mm256_slli_epi32::<4>(s) };
                isum = _mm256_sub_epi32(isum, s);
            }
            // SAFETY: the n blocks' f16 scales open each block; 8 padded activation scales.
            let (dw, dx) = unsafe { (load_f16x8(row.add(b0 * bb), bb, n), _mm256_loadu_ps(a.d.add(b0))) };
            let mut acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc);
            if T == T_Q4_1 || T == T_Q5_1 {
                // SAFETY: the f16 minimum follows each block's scale; 8 padded `ds` values.
                let (mw, ds) = unsafe { (load_f16x8(row.add(b0 * bb + 2), bb, n), _mm256_loadu_ps(a.ds.add(b0))) };
                acc = _mm256_fmadd_ps(mw, ds, acc);
            }
            acc
        }

        /// `out[r] = row r . x` for `nrows` rows of a legacy-type matrix (row stride `rb` bytes).
        ///
        /// # Safety
        ///
        /// The CPU must have the features this fn enables; `w` must hold `nrows` rows of `rb`
        /// bytes, each at least `a.kb` blocks of type `T`; `a` must point into a `QActs` row
        /// (per-block arrays padded to groups of 8); `out` must be writable for `nrows` values.
        // The AVX-512 level has its own `rows_legacy512`, so its expansion of this one is unused.
        #[allow(dead_code)]
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn rows_legacy<const T: u8>(w: *const u8, rb: usize, nrows: usize, a: &ARow, out: *mut f32) {
            legacy_rows_body!(legacy_step, w, rb, nrows, a, out);
        }

        /// Scales (8 bytes) and mins (8 bytes) of a Q4_K/Q5_K super-block, unpacked from 12 bytes.
        ///
        /// # Safety
        ///
        /// The CPU must have the features this fn enables; `p` must point to 12 readable bytes.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn k4_scales(p: *const u8) -> (__m256, __m256) {
            const KM1: u32 = 0x3f3f3f3f;
            const KM2: u32 = 0x0f0f0f0f;
            const KM3: u32 = 0x03030303;
            // SAFETY: 12 readable bytes at p (contract).
            let (u0, u1, u2) = unsafe {
                (
                    std::ptr::read_unaligned(p as *const u32),
                    std::ptr::read_unaligned(p.add(4) as *const u32),
                    std::ptr::read_unaligned(p.add(8) as *const u32),
                )
            };
            let sc_lo = u0 & KM1;
            let sc_hi = (u2 & KM2) | (((u0 >> 6) & KM3) << 4);
            let mn_lo = u1 & KM1;
            let mn_hi = ((u2 >> 4) & KM2) | (((u1 >> 6) & KM3) << 4);
            let sc = _mm_set_epi32(0, 0, sc_hi as i32, sc_lo as i32);
            let mn = _mm_set_epi32(0, 0, mn_hi as i32, mn_lo as i32);
            (_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)))
        }

        /// Q4_K (`Q5 == false`) or Q5_K rows.
        ///
        /// # Safety
        ///
        /// As for `rows_legacy`, with Q4_K (Q5_K) super-blocks of 8 blocks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn rows_k45<const Q5: bool>(w: *const u8, rb: usize, nrows: usize, a: &ARow, out: *mut f32) {
            let nsb = a.kb / 8;
            let bb = if Q5 { 176 } else { 144 };
            let qo = if Q5 { 48 } else { 16 };
            let m0f = _mm256_set1_epi8(0x0F);
            let m10 = _mm256_set1_epi8(0x10);
            for r in 0..nrows {
                // SAFETY: row r < nrows of `w` (contract).
                let row = unsafe { w.add(r * rb) };
                let mut acc = _mm256_setzero_ps();
                let mut accm = _mm256_setzero_ps();
                for sb in 0..nsb {
                    // SAFETY: super-block sb < a.kb / 8 of the row, and its 256 activations.
                    let (blk, xq) = unsafe { (row.add(sb * bb), a.q.add(sb * 256)) };
                    let mut p = [_mm256_setzero_si256(); 8];
                    let hb = if Q5 {
                        // SAFETY: a Q5_K super-block's 32 bytes of high bits sit at offset 16.
                        unsafe { _mm256_loadu_si256(blk.add(16) as *const __m256i) }
                    } else {
                        m0f
                    };
                    for c in 0..4 {
                        // SAFETY: the super-block's 128 bytes of nibbles from offset qo, and
                        // its activations 64c..64c+64.
                        let (q, x0, x1) = unsafe {
                            (
                                _mm256_loadu_si256(blk.add(qo + c * 32) as *const __m256i),
                                _mm256_loadu_si256(xq.add(64 * c) as *const __m256i),
                                _mm256_loadu_si256(xq.add(64 * c + 32) as *const __m256i),
                            )
                        };
                        let mut lo = _mm256_and_si256(q, m0f);
                        let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m0f);
                        if Q5 {
                            let b_lo = _mm256_set1_epi8((1u8 << (2 * c)) as i8);
                            let b_hi = _mm256_set1_epi8((1u8 << (2 * c + 1)) as i8);
                            let h_lo = _mm256_cmpeq_epi8(_mm256_and_si256(hb, b_lo), b_lo);
                            let h_hi = _mm256_cmpeq_epi8(_mm256_and_si256(hb, b_hi), b_hi);
                            lo = _mm256_or_si256(lo, _mm256_and_si256(h_lo, m10));
                            hi = _mm256_or_si256(hi, _mm256_and_si256(h_hi, m10));
                        }
                        p[2 * c] = dot(lo, x0);
                        p[2 * c + 1] = dot(hi, x1);
                    }
                    let sums = hsum8(&p);
                    // SAFETY: the super-block opens with f16 d and dmin, then 12 bytes of
                    // scales; the 8 activation scales and `ds` of super-block sb.
                    let (sc, mn, dm, dx, ds) = unsafe {
                        let (sc, mn) = k4_scales(blk.add(4));
                        let dm = std::ptr::read_unaligned(blk as *const i32);
                        (sc, mn, dm, _mm256_loadu_ps(a.d.add(sb * 8)), _mm256_loadu_ps(a.ds.add(sb * 8)))
                    };
                    let dd = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
                    let d = _mm256_broadcastss_ps(dd);
                    let dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
                    acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), sc), _mm256_mul_ps(d, dx), acc);
                    accm = _mm256_fmadd_ps(_mm256_mul_ps(mn, dmin), ds, accm);
                }
                // SAFETY: r < nrows values fit in `out` (contract).
                unsafe { *out.add(r) = hsum_ps(acc) - hsum_ps(accm) };
            }
        }

        /// Q6_K rows.
        ///
        /// # Safety
        ///
        /// As for `rows_legacy`, with Q6_K super-blocks of 8 blocks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn rows_q6k(w: *const u8, rb: usize, nrows: usize, a: &ARow, out: *mut f32) {
            let nsb = a.kb / 8;
            let m0f = _mm256_set1_epi8(0x0F);
            let m30 = _mm256_set1_epi8(0x30);
            let perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
            for r in 0..nrows {
                // SAFETY: row r < nrows of `w` (contract).
                let row = unsafe { w.add(r * rb) };
                let mut acc = _mm256_setzero_ps();
                for sb in 0..nsb {
                    // SAFETY: super-block sb < a.kb / 8 of the row (210 bytes each), and its
                    // 256 activations.
                    let (blk, xq) = unsafe { (row.add(sb * 210), a.q.add(sb * 256)) };
                    let mut p = [_mm256_setzero_si256(); 8];
                    for h in 0..2 {
                        // SAFETY: half h's 64 bytes of low bits, 32 of high bits (offset 128)
                        // and 128 activations.
                        let (ql0, ql1, qh, x0, x1, x2, x3) = unsafe {
                            let x = xq.add(h * 128);
                            (
                                _mm256_loadu_si256(blk.add(h * 64) as *const __m256i),
                                _mm256_loadu_si256(blk.add(h * 64 + 32) as *const __m256i),
                                _mm256_loadu_si256(blk.add(128 + h * 32) as *const __m256i),
                                _mm256_loadu_si256(x as *const __m256i),
                                _mm256_loadu_si256(x.add(32) as *const __m256i),
                                _mm256_loadu_si256(x.add(64) as *const __m256i),
                                _mm256_loadu_si256(x.add(96) as *const __m256i),
                            )
                        };
                        let v0 = _mm256_or_si256(
                            _mm256_and_si256(ql0, m0f),
                            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
                        );
                        let v1 = _mm256_or_si256(
                            _mm256_and_si256(ql1, m0f),
                            _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
                        );
                        let v2 = _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m0f),
                            _mm256_and_si256(qh, m30),
                        );
                        let v3 = _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m0f),
                            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
                        );
                        p[4 * h] = dot(v0, x0);
                        p[4 * h + 1] = dot(v1, x1);
                        p[4 * h + 2] = dot(v2, x2);
                        p[4 * h + 3] = dot(v3, x3);
                    }
                    let (u0, u1) = hsum8_halves(&p);
                    // SAFETY: super-block sb's 16 half-block sums, 8 activation scales, and
                    // the block's 16 scale bytes (offset 192) and f16 d (offset 208).
                    let (s16a, s16b, sc, dx0, dx1, d16) = unsafe {
                        let s16 = a.s16.add(sb * 16);
                        (
                            _mm256_loadu_si256(s16 as *const __m256i),
                            _mm256_loadu_si256(s16.add(8) as *const __m256i),
                            _mm_loadu_si128(blk.add(192) as *const __m128i),
                            _mm_loadu_ps(a.d.add(sb * 8)),
                            _mm_loadu_ps(a.d.add(sb * 8 + 4)),
                            std::ptr::read_unaligned(blk.add(208) as *const u16) as i32,
                        )
                    };
                    let sa = _mm256_permutevar8x32_epi32(s16a, perm);
                    let sbv = _mm256_permutevar8x32_epi32(s16b, perm);
                    let i0 = _mm256_sub_epi32(u0, _mm256_slli_epi32::<5>(sa));
                    let i1 = _mm256_sub_epi32(u1, _mm256_slli_epi32::<5>(sbv));
                    let sc0 = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi32(sc), perm));
                    let sc1 = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(
                        _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc)),
                        perm,
                    ));
                    let dx0 = _mm256_set_m128(dx0, dx0);
                    let dx1 = _mm256_set_m128(dx1, dx1);
                    let t = _mm256_mul_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(sc0, dx0));
                    let t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(sc1, dx1), t);
                    let d = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(d16)));
                    acc = _mm256_fmadd_ps(t, d, acc);
                }
                // SAFETY: r < nrows values fit in `out` (contract).
                unsafe { *out.add(r) = hsum_ps(acc) };
            }
        }
    };
}

pub(crate) mod avx2 {
    use super::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn bits32(x: u32) -> __m256i {
        let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000);
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
        let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe_u64 as i64));
        _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
    }

    row_kernels!("avx2,fma,f16c");

    // ---------------------------------------------------------------------------------------
    // Many-row GEMM without VNNI (`Tile8`, `tile8_rows`): 8 weight rows per tile, each 32-byte
    // group holding 4 consecutive values of all 8 rows, so that one `vpmaddubsw` with a
    // broadcast group of 4 activations gives every row's two pair sums. `vpmaddubsw` saturates
    // at i16: with activations in -127..=127, a pair sum of values below 2^b stays under
    // 2^(b+8), so `S` of them (8 for 4-bit values, 4 for 5-bit, 2 for 6-bit) are added in i16
    // before one `vpmaddwd` widens them. Q8_0's values, offset to 0..=255, would saturate: its
    // tiles keep them signed, with their magnitudes beside them (`tile8_kernel_q8`).

    /// Whether `tile8_rows` handles `t` (all native types).
    pub(crate) fn gemm8_supports(t: WType) -> bool {
        let _ = t;
        true
    }

    /// 8 weight rows repacked: per 32-value block, 8 groups of 4 values, each group holding
    /// the 4 bytes of all 8 rows (32 bytes), and the rows' scales per block.
    pub(crate) struct Tile8 {
        kb: usize,
        /// `kb * 256` bytes.
        qs: Vec<u8>,
        /// Q8_0 only (else empty): |qs|, so that the kernel reads the magnitudes instead of
        /// taking them per activation row.
        abs: Vec<u8>,
        /// `[block][row]`, `kb * 8` each: the scales of values 0..16 and 16..32, the minimum.
        sc_lo: Vec<f32>,
        sc_hi: Vec<f32>,
        mn: Vec<f32>,
    }

    impl Tile8 {
        pub(crate) fn new(kb: usize) -> Self {
            Self {
                kb,
                qs: vec![0; kb * 256],
                abs: Vec::new(),
                sc_lo: vec![0.0; kb * 8],
                sc_hi: vec![0.0; kb * 8],
                mn: vec![0.0; kb * 8],
            }
        }

        pub(crate) fn kb(&self) -> usize {
            self.kb
        }

        /// Repacks rows `0..nrows` (<= 8) starting at `w`; rows past `nrows` become zero.
        /// Unpacking is scalar: a tile is filled once and then met by every activation row of
        /// the call (hundreds in a prompt chunk), so it costs a few percent.
        pub(crate) fn fill(&mut self, t: WType, w: &[u8], rb: usize, nrows: usize) {
            let kb = self.kb;
            assert!(nrows <= 8 && w.len() >= nrows * rb && rb == t.row_bytes(kb * QK) && gemm8_supports(t));
            if nrows < 8 {
                self.qs.fill(0);
                self.sc_lo.fill(0.0);
                self.sc_hi.fill(0.0);
                self.mn.fill(0.0);
            }
            for r in 0..nrows {
                let row = &w[r * rb..(r + 1) * rb];
                for b in 0..kb {
                    let mut u = super::super::formats::unpack32(t, row, b);
                    if t == WType::Q8_0 {
                        // Back to the signed values (see above).
                        u.v.iter_mut().for_each(|v| *v ^= 0x80);
                    }
                    let q = &mut self.qs[b * 256..(b + 1) * 256];
                    for g in 0..8 {
                        q[g * 32 + r * 4..g * 32 + r * 4 + 4].copy_from_slice(&u.v[g * 4..g * 4 + 4]);
                    }
                    self.sc_lo[b * 8 + r] = u.sc[0];
                    self.sc_hi[b * 8 + r] = u.sc[1];
                    self.mn[b * 8 + r] = u.mn;
                }
            }
            if t == WType::Q8_0 {
                self.abs.clear();
                self.abs.extend(self.qs.iter().map(|&v| (v as i8).unsigned_abs()));
            }
        }
    }

    /// The i32 sums, per row of the tile, of groups `g0..g0 + n` of one block (`S` groups
    /// added in i16 at a time), on top of `acc`.
    #[inline(always)]
    fn groups<const S: usize>(w: &[__m256i; 8], x: &[__m256i; 8], g0: usize, n: usize, acc: __m256i) -> __m256i {
        // SAFETY: only called from `tile8_kernel`, whose target features include AVX2.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut acc = acc;
            let mut g = g0;
            while g < g0 + n {
                let mut p = _mm256_maddubs_epi16(w[g], x[g]);
                for j in 1..S {
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[g + j], x[g + j]));
                }
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
                g += S;
            }
            acc
        }
    }

    /// `R` activation rows from `r0` times one tile: 8 output columns from `col0`.
    ///
    /// # Safety
    ///
    /// As for `tile8_rows`, for rows `r0..r0 + R`; `mask` has no lane at or past `n - col0`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile8_kernel<const OFF: i32, const HALF: bool, const MIN: bool, const S: usize, const R: usize>(
        tile: &Tile8,
        a: &QActs,
        r0: usize,
        dst: *mut f32,
        n: usize,
        col0: usize,
        mask: __m256i,
    ) {
        let (kb, k, kbp) = (tile.kb, a.k, a.kbp);
        let mut out = [_mm256_setzero_ps(); R];
        let qs = tile.qs.as_ptr();
        // SAFETY (every access in this loop): a tile holds kb blocks of 256 bytes and 8 scales
        // of each kind per block (`Tile8::new`); `a` holds rows r0..r0 + R (contract), each k
        // values and kbp >= kb per-block entries.
        for b in 0..kb {
            let wq = unsafe { qs.add(b * 256) };
            let w: [__m256i; 8] =
                std::array::from_fn(|g| unsafe { _mm256_loadu_si256(wq.add(g * 32) as *const __m256i) });
            let sc_lo = unsafe { _mm256_loadu_ps(tile.sc_lo.as_ptr().add(b * 8)) };
            let sc_hi = if HALF { unsafe { _mm256_loadu_ps(tile.sc_hi.as_ptr().add(b * 8)) } } else { sc_lo };
            let mn = if MIN { unsafe { _mm256_loadu_ps(tile.mn.as_ptr().add(b * 8)) } } else { sc_lo };
            for (r, out) in out.iter_mut().enumerate() {
                let row = r0 + r;
                let xq = unsafe { a.q.as_ptr().add(row * k + b * QK) };
                let x: [__m256i; 8] = std::array::from_fn(|g| {
                    _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(xq.add(4 * g) as *const i32) })
                });
                let dx = _mm256_set1_ps(unsafe { *a.d.get_unchecked(row * kbp + b) });
                if !HALF {
                    let init = _mm256_set1_epi32(-OFF * unsafe { *a.s.get_unchecked(row * kbp + b) });
                    let acc = groups::<S>(&w, &x, 0, 8, init);
                    *out = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(sc_lo, dx), *out);
                } else {
                    let (s_lo, s_hi) = unsafe {
                        let s16 = a.s16.as_ptr().add((row * kbp + b) * 2);
                        (*s16, *s16.add(1))
                    };
                    let lo = groups::<S>(&w, &x, 0, 4, _mm256_set1_epi32(-OFF * s_lo));
                    let hi = groups::<S>(&w, &x, 4, 4, _mm256_set1_epi32(-OFF * s_hi));
                    *out = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(sc_lo, dx), *out);
                    *out = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(sc_hi, dx), *out);
                }
                if MIN {
                    let ds = _mm256_set1_ps(unsafe { *a.ds.get_unchecked(row * kbp + b) });
                    *out = _mm256_fmadd_ps(mn, ds, *out);
                }
            }
        }
        for (r, out) in out.iter().enumerate() {
            // SAFETY: row r0 + r of `dst`, columns col0.. under `mask`, all < n (contract).
            unsafe { _mm256_maskstore_ps(dst.add((r0 + r) * n + col0), mask, *out) };
        }
    }

    /// Q8_0's kernel: `R` activation rows times one tile. Its 8-bit weights cannot be offset
    /// to unsigned as the other types' are (a pair sum would saturate), so each product is
    /// taken as |w| * (x with w's sign) (`vpsignb`), at most 2 * 127 * 128 per pair sum, and
    /// every group needs its own `vpmaddwd`. Groups are the outer loop: |w| (from the tile)
    /// and w are loaded once per group for the `R` rows, and only `R` i32 sums stay live.
    /// `tile8_kernel`'s row-major loop with both sets of 8 groups held (16 registers, AVX2's
    /// whole file) spilled: 170–205 GFLOP/s on 512 rows x [2048, 2560] against 230–239 for this
    /// with `R` = 6 (`examples/linear_bench`, `HEARTH_KERNELS=avx2`).
    ///
    /// # Safety
    ///
    /// As for `tile8_kernel`, for rows `r0..r0 + R`; the tile was filled from Q8_0 rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile8_kernel_q8<const R: usize>(
        tile: &Tile8,
        a: &QActs,
        r0: usize,
        dst: *mut f32,
        n: usize,
        col0: usize,
        mask: __m256i,
    ) {
        let (kb, k, kbp) = (tile.kb, a.k, a.kbp);
        debug_assert_eq!(tile.abs.len(), tile.qs.len());
        let ones = _mm256_set1_epi16(1);
        let mut out = [_mm256_setzero_ps(); R];
        let (qs, abs) = (tile.qs.as_ptr(), tile.abs.as_ptr());
        let xq = a.q.as_ptr();
        // SAFETY (every access in this loop): a tile holds kb blocks of 256 bytes in `qs` and,
        // filled from Q8_0, in `abs`, and 8 scales per block; `a` holds rows r0..r0 + R
        // (contract), each k values and kbp >= kb per-block scales.
        for b in 0..kb {
            let mut acc = [_mm256_setzero_si256(); R];
            for g in 0..8 {
                let o = b * 256 + g * 32;
                let sw = unsafe { _mm256_loadu_si256(qs.add(o) as *const __m256i) };
                let w = unsafe { _mm256_loadu_si256(abs.add(o) as *const __m256i) };
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_epi32(unsafe {
                        std::ptr::read_unaligned(xq.add((r0 + r) * k + b * QK + 4 * g) as *const i32)
                    });
                    let p = _mm256_maddubs_epi16(w, _mm256_sign_epi8(x, sw));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(p, ones));
                }
            }
            let sc = unsafe { _mm256_loadu_ps(tile.sc_lo.as_ptr().add(b * 8)) };
            for (r, out) in out.iter_mut().enumerate() {
                let dx = _mm256_set1_ps(unsafe { *a.d.get_unchecked((r0 + r) * kbp + b) });
                *out = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r]), _mm256_mul_ps(sc, dx), *out);
            }
        }
        for (r, out) in out.iter().enumerate() {
            // SAFETY: row r0 + r of `dst`, columns col0.. under `mask`, all < n (contract).
            unsafe { _mm256_maskstore_ps(dst.add((r0 + r) * n + col0), mask, *out) };
        }
    }

    pub(crate) const GEMM8_R: usize = 4;
    /// Activation rows per call of `tile8_kernel_q8`: 2 x 6 accumulators and the group's two
    /// weight vectors fit AVX2's 16 registers.
    const GEMM8_Q8_R: usize = 6;

    /// Activation rows `rows` times one repacked tile: `dst[i * n + col0 + c] = x_i . w_c` for
    /// `i` in `rows` and the tile's valid columns `c < 8` (those below `n - col0`).
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `gemm8_supports(t)`, `rows.end <= a.m`,
    /// `col0 < n`, the tile filled from `t` rows of `a.k` values, and `dst` writable at those
    /// `[a.m, n]` positions.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn tile8_rows(
        t: WType,
        tile: &Tile8,
        a: &QActs,
        rows: std::ops::Range<usize>,
        dst: *mut f32,
        n: usize,
        col0: usize,
    ) {
        debug_assert!(rows.end <= a.m && col0 < n && gemm8_supports(t));
        let valid = (n - col0).min(8) as i32;
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        macro_rules! run {
            ($off:expr, $half:expr, $min:expr, $s:expr) => {{
                let mut r0 = rows.start;
                // SAFETY: rows r0.. stay below rows.end; the rest is this fn's contract.
                while r0 + GEMM8_R <= rows.end {
                    unsafe { tile8_kernel::<$off, $half, $min, $s, GEMM8_R>(tile, a, r0, dst, n, col0, mask) };
                    r0 += GEMM8_R;
                }
                while r0 < rows.end {
                    // SAFETY: as above.
                    unsafe { tile8_kernel::<$off, $half, $min, $s, 1>(tile, a, r0, dst, n, col0, mask) };
                    r0 += 1;
                }
            }};
        }
        match t {
            WType::Q4_0 => run!(8, false, false, 8),
            WType::Q4_1 | WType::Q4K => run!(0, false, true, 8),
            WType::Q5_0 => run!(16, false, false, 4),
            WType::Q5_1 | WType::Q5K => run!(0, false, true, 4),
            WType::Q6K => run!(32, true, false, 2),
            WType::Q8_0 => {
                let mut r0 = rows.start;
                macro_rules! rows_of {
                    ($r:expr) => {
                        while r0 + $r <= rows.end {
                            // SAFETY: rows r0..r0 + $r stay below rows.end; the rest is this
                            // fn's contract.
                            unsafe { tile8_kernel_q8::<$r>(tile, a, r0, dst, n, col0, mask) };
                            r0 += $r;
                        }
                    };
                }
                rows_of!(GEMM8_Q8_R);
                rows_of!(2);
                if r0 < rows.end {
                    // SAFETY: as above, for the one row left.
                    unsafe { tile8_kernel_q8::<1>(tile, a, r0, dst, n, col0, mask) };
                }
            }
        }
    }
}

pub(crate) mod avx512 {
    use super::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn bits32(x: u32) -> __m256i {
        _mm256_movm_epi8(x)
    }

    row_kernels!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

    /// Block sums of `2 * np` (np <= 4) legacy-type blocks from `b0`, two blocks per 512-bit
    /// `vpdpbusd`; lanes past the last block are zero.
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `row` must hold blocks `b0..b0+2*np` of
    /// type `T` and `a` that many activation blocks.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn legacy_pairs<const T: u8>(row: *const u8, a: &ARow, b0: usize, np: usize) -> __m256i {
        let (bb, qo) = match T {
            T_Q4_0 => (18, 2),
            T_Q4_1 => (20, 4),
            T_Q5_0 => (22, 6),
            T_Q5_1 => (24, 8),
            _ => (34, 2),
        };
        // Both blocks' values 0..16, then both blocks' values 16..32 (nibble order).
        let idx_x = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
        let idx_w = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        let m0f = _mm512_set1_epi8(0x0F);
        let m10 = _mm512_set1_epi8(0x10);
        let mut f = [_mm256_setzero_si256(); 4];
        for (p, f) in f.iter_mut().enumerate().take(np) {
            let j = b0 + 2 * p;
            // SAFETY: blocks j, j + 1 < b0 + 2 * np of `row` and their 64 activations.
            let (blk, xa) = unsafe { (row.add(j * bb), _mm512_loadu_si512(a.q.add(j * QK) as *const _)) };
            let x = _mm512_permutexvar_epi64(idx_x, xa);
            let w = if T == T_Q8_0 {
                // SAFETY: the two blocks' 32 values, each after a 2-byte scale.
                let (w0, w1) = unsafe {
                    (
                        _mm256_loadu_si256(blk.add(2) as *const __m256i),
                        _mm256_loadu_si256(blk.add(bb + 2) as *const __m256i),
                    )
                };
                let w = _mm512_permutex2var_epi64(_mm512_castsi256_si512(w0), idx_w, _mm512_castsi256_si512(w1));
                _mm512_xor_si512(w, _mm512_set1_epi8(-128))
            } else {
                // SAFETY: the two blocks' 16 bytes of nibbles, from offset qo.
                let (q0, q1) = unsafe {
                    (
                        _mm_loadu_si128(blk.add(qo) as *const __m128i),
                        _mm_loadu_si128(blk.add(bb + qo) as *const __m128i),
                    )
                };
                let q = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(q0), q1);
                let v = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(q), _mm256_srli_epi16::<4>(q));
                let mut v = _mm512_and_si512(v, m0f);
                if T == T_Q5_0 || T == T_Q5_1 {
                    // SAFETY: Q5 blocks keep 4 bytes of high bits just before the nibbles.
                    let (h0, h1) = unsafe {
                        (
                            std::ptr::read_unaligned(blk.add(qo - 4) as *const u32),
                            std::ptr::read_unaligned(blk.add(bb + qo - 4) as *const u32),
                        )
                    };
                    let lo = (h0 & 0xFFFF) | (h1 << 16);
                    let hi = (h0 >> 16) | (h1 & 0xFFFF_0000);
                    v = _mm512_mask_add_epi8(v, lo as u64 | (hi as u64) << 32, v, m10);
                }
                v
            };
            let d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x);
            *f = _mm256_add_epi32(_mm512_castsi512_si256(d), _mm512_extracti64x4_epi64::<1>(d));
        }
        let t0 = _mm256_hadd_epi32(f[0], f[1]);
        let t1 = _mm256_hadd_epi32(f[2], f[3]);
        let u = _mm256_hadd_epi32(t0, t1); // blocks 0 2 4 6 1 3 5 7
        _mm256_permutevar8x32_epi32(u, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// `legacy_step` with two blocks per instruction (`n` even).
    ///
    /// # Safety
    ///
    /// As for `legacy_step`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn legacy_step512<const T: u8>(row: *const u8, a: &ARow, b0: usize, n: usize, acc: __m256) -> __m256 {
        let bb = match T {
            T_Q4_0 => 18,
            T_Q4_1 => 20,
            T_Q5_0 => 22,
            T_Q5_1 => 24,
            _ => 34,
        };
        // SAFETY: this fn's contract covers blocks b0..b0+n.
        let mut isum = unsafe { legacy_pairs::<T>(row, a, b0, n / 2) };
        let off = match T {
            T_Q4_0 => 3,
            T_Q5_0 => 4,
            T_Q8_0 => 7,
            _ => 0,
        };
        if off != 0 {
            // SAFETY: 8 block sums from b0 (padded, per the contract).
            let s = unsafe { _mm256_loadu_si256(a.s.add(b0) as *const __m256i) };
            isum = _mm256_sub_epi32(isum, _mm256_sllv_epi32(s, _mm256_set1_epi32(off)));
        }
        // SAFETY: the n blocks' f16 scales open each block; 8 padded activation scales.
        let (dw, dx) = unsafe { (load_f16x8(row.add(b0 * bb), bb, n), _mm256_loadu_ps(a.d.add(b0))) };
        let mut acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc);
        if T == T_Q4_1 || T == T_Q5_1 {
            // SAFETY: the f16 minimum follows each block's scale; 8 padded `ds` values.
            let (mw, ds) = unsafe { (load_f16x8(row.add(b0 * bb + 2), bb, n), _mm256_loadu_ps(a.ds.add(b0))) };
            acc = _mm256_fmadd_ps(mw, ds, acc);
        }
        acc
    }

    /// `rows_legacy` with two blocks per instruction.
    ///
    /// # Safety
    ///
    /// As for `rows_legacy`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(crate) unsafe fn rows_legacy512<const T: u8>(w: *const u8, rb: usize, nrows: usize, a: &ARow, out: *mut f32) {
        legacy_rows_body!(legacy_step512, w, rb, nrows, a, out);
    }

    // ---------------------------------------------------------------------------------------
    // Many-row GEMM.

    /// 16 weight rows repacked for `vpdpbusd`: per 32-value block, 8 groups of 4 values, each
    /// group holding the 4 bytes of all 16 rows (64 bytes = one zmm), then the rows' scales.
    pub(crate) struct Tile {
        kb: usize,
        qs: Vec<u8>,
        /// Scratch: the 16 rows unpacked, row-major.
        rows: Vec<u8>,
        /// Scratch: the rows' scales (lo, hi, min), row-major, blocks padded to a multiple of 8.
        rsc: Vec<f32>,
        sc_lo: Vec<f32>,
        sc_hi: Vec<f32>,
        mn: Vec<f32>,
    }

    impl Tile {
        pub(crate) fn new(kb: usize) -> Self {
            Self {
                kb,
                qs: vec![0; kb * 512 + 64],
                rows: vec![0; 16 * kb * QK],
                rsc: vec![0.0; 3 * 16 * kb.div_ceil(8) * 8],
                sc_lo: vec![0.0; kb.div_ceil(8) * 8 * 16],
                sc_hi: vec![0.0; kb.div_ceil(8) * 8 * 16],
                mn: vec![0.0; kb.div_ceil(8) * 8 * 16],
            }
        }

        pub(crate) fn kb(&self) -> usize {
            self.kb
        }

        /// Repacks rows `0..nrows` (<= 16) starting at `w`; rows past `nrows` become zero.
        pub(crate) fn fill(&mut self, cpu: Avx512, t: WType, w: &[u8], rb: usize, nrows: usize) {
            assert!(nrows <= 16 && w.len() >= nrows * rb && rb == t.row_bytes(self.kb * QK));
            let _ = cpu;
            // SAFETY: `cpu` proves the AVX-512 features; rows are in bounds (asserted).
            unsafe { self.fill_simd(t, w.as_ptr(), rb, nrows) }
        }

        /// `fill` after its checks.
        ///
        /// # Safety
        ///
        /// The CPU must have the features this fn enables; `nrows <= 16`, and `w` must hold
        /// `nrows` rows of `rb` bytes, each `self.kb` blocks of type `t`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        unsafe fn fill_simd(&mut self, t: WType, w: *const u8, rb: usize, nrows: usize) {
            let kb = self.kb;
            let kbp = kb.div_ceil(8) * 8;
            // Scales row by row into scratch (8 blocks per vector), then transposed to
            // [block][row] eight blocks at a time.
            let base = self.rsc.as_mut_ptr();
            // SAFETY: `rsc` holds 3 * 16 * kbp values (`Tile::new`).
            let (rlo, rhi, rmn) = unsafe { (base, base.add(16 * kbp), base.add(32 * kbp)) };
            for r in 0..nrows {
                // SAFETY: row r < nrows of `w` (contract); each scratch row r < 16 has room for
                // kbp >= kb values.
                unsafe { row_scales(t, w.add(r * rb), kb, rlo.add(r * kbp), rhi.add(r * kbp), rmn.add(r * kbp)) };
            }
            let has_hi = t == WType::Q6K;
            let has_mn = matches!(t, WType::Q4_1 | WType::Q5_1 | WType::Q4K | WType::Q5K);
            let mut v = [_mm256_setzero_si256(); 16];
            for b0 in (0..kbp).step_by(8) {
                for (src, dst, on) in
                    [(rlo, &mut self.sc_lo, true), (rhi, &mut self.sc_hi, has_hi), (rmn, &mut self.mn, has_mn)]
                {
                    if on {
                        for (r, v) in v.iter_mut().enumerate().take(nrows) {
                            // SAFETY: values b0..b0+8 <= kbp of scratch row r.
                            *v = unsafe { _mm256_loadu_si256(src.add(r * kbp + b0) as *const __m256i) };
                        }
                        // SAFETY: `dst` holds kbp * 16 values; 8 groups of 16 from b0 * 16 fit.
                        unsafe { transpose16x8(&v, dst.as_mut_ptr().add(b0 * 16) as *mut u8) };
                    }
                }
            }
            // Unpack row by row (reading the weights sequentially keeps the hardware prefetchers
            // going; 16 interleaved rows did not), then transpose block by block from cache.
            let rows = self.rows.as_mut_ptr();
            for r in 0..nrows {
                // SAFETY: row r < nrows of `w`; `rows` holds 16 unpacked rows of kb * QK bytes.
                let (row, dst) = unsafe { (w.add(r * rb), rows.add(r * kb * QK) as *mut __m256i) };
                for b in 0..kb {
                    // SAFETY: block b < kb of the row, read and written.
                    unsafe { _mm256_storeu_si256(dst.add(b), unpack_ymm(t, row, b)) };
                }
            }
            let mut v = [_mm256_setzero_si256(); 16];
            for b in 0..kb {
                for (r, v) in v.iter_mut().enumerate().take(nrows) {
                    // SAFETY: block b of unpacked row r, inside `rows`.
                    *v = unsafe { _mm256_loadu_si256((rows.add((r * kb + b) * QK)) as *const __m256i) };
                }
                // SAFETY: `qs` holds kb * 512 (+ 64) bytes.
                unsafe { transpose16x8(&v, self.qs.as_mut_ptr().add(b * 512)) };
            }
        }
    }

    /// The scales of the `kb` blocks of a row (as `formats::scales_row` gives them) into
    /// `lo`, `hi`, `mn`, each with room for `kb` rounded up to 8 (the padding gets zeros or
    /// harmless values); `hi` only for Q6_K, `mn` only for types with a minimum.
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `row` must hold `kb` blocks of type `t`,
    /// and `lo`, `hi`, `mn` must each be writable for `kb` rounded up to 8 values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn row_scales(t: WType, row: *const u8, kb: usize, lo: *mut f32, hi: *mut f32, mn: *mut f32) {
        match t {
            WType::Q4_0 | WType::Q4_1 | WType::Q5_0 | WType::Q5_1 | WType::Q8_0 => {
                let bb = t.block_bytes();
                for b0 in (0..kb).step_by(8) {
                    let n = (kb - b0).min(8);
                    // SAFETY: the f16 scales (and minimums, after them) of blocks b0..b0+n of
                    // the row; 8 values from b0 fit in the rounded-up outputs (contract).
                    unsafe {
                        _mm256_storeu_ps(lo.add(b0), load_f16x8(row.add(b0 * bb), bb, n));
                        if matches!(t, WType::Q4_1 | WType::Q5_1) {
                            _mm256_storeu_ps(mn.add(b0), load_f16x8(row.add(b0 * bb + 2), bb, n));
                        }
                    }
                }
            }
            WType::Q4K | WType::Q5K => {
                let bb = t.block_bytes();
                for sb in 0..kb / 8 {
                    // SAFETY: super-block sb < kb / 8 of the row: f16 d and dmin, then 12
                    // bytes of scales.
                    let (dm, (sc, m)) = unsafe {
                        let blk = row.add(sb * bb);
                        (std::ptr::read_unaligned(blk as *const i32), k4_scales(blk.add(4)))
                    };
                    let dd = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
                    let d = _mm256_broadcastss_ps(dd);
                    let dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
                    let mins = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(m, dmin));
                    // SAFETY: values sb * 8..sb * 8 + 8 <= kb of the outputs (contract).
                    unsafe {
                        _mm256_storeu_ps(lo.add(sb * 8), _mm256_mul_ps(sc, d));
                        _mm256_storeu_ps(mn.add(sb * 8), mins);
                    }
                }
            }
            WType::Q6K => {
                let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
                for sb in 0..kb / 8 {
                    // SAFETY: super-block sb < kb / 8 of the row (210 bytes): 16 scale bytes
                    // at offset 192, f16 d at 208.
                    let (d16, sc8) = unsafe {
                        let blk = row.add(sb * 210);
                        (
                            std::ptr::read_unaligned(blk.add(208) as *const u16) as i32,
                            _mm_loadu_si128(blk.add(192) as *const __m128i),
                        )
                    };
                    let d = _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(d16)));
                    let sc = _mm512_cvtepi8_epi32(sc8);
                    let sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_permutexvar_epi32(idx, sc)), d);
                    let sc_hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sc)));
                    // SAFETY: values sb * 8..sb * 8 + 8 <= kb of the outputs (contract).
                    unsafe {
                        _mm256_storeu_ps(lo.add(sb * 8), _mm512_castps512_ps256(sc));
                        _mm256_storeu_ps(hi.add(sb * 8), sc_hi);
                    }
                }
            }
        }
    }

    /// The 32 unsigned values of block `b` of a row (see `formats::unpack32`).
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `row` must hold block `b` of type `t`
    /// (for the K types, the whole super-block holding it).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn unpack_ymm(t: WType, row: *const u8, b: usize) -> __m256i {
        let m0f = _mm256_set1_epi8(0x0F);
        let m10 = _mm256_set1_epi8(0x10);
        let m30 = _mm256_set1_epi8(0x30);
        // SAFETY (both closures): called below only with pointers into block b (contract).
        let nib = |p: *const u8| {
            let q = unsafe { _mm_loadu_si128(p as *const __m128i) };
            _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), m0f)
        };
        let hbits = |p: *const u8| {
            let h = unsafe { std::ptr::read_unaligned(p as *const u32) };
            _mm256_and_si256(_mm256_movm_epi8(h), m10)
        };
        // SAFETY (every block below): offsets inside block b (or its super-block) of type t,
        // which `row` holds (contract); the layouts are those of `formats::unpack32`.
        match t {
            WType::Q4_0 => nib(unsafe { row.add(b * 18 + 2) }),
            WType::Q4_1 => nib(unsafe { row.add(b * 20 + 4) }),
            WType::Q5_0 => {
                let blk = unsafe { row.add(b * 22) };
                _mm256_or_si256(nib(unsafe { blk.add(6) }), hbits(unsafe { blk.add(2) }))
            }
            WType::Q5_1 => {
                let blk = unsafe { row.add(b * 24) };
                _mm256_or_si256(nib(unsafe { blk.add(8) }), hbits(unsafe { blk.add(4) }))
            }
            WType::Q8_0 => _mm256_xor_si256(
                unsafe { _mm256_loadu_si256(row.add(b * 34 + 2) as *const __m256i) },
                _mm256_set1_epi8(-128),
            ),
            WType::Q4K | WType::Q5K => {
                let (sb, j) = (b / 8, b % 8);
                let q5 = t == WType::Q5K;
                let blk = unsafe { row.add(sb * if q5 { 176 } else { 144 }) };
                let q =
                    unsafe { _mm256_loadu_si256(blk.add(if q5 { 48 } else { 16 } + (j / 2) * 32) as *const __m256i) };
                let mut v = if j % 2 == 0 { q } else { _mm256_srli_epi16::<4>(q) };
                v = _mm256_and_si256(v, m0f);
                if q5 {
                    let hb = unsafe { _mm256_loadu_si256(blk.add(16) as *const __m256i) };
                    let bit = _mm256_set1_epi8((1u8 << j) as i8);
                    let h = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
                    v = _mm256_or_si256(v, _mm256_and_si256(h, m10));
                }
                v
            }
            WType::Q6K => {
                let (sb, j) = (b / 8, b % 8);
                let (h, q) = (j / 4, j % 4);
                let (ql, qh) = unsafe {
                    let blk = row.add(sb * 210);
                    (
                        _mm256_loadu_si256(blk.add(h * 64 + (q % 2) * 32) as *const __m256i),
                        _mm256_loadu_si256(blk.add(128 + h * 32) as *const __m256i),
                    )
                };
                let lo = if q < 2 { ql } else { _mm256_srli_epi16::<4>(ql) };
                let hi = match q {
                    0 => _mm256_slli_epi16::<4>(qh),
                    1 => _mm256_slli_epi16::<2>(qh),
                    2 => qh,
                    _ => _mm256_srli_epi16::<2>(qh),
                };
                _mm256_or_si256(_mm256_and_si256(lo, m0f), _mm256_and_si256(hi, m30))
            }
        }
    }

    /// Index vectors of the 16 x 8 (u32) transpose in `transpose16x8`: stage `s` exchanges
    /// register bit `s` (row bit `s + 1`) with column bit `s`; `[s][column bit]`.
    const fn transpose_idx() -> [[[i32; 16]; 2]; 3] {
        let mut out = [[[0i32; 16]; 2]; 3];
        let mut s = 0;
        while s < 3 {
            let mut cs = 0;
            while cs < 2 {
                let mut l = 0;
                while l < 16 {
                    let rpart = l >> (2 - s);
                    let chi = l & ((1 << (2 - s)) - 1);
                    let r_old = rpart & ((1 << (s + 1)) - 1);
                    let r_hi = (rpart >> (s + 1)) & 1;
                    let lane_old = (r_old << (3 - s)) | (chi << 1) | cs;
                    out[s][cs][l] = (lane_old + 16 * r_hi) as i32;
                    l += 1;
                }
                cs += 1;
            }
            s += 1;
        }
        out
    }
    static TRANSPOSE_IDX: [[[i32; 16]; 2]; 3] = transpose_idx();

    /// Rows `v[r]` (8 x u32 each) to 8 x 64 bytes at `out`: group `g` holds u32 `g` of every row.
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `out` must be writable for 512 bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn transpose16x8(v: &[__m256i; 16], out: *mut u8) {
        let mut a: [__m512i; 8] =
            std::array::from_fn(|i| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(v[2 * i]), v[2 * i + 1]));
        for (s, idx) in TRANSPOSE_IDX.iter().enumerate() {
            // SAFETY: each index vector is 16 i32, 64 readable bytes.
            let (i0, i1) = unsafe {
                (_mm512_loadu_si512(idx[0].as_ptr() as *const _), _mm512_loadu_si512(idx[1].as_ptr() as *const _))
            };
            let bit = 1 << s;
            a = std::array::from_fn(|r| {
                let (x, y) = (a[r & !bit], a[r | bit]);
                _mm512_permutex2var_epi32(x, if r & bit == 0 { i0 } else { i1 }, y)
            });
        }
        for (g, a) in a.iter().enumerate() {
            // SAFETY: bytes g * 64..g * 64 + 64 of the 512 `out` holds (contract).
            unsafe { _mm512_storeu_si512(out.add(g * 64) as *mut _, *a) };
        }
    }

    /// `R` activation rows from `r0` times one tile: 16 output columns from `col0`.
    ///
    /// # Safety
    ///
    /// As for `tile_rows`, for rows `r0..r0 + R`; `mask` has no bit at or past `n - col0`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile_kernel<const OFF: i32, const HALF: bool, const MIN: bool, const R: usize>(
        tile: &Tile,
        a: &QActs,
        r0: usize,
        dst: *mut f32,
        n: usize,
        col0: usize,
        mask: u16,
    ) {
        let kb = tile.kb;
        let k = a.k;
        let kbp = a.kbp;
        let mut out = [_mm512_setzero_ps(); R];
        let qs = tile.qs.as_ptr();
        // SAFETY (every block in this loop): a tile holds kb blocks of 512 bytes and 16 scales
        // of each kind per block (`Tile::new`); `a` holds rows r0..r0 + R (contract), each k
        // values and kbp >= kb per-block entries.
        for b in 0..kb {
            let wq = unsafe { qs.add(b * 512) };
            let w: [__m512i; 8] = std::array::from_fn(|g| unsafe { _mm512_loadu_si512(wq.add(g * 64) as *const _) });
            let sc_lo = unsafe { _mm512_loadu_ps(tile.sc_lo.as_ptr().add(b * 16)) };
            let sc_hi = if HALF { unsafe { _mm512_loadu_ps(tile.sc_hi.as_ptr().add(b * 16)) } } else { sc_lo };
            let mn = if MIN { unsafe { _mm512_loadu_ps(tile.mn.as_ptr().add(b * 16)) } } else { sc_lo };
            for (r, out) in out.iter_mut().enumerate() {
                let row = r0 + r;
                let xq = unsafe { a.q.as_ptr().add(row * k + b * QK) };
                // Groups g < 8 of 4 values: inside the block's 32.
                let x = |g: usize| _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(xq.add(4 * g) as *const i32) });
                let dx = _mm512_set1_ps(unsafe { *a.d.get_unchecked(row * kbp + b) });
                if !HALF {
                    let mut acc = if OFF != 0 {
                        _mm512_set1_epi32(-OFF * unsafe { *a.s.get_unchecked(row * kbp + b) })
                    } else {
                        _mm512_setzero_si512()
                    };
                    for (g, w) in w.iter().enumerate() {
                        acc = _mm512_dpbusd_epi32(acc, *w, x(g));
                    }
                    *out = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc_lo, dx), *out);
                } else {
                    let (s_lo, s_hi) = unsafe {
                        let s16 = a.s16.as_ptr().add((row * kbp + b) * 2);
                        (*s16, *s16.add(1))
                    };
                    let mut lo = _mm512_set1_epi32(-OFF * s_lo);
                    let mut hi = _mm512_set1_epi32(-OFF * s_hi);
                    for g in 0..4 {
                        lo = _mm512_dpbusd_epi32(lo, w[g], x(g));
                        hi = _mm512_dpbusd_epi32(hi, w[g + 4], x(g + 4));
                    }
                    *out = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_mul_ps(sc_lo, dx), *out);
                    *out = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_mul_ps(sc_hi, dx), *out);
                }
                if MIN {
                    let ds = _mm512_set1_ps(unsafe { *a.ds.get_unchecked(row * kbp + b) });
                    *out = _mm512_fmadd_ps(mn, ds, *out);
                }
            }
        }
        for (r, out) in out.iter().enumerate() {
            // SAFETY: row r0 + r of `dst`, columns col0.. under `mask`, all < n (contract).
            unsafe { _mm512_mask_storeu_ps(dst.add((r0 + r) * n + col0), mask, *out) };
        }
    }

    pub(crate) const GEMM_R: usize = 4;

    /// Activation rows `rows` times one repacked tile: `dst[i * n + col0 + c] = x_i . w_c` for
    /// `i` in `rows` and the tile's valid columns `c < 16` (those below `n - col0`).
    ///
    /// # Safety
    ///
    /// The CPU must have the features this fn enables; `rows.end <= a.m`, `col0 < n`, the tile
    /// filled for `a.k` values per row, and `dst` writable at those `[a.m, n]` positions.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(crate) unsafe fn tile_rows(
        t: WType,
        tile: &Tile,
        a: &QActs,
        rows: std::ops::Range<usize>,
        dst: *mut f32,
        n: usize,
        col0: usize,
    ) {
        debug_assert!(rows.end <= a.m && col0 < n);
        let valid = (n - col0).min(16);
        let mask: u16 = if valid == 16 { 0xFFFF } else { (1u16 << valid) - 1 };
        macro_rules! run {
            ($off:expr, $half:expr, $min:expr) => {{
                let mut r0 = rows.start;
                // SAFETY: rows r0.. stay below rows.end; the rest is this fn's contract.
                while r0 + GEMM_R <= rows.end {
                    unsafe { tile_kernel::<$off, $half, $min, GEMM_R>(tile, a, r0, dst, n, col0, mask) };
                    r0 += GEMM_R;
                }
                while r0 < rows.end {
                    // SAFETY: as above.
                    unsafe { tile_kernel::<$off, $half, $min, 1>(tile, a, r0, dst, n, col0, mask) };
                    r0 += 1;
                }
            }};
        }
        match t {
            WType::Q4_0 => run!(8, false, false),
            WType::Q5_0 => run!(16, false, false),
            WType::Q8_0 => run!(128, false, false),
            WType::Q6K => run!(32, true, false),
            WType::Q4_1 | WType::Q5_1 | WType::Q4K | WType::Q5K => run!(0, false, true),
        }
    }
}
