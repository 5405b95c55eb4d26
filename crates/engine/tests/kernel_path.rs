//! Which path the model runs: our CPU kernels, or with `HEARTH_KERNELS=generic` the
//! device-generic one (candle's ops only, as on CUDA and Metal). scripts/test runs the fidelity
//! and attention tests a second time under `generic`; this test makes sure that run really
//! took the generic path, and that the default run did not.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use engine::linear::{generic_requested, native_on, Linear};

#[test]
fn hearth_kernels_generic_selects_candles_ops_on_the_cpu() {
    let generic = std::env::var("HEARTH_KERNELS").as_deref() == Ok("generic");
    assert_eq!(generic_requested(), generic);
    assert_eq!(native_on(&Device::Cpu), !generic);

    // Q5_0: a type with a native kernel at every level, scalar included (as on Arm).
    let w = Tensor::ones((8, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let lin = Linear::new(Arc::new(QTensor::quantize(&w, GgmlDType::Q5_0).unwrap())).unwrap();
    assert_eq!(lin.is_native(), !generic);
    // Both paths compute the same product.
    let x = Tensor::ones((3, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let y = lin.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(y.iter().all(|v| (v - 64.0).abs() < 1e-2), "{y:?}");
}
