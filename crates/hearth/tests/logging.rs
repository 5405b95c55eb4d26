//! The app's log file, through the real process-wide logger (one per process: this file is its
//! own test binary, and everything that needs the installed logger is in one test).

mod support;

use std::time::Duration;

use hearth::logging::{self, LoggingError};
use hearth::models::token::HfToken;
use hearth::models::{CancelToken, FileRequest, Hub};
use support::fake_hub::{FakeHub, FileSpec};

const SECRET: &str = "hf_do_not_log_me_4f2a";

#[tokio::test]
async fn the_log_reaches_the_data_folder_and_never_holds_the_token() {
    // An unusable data folder is an error the app can report, and installs nothing.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let err = logging::init(&blocker, log::LevelFilter::Info).err().expect("a file as the data folder must fail");
    assert!(matches!(err, LoggingError::CreateDir { .. }), "{err:?}");

    // RUST_LOG would override the level this test asks for.
    std::env::remove_var("RUST_LOG");
    let data = tempfile::tempdir().unwrap();
    // Trace: every crate's records, reqwest's and hyper's included, must stay free of the token.
    let guard = logging::init(data.path(), log::LevelFilter::Trace).unwrap();
    assert_eq!(guard.path(), data.path().join("logs").join("hearth.log"));
    assert!(matches!(logging::init(data.path(), log::LevelFilter::Info), Err(LoggingError::AlreadyInstalled)));
    log::warn!("marker: started");

    // A gated download whose connection drops once: the hub logs the resume.
    let server = FakeHub::start();
    let bytes = vec![7u8; 300_000];
    server.add(
        "google/gated",
        "m.gguf",
        FileSpec { token: Some(SECRET.into()), drop_after: Some(100_000), drops: 1, ..FileSpec::new(bytes.clone()) },
    );
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = server.hub_config(cache.path());
    cfg.token = HfToken::new(SECRET);
    cfg.retries = 2;
    cfg.retry_backoff = Duration::from_millis(10);
    let hub = Hub::new(cfg).unwrap();
    let got =
        hub.download(&FileRequest::new("google/gated", "m.gguf"), &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!(got.size, bytes.len() as u64);
    drop(guard);

    let text = std::fs::read_to_string(data.path().join("logs").join("hearth.log")).unwrap();
    assert!(text.contains("marker: started"), "{text}");
    assert!(text.contains("resuming"), "the resume was not logged:\n{text}");
    assert!(!text.contains(SECRET), "the token reached the log:\n{text}");
}
