//! Writes small but structurally real GGUF files (v3) for tests.

use std::path::Path;

pub enum Meta {
    Str(&'static str),
    U32(u32),
    StrArray(Vec<&'static str>),
}

pub struct Tensor {
    pub name: &'static str,
    pub dims: Vec<u64>,
    /// F32 only: 4 bytes per element.
    pub fill_seed: u32,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF with the given metadata and F32 tensors, data aligned to 32 bytes.
pub fn gguf_bytes(meta: &[(&str, Meta)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        put_str(&mut out, k);
        match v {
            Meta::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            Meta::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Meta::StrArray(items) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for s in items {
                    put_str(&mut out, s);
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for t in tensors {
        put_str(&mut out, t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // F32
        out.extend_from_slice(&offset.to_le_bytes());
        let n = t.dims.iter().product::<u64>() * 4;
        sizes.push(n);
        offset += n.div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    for (t, n) in tensors.iter().zip(sizes) {
        // A cheap deterministic pseudo-random fill, so corrupted bytes really differ.
        let mut x = t.fill_seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let start = out.len();
        while ((out.len() - start) as u64) < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.extend_from_slice(&x.to_le_bytes());
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
    }
    out
}

/// A tiny Gemma 3 text model; `big_elems` adds a filler tensor to make the file larger.
pub fn gemma3(big_elems: u64) -> Vec<u8> {
    let mut tensors = vec![
        Tensor { name: "token_embd.weight", dims: vec![8, 16], fill_seed: 1 },
        Tensor { name: "blk.0.attn_q.weight", dims: vec![8, 8], fill_seed: 2 },
    ];
    if big_elems > 0 {
        tensors.push(Tensor { name: "blk.0.ffn_up.weight", dims: vec![big_elems], fill_seed: 3 });
    }
    gguf_bytes(
        &[
            ("general.architecture", Meta::Str("gemma3")),
            ("general.name", Meta::Str("Test Gemma")),
            ("general.file_type", Meta::U32(0)),
            ("gemma3.context_length", Meta::U32(32768)),
            // The hyper-parameters the engine needs (imports refuse a file without them).
            ("gemma3.embedding_length", Meta::U32(8)),
            ("gemma3.block_count", Meta::U32(1)),
            ("gemma3.attention.head_count", Meta::U32(2)),
            ("gemma3.attention.head_count_kv", Meta::U32(1)),
            ("gemma3.attention.key_length", Meta::U32(4)),
            ("gemma3.feed_forward_length", Meta::U32(16)),
            ("tokenizer.ggml.tokens", Meta::StrArray(vec!["<pad>", "<eos>", "a"])),
        ],
        &tensors,
    )
}

pub fn llama() -> Vec<u8> {
    gguf_bytes(
        &[("general.architecture", Meta::Str("llama")), ("general.name", Meta::Str("Some Llama"))],
        &[
            Tensor { name: "token_embd.weight", dims: vec![8, 16], fill_seed: 1 },
            Tensor { name: "blk.0.attn_q.weight", dims: vec![8, 8], fill_seed: 2 },
        ],
    )
}

pub fn mmproj() -> Vec<u8> {
    gguf_bytes(
        &[("general.architecture", Meta::Str("clip")), ("clip.projector_type", Meta::Str("gemma3"))],
        &[Tensor { name: "v.patch_embd.weight", dims: vec![14, 14], fill_seed: 9 }],
    )
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write test GGUF");
}
