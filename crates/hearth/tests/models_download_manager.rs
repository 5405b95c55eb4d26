//! The app's download manager against the real HTTP server on 127.0.0.1 that answers like the
//! Hub (tests/support/fake_hub.rs): background downloads with progress, cancel and resume,
//! one download per model, the state after a restart, and the errors a user meets.

mod support;

use std::time::Duration;

use hearth::models::catalog::Catalog;
use hearth::models::hub::sha256_file;
use hearth::models::{
    registry, DownloadError, DownloadManager, DownloadState, DownloadStatus, DownloadUpdate, HubConfig,
};
use hearth::store::Store;
use support::fake_hub::{sha_hex, FakeHub, FileSpec};
use support::gguf_gen;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const REPO: &str = "ggml-org/gemma-3-test-GGUF";
const FILE_1B: &str = "gemma-3-1b-test-Q4_0.gguf";
const FILE_270M: &str = "gemma-3-270m-test-Q4_0.gguf";
const ID_1B: &str = "gemma-3-1b-it";
const ID_270M: &str = "gemma-3-270m-it";

struct Setup {
    server: FakeHub,
    data: tempfile::TempDir,
    cache: tempfile::TempDir,
    store: Store,
    catalog: Catalog,
}

/// Two text-only catalog models whose recommended variants point at the fake Hub (no pinned
/// sha256: the Hub's is used, as for most of the real catalog).
async fn setup() -> Setup {
    let server = FakeHub::start();
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).await.unwrap();
    let mut catalog = Catalog::builtin().unwrap();
    catalog.models.retain(|m| m.id == ID_1B || m.id == ID_270M);
    for m in &mut catalog.models {
        let rec = m.recommended.clone();
        let v = m.variants.iter_mut().find(|v| v.name == rec).unwrap();
        v.repo = REPO.into();
        v.file = if m.id == ID_1B { FILE_1B.into() } else { FILE_270M.into() };
        v.sha256 = None;
    }
    Setup { server, data, cache, store, catalog }
}

impl Setup {
    fn manager(&self) -> DownloadManager {
        self.manager_with(self.server.hub_config(self.cache.path()))
    }
    fn manager_with(&self, cfg: HubConfig) -> DownloadManager {
        DownloadManager::with_config(self.store.clone(), self.data.path(), self.catalog.clone(), cfg)
            .with_progress_interval(Duration::from_millis(20))
    }
    fn installed_id(&self, id: &str) -> String {
        let e = self.catalog.get(id).unwrap();
        e.installed_id(e.recommended_variant())
    }
    fn partial(&self, bytes: &[u8]) -> std::path::PathBuf {
        self.cache
            .path()
            .join("models--ggml-org--gemma-3-test-GGUF/blobs")
            .join(format!("{}.incomplete", sha_hex(bytes)))
    }
}

/// A sink that forwards every update into a channel the test reads.
fn sink() -> (hearth::models::downloads::UpdateSink, UnboundedReceiver<DownloadUpdate>) {
    let (tx, rx) = unbounded_channel();
    (Box::new(move |u| drop(tx.send(u))), rx)
}

/// Every update until (and including) the terminal one.
async fn until_end(rx: &mut UnboundedReceiver<DownloadUpdate>) -> Vec<DownloadUpdate> {
    let mut out = Vec::new();
    loop {
        let u = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no terminal update within 30 s")
            .expect("the manager dropped the listener without a terminal update");
        let end = u.is_terminal();
        out.push(u);
        if end {
            return out;
        }
    }
}

/// A 4 MiB Gemma 3 GGUF.
fn model_bytes() -> Vec<u8> {
    gguf_gen::gemma3(1024 * 1024)
}

fn slow(bytes: Vec<u8>, delay_ms: u64) -> FileSpec {
    FileSpec { chunk_delay: Some(Duration::from_millis(delay_ms)), ..FileSpec::new(bytes) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_reports_progress_then_done_and_installs_the_model() {
    let s = setup().await;
    let bytes = model_bytes();
    let total = bytes.len() as u64;
    s.server.add(REPO, FILE_1B, slow(bytes.clone(), 5));
    let mgr = s.manager();
    let (tx, mut rx) = sink();

    mgr.start(ID_1B, tx).unwrap();
    assert_eq!(mgr.status(ID_1B).await.map(|st| st.state), Some(DownloadState::Running));
    let updates = until_end(&mut rx).await;

    let progress: Vec<(u64, u64, f64)> = updates
        .iter()
        .filter_map(|u| match u {
            DownloadUpdate::Progress { bytes, total, bytes_per_sec, .. } => Some((*bytes, *total, *bytes_per_sec)),
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 2, "expected several progress updates, got {updates:?}");
    assert!(progress.iter().all(|(_, t, _)| *t == total), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "bytes must grow: {progress:?}");
    assert!(progress.iter().any(|(_, _, rate)| *rate > 0.0));
    // Throttled: the Hub reports every 100 ms at most; far fewer updates than 64 KiB chunks.
    assert!(progress.len() < 64, "{} progress updates", progress.len());
    let Some(DownloadUpdate::Done { model }) = updates.last() else { panic!("expected Done, got {updates:?}") };
    assert_eq!(model.id, s.installed_id(ID_1B));
    assert_eq!(std::fs::read(&model.path).unwrap(), bytes);
    assert_eq!(registry::get(&s.store, &model.id).await.unwrap().as_ref(), Some(model));
    assert_eq!(mgr.status(ID_1B).await, None, "a finished download has no state left");
    assert!(!s.data.path().join("downloads").join(format!("{ID_1B}.json")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_keeps_the_partial_as_paused_and_resume_fetches_only_the_missing_bytes() {
    let s = setup().await;
    let bytes = model_bytes();
    let total = bytes.len() as u64;
    // 64 chunks 20 ms apart.
    s.server.add(REPO, FILE_1B, slow(bytes.clone(), 20));
    let mgr = s.manager();
    let (tx, mut rx) = sink();
    mgr.start(ID_1B, tx).unwrap();
    // Cancel once a third has arrived.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.unwrap().unwrap() {
            DownloadUpdate::Progress { bytes, .. } if bytes >= total / 3 => break,
            DownloadUpdate::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(mgr.cancel(ID_1B));
    let end = until_end(&mut rx).await;
    let Some(DownloadUpdate::Cancelled { bytes: at, total: t }) = end.last() else {
        panic!("expected Cancelled, got {end:?}")
    };
    assert_eq!(*t, total);
    assert!(*at >= total / 3 && *at < total, "cancelled at {at}");

    let kept = std::fs::metadata(s.partial(&bytes)).expect("the partial file is kept").len();
    assert!(kept >= *at && kept < total, "partial of {kept} bytes");
    let st = mgr.status(ID_1B).await.unwrap();
    assert_eq!((st.state, st.total), (DownloadState::Paused, total));
    assert!(!mgr.cancel(ID_1B), "nothing is running any more");
    assert!(registry::list(&s.store).await.unwrap().is_empty());

    let (tx, mut rx) = sink();
    mgr.resume(ID_1B, tx).unwrap();
    let end = until_end(&mut rx).await;
    let Some(DownloadUpdate::Done { model }) = end.last() else { panic!("expected Done, got {end:?}") };
    assert_eq!(sha256_file(&model.path).await.unwrap(), sha_hex(&bytes));
    let gets = s.server.wait_content_gets(2);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].range_start, Some(kept), "the resume starts where the partial file ends");
    assert_eq!(gets[1].status, 206);
    assert_eq!(gets[1].body_bytes_sent, total - kept, "the resume must fetch only the missing bytes");
    assert!(!s.partial(&bytes).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_model_twice_is_refused_while_another_model_downloads_beside_it() {
    let s = setup().await;
    let a = model_bytes();
    let b = gguf_gen::gemma3(256 * 1024);
    s.server.add(REPO, FILE_1B, slow(a.clone(), 10));
    s.server.add(REPO, FILE_270M, slow(b.clone(), 2));
    let mgr = s.manager();
    let (tx_a, mut rx_a) = sink();
    mgr.start(ID_1B, tx_a).unwrap();

    let (tx, _rx) = sink();
    let err = mgr.start(ID_1B, tx).unwrap_err();
    assert_eq!(err, DownloadError::Busy { id: ID_1B.into() });
    assert!(err.to_string().contains("already downloading"), "{err}");
    let (tx, _rx) = sink();
    assert_eq!(mgr.resume(ID_1B, tx).unwrap_err(), DownloadError::Busy { id: ID_1B.into() });

    let (tx_b, mut rx_b) = sink();
    mgr.start(ID_270M, tx_b).unwrap();
    let (end_a, end_b) = tokio::join!(until_end(&mut rx_a), until_end(&mut rx_b));
    assert!(matches!(end_a.last(), Some(DownloadUpdate::Done { .. })), "{end_a:?}");
    assert!(matches!(end_b.last(), Some(DownloadUpdate::Done { .. })), "{end_b:?}");
    let mut ids = registry::ids(&s.store).await.unwrap();
    ids.sort();
    assert_eq!(ids, vec![s.installed_id(ID_1B), s.installed_id(ID_270M)]);

    // An unknown id is its own error, not busy.
    let (tx, _rx) = sink();
    assert!(matches!(mgr.start("gemma-9", tx), Err(DownloadError::UnknownModel { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_partial_file_is_reported_as_paused_and_resumes() {
    let s = setup().await;
    let bytes = model_bytes();
    let total = bytes.len() as u64;
    s.server.add(REPO, FILE_1B, slow(bytes.clone(), 20));
    {
        let first_run = s.manager();
        let (tx, mut rx) = sink();
        first_run.start(ID_1B, tx).unwrap();
        loop {
            if let DownloadUpdate::Progress { bytes, .. } = rx.recv().await.unwrap() {
                if bytes >= total / 4 {
                    break;
                }
            }
        }
        // Quitting the app: every running download is cancelled and waited for.
        first_run.shutdown(Duration::from_secs(10)).await;
        let end = until_end(&mut rx).await;
        assert!(matches!(end.last(), Some(DownloadUpdate::Cancelled { .. })), "{end:?}");
    }
    let kept = std::fs::metadata(s.partial(&bytes)).unwrap().len();
    assert!(kept > 0 && kept < total);

    let second_run = s.manager();
    assert_eq!(
        second_run.status(ID_1B).await,
        Some(DownloadStatus { state: DownloadState::Paused, bytes: kept, total, error: None })
    );
    assert_eq!(second_run.status(ID_270M).await, None, "nothing was ever started for this one");

    let (tx, mut rx) = sink();
    second_run.resume(ID_1B, tx).unwrap();
    let end = until_end(&mut rx).await;
    assert!(matches!(end.last(), Some(DownloadUpdate::Done { .. })), "{end:?}");
    assert_eq!(s.server.wait_content_gets(2)[1].range_start, Some(kept));
    // Installed: a third run reports nothing.
    assert_eq!(s.manager().status(ID_1B).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_left_by_the_cli_is_found_through_the_pinned_sha256() {
    let mut s = setup().await;
    let bytes = model_bytes();
    let sha = sha_hex(&bytes);
    let e = s.catalog.models.iter_mut().find(|m| m.id == ID_1B).unwrap();
    let rec = e.recommended.clone();
    let v = e.variants.iter_mut().find(|v| v.name == rec).unwrap();
    v.sha256 = Some(sha.clone());
    v.size_bytes = bytes.len() as u64;
    std::fs::create_dir_all(s.partial(&bytes).parent().unwrap()).unwrap();
    std::fs::write(s.partial(&bytes), &bytes[..123_456]).unwrap();
    let st = s.manager().status(ID_1B).await.unwrap();
    assert_eq!((st.state, st.bytes, st.total), (DownloadState::Paused, 123_456, bytes.len() as u64));
}

async fn failure(s: &Setup, mgr: &DownloadManager, id: &str) -> DownloadError {
    let (tx, mut rx) = sink();
    mgr.start(id, tx).unwrap();
    let end = until_end(&mut rx).await;
    let Some(DownloadUpdate::Failed { error }) = end.last() else { panic!("expected Failed, got {end:?}") };
    let st = mgr.status(id).await.unwrap();
    assert_eq!(st.state, DownloadState::Failed);
    assert_eq!(st.error.as_ref(), Some(error));
    assert!(registry::list(&s.store).await.unwrap().is_empty());
    error.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_repo_asks_for_a_token_and_a_missing_file_is_not_found() {
    let s = setup().await;
    s.server.add(REPO, FILE_1B, FileSpec { token: Some("hf_secret".into()), ..FileSpec::new(model_bytes()) });
    let mgr = s.manager();
    let err = failure(&s, &mgr, ID_1B).await;
    assert!(matches!(&err, DownloadError::Gated { status: 401, has_token: false, repo } if repo == REPO), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("Hugging Face read token") && msg.contains("licence"), "{msg}");

    // The repo exists but holds no such file: 404.
    let err = failure(&s, &mgr, ID_270M).await;
    assert!(matches!(&err, DownloadError::NotFound { file, .. } if file == FILE_270M), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");

    // After a failure a retry is allowed (not busy) and works once the cause is gone.
    s.server.add(REPO, FILE_270M, FileSpec::new(gguf_gen::gemma3(1000)));
    let (tx, mut rx) = sink();
    mgr.resume(ID_270M, tx).unwrap();
    assert!(matches!(until_end(&mut rx).await.last(), Some(DownloadUpdate::Done { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_bytes_and_a_full_disk_are_reported_as_such() {
    let s = setup().await;
    let bytes = model_bytes();
    let mut bad = bytes.clone();
    bad[2_000_000] ^= 0xff;
    s.server.add(REPO, FILE_1B, FileSpec { served: Some(std::sync::Arc::new(bad)), ..FileSpec::new(bytes.clone()) });
    let err = failure(&s, &s.manager(), ID_1B).await;
    assert!(matches!(&err, DownloadError::Checksum { expected, .. } if *expected == sha_hex(&bytes)), "{err:?}");
    assert!(!s.partial(&bytes).exists(), "corrupt bytes are not kept for a resume");

    s.server.add(REPO, FILE_270M, FileSpec::new(model_bytes()));
    let greedy = s.manager_with(HubConfig { reserve_bytes: u64::MAX / 2, ..s.server.hub_config(s.cache.path()) });
    let err = failure(&s, &greedy, ID_270M).await;
    assert!(matches!(err, DownloadError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("not enough free disk space"), "{err}");
}
