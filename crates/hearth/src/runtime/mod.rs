//! The assistant runtime: the one owner of the loaded model and of the running turn.
//!
//! Every front end (the desktop shell, the CLI, a later local API server) goes through a
//! [`Runtime`]; none of them holds a model, a session or a "busy" flag of its own. One runtime
//! per process, cheap to clone (an `Arc` inside).
//!
//! Rules kept here and nowhere else:
//! - One model in memory at a time: loading drops the old one first.
//! - One reply at a time: a turn while another streams, or while a model loads, is refused
//!   with [`ErrorCode::Busy`]; so is a load while a reply streams. The exception is the line of
//!   queued generations (API requests, [`queue`]): a chat turn takes its place in that line,
//!   waiting behind requests rather than being refused, and requests wait behind it.
//! - A panic inside a turn or a load stops at the runtime's boundary: the turn ends as
//!   `internal` with its partial text stored, the model slot is reset (turn) or marked failed
//!   (load), and the next request works.
//!
//! Threads: a load runs on a blocking task of the async runtime, a turn on its own thread; the
//! store is async and reached through the `tokio` handle given to [`Runtime::new`]. Locks are
//! std mutexes held only for quick reads and swaps, never across a model call or an await,
//! except the session's own lock, which the turn's thread holds while it generates.

mod complete;
mod load;
pub mod queue;
mod turn;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::session::Session;
use serde::Serialize;
use tokio::runtime::Handle;
use ts_rs::TS;

use crate::chat::ChatService;
use crate::error::{ErrorCode, HearthError, HearthResult};
use crate::models::registry::InstalledModel;
use crate::remote::RemoteClient;
use crate::store::{ConversationId, Store};

pub use complete::{Completion, CompletionImage, CompletionRequest};
pub use queue::{GenerationQueue, QueueStatus, QueueTicket, QueueTurn};
pub use turn::{ReplyStats, ReplyStop, TurnEvent, TurnStarted};

/// Longest reply a turn asks for; the context limit usually ends a reply before this.
pub const MAX_REPLY_TOKENS: usize = 2048;

/// Where the model slot stands, as front ends show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ModelPhase {
    None,
    Loading,
    Ready,
    Error,
}

/// A device a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    Metal,
}

impl From<engine::device::DeviceKind> for Device {
    fn from(k: engine::device::DeviceKind) -> Self {
        use engine::device::DeviceKind as K;
        match k {
            K::Cpu => Device::Cpu,
            K::Cuda => Device::Cuda,
            K::Metal => Device::Metal,
        }
    }
}

/// The devices this build can run a model on here (the CPU always; a GPU only when compiled in
/// and present), for a settings page that offers nothing that would fail.
pub fn available_devices() -> Vec<Device> {
    engine::device::available().into_iter().map(Device::from).collect()
}

/// The model slot as a front end sees it (`current_model` in the app).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    pub state: ModelPhase,
    pub model_id: Option<String>,
    pub name: Option<String>,
    /// The context the loaded model was given (tokens), once ready.
    pub context_size: Option<usize>,
    /// While loading: the fraction read so far (0..=1).
    pub load_fraction: Option<f64>,
    /// The device the loaded model runs on, once ready.
    pub device: Option<Device>,
    /// The CPU threads the loaded model runs on, once ready.
    pub threads: Option<usize>,
    /// Whether the loaded model reads images (it was loaded with its vision projector).
    pub reads_images: bool,
    /// Why the last load failed.
    pub error: Option<HearthError>,
    /// For a remote model: its server's address (it runs there, not here).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub remote_url: Option<String>,
}

/// The loaded model. Invariant: at most one model is in memory; `Loading` holds none (the old
/// one was dropped when the load began).
enum Slot {
    None,
    Loading {
        id: String,
        name: String,
        fraction: f64,
    },
    /// `engine` is the session's own, kept here so settings can reach it while a reply holds
    /// the session's lock.
    Ready {
        id: String,
        name: String,
        engine: Arc<engine::session::Engine>,
        session: Arc<Mutex<Session>>,
        /// The vision tower, for a model installed with its projector (mmproj).
        vision: Option<Arc<crate::turn_inputs::Vision>>,
    },
    Failed {
        id: String,
        name: String,
        error: HearthError,
    },
    /// A model on another machine's server (see [`crate::remote`]): nothing in memory here.
    Remote {
        id: String,
        name: String,
        client: Arc<RemoteClient>,
    },
}

/// What a turn generates with: the loaded model's session, or a remote model's client.
#[derive(Clone)]
pub(crate) enum Loaded {
    Local(Arc<Mutex<Session>>),
    Remote(Arc<RemoteClient>),
}

/// The reply being generated. Invariant: present from the moment a turn is accepted until its
/// thread has stored the reply's final state (a drop guard clears it even if that thread
/// panics), so `busy` never outlives the turn.
struct Running {
    /// The conversation a chat turn streams in; `None` for a raw completion (API, summaries).
    conversation_id: Option<ConversationId>,
    /// Identifies this turn (several turns of one conversation follow each other).
    cancel: Arc<AtomicBool>,
    /// Set by [`Runtime::stop`], so a stopped reply is kept as a finished message.
    stopped_by_user: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// A chat turn's place at the head of the [`queue`]: API requests wait behind it, and it
    /// is freed with this slot. `None` for a raw completion (a queued one holds its own).
    _queue_turn: Option<QueueTurn>,
}

struct Inner {
    store: Store,
    data_dir: PathBuf,
    rt: Handle,
    chat: ChatService,
    slot: Mutex<Slot>,
    running: Mutex<Option<Running>>,
    /// The longest reply a turn asks for ([`MAX_REPLY_TOKENS`] unless a front end sets less).
    reply_limit: std::sync::atomic::AtomicUsize,
    /// The line of generations waiting for the model (see [`queue`]).
    queue: Arc<GenerationQueue>,
    /// The memory loads are judged against instead of this machine's (`assume_memory`).
    assumed_memory: Mutex<Option<crate::models::fit::Memory>>,
    /// The last prompt speed measured in a completion (tokens/s), with the model it ran on:
    /// a long read measures it part by part, so a cancelled one counts too.
    prompt_speed: Mutex<Option<(String, f64)>>,
}

/// See the module docs.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// A poisoned lock only means a thread panicked while holding it; these are plain slots whose
/// every write is a single assignment, so the data is consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runtime {
    /// `rt` runs the store's queries; the runtime must not be driven from a thread that is
    /// blocked inside `rt` (turns and loads block on it from their own threads).
    pub fn new(store: Store, data_dir: PathBuf, rt: Handle) -> Self {
        Self {
            inner: Arc::new(Inner {
                chat: ChatService::new(store.clone(), rt.clone()),
                store,
                data_dir,
                rt,
                slot: Mutex::new(Slot::None),
                running: Mutex::new(None),
                reply_limit: std::sync::atomic::AtomicUsize::new(MAX_REPLY_TOKENS),
                queue: GenerationQueue::new(queue::DEFAULT_QUEUE_CAPACITY),
                assumed_memory: Mutex::new(None),
                prompt_speed: Mutex::new(None),
            }),
        }
    }

    /// Caps the length of every later reply (at least one token).
    pub fn set_reply_limit(&self, tokens: usize) {
        self.inner.reply_limit.store(tokens.max(1), Ordering::Relaxed);
    }

    /// Judges every later load against `memory` instead of measuring this machine's (tests: a
    /// machine of any size).
    #[doc(hidden)]
    pub fn assume_memory(&self, memory: crate::models::fit::Memory) {
        *lock(&self.inner.assumed_memory) = Some(memory);
    }

    /// The last prompt speed (tokens/s) a completion measured on model `model_id` since this
    /// runtime started, if any: read parts of a cancelled run count.
    pub fn prompt_speed(&self, model_id: &str) -> Option<f64> {
        lock(&self.inner.prompt_speed).as_ref().filter(|(id, _)| id == model_id).map(|(_, s)| *s)
    }

    /// Keeps `tokens_per_s` as the loaded model's prompt speed (see `prompt_speed`).
    fn note_prompt_speed(&self, tokens_per_s: f64) {
        if !(tokens_per_s.is_finite() && tokens_per_s > 0.0) {
            return;
        }
        if let Slot::Ready { id, .. } = &*lock(&self.inner.slot) {
            *lock(&self.inner.prompt_speed) = Some((id.clone(), tokens_per_s));
        }
    }

    /// The line in front of the model, shared by every front end that queues instead of
    /// being refused with `busy`.
    pub fn queue(&self) -> &Arc<GenerationQueue> {
        &self.inner.queue
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The model slot now.
    pub fn status(&self) -> ModelStatus {
        let slot = lock(&self.inner.slot);
        let none = ModelStatus {
            state: ModelPhase::None,
            model_id: None,
            name: None,
            context_size: None,
            load_fraction: None,
            device: None,
            threads: None,
            reads_images: false,
            error: None,
            remote_url: None,
        };
        match &*slot {
            Slot::None => none,
            Slot::Loading { id, name, fraction } => ModelStatus {
                state: ModelPhase::Loading,
                model_id: Some(id.clone()),
                name: Some(name.clone()),
                load_fraction: Some(*fraction),
                ..none
            },
            Slot::Ready { id, name, engine, session, vision } => ModelStatus {
                state: ModelPhase::Ready,
                reads_images: vision.is_some(),
                model_id: Some(id.clone()),
                name: Some(name.clone()),
                device: Some(engine.device_kind().into()),
                threads: Some(engine.threads()),
                // A reply holds the session's lock while it streams; the context is fixed at
                // load, so asking again later gives the same answer.
                context_size: session.try_lock().map(|s| s.context()).ok(),
                ..none
            },
            Slot::Failed { id, name, error } => ModelStatus {
                state: ModelPhase::Error,
                model_id: Some(id.clone()),
                name: Some(name.clone()),
                error: Some(error.clone()),
                ..none
            },
            Slot::Remote { id, name, client } => ModelStatus {
                state: ModelPhase::Ready,
                model_id: Some(id.clone()),
                name: Some(name.clone()),
                remote_url: Some(client.remote().url.clone()),
                ..none
            },
        }
    }

    /// The loaded model's id and what generates with it, or `no_model` (`busy` while one
    /// loads).
    fn loaded(&self) -> HearthResult<(String, Loaded)> {
        match &*lock(&self.inner.slot) {
            Slot::Ready { id, session, .. } => Ok((id.clone(), Loaded::Local(session.clone()))),
            Slot::Remote { id, client, .. } => Ok((id.clone(), Loaded::Remote(client.clone()))),
            Slot::Loading { .. } => Err(HearthError::busy()),
            Slot::None | Slot::Failed { .. } => Err(HearthError::no_model()),
        }
    }

    /// The loaded model's id and session, or `no_model` (`busy` while one loads). Work that
    /// needs the tokenizer (token counts, document plans) is refused for a remote model.
    fn session(&self) -> HearthResult<(String, Arc<Mutex<Session>>)> {
        match self.loaded()? {
            (id, Loaded::Local(session)) => Ok((id, session)),
            (id, Loaded::Remote(client)) => Err(HearthError::new(
                ErrorCode::InvalidMessage,
                format!("{id} runs on {}: this needs a model loaded on this computer", client.remote().url),
            )
            .with(crate::error::ErrorDetails::model(id))),
        }
    }

    /// The loaded model's vision tower, if it reads images.
    fn vision(&self) -> Option<Arc<crate::turn_inputs::Vision>> {
        match &*lock(&self.inner.slot) {
            Slot::Ready { vision, .. } => vision.clone(),
            _ => None,
        }
    }

    /// How many images the loaded model's vision tower has encoded since it was loaded (each a
    /// miss of the on-disk cache of encodings); 0 without one.
    pub fn image_encodes(&self) -> usize {
        self.vision().map_or(0, |v| v.encodes())
    }

    /// Validates and stores a settings patch, and makes it take effect without a restart:
    /// threads at once on the loaded model; a new device or context by loading the model
    /// again in the background (unless a reply streams: then at the next load).
    pub async fn update_settings(&self, patch: &serde_json::Value) -> HearthResult<crate::app_api::AppSettings> {
        let before = crate::app_api::AppSettings::load(&self.inner.store).await?;
        let after = crate::app_api::AppSettings::update(&self.inner.store, patch).await?;
        let engine = match &*lock(&self.inner.slot) {
            Slot::Ready { id, engine, .. } => Some((id.clone(), engine.clone())),
            _ => None,
        };
        let Some((model_id, engine)) = engine else { return Ok(after) };
        if after.threads != before.threads {
            let n = after.threads.map(|t| t.max(1) as usize).unwrap_or_else(engine::device::default_threads);
            engine.set_threads(n)?;
            log::info!("the model now runs on {n} threads");
        }
        if (after.device != before.device || after.context_size != before.context_size) && !self.is_generating() {
            let model = self.installed(&model_id).await?;
            self.begin_load(&model)?;
            let me = self.clone();
            self.inner.rt.spawn(async move {
                if let Err(e) = me.finish_load(model, |_| {}).await {
                    log::warn!("reloading with the new settings failed: {e}");
                }
            });
        }
        Ok(after)
    }

    /// Whether a reply streams in `conversation_id` right now.
    pub fn is_streaming(&self, conversation_id: ConversationId) -> bool {
        lock(&self.inner.running).as_ref().is_some_and(|r| r.conversation_id == Some(conversation_id))
    }

    /// Whether any reply streams right now.
    pub fn is_generating(&self) -> bool {
        lock(&self.inner.running).is_some()
    }

    /// Refuses with `model_in_use` while `model_id` is loaded or loading.
    pub fn ensure_not_in_use(&self, model_id: &str) -> HearthResult<()> {
        let in_use = matches!(&*lock(&self.inner.slot),
            Slot::Ready { id, .. } | Slot::Loading { id, .. } | Slot::Remote { id, .. } if id == model_id);
        if in_use {
            return Err(HearthError::new(ErrorCode::ModelInUse, format!("{model_id} is loaded"))
                .with(crate::error::ErrorDetails::model(model_id)));
        }
        Ok(())
    }

    /// Deletes a conversation; refused with `busy` while a reply streams in it.
    pub async fn delete_conversation(&self, conversation_id: ConversationId) -> HearthResult<()> {
        if self.is_streaming(conversation_id) {
            return Err(HearthError::busy());
        }
        Ok(self.inner.store.delete_conversation(conversation_id).await?)
    }

    /// Removes an installed model (and the files Hearth put on disk); refused while loaded.
    pub async fn remove_model(&self, model_id: &str) -> HearthResult<()> {
        self.ensure_not_in_use(model_id)?;
        crate::models::remove(&self.inner.store, &self.inner.data_dir, model_id, true).await?;
        Ok(())
    }

    /// Asks the reply in `conversation_id` to stop; it is kept as a finished message. Stopping
    /// a reply that already ended is not an error: the click and the end can cross.
    pub fn stop(&self, conversation_id: ConversationId) {
        if let Some(r) = lock(&self.inner.running).as_ref().filter(|r| r.conversation_id == Some(conversation_id)) {
            r.stopped_by_user.store(true, Ordering::SeqCst);
            r.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Cancels the running reply and waits up to `wait` for its thread to store it (as
    /// interrupted), so a quitting app leaves no reply marked `streaming`.
    pub fn shutdown(&self, wait: Duration) {
        let running = lock(&self.inner.running).take();
        if let Some(mut r) = running {
            r.cancel.store(true, Ordering::SeqCst);
            if let Some(t) = r.thread.take() {
                let deadline = Instant::now() + wait;
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        }
    }

    /// How many tokens `messages` (a conversation's active branch, after its system prompt) take
    /// in the loaded model's context, by its own template and tokenizer, images' soft tokens
    /// included for a model that reads them; 0 with no model, or while a reply holds the session
    /// (front ends ask again after it ends). Takes the messages the caller already read, so
    /// listing a conversation reads it once. `pan_scan`: the crop rule turns read images with
    /// (`AppSettings::pan_scan_rule`), so the crops a turn cut count too.
    pub fn context_tokens(
        &self,
        system_prompt: Option<&str>,
        messages: &[crate::store::Message],
        pan_scan: Option<&engine::vision::preprocess::PanScan>,
    ) -> usize {
        let Ok((_, session)) = self.session() else { return 0 };
        let vision = self.vision();
        let Ok(s) = session.try_lock() else { return 0 };
        crate::turn_inputs::history_tokens(&s, vision.as_deref(), pan_scan, system_prompt, messages).unwrap_or(0)
    }

    /// The installed model `model_id`, or `not_found`.
    pub async fn installed(&self, model_id: &str) -> HearthResult<InstalledModel> {
        crate::models::registry::get(&self.inner.store, model_id).await?.ok_or_else(|| {
            HearthError::not_found("model", model_id).with(crate::error::ErrorDetails {
                field: Some("model".into()),
                ..crate::error::ErrorDetails::model(model_id)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_runtime_has_no_model_and_refuses_turns_with_no_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let rt = Runtime::new(store.clone(), dir.path().to_path_buf(), Handle::current());
        assert_eq!(rt.status().state, ModelPhase::None);
        let conv = store.create_conversation(&Default::default()).await.unwrap();
        let e = rt.send(conv.id, "hello".into(), Vec::new(), |_| {}).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NoModel);
        assert!(!rt.is_generating());
        assert_eq!(rt.context_tokens(None, &store.messages(conv.id).await.unwrap(), None), 0);
        rt.ensure_not_in_use("anything").unwrap();
    }
}
