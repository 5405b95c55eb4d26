//! Downloads from the Hugging Face Hub into the standard Hugging Face cache, so other tools
//! share the files: `models--org--name/blobs/<etag>`, `snapshots/<commit>/<file>` (a relative
//! symlink to the blob) and `refs/<revision>`.
//!
//! hf-hub 0.4 supplies the cache location (HF_HOME), the repo folder naming and the token file;
//! it has no cancel, keeps whole chunks in memory and does not verify checksums, so the
//! transfer itself is our own streamed HTTP: resume with Range from `<etag>.incomplete`,
//! cancel, retries after a dropped connection, sha256 before the blob is accepted, and a
//! free-disk check before starting.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};
use reqwest::StatusCode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::catalog::is_sha256;
use super::token::HfToken;
use super::ModelsError;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to download.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// e.g. `https://huggingface.co`; HF_ENDPOINT overrides it in `from_env`.
    pub endpoint: String,
    /// The Hugging Face hub cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    pub token: Option<HfToken>,
    pub connect_timeout: Duration,
    /// Longest silence on an open connection before it counts as lost.
    pub read_timeout: Duration,
    /// Automatic resumes after a lost connection, before giving up.
    pub retries: u32,
    pub retry_backoff: Duration,
    /// Free disk space to leave over after the download.
    pub reserve_bytes: u64,
}

impl HubConfig {
    /// HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, and the token from `token::resolve(data_dir)`.
    pub fn from_env(data_dir: &Path) -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let cache_dir = match std::env::var("HF_HUB_CACHE") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => hf_cache_from_env(),
        };
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache_dir,
            token: super::token::resolve(data_dir),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            retry_backoff: Duration::from_secs(2),
            reserve_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `$HF_HOME/hub` or `~/.cache/huggingface/hub`. (hf-hub's `Cache::default()` panics without a
/// home directory; this does not.)
pub(crate) fn hf_cache_from_env() -> PathBuf {
    if std::env::var_os("HF_HOME").is_some() {
        return hf_hub::Cache::from_env().path().clone();
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("huggingface").join("hub"),
        None => std::env::temp_dir().join("huggingface").join("hub"),
    }
}

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub repo: String,
    pub file: String,
    pub revision: String,
    /// A pinned sha256 (from the catalog); otherwise the Hub's LFS sha256 is used.
    pub expected_sha256: Option<String>,
}

impl FileRequest {
    pub fn new(repo: &str, file: &str) -> Self {
        FileRequest { repo: repo.to_string(), file: file.to_string(), revision: "main".into(), expected_sha256: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DownloadEvent {
    Started {
        file: String,
        total: u64,
        resumed_from: u64,
    },
    Progress {
        file: String,
        downloaded: u64,
        total: u64,
        bytes_per_sec: f64,
        eta_secs: Option<f64>,
    },
    /// The connection was lost; resuming from `downloaded` after a pause.
    Retrying {
        file: String,
        downloaded: u64,
        attempt: u32,
    },
    Verifying {
        file: String,
    },
    Finished {
        file: String,
        path: PathBuf,
    },
}

/// Cancels a download from another task or thread; the partial file stays for a later resume.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }
    async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// A verified file in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Downloaded {
    /// `snapshots/<commit>/<file>`: the path other tools use too.
    pub path: PathBuf,
    pub blob: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub commit: String,
}

/// What `Hub::file_info` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    pub size: u64,
    pub sha256: Option<String>,
    pub commit: String,
}

/// What the Hub says about a file before we fetch it.
#[derive(Debug, Clone)]
struct Metadata {
    commit: String,
    etag: String,
    size: u64,
    /// The LFS sha256, when the etag is one.
    sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Hub {
    cfg: HubConfig,
    client: reqwest::Client,
    /// Follows no redirects: the Hub's headers are on the redirect response itself.
    meta_client: reqwest::Client,
}

impl Hub {
    pub fn new(cfg: HubConfig) -> Result<Self, ModelsError> {
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .connect_timeout(cfg.connect_timeout)
                .read_timeout(cfg.read_timeout)
                .redirect(redirects)
                .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|source| ModelsError::Network { url: cfg.endpoint.clone(), source })
        };
        Ok(Hub {
            client: build(reqwest::redirect::Policy::limited(10))?,
            meta_client: build(reqwest::redirect::Policy::none())?,
            cfg,
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    fn repo(&self, req: &FileRequest) -> hf_hub::Repo {
        hf_hub::Repo::with_revision(req.repo.clone(), hf_hub::RepoType::Model, req.revision.clone())
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`.
    pub fn url(&self, req: &FileRequest) -> String {
        let repo = self.repo(req);
        format!("{}/{}/resolve/{}/{}", self.cfg.endpoint, repo.url(), repo.url_revision(), req.file)
    }

    /// `<cache>/models--org--name`.
    pub fn repo_dir(&self, req: &FileRequest) -> PathBuf {
        self.cfg.cache_dir.join(self.repo(req).folder_name())
    }

    /// The snapshot path of a file already in the cache for `req.revision`, without network.
    pub fn cached(&self, req: &FileRequest) -> Option<PathBuf> {
        let dir = self.repo_dir(req);
        let commit = std::fs::read_to_string(dir.join("refs").join(&req.revision)).ok()?;
        let p = dir.join("snapshots").join(commit.trim()).join(&req.file);
        p.exists().then_some(p)
    }

    /// Where an unfinished download of `req` with this etag (the LFS sha256) is kept:
    /// `blobs/<etag>.incomplete`, as the Hugging Face tools do.
    pub fn partial_path(&self, req: &FileRequest, etag: &str) -> PathBuf {
        self.repo_dir(req).join("blobs").join(format!("{etag}.incomplete"))
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cfg.token {
            Some(t) => rb.header(AUTHORIZATION, format!("Bearer {}", t.secret())),
            None => rb,
        }
    }

    fn status_error(&self, req: &FileRequest, url: &str, status: StatusCode, headers: &HeaderMap) -> ModelsError {
        // The Hub answers 401 for a repo that does not exist (so private ones stay hidden) and
        // says which it was in X-Error-Code.
        let code = header_str(headers, "x-error-code").unwrap_or_default();
        if matches!(code, "RepoNotFound" | "EntryNotFound" | "RevisionNotFound") {
            return ModelsError::NotFound { repo: req.repo.clone(), file: req.file.clone() };
        }
        match status.as_u16() {
            401 | 403 => ModelsError::Unauthorized {
                repo: req.repo.clone(),
                status: status.as_u16(),
                has_token: self.cfg.token.is_some(),
            },
            404 => ModelsError::NotFound { repo: req.repo.clone(), file: req.file.clone() },
            s => ModelsError::Http { url: url.to_string(), status: s },
        }
    }

    fn net_error(url: &str, source: reqwest::Error) -> ModelsError {
        if source.is_timeout() {
            ModelsError::Timeout { url: url.to_string() }
        } else {
            ModelsError::Network { url: url.to_string(), source }
        }
    }

    /// HEAD on the resolve URL, following only same-Hub relative redirects (renamed repos), as
    /// huggingface_hub does: the LFS headers sit on the redirect to the CDN.
    async fn metadata(&self, req: &FileRequest) -> Result<Metadata, ModelsError> {
        let mut url = self.url(req);
        for _ in 0..5 {
            let resp = self.auth(self.meta_client.head(&url)).send().await.map_err(|e| Self::net_error(&url, e))?;
            let status = resp.status();
            let h = resp.headers();
            let relative_redirect = status.is_redirection()
                && h.get("x-linked-etag").is_none()
                && header_str(h, LOCATION.as_str()).is_some_and(|l| l.starts_with('/'));
            if relative_redirect {
                let loc = header_str(h, LOCATION.as_str()).unwrap_or_default();
                url = format!("{}{}", self.cfg.endpoint, loc);
                continue;
            }
            if !(status.is_success() || status.is_redirection()) {
                return Err(self.status_error(req, &url, status, h));
            }
            let bad = |what: &str| ModelsError::BadResponse { url: url.clone(), what: what.to_string() };
            let commit = header_str(h, "x-repo-commit").ok_or_else(|| bad("the X-Repo-Commit header"))?;
            let etag_raw = header_str(h, "x-linked-etag")
                .or_else(|| header_str(h, "etag"))
                .ok_or_else(|| bad("an ETag header"))?;
            let etag = etag_raw.trim_start_matches("W/").trim_matches('"').to_string();
            if etag.is_empty() || etag.contains(['/', '\\']) || etag.starts_with('.') {
                return Err(bad("a usable ETag"));
            }
            let size = header_str(h, "x-linked-size")
                .or_else(|| header_str(h, CONTENT_LENGTH.as_str()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad("the file size (X-Linked-Size or Content-Length)"))?;
            let sha256 = is_sha256(&etag).then(|| etag.to_ascii_lowercase());
            return Ok(Metadata { commit: commit.to_string(), etag, size, sha256 });
        }
        Err(ModelsError::BadResponse { url, what: "a final answer within 5 redirects".into() })
    }

    /// Size and LFS sha256 of a file on the Hub (one HEAD request, nothing downloaded).
    pub async fn file_info(&self, req: &FileRequest) -> Result<RemoteFile, ModelsError> {
        let m = self.metadata(req).await?;
        Ok(RemoteFile { size: m.size, sha256: m.sha256, commit: m.commit })
    }

    /// Downloads (or resumes, or finds in the cache) one file and verifies its sha256.
    pub async fn download(
        &self,
        req: &FileRequest,
        on_event: &mut (dyn FnMut(&DownloadEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<Downloaded, ModelsError> {
        if cancel.is_cancelled() {
            return Err(ModelsError::Cancelled { file: req.file.clone(), downloaded: 0, total: 0 });
        }
        let meta = self.metadata(req).await?;
        let expected = match (&req.expected_sha256, &meta.sha256) {
            (Some(pinned), Some(hub)) if !pinned.eq_ignore_ascii_case(hub) => {
                return Err(ModelsError::ShaMismatch {
                    file: req.file.clone(),
                    expected: pinned.to_ascii_lowercase(),
                    actual: format!("{hub} (announced by the Hub; nothing was downloaded)"),
                })
            }
            (Some(pinned), _) => pinned.to_ascii_lowercase(),
            (None, Some(hub)) => hub.clone(),
            (None, None) => return Err(ModelsError::NoChecksum { file: req.file.clone() }),
        };

        let repo_dir = self.repo_dir(req);
        let blobs = repo_dir.join("blobs");
        tokio::fs::create_dir_all(&blobs).await.map_err(ModelsError::io("cannot create", &blobs))?;
        let blob = blobs.join(&meta.etag);
        // Locks live where huggingface_hub keeps them, outside the blobs folder.
        let locks = self.cfg.cache_dir.join(".locks").join(self.repo(req).folder_name());
        tokio::fs::create_dir_all(&locks).await.map_err(ModelsError::io("cannot create", &locks))?;
        let _lock = lock_file(&locks.join(format!("{}.lock", meta.etag)), &req.file)?;

        let have_blob = tokio::fs::metadata(&blob).await.map(|m| m.len() == meta.size).unwrap_or(false);
        if have_blob {
            on_event(&DownloadEvent::Verifying { file: req.file.clone() });
            if sha256_file(&blob).await? == expected {
                return self.link(req, &meta, &repo_dir, blob, expected, on_event).await;
            }
            // A blob that does not match is not trusted; fetch it again.
            let _ = tokio::fs::remove_file(&blob).await;
        }

        let partial = self.partial_path(req, &meta.etag);
        self.transfer(req, &meta, &partial, on_event, cancel).await?;

        on_event(&DownloadEvent::Verifying { file: req.file.clone() });
        let actual = sha256_file(&partial).await?;
        if actual != expected {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ModelsError::ShaMismatch { file: req.file.clone(), expected, actual });
        }
        tokio::fs::rename(&partial, &blob).await.map_err(ModelsError::io("cannot move into place", &blob))?;
        self.link(req, &meta, &repo_dir, blob, expected, on_event).await
    }

    /// Fetches the missing bytes of `partial`, resuming with Range and retrying lost connections.
    async fn transfer(
        &self,
        req: &FileRequest,
        meta: &Metadata,
        partial: &Path,
        on_event: &mut (dyn FnMut(&DownloadEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<(), ModelsError> {
        let file_name = req.file.clone();
        let total = meta.size;
        let mut have = match tokio::fs::metadata(partial).await {
            Ok(m) if m.len() <= total => m.len(),
            _ => 0,
        };

        let free_dir = partial.parent().unwrap_or(partial);
        let available = free_disk_bytes(free_dir).map_err(ModelsError::io("cannot check free space in", free_dir))?;
        let needed = total - have;
        if available < needed.saturating_add(self.cfg.reserve_bytes) {
            return Err(ModelsError::DiskFull { path: free_dir.to_path_buf(), needed, available });
        }

        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(partial)
            .await
            .map_err(ModelsError::io("cannot open", partial))?;
        file.set_len(have).await.map_err(ModelsError::io("cannot resize", partial))?;
        on_event(&DownloadEvent::Started { file: file_name.clone(), total, resumed_from: have });

        let url = self.url(req);
        let mut attempt = 0u32;
        loop {
            if have == total {
                break;
            }
            let result = self.fetch_range(&url, req, &mut file, partial, &mut have, total, on_event, cancel).await;
            match result {
                Ok(()) => {}
                Err(e) if attempt < self.cfg.retries && is_transient(&e) => {
                    attempt += 1;
                    log::warn!("download of {file_name} interrupted ({e}); resuming (attempt {attempt})");
                    on_event(&DownloadEvent::Retrying { file: file_name.clone(), downloaded: have, attempt });
                    tokio::select! {
                        _ = tokio::time::sleep(self.cfg.retry_backoff * attempt) => {}
                        _ = cancel.cancelled() => {
                            return Err(ModelsError::Cancelled { file: file_name, downloaded: have, total });
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        file.sync_all().await.map_err(ModelsError::io("cannot write", partial))?;
        Ok(())
    }

    /// One GET from byte `have` to the end; appends to `file`.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_range(
        &self,
        url: &str,
        req: &FileRequest,
        file: &mut tokio::fs::File,
        partial: &Path,
        have: &mut u64,
        total: u64,
        on_event: &mut (dyn FnMut(&DownloadEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<(), ModelsError> {
        let mut rb = self.auth(self.client.get(url));
        if *have > 0 {
            rb = rb.header(RANGE, format!("bytes={}-", *have));
        }
        let resp = tokio::select! {
            r = rb.send() => r.map_err(|e| Self::net_error(url, e))?,
            _ = cancel.cancelled() => {
                return Err(ModelsError::Cancelled { file: req.file.clone(), downloaded: *have, total });
            }
        };
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE && *have == total {
            return Ok(());
        }
        if !status.is_success() {
            return Err(self.status_error(req, url, status, resp.headers()));
        }
        if status == StatusCode::PARTIAL_CONTENT {
            let start = header_str(resp.headers(), CONTENT_RANGE.as_str())
                .and_then(|cr| cr.strip_prefix("bytes "))
                .and_then(|cr| cr.split('-').next())
                .and_then(|s| s.parse::<u64>().ok());
            if start != Some(*have) {
                return Err(ModelsError::BadResponse {
                    url: url.to_string(),
                    what: format!("a Content-Range starting at byte {} (got {start:?})", *have),
                });
            }
        } else if *have > 0 {
            // The server ignored the range: start over rather than append a second copy.
            *have = 0;
            file.set_len(0).await.map_err(ModelsError::io("cannot resize", partial))?;
        }
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(*have)).await.map_err(ModelsError::io("cannot seek", partial))?;

        let started = Instant::now();
        let session_start = *have;
        let mut last_event = Instant::now() - Duration::from_secs(1);
        let mut stream = resp.bytes_stream();
        let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, &mut *file);
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = cancel.cancelled() => {
                    writer.flush().await.map_err(ModelsError::io("cannot write", partial))?;
                    return Err(ModelsError::Cancelled { file: req.file.clone(), downloaded: *have, total });
                }
            };
            match next {
                None => break,
                Some(Ok(chunk)) => {
                    if *have + chunk.len() as u64 > total {
                        writer.flush().await.map_err(ModelsError::io("cannot write", partial))?;
                        drop(writer);
                        let _ = tokio::fs::remove_file(partial).await;
                        return Err(ModelsError::SizeMismatch {
                            file: req.file.clone(),
                            expected: total,
                            got: *have + chunk.len() as u64,
                        });
                    }
                    writer.write_all(&chunk).await.map_err(ModelsError::io("cannot write", partial))?;
                    *have += chunk.len() as u64;
                    if last_event.elapsed() >= Duration::from_millis(100) || *have == total {
                        last_event = Instant::now();
                        let secs = started.elapsed().as_secs_f64().max(1e-3);
                        let rate = (*have - session_start) as f64 / secs;
                        let eta = (rate > 0.0).then(|| (total - *have) as f64 / rate);
                        on_event(&DownloadEvent::Progress {
                            file: req.file.clone(),
                            downloaded: *have,
                            total,
                            bytes_per_sec: rate,
                            eta_secs: eta,
                        });
                    }
                }
                Some(Err(e)) => {
                    // Keep what arrived: the next attempt resumes after it.
                    writer.flush().await.map_err(ModelsError::io("cannot write", partial))?;
                    return Err(if e.is_timeout() {
                        ModelsError::Timeout { url: url.to_string() }
                    } else {
                        ModelsError::Interrupted { file: req.file.clone(), downloaded: *have, total }
                    });
                }
            }
        }
        writer.flush().await.map_err(ModelsError::io("cannot write", partial))?;
        if *have < total {
            return Err(ModelsError::Interrupted { file: req.file.clone(), downloaded: *have, total });
        }
        Ok(())
    }

    /// Points `snapshots/<commit>/<file>` at the blob and records `refs/<revision>`.
    async fn link(
        &self,
        req: &FileRequest,
        meta: &Metadata,
        repo_dir: &Path,
        blob: PathBuf,
        sha256: String,
        on_event: &mut (dyn FnMut(&DownloadEvent) + Send),
    ) -> Result<Downloaded, ModelsError> {
        let pointer = repo_dir.join("snapshots").join(&meta.commit).join(&req.file);
        let parent = pointer.parent().unwrap_or(repo_dir);
        std::fs::create_dir_all(parent).map_err(ModelsError::io("cannot create", parent))?;
        let _ = std::fs::remove_file(&pointer);
        link_or_copy(&blob, &pointer, &req.file)?;
        let refs = repo_dir.join("refs");
        std::fs::create_dir_all(&refs).map_err(ModelsError::io("cannot create", &refs))?;
        let ref_path = refs.join(&req.revision);
        if let Some(p) = ref_path.parent() {
            std::fs::create_dir_all(p).map_err(ModelsError::io("cannot create", p))?;
        }
        std::fs::write(&ref_path, &meta.commit).map_err(ModelsError::io("cannot write", &ref_path))?;
        on_event(&DownloadEvent::Finished { file: req.file.clone(), path: pointer.clone() });
        Ok(Downloaded { path: pointer, blob, sha256, size: meta.size, commit: meta.commit.clone() })
    }
}

/// Failures worth a resume: the connection, not the request, went wrong (5xx included).
fn is_transient(e: &ModelsError) -> bool {
    match e {
        ModelsError::Interrupted { .. } | ModelsError::Timeout { .. } | ModelsError::Network { .. } => true,
        ModelsError::Http { status, .. } => *status >= 500,
        _ => false,
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A relative symlink like the Hugging Face tools make (`../../blobs/<etag>`, one more `..`
/// per folder in the file name); a copy where symlinks are unavailable.
fn link_or_copy(blob: &Path, pointer: &Path, file: &str) -> Result<(), ModelsError> {
    #[cfg(unix)]
    {
        let depth = file.matches('/').count() + 2;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        if let Some(name) = blob.file_name() {
            target.push(name);
        }
        if std::os::unix::fs::symlink(&target, pointer).is_ok() {
            return Ok(());
        }
    }
    let _ = file;
    std::fs::copy(blob, pointer).map(|_| ()).map_err(ModelsError::io("cannot copy into", pointer))
}

/// Bytes free for an unprivileged user on the file system holding `path` (or its nearest
/// existing ancestor).
pub fn free_disk_bytes(path: &Path) -> std::io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = match p.parent() {
            Some(parent) => parent,
            None => break,
        };
    }
    statvfs_available(p)
}

#[cfg(unix)]
fn statvfs_available(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
fn statvfs_available(_path: &Path) -> std::io::Result<u64> {
    // No portable query without another dependency: do not block the download.
    Ok(u64::MAX)
}

/// Hex sha256 of a whole file.
pub async fn sha256_file(path: &Path) -> Result<String, ModelsError> {
    let mut f = tokio::fs::File::open(path).await.map_err(ModelsError::io("cannot open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await.map_err(ModelsError::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An advisory lock held for the life of the download; the OS drops it if the process dies, so
/// a crash leaves no stale lock behind.
struct FileLock(#[allow(dead_code)] std::fs::File);

fn lock_file(path: &Path, file: &str) -> Result<FileLock, ModelsError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(ModelsError::io("cannot create lock", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(ModelsError::AlreadyDownloading { file: file.to_string() });
        }
    }
    let _ = file;
    Ok(FileLock(f))
}
