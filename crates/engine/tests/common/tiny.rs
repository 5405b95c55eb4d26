//! Small random Gemma 3 GGUFs written by the tests themselves.
#![allow(dead_code)]

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

#[derive(Clone, Debug)]
pub struct Tiny {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub window: usize,
    pub arch: &'static str,
    pub dtype: GgmlDType,
}

impl Default for Tiny {
    fn default() -> Self {
        // Two kv heads for four query heads exercises grouped-query attention; six layers give
        // five local and one global layer, as in Gemma 3.
        Self {
            vocab: 320,
            hidden: 64,
            layers: 6,
            heads: 4,
            kv_heads: 2,
            head_dim: 32,
            ffn: 128,
            window: 8,
            arch: "gemma3",
            dtype: GgmlDType::F32,
        }
    }
}

/// Deterministic pseudo-random numbers in [-scale, scale).
pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

impl Tiny {
    /// All tensors with their candle shapes, random but reproducible.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let (h, kvh, hd, hid, ffn) = (self.heads, self.kv_heads, self.head_dim, self.hidden, self.ffn);
        let mut out = Vec::new();
        let mut seed = 1u64;
        let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
            seed += 1;
            let n: usize = shape.iter().product();
            let data: Vec<f32> = random(n, seed, scale).into_iter().map(|x| x + offset).collect();
            out.push((name, Tensor::from_vec(data, shape, &Device::Cpu).unwrap()));
        };
        add("token_embd.weight".into(), vec![self.vocab, hid], 0.5, 0.0);
        add("output_norm.weight".into(), vec![hid], 0.2, 1.0);
        for i in 0..self.layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            // Norm weights sit around 1 (GGUF stores Gemma's 1 + w already added).
            add(n("attn_norm"), vec![hid], 0.2, 1.0);
            add(n("attn_q"), vec![h * hd, hid], 0.3, 0.0);
            add(n("attn_k"), vec![kvh * hd, hid], 0.3, 0.0);
            add(n("attn_v"), vec![kvh * hd, hid], 0.3, 0.0);
            add(n("attn_output"), vec![hid, h * hd], 0.2, 0.0);
            add(n("attn_q_norm"), vec![hd], 0.2, 1.0);
            add(n("attn_k_norm"), vec![hd], 0.2, 1.0);
            add(n("post_attention_norm"), vec![hid], 0.2, 1.0);
            add(n("ffn_norm"), vec![hid], 0.2, 1.0);
            add(n("ffn_gate"), vec![ffn, hid], 0.3, 0.0);
            add(n("ffn_up"), vec![ffn, hid], 0.3, 0.0);
            add(n("ffn_down"), vec![hid, ffn], 0.2, 0.0);
            add(n("post_ffw_norm"), vec![hid], 0.2, 1.0);
        }
        out
    }

    pub fn metadata(&self) -> Vec<(String, Value)> {
        let a = self.arch;
        let mut md = vec![
            ("general.architecture".to_string(), Value::String(a.into())),
            (format!("{a}.embedding_length"), Value::U32(self.hidden as u32)),
            (format!("{a}.block_count"), Value::U32(self.layers as u32)),
            (format!("{a}.attention.head_count"), Value::U32(self.heads as u32)),
            (format!("{a}.attention.head_count_kv"), Value::U32(self.kv_heads as u32)),
            (format!("{a}.attention.key_length"), Value::U32(self.head_dim as u32)),
            (format!("{a}.attention.value_length"), Value::U32(self.head_dim as u32)),
            (format!("{a}.feed_forward_length"), Value::U32(self.ffn as u32)),
            (format!("{a}.attention.sliding_window"), Value::U32(self.window as u32)),
            (format!("{a}.context_length"), Value::U32(1024)),
            (format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
            (format!("{a}.rope.freq_base"), Value::F32(1_000_000.0)),
        ];
        // A minimal vocabulary so the file also loads as a full engine (tokenizer included).
        let tokens: Vec<Value> = (0..self.vocab)
            .map(|i| {
                Value::String(match i {
                    0 => "<pad>".into(),
                    1 => "<eos>".into(),
                    2 => "<bos>".into(),
                    3 => "<unk>".into(),
                    4 => "<start_of_turn>".into(),
                    5 => "<end_of_turn>".into(),
                    6..=261 => format!("<0x{:02X}>", i - 6),
                    _ => format!("tok{i}"),
                })
            })
            .collect();
        let types: Vec<Value> = (0..self.vocab)
            .map(|i| {
                Value::I32(match i {
                    0..=2 | 4 | 5 => 3,
                    3 => 2,
                    6..=261 => 6,
                    _ => 1,
                })
            })
            .collect();
        let scores: Vec<Value> = (0..self.vocab).map(|i| Value::F32(-(i as f32))).collect();
        md.extend([
            ("tokenizer.ggml.model".to_string(), Value::String("llama".into())),
            ("tokenizer.ggml.tokens".to_string(), Value::Array(tokens)),
            ("tokenizer.ggml.scores".to_string(), Value::Array(scores)),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
            ("tokenizer.ggml.bos_token_id".to_string(), Value::U32(2)),
            ("tokenizer.ggml.eos_token_id".to_string(), Value::U32(1)),
            ("tokenizer.ggml.unknown_token_id".to_string(), Value::U32(3)),
            ("tokenizer.ggml.padding_token_id".to_string(), Value::U32(0)),
        ]);
        md
    }

    /// Writes the GGUF; `edit` may change tensors (name, tensor) before writing.
    pub fn write_with(&self, path: &Path, edit: impl Fn(&mut Vec<(String, Tensor)>)) {
        let mut tensors = self.tensors();
        edit(&mut tensors);
        let q: Vec<(String, QTensor)> = tensors
            .iter()
            .map(|(n, t)| {
                let dtype = if t.rank() == 1 { GgmlDType::F32 } else { self.dtype };
                (n.clone(), QTensor::quantize(t, dtype).unwrap())
            })
            .collect();
        let md = self.metadata();
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut f = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    }

    pub fn write(&self, path: &Path) {
        self.write_with(path, |_| {})
    }
}
