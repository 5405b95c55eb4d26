//! A panic inside a turn or a load stops at the runtime's boundary: the work ends as
//! `internal` (a turn keeps its partial text), nothing stays `busy`, and the next request
//! works. Faults are injected with the `fail` crate's failpoints (feature `failpoints`, on for
//! this crate's tests only).

mod support;

use hearth::error::{ErrorCode, HearthError};
use hearth::runtime::{ModelPhase, TurnEvent};
use hearth::store::{MessageState, NewConversation};
use support::runtime::{events, Fixture};

#[test]
fn a_panic_mid_reply_ends_the_turn_as_internal_and_the_next_turn_streams() {
    let scenario = fail::FailScenario::setup();
    let f = Fixture::new(12);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();

    // Three pieces stream, the fourth panics inside the engine's generation loop.
    fail::cfg("runtime::turn::token", "3*off->panic(injected fault)").unwrap();
    let (sink, ev) = events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "Once upon a time".into(), Vec::new(), sink)).unwrap();
    let (partial, end) = ev.finish();
    let TurnEvent::Error { error } = end else { panic!("expected an error, got {end:?}") };
    assert_eq!(error.code, ErrorCode::Internal);
    assert!(error.message.contains("injected fault"), "{}", error.message);
    assert!(!partial.is_empty());
    let stored = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!((stored.state, stored.content.as_str()), (MessageState::Error, partial.as_str()));
    assert_eq!(HearthError::from_stored(stored.error.as_deref().unwrap()).code, ErrorCode::Internal);
    assert!(!f.runtime.is_generating(), "busy after the panic");
    assert_eq!(f.runtime.status().state, ModelPhase::Ready);

    fail::remove("runtime::turn::token");
    let (sink, ev) = events();
    f.tokio.block_on(f.runtime.send(conv.id, "Hello again".into(), Vec::new(), sink)).unwrap();
    let (text, stats) = ev.done();
    assert!(!text.is_empty() && stats.tokens >= 1, "{stats:?}");
    scenario.teardown();
}

#[test]
fn a_panic_while_loading_marks_the_slot_failed_and_the_next_load_works() {
    let scenario = fail::FailScenario::setup();
    let f = Fixture::new(4);
    fail::cfg("runtime::load::progress", "5*off->panic(injected fault)").unwrap();
    let e = f.load().unwrap_err();
    assert_eq!(e.code, ErrorCode::Internal);
    let status = f.runtime.status();
    assert_eq!(status.state, ModelPhase::Error);
    assert_eq!(status.error.map(|e| e.code), Some(ErrorCode::Internal));

    fail::remove("runtime::load::progress");
    assert_eq!(f.load().unwrap().state, ModelPhase::Ready);
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();
    let (sink, ev) = events();
    f.tokio.block_on(f.runtime.send(conv.id, "Hello".into(), Vec::new(), sink)).unwrap();
    ev.done();
    scenario.teardown();
}
