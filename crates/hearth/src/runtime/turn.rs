//! A conversation turn (send, regenerate, edit) run by the runtime on its own thread, behind
//! the panic boundary.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::session::{Session, StopReason};
use serde::Serialize;
use tokio::sync::oneshot;
use ts_rs::TS;

use super::load::panic_text;
use super::{lock, Inner, Loaded, Running, Runtime, Slot};
use crate::app_api::AppSettings;
use crate::chat::{Backend, ChatError, StoredTurn, TurnInput, TurnOutcome, TurnRequest};
use crate::documents::{extract_file_cached, Limits as DocLimits};
use crate::error::{HearthError, HearthResult};
use crate::store::{
    read_attachment_file, AttachmentKind, ConversationId, MessageFinish, MessageId, MessageState, NewAttachment,
};

/// Why a reply ended, as front ends show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStop {
    /// The model finished (end of turn, or a stop string).
    Eos,
    MaxTokens,
    /// The user stopped it; the partial reply is kept as a finished message.
    Stopped,
    ContextFull,
}

impl ReplyStop {
    /// A cancelled reply was stopped by somebody: the user, or a front end on their behalf.
    pub fn from_engine(r: StopReason) -> Self {
        match r {
            StopReason::Eos | StopReason::StopString => ReplyStop::Eos,
            StopReason::MaxTokens => ReplyStop::MaxTokens,
            StopReason::Cancelled => ReplyStop::Stopped,
            StopReason::ContextFull => ReplyStop::ContextFull,
        }
    }

    /// From the stop reason stored with a message (the engine's name, e.g. `"cancelled"`);
    /// `None` for a reply that never finished.
    pub fn from_stored(s: &str) -> Option<Self> {
        serde_json::from_value::<StopReason>(serde_json::Value::String(s.to_string())).ok().map(Self::from_engine)
    }
}

/// A finished reply's figures.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReplyStats {
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub stop_reason: ReplyStop,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub prompt_tokens: Option<u64>,
}

impl ReplyStats {
    /// The stats stored with a finished reply; `None` while it streams or if it failed.
    pub fn from_stored(m: &crate::store::Message) -> Option<Self> {
        let stop = m.stats.stop_reason.as_deref().and_then(ReplyStop::from_stored)?;
        Some(Self {
            tokens: m.token_count.unwrap_or(0).max(0) as u64,
            tokens_per_s: m.stats.gen_tokens_per_s.unwrap_or(0.0),
            stop_reason: stop,
            prompt_tokens: None,
        })
    }

    fn from_outcome(out: &TurnOutcome) -> Self {
        Self {
            tokens: out.generated_tokens as u64,
            tokens_per_s: out.gen_tokens_per_s,
            stop_reason: ReplyStop::from_engine(out.stop_reason),
            prompt_tokens: Some(out.prompt_tokens as u64),
        }
    }
}

/// What a turn tells its front end after it started: each piece of text, then exactly one of
/// `done` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TurnEvent {
    Token {
        text: String,
    },
    Done {
        stats: ReplyStats,
    },
    Error {
        #[serde(flatten)]
        error: HearthError,
    },
}

/// The messages a turn stored, once it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnStarted {
    /// The user message this turn stored (send, edit); `None` for a regenerate.
    pub user_message_id: Option<MessageId>,
    pub assistant_message_id: MessageId,
}

type EventSink = Box<dyn FnMut(TurnEvent) + Send>;

impl Runtime {
    /// Sends `text` (with the files at `attachments`, stored with the message) in
    /// `conversation_id`. Answers once the turn is stored and streaming, or with why it could
    /// not start (`invalid_message`, `not_found`, `no_model`, `busy`, `context_full`, an
    /// attachment's error...); the reply's text then arrives on `on_event`.
    pub async fn send(
        &self,
        conversation_id: ConversationId,
        text: String,
        attachments: Vec<PathBuf>,
        on_event: impl FnMut(TurnEvent) + Send + 'static,
    ) -> HearthResult<TurnStarted> {
        if text.trim().is_empty() {
            return Err(ChatError::EmptyMessage.into());
        }
        self.inner.store.conversation(conversation_id).await?;
        // Refuse early, before reading possibly large files.
        self.loaded()?;
        let data_dir = self.inner.data_dir.clone();
        let attachments = tokio::task::spawn_blocking(move || read_attachments(&data_dir, &attachments))
            .await
            .map_err(HearthError::internal)??;
        self.start(conversation_id, TurnInput::Send { text, attachments }, Box::new(on_event)).await
    }

    /// Another reply beside the assistant message `reply`, made the active branch.
    pub async fn regenerate(
        &self,
        reply: MessageId,
        on_event: impl FnMut(TurnEvent) + Send + 'static,
    ) -> HearthResult<TurnStarted> {
        let m = self.inner.store.message(reply).await?;
        self.start(m.conversation_id, TurnInput::Regenerate { reply }, Box::new(on_event)).await
    }

    /// A new version of the user message `message` with `text` (and its attachments), and a
    /// reply to it, made the active branch.
    pub async fn edit(
        &self,
        message: MessageId,
        text: String,
        on_event: impl FnMut(TurnEvent) + Send + 'static,
    ) -> HearthResult<TurnStarted> {
        if text.trim().is_empty() {
            return Err(ChatError::EmptyMessage.into());
        }
        let m = self.inner.store.message(message).await?;
        self.start(m.conversation_id, TurnInput::Edit { message, text }, Box::new(on_event)).await
    }

    /// Makes the branch through `message_id` the active one. Refused with `busy` while a reply
    /// streams in that conversation: the reply is the active branch's end until it is stored.
    pub async fn select_branch(&self, message_id: MessageId) -> HearthResult<ConversationId> {
        let m = self.inner.store.message(message_id).await?;
        if self.is_streaming(m.conversation_id) {
            return Err(HearthError::busy());
        }
        self.inner.store.select_branch(message_id).await?;
        Ok(m.conversation_id)
    }

    async fn start(
        &self,
        conversation_id: ConversationId,
        input: TurnInput,
        on_event: EventSink,
    ) -> HearthResult<TurnStarted> {
        let settings = AppSettings::load(&self.inner.store).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let queue_turn = self.wait_in_line().await?;
        // Both locks, in begin_load's order: no load can start between the check and the claim.
        let (model_id, loaded, vision) = {
            let mut running = lock(&self.inner.running);
            let (model_id, loaded) = self.loaded()?;
            let vision = self.vision();
            if running.is_some() {
                return Err(HearthError::busy());
            }
            *running = Some(Running {
                conversation_id: Some(conversation_id),
                cancel: cancel.clone(),
                stopped_by_user: stopped.clone(),
                thread: None,
                _queue_turn: Some(queue_turn),
            });
            (model_id, loaded, vision)
        };
        let req = TurnRequest {
            conversation_id,
            input,
            max_tokens: self.inner.reply_limit.load(Ordering::Relaxed),
            sampling: settings.sampling(),
            model_label: model_id,
            vision,
            pan_scan: settings.pan_scan_rule(),
        };
        let (tx, rx) = oneshot::channel();
        let job = TurnJob {
            inner: self.inner.clone(),
            loaded,
            req,
            cancel: cancel.clone(),
            stopped,
            on_event,
            started: Some(tx),
        };
        let spawned = std::thread::Builder::new().name("hearth-turn".into()).spawn(move || job.run());
        match spawned {
            Ok(handle) => {
                if let Some(r) = lock(&self.inner.running).as_mut().filter(|r| Arc::ptr_eq(&r.cancel, &cancel)) {
                    r.thread = Some(handle);
                }
            }
            Err(e) => {
                release(&self.inner, &cancel);
                return Err(HearthError::internal(format!("cannot start the reply's thread: {e}")));
            }
        }
        rx.await.unwrap_or_else(|_| Err(HearthError::internal("the reply ended before it started")))
    }
}

impl Runtime {
    /// A chat turn's place in the generation line (see [`super::queue`]): at once when nothing
    /// is queued, else after the API requests ahead of it. Another chat turn streaming is
    /// still `busy` (a window streams one reply at a time), and so is a full line.
    async fn wait_in_line(&self) -> HearthResult<super::QueueTurn> {
        if lock(&self.inner.running).as_ref().is_some_and(|r| r.conversation_id.is_some()) {
            return Err(HearthError::busy());
        }
        let ticket = self.queue().join()?;
        // Nothing cancels the wait: the requests ahead are bounded by their max_tokens.
        let waited = tokio::task::spawn_blocking(move || ticket.wait(&AtomicBool::new(false)))
            .await
            .map_err(HearthError::internal)?;
        waited.map_err(|_| HearthError::busy())
    }
}

/// The dropped files, read and checked before anything is stored: one missing, unreadable or
/// oversized file refuses the whole message. A document's text is extracted here (once per
/// content: the text cache under `data_dir`), so it is stored with the attachment and joins
/// the user's turn; a document with no text to read refuses the message too, since the model
/// would not see it.
fn read_attachments(data_dir: &Path, paths: &[PathBuf]) -> HearthResult<Vec<NewAttachment>> {
    paths
        .iter()
        .map(|p| {
            let mut a = read_attachment_file(p)?;
            if a.kind == AttachmentKind::Document {
                a.extracted_text = Some(extract_file_cached(data_dir, p, &DocLimits::default())?.text);
            }
            Ok(a)
        })
        .collect()
}

/// Frees the running slot if it still holds the turn with this cancel flag (a shutdown may
/// already have taken it).
pub(super) fn release(inner: &Inner, cancel: &Arc<AtomicBool>) {
    let mut g = lock(&inner.running);
    if g.as_ref().is_some_and(|r| Arc::ptr_eq(&r.cancel, cancel)) {
        *g = None;
    }
}

/// Releases the running slot when dropped, so even a panic in the turn's own bookkeeping
/// cannot leave the runtime `busy` for good.
pub(super) struct Release<'a> {
    pub(super) inner: &'a Inner,
    pub(super) cancel: Arc<AtomicBool>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        release(self.inner, &self.cancel);
    }
}

/// One turn on its thread.
struct TurnJob {
    inner: Arc<Inner>,
    loaded: Loaded,
    req: TurnRequest,
    cancel: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    on_event: EventSink,
    /// Answers the `start` call once the turn is stored and streaming (or has failed).
    started: Option<oneshot::Sender<HearthResult<TurnStarted>>>,
}

impl TurnJob {
    fn run(mut self) {
        let inner = self.inner.clone();
        let release_guard = Release { inner: &inner, cancel: self.cancel.clone() };
        let mut stored: Option<StoredTurn> = None;
        let mut partial = String::new();
        let result = {
            let (started, on_event, stored, partial) =
                (&mut self.started, &mut self.on_event, &mut stored, &mut partial);
            let (loaded, req, cancel) = (&self.loaded, &self.req, self.cancel.clone());
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let mut local;
                let backend = match loaded {
                    Loaded::Local(session) => {
                        local = lock(session);
                        Backend::Local(&mut local)
                    }
                    Loaded::Remote(client) => Backend::Remote(client),
                };
                inner.chat.turn_with(
                    backend,
                    req,
                    cancel,
                    &mut |s: &StoredTurn| {
                        *stored = Some(*s);
                        if let Some(tx) = started.take() {
                            let ids = TurnStarted {
                                user_message_id: s.new_user_message.then_some(s.user_message_id),
                                assistant_message_id: s.assistant_message_id,
                            };
                            let _ = tx.send(Ok(ids));
                        }
                    },
                    &mut |piece: &str| {
                        fail::fail_point!("runtime::turn::token");
                        on_event(TurnEvent::Token { text: piece.to_string() });
                        // What the user has seen, kept if the turn crashes.
                        partial.push_str(piece);
                    },
                )
            }))
        };
        match result {
            Ok(Ok(out)) => {
                if out.stop_reason == StopReason::Cancelled && self.stopped.load(Ordering::SeqCst) {
                    if let Err(e) = inner.rt.block_on(keep_stopped_reply(&inner.store, out.assistant_message_id)) {
                        log::warn!("cannot keep the stopped reply: {e}");
                    }
                }
                // Free the slot before `done`: the front end may send the next message at once.
                drop(release_guard);
                (self.on_event)(TurnEvent::Done { stats: ReplyStats::from_outcome(&out) });
            }
            Ok(Err(e)) => {
                drop(release_guard);
                self.fail(e.into());
            }
            Err(panic) => {
                let e = HearthError::internal(format!("the reply crashed: {}", panic_text(&*panic)));
                log::error!("{}", e.message);
                if let Loaded::Local(session) = &self.loaded {
                    reset_session(&inner, session);
                }
                if let Some(s) = stored {
                    let fin = MessageFinish {
                        content: partial,
                        state: MessageState::Error,
                        token_count: None,
                        stats: Default::default(),
                        error: Some(e.to_stored()),
                    };
                    if let Err(se) = inner.rt.block_on(inner.store.finish_message(s.assistant_message_id, &fin)) {
                        log::warn!("cannot store the crashed reply: {se}");
                    }
                }
                drop(release_guard);
                self.fail(e);
            }
        }
    }

    /// Reports a failure: to the starter if nothing streamed yet, else as the stream's end.
    fn fail(mut self, e: HearthError) {
        match self.started.take() {
            Some(tx) => {
                let _ = tx.send(Err(e));
            }
            None => (self.on_event)(TurnEvent::Error { error: e }),
        }
    }
}

/// After a panic mid-generation the session's cache no longer matches its tokens: give the
/// model a fresh session (same weights, context and cache type). If even that fails, the slot
/// says why and the next load starts clean.
pub(super) fn reset_session(inner: &Inner, session: &Arc<Mutex<Session>>) {
    let mut s = lock(session);
    let fresh = Session::with_kv_dtype(s.engine().clone(), s.context(), s.kv_dtype());
    match fresh {
        Ok(fresh) => *s = fresh,
        Err(e) => {
            drop(s);
            let mut slot = lock(&inner.slot);
            if let Slot::Ready { id, name, .. } = &*slot {
                let error = HearthError::from(e);
                *slot = Slot::Failed { id: id.clone(), name: name.clone(), error };
            }
            return;
        }
    }
    drop(s);
    session.clear_poison();
}

/// A reply the user stopped is kept as a finished message (front ends show it like any other);
/// [`crate::chat::ChatService::turn`] stores it as interrupted, which is kept for crashes.
pub async fn keep_stopped_reply(
    store: &crate::store::Store,
    id: MessageId,
) -> Result<crate::store::Message, crate::store::StoreError> {
    let m = store.message(id).await?;
    if m.state != MessageState::Interrupted {
        return Ok(m);
    }
    let fin = MessageFinish {
        content: m.content,
        state: MessageState::Complete,
        token_count: m.token_count,
        stats: m.stats,
        error: None,
    };
    store.finish_message(id, &fin).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_are_typed_from_the_engine_and_the_store() {
        assert_eq!(ReplyStop::from_stored("cancelled"), Some(ReplyStop::Stopped));
        assert_eq!(ReplyStop::from_stored("stop_string"), Some(ReplyStop::Eos));
        assert_eq!(ReplyStop::from_stored("max_tokens"), Some(ReplyStop::MaxTokens));
        assert_eq!(ReplyStop::from_stored("context_full"), Some(ReplyStop::ContextFull));
        assert_eq!(ReplyStop::from_stored("no such reason"), None);
        assert_eq!(serde_json::to_value(ReplyStop::Stopped).unwrap(), "stopped");
    }

    #[test]
    fn turn_events_have_the_ipc_shapes() {
        let e = TurnEvent::Error { error: HearthError::busy() };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!((v["kind"].as_str(), v["code"].as_str()), (Some("error"), Some("busy")));
        assert!(v["message"].is_string() && v["details"].is_object(), "{v}");
        let v = serde_json::to_value(TurnEvent::Token { text: "hi".into() }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "token", "text": "hi"}));
    }

    #[tokio::test]
    async fn a_stopped_reply_is_kept_as_complete_with_its_text() {
        use crate::store::{NewConversation, NewMessage, Role, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let c = store.create_conversation(&NewConversation::default()).await.unwrap();
        let m = store.append_message(c.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
        let fin = MessageFinish {
            content: "half a rep".into(),
            state: MessageState::Interrupted,
            token_count: Some(3),
            stats: Default::default(),
            error: None,
        };
        store.finish_message(m.id, &fin).await.unwrap();
        let kept = keep_stopped_reply(&store, m.id).await.unwrap();
        assert_eq!(kept.state, MessageState::Complete);
        assert_eq!(kept.content, "half a rep");
        assert_eq!(kept.token_count, Some(3));
        assert!(keep_stopped_reply(&store, m.id + 100).await.is_err());
    }
}
