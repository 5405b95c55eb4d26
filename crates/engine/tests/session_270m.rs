//! Sessions on the real 270M model: cache reuse across turns, fallback when a prompt diverges,
//! cancel from another thread, stop strings, streamed text.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use engine::model::Logits;
use engine::sampler::SamplingParams;
use engine::session::{Engine, GenerateOptions, LoadOptions, Session, StopReason};

fn engine() -> Arc<Engine> {
    let dir = std::env::temp_dir().join("hearth-test-tokenizers");
    Engine::load(&common::test_model(), &LoadOptions { tokenizer_cache_dir: Some(dir), ..Default::default() }).unwrap()
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), ..Default::default() }
}

/// Quantized-activation kernels for one row and f32 GEMM for many round differently, so the
/// same tokens split into different chunks agree only to about 1e-2 in probability.
const TOLERANCE: f32 = 0.05;

/// Next-token probabilities after feeding `chunks` one forward call each into a fresh cache.
fn probs_after(engine: &Arc<Engine>, chunks: &[&[u32]]) -> Vec<f32> {
    let mut cache = engine.model().new_cache(2048).unwrap();
    let mut logits = None;
    for c in chunks {
        logits = engine.model().forward(c, &mut cache, Logits::Last).unwrap();
    }
    let row: Vec<f32> = logits.unwrap().squeeze(0).unwrap().to_vec1().unwrap();
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|l| (l - max).exp()).sum();
    row.iter().map(|l| (l - max).exp() / sum).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn fresh(engine: &Arc<Engine>, prompt: &[u32], max_tokens: usize) -> Vec<u32> {
    let mut s = Session::new(engine.clone(), 2048).unwrap();
    s.generate(prompt, &greedy(max_tokens), &mut |_| {}).unwrap().ids
}

#[test]
fn follow_up_turn_prefills_only_new_tokens_and_matches_a_fresh_session() {
    let engine = engine();
    let tok = engine.tokenizer();
    let p1 = tok.encode("The three primary colors are", true).unwrap();
    let mut s = Session::new(engine.clone(), 2048).unwrap();
    let r1 = s.generate(&p1, &greedy(8), &mut |_| {}).unwrap();
    assert_eq!(r1.reused_tokens, 0);
    let mut p2 = p1.clone();
    p2.extend(&r1.ids);
    p2.extend(tok.encode(" Another fact:", false).unwrap());
    let r2 = s.generate(&p2, &greedy(8), &mut |_| {}).unwrap();
    let reused = p1.len() + r1.ids.len();
    assert_eq!(r2.reused_tokens, reused, "the first turn's tokens were recomputed");
    assert_eq!(r2.ids[0], fresh(&engine, &p2, 1)[0], "reusing the cache changed the output");
    // The session computed p1 as one chunk, the reply one token at a time, then the new tokens:
    // the same distribution as p2 in one go, up to the kernels' batch-size-dependent rounding
    // (a wrong position or a stale slot would move it by tenths, not hundredths).
    let mut split: Vec<&[u32]> = vec![&p1];
    split.extend(r1.ids.iter().map(std::slice::from_ref));
    split.push(&p2[reused..]);
    let d = max_diff(&probs_after(&engine, &[&p2]), &probs_after(&engine, &split));
    eprintln!("one chunk vs reused turn: max |dp| {d}");
    assert!(d < TOLERANCE, "reusing the cache changed the distribution by {d}");
}

#[test]
fn diverging_prompt_reuses_the_common_prefix_or_starts_over() {
    let engine = engine();
    let tok = engine.tokenizer();
    // Short: the ring buffers never wrapped, so the common prefix is kept.
    let a = tok.encode("Water boils at one hundred degrees when", true).unwrap();
    let b = tok.encode("Water boils at one hundred kelvin? No,", true).unwrap();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    assert!(common > 3);
    let mut s = Session::new(engine.clone(), 2048).unwrap();
    s.generate(&a, &greedy(4), &mut |_| {}).unwrap();
    let r = s.generate(&b, &greedy(6), &mut |_| {}).unwrap();
    assert_eq!(r.reused_tokens, common);
    // Matmul kernels round differently for different batch sizes, so a near-tie a few tokens in
    // may go either way: compare the first token and the next-token distributions instead.
    assert_eq!(r.ids[0], fresh(&engine, &b, 1)[0]);
    let d = max_diff(&probs_after(&engine, &[&b]), &probs_after(&engine, &[&b[..common], &b[common..]]));
    eprintln!("one chunk vs reused prefix: max |dp| {d}");
    assert!(d < TOLERANCE, "reusing the prefix changed the distribution by {d}");

    // Long: past the 512-token window the local layers' rings have overwritten positions the
    // shorter prefix needs, so the session must start over — and still be right.
    let long_text = "one two three four five six seven eight nine ten ".repeat(60);
    let long = tok.encode(&long_text, true).unwrap();
    assert!(long.len() > 600, "{}", long.len());
    let mut cut = long[..300].to_vec();
    cut.extend(tok.encode(" Suddenly, a dragon", false).unwrap());
    let mut s = Session::new(engine.clone(), 2048).unwrap();
    s.generate(&long, &greedy(2), &mut |_| {}).unwrap();
    let r = s.generate(&cut, &greedy(6), &mut |_| {}).unwrap();
    assert_eq!(r.reused_tokens, 0);
    assert_eq!(r.ids, fresh(&engine, &cut, 6), "starting over is exactly a fresh session");
}

#[test]
fn cancel_from_another_thread_stops_within_one_token() {
    let engine = engine();
    let prompt = engine.tokenizer().encode("Once upon a time", true).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<()>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        rx.recv().unwrap();
        flag.store(true, Ordering::SeqCst);
        ack_tx.send(()).unwrap();
    });
    let opts = GenerateOptions {
        max_tokens: 200,
        cancel: Some(cancel),
        sampling: SamplingParams::greedy(),
        ..Default::default()
    };
    let mut s = Session::new(engine.clone(), 1024).unwrap();
    let mut pieces = 0usize;
    let mut at_cancel = None;
    let r = s
        .generate(&prompt, &opts, &mut |_| {
            pieces += 1;
            if pieces == 3 {
                tx.send(()).unwrap();
                ack_rx.recv().unwrap(); // the other thread has set the flag
                at_cancel = Some(pieces);
            }
        })
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(r.stop, StopReason::Cancelled);
    // The flag was set while the 3rd piece was being emitted: at most one more token follows.
    assert!(r.ids.len() <= 4, "{} tokens after cancel at piece {:?}", r.ids.len(), at_cancel);
}

#[test]
fn stop_string_ends_the_reply_before_it_and_streamed_text_adds_up() {
    let engine = engine();
    let prompt = engine.tokenizer().encode("My favourite fruits are apples, pears and", true).unwrap();
    let mut s = Session::new(engine.clone(), 1024).unwrap();
    let mut streamed = String::new();
    let full = s.generate(&prompt, &greedy(24), &mut |t| streamed.push_str(t)).unwrap();
    assert_eq!(streamed, full.text);
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() > 4, "{:?}", full.text);
    let stop = words[3].to_string();
    let at = full.text.find(&stop).unwrap();
    let mut streamed = String::new();
    let opts = GenerateOptions { stop_strings: vec![stop.clone()], ..greedy(24) };
    let r = s.generate(&prompt, &opts, &mut |t| streamed.push_str(t)).unwrap();
    assert_eq!(r.stop, StopReason::StopString);
    assert_eq!(r.text, full.text[..at]);
    assert_eq!(streamed, r.text, "text past the stop string was streamed");
}

#[test]
fn context_overflow_is_an_error_not_a_panic() {
    let engine = engine();
    let prompt = vec![2u32; 40];
    let mut s = Session::new(engine.clone(), 32).unwrap();
    let err = s.generate(&prompt, &greedy(4), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("does not fit the context"), "{err}");
    assert!(Session::new(engine.clone(), 1 << 20).is_err(), "a context beyond the model's maximum was accepted");
}

/// Loading reports progress for the app's progress bar: it starts at 0, never goes back, ends
/// at exactly 1, and passes through the middle (reported per tensor, not just start and end).
#[test]
fn load_reports_monotonic_progress_to_one() {
    let dir = std::env::temp_dir().join("hearth-test-tokenizers");
    let opts = LoadOptions { tokenizer_cache_dir: Some(dir), ..Default::default() };
    let mut seen = Vec::new();
    let engine = Engine::load_with_progress(&common::test_model(), &opts, &mut |f| seen.push(f)).unwrap();
    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&1.0), "last reports: {:?}", &seen[seen.len().saturating_sub(3)..]);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {seen:?}");
    assert!(seen.iter().filter(|f| **f > 0.1 && **f < 0.9).count() >= 10, "too few steps: {}", seen.len());
    // 18 layers of 13 tensors, plus the embedding and the final norm.
    assert!(seen.len() >= 18 * 13, "one report per tensor at least: {}", seen.len());
    assert!(engine.config().layers == 18);
}

#[test]
fn sessions_run_on_their_own_thread_counts_and_a_change_takes_effect_at_once() {
    let dir = std::env::temp_dir().join("hearth-test-tokenizers");
    let opts = LoadOptions { tokenizer_cache_dir: Some(dir), threads: Some(2), ..Default::default() };
    let engine = Engine::load(&common::test_model(), &opts).unwrap();
    assert_eq!(engine.threads(), 2);
    let prompt = engine.tokenizer().encode("The capital of France is", true).unwrap();

    let mut one = Session::new(engine.clone(), 256).unwrap();
    one.set_threads(1).unwrap();
    let mut three = Session::new(engine.clone(), 256).unwrap();
    three.set_threads(3).unwrap();
    let mut follower = Session::new(engine.clone(), 256).unwrap();
    assert_eq!((one.threads(), three.threads(), follower.threads()), (1, 3, 2));

    // Greedy replies agree whatever the split of the work.
    let a = one.generate(&prompt, &greedy(6), &mut |_| {}).unwrap();
    let b = three.generate(&prompt, &greedy(6), &mut |_| {}).unwrap();
    assert_eq!(a.ids, b.ids);

    // On a loaded session, mid-conversation: the next turn runs on the new count.
    one.set_threads(4).unwrap();
    assert_eq!(one.threads(), 4);
    let mut longer = prompt.clone();
    longer.extend(&a.ids);
    let c = one.generate(&longer, &greedy(4), &mut |_| {}).unwrap();
    assert_eq!(c.reused_tokens, longer.len() - 1, "the cache survives the change");

    // The engine's count moves the sessions that follow it, and only those.
    engine.set_threads(3).unwrap();
    assert_eq!((follower.threads(), one.threads()), (3, 4));
    follower.generate(&prompt, &greedy(2), &mut |_| {}).unwrap();
    one.use_engine_threads();
    assert_eq!(one.threads(), 3);

    assert!(one.set_threads(0).is_err() && engine.set_threads(0).is_err());
    assert_eq!(engine.device_kind(), engine::device::DeviceKind::Cpu);
}
