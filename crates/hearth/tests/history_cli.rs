//! `hearth history list|show|search|export|import|recover` through the real binary against a
//! real database file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth::store::*;

fn hearth_bin() -> PathBuf {
    std::env::var_os("HEARTH_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth")))
}

fn hearth(dir: &Path, args: &[&str]) -> Output {
    Command::new(hearth_bin()).arg("--data-dir").arg(dir).arg("history").args(args).output().expect("run hearth")
}

fn ok_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = hearth(dir, args);
    assert!(out.status.success(), "hearth history {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

async fn seed(dir: &Path) -> (ConversationId, ConversationId, MessageId) {
    let s = Store::open(dir).await.unwrap();
    let a = s.create_conversation(&NewConversation { title: "주간 회의".into(), ..Default::default() }).await.unwrap();
    s.append_message(a.id, &NewMessage::complete(Role::User, "오늘 회의록 정리해 줘")).await.unwrap();
    let r = s.append_message(a.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
    s.finish_message(
        r.id,
        &MessageFinish {
            content: "네, 정리했습니다.".into(),
            state: MessageState::Interrupted,
            token_count: Some(5),
            stats: GenerationStats {
                stop_reason: Some("cancelled".into()),
                gen_tokens_per_s: Some(20.0),
                ..Default::default()
            },
            error: None,
        },
    )
    .await
    .unwrap();
    s.add_attachment(
        r.id,
        &NewAttachment {
            kind: AttachmentKind::Image,
            file_name: "a.png".into(),
            mime: "image/png".into(),
            bytes: vec![1, 2, 3],
            extracted_text: None,
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = s.create_conversation(&NewConversation { title: "Trip plan".into(), ..Default::default() }).await.unwrap();
    s.append_message(b.id, &NewMessage::complete(Role::User, "Plan a meeting in Seoul")).await.unwrap();
    s.close().await;
    (a.id, b.id, r.id)
}

#[tokio::test]
async fn list_show_and_search_as_json() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, reply) = seed(d.path()).await;

    let page = ok_json(d.path(), &["list", "--json"]);
    let ids: Vec<_> = page["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [b, a], "most recent first");
    assert_eq!(page["items"][1]["message_count"], 2);
    let one = ok_json(d.path(), &["list", "--limit", "1", "--json"]);
    assert_eq!(one["next_offset"], 1);

    let show = ok_json(d.path(), &["show", &a.to_string(), "--json"]);
    let msgs = show["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["state"], "complete");
    assert_eq!(msgs[1]["state"], "interrupted");
    assert_eq!(msgs[1]["id"].as_i64(), Some(reply));
    assert_eq!(msgs[1]["attachments"][0]["file_name"], "a.png");

    let hits = ok_json(d.path(), &["search", "회의", "--json"]);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 2, "the title 주간 회의 and the message with 회의록: {hits:?}");
    assert!(hits[0]["message_id"].is_null());
    assert_eq!(hits[1]["snippet"], "오늘 <mark>회의</mark>록 정리해 줘");

    let text = hearth(d.path(), &["search", "meet"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("Plan a [meeting] in Seoul"));
}

#[tokio::test]
async fn export_and_import_round_trip_through_files() {
    let d = tempfile::tempdir().unwrap();
    let (a, _, _) = seed(d.path()).await;
    let md = hearth(d.path(), &["export", &a.to_string(), "--format", "md"]);
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("# 주간 회의\n") && md.contains("_(interrupted)_"), "{md}");

    let file = d.path().join("a.json");
    let w = ok_json(
        d.path(),
        &["export", &a.to_string(), "--format", "json", "--output", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(w["conversation_id"].as_i64(), Some(a));

    let other = tempfile::tempdir().unwrap();
    let imported = ok_json(other.path(), &["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(imported["title"], "주간 회의");
    let before = ok_json(d.path(), &["show", &a.to_string(), "--json"]);
    let after = ok_json(other.path(), &["show", &imported["id"].to_string(), "--json"]);
    assert_eq!(before, after, "restored exactly");

    let bad = d.path().join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let out = hearth(d.path(), &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Hearth conversation export"));
}

#[tokio::test]
async fn missing_conversations_and_corrupt_databases_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    seed(d.path()).await;
    let out = hearth(d.path(), &["show", "999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("conversation 999 does not exist"));

    let c = tempfile::tempdir().unwrap();
    let db = c.path().join(DB_FILE);
    std::fs::write(&db, b"definitely not sqlite, but someone's precious file").unwrap();
    let out = hearth(c.path(), &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged") && err.contains("hearth history recover"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), b"definitely not sqlite, but someone's precious file");

    let rec = ok_json(c.path(), &["recover", "--json"]);
    assert_eq!(rec["recovered"], true);
    let kept = PathBuf::from(rec["moved_to"].as_str().unwrap());
    assert_eq!(std::fs::read(kept).unwrap(), b"definitely not sqlite, but someone's precious file");
    let page = ok_json(c.path(), &["list", "--json"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    // A healthy database is not moved.
    assert_eq!(ok_json(c.path(), &["recover", "--json"])["recovered"], false);
}
