//! Sampler: greedy, seeds, top-k / top-p / min-p candidate sets, repeat penalty, bad settings.

use engine::sampler::{Sampler, SamplingParams};
use engine::EngineError;
use std::collections::HashMap;

const VOCAB: usize = 262_144;

/// Statistical tests draw thousands of times; a smaller vocabulary (still past the sampler's
/// small-set shortcut of 1024) keeps them quick. Greedy tests use the full size.
const SMALL_VOCAB: usize = 4096;

/// A logit vector with a few chosen entries and the rest far below them.
fn logits_with(entries: &[(usize, f32)]) -> Vec<f32> {
    let size = if entries.iter().any(|&(i, _)| i >= SMALL_VOCAB) { VOCAB } else { SMALL_VOCAB };
    let mut l = vec![-30.0f32; size];
    for &(i, v) in entries {
        l[i] = v;
    }
    l
}

/// Counts of ids drawn over `n` calls of one sampler.
fn histogram(params: SamplingParams, logits: &[f32], n: usize) -> HashMap<u32, usize> {
    let mut s = Sampler::new(params);
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(s.sample(logits, &[])).or_insert(0) += 1;
    }
    counts
}

fn sampling(temperature: f32, top_k: usize, top_p: f32, min_p: f32, seed: u64) -> SamplingParams {
    SamplingParams { temperature, top_k, top_p, min_p, repeat_penalty: 1.0, repeat_last_n: 64, seed }
}

#[test]
fn greedy_is_argmax_with_ties_to_lowest_id() {
    let logits = logits_with(&[(10, 2.0), (200_000, 5.0), (7, 4.0)]);
    let mut s = Sampler::new(SamplingParams::greedy());
    assert_eq!(s.sample(&logits, &[]), 200_000);

    let tie = logits_with(&[(300, 5.0), (100, 5.0), (200, 5.0)]);
    assert_eq!(s.sample(&tie, &[]), 100);

    // temperature 0 with every other filter on is still greedy
    let mut s = Sampler::new(sampling(0.0, 64, 0.9, 0.1, 3));
    assert_eq!(s.sample(&logits, &[]), 200_000);
}

#[test]
fn nan_logits_never_win() {
    let mut logits = logits_with(&[(5, 1.0)]);
    logits[3] = f32::NAN;
    assert_eq!(Sampler::new(SamplingParams::greedy()).sample(&logits, &[]), 5);
    let counts = histogram(sampling(1.0, 0, 1.0, 0.0, 9), &logits, 200);
    assert!(!counts.contains_key(&3), "{counts:?}");
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    // A flat distribution over 1000 ids: sequences only agree if the draws do.
    let logits: Vec<f32> = (0..VOCAB).map(|i| if i < 1000 { 0.0 } else { -50.0 }).collect();
    let run = |seed| {
        let mut s = Sampler::new(sampling(1.0, 0, 1.0, 0.0, seed));
        (0..32).map(|_| s.sample(&logits, &[])).collect::<Vec<u32>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
    assert!(run(42).iter().all(|&id| id < 1000));
}

#[test]
fn top_k_one_is_greedy() {
    let logits: Vec<f32> = (0..VOCAB).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
    let greedy = Sampler::new(SamplingParams::greedy()).sample(&logits, &[]);
    let mut s = Sampler::new(sampling(1.5, 1, 1.0, 0.0, 11));
    for _ in 0..50 {
        assert_eq!(s.sample(&logits, &[]), greedy);
    }
}

#[test]
fn top_k_limits_the_candidates_to_the_k_best() {
    // ids 0..10 with logits 0.9, 0.8, ... : top-3 may only give 0, 1 or 2, and each of them.
    let entries: Vec<(usize, f32)> = (0..10).map(|i| (i, 1.0 - i as f32 * 0.1)).collect();
    let logits = logits_with(&entries);
    let counts = histogram(sampling(1.0, 3, 1.0, 0.0, 5), &logits, 3000);
    let mut ids: Vec<u32> = counts.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2], "{counts:?}");
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    // probabilities ~ 0.5, 0.3, 0.15, 0.05 (the rest ~0): top_p 0.7 keeps {0, 1}, 0.85 keeps {0, 1, 2}.
    let logits = logits_with(&[(100, 0.5f32.ln()), (200, 0.3f32.ln()), (300, 0.15f32.ln()), (400, 0.05f32.ln())]);
    let counts = histogram(sampling(1.0, 0, 0.7, 0.0, 1), &logits, 4000);
    let mut ids: Vec<u32> = counts.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, vec![100, 200], "{counts:?}");
    // Renormalised over the kept set: 0.5 / 0.8 = 62.5% for id 100.
    let share = counts[&100] as f64 / 4000.0;
    assert!((share - 0.625).abs() < 0.04, "share of id 100: {share}");

    let counts = histogram(sampling(1.0, 0, 0.85, 0.0, 2), &logits, 4000);
    let mut ids: Vec<u32> = counts.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, vec![100, 200, 300], "{counts:?}");
}

#[test]
fn top_p_over_a_wide_distribution_cuts_the_tail() {
    // 5000 equally likely ids and a long tail of 250k ids much less likely: top_p 0.5 must keep
    // only (about half of) the 5000, which needs more than one partial-sort window.
    let logits: Vec<f32> = (0..VOCAB).map(|i| if i < 5000 { 0.0 } else { -20.0 }).collect();
    let counts = histogram(sampling(1.0, 0, 0.5, 0.0, 8), &logits, 2000);
    assert!(counts.keys().all(|&id| id < 5000), "tail id drawn: {counts:?}");
    // Ties are ordered by id, so the kept half is the lower ids.
    assert!(counts.keys().all(|&id| id < 2600), "{counts:?}");
    assert!(counts.len() > 500, "only {} distinct ids", counts.len());
}

#[test]
fn top_p_nucleus_equals_the_sorted_reference_on_a_smooth_distribution() {
    // logit_i = -0.001 i over the whole vocabulary, ids shuffled so the order of the input says
    // nothing. The nucleus for p = 0.5 is computed here by brute force (full sort).
    let n = VOCAB as u64;
    let shuffle = |i: u64| ((i * 48_271) % n) as usize; // 48271 is coprime with 2^18
    let mut logits = vec![0f32; VOCAB];
    for rank in 0..n {
        logits[shuffle(rank)] = -0.001 * rank as f32;
    }
    let mut order: Vec<usize> = (0..VOCAB).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let weights: Vec<f64> = order.iter().map(|&i| (logits[i] as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let nucleus_len = weights
        .iter()
        .position(|w| {
            acc += w;
            acc >= 0.5 * total
        })
        .unwrap()
        + 1;
    let nucleus: std::collections::HashSet<u32> = order[..nucleus_len].iter().map(|&i| i as u32).collect();

    let counts = histogram(sampling(1.0, 0, 0.5, 0.0, 12), &logits, 1500);
    assert!(counts.keys().all(|id| nucleus.contains(id)), "drew outside the nucleus");
    // The draws reach the nucleus' far edge: the cut is not tighter than it should be.
    let rank_of = |id: u32| order.iter().position(|&i| i as u32 == id).unwrap();
    let deepest = counts.keys().map(|&id| rank_of(id)).max().unwrap();
    assert!(deepest * 100 >= nucleus_len * 95, "deepest rank {deepest} of {nucleus_len}");
}

#[test]
fn min_p_drops_tokens_below_a_fraction_of_the_best() {
    // probabilities relative to the best: 1, 0.5, 0.2, 0.05. min_p 0.1 keeps the first three.
    let logits = logits_with(&[(1, 0.0), (2, 0.5f32.ln()), (3, 0.2f32.ln()), (4, 0.05f32.ln())]);
    let counts = histogram(sampling(1.0, 0, 1.0, 0.1, 4), &logits, 4000);
    let mut ids: Vec<u32> = counts.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3], "{counts:?}");
    // Without min-p the 0.05 one and the tail do show up.
    let counts = histogram(sampling(1.0, 0, 1.0, 0.0, 4), &logits, 4000);
    assert!(counts.contains_key(&4), "{counts:?}");
}

#[test]
fn temperature_sharpens_and_flattens() {
    let logits = logits_with(&[(1, 1.0), (2, 0.0)]);
    let share = |t: f32| {
        let counts = histogram(sampling(t, 2, 1.0, 0.0, 6), &logits, 4000);
        counts.get(&1).copied().unwrap_or(0) as f64 / 4000.0
    };
    // softmax([1, 0] / t)[0]: t=0.25 -> 0.982, t=1 -> 0.731, t=4 -> 0.562
    assert!((share(0.25) - 0.982).abs() < 0.02);
    assert!((share(1.0) - 0.731).abs() < 0.03);
    assert!((share(4.0) - 0.562).abs() < 0.03);
}

#[test]
fn repeat_penalty_changes_the_choice() {
    let logits = logits_with(&[(10, 2.0), (20, 1.8), (30, -1.0)]);
    let penalised = SamplingParams { repeat_penalty: 1.5, repeat_last_n: 4, ..SamplingParams::greedy() };
    let mut s = Sampler::new(penalised.clone());
    assert_eq!(s.sample(&logits, &[]), 10);
    // 10 was said recently: 2.0 / 1.5 = 1.33 < 1.8
    assert_eq!(s.sample(&logits, &[5, 10]), 20);
    // ...but only the last 4 tokens count
    assert_eq!(s.sample(&logits, &[10, 1, 2, 3, 4]), 10);
    // A repeated id is penalised once, not once per occurrence: 2.0 / 1.5 still beats 1.3.
    let close = logits_with(&[(10, 2.0), (20, 1.3)]);
    assert_eq!(s.sample(&close, &[10, 10, 10]), 10);

    // Negative logits are multiplied: -0.5 * 3 = -1.5 falls below -1.0
    let negative = logits_with(&[(1, -0.5), (2, -1.0)]);
    let mut s = Sampler::new(SamplingParams { repeat_penalty: 3.0, ..penalised });
    assert_eq!(s.sample(&negative, &[]), 1);
    assert_eq!(s.sample(&negative, &[1]), 2);
}

#[test]
fn default_is_gemmas_recommendation() {
    let p = SamplingParams::default();
    assert_eq!((p.temperature, p.top_k, p.top_p, p.min_p), (1.0, 64, 0.95, 0.0));
    assert_eq!(p.repeat_penalty, 1.0);
    assert!(p.validate().is_ok());
    assert!(SamplingParams::greedy().validate().is_ok());
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let cases = [
        (SamplingParams { temperature: -0.5, ..Default::default() }, "temperature"),
        (SamplingParams { temperature: f32::NAN, ..Default::default() }, "temperature"),
        (SamplingParams { top_p: 0.0, ..Default::default() }, "top_p"),
        (SamplingParams { top_p: 1.5, ..Default::default() }, "top_p"),
        (SamplingParams { min_p: -0.1, ..Default::default() }, "min_p"),
        (SamplingParams { min_p: 2.0, ..Default::default() }, "min_p"),
        (SamplingParams { repeat_penalty: 0.0, ..Default::default() }, "repeat_penalty"),
        (SamplingParams { repeat_penalty: f32::INFINITY, ..Default::default() }, "repeat_penalty"),
    ];
    for (params, name) in cases {
        match params.validate() {
            Err(EngineError::InvalidArgument(msg)) => assert!(msg.contains(name), "{msg}"),
            other => panic!("{params:?}: expected InvalidArgument naming {name}, got {other:?}"),
        }
    }
}

#[test]
fn params_round_trip_through_json() {
    let p = SamplingParams { seed: 77, top_k: 40, ..Default::default() };
    let json = serde_json::to_string(&p).unwrap();
    let back: SamplingParams = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}
