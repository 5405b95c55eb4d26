//! Raw completions through the runtime with the real 270M model: they stream, count tokens,
//! reuse the cached prompt, honour stop strings and cancel, and share the one-at-a-time rule
//! with chat turns. The API server and document summaries rely on these.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use engine::chat_template::{ChatMessage, Role};
use engine::sampler::SamplingParams;
use engine::session::StopReason;
use hearth::error::ErrorCode;
use hearth::runtime::CompletionRequest;
use hearth::store::NewConversation;
use support::runtime::{gated_events, Fixture};

fn ask(text: &str, max_tokens: usize) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage::new(Role::User, text)],
        max_tokens: Some(max_tokens),
        sampling: Some(SamplingParams { temperature: 0.0, ..Default::default() }),
        ..Default::default()
    }
}

fn no_cancel() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn a_completion_streams_counts_and_reuses_its_prompt() {
    let f = Fixture::new(64);
    assert_eq!(f.runtime.complete(ask("hi", 4), no_cancel(), &mut |_| {}).unwrap_err().code, ErrorCode::NoModel);
    f.load().unwrap();

    let mut streamed = String::new();
    let first =
        f.runtime.complete(ask("Tell me about the sea.", 12), no_cancel(), &mut |p| streamed.push_str(p)).unwrap();
    assert_eq!(first.text, streamed);
    assert!(first.completion_tokens > 0 && first.completion_tokens <= 12, "{first:?}");
    assert!(first.prompt_tokens > 5, "{first:?}");

    // The same prompt again: greedy gives the same text, and the prompt's keys and values are
    // found in the cache instead of being computed again.
    let again = f.runtime.complete(ask("Tell me about the sea.", 12), no_cancel(), &mut |_| {}).unwrap();
    assert_eq!(again.text, first.text);
    assert_eq!(again.prompt_tokens, first.prompt_tokens);
    assert!(again.reused_tokens >= first.prompt_tokens - 1, "{again:?}");

    assert_eq!(f.runtime.count_tokens("").unwrap(), 0);
    assert!(f.runtime.count_tokens("Tell me about the sea.").unwrap() >= 4);
}

#[test]
fn a_stop_string_and_cancel_end_a_completion() {
    let f = Fixture::new(64);
    f.load().unwrap();
    // The reference run reads the prompt as the stopped run will: from the cache the first run
    // left (a fresh prefill and a cached one may differ in the last bits, and the 270M model's
    // first reply token to this prompt is a near tie).
    f.runtime.complete(ask("Count: 1, 2, 3,", 24), no_cancel(), &mut |_| {}).unwrap();
    let free = f.runtime.complete(ask("Count: 1, 2, 3,", 24), no_cancel(), &mut |_| {}).unwrap();
    // Stop at the free run's second character: the reply ends before it.
    let cut: String = free.text.chars().skip(1).take(1).collect();
    assert!(!cut.is_empty(), "the free run was too short: {free:?}");
    let mut req = ask("Count: 1, 2, 3,", 24);
    req.stop = vec![cut.clone()];
    let stopped = f.runtime.complete(req, no_cancel(), &mut |_| {}).unwrap();
    assert_eq!(stopped.stop, StopReason::StopString, "{stopped:?}");
    assert!(!stopped.text.contains(&cut) && free.text.starts_with(&stopped.text), "{stopped:?} vs {free:?}");

    // Cancel from the first piece: it ends within a token, keeping what it made.
    let cancel = no_cancel();
    let flag = cancel.clone();
    let mut pieces = 0;
    let out = f
        .runtime
        .complete(ask("Count: 1, 2, 3,", 24), cancel, &mut |_| {
            pieces += 1;
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(out.stop, StopReason::Cancelled);
    assert!(pieces <= 2 && out.completion_tokens <= 2, "{out:?}");
    assert!(!f.runtime.is_generating());
}

#[test]
fn completions_and_chat_turns_take_turns() {
    let f = Fixture::new(32);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();

    // A chat turn held at its first token: a completion meanwhile is refused as busy.
    let (gated, ev, gate) = gated_events();
    f.tokio.block_on(f.runtime.send(conv.id, "Once upon a time".into(), Vec::new(), gated)).unwrap();
    gate.reached();
    assert_eq!(f.runtime.complete(ask("hi", 4), no_cancel(), &mut |_| {}).unwrap_err().code, ErrorCode::Busy);
    gate.release();
    ev.done();

    // A completion held at its first piece: a chat turn meanwhile is refused as busy, and it is
    // not shown as streaming in any conversation.
    let runtime = f.runtime.clone();
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let mut waited = false;
        runtime.complete(ask("Once upon a time", 8), no_cancel(), &mut |_| {
            if !waited {
                waited = true;
                first_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
        })
    });
    first_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(f.runtime.is_generating() && !f.runtime.is_streaming(conv.id));
    let refused = f.tokio.block_on(f.runtime.send(conv.id, "hi".into(), Vec::new(), |_| {}));
    assert_eq!(refused.map(|_| ()).unwrap_err().code, ErrorCode::Busy);
    go_tx.send(()).unwrap();
    assert!(worker.join().unwrap().unwrap().completion_tokens > 0);
    assert!(!f.runtime.is_generating());
}

/// The window's turns share the API's line: a queued request (what `hearth serve` and the
/// app's server send) waits behind a streaming chat turn instead of being refused, and a chat
/// turn sent while a queued request runs waits for it, then streams.
#[test]
fn queued_requests_and_chat_turns_wait_for_each_other() {
    let f = Fixture::new(16);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();

    // A chat turn held at its first token; a queued request meanwhile waits, then answers.
    let (gated, ev, gate) = gated_events();
    f.tokio.block_on(f.runtime.send(conv.id, "Once upon a time".into(), Vec::new(), gated)).unwrap();
    gate.reached();
    let runtime = f.runtime.clone();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let api = std::thread::spawn(move || {
        let mut first = true;
        runtime.complete_queued(ask("Name a fruit.", 4), no_cancel(), &mut |_| {
            if std::mem::take(&mut first) {
                started_tx.send(()).unwrap();
            }
        })
    });
    // It is in line, not running: the chat turn still holds the model.
    for _ in 0..100 {
        if f.runtime.queue().status().waiting == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.runtime.queue().status().waiting, 1);
    assert!(started_rx.try_recv().is_err(), "the request ran while the chat turn held the model");
    gate.release();
    ev.done();
    let done = api.join().unwrap().unwrap();
    assert_eq!((done.completion_tokens, done.stop), (4, StopReason::MaxTokens));

    // A queued request held at its first piece; a chat turn sent meanwhile waits, then streams.
    let runtime = f.runtime.clone();
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let api = std::thread::spawn(move || {
        let mut waited = false;
        runtime.complete_queued(ask("Once upon a time", 8), no_cancel(), &mut |_| {
            if !waited {
                waited = true;
                first_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
        })
    });
    first_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let runtime = f.runtime.clone();
    let handle = f.tokio.handle().clone();
    let (sink, ev) = support::runtime::events();
    let chat = std::thread::spawn(move || handle.block_on(runtime.send(conv.id, "hi".into(), Vec::new(), sink)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!chat.is_finished(), "the chat turn did not wait for the request");
    go_tx.send(()).unwrap();
    assert!(api.join().unwrap().unwrap().completion_tokens > 0);
    chat.join().unwrap().unwrap();
    let (_, stats) = ev.done();
    assert!(stats.tokens > 0);
}
