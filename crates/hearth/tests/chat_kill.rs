//! Crash safety: a `hearth chat` process killed mid-reply leaves its partial reply in the
//! database, marked `interrupted` at the next start. Real binary, real model, real SQLite file.

mod support;
use support::test_model;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth::store::{MessageState, Role, Store, DB_FILE};
use sqlx::Row;

/// The `hearth` binary (HEARTH_BIN overrides, e.g. to test an installed build).
fn hearth_bin() -> PathBuf {
    std::env::var_os("HEARTH_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_chat_mid_stream_keeps_the_partial_reply_as_interrupted() {
    let model = test_model();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(hearth_bin())
        .env("HEARTH_DATA_DIR", dir.path())
        .args(["chat", "--model"])
        .arg(&model)
        .args([
            "--message",
            "Write a long story about a dragon.",
            "--max-tokens",
            "2000",
            "--temperature",
            "0",
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth chat");

    // Watch the database from outside, read-only, as another process would.
    let db = dir.path().join(DB_FILE);
    let deadline = Instant::now() + Duration::from_secs(300);
    let (message_id, seen) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("hearth chat ended ({status}) before it was killed: {err}");
        }
        assert!(Instant::now() < deadline, "no streaming reply appeared in the database");
        if db.exists() {
            let url = format!("sqlite://{}?mode=ro", db.display());
            if let Ok(pool) = sqlx::SqlitePool::connect(&url).await {
                let row = sqlx::query(
                    "SELECT id, content FROM messages WHERE role = 'assistant' AND state = 'streaming' AND content <> ''",
                )
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten();
                pool.close().await;
                if let Some(r) = row {
                    break (r.get::<i64, _>(0), r.get::<String, _>(1));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().expect("SIGKILL hearth chat");
    child.wait().unwrap();

    let store = Store::open(dir.path()).await.expect("reopen after the crash");
    let m = store.message(message_id).await.unwrap();
    assert_eq!(m.role, Role::Assistant);
    assert_eq!(m.state, MessageState::Interrupted);
    assert!(
        m.content.starts_with(&seen) && !m.content.is_empty(),
        "partial text kept: {:?} vs seen {:?}",
        m.content,
        seen
    );
    // The user's message was stored before the reply started.
    let all = store.messages(m.conversation_id).await.unwrap();
    assert_eq!(all[0].role, Role::User);
    assert_eq!(all[0].content, "Write a long story about a dragon.");
    assert_eq!(all[0].state, MessageState::Complete);
}
