//! Downloads of catalog models running in the background, for the desktop app: at most one per
//! catalog id (different models may download at once), each on its own task, with progress
//! reported through a callback, cancel (the partial file stays), resume, and the state of every
//! download (running, paused, failed) — including a partial file left by an earlier run, so the
//! catalog can offer to resume it after a restart.
//!
//! The transfer itself is [`super::install`], the same path `hearth models download` takes: the
//! Hub download (HTTP Range resume, sha256 check, free-disk check), the GGUF check and the
//! registration of the installed model.
//!
//! A small marker in `<data dir>/downloads/<catalog id>.json` names the file and its sha256 while
//! a download is unfinished: the Hub cache keeps a partial as `blobs/<sha256>.incomplete`, and the
//! marker is how a later run finds it without the network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, CatalogEntry};
use super::hub::{CancelToken, DownloadEvent, FileRequest, Hub, HubConfig};
use super::registry::{self, InstalledModel};
use super::ModelsError;
use crate::store::Store;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What can go wrong with an app download, in the cases a user can act on. Clone, so the same
/// error can be kept as the download's state and sent to the listener.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("{id} is already downloading")]
    Busy { id: String },

    #[error("no catalog model '{id}'")]
    UnknownModel { id: String },

    #[error("{detail}. Check the internet connection, then resume the download: it continues where it stopped.")]
    Network { detail: String },

    #[error("{repo} is gated: Hugging Face refused access (HTTP {status}). {}",
        if *has_token { "Your Hugging Face token was sent: accept the model's licence on its Hugging Face page with that account, or check that the token is still valid." }
        else { "Accept the model's licence on its Hugging Face page, then add a Hugging Face read token and try again." })]
    Gated { repo: String, status: u16, has_token: bool },

    #[error("not found on Hugging Face (HTTP 404): {repo}/{file}")]
    NotFound { repo: String, file: String },

    #[error("{file} failed verification (sha256 {actual} instead of {expected}); the corrupt file was discarded, download it again")]
    Checksum { file: String, expected: String, actual: String },

    #[error("not enough free disk space in {}: {} needed, {} available", path.display(), mib(*needed), mib(*available))]
    DiskFull { path: PathBuf, needed: u64, available: u64 },

    /// Anything else (file system, an invalid model file, the registry): the message says what.
    #[error("{0}")]
    Other(String),
}

impl From<ModelsError> for DownloadError {
    fn from(e: ModelsError) -> Self {
        match e {
            ModelsError::UnknownCatalogId { id, .. } => DownloadError::UnknownModel { id },
            ModelsError::AlreadyDownloading { file } => DownloadError::Busy { id: file },
            ModelsError::Unauthorized { repo, status, has_token } => DownloadError::Gated { repo, status, has_token },
            ModelsError::NotFound { repo, file } => DownloadError::NotFound { repo, file },
            ModelsError::ShaMismatch { file, expected, actual } => DownloadError::Checksum { file, expected, actual },
            ModelsError::DiskFull { path, needed, available } => DownloadError::DiskFull { path, needed, available },
            ModelsError::Io { ref source, .. } if is_disk_full(source) => {
                DownloadError::DiskFull { path: io_path(&e), needed: 0, available: 0 }
            }
            e @ (ModelsError::Network { .. }
            | ModelsError::Timeout { .. }
            | ModelsError::Interrupted { .. }
            | ModelsError::Http { .. }
            | ModelsError::BadResponse { .. }
            | ModelsError::SizeMismatch { .. }) => DownloadError::Network { detail: e.to_string() },
            e => DownloadError::Other(e.to_string()),
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) // ENOSPC
}

fn io_path(e: &ModelsError) -> PathBuf {
    match e {
        ModelsError::Io { path, .. } => path.clone(),
        _ => PathBuf::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadState {
    Running,
    /// Cancelled, or left unfinished by an earlier run: a resume continues the partial file.
    Paused,
    Failed,
}

/// Where a download stands (what the catalog shows).
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadStatus {
    pub state: DownloadState,
    pub bytes: u64,
    pub total: u64,
    /// Why it failed, when `state` is `Failed`.
    pub error: Option<DownloadError>,
}

/// What a running download reports, in order: progress (throttled), then exactly one of
/// `Done`, `Cancelled` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadUpdate {
    Progress { bytes: u64, total: u64, bytes_per_sec: f64, eta_secs: Option<f64> },
    Done { model: InstalledModel },
    Cancelled { bytes: u64, total: u64 },
    Failed { error: DownloadError },
}

impl DownloadUpdate {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, DownloadUpdate::Progress { .. })
    }
}

pub type UpdateSink = Box<dyn FnMut(DownloadUpdate) + Send + 'static>;

/// The on-disk note of an unfinished download.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    repo: String,
    file: String,
    sha256: String,
    total: u64,
}

struct Job {
    status: DownloadStatus,
    /// Present while running.
    cancel: Option<CancelToken>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Inner {
    store: Store,
    data_dir: PathBuf,
    /// A fixed catalog (tests); otherwise the data dir's catalog is read at each start.
    catalog: Option<Catalog>,
    /// A fixed Hub configuration (tests); otherwise `HubConfig::from_env` at each start, so a
    /// token added while the app runs is used by the next download.
    hub_config: Option<HubConfig>,
    progress_interval: Duration,
    jobs: Mutex<HashMap<String, Job>>,
}

/// The app's downloads. Cheap to clone; clones share the downloads.
#[derive(Clone)]
pub struct DownloadManager {
    inner: Arc<Inner>,
}

fn lock(m: &Mutex<HashMap<String, Job>>) -> MutexGuard<'_, HashMap<String, Job>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DownloadManager {
    /// Downloads of the data dir's catalog into the Hugging Face cache `HubConfig::from_env`
    /// names; installed models are registered in `store`.
    pub fn new(store: Store, data_dir: &Path) -> Self {
        Self::build(store, data_dir, None, None)
    }

    /// With a fixed catalog and Hub configuration (tests, other endpoints).
    pub fn with_config(store: Store, data_dir: &Path, catalog: Catalog, hub_config: HubConfig) -> Self {
        Self::build(store, data_dir, Some(catalog), Some(hub_config))
    }

    fn build(store: Store, data_dir: &Path, catalog: Option<Catalog>, hub_config: Option<HubConfig>) -> Self {
        DownloadManager {
            inner: Arc::new(Inner {
                store,
                data_dir: data_dir.to_path_buf(),
                catalog,
                hub_config,
                progress_interval: Duration::from_millis(250),
                jobs: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Progress updates at most this often (default 250 ms).
    pub fn with_progress_interval(mut self, every: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.progress_interval = every;
        }
        self
    }

    fn catalog(&self) -> Result<Catalog, ModelsError> {
        match &self.inner.catalog {
            Some(c) => Ok(c.clone()),
            None => Catalog::load(&self.inner.data_dir),
        }
    }

    fn hub_config(&self) -> HubConfig {
        self.inner.hub_config.clone().unwrap_or_else(|| HubConfig::from_env(&self.inner.data_dir))
    }

    fn marker_path(&self, id: &str) -> PathBuf {
        self.inner.data_dir.join("downloads").join(format!("{id}.json"))
    }

    /// Starts downloading catalog model `id` (its recommended variant, and the projector a vision
    /// model has, with `catalog::IMAGE_INPUT` on) on a task of the current Tokio runtime, and returns at once. Refused
    /// with [`DownloadError::Busy`] while that model is already downloading. A partial file from
    /// an earlier attempt is continued, not started over.
    pub fn start(&self, id: &str, on_update: UpdateSink) -> Result<(), DownloadError> {
        let catalog = self.catalog()?;
        let entry = catalog.get(id)?.clone();
        let id = entry.id.clone();
        let cancel = CancelToken::new();
        let mut jobs = lock(&self.inner.jobs);
        let previous = jobs.get(&id).map(|j| (j.status.state, j.status.bytes, j.status.total));
        if let Some((DownloadState::Running, ..)) = previous {
            return Err(DownloadError::Busy { id });
        }
        let (bytes, total) = previous.map(|(_, b, t)| (b, t)).unwrap_or((0, entry.recommended_variant().size_bytes));
        jobs.insert(
            id.clone(),
            Job {
                status: DownloadStatus { state: DownloadState::Running, bytes, total, error: None },
                cancel: Some(cancel.clone()),
                task: None,
            },
        );
        let this = self.clone();
        let task_id = id.clone();
        // Spawned while the lock is held: the task's first touch of `jobs` waits until its
        // handle is stored.
        let task = tokio::spawn(async move { this.run(task_id, entry, cancel, on_update).await });
        if let Some(j) = jobs.get_mut(&id) {
            j.task = Some(task);
        }
        Ok(())
    }

    /// Continues a paused or failed download (the same as [`Self::start`]: the Hub download
    /// always continues a partial file).
    pub fn resume(&self, id: &str, on_update: UpdateSink) -> Result<(), DownloadError> {
        self.start(id, on_update)
    }

    /// Cancels a running download; its listener then gets `Cancelled` and the partial file
    /// stays for a resume. False when that model was not downloading.
    pub fn cancel(&self, id: &str) -> bool {
        let jobs = lock(&self.inner.jobs);
        let job = jobs.iter().find(|(k, _)| k.eq_ignore_ascii_case(id)).map(|(_, j)| j);
        match job.and_then(|j| j.cancel.as_ref()) {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every running download and waits (up to `wait`) until each has stopped writing,
    /// so quitting keeps clean partial files.
    pub async fn shutdown(&self, wait: Duration) {
        let tasks: Vec<_> = {
            let mut jobs = lock(&self.inner.jobs);
            jobs.values_mut()
                .filter_map(|j| {
                    j.cancel.as_ref()?.cancel();
                    j.task.take()
                })
                .collect()
        };
        let _ = tokio::time::timeout(wait, futures_util::future::join_all(tasks)).await;
    }

    /// Where catalog model `id`'s download stands: a download of this run, else a partial file
    /// left by an earlier one (`Paused`), else `None` (never started, or finished).
    pub async fn status(&self, id: &str) -> Option<DownloadStatus> {
        if let Some(j) = lock(&self.inner.jobs).get(id) {
            return Some(j.status.clone());
        }
        let catalog = self.catalog().ok()?;
        let entry = catalog.get(id).ok()?;
        self.leftover(entry).await
    }

    /// A partial file of `entry` from an earlier run, found through its marker, or through the
    /// catalog's pinned sha256 (a download the CLI left unfinished).
    async fn leftover(&self, entry: &CatalogEntry) -> Option<DownloadStatus> {
        let variant = entry.recommended_variant();
        let marker_path = self.marker_path(&entry.id);
        let marker = std::fs::read(&marker_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
            .filter(|m| m.repo == variant.repo && m.file == variant.file);
        let (sha, total) = match (&marker, &variant.sha256) {
            (Some(m), _) => (m.sha256.clone(), m.total),
            (None, Some(pinned)) => (pinned.to_ascii_lowercase(), variant.size_bytes),
            (None, None) => return None,
        };
        let installed = registry::get(&self.inner.store, &entry.installed_id(variant)).await.ok().flatten();
        let hub = Hub::new(self.hub_config()).ok()?;
        let partial = hub.partial_path(&FileRequest::new(&variant.repo, &variant.file), &sha);
        match std::fs::metadata(&partial) {
            Ok(md) if installed.is_none() => {
                Some(DownloadStatus { state: DownloadState::Paused, bytes: md.len().min(total), total, error: None })
            }
            _ => {
                // Finished, removed or installed since: the marker has nothing left to say.
                if marker.is_some() {
                    let _ = std::fs::remove_file(&marker_path);
                }
                None
            }
        }
    }

    fn set_status(&self, id: &str, f: impl FnOnce(&mut DownloadStatus)) {
        if let Some(j) = lock(&self.inner.jobs).get_mut(id) {
            f(&mut j.status);
        }
    }

    async fn run(self, id: String, entry: CatalogEntry, cancel: CancelToken, mut on_update: UpdateSink) {
        let result = self.download(&id, &entry, &cancel, &mut on_update).await;
        let update = {
            let mut jobs = lock(&self.inner.jobs);
            match result {
                Ok(model) => {
                    jobs.remove(&id);
                    let _ = std::fs::remove_file(self.marker_path(&id));
                    DownloadUpdate::Done { model }
                }
                Err(ModelsError::Cancelled { downloaded, .. }) => {
                    let job = jobs.get_mut(&id);
                    // Progress lags the file by up to 100 ms; the cancel knows the exact count.
                    let (bytes, total) =
                        job.as_ref().map(|j| (j.status.bytes.max(downloaded), j.status.total)).unwrap_or_default();
                    if let Some(j) = job {
                        (j.status.state, j.status.bytes, j.cancel) = (DownloadState::Paused, bytes, None);
                    }
                    DownloadUpdate::Cancelled { bytes, total }
                }
                Err(e) => {
                    let error = DownloadError::from(e);
                    log::warn!("download of {id} failed: {error}");
                    if let Some(j) = jobs.get_mut(&id) {
                        (j.status.state, j.status.error, j.cancel) = (DownloadState::Failed, Some(error.clone()), None);
                    }
                    DownloadUpdate::Failed { error }
                }
            }
        };
        // After the state changed: a listener that resumes on `Cancelled` is not refused as busy.
        on_update(update);
    }

    async fn download(
        &self,
        id: &str,
        entry: &CatalogEntry,
        cancel: &CancelToken,
        on_update: &mut UpdateSink,
    ) -> Result<InstalledModel, ModelsError> {
        let hub = Hub::new(self.hub_config())?;
        let variant = entry.recommended_variant();
        let req =
            FileRequest { expected_sha256: variant.sha256.clone(), ..FileRequest::new(&variant.repo, &variant.file) };
        // One HEAD first: the file's size and sha256 (the name of its partial file in the cache)
        // go into the marker, so a later run finds the partial without the network.
        let info = hub.file_info(&req).await?;
        let sha = req.expected_sha256.clone().or(info.sha256.clone());
        if let Some(sha256) = sha {
            let marker = Marker { repo: variant.repo.clone(), file: variant.file.clone(), sha256, total: info.size };
            let path = self.marker_path(id);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(ModelsError::io("cannot create", dir))?;
            }
            let json = serde_json::to_vec(&marker).map_err(|e| ModelsError::Catalog(e.to_string()))?;
            std::fs::write(&path, json).map_err(ModelsError::io("cannot write", &path))?;
        }
        self.set_status(id, |s| s.total = info.size);

        let mmproj_total = entry.mmproj_for(variant).map(|f| f.size_bytes).unwrap_or(0);
        let mut progress = Progress::new(info.size, mmproj_total, self.inner.progress_interval);
        let mut on_event = |e: &DownloadEvent| {
            if let Some((bytes, total)) = progress.account(e) {
                self.set_status(id, |s| (s.bytes, s.total) = (bytes, total));
                if let Some(update) = progress.update(e, bytes, total) {
                    on_update(update);
                }
            }
        };
        super::install(&self.inner.store, &hub, entry, None, true, &mut on_event, cancel).await
    }
}

/// Sums the files of one install (model, then projector) into one byte count, and throttles.
struct Progress {
    /// Bytes of the files already finished.
    done_files: u64,
    /// The current file's size and bytes so far.
    current_total: u64,
    current: u64,
    /// Estimated size of the file still to come (a vision model's projector).
    pending: u64,
    every: Duration,
    last: Option<Instant>,
}

impl Progress {
    fn new(model_total: u64, mmproj_total: u64, every: Duration) -> Self {
        Progress { done_files: 0, current_total: model_total, current: 0, pending: mmproj_total, every, last: None }
    }

    /// The overall (bytes, total) after `e`.
    fn account(&mut self, e: &DownloadEvent) -> Option<(u64, u64)> {
        match e {
            DownloadEvent::Started { total, resumed_from, .. } => {
                (self.current_total, self.current) = (*total, *resumed_from)
            }
            DownloadEvent::Progress { downloaded, total, .. } => {
                (self.current, self.current_total) = (*downloaded, *total)
            }
            DownloadEvent::Finished { .. } => {
                // (A file found complete in the cache sends Finished without Started.)
                self.done_files += self.current_total;
                (self.current, self.current_total, self.pending) = (0, self.pending, 0);
            }
            _ => return None,
        }
        Some((self.done_files + self.current, self.done_files + self.current_total + self.pending))
    }

    fn update(&mut self, e: &DownloadEvent, bytes: u64, total: u64) -> Option<DownloadUpdate> {
        let DownloadEvent::Progress { bytes_per_sec, eta_secs, .. } = e else { return None };
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return None;
        }
        self.last = Some(Instant::now());
        let eta = (*bytes_per_sec > 0.0).then(|| (total.saturating_sub(bytes)) as f64 / bytes_per_sec).or(*eta_secs);
        Some(DownloadUpdate::Progress { bytes, total, bytes_per_sec: *bytes_per_sec, eta_secs: eta })
    }
}
