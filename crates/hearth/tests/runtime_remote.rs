//! A remote model in the runtime, against real OpenAI-compatible servers on the real 270M model:
//! `hearth serve` and llama.cpp's `llama-server` (child processes). Chosen like an installed
//! model, turns stream from it and are stored with the backend named, stop keeps the partial
//! reply, and a server killed mid-reply leaves the text that came as `interrupted` with a
//! `remote` error.
//!
//! The llama-server tests need its binary (`scripts/bench-vs-llamacpp --build-only --with-server`
//! builds it) in `HEARTH_LLAMA_SERVER`; they are `#[ignore]`d otherwise, and scripts/test runs
//! them with `--ignored` when it has the binary.

mod support;

use hearth::error::ErrorCode;
use hearth::remote::{registry, RemoteKey};
use hearth::runtime::{ModelPhase, ReplyStop, TurnEvent};
use hearth::store::MessageState;
use support::runtime::{events, gated_events, Fixture};
use support::serve::{LlamaServer, Server};

const KEY: &str = "lab-key-31d";

/// A running OpenAI-compatible server the test can kill.
trait Remote {
    fn url(&self) -> &str;
    fn kill(&mut self);
}

impl Remote for Server {
    fn url(&self) -> &str {
        &self.url
    }
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Remote for LlamaServer {
    fn url(&self) -> &str {
        &self.url
    }
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn hearth_serve() -> Server {
    Server::start(&["--api-key", KEY])
}

fn llama_server() -> LlamaServer {
    LlamaServer::start(KEY)
}

fn add_remote(f: &Fixture, server: &dyn Remote) {
    f.tokio
        .block_on(registry::add(&f.store, f.dir.path(), "lab", server.url(), None, RemoteKey::new(KEY).as_ref()))
        .unwrap();
}

#[test]
fn a_remote_model_answers_turns_that_are_stored_with_its_name() {
    answers_turns(&hearth_serve());
}

#[test]
#[ignore = "needs llama-server in HEARTH_LLAMA_SERVER (scripts/bench-vs-llamacpp --build-only --with-server)"]
fn llama_server_answers_turns_that_are_stored_with_its_name() {
    answers_turns(&llama_server());
}

#[test]
fn stop_keeps_the_partial_remote_reply() {
    stop_keeps_partial(&hearth_serve());
}

#[test]
#[ignore = "needs llama-server in HEARTH_LLAMA_SERVER (scripts/bench-vs-llamacpp --build-only --with-server)"]
fn stop_keeps_the_partial_llama_server_reply() {
    stop_keeps_partial(&llama_server());
}

#[test]
fn a_server_killed_mid_reply_leaves_an_interrupted_reply_with_the_reason() {
    killed_mid_reply(&mut hearth_serve());
}

#[test]
#[ignore = "needs llama-server in HEARTH_LLAMA_SERVER (scripts/bench-vs-llamacpp --build-only --with-server)"]
fn a_llama_server_killed_mid_reply_leaves_an_interrupted_reply() {
    killed_mid_reply(&mut llama_server());
}

fn answers_turns(server: &dyn Remote) {
    let f = Fixture::new(8);
    add_remote(&f, server);
    let status = f.tokio.block_on(f.runtime.load("lab", |_| {})).unwrap();
    assert_eq!(status.state, ModelPhase::Ready);
    assert_eq!(status.model_id.as_deref(), Some("lab"));
    assert!(status.remote_url.as_deref().is_some_and(|u| server.url().starts_with(u)), "{status:?}");
    assert_eq!((status.device, status.context_size), (None, None), "nothing runs here");

    let conv = f.tokio.block_on(f.store.create_conversation(&Default::default())).unwrap();
    let (sink, ev) = events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "Name a colour.".into(), Vec::new(), sink)).unwrap();
    let (text, stats) = ev.done();
    assert!(!text.is_empty());
    assert_eq!((stats.tokens, stats.stop_reason), (8, ReplyStop::MaxTokens), "{stats:?}");
    let reply = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!((reply.content.as_str(), reply.state), (text.as_str(), MessageState::Complete));
    let label = reply.stats.model.unwrap();
    assert!(label.starts_with("lab (") && label.contains("remote at http://127.0.0.1"), "{label}");

    // A follow-up sends the whole history: the server sees both user turns.
    let (sink, ev) = events();
    f.tokio.block_on(f.runtime.send(conv.id, "And another?".into(), Vec::new(), sink)).unwrap();
    let (_, stats) = ev.done();
    assert!(stats.tokens > 0);
    // Token counting needs a model here: a clear refusal, not a wrong number.
    let e = f.runtime.count_tokens("hello").unwrap_err();
    assert!(e.message.contains("runs on"), "{e:?}");
}

fn stop_keeps_partial(server: &dyn Remote) {
    let f = Fixture::new(300);
    add_remote(&f, server);
    f.tokio.block_on(f.runtime.load("lab", |_| {})).unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&Default::default())).unwrap();
    let (sink, ev, gate) = gated_events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "Tell me a long story.".into(), Vec::new(), sink)).unwrap();
    gate.reached();
    f.runtime.stop(conv.id);
    gate.release();
    let (text, stats) = ev.done();
    assert_eq!(stats.stop_reason, ReplyStop::Stopped);
    let reply = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!(reply.state, MessageState::Complete, "a stopped reply is kept as finished");
    assert_eq!(reply.content, text);
    assert!(!f.runtime.is_generating());
}

fn killed_mid_reply(server: &mut dyn Remote) {
    let f = Fixture::new(300);
    add_remote(&f, server);
    f.tokio.block_on(f.runtime.load("lab", |_| {})).unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&Default::default())).unwrap();
    let (sink, ev, gate) = gated_events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "Tell me a long story.".into(), Vec::new(), sink)).unwrap();
    gate.reached();
    server.kill();
    gate.release();
    let (text, end) = ev.finish();
    let TurnEvent::Error { error } = end else { panic!("expected an error, got {end:?}") };
    assert_eq!(error.code, ErrorCode::Remote, "{error:?}");
    assert!(!text.is_empty());
    let reply = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!(reply.state, MessageState::Interrupted);
    assert_eq!(reply.content, text, "the partial reply is kept");
    let stored = hearth::error::HearthError::from_stored(reply.error.as_deref().unwrap());
    assert_eq!(stored.code, ErrorCode::Remote);
    assert!(!f.runtime.is_generating(), "the runtime is free again");
}

#[test]
fn a_remote_model_that_does_not_answer_leaves_the_slot_in_error() {
    let f = Fixture::new(8);
    f.tokio.block_on(registry::add(&f.store, f.dir.path(), "gone", "http://127.0.0.1:9", None, None)).unwrap();
    let e = f.tokio.block_on(f.runtime.load("gone", |_| {})).unwrap_err();
    assert_eq!(e.code, ErrorCode::Remote, "{e:?}");
    let status = f.runtime.status();
    assert_eq!((status.state, status.model_id.as_deref()), (ModelPhase::Error, Some("gone")));
    // The local model still loads afterwards.
    f.load().unwrap();
}
