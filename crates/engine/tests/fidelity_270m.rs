//! Fidelity against llama.cpp on the real Gemma 3 270M model (tests/fixtures/llama-270m.json).

mod common;

use engine::kv_cache::KvDType;
use engine::model::{Logits, Model};
use engine::session::top_k_probs;

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy decoding from llama.cpp's prompt ids reproduces its first `stable_prefix` tokens,
/// including the long case that runs far past the 512-token sliding window (default f16 cache).
#[test]
fn greedy_matches_llama_cpp_stable_prefix() {
    let model = Model::load(&common::test_model(), &common::device()).unwrap();
    let refs = common::refs();
    for (name, case) in refs["cases"].as_object().unwrap() {
        let prompt = common::ids(&case["prompt_ids"]);
        let want = common::ids(&case["greedy_ids"]);
        let stable = case["stable_prefix"].as_u64().unwrap() as usize;
        let mut cache = model.new_cache(4096).unwrap();
        let mut logits = None;
        for chunk in prompt.chunks(512) {
            logits = model.forward(chunk, &mut cache, Logits::Last).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..stable {
            let row: Vec<f32> = logits.unwrap().squeeze(0).unwrap().to_vec1().unwrap();
            let next = argmax(&row);
            got.push(next);
            logits = model.forward(&[next], &mut cache, Logits::Last).unwrap();
        }
        assert_eq!(got, want[..stable], "case {name}: greedy ids differ from llama.cpp");
    }
}

/// Teacher-forced probabilities agree with llama.cpp: same top-1 wherever llama.cpp's top-1
/// leads by >= 0.1, and mean |p - p_llama| for its top-1 under 0.03.
#[test]
fn scores_match_llama_cpp() {
    let model = Model::load(&common::test_model(), &common::device()).unwrap();
    // The default cache (f16), then f32.
    let mean = mean_dp(&model, None);
    assert!(mean < 0.03, "mean |p - p_llama| = {mean}");
    let mean32 = mean_dp(&model, Some(KvDType::F32));
    assert!(mean32 < 0.03, "f32 cache: mean |p - p_llama| = {mean32}");
    // llama.cpp's reference ran with an f16 cache: ours in f16 must not agree worse than in f32
    // (beyond a margin for our own rounding, a tenth of the measured f32 figure).
    assert!(mean <= mean32 * 1.1, "f16 cache agrees worse with llama.cpp: {mean} vs f32 {mean32}");
}

/// Mean |p - p_llama| of llama.cpp's top-1 over every scored position, asserting the top-1
/// rule on the way; `kv` None is the default cache type.
fn mean_dp(model: &Model, kv: Option<KvDType>) -> f64 {
    let refs = common::refs();
    let mut diffs = Vec::new();
    for (name, case) in refs["cases"].as_object().unwrap() {
        let prompt = common::ids(&case["prompt_ids"]);
        let greedy = common::ids(&case["greedy_ids"]);
        let top5 = case["top5_default"].as_array().unwrap();
        let mut cache = match kv {
            None => model.new_cache(4096).unwrap(),
            Some(kv) => model.new_cache_with(4096, kv).unwrap(),
        };
        let all: Vec<u32> = prompt.iter().chain(&greedy).copied().collect();
        // Position i of top5 is after reading prompt + greedy[..i].
        let mut rows = Vec::new();
        let mut fed = 0;
        for chunk in all[..prompt.len() + top5.len() - 1].chunks(64) {
            let l = model.forward(chunk, &mut cache, Logits::All).unwrap().unwrap();
            fed += chunk.len();
            if fed >= prompt.len() {
                let l = l.to_vec2::<f32>().unwrap();
                let skip = chunk.len().saturating_sub(fed - prompt.len() + 1);
                rows.extend(l.into_iter().skip(skip));
            }
        }
        assert_eq!(rows.len(), top5.len(), "case {name}");
        for (i, (row, want)) in rows.iter().zip(top5).enumerate() {
            let want = want.as_array().unwrap();
            let id1 = want[0][0].as_u64().unwrap() as u32;
            let p1 = want[0][1].as_f64().unwrap();
            let p2 = want[1][1].as_f64().unwrap();
            let ours = top_k_probs(row, 262144);
            let our_p = ours.iter().find(|(id, _)| *id == id1).map_or(0.0, |x| x.1 as f64);
            if p1 - p2 >= 0.1 {
                assert_eq!(ours[0].0, id1, "case {name} position {i}: top-1 differs (llama.cpp {p1:.3} vs {p2:.3})");
            }
            diffs.push((our_p - p1).abs());
        }
    }
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let kv = kv.map_or("default".to_string(), |k| k.to_string());
    eprintln!("{kv} KV cache: mean |dp| over {} positions: {mean:.5}", diffs.len());
    mean
}
