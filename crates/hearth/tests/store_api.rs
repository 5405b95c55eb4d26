//! The conversation store against real SQLite files: conversations, messages, branches,
//! attachments, settings, migrations and start-up recovery.

use hearth::store::*;

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open store");
    (dir, store)
}

fn titled(t: &str) -> NewConversation {
    NewConversation { title: t.into(), ..Default::default() }
}

#[tokio::test]
async fn open_creates_database_with_wal_and_foreign_keys() {
    let (dir, store) = fresh().await;
    assert!(dir.path().join(DB_FILE).is_file());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(store.pool()).await.unwrap();
    assert_eq!(fk, 1);
    // The models table is the fixed contract with the model manager.
    sqlx::query(
        "INSERT INTO models (id, display_name, repo, file, quant, size_bytes, sha256, path, mmproj_path, source, added_at)
         VALUES ('local-0123456789ab', 'x', NULL, 'x.gguf', NULL, 1, NULL, '/x.gguf', NULL, 'import', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let bad = sqlx::query(
        "INSERT INTO models (id, display_name, file, size_bytes, path, source, added_at)
         VALUES ('y', 'y', 'y.gguf', 1, '/y', 'stolen', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(bad.is_err(), "source is constrained to download/import");
    store.close().await;
    // Reopening an existing database works and keeps the data.
    let again = Store::open(dir.path()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM models").fetch_one(again.pool()).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn conversations_list_most_recent_first_in_pages_with_pins_and_archive() {
    let (_dir, store) = fresh().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = store.create_conversation(&titled(&format!("c{i}"))).await.unwrap();
        ids.push(c.id);
        // updated_at has millisecond resolution; make the order unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Activity moves c1 to the top.
    store.append_message(ids[1], &NewMessage::complete(Role::User, "hi")).await.unwrap();

    let p1 = store.list_conversations(&ListOptions { limit: 2, ..Default::default() }).await.unwrap();
    let titles: Vec<_> = p1.items.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["c1", "c4"]);
    assert_eq!(p1.items[0].message_count, 1);
    assert_eq!(p1.next_offset, Some(2));
    let p3 = store.list_conversations(&ListOptions { limit: 2, offset: 4, ..Default::default() }).await.unwrap();
    assert_eq!(p3.items.len(), 1);
    assert_eq!(p3.next_offset, None);

    store.set_pinned(ids[0], true).await.unwrap();
    store.set_archived(ids[4], true).await.unwrap();
    store.rename_conversation(ids[2], "renamed").await.unwrap();
    let all = store.list_conversations(&ListOptions::default()).await.unwrap();
    let titles: Vec<_> = all.items.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["c0", "renamed", "c1", "c3"], "pinned first, archived hidden, rename is activity");
    assert!(all.items[0].pinned);
    let archived =
        store.list_conversations(&ListOptions { filter: ArchiveFilter::Archived, ..Default::default() }).await.unwrap();
    assert_eq!(archived.items.len(), 1);
    assert!(archived.items[0].archived);

    assert!(matches!(store.rename_conversation(999, "x").await, Err(StoreError::ConversationNotFound(999))));
    assert!(matches!(store.set_pinned(999, true).await, Err(StoreError::ConversationNotFound(999))));
}

#[tokio::test]
async fn messages_stream_finish_and_delete_cascades() {
    let (dir, store) = fresh().await;
    let c = store
        .create_conversation(&NewConversation {
            title: "t".into(),
            model: Some("gemma".into()),
            system_prompt: Some("be brief".into()),
            sampling: SamplingSettings { temperature: Some(0.7), seed: Some(42), ..Default::default() },
        })
        .await
        .unwrap();
    assert_eq!(store.conversation(c.id).await.unwrap().sampling.seed, Some(42));
    let u = store.append_message(c.id, &NewMessage::complete(Role::User, "hello")).await.unwrap();
    let a = store.append_message(c.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
    assert_eq!(a.state, MessageState::Streaming);
    store.update_message_text(a.id, "Hel").await.unwrap();
    assert_eq!(store.message(a.id).await.unwrap().content, "Hel");
    let fin = store
        .finish_message(
            a.id,
            &MessageFinish {
                content: "Hello there".into(),
                state: MessageState::Complete,
                token_count: Some(3),
                stats: GenerationStats {
                    model: Some("gemma".into()),
                    gen_tokens_per_s: Some(12.5),
                    prompt_tokens_per_s: Some(100.0),
                    stop_reason: Some("eos".into()),
                },
                error: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(fin.state, MessageState::Complete);
    assert_eq!(fin.stats.gen_tokens_per_s, Some(12.5));
    let msgs = store.messages(c.id).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.id).collect::<Vec<_>>(), [u.id, a.id]);

    // A big attachment goes to a content-addressed file; deleting the conversation removes
    // messages, attachments, search entries and the file.
    let big = vec![7u8; 300 * 1024];
    let att = store
        .add_attachment(
            u.id,
            &NewAttachment {
                kind: AttachmentKind::Document,
                file_name: "big.bin".into(),
                mime: "application/octet-stream".into(),
                bytes: big.clone(),
                extracted_text: None,
            },
        )
        .await
        .unwrap();
    let file = dir.path().join("attachments").join(&att.sha256[..2]).join(&att.sha256);
    assert!(file.is_file());
    store.delete_conversation(c.id).await.unwrap();
    assert!(matches!(store.messages(c.id).await, Err(StoreError::ConversationNotFound(_))));
    assert!(matches!(store.message(a.id).await, Err(StoreError::MessageNotFound(_))));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM attachments").fetch_one(store.pool()).await.unwrap();
    assert_eq!(n, 0);
    assert!(!file.exists(), "unused attachment file removed");
    assert!(store.search("hello", &SearchOptions::default()).await.unwrap().is_empty());
    assert!(matches!(
        store.append_message(c.id, &NewMessage::complete(Role::User, "x")).await,
        Err(StoreError::ConversationNotFound(_))
    ));
}

#[tokio::test]
async fn attachments_are_deduplicated_by_sha256() {
    let (_dir, store) = fresh().await;
    let c = store.create_conversation(&titled("a")).await.unwrap();
    let m1 = store.append_message(c.id, &NewMessage::complete(Role::User, "one")).await.unwrap();
    let m2 = store.append_message(c.id, &NewMessage::complete(Role::User, "two")).await.unwrap();
    let png = NewAttachment {
        kind: AttachmentKind::Image,
        file_name: "cat.png".into(),
        mime: "image/png".into(),
        bytes: b"\x89PNG fake but fine".to_vec(),
        extracted_text: None,
    };
    let a1 = store.add_attachment(m1.id, &png).await.unwrap();
    let a2 = store.add_attachment(m2.id, &NewAttachment { file_name: "same.png".into(), ..png.clone() }).await.unwrap();
    assert_eq!(a1.sha256, a2.sha256);
    assert_eq!(a1.byte_size, png.bytes.len() as i64);
    let blobs: i64 = sqlx::query_scalar("SELECT count(*) FROM blobs").fetch_one(store.pool()).await.unwrap();
    assert_eq!(blobs, 1);
    assert_eq!(store.attachment_bytes(&a2).await.unwrap(), png.bytes);
    let msgs = store.messages(c.id).await.unwrap();
    assert_eq!(msgs[1].attachments[0].file_name, "same.png");
    assert!(matches!(store.add_attachment(999, &png).await, Err(StoreError::MessageNotFound(999))));
}

#[tokio::test]
async fn branching_keeps_the_old_branch() {
    let (_dir, store) = fresh().await;
    let c = store.create_conversation(&titled("trip")).await.unwrap();
    let q1 = store.append_message(c.id, &NewMessage::complete(Role::User, "plan a trip")).await.unwrap();
    store.append_message(c.id, &NewMessage::complete(Role::Assistant, "where to?")).await.unwrap();
    let q2 = store.append_message(c.id, &NewMessage::complete(Role::User, "Busan")).await.unwrap();
    store.append_message(c.id, &NewMessage::complete(Role::Assistant, "ok Busan")).await.unwrap();

    // Edit-and-resend q2: the branch has what came before q2, and the edited text is appended.
    let b = store.branch_from_message(q2.id, BranchPoint::Before).await.unwrap();
    assert_eq!(b.branched_from_conversation_id, Some(c.id));
    assert_eq!(b.branched_from_message_id, Some(q2.id));
    store.append_message(b.id, &NewMessage::complete(Role::User, "Seoul")).await.unwrap();
    let texts: Vec<_> = store.messages(b.id).await.unwrap().into_iter().map(|m| m.content).collect();
    assert_eq!(texts, ["plan a trip", "where to?", "Seoul"]);
    let old: Vec<_> = store.messages(c.id).await.unwrap().into_iter().map(|m| m.content).collect();
    assert_eq!(old, ["plan a trip", "where to?", "Busan", "ok Busan"]);

    let t = store.branch_from_message(q1.id, BranchPoint::Through).await.unwrap();
    assert_eq!(store.messages(t.id).await.unwrap().len(), 1);
    // Copies are searchable in their own conversation.
    let hits = store.search("Seoul", &SearchOptions::default()).await.unwrap();
    assert_eq!(hits.iter().filter(|h| h.message_id.is_some()).count(), 1);
    assert!(matches!(store.branch_from_message(12345, BranchPoint::Before).await, Err(StoreError::MessageNotFound(_))));
}

/// A key of this test's own: the store's typed keys, not any particular setting, are under test.
const CONTEXT_LENGTH: SettingKey<u32> = SettingKey::new("context_length");

#[tokio::test]
async fn settings_are_typed() {
    let (_dir, store) = fresh().await;
    assert_eq!(store.get_setting(&CONTEXT_LENGTH).await.unwrap(), None);
    store.set_setting(&CONTEXT_LENGTH, &4096).await.unwrap();
    store.set_setting(&CONTEXT_LENGTH, &8192).await.unwrap();
    assert_eq!(store.get_setting(&CONTEXT_LENGTH).await.unwrap(), Some(8192));
    // The same row read as another type is a clear error, not a silent default.
    let as_string: SettingKey<String> = SettingKey::new("context_length");
    assert!(matches!(store.get_setting(&as_string).await, Err(StoreError::SettingType { .. })));
    store.remove_setting(&CONTEXT_LENGTH).await.unwrap();
    assert_eq!(store.get_setting(&CONTEXT_LENGTH).await.unwrap(), None);
}

#[tokio::test]
async fn streaming_messages_of_a_dead_writer_are_interrupted_but_a_live_writers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path()).await.unwrap();
    let c = writer.create_conversation(&titled("s")).await.unwrap();
    let a = writer.append_message(c.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
    writer.update_message_text(a.id, "partial text").await.unwrap();

    // Another store (as another process would) opens while the writer lives: left alone.
    let reader = Store::open(dir.path()).await.unwrap();
    assert_eq!(reader.message(a.id).await.unwrap().state, MessageState::Streaming);
    drop(reader);

    // The writer goes away without finishing (its lock is released as on a crash).
    writer.close().await;
    drop(writer);
    let after = Store::open(dir.path()).await.unwrap();
    let m = after.message(a.id).await.unwrap();
    assert_eq!(m.state, MessageState::Interrupted);
    assert_eq!(m.content, "partial text");
}

/// Every migration applies to a database made by the ones before it, with data in it.
#[tokio::test]
async fn each_migration_applies_on_top_of_the_previous_ones() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for k in 0..files.len() {
        let partial = tempfile::tempdir().unwrap();
        for f in &files[..k] {
            std::fs::copy(f, partial.path().join(f.file_name().unwrap())).unwrap();
        }
        let data = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", data.path().join(DB_FILE).display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let m = sqlx::migrate::Migrator::new(partial.path()).await.unwrap();
        m.run(&pool).await.unwrap();
        if k > 0 {
            // Data written by the older schema must survive the newer migrations.
            sqlx::query("INSERT INTO conversations (title, created_at, updated_at) VALUES ('old', 1, 1)")
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        let store = Store::open(data.path()).await.unwrap_or_else(|e| panic!("after {k} migrations: {e}"));
        let page = store.list_conversations(&ListOptions::default()).await.unwrap();
        assert_eq!(page.items.len(), usize::from(k > 0));
    }
}

#[tokio::test]
async fn lock_files_of_dead_stores_are_swept_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    // A lock file nobody holds, as a killed process leaves behind.
    std::fs::write(run.join("1-2-3.lock"), b"").unwrap();
    let live = Store::open(dir.path()).await.unwrap();
    let names = |p: &std::path::Path| {
        let mut v: Vec<String> =
            std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let after_first = names(&run);
    assert_eq!(after_first.len(), 1, "stale lock swept, own lock present: {after_first:?}");
    assert_ne!(after_first[0], "1-2-3.lock");
    let second = Store::open(dir.path()).await.unwrap();
    assert_eq!(names(&run).len(), 2, "a live store's lock survives another store's sweep");
    drop(second);
    drop(live);
    assert!(names(&run).is_empty(), "closing removes the lock file");
}
