//! Which keys a query sees ([`Visible`]), and the attention of a prompt chunk's queries over an
//! f16 KV cache on the CPU ([`attend_chunk`]).
//!
//! `attend_chunk` works in tiles with an online softmax (FlashAttention's scheme: Dao et al.
//! 2022, <https://arxiv.org/abs/2205.14135>). Each task takes a block of `QB` queries of one head
//! and walks the keys `T` at a time, converting a tile of keys and values from f16 once for the
//! whole block. So a chunk deep into a 32K context never holds its scores against every key, nor
//! an f32 copy of the cache, and tiles a block cannot see (the future, or beyond the window) are
//! skipped without being read. Before it, a chunk multiplied each 16-row block of its queries
//! against an f32 copy of the whole cache with candle's general GEMM, which re-packed the keys
//! and values for every block: about 70 % of a 16K prompt's time (docs/benchmarks.md).
//!
//! Layouts make every inner loop a vector over queries: the block's queries are held transposed
//! (`[hd][QB]`), its scores as `[key][query]`, its output transposed (`[hd][QB]`), while keys and
//! values stay in their natural `[key][hd]` rows and are broadcast one number at a time. Both
//! products are then one micro-kernel, `C[a][r] += Σ_k A(a, k) · B[k][r]` ([`micro`]), and the
//! running maxima and sums of the softmax are vectors too.

use std::ops::Range;

use half::f16;

use crate::kv_kernels;
use crate::linear::pool::{par_for, SendPtr};
use crate::linear::Isa;

/// A score no query sees.
pub(crate) const MASKED: f32 = f32::NEG_INFINITY;

/// Which keys a query sees. Keys are `ring.len()` keys at positions `ring`, then keys at
/// consecutive positions from `first`. A query at position qp sees key position kp iff
/// `kp <= qp` and, with a window, `qp - kp < window`; or both lie in one of `blocks` (an image's
/// tokens, which see each other both ways on global and sliding layers alike).
pub(crate) struct Visible<'a> {
    pub(crate) ring: Vec<usize>,
    pub(crate) first: usize,
    pub(crate) window: Option<usize>,
    pub(crate) blocks: &'a [Range<usize>],
}

impl Visible<'_> {
    pub(crate) fn sees(&self, qp: usize, kp: usize) -> bool {
        (kp <= qp && self.window.is_none_or(|w| qp - kp < w))
            || self.blocks.iter().any(|b| b.contains(&qp) && b.contains(&kp))
    }

    /// The position of key `j`.
    fn position(&self, j: usize) -> usize {
        match self.ring.get(j) {
            Some(&p) => p,
            None => self.first + j - self.ring.len(),
        }
    }

    /// Sets the scores of the keys a query at position `qp` does not see to -inf.
    pub(crate) fn mask_row(&self, qp: usize, row: &mut [f32]) {
        for (j, x) in row.iter_mut().enumerate() {
            if !self.sees(qp, self.position(j)) {
                *x = MASKED;
            }
        }
    }

    /// What queries at positions `q` (inclusive) see of keys at positions `k` (inclusive).
    fn view(&self, q: (usize, usize), k: (usize, usize)) -> View {
        let ((qlo, qhi), (klo, khi)) = (q, k);
        // Blocks only ever add visibility: the causal window alone, or one block holding every
        // query and key (an image's tokens among themselves), decides "all".
        let within = |b: &Range<usize>, (lo, hi): (usize, usize)| b.start <= lo && hi < b.end;
        if (khi <= qlo && self.window.is_none_or(|w| qhi - klo < w))
            || self.blocks.iter().any(|b| within(b, q) && within(b, k))
        {
            return View::All;
        }
        let causal_none = klo > qhi || self.window.is_some_and(|w| qlo >= khi + w);
        let overlaps = |b: &Range<usize>, (lo, hi): (usize, usize)| b.start <= hi && lo < b.end;
        if causal_none && !self.blocks.iter().any(|b| overlaps(b, q) && overlaps(b, k)) {
            View::None
        } else {
            View::Some
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum View {
    All,
    Some,
    None,
}

/// An element type keys and values are stored in: f16 (the KV cache), f32 (the vision
/// encoder's, made and used in one layer).
pub(crate) trait Elem: Copy + Send + Sync {
    fn to_f32(src: &[Self], dst: &mut [f32]);
}

impl Elem for f16 {
    fn to_f32(src: &[f16], dst: &mut [f32]) {
        kv_kernels::f16_to_f32(src, dst);
    }
}

impl Elem for f32 {
    fn to_f32(src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
}

/// Rows `0..rows` of each KV head in storage `[kv_heads, stride, hd]`.
pub(crate) struct Rows<'a, E> {
    pub(crate) data: &'a [E],
    pub(crate) stride: usize,
    pub(crate) rows: usize,
}

// Derived `Clone`/`Copy` would ask `E` for them too; a borrowed slice is always copyable.
impl<E> Clone for Rows<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Rows<'_, E> {}

impl<E> Rows<'_, E> {
    /// No rows.
    pub(crate) fn none() -> Self {
        Rows { data: &[], stride: 0, rows: 0 }
    }
}

/// Queries per task.
const QB: usize = 128;
/// Keys per tile.
const T: usize = 64;
/// Rows of `A` per micro-kernel call (divides `T` and every Gemma 3 head size).
const AB: usize = 4;

/// Whether [`attend_chunk`] takes heads of `hd` values (every Gemma 3 and SigLIP size does).
pub(crate) fn supports(hd: usize) -> bool {
    hd > 0 && hd.is_multiple_of(AB)
}

/// Attention of a prompt chunk: `q` is `[kv_heads, groups * n, hd]` f32, already scaled, row
/// `g * n + i` being query head `g` of the kv head at position `pos + i`. Keys (and values) are
/// `keys[0]`'s rows then `keys[1]`'s, their positions and visibility given by `seen`. Returns
/// `softmax(q kᵀ) v` in `q`'s layout.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_chunk<E: Elem>(
    q: &[f32],
    kv_heads: usize,
    groups: usize,
    n: usize,
    hd: usize,
    pos: usize,
    keys: [Rows<E>; 2],
    values: [Rows<E>; 2],
    seen: &Visible,
    isa: Isa,
) -> Vec<f32> {
    let len = keys[0].rows + keys[1].rows;
    assert!(n > 0 && supports(hd) && q.len() == kv_heads * groups * n * hd);
    assert!(keys.iter().zip(&values).all(|(k, v)| k.rows == v.rows));
    assert!(keys
        .iter()
        .chain(&values)
        .all(|r| r.rows == 0 || r.data.len() >= ((kv_heads - 1) * r.stride + r.rows) * hd));
    assert!(seen.ring.len() <= len);
    let blocks = n.div_ceil(QB);
    let mut out = vec![0f32; q.len()];
    let dst = SendPtr(out.as_mut_ptr());
    par_for(kv_heads * groups * blocks, |t| {
        let (hg, b) = (t / blocks, t % blocks);
        let (i0, i1) = (b * QB, ((b + 1) * QB).min(n));
        let rows = hg * n + i0..hg * n + i1;
        let h = hg / groups;
        let task = Task { h, hd, pos: pos + i0, count: i1 - i0, keys, values, len, seen, isa };
        // SAFETY: task t alone writes rows `rows` of `out`, each `hd` long.
        let o = unsafe { std::slice::from_raw_parts_mut(dst.get().add(rows.start * hd), rows.len() * hd) };
        task.run(&q[rows.start * hd..rows.end * hd], o);
    });
    out
}

/// One block of `count <= QB` queries of kv head `h`, at positions `pos..pos + count`.
struct Task<'a, E> {
    h: usize,
    hd: usize,
    pos: usize,
    count: usize,
    keys: [Rows<'a, E>; 2],
    values: [Rows<'a, E>; 2],
    len: usize,
    seen: &'a Visible<'a>,
    isa: Isa,
}

impl<E: Elem> Task<'_, E> {
    fn run(&self, q: &[f32], out: &mut [f32]) {
        let (hd, count) = (self.hd, self.count);
        // Transposed queries, zero beyond `count` (those columns are computed and dropped).
        let mut qt = vec![0f32; hd * QB];
        for (i, row) in q.chunks_exact(hd).enumerate() {
            for (d, &x) in row.iter().enumerate() {
                qt[d * QB + i] = x;
            }
        }
        let mut ot = vec![0f32; hd * QB];
        let mut st = vec![0f32; T * QB];
        let (mut kt, mut vt) = (vec![0f32; T * hd], vec![0f32; T * hd]);
        let mut max = [MASKED; QB];
        let mut sum = [0f32; QB];
        let mut scale = [0f32; QB];
        let qs = (self.pos, self.pos + count - 1);
        for j0 in (0..self.len).step_by(T) {
            let m = T.min(self.len - j0);
            let (lo, hi) =
                (j0..j0 + m).map(|j| self.seen.position(j)).fold((usize::MAX, 0), |(lo, hi), p| (lo.min(p), hi.max(p)));
            let view = match self.seen.view(qs, (lo, hi)) {
                View::None => continue,
                View::All if m == T => View::All,
                _ => View::Some,
            };
            self.load(&self.keys, j0, m, &mut kt);
            self.load(&self.values, j0, m, &mut vt);
            // Scores [key][query].
            for a in (0..T).step_by(AB) {
                micro_at(self.isa, hd, &kt[a * hd..], hd, 1, &qt, &mut st[a * QB..], false);
            }
            if view == View::Some {
                for (jj, row) in st.chunks_exact_mut(QB).enumerate() {
                    if jj >= m {
                        row.fill(MASKED);
                        continue;
                    }
                    let kp = self.seen.position(j0 + jj);
                    for (i, x) in row.iter_mut().enumerate().take(count) {
                        if !self.seen.sees(self.pos + i, kp) {
                            *x = MASKED;
                        }
                    }
                }
            }
            // Online softmax: the new running max per query, the old sums and outputs rescaled
            // to it, this tile's probabilities relative to it.
            let mut tile_max = [MASKED; QB];
            for row in st.chunks_exact(QB) {
                for (t, &x) in tile_max.iter_mut().zip(row) {
                    *t = t.max(x);
                }
            }
            let mut rescale = false;
            for i in 0..QB {
                let new = max[i].max(tile_max[i]);
                // A query that has seen nothing yet keeps max -inf; 0 stands in so that no
                // exponent is -inf - -inf.
                let base = if new == MASKED { 0.0 } else { new };
                scale[i] = if max[i] == new { 1.0 } else { (max[i] - base).exp() };
                rescale |= scale[i] != 1.0;
                max[i] = new;
                tile_max[i] = base;
            }
            for (i, s) in sum.iter_mut().enumerate() {
                *s *= scale[i];
            }
            // Only the tile's m keys: the output below sums over those alone.
            crate::vmath::exp_sub_cols_sum(&mut st[..m * QB], QB, &tile_max, &mut sum);
            if rescale {
                for row in ot.chunks_exact_mut(QB) {
                    for (o, &s) in row.iter_mut().zip(&scale) {
                        *o *= s;
                    }
                }
            }
            // Output [hd][query] += vᵀ p over this tile's m keys.
            for d in (0..hd).step_by(AB) {
                micro_at(self.isa, m, &vt[d..], 1, hd, &st, &mut ot[d * QB..], true);
            }
        }
        for (i, row) in out.chunks_exact_mut(hd).enumerate() {
            // Every query sees at least its own key, so its sum is positive.
            let inv = 1.0 / sum[i];
            for (d, o) in row.iter_mut().enumerate() {
                *o = ot[d * QB + i] * inv;
            }
        }
    }

    /// Keys (or values) `j0..j0 + m` of head `h` as f32 rows into `dst`, zero after them.
    fn load(&self, src: &[Rows<E>; 2], j0: usize, m: usize, dst: &mut [f32]) {
        let hd = self.hd;
        let mut j = j0;
        while j < j0 + m {
            let (part, at) = if j < src[0].rows { (src[0], j) } else { (src[1], j - src[0].rows) };
            let take = (part.rows - at).min(j0 + m - j);
            let from = (self.h * part.stride + at) * hd;
            E::to_f32(&part.data[from..][..take * hd], &mut dst[(j - j0) * hd..][..take * hd]);
            j += take;
        }
        dst[m * hd..].fill(0.0);
    }
}

/// `c[a][r] (+)= Σ_k A(a, k) · b[k][r]` for `a < AB`, `r < QB`, `k < kdim`, where
/// `A(a, k) = x[a * sa + k * sk]` and the rows of `b` and `c` are `QB` apart; the kernel of the
/// best level `isa` allows.
#[allow(clippy::too_many_arguments)]
fn micro_at(isa: Isa, kdim: usize, x: &[f32], sa: usize, sk: usize, b: &[f32], c: &mut [f32], acc: bool) {
    assert!(kdim == 0 || x.len() > (AB - 1) * sa + (kdim - 1) * sk);
    assert!(b.len() >= kdim * QB && c.len() >= (AB - 1) * QB + QB);
    match isa {
        // SAFETY: the tokens prove the features; the asserts above bound every access.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(_) => unsafe { x86::micro_avx512(kdim, x, sa, sk, b, c, acc) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(_) => unsafe { x86::micro_avx2(kdim, x, sa, sk, b, c, acc) },
        _ => micro::<16>(kdim, x, sa, sk, b, c, acc),
    }
}

/// Multiply-add for the portable kernel: fused on Aarch64 (which always has FMA), else a
/// product and a sum (without the FMA feature, `f32::mul_add` is a slow libm `fmaf` call).
#[inline(always)]
fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(target_arch = "aarch64") {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The micro-kernel, `R` columns at a time: an `AB x R` block of `c` stays in registers (the
/// fixed-size arrays let the compiler keep it there and vectorise over `r`) while `k` runs.
#[inline(always)]
fn micro<const R: usize>(kdim: usize, x: &[f32], sa: usize, sk: usize, b: &[f32], c: &mut [f32], acc: bool) {
    for r0 in (0..QB).step_by(R) {
        let mut cc = [[0f32; R]; AB];
        if acc {
            for (a, row) in cc.iter_mut().enumerate() {
                row.copy_from_slice(&c[a * QB + r0..][..R]);
            }
        }
        for k in 0..kdim {
            let bk: &[f32; R] = b[k * QB + r0..][..R].try_into().expect("R columns");
            for (a, row) in cc.iter_mut().enumerate() {
                let xa = x[a * sa + k * sk];
                for (o, &y) in row.iter_mut().zip(bk) {
                    *o = mul_add(xa, y, *o);
                }
            }
        }
        for (a, row) in cc.iter().enumerate() {
            c[a * QB + r0..][..R].copy_from_slice(row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{AB, QB};

    /// The micro-kernel written out for one vector width: `V` vectors of `W` lanes a row of `b`
    /// (`V * W` columns a pass), loaded once per `k` into registers, each met by `AB` broadcasts;
    /// `AB x V` accumulators. Left to itself the compiler folded `b`'s loads into every
    /// multiply-add (`AB * V` loads per `k` instead of `V`), and the kernel waited on loads.
    macro_rules! micro_simd {
        ($kdim:ident, $x:ident, $sa:ident, $sk:ident, $b:ident, $c:ident, $acc:ident,
         $V:literal, $W:literal, $zero:ident, $load:ident, $store:ident, $set1:ident, $fma:ident) => {{
            let (xp, bp, cp) = ($x.as_ptr(), $b.as_ptr(), $c.as_mut_ptr());
            for r0 in (0..QB).step_by($V * $W) {
                let mut cc = [[$zero(); $V]; AB];
                if $acc {
                    for (a, row) in cc.iter_mut().enumerate() {
                        for (v, o) in row.iter_mut().enumerate() {
                            *o = $load(cp.add(a * QB + r0 + v * $W));
                        }
                    }
                }
                for k in 0..$kdim {
                    let bk = bp.add(k * QB + r0);
                    let mut bv = [$zero(); $V];
                    for (v, o) in bv.iter_mut().enumerate() {
                        *o = $load(bk.add(v * $W));
                    }
                    for (a, row) in cc.iter_mut().enumerate() {
                        let xa = $set1(*xp.add(a * $sa + k * $sk));
                        for (o, &y) in row.iter_mut().zip(&bv) {
                            *o = $fma(xa, y, *o);
                        }
                    }
                }
                for (a, row) in cc.iter().enumerate() {
                    for (v, &o) in row.iter().enumerate() {
                        $store(cp.add(a * QB + r0 + v * $W), o);
                    }
                }
            }
        }};
    }

    /// # Safety
    ///
    /// The CPU must have AVX-512 F; `micro_at`'s asserts bound every access.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn micro_avx512(
        kdim: usize,
        x: &[f32],
        sa: usize,
        sk: usize,
        b: &[f32],
        c: &mut [f32],
        acc: bool,
    ) {
        // 4 x 64: sixteen 16-lane accumulators, b's 4 vectors and a broadcast (21 of 32 registers).
        // SAFETY: as the function's contract says.
        unsafe {
            micro_simd!(
                kdim,
                x,
                sa,
                sk,
                b,
                c,
                acc,
                4,
                16,
                _mm512_setzero_ps,
                _mm512_loadu_ps,
                _mm512_storeu_ps,
                _mm512_set1_ps,
                _mm512_fmadd_ps
            )
        }
    }

    /// # Safety
    ///
    /// The CPU must have AVX2 and FMA; `micro_at`'s asserts bound every access.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn micro_avx2(kdim: usize, x: &[f32], sa: usize, sk: usize, b: &[f32], c: &mut [f32], acc: bool) {
        // 4 x 16: eight 8-lane accumulators, b's 2 vectors and a broadcast (11 of 16 registers).
        // SAFETY: as the function's contract says.
        unsafe {
            micro_simd!(
                kdim,
                x,
                sa,
                sk,
                b,
                c,
                acc,
                2,
                8,
                _mm256_setzero_ps,
                _mm256_loadu_ps,
                _mm256_storeu_ps,
                _mm256_set1_ps,
                _mm256_fmadd_ps
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use half::slice::HalfFloatSliceExt;

    use super::*;
    use crate::kv_kernels::tests::random;
    use crate::linear::Level;

    fn f16s(n: usize, seed: u64, scale: f32) -> Vec<f16> {
        let x: Vec<f32> = random(n, seed).iter().map(|v| v * scale).collect();
        let mut h = vec![f16::ZERO; n];
        h.convert_from_f32_slice(&x);
        h
    }

    /// softmax over the visible keys, plainly, in f64.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        kvh: usize,
        groups: usize,
        n: usize,
        hd: usize,
        pos: usize,
        keys: [Rows<f16>; 2],
        values: [Rows<f16>; 2],
        seen: &Visible,
    ) -> Vec<f32> {
        let len = keys[0].rows + keys[1].rows;
        let row = |src: &[Rows<f16>; 2], h: usize, j: usize| -> Vec<f64> {
            let (p, at) = if j < src[0].rows { (src[0], j) } else { (src[1], j - src[0].rows) };
            p.data[(h * p.stride + at) * hd..][..hd].iter().map(|x| x.to_f64()).collect()
        };
        let mut out = vec![0f32; q.len()];
        for h in 0..kvh {
            for r in 0..groups * n {
                let qr = &q[(h * groups * n + r) * hd..][..hd];
                let qp = pos + r % n;
                let s: Vec<f64> = (0..len)
                    .map(|j| match seen.sees(qp, seen.position(j)) {
                        true => row(&keys, h, j).iter().zip(qr).map(|(k, &x)| k * x as f64).sum(),
                        false => f64::NEG_INFINITY,
                    })
                    .collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                let o = &mut out[(h * groups * n + r) * hd..][..hd];
                for (j, w) in e.iter().enumerate().filter(|(_, w)| **w > 0.0) {
                    for (o, x) in o.iter_mut().zip(row(&values, h, j)) {
                        *o += (w / z * x) as f32;
                    }
                }
            }
        }
        out
    }

    /// Global and sliding layers, chunks shorter and longer than a query block, lengths off the
    /// tile size, several kv heads and groups, a ring that wraps, an image block, on every level.
    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one image block each, on purpose
    fn attend_chunk_matches_naive_attention() {
        struct Case {
            kvh: usize,
            groups: usize,
            hd: usize,
            n: usize,
            pos: usize,
            window: Option<usize>,
            blocks: Vec<Range<usize>>,
        }
        let cases = [
            Case { kvh: 1, groups: 4, hd: 256, n: 100, pos: 0, window: None, blocks: vec![] },
            Case { kvh: 1, groups: 4, hd: 256, n: 70, pos: 130, window: None, blocks: vec![] },
            Case { kvh: 2, groups: 2, hd: 8, n: 200, pos: 61, window: None, blocks: vec![90..150] },
            Case { kvh: 1, groups: 2, hd: 16, n: 150, pos: 0, window: Some(64), blocks: vec![] },
            Case { kvh: 2, groups: 1, hd: 32, n: 90, pos: 300, window: Some(100), blocks: vec![] },
            Case { kvh: 1, groups: 4, hd: 128, n: 40, pos: 517, window: Some(512), blocks: vec![540..550] },
        ];
        for (ci, c) in cases.iter().enumerate() {
            let (kvh, hd, n) = (c.kvh, c.hd, c.n);
            let q: Vec<f32> = random(kvh * c.groups * n * hd, 11 + ci as u64).iter().map(|x| x * 0.4).collect();
            let own_k = f16s(kvh * n * hd, 12, 3.0);
            let own_v = f16s(kvh * n * hd, 13, 1.0);
            let (slots, filled, ring, first) = match c.window {
                // A global layer's cache holds every position, the chunk's own included.
                None => (c.pos + n + 7, c.pos + n, vec![], 0),
                // A ring of `w` slots holding positions pos - filled..pos, then the chunk.
                Some(w) => {
                    let filled = c.pos.min(w);
                    let ring = (0..filled).map(|s| crate::model::ring_slot_position(s, c.pos, w)).collect();
                    (w, filled, ring, c.pos)
                }
            };
            let cache_k = f16s(kvh * slots * hd, 14, 3.0);
            let cache_v = f16s(kvh * slots * hd, 15, 1.0);
            let cache = |data| Rows { data, stride: slots, rows: filled };
            let own = |data| Rows { data, stride: n, rows: n };
            let (keys, values) = match c.window {
                None => ([cache(&cache_k), Rows::none()], [cache(&cache_v), Rows::none()]),
                Some(_) => ([cache(&cache_k), own(&own_k)], [cache(&cache_v), own(&own_v)]),
            };
            let seen = Visible { ring, first, window: c.window, blocks: &c.blocks };
            let want = naive(&q, kvh, c.groups, n, hd, c.pos, keys, values, &seen);
            for level in Level::available() {
                let got = attend_chunk(&q, kvh, c.groups, n, hd, c.pos, keys, values, &seen, Isa::at_most(level));
                let d = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(d < 2e-5, "case {ci} {level:?}: max |diff| {d}");
            }
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one image block, on purpose
    fn hidden_tiles_are_told_apart_from_visible_ones() {
        let causal = Visible { ring: vec![], first: 0, window: None, blocks: &[] };
        assert_eq!(causal.view((100, 163), (0, 63)), View::All);
        assert_eq!(causal.view((100, 163), (64, 127)), View::Some);
        assert_eq!(causal.view((100, 163), (164, 227)), View::None);
        let windowed = Visible { ring: vec![], first: 0, window: Some(50), blocks: &[] };
        assert_eq!(windowed.view((100, 163), (0, 49)), View::None);
        assert_eq!(windowed.view((100, 163), (40, 99)), View::Some);
        let image = [170..300];
        let with_image = Visible { ring: vec![], first: 0, window: None, blocks: &image };
        assert_eq!(with_image.view((100, 180), (190, 250)), View::Some);
        assert_eq!(with_image.view((100, 160), (190, 250)), View::None);
        // Inside the image every token sees every other, later ones included.
        assert_eq!(with_image.view((170, 200), (190, 299)), View::All);
        assert_eq!(with_image.view((170, 200), (190, 300)), View::Some);
    }
}
