//! Quantized matmul benchmark: candle 0.11.1's `QMatMul` against `engine::linear::Linear`.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p hearth-engine --example linear_bench [-- MODEL.gguf]
//! ```
//! 1. Synthetic weights of each type: matrix-vector GB/s (weights bytes / time; a matrix larger
//!    than the L3 cache) and GFLOP/s for 512 rows on 2048 x 2560.
//! 2. With a GGUF (default: the test model from `scripts/fetch-test-model`): each distinct
//!    tensor shape/type of the model, then every linear layer of the model run as in one decoded
//!    token (1 row; plus the tied output projection) and one 512-token prompt chunk, with the
//!    resident-memory growth each backend causes.
//!
//! 3. F16 weights (the vision encoder's, from llama.cpp's mmproj files) at SigLIP-So400m's
//!    shapes with 4096 rows (one 896x896 image): GFLOP/s of `Linear` (`BENCH_ONLY_F16=1` runs
//!    only this; `HEARTH_KERNELS=avx2` picks the AVX2 level).
//!
//! Baseline and ours are measured in the same run, alternating, as the machine may be noisy.
//! `BENCH_QUICK=1` shortens everything.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use engine::linear::{kernel_level, Embedding, Linear};

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Seconds per call of `f`: the best of at least 5 calls and `min_secs` seconds (the machine is
/// shared, so the best run is the one least disturbed).
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let min_secs = if quick() { 0.05 } else { 0.25 };
    let mut ts = Vec::new();
    let start = Instant::now();
    // At least 5 calls and `min_secs`, but slow calls (candle's 512-row Q5_0) only twice.
    while (ts.len() < 5 || start.elapsed().as_secs_f64() < min_secs)
        && !(ts.len() >= 2 && start.elapsed().as_secs_f64() > 2.0)
    {
        let t = Instant::now();
        f();
        ts.push(t.elapsed().as_secs_f64());
        if ts.len() >= 2000 {
            break;
        }
    }
    ts.iter().copied().fold(f64::MAX, f64::min)
}

type Forward = Box<dyn Fn(&Tensor) -> Tensor>;

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn randn(m: usize, k: usize, seed: u64) -> Tensor {
    let mut s = seed | 1;
    let v: Vec<f32> = (0..m * k)
        .map(|_| {
            let mut u = 0f32;
            for _ in 0..3 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                u += (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            u
        })
        .collect();
    Tensor::from_vec(v, (m, k), &Device::Cpu).unwrap()
}

/// A `[rows, k]` tensor of type `dt` made by quantizing 256 random rows and repeating them
/// (quantizing hundreds of MB of K-quants would take minutes).
fn big_weight(dt: GgmlDType, rows: usize, k: usize) -> Arc<QTensor> {
    let base = QTensor::quantize(&randn(256, k, 42), dt).unwrap();
    let data = base.data().unwrap();
    let mut bytes = Vec::with_capacity(data.len() * rows / 256);
    while bytes.len() < data.len() * rows / 256 {
        bytes.extend_from_slice(&data);
    }
    let st = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, dt).unwrap();
    Arc::new(QTensor::new(st, (rows, k)).unwrap())
}

fn synthetic() {
    let types = [
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
    ];
    let (mv_rows, k) = (if quick() { 8192 } else { 32768 }, 2560);
    println!("## Synthetic weights");
    println!();
    println!("matvec: [{mv_rows} x {k}] (larger than L3), 1 row; GEMM: [2048 x {k}], 512 rows.");
    println!();
    println!("| type | MB | matvec candle | matvec ours | speed-up | 512 rows candle | 512 rows ours | speed-up |");
    println!("|---|---|---|---|---|---|---|---|");
    let x1 = randn(1, k, 1);
    let x512 = randn(512, k, 2);
    for dt in types {
        let w = big_weight(dt, mv_rows, k);
        let mb = w.storage_size_in_bytes() as f64 / 1e6;
        let ours = Linear::new(w.clone()).unwrap();
        let t_ours = time(|| {
            ours.forward(&x1).unwrap();
        });
        let cand = QMatMul::from_arc(w.clone()).unwrap();
        let t_cand = time(|| {
            cand.forward(&x1).unwrap();
        });
        drop((ours, cand, w));
        let w = big_weight(dt, 2048, k);
        let flop = 2.0 * 512.0 * 2048.0 * k as f64;
        let ours = Linear::new(w.clone()).unwrap();
        let g_ours = time(|| {
            ours.forward(&x512).unwrap();
        });
        let cand = QMatMul::from_arc(w.clone()).unwrap();
        let g_cand = time(|| {
            cand.forward(&x512).unwrap();
        });
        println!(
            "| {dt:?} | {mb:.0} | {:.1} GB/s | {:.1} GB/s | {:.1}x | {:.0} GFLOP/s | {:.0} GFLOP/s | {:.1}x |",
            mb / 1e3 / t_cand,
            mb / 1e3 / t_ours,
            t_cand / t_ours,
            flop / g_cand / 1e9,
            flop / g_ours / 1e9,
            g_cand / g_ours
        );
    }
    println!();
}

fn model(path: &str) {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let content = gguf_file::Content::read(&mut f).unwrap();
    let rss0 = rss_mb();
    let mut names: Vec<&String> = content
        .tensor_infos
        .iter()
        .filter(|(n, i)| i.shape.rank() == 2 && (n.starts_with("blk.") || n.as_str() == "token_embd.weight"))
        .map(|(n, _)| n)
        .collect();
    names.sort();
    let mut tensors = BTreeMap::new();
    for n in &names {
        tensors.insert(n.to_string(), Arc::new(content.tensor(&mut f, n, &Device::Cpu).unwrap()));
    }
    let rss_loaded = rss_mb();
    println!("## Model {path}");
    println!();
    println!("{} matrices loaded: RSS {:.0} MB -> {:.0} MB.", tensors.len(), rss0, rss_loaded);
    println!();

    // Each distinct (type, shape) once.
    println!("| tensor | type | shape [out, in] | matvec candle | matvec ours | 512 rows candle | 512 rows ours |");
    println!("|---|---|---|---|---|---|---|");
    let mut seen = std::collections::HashSet::new();
    for (n, w) in &tensors {
        let key = (format!("{:?}", w.dtype()), w.shape().dims().to_vec());
        if !seen.insert(key) {
            continue;
        }
        let (rows, k) = w.shape().dims2().unwrap();
        let bytes = w.storage_size_in_bytes() as f64;
        let x1 = randn(1, k, 3);
        let x512 = randn(512, k, 4);
        let ours = Linear::new(w.clone()).unwrap();
        let cand = QMatMul::from_arc(w.clone()).unwrap();
        let (a1, b1) = (time(|| drop(cand.forward(&x1).unwrap())), time(|| drop(ours.forward(&x1).unwrap())));
        let flop = 2.0 * 512.0 * rows as f64 * k as f64;
        let (a5, b5) = if rows > 100_000 {
            (f64::NAN, f64::NAN)
        } else {
            (time(|| drop(cand.forward(&x512).unwrap())), time(|| drop(ours.forward(&x512).unwrap())))
        };
        println!(
            "| {n} | {:?} | [{rows}, {k}] | {:.0} us, {:.1} GB/s | {:.0} us, {:.1} GB/s | {:.2} ms, {:.0} GFLOP/s | {:.2} ms, {:.0} GFLOP/s |",
            w.dtype(),
            a1 * 1e6,
            bytes / a1 / 1e9,
            b1 * 1e6,
            bytes / b1 / 1e9,
            a5 * 1e3,
            flop / a5 / 1e9,
            b5 * 1e3,
            flop / b5 / 1e9,
        );
    }
    println!();

    // Whole model: all linear layers as in one decode step and one 512-token prompt chunk.
    let layer_names: Vec<&String> = tensors.keys().filter(|n| n.starts_with("blk.")).collect();
    let embd = tensors.get("token_embd.weight").cloned();
    let total_bytes: usize = tensors.values().map(|w| w.storage_size_in_bytes()).sum();
    let run = |name: &str, mk: &dyn Fn(Arc<QTensor>) -> Forward| {
        let rss_before = rss_mb();
        // Inputs shared by all layers of the same input size.
        let mut inputs: BTreeMap<usize, (Tensor, Tensor)> = BTreeMap::new();
        let layers: Vec<(Forward, usize)> = layer_names
            .iter()
            .map(|n| {
                let w = tensors[n.as_str()].clone();
                let k = w.shape().dims2().unwrap().1;
                inputs.entry(k).or_insert_with(|| (randn(1, k, 5), randn(512, k, 6)));
                (mk(w), k)
            })
            .collect();
        let head = embd.clone().map(|w| {
            let k = w.shape().dims2().unwrap().1;
            (mk(w), randn(1, k, 7))
        });
        let rss_before = rss_before
            + inputs.values().map(|(a, b)| (a.elem_count() + b.elem_count()) as f64 * 4.0 / 1e6).sum::<f64>();
        let decode = time(|| {
            for (l, k) in &layers {
                drop(l(&inputs[k].0));
            }
            if let Some((h, x)) = &head {
                drop(h(x));
            }
        });
        let prompt = time(|| {
            for (l, k) in &layers {
                drop(l(&inputs[k].1));
            }
            if let Some((h, x)) = &head {
                drop(h(x));
            }
        });
        let rss_after = rss_mb();
        println!(
            "| {name} | {:.2} ms ({:.0} tok/s, {:.1} GB/s) | {:.1} ms ({:.0} tok/s) | {:+.0} MB |",
            decode * 1e3,
            1.0 / decode,
            total_bytes as f64 / decode / 1e9,
            prompt * 1e3,
            512.0 / prompt,
            rss_after - rss_before
        );
    };
    println!(
        "All {} linear layers + the tied output projection ({:.0} MB of weights): one decoded token \
         (1 row each) and one 512-token prompt chunk (512 rows each, output projection on 1 row). \
         Linear layers only: attention, norms and sampling come on top.",
        layer_names.len(),
        total_bytes as f64 / 1e6
    );
    println!();
    println!("| backend | decode step | prompt chunk | RSS growth |");
    println!("|---|---|---|---|");
    run("ours", &|w| {
        let l = Linear::new(w).unwrap();
        Box::new(move |x: &Tensor| l.forward(x).unwrap())
    });
    run("candle QMatMul", &|w| {
        let q = QMatMul::from_arc(w).unwrap();
        Box::new(move |x: &Tensor| q.forward(x).unwrap())
    });
    println!();

    // Embedding lookups from the token table.
    if let Some(table) = embd {
        let emb = Embedding::new(table.clone()).unwrap();
        let vocab = emb.vocab() as u32;
        println!("Embedding lookups from token_embd ({:?}):", table.dtype());
        println!();
        println!("| ids | candle QTensor::embedding | ours |");
        println!("|---|---|---|");
        for n in [1usize, 512] {
            let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7919 + 13) % vocab).collect();
            let idt = Tensor::from_slice(&ids, n, &Device::Cpu).unwrap();
            let a = time(|| drop(table.embedding(&idt).unwrap()));
            let b = time(|| drop(emb.lookup(&ids).unwrap()));
            println!("| {n} | {:.1} us | {:.1} us |", a * 1e6, b * 1e6);
        }
        println!();
    }
    println!("RSS at the end: {:.0} MB.", rss_mb());
}

/// F16 matrices at the SigLIP-So400m encoder's shapes, 4096 activation rows (one 896x896 image).
fn f16_encoder() {
    let m = 4096;
    println!("## F16 weights, SigLIP-So400m shapes, {m} rows");
    println!();
    println!("| [out, in] | ms | GFLOP/s |");
    println!("|---|---|---|");
    for (n, k) in [(4304usize, 1152usize), (1152, 4304), (1152, 1152)] {
        let w = Arc::new(QTensor::quantize(&randn(n, k, 8), GgmlDType::F16).unwrap());
        let lin = Linear::new(w).unwrap();
        let x = randn(m, k, 9);
        let t = time(|| drop(lin.forward(&x).unwrap()));
        let flop = 2.0 * (m * n * k) as f64;
        println!("| [{n}, {k}] | {:.1} | {:.0} |", t * 1e3, flop / t / 1e9);
    }
    println!();
}

fn main() {
    println!("# linear_bench: {} rayon threads, kernel level {:?}", rayon::current_num_threads(), kernel_level());
    println!();
    let path = std::env::args().nth(1).or_else(|| {
        let home = std::env::var("HOME").ok()?;
        let p = format!("{home}/.cache/hearth-test/gemma-3-270m-q4_k_m.gguf");
        std::path::Path::new(&p).exists().then_some(p)
    });
    f16_encoder();
    if std::env::var("BENCH_ONLY_F16").is_ok_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    if std::env::var("BENCH_SKIP_SYNTHETIC").is_err() {
        synthetic();
    }
    match path {
        Some(p) => model(&p),
        None => println!("(no model: pass a GGUF path or run scripts/fetch-test-model)"),
    }
}
