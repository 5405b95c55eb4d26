//! What the shell holds between commands: the runtime (which owns the store, the loaded model
//! and the running reply) and the model downloads. No rules live here.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hearth::models::DownloadManager;
use hearth::runtime::Runtime;
use hearth::server::embedded::Embedded;
use hearth::store::Store;

pub struct AppState {
    pub runtime: Runtime,
    /// Model downloads running in the background (several models at once, one each).
    pub downloads: DownloadManager,
    /// The local OpenAI-compatible API server (Settings → Local API server), over `runtime`.
    pub server: Embedded,
    /// The runtime the store runs on, for shutting down from the event loop.
    pub rt: tokio::runtime::Handle,
    /// The running document summary's cancel flag (one generation runs at a time).
    pub summary_cancel: Mutex<Option<Arc<AtomicBool>>>,
}

impl AppState {
    pub fn new(runtime: Runtime, rt: tokio::runtime::Handle) -> Self {
        Self {
            downloads: DownloadManager::new(runtime.store().clone(), runtime.data_dir()),
            server: Embedded::new(runtime.clone()),
            runtime,
            rt,
            summary_cancel: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &Store {
        self.runtime.store()
    }
}
