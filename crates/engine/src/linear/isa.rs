//! Which SIMD kernels this CPU can run, and proof of it.
//!
//! Every `#[target_feature]` kernel in the engine is an `unsafe fn`: calling it on a CPU without
//! those features is undefined behaviour. The safe functions that choose a kernel take an [`Isa`],
//! whose SIMD variants carry a zero-sized token ([`Avx2`], [`Avx512`]) that only [`Isa::detected`]
//! creates, after asking the CPU. So a safe caller cannot reach a kernel its CPU lacks, and each
//! `unsafe` call of a kernel has the token in hand as its justification.

use std::sync::OnceLock;

/// Instruction-set level of the native kernels (for tests and benchmarks that pick one).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable Rust.
    Scalar,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX2 level plus AVX-512 F/BW/VL/VNNI (enables the many-row GEMM).
    Avx512,
}

impl Level {
    /// All levels this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        let best = Isa::detected().level();
        [Level::Scalar, Level::Avx2, Level::Avx512].into_iter().filter(|l| *l <= best).collect()
    }
}

/// Proof that this CPU has AVX2, FMA and F16C. The private field keeps it from being made
/// anywhere but in this module, which makes one only after `is_x86_feature_detected!`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

/// Proof that this CPU has everything [`Avx2`] proves plus AVX-512 F, BW, VL and VNNI.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The AVX-512 level includes the AVX2 one (detection checked both).
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2(())
    }
}

/// The kernels to run: a level, with the proof that the CPU has it.
#[derive(Clone, Copy, Debug)]
// Off x86-64 only `Scalar` is ever made; the variants stay so that callers need no cfg.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    Scalar,
    Avx2(Avx2),
    Avx512(Avx512),
}

impl Isa {
    /// The best kernels this CPU can run (asked once, then cached).
    pub(crate) fn detected() -> Isa {
        static D: OnceLock<Isa> = OnceLock::new();
        *D.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c");
                let avx512 = avx2
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni");
                if avx512 {
                    return Isa::Avx512(Avx512(()));
                }
                if avx2 {
                    return Isa::Avx2(Avx2(()));
                }
            }
            Isa::Scalar
        })
    }

    /// The kernels of `level`, or of the best level below it that this CPU has.
    pub(crate) fn at_most(level: Level) -> Isa {
        match (Isa::detected(), level) {
            (_, Level::Scalar) | (Isa::Scalar, _) => Isa::Scalar,
            (Isa::Avx512(t), Level::Avx2) => Isa::Avx2(t.avx2()),
            (isa, _) => isa,
        }
    }

    pub(crate) fn level(self) -> Level {
        match self {
            Isa::Scalar => Level::Scalar,
            Isa::Avx2(_) => Level::Avx2,
            Isa::Avx512(_) => Level::Avx512,
        }
    }

    /// The AVX2 proof, on the AVX2 and AVX-512 levels.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn avx2(self) -> Option<Avx2> {
        match self {
            Isa::Scalar => None,
            Isa::Avx2(t) => Some(t),
            Isa::Avx512(t) => Some(t.avx2()),
        }
    }
}

/// The level `forward` uses: the best the CPU has, or lower if `HEARTH_KERNELS` says
/// `scalar` or `avx2`.
#[doc(hidden)]
pub fn kernel_level() -> Level {
    kernels().level()
}

/// The kernels `forward` uses (see `kernel_level`).
pub(crate) fn kernels() -> Isa {
    static K: OnceLock<Isa> = OnceLock::new();
    *K.get_or_init(|| match std::env::var("HEARTH_KERNELS").as_deref() {
        Ok("scalar") => Isa::at_most(Level::Scalar),
        Ok("avx2") => Isa::at_most(Level::Avx2),
        _ => Isa::detected(),
    })
}

/// Whether `HEARTH_KERNELS=generic` asks the CPU to run the device-generic path: candle's own
/// ops (quantized matmul, softmax, GELU, f16 conversions) in place of our CPU kernels, exactly
/// as a CUDA or Metal device runs the model. CI runs the fidelity tests this way, so everything
/// a GPU runs except candle's own GPU kernels is tested on machines without one.
pub fn generic_requested() -> bool {
    static G: OnceLock<bool> = OnceLock::new();
    *G.get_or_init(|| std::env::var("HEARTH_KERNELS").as_deref() == Ok("generic"))
}

/// Whether tensors on `device` go through our CPU kernels (`false`: the device-generic path).
pub fn native_on(device: &candle_core::Device) -> bool {
    device.is_cpu() && !generic_requested()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_never_exceeds_the_cpu_nor_the_request() {
        let best = Isa::detected().level();
        for want in [Level::Scalar, Level::Avx2, Level::Avx512] {
            let got = Isa::at_most(want).level();
            assert_eq!(got, want.min(best), "asked for {want:?} on a {best:?} CPU");
            assert_eq!(Isa::at_most(want).avx2().is_some(), got >= Level::Avx2);
        }
        assert_eq!(Level::available().last(), Some(&best));
    }
}
