//! `Linear` and `Embedding` against plain f32 references, for every weight type with a native
//! kernel and every instruction-set level this CPU has.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use engine::linear::{Embedding, Level, Linear};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    /// Roughly normal values; every 7th row ten times larger, as real weight rows vary.
    fn matrix(&mut self, rows: usize, cols: usize, spread: bool) -> Tensor {
        let mut v = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let s = if spread && r % 7 == 3 { 10.0 } else { 1.0 };
            for _ in 0..cols {
                v.push(s * (self.next() + self.next() + self.next()));
            }
        }
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }
}

const QUANTIZED: [GgmlDType; 8] = [
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

fn is_k(t: GgmlDType) -> bool {
    matches!(t, GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K)
}

/// Relative Frobenius error `|a - b| / |b|`.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    let n = b.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    (d / n.max(1e-30)).sqrt()
}

/// Worst `|a_ij - b_ij| / (|x_i| |w_j|)` over two `[m, n]` results of `x @ w^T`: the error of
/// each dot product relative to the largest value it could have had.
fn worst_scaled_err(a: &Tensor, b: &Tensor, x: &Tensor, w: &QTensor) -> f32 {
    let wd = w.dequantize(&Device::Cpu).unwrap();
    let xn = x.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    let wn = wd.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap().t().unwrap();
    let scale = xn.broadcast_mul(&wn).unwrap();
    let d = (a - b).unwrap().abs().unwrap();
    let r = (d / (scale + 1e-30).unwrap()).unwrap();
    r.max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// `x` rounded the way the kernels quantize activations: blocks of 32 with an f32 scale
/// `max|x| / 127`, values rounded half to even.
fn q8_roundtrip(x: &Tensor) -> Tensor {
    let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for b in v.chunks_mut(32) {
        let d = b.iter().fold(0f32, |a, x| a.max(x.abs())) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for x in b {
            *x = (*x * id).round_ties_even() * d;
        }
    }
    Tensor::from_vec(v, x.shape(), &Device::Cpu).unwrap()
}

fn reference(w: &QTensor, x: &Tensor) -> Tensor {
    let wd = w.dequantize(&Device::Cpu).unwrap();
    let k = wd.dim(1).unwrap();
    let m = x.elem_count() / k;
    let y = x.reshape((m, k)).unwrap().matmul(&wd.t().unwrap()).unwrap();
    let mut dims = x.dims().to_vec();
    *dims.last_mut().unwrap() = wd.dim(0).unwrap();
    y.reshape(dims).unwrap()
}

#[test]
fn quantized_types_match_reference_at_every_level() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for &dt in &QUANTIZED {
        // k: a whole number of 8-block groups plus a partial one (K types: 3 super-blocks).
        let ks: &[usize] = if is_k(dt) { &[768] } else { &[96, 320] };
        for &k in ks {
            for &n in &[1usize, 17, 64] {
                let w = Arc::new(QTensor::quantize(&rng.matrix(n, k, true), dt).unwrap());
                let lin = Linear::new(w.clone()).unwrap();
                assert_eq!((lin.in_dim(), lin.out_dim()), (k, n));
                assert_eq!(lin.storage_bytes(), w.storage_size_in_bytes());
                for &m in &[1usize, 2, 7, 64, 513] {
                    let x = rng.matrix(m, k, false);
                    let want = reference(&w, &x);
                    let scalar = lin.forward_at(&x, Level::Scalar).unwrap();
                    assert_eq!(scalar.dims(), &[m, n]);
                    // Against the same product with the activations rounded through Q8_0, our
                    // kernels' only error is float rounding. Not so where candle's kernel runs
                    // (types we leave to it without SIMD, as on Arm): its Q8_0 activations keep
                    // an f16 scale, 2.6e-5 away here at k=96 (regression: linear_kernels on Arm).
                    let xq = q8_roundtrip(&x);
                    let e = worst_scaled_err(&scalar, &reference(&w, &xq), &x, &w);
                    if lin.is_native() {
                        assert!(e < 2e-5, "{dt:?} k={k} n={n} m={m} scalar vs Q8_0 activations: {e}");
                    }
                    let e = worst_scaled_err(&scalar, &want, &x, &w);
                    assert!(e < 3e-3, "{dt:?} k={k} n={n} m={m} scalar: scaled error {e}");
                    // The relative error of the whole output; with few outputs it is dominated by
                    // chance cancellations, so only checked on larger ones.
                    if m * n >= 64 {
                        let e = rel_err(&scalar, &want);
                        assert!(e < 2e-2, "{dt:?} k={k} n={n} m={m} scalar: error {e}");
                    }
                    for level in Level::available() {
                        let got = lin.forward_at(&x, level).unwrap();
                        assert_eq!(got.dims(), &[m, n]);
                        // Same integer sums as the scalar kernel, so only float rounding differs.
                        let e = worst_scaled_err(&got, &scalar, &x, &w);
                        assert!(e < 1e-6, "{dt:?} k={k} n={n} m={m} {level:?} vs scalar: {e}");
                    }
                    let got = lin.forward(&x).unwrap();
                    assert!(worst_scaled_err(&got, &want, &x, &w) < 3e-3);
                }
            }
        }
    }
}

#[test]
fn float_weights_are_exact() {
    let mut rng = Rng(7);
    for dt in [GgmlDType::F32, GgmlDType::F16] {
        let w = Arc::new(QTensor::quantize(&rng.matrix(33, 80, true), dt).unwrap());
        let lin = Linear::new(w.clone()).unwrap();
        for m in [1usize, 2, 7, 64, 513] {
            let x = rng.matrix(m, 80, false);
            let got = lin.forward(&x).unwrap();
            let e = rel_err(&got, &reference(&w, &x));
            assert!(e < 1e-5, "{dt:?} m={m}: {e}");
        }
    }
}

/// F16 matrices (the vision projectors') are held as f16, half of f32, and multiplied by f16 dot
/// products for a few rows; for more by the F16 GEMM (SIMD levels) or widened a block of rows at
/// a time (scalar level): all give f32's answer on a matrix of several blocks and a ragged last
/// one.
#[test]
fn f16_weights_are_held_at_half_and_exact_across_blocks() {
    let mut rng = Rng(9);
    let (out, k) = (8200, 1024); // blocks of 8192 rows and 8
    let w = Arc::new(QTensor::quantize(&rng.matrix(out, k, true), GgmlDType::F16).unwrap());
    let lin = Linear::new(w.clone()).unwrap();
    assert_eq!(lin.storage_bytes(), out * k * 2);
    assert_eq!(engine::linear::held_bytes(GgmlDType::F16, out, k, &Device::Cpu), Some(lin.storage_bytes() as u64));
    // Dot products for a few rows, the GEMM or widened blocks for more.
    for m in [1usize, 3, 12] {
        let x = rng.matrix(m, k, false);
        let want = reference(&w, &x);
        for level in Level::available() {
            let got = lin.forward_at(&x, level).unwrap();
            assert_eq!(got.dims(), &[m, out]);
            let e = rel_err(&got, &want);
            assert!(e < 1e-5, "m={m} {level:?}: {e}");
        }
    }
}

/// The F16 GEMM (many rows) at every level against an f64 reference on awkward shapes: k not a
/// multiple of the vector width nor of the kernels' k blocks (75, 1152, 4304: SigLIP's widths),
/// output columns not filling a panel (33, 97), rows not filling a register tile nor a row
/// block (9, 64, 513; 7 takes the dot products). Each dot product's error is measured against
/// the largest it could have had, `|x_i| |w_j|`: f32 sums in another order differ by rounding
/// only, a few ulps of that.
#[test]
fn f16_gemm_matches_f64_at_every_level_on_awkward_shapes() {
    let mut rng = Rng(13);
    for (k, n) in [(75usize, 33usize), (1152, 97), (4304, 33), (1152, 1)] {
        let w = Arc::new(QTensor::quantize(&rng.matrix(n, k, true), GgmlDType::F16).unwrap());
        let wv = w.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let lin = Linear::new(w.clone()).unwrap();
        assert_eq!(lin.storage_bytes(), n * k * 2);
        for m in [7usize, 9, 64, 513] {
            let x = rng.matrix(m, k, false);
            let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let norm = |v: &[f32]| v.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
            let want: Vec<(f64, f64)> = (0..m * n)
                .map(|ij| {
                    let (xr, wr) = (&xv[ij / n * k..][..k], &wv[ij % n * k..][..k]);
                    let dot: f64 = xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
                    (dot, norm(xr) * norm(wr))
                })
                .collect();
            for level in Level::available() {
                let got = lin.forward_at(&x, level).unwrap();
                assert_eq!(got.dims(), &[m, n]);
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let worst = got.iter().zip(&want).map(|(&g, &(d, s))| (g as f64 - d).abs() / s).fold(0f64, f64::max);
                assert!(worst < F16_GEMM_TOL, "k={k} n={n} m={m} {level:?}: scaled error {worst:e}");
            }
        }
    }
}

/// Tolerance of `f16_gemm_matches_f64_at_every_level_on_awkward_shapes`.
const F16_GEMM_TOL: f64 = 1e-6;

#[test]
fn batched_and_strided_inputs() {
    let mut rng = Rng(11);
    for dt in [GgmlDType::Q5_0, GgmlDType::Q8_0, GgmlDType::Q6K, GgmlDType::F32] {
        let k = 256;
        let w = Arc::new(QTensor::quantize(&rng.matrix(40, k, true), dt).unwrap());
        let lin = Linear::new(w.clone()).unwrap();
        for level in Level::available() {
            // 3-D input.
            for m in [1usize, 5, 12] {
                let x = rng.matrix(2 * m, k, false).reshape((2, m, k)).unwrap();
                let got = lin.forward_at(&x, level).unwrap();
                assert_eq!(got.dims(), &[2, m, 40]);
                let e = rel_err(&got, &reference(&w, &x));
                assert!(e < 1e-2, "{dt:?} 3-D m={m}: {e}");
            }
            // Non-contiguous: a transposed view and a narrowed view.
            let xt = rng.matrix(k, 9, false).t().unwrap();
            assert!(!xt.is_contiguous());
            let got = lin.forward_at(&xt, level).unwrap();
            let e = rel_err(&got, &reference(&w, &xt.contiguous().unwrap()));
            assert!(e < 1e-2, "{dt:?} transposed: {e}");
            let xn = rng.matrix(20, 2 * k, false).narrow(1, 64, k).unwrap();
            assert!(!xn.is_contiguous());
            let got = lin.forward_at(&xn, level).unwrap();
            let e = rel_err(&got, &reference(&w, &xn.contiguous().unwrap()));
            assert!(e < 1e-2, "{dt:?} narrowed: {e}");
        }
        // Wrong input size is an error, not a panic.
        assert!(lin.forward(&rng.matrix(3, k + 32, false)).is_err());
    }
}

#[test]
fn zero_rows_and_zero_input() {
    let mut rng = Rng(3);
    let w = Arc::new(QTensor::quantize(&rng.matrix(16, 64, true), GgmlDType::Q4_0).unwrap());
    let lin = Linear::new(w).unwrap();
    let x = Tensor::zeros((0, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(lin.forward(&x).unwrap().dims(), &[0, 16]);
    let x = Tensor::zeros((3, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let y = lin.forward(&x).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(y, 0.0);
}

#[test]
fn embedding_rows_equal_dequantized_rows() {
    let mut rng = Rng(5);
    for dt in QUANTIZED.into_iter().chain([GgmlDType::F32, GgmlDType::F16]) {
        let hidden = if is_k(dt) { 512 } else { 160 };
        let table = Arc::new(QTensor::quantize(&rng.matrix(300, hidden, true), dt).unwrap());
        let full = table.dequantize(&Device::Cpu).unwrap();
        let emb = Embedding::new(table.clone()).unwrap();
        assert_eq!((emb.vocab(), emb.hidden()), (300, hidden));
        // The tied output projection shares the table.
        let _lin = Linear::new(table.clone()).unwrap();
        for ids in [vec![0u32], vec![299, 5, 5, 17], (0..300).rev().collect::<Vec<u32>>()] {
            let got = emb.lookup(&ids).unwrap();
            assert_eq!(got.dims(), &[ids.len(), hidden]);
            let idt = Tensor::from_slice(&ids, ids.len(), &Device::Cpu).unwrap();
            let want = full.index_select(&idt, 0).unwrap();
            let d = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d <= 1e-6, "{dt:?}: {d}");
        }
        assert!(emb.lookup(&[300]).is_err());
        assert!(emb.lookup(&[1, u32::MAX]).is_err());
        assert_eq!(emb.lookup(&[]).unwrap().dims(), &[0, hidden]);
    }
}

/// Regression guard for the AVX2 GEMM, which adds `vpmaddubsw` pair sums in i16 before widening
/// them: weights at the top of their range met by activations at +127 (a constant row) give
/// the largest sums there are, and every level must still agree with the scalar kernel.
#[test]
fn extreme_weights_and_activations_do_not_saturate_any_level() {
    for &dt in &QUANTIZED {
        let k = 512;
        // One value of each 32-block at the negative extreme sets the scale; the rest sit at
        // the positive end, which quantizes to the largest unsigned value of each type.
        let mut v = Vec::new();
        for r in 0..24 {
            for j in 0..k {
                v.push(if j % 32 == 0 {
                    -1.0
                } else if r % 2 == 0 {
                    0.99
                } else {
                    -0.99
                });
            }
        }
        let w = Arc::new(QTensor::quantize(&Tensor::from_vec(v, (24, k), &Device::Cpu).unwrap(), dt).unwrap());
        let lin = Linear::new(w.clone()).unwrap();
        for sign in [1.0f32, -1.0] {
            let x = Tensor::from_vec(vec![sign; 16 * k], (16, k), &Device::Cpu).unwrap();
            let scalar = lin.forward_at(&x, Level::Scalar).unwrap();
            let e = worst_scaled_err(&scalar, &reference(&w, &x), &x, &w);
            assert!(e < 3e-3, "{dt:?} scalar: {e}");
            for level in Level::available() {
                let e = worst_scaled_err(&lin.forward_at(&x, level).unwrap(), &scalar, &x, &w);
                assert!(e < 1e-6, "{dt:?} {level:?} vs scalar (x = {sign}): {e}");
            }
        }
    }
}
