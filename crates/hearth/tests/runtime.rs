//! The runtime with the real 270M model: load with progress, turns (send, regenerate, edit),
//! the one-reply-at-a-time rule, stop, and the start-up reload. Each front end relies on these.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use hearth::error::ErrorCode;
use hearth::models::last_used;
use hearth::runtime::{ModelPhase, ReplyStop, Runtime};
use hearth::store::{MessageState, NewConversation, Role};
use support::runtime::{events, gated_events, Fixture, MODEL_ID};

#[test]
fn loading_reports_progress_and_fills_the_slot() {
    let f = Fixture::new(8);
    let (tx, rx) = mpsc::channel();
    let status = f
        .tokio
        .block_on(f.runtime.load(MODEL_ID, move |p| {
            let _ = tx.send(p);
        }))
        .unwrap();
    assert_eq!(
        (status.state, status.model_id.as_deref(), status.context_size),
        (ModelPhase::Ready, Some(MODEL_ID), Some(512))
    );
    let fractions: Vec<f64> = rx.try_iter().collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
    assert_eq!(fractions.last(), Some(&1.0));
    assert!(fractions.iter().filter(|f| **f > 0.0 && **f < 1.0).count() >= 10, "{fractions:?}");
    // Unknown models are a typed not_found that names the model.
    let e = f.tokio.block_on(f.runtime.load("nope", |_| {})).unwrap_err();
    assert_eq!((e.code, e.details.model.as_deref()), (ErrorCode::NotFound, Some("nope")));
    // The loaded model stays loaded after a failed request for another.
    assert_eq!(f.runtime.status().state, ModelPhase::Ready);
}

#[test]
fn send_regenerate_and_edit_stream_and_store_their_turns() {
    let f = Fixture::new(6);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();

    let (sink, ev) = events();
    let started =
        f.tokio.block_on(f.runtime.send(conv.id, "The capital of France is".into(), Vec::new(), sink)).unwrap();
    let (text, stats) = ev.done();
    assert!(!text.is_empty());
    assert!(stats.tokens >= 1 && stats.tokens <= 6, "{stats:?}");
    assert!(matches!(stats.stop_reason, ReplyStop::MaxTokens | ReplyStop::Eos), "{stats:?}");
    let user = started.user_message_id.expect("send stores a user message");
    let reply = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!(
        (reply.role, reply.state, reply.content.as_str()),
        (Role::Assistant, MessageState::Complete, text.as_str())
    );
    assert_eq!(reply.parent_id, Some(user));

    // Regenerate: a second reply beside the first, no new user message.
    let (sink, ev) = events();
    let again = f.tokio.block_on(f.runtime.regenerate(started.assistant_message_id, sink)).unwrap();
    ev.done();
    assert_eq!(again.user_message_id, None);
    let second = f.tokio.block_on(f.store.message(again.assistant_message_id)).unwrap();
    assert_eq!(second.parent_id, Some(user));
    // Regenerating a user message is refused before anything is stored.
    let e = f.tokio.block_on(f.runtime.regenerate(user, |_| {})).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidMessage);

    // Edit: a new version of the user message with its own reply.
    let (sink, ev) = events();
    let edited = f.tokio.block_on(f.runtime.edit(user, "The capital of Korea is".into(), sink)).unwrap();
    ev.done();
    let new_user = f.tokio.block_on(f.store.message(edited.user_message_id.unwrap())).unwrap();
    assert_eq!((new_user.content.as_str(), new_user.parent_id), ("The capital of Korea is", None));
    let path = f.tokio.block_on(f.store.messages(conv.id)).unwrap();
    assert_eq!(path.iter().map(|m| m.id).collect::<Vec<_>>(), [new_user.id, edited.assistant_message_id]);
    let e = f.tokio.block_on(f.runtime.edit(user, "  ".into(), |_| {})).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert!(!f.runtime.is_generating());
}

/// While a reply streams, everything that would disturb it is `busy`; stop keeps the partial
/// reply as a finished message, and the next turn starts at once.
#[test]
fn one_reply_at_a_time_and_stop_keeps_the_partial_reply() {
    let f = Fixture::new(64);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();
    let other = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();

    // The turn's thread waits in its first token until the test has checked everything, so
    // the reply is certainly streaming meanwhile.
    let (gated, ev, gate) = gated_events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "Once upon a time".into(), Vec::new(), gated)).unwrap();
    gate.reached();

    assert!(f.runtime.is_streaming(conv.id) && !f.runtime.is_streaming(other.id));
    fn busy<T>(r: hearth::error::HearthResult<T>) -> ErrorCode {
        r.map(|_| ()).unwrap_err().code
    }
    assert_eq!(busy(f.tokio.block_on(f.runtime.send(other.id, "hi".into(), Vec::new(), |_| {}))), ErrorCode::Busy);
    assert_eq!(busy(f.tokio.block_on(f.runtime.load(MODEL_ID, |_| {}))), ErrorCode::Busy);
    assert_eq!(busy(f.tokio.block_on(f.runtime.select_branch(started.assistant_message_id))), ErrorCode::Busy);
    assert_eq!(busy(f.tokio.block_on(f.runtime.delete_conversation(conv.id))), ErrorCode::Busy);
    assert_eq!(f.runtime.ensure_not_in_use(MODEL_ID).unwrap_err().code, ErrorCode::ModelInUse);
    assert_eq!(f.runtime.status().state, ModelPhase::Ready, "a busy load leaves the model alone");

    f.runtime.stop(conv.id);
    gate.release();
    let (text, stats) = ev.done();
    assert_eq!(stats.stop_reason, ReplyStop::Stopped);
    assert!(stats.tokens < 64, "{stats:?}");
    let kept = f.tokio.block_on(f.store.message(started.assistant_message_id)).unwrap();
    assert_eq!((kept.state, kept.content.as_str()), (MessageState::Complete, text.as_str()));

    // Free at once: the next turn streams.
    assert!(!f.runtime.is_generating());
    let (sink, ev) = events();
    f.tokio.block_on(f.runtime.send(other.id, "Hello".into(), Vec::new(), sink)).unwrap();
    ev.done();
}

#[test]
fn a_bad_attachment_refuses_the_whole_message_and_stores_nothing() {
    let f = Fixture::new(4);
    f.load().unwrap();
    let conv = f.tokio.block_on(f.store.create_conversation(&NewConversation::default())).unwrap();
    let photo = f.dir.path().join("cat.jpg");
    std::fs::write(&photo, b"jpeg bytes").unwrap();
    let gone = f.dir.path().join("gone.png");
    let e = f
        .tokio
        .block_on(f.runtime.send(conv.id, "look".into(), vec![photo.clone(), gone.clone()], |_| {}))
        .unwrap_err();
    assert_eq!((e.code, e.details.path.as_deref()), (ErrorCode::AttachmentMissing, Some(gone.to_str().unwrap())));
    let e =
        f.tokio.block_on(f.runtime.send(conv.id, "look".into(), vec![f.dir.path().to_path_buf()], |_| {})).unwrap_err();
    assert_eq!(e.code, ErrorCode::AttachmentUnreadable);
    assert!(f.tokio.block_on(f.store.messages(conv.id)).unwrap().is_empty());
    // A good one is stored with the message (a document: this text-only model refuses images).
    let notes = f.dir.path().join("notes.txt");
    std::fs::write(&notes, b"cats sleep a lot").unwrap();
    let (sink, ev) = events();
    let started = f.tokio.block_on(f.runtime.send(conv.id, "look".into(), vec![notes], sink)).unwrap();
    ev.done();
    let user = f.tokio.block_on(f.store.message(started.user_message_id.unwrap())).unwrap();
    assert_eq!(user.attachments.iter().map(|a| a.file_name.as_str()).collect::<Vec<_>>(), ["notes.txt"]);
}

#[test]
fn the_last_loaded_model_is_loaded_again_at_start_up_and_a_missing_one_is_forgotten() {
    let f = Fixture::new(4);
    assert_eq!(f.tokio.block_on(f.runtime.startup_model()), None, "nothing remembered yet");
    f.load().unwrap();

    let next = Runtime::new(f.store.clone(), f.dir.path().to_path_buf(), f.tokio.handle().clone());
    let m = f.tokio.block_on(next.startup_model()).expect("the remembered model is loaded again");
    assert_eq!((next.status().state, next.status().model_id.as_deref()), (ModelPhase::Loading, Some(MODEL_ID)));
    let ready = f.tokio.block_on(next.finish_load(m, |_| {})).unwrap();
    assert_eq!(ready.state, ModelPhase::Ready);

    let gone = f.dir.path().join("gone.gguf");
    std::fs::write(&gone, b"GGUF").unwrap();
    let entry = support::runtime::installed("gone", gone.clone());
    f.tokio.block_on(hearth::models::registry::insert(&f.store, &entry, false)).unwrap();
    f.tokio.block_on(last_used::remember(&f.store, "gone")).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let after = Runtime::new(f.store.clone(), f.dir.path().to_path_buf(), f.tokio.handle().clone());
    assert_eq!(f.tokio.block_on(after.startup_model()), None);
    assert_eq!(after.status().state, ModelPhase::None);
    assert_eq!(f.tokio.block_on(f.store.get_setting(&last_used::LAST_USED_MODEL)).unwrap(), None);
}

/// Regression: `hearth serve --model PATH` (and `summarize`) loaded an unregistered GGUF through
/// the runtime, which recorded it as the last-used model; the next start forgot it, and the
/// user's own last model with it.
#[test]
fn loading_a_file_that_is_not_installed_keeps_the_last_used_model() {
    let f = Fixture::new(4);
    f.load().unwrap();
    let ad_hoc = support::runtime::installed("adhoc.gguf", support::test_model());
    f.runtime.begin_load(&ad_hoc).unwrap();
    let ready = f.tokio.block_on(f.runtime.finish_load(ad_hoc, |_| {})).unwrap();
    assert_eq!((ready.state, ready.model_id.as_deref()), (ModelPhase::Ready, Some("adhoc.gguf")));
    let remembered = f.tokio.block_on(f.store.get_setting(&last_used::LAST_USED_MODEL)).unwrap();
    assert_eq!(remembered.as_deref(), Some(MODEL_ID));
}

/// Settings take effect without a restart: threads at once on the loaded model, a new context
/// by loading the model again.
#[test]
fn settings_take_effect_on_the_loaded_model() {
    let f = Fixture::new(4);
    let ready = f.load().unwrap();
    assert_eq!(ready.device, Some(hearth::runtime::Device::Cpu));
    assert!(hearth::runtime::available_devices().contains(&hearth::runtime::Device::Cpu));
    f.tokio.block_on(f.runtime.update_settings(&serde_json::json!({"threads": 1}))).unwrap();
    assert_eq!(f.runtime.status().threads, Some(1));
    f.tokio.block_on(f.runtime.update_settings(&serde_json::json!({"threads": 2}))).unwrap();
    assert_eq!(f.runtime.status().threads, Some(2));

    f.tokio.block_on(f.runtime.update_settings(&serde_json::json!({"contextSize": 1024}))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while f.runtime.status().context_size != Some(1024) {
        assert!(std::time::Instant::now() < deadline, "not reloaded: {:?}", f.runtime.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A bad value changes nothing and names the field and its range.
    let e = f.tokio.block_on(f.runtime.update_settings(&serde_json::json!({"threads": 0}))).unwrap_err();
    assert_eq!(
        (e.code, e.details.field.as_deref(), e.details.min),
        (ErrorCode::InvalidSetting, Some("threads"), Some(1.0))
    );
    assert_eq!(f.runtime.status().threads, Some(2));
}
