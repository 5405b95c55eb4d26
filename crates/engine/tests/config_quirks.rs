//! Gemma 3 hyper-parameters from GGUF metadata, and the corrections early GGUFs need: a missing
//! RoPE scaling factor on 4B/12B/27B, a bogus final soft-cap on 1B, 27B's query scale.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use engine::config::{Config, ModelSize};
use engine::kv_cache::KvDType;

/// Metadata of a Gemma 3 size, as early GGUFs carried it (no rope scaling key).
fn metadata(layers: u32, hidden: u32, heads: u32, kv: u32, head_dim: u32, extra: &[(&str, Value)]) -> Content {
    let mut m: HashMap<String, Value> = HashMap::new();
    m.insert("general.architecture".into(), Value::String("gemma3".into()));
    for (k, v) in [
        ("gemma3.block_count", layers),
        ("gemma3.embedding_length", hidden),
        ("gemma3.attention.head_count", heads),
        ("gemma3.attention.head_count_kv", kv),
        ("gemma3.attention.key_length", head_dim),
        ("gemma3.attention.value_length", head_dim),
        ("gemma3.feed_forward_length", hidden * 4),
    ] {
        m.insert(k.into(), Value::U32(v));
    }
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    Content { magic: VersionedMagic::GgufV3, metadata: m, tensor_infos: HashMap::new(), tensor_data_offset: 0 }
}

#[test]
fn defaults_for_270m_follow_gemma3() {
    let c = Config::from_metadata(&metadata(18, 640, 4, 1, 256, &[]), 262144).unwrap();
    assert_eq!(c.size, ModelSize::M270);
    assert_eq!(c.sliding_window, 512);
    // Layer i is global when (i + 1) % 6 == 0: layers 5, 11, 17.
    let globals: Vec<usize> = c.is_global.iter().enumerate().filter(|(_, g)| **g).map(|(i, _)| i).collect();
    assert_eq!(globals, vec![5, 11, 17]);
    assert_eq!((c.rope_local_base, c.rope_global_base, c.rope_global_scale), (10_000.0, 1_000_000.0, 1.0));
    assert!((c.attn_scale - 1.0 / 16.0).abs() < 1e-12, "1/sqrt(256)");
    assert!(c.corrections.is_empty());
}

#[test]
fn missing_rope_scaling_is_8_on_4b_12b_27b() {
    for (layers, hidden, heads, kv) in [(34, 2560, 8, 4), (48, 3840, 16, 8), (62, 5376, 32, 16)] {
        let hd = if layers == 62 { 128 } else { 256 };
        let c = Config::from_metadata(&metadata(layers, hidden, heads, kv, hd, &[]), 262144).unwrap();
        assert_eq!(c.rope_global_scale, 8.0, "{layers} layers");
        assert_eq!(c.sliding_window, 1024);
        assert!(c.corrections.iter().any(|s| s.contains("rope.scaling.factor")), "{:?}", c.corrections);
    }
    // A GGUF that states the factor is taken at its word.
    let c = Config::from_metadata(
        &metadata(34, 2560, 8, 4, 256, &[("gemma3.rope.scaling.factor", Value::F32(4.0))]),
        262144,
    )
    .unwrap();
    assert_eq!(c.rope_global_scale, 4.0);
    assert!(c.corrections.is_empty());
}

#[test]
fn bogus_final_softcap_on_1b_is_dropped() {
    let md = metadata(26, 1152, 4, 1, 256, &[("gemma3.final_logit_softcapping", Value::F32(30.0))]);
    let c = Config::from_metadata(&md, 262144).unwrap();
    assert_eq!(c.size, ModelSize::B1);
    assert_eq!(c.final_logit_softcap, None);
    assert_eq!(c.rope_global_scale, 1.0, "1B has no RoPE scaling");
    assert!(c.corrections.iter().any(|s| s.contains("final_logit_softcapping")));
}

#[test]
fn query_scale_of_27b_is_one_over_sqrt_168() {
    let c = Config::from_metadata(&metadata(62, 5376, 32, 16, 128, &[]), 262144).unwrap();
    assert!((c.attn_scale - 1.0 / 168f64.sqrt()).abs() < 1e-12, "{}", c.attn_scale);
    let c = Config::from_metadata(&metadata(48, 3840, 16, 8, 256, &[]), 262144).unwrap();
    assert!((c.attn_scale - 1.0 / 16.0).abs() < 1e-12, "12B uses head_dim 256");
}

#[test]
fn kv_bytes_follow_the_sliding_window_formula() {
    // 27B at 64K context, f32 (twice the fp16 figure llama.cpp publishes: 6 368 MiB with the
    // sliding window, whose local part llama.cpp pads to window + ubatch; ours is exactly window).
    let c = Config::from_metadata(&metadata(62, 5376, 32, 16, 128, &[]), 262144).unwrap();
    let per = 2 * 16 * 128 * 4;
    assert_eq!((c.n_global(), c.n_local()), (10, 52));
    assert_eq!(c.kv_bytes(65536, KvDType::F32), per * (10 * 65536 + 52 * 1024));
    // f16 (the default): half of it.
    assert_eq!(c.kv_bytes(65536, KvDType::F16), per / 2 * (10 * 65536 + 52 * 1024));
}
