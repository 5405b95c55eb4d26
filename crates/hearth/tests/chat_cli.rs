//! `hearth chat --message … --json` stores every turn: real binary, real model, real database.

mod support;
use support::test_model;

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth::store::{MessageState, Role, Store};

fn hearth_bin() -> PathBuf {
    std::env::var_os("HEARTH_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth")))
}

fn chat(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(hearth_bin())
        .env("HEARTH_DATA_DIR", dir)
        .args(["chat", "--model"])
        .arg(test_model())
        .args(["--max-tokens", "12", "--temperature", "0", "--json"])
        .args(extra)
        .output()
        .expect("run hearth chat");
    assert!(out.status.success(), "hearth chat failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn one_turn_then_a_second_in_the_same_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let first = chat(dir.path(), &["--message", "Hello! Who are you?"]);
    let conv = first["conversation_id"].as_i64().unwrap();
    let reply = first["reply"].as_str().unwrap().to_string();
    assert!(!reply.is_empty());
    assert_eq!(first["stop_reason"], "max_tokens", "12 tokens from a base model: {first}");
    assert!(first["gen_tokens_per_s"].as_f64().unwrap() > 0.0);

    let second = chat(dir.path(), &["--conversation", &conv.to_string(), "--message", "And what can you do?"]);
    assert_eq!(second["conversation_id"].as_i64(), Some(conv));

    let store = Store::open(dir.path()).await.unwrap();
    let msgs = store.messages(conv).await.unwrap();
    let roles: Vec<_> = msgs.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::Assistant]);
    assert_eq!(msgs[0].id, first["user_message_id"].as_i64().unwrap());
    assert_eq!(msgs[1].id, first["assistant_message_id"].as_i64().unwrap());
    assert_eq!(msgs[1].content, reply);
    assert_eq!(msgs[3].content, second["reply"].as_str().unwrap());
    for a in [&msgs[1], &msgs[3]] {
        assert_eq!(a.state, MessageState::Complete);
        assert_eq!(a.token_count, Some(12));
        assert_eq!(a.stats.stop_reason.as_deref(), Some("max_tokens"));
        assert!(a.stats.gen_tokens_per_s.unwrap() > 0.0);
        assert!(a.stats.model.as_deref().unwrap().ends_with(".gguf"));
    }
    let c = store.conversation(conv).await.unwrap();
    assert_eq!(c.title, "Hello! Who are you?");
    assert_eq!(c.sampling.temperature, Some(0.0));

    // --new starts another conversation.
    let third = chat(dir.path(), &["--new", "--message", "Hi"]);
    assert_ne!(third["conversation_id"].as_i64(), Some(conv));
}

#[test]
fn a_missing_conversation_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(hearth_bin())
        .env("HEARTH_DATA_DIR", dir.path())
        .args(["chat", "--model"])
        .arg(test_model())
        .args(["--conversation", "42", "--message", "hi", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conversation 42 does not exist"), "{err}");
}
