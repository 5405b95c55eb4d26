//! Elementwise math of the CPU hot loops, vectorized: the exponentials of softmax (attention
//! scores: at long prompts the largest elementwise cost) and the tanh-GELU of the feed-forward.
//! With libm's scalar `expf`/`tanhf` these took about 15% of a prompt's time on the 270M model.
//!
//! `exp` is Cephes' `expf` scheme (range reduction by ln 2 in two parts, a degree-5 polynomial,
//! the power of two built in the exponent bits), within 2 ulp of libm over softmax's range;
//! arguments below -87.3 (masked scores are -inf) give exactly 0. Without AVX2 the scalar libm
//! functions run, as before.

use crate::linear::kernels;

/// `x = exp(x - max)` for each value; returns their sum.
pub(crate) fn exp_sub_sum(xs: &mut [f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(_avx2) = kernels().avx2() {
        // SAFETY: the `Avx2` proof says the CPU has AVX2 and FMA.
        return unsafe { x86::exp_sub_sum(xs, max) };
    }
    let mut sum = 0f32;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    sum
}

/// For a tile `xs` of `rows x width` values (row-major) and one base per column:
/// `x = exp(x - base[c])` for each value in column `c`, and `sum[c] += ` the new values of that
/// column, in one pass. Attention's online softmax keeps scores as `[key][query]`, so its per-
/// query maximum is a per-column base; `exp_sub_sum`'s one base per slice and its scalar sum
/// (a serial chain of adds) cost it more than the exponentials did.
pub(crate) fn exp_sub_cols_sum(xs: &mut [f32], width: usize, base: &[f32], sum: &mut [f32]) {
    assert!(base.len() == width && sum.len() == width && xs.len().is_multiple_of(width.max(1)));
    #[cfg(target_arch = "x86_64")]
    if let Some(_avx2) = kernels().avx2() {
        if width.is_multiple_of(8) {
            // SAFETY: the `Avx2` proof says the CPU has AVX2 and FMA; the shapes are asserted.
            return unsafe { x86::exp_sub_cols_sum(xs, width, base, sum) };
        }
    }
    for row in xs.chunks_exact_mut(width.max(1)) {
        for ((x, b), s) in row.iter_mut().zip(base).zip(sum.iter_mut()) {
            *x = (*x - b).exp();
            *s += *x;
        }
    }
}

/// `g = gelu(g) * u`, or `g = gelu(g)` without `u`, with the tanh approximation (candle's and
/// transformers' `gelu_pytorch_tanh`): `0.5 g (1 + tanh(c g (1 + 0.044715 g^2)))`, computed as
/// `g / (1 + exp(-2 c g (1 + 0.044715 g^2)))` (the same function; for negative `g` it avoids
/// `1 + tanh` cancelling to a few bits).
pub(crate) fn gelu_mul(g: &mut [f32], u: Option<&[f32]>) {
    debug_assert!(u.is_none_or(|u| u.len() == g.len()));
    #[cfg(target_arch = "x86_64")]
    if let Some(_avx2) = kernels().avx2() {
        // SAFETY: as above.
        return unsafe { x86::gelu_mul(g, u) };
    }
    for (i, x) in g.iter_mut().enumerate() {
        let v = *x;
        *x = 0.5 * v * (1.0 + f32::tanh(SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v))) * u.map_or(1.0, |u| u[i]);
    }
}

const SQRT_TWO_OVER_PI: f32 = 0.797_884_560_802_865_4_f64 as f32;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// exp of 8 values (see the module comment).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        let lo = _mm256_set1_ps(-87.3);
        let zero = _mm256_cmp_ps::<_CMP_LT_OQ>(x, lo);
        let x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.3));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        // ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in a few bits.
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let r2 = _mm256_mul_ps(r, r);
        let y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        _mm256_andnot_ps(zero, _mm256_mul_ps(y, pow2))
    }

    /// `f` over `xs` 8 at a time; the last 1-7 values go through a padded copy, so every value
    /// gets the same arithmetic.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn map8(xs: &mut [f32], ys: Option<&[f32]>, f: impl Fn(__m256, __m256) -> __m256) {
        let n = xs.len();
        let full = n / 8 * 8;
        for i in (0..full).step_by(8) {
            // SAFETY: values i..i + 8 <= full of `xs` (and of `ys`, the same length).
            unsafe {
                let x = _mm256_loadu_ps(xs.as_ptr().add(i));
                let y = ys.map_or(x, |ys| _mm256_loadu_ps(ys.as_ptr().add(i)));
                _mm256_storeu_ps(xs.as_mut_ptr().add(i), f(x, y));
            }
        }
        if full < n {
            let (mut bx, mut by) = ([0f32; 8], [0f32; 8]);
            bx[..n - full].copy_from_slice(&xs[full..]);
            if let Some(ys) = ys {
                by[..n - full].copy_from_slice(&ys[full..]);
            }
            // SAFETY: 8 values in each buffer.
            unsafe {
                let r = f(_mm256_loadu_ps(bx.as_ptr()), _mm256_loadu_ps(by.as_ptr()));
                _mm256_storeu_ps(bx.as_mut_ptr(), r);
            }
            xs[full..].copy_from_slice(&bx[..n - full]);
        }
    }

    /// # Safety
    ///
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_sub_sum(xs: &mut [f32], max: f32) -> f32 {
        let m = _mm256_set1_ps(max);
        map8(xs, None, |x, _| exp8(_mm256_sub_ps(x, m)));
        xs.iter().sum()
    }

    /// # Safety
    ///
    /// The CPU must have AVX2 and FMA; `width` is a multiple of 8, `base` and `sum` are `width`
    /// long and `xs` holds whole rows of it.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_sub_cols_sum(xs: &mut [f32], width: usize, base: &[f32], sum: &mut [f32]) {
        assert!(width.is_multiple_of(8) && base.len() == width && sum.len() == width);
        let rows = xs.len() / width;
        // 32 columns at a time: their 4 sums stay in registers down all the rows.
        let mut c0 = 0;
        while c0 < width {
            let v = ((width - c0) / 8).min(4);
            // SAFETY: columns c0..c0 + 8v < width of `base`, `sum` and each of the `rows` rows.
            unsafe {
                let mut b = [_mm256_setzero_ps(); 4];
                let mut acc = [_mm256_setzero_ps(); 4];
                for j in 0..v {
                    b[j] = _mm256_loadu_ps(base.as_ptr().add(c0 + 8 * j));
                    acc[j] = _mm256_loadu_ps(sum.as_ptr().add(c0 + 8 * j));
                }
                for r in 0..rows {
                    let p = xs.as_mut_ptr().add(r * width + c0);
                    for j in 0..v {
                        let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(8 * j)), b[j]));
                        _mm256_storeu_ps(p.add(8 * j), e);
                        acc[j] = _mm256_add_ps(acc[j], e);
                    }
                }
                for (j, a) in acc.iter().enumerate().take(v) {
                    _mm256_storeu_ps(sum.as_mut_ptr().add(c0 + 8 * j), *a);
                }
            }
            c0 += 8 * v;
        }
    }

    /// # Safety
    ///
    /// The CPU must have AVX2 and FMA; `u` is as long as `g`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gelu_mul(g: &mut [f32], u: Option<&[f32]>) {
        assert!(u.is_none_or(|u| u.len() == g.len()), "gelu_mul of slices of different lengths");
        let k = _mm256_set1_ps(-2.0 * super::SQRT_TWO_OVER_PI);
        let c = _mm256_set1_ps(0.044715);
        let one = _mm256_set1_ps(1.0);
        let times_u = u.is_some();
        map8(g, u, |v, y| {
            // -2z = -2 c v (1 + 0.044715 v^2)
            let t = _mm256_mul_ps(_mm256_mul_ps(k, v), _mm256_fmadd_ps(_mm256_mul_ps(c, v), v, one));
            let e = exp8(t);
            let num = if times_u { _mm256_mul_ps(v, y) } else { v };
            _mm256_div_ps(num, _mm256_add_ps(one, e))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_and_masked_scores_are_zero() {
        let mut xs: Vec<f32> = (0..2003).map(|i| -90.0 + i as f32 * 0.045).collect();
        xs.push(f32::NEG_INFINITY);
        let want: Vec<f32> = xs.iter().map(|x| (x - 0.5).exp()).collect();
        let sum = exp_sub_sum(&mut xs, 0.5);
        for (i, (g, w)) in xs.iter().zip(&want).enumerate() {
            // Below e^-87.3 (1.2e-38, where f32 turns subnormal) the result may be 0.
            let tol = w.abs() * 3e-7 + 1.3e-38;
            assert!((g - w).abs() <= tol, "exp at {i}: {g} vs libm {w}");
        }
        assert_eq!(*xs.last().unwrap(), 0.0);
        let want_sum: f32 = want.iter().sum();
        assert!((sum - want_sum).abs() <= want_sum * 1e-5, "{sum} vs {want_sum}");
    }

    #[test]
    fn exp_sub_cols_sum_matches_libm_per_column() {
        // Widths with and without a SIMD path (a multiple of 8, of 32, neither); masked scores.
        for width in [128usize, 40, 8, 7] {
            let rows = 37;
            let xs0: Vec<f32> = (0..rows * width)
                .map(|i| if i % 11 == 3 { f32::NEG_INFINITY } else { -30.0 + (i * 7919 % 6007) as f32 * 0.005 })
                .collect();
            let base: Vec<f32> = (0..width).map(|c| (c % 5) as f32 - 2.0).collect();
            let sum0: Vec<f32> = (0..width).map(|c| c as f32 * 0.25).collect();
            let (mut xs, mut sum) = (xs0.clone(), sum0.clone());
            exp_sub_cols_sum(&mut xs, width, &base, &mut sum);
            for c in 0..width {
                let mut want_sum = sum0[c] as f64;
                for r in 0..rows {
                    let i = r * width + c;
                    let want = ((xs0[i] - base[c]) as f64).exp();
                    want_sum += want;
                    assert!((xs[i] as f64 - want).abs() <= want * 3e-7 + 1.3e-38, "{width}: ({r}, {c}) {}", xs[i]);
                }
                assert!((sum[c] as f64 - want_sum).abs() <= want_sum * 1e-6, "{width}: column {c} sums {}", sum[c]);
            }
        }
    }

    #[test]
    fn gelu_mul_matches_the_tanh_formula() {
        // The FFN's usual range, then far past it (where tanh saturates and exp is clamped).
        for (n, lo, step, what) in [(1001, -12.0f32, 0.024f32, "gelu"), (4001, -200.0, 0.1, "wide gelu")] {
            let mut g: Vec<f32> = (0..n).map(|i| lo + i as f32 * step).collect();
            let u: Vec<f32> = (0..n).map(|i| -3.0 + (i % 13) as f32 * 0.5).collect();
            let want: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(&v, &y)| 0.5 * v * (1.0 + f32::tanh(SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v))) * y)
                .collect();
            let mut plain = g.clone();
            gelu_mul(&mut g, Some(&u));
            for (i, (a, b)) in g.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 2e-6 * (1.0 + b.abs()), "{what} at {i}: {a} vs {b}");
            }
            // Without `u`: gelu alone.
            gelu_mul(&mut plain, None);
            for (i, ((a, b), y)) in plain.iter().zip(&want).zip(&u).filter(|(_, y)| **y != 0.0).enumerate() {
                assert!((a - b / y).abs() <= 2e-6 * (1.0 + (b / y).abs()), "{what} alone at {i}: {a} vs {}", b / y);
            }
        }
    }
}
