//! Downloads against a real HTTP server on 127.0.0.1 that answers like the Hub (resolve URL,
//! 302 with X-Repo-Commit / X-Linked-Etag / X-Linked-Size, a CDN URL with Range support).

mod support;

use std::path::Path;
use std::time::Duration;

use hearth::models::catalog::Catalog;
use hearth::models::hub::{free_disk_bytes, sha256_file};
use hearth::models::token::HfToken;
use hearth::models::{self, registry, CancelToken, DownloadEvent, FileRequest, Hub, HubConfig, ModelsError};
use hearth::store::Store;
use support::fake_hub::{sha_hex, FakeHub, FileSpec, COMMIT};
use support::gguf_gen;

const REPO: &str = "ggml-org/gemma-3-test-GGUF";
const FILE: &str = "gemma-3-test-Q4_0.gguf";

/// A 4 MiB Gemma 3 GGUF.
fn model_bytes() -> Vec<u8> {
    gguf_gen::gemma3(1024 * 1024)
}

fn collect() -> (std::sync::Arc<std::sync::Mutex<Vec<DownloadEvent>>>, impl FnMut(&DownloadEvent) + Send) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let e2 = events.clone();
    (events, move |e: &DownloadEvent| e2.lock().unwrap().push(e.clone()))
}

#[tokio::test]
async fn full_download_lands_in_the_hugging_face_cache_layout() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let sha = sha_hex(&bytes);
    server.add(REPO, FILE, FileSpec::new(bytes.clone()));
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let (events, mut on_event) = collect();

    let d = hub.download(&FileRequest::new(REPO, FILE), &mut on_event, &CancelToken::new()).await.unwrap();

    let repo_dir = cache.path().join("models--ggml-org--gemma-3-test-GGUF");
    assert_eq!(d.blob, repo_dir.join("blobs").join(&sha));
    assert_eq!(d.path, repo_dir.join("snapshots").join(COMMIT).join(FILE));
    assert_eq!(std::fs::read_link(&d.path).unwrap(), Path::new("../../blobs").join(&sha));
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), COMMIT);
    assert_eq!((d.sha256.as_str(), d.size, d.commit.as_str()), (sha.as_str(), bytes.len() as u64, COMMIT));
    assert!(!repo_dir.join("blobs").join(format!("{sha}.incomplete")).exists());
    assert_eq!(hub.cached(&FileRequest::new(REPO, FILE)), Some(d.path.clone()));

    let ev = events.lock().unwrap().clone();
    assert_eq!(
        ev.first(),
        Some(&DownloadEvent::Started { file: FILE.into(), total: bytes.len() as u64, resumed_from: 0 })
    );
    let last_progress = ev.iter().rev().find_map(|e| match e {
        DownloadEvent::Progress { downloaded, total, bytes_per_sec, eta_secs, .. } => {
            Some((*downloaded, *total, *bytes_per_sec, *eta_secs))
        }
        _ => None,
    });
    let (downloaded, total, rate, eta) = last_progress.expect("progress events");
    assert_eq!((downloaded, total), (bytes.len() as u64, bytes.len() as u64));
    assert!(rate > 0.0);
    assert_eq!(eta, Some(0.0));
    assert!(matches!(ev.last(), Some(DownloadEvent::Finished { .. })));
    assert_eq!(server.content_bytes_sent(), bytes.len() as u64);

    // A second call finds the verified blob and fetches no content.
    let again = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(again.path, d.path);
    assert_eq!(server.content_gets().len(), 1);
}

#[tokio::test]
async fn cancel_then_resume_fetches_only_the_missing_bytes() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let total = bytes.len() as u64;
    // 64 chunks 20 ms apart: progress events (every 100 ms) arrive long before the end.
    let spec = FileSpec { chunk_delay: Some(Duration::from_millis(20)), ..FileSpec::new(bytes.clone()) };
    server.add(REPO, FILE, spec);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();

    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let mut on_event = move |e: &DownloadEvent| {
        if let DownloadEvent::Progress { downloaded, .. } = e {
            if *downloaded >= total / 3 {
                c2.cancel();
            }
        }
    };
    let err = hub.download(&FileRequest::new(REPO, FILE), &mut on_event, &cancel).await.unwrap_err();
    let ModelsError::Cancelled { downloaded, total: t, .. } = err else { panic!("expected Cancelled, got {err:?}") };
    assert_eq!(t, total);
    assert!(downloaded >= total / 3 && downloaded < total, "cancelled at {downloaded}");
    let partial =
        cache.path().join("models--ggml-org--gemma-3-test-GGUF/blobs").join(format!("{}.incomplete", sha_hex(&bytes)));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), downloaded);

    let (events, mut on_event) = collect();
    let d = hub.download(&FileRequest::new(REPO, FILE), &mut on_event, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);
    assert_eq!(
        events.lock().unwrap().first(),
        Some(&DownloadEvent::Started { file: FILE.into(), total, resumed_from: downloaded })
    );
    let gets = server.wait_content_gets(2);
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].range_start, None);
    assert_eq!(gets[1].range_start, Some(downloaded));
    assert_eq!(gets[1].status, 206);
    assert_eq!(gets[1].body_bytes_sent, total - downloaded, "the resume must fetch only the missing bytes");
}

#[tokio::test]
async fn partial_file_left_by_a_crash_is_resumed() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let sha = sha_hex(&bytes);
    server.add(REPO, FILE, FileSpec::new(bytes.clone()));
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("models--ggml-org--gemma-3-test-GGUF/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let have = 1_000_000usize;
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &bytes[..have]).unwrap();

    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let d = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(sha256_file(&d.path).await.unwrap(), sha);
    let gets = server.content_gets();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].range_start, Some(have as u64));
    assert_eq!(gets[0].body_bytes_sent, (bytes.len() - have) as u64);
}

#[tokio::test]
async fn dropped_connection_is_resumed_automatically() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let total = bytes.len() as u64;
    let spec = FileSpec { drop_after: Some(1_500_000), drops: 1, ..FileSpec::new(bytes.clone()) };
    server.add(REPO, FILE, spec);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(HubConfig { retries: 2, ..server.hub_config(cache.path()) }).unwrap();
    let (events, mut on_event) = collect();

    let d = hub.download(&FileRequest::new(REPO, FILE), &mut on_event, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);
    let gets = server.wait_content_gets(2);
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].body_bytes_sent, 1_500_000);
    assert_eq!(gets[1].range_start, Some(1_500_000));
    assert_eq!(server.content_bytes_sent(), total, "no byte fetched twice");
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, DownloadEvent::Retrying { downloaded: 1_500_000, attempt: 1, .. })));
}

#[tokio::test]
async fn a_server_that_ignores_range_restarts_cleanly_instead_of_appending() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    server.add(REPO, FILE, FileSpec { ignore_range: true, ..FileSpec::new(bytes.clone()) });
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("models--ggml-org--gemma-3-test-GGUF/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{}.incomplete", sha_hex(&bytes))), &bytes[..700_000]).unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let d = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);
    assert_eq!(server.content_gets()[0].status, 200);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    server.add(REPO, FILE, FileSpec { unavailable: 1, ..FileSpec::new(bytes.clone()) });
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(HubConfig { retries: 1, ..server.hub_config(cache.path()) }).unwrap();
    let d = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);

    let server = FakeHub::start();
    server.add(REPO, FILE, FileSpec { unavailable: 5, ..FileSpec::new(bytes) });
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(HubConfig { retries: 1, ..server.hub_config(cache.path()) }).unwrap();
    let err = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::Http { status: 503, .. }), "{err:?}");
    assert_eq!(server.wait_content_gets(2).len(), 2, "one try and one retry");
}

#[tokio::test]
async fn dropped_connection_without_retries_reports_and_keeps_the_partial() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let spec = FileSpec { drop_after: Some(1_000_000), drops: 1, ..FileSpec::new(bytes.clone()) };
    server.add(REPO, FILE, spec);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();

    let err = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::Interrupted { downloaded: 1_000_000, .. }), "{err:?}");
    assert!(err.to_string().contains("run the download again to resume"), "{err}");
    let d = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(&d.path).unwrap(), bytes);
    assert_eq!(server.wait_content_gets(2)[1].range_start, Some(1_000_000));
}

#[tokio::test]
async fn stalled_connection_times_out_with_a_clear_error() {
    let server = FakeHub::start();
    let spec = FileSpec { stall_after: Some(65_536), ..FileSpec::new(model_bytes()) };
    server.add(REPO, FILE, spec);
    let cache = tempfile::tempdir().unwrap();
    let hub =
        Hub::new(HubConfig { read_timeout: Duration::from_millis(500), ..server.hub_config(cache.path()) }).unwrap();
    let err = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

async fn store_and_catalog_entry(
    server: &FakeHub,
    bytes: Vec<u8>,
    served: Option<Vec<u8>>,
) -> (tempfile::TempDir, Store, Catalog) {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).await.unwrap();
    // A one-entry catalog pointing at the fake Hub's repo.
    let doc = include_str!("../../../assets/catalog.json");
    let mut cat = Catalog::parse(doc).unwrap();
    cat.models.retain(|m| m.id == "gemma-3-1b-it");
    let v = &mut cat.models[0].variants[0];
    v.repo = REPO.into();
    v.file = FILE.into();
    v.sha256 = None;
    let mut spec = FileSpec::new(bytes);
    spec.served = served.map(std::sync::Arc::new);
    server.add(REPO, FILE, spec);
    (data, store, cat)
}

#[tokio::test]
async fn install_registers_a_verified_download() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let (_data, store, cat) = store_and_catalog_entry(&server, bytes.clone(), None).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let mut quiet = |_: &DownloadEvent| {};
    let cancel = CancelToken::new();
    let fut = models::install(&store, &hub, &cat.models[0], None, true, &mut quiet, &cancel);
    // The desktop app runs installs on its async runtime: the future must be Send.
    fn is_send<T: Send>(_: &T) {}
    is_send(&fut);
    let m = fut.await.unwrap();
    assert_eq!(m.id, "gemma-3-1b-it-q4_0");
    assert_eq!(m.sha256.as_deref(), Some(sha_hex(&bytes).as_str()));
    assert_eq!(registry::get(&store, "gemma-3-1b-it-q4_0").await.unwrap(), Some(m.clone()));
    assert_eq!(models::resolve_model_arg(&store, "gemma-3-1b-it-q4_0").await.unwrap(), m.path);
}

#[tokio::test]
async fn a_vision_model_downloads_with_its_projector_as_a_pair() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    const MMPROJ: &str = "mmproj-test-f16.gguf";
    let mut cat = Catalog::builtin().unwrap();
    cat.models.retain(|m| m.id == "gemma-3-4b-it");
    let entry = &mut cat.models[0];
    assert!(entry.vision);
    // Model and projector both served.
    let v = entry.variants.iter_mut().find(|v| v.name == "Q4_0").unwrap();
    (v.repo, v.file, v.sha256) = (REPO.into(), FILE.into(), None);
    let mm = entry.mmproj.as_mut().unwrap();
    (mm.repo, mm.file, mm.sha256) = (REPO.into(), MMPROJ.into(), None);
    server.add(REPO, FILE, FileSpec::new(bytes.clone()));
    server.add(REPO, MMPROJ, FileSpec::new(gguf_gen::mmproj()));
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();

    // with_mmproj = true, as the app's download manager asks.
    let m = models::install(&store, &hub, &cat.models[0], Some("Q4_0"), true, &mut |_| {}, &CancelToken::new())
        .await
        .unwrap();
    let mmproj = m.mmproj_path.expect("the projector is registered with the model");
    assert_eq!(std::fs::read(&mmproj).unwrap(), gguf_gen::mmproj());
    let asked: Vec<String> = server.log().into_iter().map(|r| r.path).collect();
    assert!(asked.iter().any(|p| p.ends_with(FILE)), "{asked:?}");
    assert!(asked.iter().any(|p| p.ends_with(MMPROJ)), "the projector was not requested: {asked:?}");
    let listed = registry::get(&store, &m.id).await.unwrap().unwrap();
    assert_eq!(listed.mmproj_path.as_deref(), Some(mmproj.as_path()));
    // The header's context length is kept with it (the app's model list reads no GGUF).
    assert_eq!(registry::context_length(&store, &m.id).await.unwrap(), Some(32_768));
}

#[tokio::test]
async fn corrupted_bytes_are_rejected_and_nothing_is_registered() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    let mut bad = bytes.clone();
    bad[3_000_000] ^= 0xff;
    let (_data, store, cat) = store_and_catalog_entry(&server, bytes.clone(), Some(bad)).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();

    let err =
        models::install(&store, &hub, &cat.models[0], None, true, &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    match &err {
        ModelsError::ShaMismatch { expected, .. } => assert_eq!(expected, &sha_hex(&bytes)),
        other => panic!("expected ShaMismatch, got {other:?}"),
    }
    assert!(registry::list(&store).await.unwrap().is_empty());
    let blobs = cache.path().join("models--ggml-org--gemma-3-test-GGUF/blobs");
    let leftovers: Vec<_> = std::fs::read_dir(&blobs).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.is_empty(), "corrupt bytes left behind: {leftovers:?}");
    assert!(!cache.path().join("models--ggml-org--gemma-3-test-GGUF/snapshots").exists());
}

#[tokio::test]
async fn pinned_sha_that_differs_from_the_hub_is_refused_before_downloading() {
    let server = FakeHub::start();
    server.add(REPO, FILE, FileSpec::new(model_bytes()));
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let req = FileRequest { expected_sha256: Some("ab".repeat(32)), ..FileRequest::new(REPO, FILE) };
    let err = hub.download(&req, &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::ShaMismatch { .. }), "{err:?}");
    assert!(server.content_gets().is_empty());
}

#[tokio::test]
async fn gated_repo_explains_the_token_and_works_with_one() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    server.add(REPO, FILE, FileSpec { token: Some("hf_secret".into()), ..FileSpec::new(bytes.clone()) });
    let cache = tempfile::tempdir().unwrap();

    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let err = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::Unauthorized { status: 401, has_token: false, .. }), "{err:?}");
    let msg = err.to_string();
    // Words any front end can show: the CLI adds its own `hearth models login` hint.
    assert!(msg.contains("gated") && msg.contains("read token") && msg.contains(REPO), "{msg}");
    assert!(!msg.contains("hearth "), "{msg}");

    let wrong = Hub::new(HubConfig { token: HfToken::new("hf_wrong"), ..server.hub_config(cache.path()) }).unwrap();
    let err = wrong.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, ModelsError::Unauthorized { has_token: true, .. }), "{err:?}");
    assert!(err.to_string().contains("accept the model's licence"), "{err}");

    let right = Hub::new(HubConfig { token: HfToken::new("hf_secret"), ..server.hub_config(cache.path()) }).unwrap();
    let d = right.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(std::fs::read(d.path).unwrap(), bytes);
    // The token never shows in Debug output.
    assert!(!format!("{:?}", right.config()).contains("hf_secret"));
}

#[tokio::test]
async fn missing_file_or_repo_is_a_clear_not_found() {
    let server = FakeHub::start();
    server.add(REPO, FILE, FileSpec::new(gguf_gen::gemma3(0)));
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let err = hub.download(&FileRequest::new(REPO, "nope.gguf"), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(&err, ModelsError::NotFound { repo, file } if repo == REPO && file == "nope.gguf"), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");
    // Regression: reading the log right after the error raced the server's logging (CI, 11-29).
    assert_eq!(server.wait_log(1).last().map(|r| r.status), Some(404));
    // An unknown repo: the Hub says 401 + RepoNotFound, which must not read as "gated".
    let err =
        hub.download(&FileRequest::new("nobody/nothing", FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(&err, ModelsError::NotFound { repo, .. } if repo == "nobody/nothing"), "{err:?}");
    assert_eq!(server.wait_log(2).last().map(|r| r.status), Some(401));
}

#[tokio::test]
async fn too_little_disk_space_is_refused_before_any_byte_is_fetched() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    server.add(REPO, FILE, FileSpec::new(bytes.clone()));
    let cache = tempfile::tempdir().unwrap();
    // Leave exactly half the file's size of headroom: the real free-space number then falls short.
    let free = free_disk_bytes(cache.path()).unwrap();
    let reserve = free - bytes.len() as u64 / 2;
    let hub = Hub::new(HubConfig { reserve_bytes: reserve, ..server.hub_config(cache.path()) }).unwrap();
    let err = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(&err, ModelsError::DiskFull { needed, .. } if *needed == bytes.len() as u64), "{err:?}");
    assert!(err.to_string().contains("not enough free disk space"), "{err}");
    assert!(server.content_gets().is_empty());
}

#[tokio::test]
async fn two_downloads_at_once() {
    let server = FakeHub::start();
    let a = gguf_gen::gemma3(512 * 1024);
    let b = gguf_gen::mmproj();
    server.add(REPO, FILE, FileSpec { chunk_delay: Some(Duration::from_millis(2)), ..FileSpec::new(a.clone()) });
    server.add("ggml-org/other-GGUF", "mmproj-model-f16.gguf", FileSpec::new(b.clone()));
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let h1 = hub.clone();
    let h2 = hub.clone();
    let t1 =
        tokio::spawn(async move { h1.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await });
    let t2 = tokio::spawn(async move {
        h2.download(&FileRequest::new("ggml-org/other-GGUF", "mmproj-model-f16.gguf"), &mut |_| {}, &CancelToken::new())
            .await
    });
    let (r1, r2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    assert_eq!(std::fs::read(r1.path).unwrap(), a);
    assert_eq!(std::fs::read(r2.path).unwrap(), b);
}

#[tokio::test]
async fn the_same_file_twice_at_once_is_refused_not_corrupted() {
    let server = FakeHub::start();
    let bytes = model_bytes();
    server.add(REPO, FILE, FileSpec { chunk_delay: Some(Duration::from_millis(10)), ..FileSpec::new(bytes.clone()) });
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();
    let h1 = hub.clone();
    let first =
        tokio::spawn(async move { h1.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await });
    // Wait until the first download holds the lock and is writing its partial file.
    let partial =
        cache.path().join("models--ggml-org--gemma-3-test-GGUF/blobs").join(format!("{}.incomplete", sha_hex(&bytes)));
    for _ in 0..2000 {
        if std::fs::metadata(&partial).map(|m| m.len() > 0).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let second = hub.download(&FileRequest::new(REPO, FILE), &mut |_| {}, &CancelToken::new()).await;
    assert!(matches!(second, Err(ModelsError::AlreadyDownloading { .. })), "{second:?}");
    let d = first.await.unwrap().unwrap();
    assert_eq!(std::fs::read(d.path).unwrap(), bytes);
}

#[test]
fn from_env_honours_hf_endpoint_and_hf_home() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9/");
    std::env::set_var("HF_HOME", home.path());
    let cfg = HubConfig::from_env(home.path());
    assert_eq!(cfg.endpoint, "http://127.0.0.1:9");
    assert_eq!(cfg.cache_dir, home.path().join("hub"));
    let hub = Hub::new(cfg).unwrap();
    assert_eq!(hub.url(&FileRequest::new("a/b", "c.gguf")), "http://127.0.0.1:9/a/b/resolve/main/c.gguf");
}

#[tokio::test]
async fn catalog_refresh_makes_sizes_exact_and_marks_missing_files() {
    let server = FakeHub::start();
    let cat = Catalog::builtin().unwrap();
    let e = cat.get("gemma-3-270m-it").unwrap();
    let q4 = e.variant(Some("Q4_0")).unwrap();
    let q8 = e.variant(Some("Q8_0")).unwrap();
    // Google has no 270M QAT GGUF: its gated repos start at 1B.
    let google = cat.get("gemma-3-1b-it").unwrap().variant(Some("Q4_0-google")).unwrap();
    let bytes = gguf_gen::gemma3(1000);
    server.add(&q4.repo, &q4.file, FileSpec::new(bytes.clone()));
    // Q8_0 has a pinned sha; the Hub announcing another one must be reported.
    server.add(&q8.repo, &q8.file, FileSpec::new(gguf_gen::gemma3(10)));
    server.add(&google.repo, &google.file, FileSpec { token: Some("t".into()), ..FileSpec::new(bytes.clone()) });
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(server.hub_config(cache.path())).unwrap();

    let (fresh, notes) = models::refresh_catalog(&hub, &cat).await;
    let note = |m: &str, v: &str| notes.iter().find(|n| n.model == m && n.variant == v).unwrap().outcome.clone();
    assert_eq!(note("gemma-3-270m-it", "Q4_0"), "ok");
    assert!(note("gemma-3-270m-it", "Q8_0").contains("differs from the pinned one"));
    assert_eq!(note("gemma-3-1b-it", "Q4_0-google"), "gated");
    assert_eq!(note("gemma-3-1b-it", "Q4_K_M"), "not found");
    assert_eq!(note("gemma-3-4b-it", "mmproj"), "not found");
    let f = fresh.get("gemma-3-270m-it").unwrap().variant(Some("Q4_0")).unwrap();
    assert_eq!((f.size_bytes, f.size_exact, f.verified), (bytes.len() as u64, true, true));
    assert!(!fresh.get("gemma-3-1b-it").unwrap().variant(Some("Q4_K_M")).unwrap().verified);
    // The pinned sha is kept, never replaced by the Hub's.
    assert_eq!(fresh.get("gemma-3-270m-it").unwrap().variant(Some("Q8_0")).unwrap().sha256, q8.sha256);
    // Only HEAD requests: nothing was downloaded.
    assert!(server.log().iter().all(|r| r.method == "HEAD"));

    // Saved, it is what `load` returns; a damaged copy falls back to the built-in catalog.
    let data = tempfile::tempdir().unwrap();
    fresh.save(data.path()).unwrap();
    let loaded = Catalog::load(data.path()).unwrap();
    assert_eq!(loaded.get("gemma-3-270m-it").unwrap().variant(Some("Q4_0")).unwrap().size_bytes, bytes.len() as u64);
    std::fs::write(Catalog::refreshed_path(data.path()), "{ broken").unwrap();
    assert_eq!(Catalog::load(data.path()).unwrap().models, Catalog::builtin().unwrap().models);
}
