//! A runtime over a fresh data folder with the real test model installed, and a way to watch a
//! turn's events from the test thread.

use std::sync::mpsc;
use std::time::Duration;

use hearth::models::registry::{self, InstalledModel, Source};
use hearth::runtime::{ReplyStats, Runtime, TurnEvent};
use hearth::store::Store;

pub const MODEL_ID: &str = "m270";

pub struct Fixture {
    pub tokio: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub runtime: Runtime,
}

pub fn installed(id: &str, path: std::path::PathBuf) -> InstalledModel {
    InstalledModel {
        id: id.into(),
        display_name: format!("Model {id}"),
        repo: None,
        file: "model.gguf".into(),
        quant: None,
        size_bytes: 0,
        sha256: None,
        path,
        mmproj_path: None,
        source: Source::Import,
        added_at: registry::now_ms(),
    }
}

impl Fixture {
    /// Greedy sampling, a 512-token context, replies of at most `reply_limit` tokens.
    pub fn new(reply_limit: usize) -> Self {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = tokio.block_on(Store::open(dir.path())).unwrap();
        tokio.block_on(registry::insert(&store, &installed(MODEL_ID, super::test_model()), false)).unwrap();
        tokio
            .block_on(hearth::app_api::AppSettings::update(
                &store,
                &serde_json::json!({"contextSize": 512, "temperature": 0.0, "seed": 1}),
            ))
            .unwrap();
        let runtime = Runtime::new(store.clone(), dir.path().to_path_buf(), tokio.handle().clone());
        runtime.set_reply_limit(reply_limit);
        Self { tokio, dir, store, runtime }
    }

    pub fn load(&self) -> hearth::error::HearthResult<hearth::runtime::ModelStatus> {
        self.tokio.block_on(self.runtime.load(MODEL_ID, |_| {}))
    }
}

/// Events of one turn, sent from the turn's thread.
pub struct Events {
    pub rx: mpsc::Receiver<TurnEvent>,
}

pub fn events() -> (impl FnMut(TurnEvent) + Send + 'static, Events) {
    let (tx, rx) = mpsc::channel();
    (move |e| drop(tx.send(e)), Events { rx })
}

impl Events {
    /// The streamed text and the terminal event.
    pub fn finish(&self) -> (String, TurnEvent) {
        let mut text = String::new();
        loop {
            match self.rx.recv_timeout(Duration::from_secs(120)).expect("the turn never ended") {
                TurnEvent::Token { text: t } => text.push_str(&t),
                end => return (text, end),
            }
        }
    }

    pub fn done(&self) -> (String, ReplyStats) {
        match self.finish() {
            (text, TurnEvent::Done { stats }) => (text, stats),
            (_, other) => panic!("expected done, got {other:?}"),
        }
    }
}

/// A turn's event sink that holds the turn's thread at its first event until the test calls
/// [`Gate::release`], so the test can check what holds while a reply certainly streams.
pub struct Gate {
    first: mpsc::Receiver<()>,
    go: mpsc::Sender<()>,
}

impl Gate {
    /// Waits until the turn has reached its first event.
    pub fn reached(&self) {
        self.first.recv_timeout(Duration::from_secs(60)).expect("the turn never produced an event");
    }

    /// Lets the turn go on.
    pub fn release(&self) {
        self.go.send(()).unwrap();
    }
}

pub fn gated_events() -> (impl FnMut(TurnEvent) + Send + 'static, Events, Gate) {
    let (mut sink, ev) = events();
    let (first_tx, first) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let mut waited = false;
    let gated = move |e: TurnEvent| {
        if !waited {
            waited = true;
            first_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        }
        sink(e)
    };
    (gated, ev, Gate { first, go })
}
