//! The sliding-window ring buffer and chunked prefill give the same logits as one full-prompt
//! forward, as one-token-at-a-time decoding, and as a plain reference implementation (every
//! key kept, explicit window mask) written here, on a small random Gemma 3 GGUF.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor, D};
use common::tiny::Tiny;
use engine::model::{Logits, Model};

const N: usize = 40; // five times the window of 8: many window boundaries

fn prompt(vocab: usize) -> Vec<u32> {
    common::tiny::random(N, 99, 1.0).iter().map(|x| ((x.abs() * 7919.0) as usize % vocab) as u32).collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn load(tiny: &Tiny) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny.write(&path);
    let model = Model::load(&path, &Device::Cpu).unwrap();
    (dir, model)
}

fn full(model: &Model, ids: &[u32]) -> Tensor {
    let mut cache = model.new_cache(64).unwrap();
    model.forward(ids, &mut cache, Logits::All).unwrap().unwrap()
}

fn chunked(model: &Model, ids: &[u32], sizes: &[usize]) -> Tensor {
    let mut cache = model.new_cache(64).unwrap();
    let mut rows = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < ids.len() {
        let n = sizes[k % sizes.len()].min(ids.len() - at);
        rows.push(model.forward(&ids[at..at + n], &mut cache, Logits::All).unwrap().unwrap());
        at += n;
        k += 1;
    }
    Tensor::cat(&rows, 0).unwrap()
}

#[test]
fn full_chunked_and_stepwise_logits_agree() {
    let tiny = Tiny::default();
    let (_dir, model) = load(&tiny);
    let ids = prompt(tiny.vocab);
    let reference = full(&model, &ids);
    // Chunks that start before, on and after window boundaries, including ones longer than the
    // window (their early queries need keys the chunk's own tail overwrites in the ring).
    for sizes in [vec![1], vec![3], vec![5, 8], vec![7, 13, 2], vec![9], vec![17, 23]] {
        let got = chunked(&model, &ids, &sizes);
        let d = max_abs_diff(&got, &reference);
        assert!(d < 1e-4, "chunks {sizes:?}: max |diff| {d}");
    }
}

#[test]
fn matches_plain_reference_attention() {
    let tiny = Tiny::default();
    let (_dir, model) = load(&tiny);
    let ids = prompt(tiny.vocab);
    let ours = full(&model, &ids);
    let reference = reference_forward(&tiny, &ids);
    let d = max_abs_diff(&ours, &reference);
    assert!(d < 1e-3, "max |diff| vs reference {d}");
    // And the reference really depends on the window: without it the logits differ.
    let unwindowed = reference_forward(&Tiny { window: 1 << 20, ..tiny.clone() }, &ids);
    assert!(max_abs_diff(&unwindowed, &reference) > 1e-3, "window had no effect: test is blind");
}

#[test]
fn kv_cache_size_follows_the_sliding_window() {
    let tiny = Tiny::default();
    let (_dir, model) = load(&tiny);
    let cache = model.new_cache(1000).unwrap();
    // One global layer of 1000 positions, five local layers of 8, f32 K and V.
    let per = 2 * tiny.kv_heads * tiny.head_dim * 4;
    assert_eq!(cache.bytes(), per * (1000 + 5 * 8));
    assert_eq!(cache.bytes(), model.config().kv_bytes(1000));
}

/// Gemma 3 written out plainly: full key/value history, explicit causal + window mask,
/// RoPE by rotating halves, everything in f32 from the (F32) weights in the file.
fn reference_forward(tiny: &Tiny, ids: &[u32]) -> Tensor {
    let w: std::collections::HashMap<String, Tensor> = tiny.tensors().into_iter().collect();
    let (n, h, kvh, hd, hid) = (ids.len(), tiny.heads, tiny.kv_heads, tiny.head_dim, tiny.hidden);
    let eps = 1e-6;
    let rms = |x: &Tensor, w: &Tensor| -> Tensor {
        let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        x.broadcast_div(&(ms + eps).unwrap().sqrt().unwrap()).unwrap().broadcast_mul(w).unwrap()
    };
    let lin = |x: &Tensor, name: &str| x.matmul(&w[name].t().unwrap()).unwrap();
    let rope = |x: &Tensor, base: f64| -> Tensor {
        // x: [n, heads, hd]
        let half = hd / 2;
        let mut cos = vec![0f32; n * half];
        let mut sin = vec![0f32; n * half];
        for p in 0..n {
            for i in 0..half {
                let a = p as f64 * base.powf(-2.0 * i as f64 / hd as f64);
                cos[p * half + i] = a.cos() as f32;
                sin[p * half + i] = a.sin() as f32;
            }
        }
        let cos = Tensor::from_vec(cos, (n, 1, half), &Device::Cpu).unwrap();
        let sin = Tensor::from_vec(sin, (n, 1, half), &Device::Cpu).unwrap();
        let x1 = x.narrow(2, 0, half).unwrap();
        let x2 = x.narrow(2, half, half).unwrap();
        let r1 = (x1.broadcast_mul(&cos).unwrap() - x2.broadcast_mul(&sin).unwrap()).unwrap();
        let r2 = (x2.broadcast_mul(&cos).unwrap() + x1.broadcast_mul(&sin).unwrap()).unwrap();
        Tensor::cat(&[r1, r2], 2).unwrap()
    };
    let emb = &w["token_embd.weight"];
    let idx = Tensor::new(ids, &Device::Cpu).unwrap();
    let mut x = (emb.index_select(&idx, 0).unwrap() * (hid as f64).sqrt()).unwrap();
    for l in 0..tiny.layers {
        let g = |s: &str| format!("blk.{l}.{s}.weight");
        let global = (l + 1) % 6 == 0;
        let base = if global { 1_000_000.0 } else { 10_000.0 };
        let a = rms(&x, &w[&g("attn_norm")]);
        let q = rms(&lin(&a, &g("attn_q")).reshape((n, h, hd)).unwrap(), &w[&g("attn_q_norm")]);
        let k = rms(&lin(&a, &g("attn_k")).reshape((n, kvh, hd)).unwrap(), &w[&g("attn_k_norm")]);
        let v = lin(&a, &g("attn_v")).reshape((n, kvh, hd)).unwrap();
        let q = rope(&q, base);
        let k = rope(&k, base);
        let mut heads = Vec::new();
        for head in 0..h {
            let kv = head / (h / kvh);
            let qh = q.i((.., head, ..)).unwrap().contiguous().unwrap();
            let kh = k.i((.., kv, ..)).unwrap().contiguous().unwrap();
            let vh = v.i((.., kv, ..)).unwrap().contiguous().unwrap();
            let s = (qh.matmul(&kh.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
            let mut mask = vec![0f32; n * n];
            for i in 0..n {
                for j in 0..n {
                    let visible = j <= i && (global || i - j < tiny.window);
                    if !visible {
                        mask[i * n + j] = f32::NEG_INFINITY;
                    }
                }
            }
            let s = (s + Tensor::from_vec(mask, (n, n), &Device::Cpu).unwrap()).unwrap();
            let m = s.max_keepdim(D::Minus1).unwrap();
            let e = s.broadcast_sub(&m).unwrap().exp().unwrap();
            let p = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
            heads.push(p.matmul(&vh).unwrap());
        }
        let att = Tensor::cat(&heads, 1).unwrap();
        let o = lin(&att, &g("attn_output"));
        x = (x + rms(&o, &w[&g("post_attention_norm")])).unwrap();
        let f = rms(&x, &w[&g("ffn_norm")]);
        let gate = lin(&f, &g("ffn_gate"));
        // tanh-approximated GELU, written out.
        let c = (2.0f64 / std::f64::consts::PI).sqrt();
        let inner = ((&gate + (gate.powf(3.0).unwrap() * 0.044715).unwrap()).unwrap() * c).unwrap();
        let gelu = ((&gate * 0.5).unwrap() * (inner.tanh().unwrap() + 1.0).unwrap()).unwrap();
        let m = lin(&(gelu * lin(&f, &g("ffn_up"))).unwrap(), &g("ffn_down"));
        x = (x + rms(&m, &w[&g("post_ffw_norm")])).unwrap();
    }
    let x = rms(&x, &w["output_norm.weight"]);
    x.matmul(&emb.t().unwrap()).unwrap().to_dtype(DType::F32).unwrap()
}
