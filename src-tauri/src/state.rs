//! What the shell holds between commands: the store, the one loaded model, and the one running
//! generation. Locks are std mutexes held only for quick reads and swaps, never across an await
//! or a model call (the session has its own lock, taken by the generation thread).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::session::Session;
use hearth::chat::ChatService;
use hearth::models::DownloadManager;
use hearth::store::{ConversationId, Store};

use crate::dto::{ErrorPayload, ModelState};
use crate::error::{AppError, AppResult};

/// The loaded model. Only one exists at a time: loading another drops this one first.
pub enum ModelSlot {
    None,
    /// `fraction`: how much of the model is read (0..=1), for a window that did not start the
    /// load and so has no progress channel (the start-up reload).
    Loading { id: String, name: String, fraction: f64 },
    Ready { id: String, name: String, session: Arc<Mutex<Session>> },
    Failed { id: String, name: String, error: AppError },
}

impl ModelSlot {
    pub fn state(&self) -> ModelState {
        let mut load_fraction = None;
        let (state, id, name, ctx, error) = match self {
            ModelSlot::None => ("none", None, None, None, None),
            ModelSlot::Loading { id, name, fraction } => {
                load_fraction = Some(*fraction);
                ("loading", Some(id), Some(name), None, None)
            }
            ModelSlot::Ready { id, name, session } => {
                let ctx = session.try_lock().map(|s| s.context()).ok();
                ("ready", Some(id), Some(name), ctx, None)
            }
            ModelSlot::Failed { id, name, error } => ("error", Some(id), Some(name), None, Some(error)),
        };
        ModelState {
            state,
            model_id: id.cloned(),
            name: name.cloned(),
            context_size: ctx,
            load_fraction,
            error: error.map(|e| ErrorPayload { code: e.code, message: e.message.clone() }),
        }
    }
}

/// The reply being generated, if any.
pub struct Running {
    pub conversation_id: ConversationId,
    pub cancel: Arc<AtomicBool>,
    /// Set by `stop_generation`, so the stopped reply is kept as a finished message.
    pub stopped_by_user: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
}

pub struct AppState {
    pub store: Store,
    pub data_dir: PathBuf,
    pub chat: ChatService,
    /// The runtime the store runs on, for the generation thread's store calls.
    pub rt: tokio::runtime::Handle,
    /// Shared with the loading thread, which writes its progress into `Loading`.
    pub model: Arc<Mutex<ModelSlot>>,
    pub generation: Mutex<Option<Running>>,
    /// Model downloads running in the background (several models at once, one each).
    pub downloads: DownloadManager,
}

/// A poisoned lock only means a thread panicked while holding it; the data is a plain slot.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    pub fn new(store: Store, data_dir: PathBuf, rt: tokio::runtime::Handle) -> Self {
        Self {
            chat: ChatService::new(store.clone(), rt.clone()),
            downloads: DownloadManager::new(store.clone(), &data_dir),
            rt,
            store,
            data_dir,
            model: Arc::new(Mutex::new(ModelSlot::None)),
            generation: Mutex::new(None),
        }
    }

    /// The loaded session, or `no_model`.
    pub fn session(&self) -> AppResult<(String, Arc<Mutex<Session>>)> {
        match &*lock(&self.model) {
            ModelSlot::Ready { id, session, .. } => Ok((id.clone(), session.clone())),
            _ => Err(AppError::no_model()),
        }
    }

    /// Clears the running slot if it still holds the generation with this cancel flag (a quit
    /// may already have taken it).
    pub fn finish_running(&self, cancel: &Arc<AtomicBool>) {
        let mut g = lock(&self.generation);
        if g.as_ref().is_some_and(|r| Arc::ptr_eq(&r.cancel, cancel)) {
            *g = None;
        }
    }

    /// Asks the running reply to stop and waits up to `wait` for its thread to store it, so a
    /// quitting app leaves no reply marked `streaming`.
    pub fn stop_all(&self, wait: Duration) {
        let running = lock(&self.generation).take();
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
}
