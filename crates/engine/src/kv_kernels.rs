//! CPU kernels for an f16 KV cache: f32 ↔ f16 conversion of whole rows (writes, and prompt
//! chunks, which read the cache once for many queries), and attention of one query position
//! straight from the f16 keys and values (token generation: converting the cache to f32 every
//! token would cost more than the attention itself).
//!
//! Rounding is round-to-nearest-even both on the scalar path (`half`) and on F16C, so the two
//! levels store identical bits; sums are in f32 either way.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::linear::pool::{par_for, threads, SendPtr};
use crate::linear::{kernels, Isa};

/// `dst[i] = src[i]` rounded to f16.
pub(crate) fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    dst.convert_from_f32_slice(src);
}

/// `dst[i] = src[i]` as f32 (exact).
pub(crate) fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    src.convert_to_f32_slice(dst);
}

/// Positions one thread takes at least: below this, splitting a head's positions costs more in
/// hand-off and merging than it saves.
const MIN_SPLIT: usize = 256;

/// One query position attending over `len` cached positions, for every KV head.
///
/// `q`: `[kv_heads, groups, hd]` f32 (already scaled); `k`, `v`: the cache's f16 storage,
/// `[kv_heads, stride, hd]`, positions `0..len` of each head used (all of them visible: the
/// caller has already written this token's own key and value). Returns `[kv_heads, groups, hd]`
/// f32, `softmax(q k^T) v` per head.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_one(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    kv_heads: usize,
    groups: usize,
    hd: usize,
    stride: usize,
    len: usize,
) -> Vec<f32> {
    attend_with(q, k, v, kv_heads, groups, hd, stride, len, kernels())
}

/// `attend_one` with the kernels of instruction-set level `level` (capped at what the CPU has).
#[cfg(test)]
#[allow(clippy::too_many_arguments)] // attend_one's arguments and the level
fn attend_one_at(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    kv_heads: usize,
    groups: usize,
    hd: usize,
    stride: usize,
    len: usize,
    level: crate::linear::Level,
) -> Vec<f32> {
    attend_with(q, k, v, kv_heads, groups, hd, stride, len, Isa::at_most(level))
}

#[allow(clippy::too_many_arguments)] // attend_one's arguments and the kernels
fn attend_with(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    kv_heads: usize,
    groups: usize,
    hd: usize,
    stride: usize,
    len: usize,
    isa: Isa,
) -> Vec<f32> {
    assert!(len > 0 && len <= stride && q.len() == kv_heads * groups * hd);
    assert!(k.len() >= kv_heads * stride * hd && v.len() >= kv_heads * stride * hd);
    // Split each head's positions when there are more threads than heads (Gemma 3 270M and 1B
    // have one KV head): every part returns its own running max and sum, merged below.
    let parts = threads().div_ceil(kv_heads).min(len / MIN_SPLIT).max(1);
    let part_len = len.div_ceil(parts);
    let tasks = kv_heads * parts;
    // Per task: `groups` maxima, `groups` sums, `groups * hd` unnormalised outputs.
    let per_task = groups * (2 + hd);
    let mut partial = vec![0f32; tasks * per_task];
    let dst = SendPtr(partial.as_mut_ptr());
    par_for(tasks, |t| {
        let (h, p) = (t / parts, t % parts);
        let (a, b) = (p * part_len, ((p + 1) * part_len).min(len));
        // SAFETY: each task writes only its own `per_task` block of `partial`.
        let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add(t * per_task), per_task) };
        if a < b {
            let base = h * stride * hd;
            let qh = &q[h * groups * hd..][..groups * hd];
            let kh = &k[base + a * hd..base + b * hd];
            let vh = &v[base + a * hd..base + b * hd];
            attend_part(qh, kh, vh, groups, hd, b - a, out, isa);
        } else {
            // An empty part: no weight in the merge.
            out[..groups].fill(f32::NEG_INFINITY);
        }
    });
    let mut result = vec![0f32; kv_heads * groups * hd];
    for h in 0..kv_heads {
        for g in 0..groups {
            let task = |p: usize| &partial[(h * parts + p) * per_task..][..per_task];
            let m = (0..parts).map(|p| task(p)[g]).fold(f32::NEG_INFINITY, f32::max);
            let out = &mut result[(h * groups + g) * hd..][..hd];
            let mut sum = 0f32;
            for p in 0..parts {
                let t = task(p);
                if t[g] == f32::NEG_INFINITY {
                    continue;
                }
                let w = (t[g] - m).exp();
                sum += w * t[groups + g];
                let acc = &t[2 * groups + g * hd..][..hd];
                for (o, a) in out.iter_mut().zip(acc) {
                    *o += w * a;
                }
            }
            let inv = 1.0 / sum;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
    result
}

/// Attention of `groups` query rows over `n` positions: writes maxima, sums of exp(score - max)
/// and the unnormalised `sum_j exp(s_j - max) v_j` into `out` (laid out as in `attend_one`).
#[allow(clippy::too_many_arguments)]
fn attend_part(q: &[f32], k: &[f16], v: &[f16], groups: usize, hd: usize, n: usize, out: &mut [f32], isa: Isa) {
    let (maxes, rest) = out.split_at_mut(groups);
    let (sums, acc) = rest.split_at_mut(groups);
    let mut scores = vec![0f32; groups * n];
    for j in 0..n {
        let kj = &k[j * hd..][..hd];
        for g in 0..groups {
            scores[g * n + j] = dot(&q[g * hd..][..hd], kj, isa);
        }
    }
    for g in 0..groups {
        let s = &mut scores[g * n..][..n];
        let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        maxes[g] = m;
        sums[g] = crate::vmath::exp_sub_sum(s, m);
    }
    acc.fill(0.0);
    for j in 0..n {
        let vj = &v[j * hd..][..hd];
        for g in 0..groups {
            axpy(&mut acc[g * hd..][..hd], scores[g * n + j], vj, isa);
        }
    }
}

/// `sum_i a[i] * b[i]`.
pub(crate) fn dot(a: &[f32], b: &[f16], isa: Isa) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2().is_some() {
        // SAFETY: the `Isa` token proves AVX2, FMA and F16C.
        return unsafe { x86::dot(a, b) };
    }
    let _ = isa;
    a.iter().zip(b).map(|(x, y)| x * y.to_f32()).sum()
}

/// `acc[i] += w * b[i]`.
fn axpy(acc: &mut [f32], w: f32, b: &[f16], isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2().is_some() {
        // SAFETY: the `Isa` token proves AVX2, FMA and F16C.
        return unsafe { x86::axpy(acc, w, b) };
    }
    let _ = isa;
    for (a, y) in acc.iter_mut().zip(b) {
        *a += w * y.to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    /// `super::dot` with AVX2 (over the shorter of the two slices).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f16]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr() as *const u16);
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: elements i..i + 16 <= n of both slices.
            let (a0, a1, b0, b1) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm_loadu_si128(pb.add(i) as *const __m128i),
                    _mm_loadu_si128(pb.add(i + 8) as *const __m128i),
                )
            };
            s0 = _mm256_fmadd_ps(a0, _mm256_cvtph_ps(b0), s0);
            s1 = _mm256_fmadd_ps(a1, _mm256_cvtph_ps(b1), s1);
            i += 16;
        }
        let s = _mm256_add_ps(s0, s1);
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        let mut sum = _mm_cvtss_f32(h);
        for (x, y) in a[i..n].iter().zip(&b[i..n]) {
            sum += x * y.to_f32();
        }
        sum
    }

    /// `super::axpy` with AVX2 (over the shorter of the two slices).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy(acc: &mut [f32], w: f32, b: &[f16]) {
        let n = acc.len().min(b.len());
        let (pa, pb) = (acc.as_mut_ptr(), b.as_ptr() as *const u16);
        let wv = _mm256_set1_ps(w);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: elements i..i + 8 <= n of both slices.
            unsafe {
                let bv = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i) as *const __m128i));
                _mm256_storeu_ps(pa.add(i), _mm256_fmadd_ps(wv, bv, _mm256_loadu_ps(pa.add(i))));
            }
            i += 8;
        }
        for (x, y) in acc[i..n].iter_mut().zip(&b[i..n]) {
            *x += w * y.to_f32();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::linear::Level;

    pub(crate) fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// softmax(q k^T) v per head in f64 from the f16 values, plainly.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &[f16],
        v: &[f16],
        kvh: usize,
        groups: usize,
        hd: usize,
        stride: usize,
        len: usize,
    ) -> Vec<f32> {
        let mut out = vec![0f32; kvh * groups * hd];
        for h in 0..kvh {
            for g in 0..groups {
                let qg = &q[(h * groups + g) * hd..][..hd];
                let row = |t: &[f16], j: usize| -> Vec<f64> {
                    t[(h * stride + j) * hd..][..hd].iter().map(|x| x.to_f64()).collect()
                };
                let s: Vec<f64> =
                    (0..len).map(|j| row(k, j).iter().zip(qg).map(|(a, b)| a * *b as f64).sum()).collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    for (o, x) in out[(h * groups + g) * hd..][..hd].iter_mut().zip(row(v, j)) {
                        *o += (w / z * x) as f32;
                    }
                }
            }
        }
        out
    }

    /// Every level, one and several KV heads, head sizes with a SIMD tail, lengths below and
    /// above the split into parts, a stride larger than the used length (a cache not yet full).
    #[test]
    fn attend_one_matches_naive_attention() {
        for (kvh, groups, hd, stride, len) in [
            (1, 4, 256, 4096, 1),
            (1, 4, 256, 4096, 700),
            (2, 2, 36, 600, 513),
            (3, 1, 128, 300, 300),
            (1, 4, 256, 512, 512),
        ] {
            let q: Vec<f32> = random(kvh * groups * hd, 1).iter().map(|x| x * 0.5).collect();
            let mut k = vec![f16::ZERO; kvh * stride * hd];
            let mut v = vec![f16::ZERO; kvh * stride * hd];
            f32_to_f16(&random(k.len(), 2).iter().map(|x| x * 3.0).collect::<Vec<_>>(), &mut k);
            f32_to_f16(&random(v.len(), 3), &mut v);
            let want = naive(&q, &k, &v, kvh, groups, hd, stride, len);
            for level in Level::available() {
                let got = attend_one_at(&q, &k, &v, kvh, groups, hd, stride, len, level);
                let d = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(d < 1e-5, "{level:?} kvh {kvh} groups {groups} hd {hd} len {len}: max |diff| {d}");
            }
        }
    }

    #[test]
    fn conversions_round_to_nearest_even_and_back_exactly() {
        let x = random(1003, 7).iter().map(|v| v * 1000.0).collect::<Vec<_>>();
        let mut h = vec![f16::ZERO; x.len()];
        f32_to_f16(&x, &mut h);
        for (a, b) in x.iter().zip(&h) {
            assert_eq!(*b, f16::from_f32(*a));
        }
        let mut back = vec![0f32; x.len()];
        f16_to_f32(&h, &mut back);
        for (a, b) in h.iter().zip(&back) {
            assert_eq!(a.to_f32(), *b);
        }
    }
}
