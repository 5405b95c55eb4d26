//! Byte layouts of the GGML weight blocks we read natively, and a portable unpacker that turns
//! any 32-value block into unsigned integers plus scales, the form every kernel here works on.
//!
//! Every supported type is described, for each block of 32 consecutive weights, as
//! `w[j] = sc[j / 16] * (v[j] - OFF) + mn` with `v[j]` an unsigned byte, `OFF` a per-type
//! constant and `sc`, `mn` per-block floats. Dot products against an activation block quantized
//! to `x[j] = dx * q[j]` (Q8_0-style, see `acts.rs`) then become integer sums:
//! `sum_j w[j] x[j] = dx * (sc_lo * (sum_lo v q - OFF * sum_lo q) + sc_hi * (...)) + mn * dx * sum q`.

use std::mem::size_of;

use candle_core::quantized::k_quants::{self as k, GgmlType};
use candle_core::quantized::GgmlDType;

/// The quantized weight types with native kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WType {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

/// The unit every kernel here works in: 32 values (a legacy block, an eighth of a K super-block,
/// an activation block).
pub(crate) const QK: usize = k::QK8_0;
pub(crate) const QK_K: usize = k::QK_K;

// Bytes per storage block, from candle's block structs (what `gguf::tensor_bytes` counts and
// loading reads into), so no size is written out twice.
pub(crate) const Q4_0_BYTES: usize = size_of::<k::BlockQ4_0>();
pub(crate) const Q4_1_BYTES: usize = size_of::<k::BlockQ4_1>();
pub(crate) const Q5_0_BYTES: usize = size_of::<k::BlockQ5_0>();
pub(crate) const Q5_1_BYTES: usize = size_of::<k::BlockQ5_1>();
pub(crate) const Q8_0_BYTES: usize = size_of::<k::BlockQ8_0>();
pub(crate) const Q4K_BYTES: usize = size_of::<k::BlockQ4K>();
pub(crate) const Q5K_BYTES: usize = size_of::<k::BlockQ5K>();
pub(crate) const Q6K_BYTES: usize = size_of::<k::BlockQ6K>();
// QK and QK_K must be the block sizes of the types that use them.
const _: () = assert!(k::BlockQ4_0::BLCK_SIZE == QK && k::BlockQ8_0::BLCK_SIZE == QK && k::BlockQ4K::BLCK_SIZE == QK_K);

impl WType {
    pub(crate) fn from_ggml(t: GgmlDType) -> Option<Self> {
        Some(match t {
            GgmlDType::Q4_0 => Self::Q4_0,
            GgmlDType::Q4_1 => Self::Q4_1,
            GgmlDType::Q5_0 => Self::Q5_0,
            GgmlDType::Q5_1 => Self::Q5_1,
            GgmlDType::Q8_0 => Self::Q8_0,
            GgmlDType::Q4K => Self::Q4K,
            GgmlDType::Q5K => Self::Q5K,
            GgmlDType::Q6K => Self::Q6K,
            _ => return None,
        })
    }

    /// Values per storage block.
    pub(crate) fn block_elems(self) -> usize {
        match self {
            Self::Q4K | Self::Q5K | Self::Q6K => QK_K,
            _ => QK,
        }
    }

    /// Bytes per storage block.
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => Q4_0_BYTES,
            Self::Q4_1 => Q4_1_BYTES,
            Self::Q5_0 => Q5_0_BYTES,
            Self::Q5_1 => Q5_1_BYTES,
            Self::Q8_0 => Q8_0_BYTES,
            Self::Q4K => Q4K_BYTES,
            Self::Q5K => Q5K_BYTES,
            Self::Q6K => Q6K_BYTES,
        }
    }

    pub(crate) fn row_bytes(self, k: usize) -> usize {
        k / self.block_elems() * self.block_bytes()
    }

    /// The constant subtracted from the unsigned values (see the module comment).
    pub(crate) fn offset(self) -> i32 {
        match self {
            Self::Q4_0 => 8,
            Self::Q5_0 => 16,
            Self::Q8_0 => 128,
            Self::Q6K => 32,
            Self::Q4_1 | Self::Q5_1 | Self::Q4K | Self::Q5K => 0,
        }
    }
}

#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// ggml's 6-bit scale/min unpacking for Q4_K/Q5_K super-blocks.
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// One 32-value block in the common form.
pub(crate) struct Unpacked {
    pub v: [u8; QK],
    /// Scales of values 0..16 and 16..32.
    pub sc: [f32; 2],
    pub mn: f32,
}

/// Unpacks 32-value block `b` (counted in 32s across the row) of a row stored as `t`.
pub(crate) fn unpack32(t: WType, row: &[u8], b: usize) -> Unpacked {
    let mut v = [0u8; QK];
    let (sc, mn);
    match t {
        WType::Q4_0 | WType::Q4_1 => {
            let blk = &row[b * t.block_bytes()..(b + 1) * t.block_bytes()];
            let d = f16_at(blk, 0);
            let qs = if t == WType::Q4_0 { &blk[2..18] } else { &blk[4..20] };
            for j in 0..16 {
                v[j] = qs[j] & 15;
                v[j + 16] = qs[j] >> 4;
            }
            sc = [d, d];
            mn = if t == WType::Q4_1 { f16_at(blk, 2) } else { 0.0 };
        }
        WType::Q5_0 | WType::Q5_1 => {
            let blk = &row[b * t.block_bytes()..(b + 1) * t.block_bytes()];
            let d = f16_at(blk, 0);
            let o = if t == WType::Q5_0 { 2 } else { 4 };
            let qh = u32::from_le_bytes([blk[o], blk[o + 1], blk[o + 2], blk[o + 3]]);
            let qs = &blk[o + 4..o + 20];
            for j in 0..16 {
                v[j] = (qs[j] & 15) | ((((qh >> j) & 1) as u8) << 4);
                v[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
            }
            sc = [d, d];
            mn = if t == WType::Q5_1 { f16_at(blk, 2) } else { 0.0 };
        }
        WType::Q8_0 => {
            let blk = &row[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
            let d = f16_at(blk, 0);
            for j in 0..QK {
                v[j] = (blk[2 + j] as i8 as i16 + 128) as u8;
            }
            sc = [d, d];
            mn = 0.0;
        }
        WType::Q4K | WType::Q5K => {
            let (sb, j) = (b / 8, b % 8);
            let bb = t.block_bytes();
            let blk = &row[sb * bb..(sb + 1) * bb];
            let d = f16_at(blk, 0);
            let dmin = f16_at(blk, 2);
            let (s, m) = scale_min_k4(j, &blk[4..16]);
            let c = j / 2;
            if t == WType::Q4K {
                let qs = &blk[16 + c * 32..16 + c * 32 + 32];
                for l in 0..QK {
                    v[l] = if j % 2 == 0 { qs[l] & 15 } else { qs[l] >> 4 };
                }
            } else {
                let qh = &blk[16..48];
                let qs = &blk[48 + c * 32..48 + c * 32 + 32];
                for l in 0..QK {
                    let lo = if j % 2 == 0 { qs[l] & 15 } else { qs[l] >> 4 };
                    v[l] = lo | (((qh[l] >> j) & 1) << 4);
                }
            }
            sc = [d * s as f32, d * s as f32];
            mn = -(dmin * m as f32);
        }
        WType::Q6K => {
            let (sb, j) = (b / 8, b % 8);
            let blk = &row[sb * Q6K_BYTES..(sb + 1) * Q6K_BYTES];
            let (h, q) = (j / 4, j % 4);
            let ql = &blk[h * 64..h * 64 + 64];
            let qh = &blk[128 + h * 32..128 + h * 32 + 32];
            for l in 0..QK {
                v[l] = match q {
                    0 => (ql[l] & 15) | ((qh[l] & 3) << 4),
                    1 => (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4),
                    2 => (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    _ => (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                };
            }
            let d = f16_at(blk, 208);
            sc = [d * (blk[192 + 2 * j] as i8) as f32, d * (blk[192 + 2 * j + 1] as i8) as f32];
            mn = 0.0;
        }
    }
    Unpacked { v, sc, mn }
}

/// Dequantizes one row of `k` values.
pub(crate) fn dequantize_row(t: WType, row: &[u8], out: &mut [f32]) {
    let off = t.offset() as f32;
    if t == WType::Q8_0 {
        for (b, o) in out.chunks_exact_mut(QK).enumerate() {
            let blk = &row[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
            let d = f16_at(blk, 0);
            for (o, &q) in o.iter_mut().zip(&blk[2..Q8_0_BYTES]) {
                *o = d * (q as i8) as f32;
            }
        }
        return;
    }
    for (b, o) in out.chunks_exact_mut(QK).enumerate() {
        let u = unpack32(t, row, b);
        for (j, o) in o.iter_mut().enumerate() {
            *o = u.sc[j / 16] * (u.v[j] as f32 - off) + u.mn;
        }
    }
}
