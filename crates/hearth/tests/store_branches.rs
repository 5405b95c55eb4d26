//! The message tree: the 0002 migration turns existing conversations into one path each,
//! messages append under the active leaf or a chosen parent, siblings come in creation order,
//! selecting a branch follows the newest descendants, `messages()` is only the active path, and
//! deleting a conversation removes the whole tree.

use std::path::Path;

use hearth::store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open store");
    (dir, store)
}

fn user(t: &str) -> NewMessage {
    NewMessage::complete(Role::User, t)
}

fn bot(t: &str) -> NewMessage {
    NewMessage::complete(Role::Assistant, t)
}

fn texts(ms: &[Message]) -> Vec<&str> {
    ms.iter().map(|m| m.content.as_str()).collect()
}

/// A database as Hearth wrote it before the message tree: only migration 0001 applied, flat
/// messages in two conversations (interleaved ids) and one empty conversation.
async fn old_database(data_dir: &Path) {
    let only_first = data_dir.join("migrations-0001");
    std::fs::create_dir_all(&only_first).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/0001_initial.sql");
    std::fs::copy(&src, only_first.join("0001_initial.sql")).unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new().filename(data_dir.join(DB_FILE)).create_if_missing(true).foreign_keys(true),
        )
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(only_first.as_path()).await.unwrap().run(&pool).await.unwrap();
    for (id, title) in [(1, "first"), (2, "second"), (3, "empty")] {
        sqlx::query("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, 0, 0)")
            .bind(id)
            .bind(title)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Interleaved: conversation 1 has 10, 12, 13; conversation 2 has 11, 14.
    for (id, conv, role, text) in [
        (10, 1, "user", "a1"),
        (11, 2, "user", "b1"),
        (12, 1, "assistant", "a2"),
        (13, 1, "user", "a3"),
        (14, 2, "assistant", "b2"),
    ] {
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, role, content, created_at, updated_at)
             VALUES (?, ?, ?, ?, 0, 0)",
        )
        .bind(id)
        .bind(conv)
        .bind(role)
        .bind(text)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn migration_turns_each_old_conversation_into_one_path() {
    let dir = tempfile::tempdir().unwrap();
    old_database(dir.path()).await;
    let store = Store::open(dir.path()).await.expect("migrates");
    assert!(Store::known_schema_version() >= 2);

    let a = store.messages(1).await.unwrap();
    assert_eq!(texts(&a), ["a1", "a2", "a3"]);
    let parents: Vec<_> = a.iter().map(|m| m.parent_id).collect();
    assert_eq!(parents, [None, Some(10), Some(12)]);
    assert_eq!(store.active_leaf(1).await.unwrap(), Some(13));

    let b = store.messages(2).await.unwrap();
    assert_eq!(texts(&b), ["b1", "b2"]);
    assert_eq!(b[1].parent_id, Some(11));
    assert_eq!(store.active_leaf(2).await.unwrap(), Some(14));

    assert_eq!(store.active_leaf(3).await.unwrap(), None);
    assert!(store.messages(3).await.unwrap().is_empty());

    // Every message is its own only version.
    for m in a.iter().chain(&b) {
        assert_eq!(store.siblings(m.id).await.unwrap(), [m.id]);
    }
    // And the migrated conversation goes on where it ended.
    let next = store.append_message(1, &bot("a4")).await.unwrap();
    assert_eq!(next.parent_id, Some(13));
}

/// q1 → r1, then a second reply r2 beside r1, then q2 under r2.
async fn branched(store: &Store) -> (ConversationId, [Message; 4]) {
    let c = store.create_conversation(&NewConversation::default()).await.unwrap();
    let q1 = store.append_message(c.id, &user("q1")).await.unwrap();
    let r1 = store.append_message(c.id, &bot("r1")).await.unwrap();
    let r2 = store.append_child(c.id, Some(q1.id), &bot("r2"), &[]).await.unwrap();
    let q2 = store.append_message(c.id, &user("q2")).await.unwrap();
    (c.id, [q1, r1, r2, q2])
}

#[tokio::test]
async fn appending_under_a_parent_makes_a_sibling_and_the_active_branch() {
    let (_d, store) = fresh().await;
    let (c, [q1, r1, r2, q2]) = branched(&store).await;
    assert_eq!(q1.parent_id, None);
    assert_eq!(r1.parent_id, Some(q1.id));
    assert_eq!(r2.parent_id, Some(q1.id), "a regenerated reply shares the original's parent");
    assert_eq!(q2.parent_id, Some(r2.id), "append_message continues the active branch");
    assert_eq!(store.active_leaf(c).await.unwrap(), Some(q2.id));

    // messages() is only the active path: r1 is not on it.
    assert_eq!(texts(&store.messages(c).await.unwrap()), ["q1", "r2", "q2"]);
    assert_eq!(texts(&store.path_to(r1.id).await.unwrap()), ["q1", "r1"]);

    // A second first message (an edit of q1) is a root-level sibling.
    let q1b = store.append_child(c, None, &user("q1 edited"), &[]).await.unwrap();
    assert_eq!(q1b.parent_id, None);
    assert_eq!(texts(&store.messages(c).await.unwrap()), ["q1 edited"]);

    // A parent from another conversation is refused, and nothing is stored.
    let other = store.create_conversation(&NewConversation::default()).await.unwrap();
    let before = store.conversation(c).await.unwrap().message_count;
    assert!(matches!(
        store.append_child(other.id, Some(q1.id), &bot("x"), &[]).await,
        Err(StoreError::MessageNotFound(id)) if id == q1.id
    ));
    assert_eq!(store.conversation(c).await.unwrap().message_count, before);
    assert!(store.messages(other.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn siblings_come_in_creation_order() {
    let (_d, store) = fresh().await;
    let (c, [q1, r1, r2, q2]) = branched(&store).await;
    let r3 = store.append_child(c, Some(q1.id), &bot("r3"), &[]).await.unwrap();
    assert_eq!(store.siblings(r2.id).await.unwrap(), [r1.id, r2.id, r3.id]);
    assert_eq!(store.siblings(r1.id).await.unwrap(), [r1.id, r2.id, r3.id]);
    assert_eq!(store.siblings(q2.id).await.unwrap(), [q2.id]);
    let q1b = store.append_child(c, None, &user("q1b"), &[]).await.unwrap();
    assert_eq!(store.siblings(q1.id).await.unwrap(), [q1.id, q1b.id]);
    assert!(matches!(store.siblings(9999).await, Err(StoreError::MessageNotFound(9999))));

    // The tree gives the same answer for every message at once.
    let tree = store.message_tree(c).await.unwrap();
    let r2_now = store.message(r2.id).await.unwrap();
    assert_eq!(tree.siblings(&r2_now), [r1.id, r2.id, r3.id]);
    assert_eq!(tree.siblings(&store.message(q1b.id).await.unwrap()), [q1.id, q1b.id]);
    assert_eq!(tree.children.get(&Some(r2.id)).unwrap(), &vec![q2.id]);
}

#[tokio::test]
async fn select_branch_follows_the_newest_descendants() {
    let (_d, store) = fresh().await;
    let (c, [q1, r1, r2, q2]) = branched(&store).await;
    // Under r1: two follow-ups, the second newer; under the newer one a reply.
    store.select_branch(r1.id).await.unwrap();
    let f1 = store.append_message(c, &user("f1")).await.unwrap();
    let f2 = store.append_child(c, Some(r1.id), &user("f2"), &[]).await.unwrap();
    let f2r = store.append_message(c, &bot("f2r")).await.unwrap();
    assert_eq!(f1.parent_id, Some(r1.id));

    // Back to r2's branch: its only descendant q2 is the leaf.
    assert_eq!(store.select_branch(r2.id).await.unwrap(), q2.id);
    assert_eq!(texts(&store.messages(c).await.unwrap()), ["q1", "r2", "q2"]);

    // Through r1: the newest child at each step (f2, then f2r), not the first (f1).
    assert_eq!(store.select_branch(r1.id).await.unwrap(), f2r.id);
    assert_eq!(texts(&store.messages(c).await.unwrap()), ["q1", "r1", "f2", "f2r"]);

    // Through the root: q1's newest child is r2 (created after r1).
    assert_eq!(store.select_branch(q1.id).await.unwrap(), q2.id);
    // A leaf selects itself.
    assert_eq!(store.select_branch(f1.id).await.unwrap(), f1.id);
    assert_eq!(texts(&store.messages(c).await.unwrap()), ["q1", "r1", "f1"]);
    let _ = f2;

    assert!(matches!(store.select_branch(4242).await, Err(StoreError::MessageNotFound(4242))));
}

#[tokio::test]
async fn export_and_cli_branches_use_the_active_path() {
    let (_d, store) = fresh().await;
    let (c, [q1, _r1, r2, q2]) = branched(&store).await;
    let export = store.export_json(c).await.unwrap();
    assert_eq!(texts(&export.messages), ["q1", "r2", "q2"]);

    // Import is one linear path whatever the export's parents say.
    let mut tampered = export.clone();
    for m in &mut tampered.messages {
        m.parent_id = None;
    }
    let copy = store.import_json(&tampered).await.unwrap();
    let imported = store.messages(copy.id).await.unwrap();
    assert_eq!(texts(&imported), ["q1", "r2", "q2"]);
    assert_eq!(imported[1].parent_id, Some(imported[0].id));
    assert_eq!(imported[2].parent_id, Some(imported[1].id));

    // The CLI's branch into a new conversation copies the path through q2 (not r1).
    let b = store.branch_from_message(q2.id, BranchPoint::Through).await.unwrap();
    let copied = store.messages(b.id).await.unwrap();
    assert_eq!(texts(&copied), ["q1", "r2", "q2"]);
    assert_eq!(copied[2].parent_id, Some(copied[1].id));
    let before = store.branch_from_message(r2.id, BranchPoint::Before).await.unwrap();
    assert_eq!(texts(&store.messages(before.id).await.unwrap()), ["q1"]);
    let _ = q1;
}

#[tokio::test]
async fn attachments_are_stored_with_the_message_and_deleting_removes_the_tree() {
    let (dir, store) = fresh().await;
    let (c, [q1, _r1, _r2, _q2]) = branched(&store).await;
    let big = vec![7u8; 300_000];
    let att = NewAttachment {
        kind: AttachmentKind::Document,
        file_name: "notes.txt".into(),
        mime: "text/plain".into(),
        bytes: big.clone(),
        extracted_text: None,
    };
    let q1b = store.append_child(c, None, &user("q1b"), &[att]).await.unwrap();
    assert_eq!(q1b.attachments.len(), 1);
    assert_eq!(q1b.attachments[0].file_name, "notes.txt");
    assert_eq!(store.messages(c).await.unwrap()[0].attachments.len(), 1);
    assert_eq!(store.attachment_bytes(&q1b.attachments[0]).await.unwrap(), big);
    let blob_file =
        dir.path().join("attachments").join(&q1b.attachments[0].sha256[..2]).join(&q1b.attachments[0].sha256);
    assert!(blob_file.is_file());

    store.delete_conversation(c).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(store.pool()).await.unwrap();
    assert_eq!(left, 0, "every branch is gone");
    let atts: i64 = sqlx::query_scalar("SELECT count(*) FROM attachments").fetch_one(store.pool()).await.unwrap();
    assert_eq!(atts, 0);
    assert!(!blob_file.exists(), "unused bytes are removed");
    assert!(matches!(store.message(q1.id).await, Err(StoreError::MessageNotFound(_))));
    assert!(matches!(store.messages(c).await, Err(StoreError::ConversationNotFound(_))));
}

#[test]
fn attachment_files_are_read_with_kind_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("Photo.PNG");
    std::fs::write(&png, b"\x89PNG fake").unwrap();
    let a = read_attachment_file(&png).unwrap();
    assert_eq!((a.kind, a.mime.as_str(), a.file_name.as_str()), (AttachmentKind::Image, "image/png", "Photo.PNG"));
    for (name, kind) in [
        ("a.jpg", AttachmentKind::Image),
        ("a.jpeg", AttachmentKind::Image),
        ("a.webp", AttachmentKind::Image),
        ("a.gif", AttachmentKind::Image),
        ("a.bmp", AttachmentKind::Image),
        ("a.pdf", AttachmentKind::Document),
        ("a.txt", AttachmentKind::Document),
        ("noext", AttachmentKind::Document),
    ] {
        assert_eq!(attachment_kind(name).0, kind, "{name}");
    }

    let missing = dir.path().join("gone.txt");
    assert!(matches!(read_attachment_file(&missing), Err(AttachmentFileError::Missing(p)) if p == missing));
    assert!(matches!(read_attachment_file(dir.path()), Err(AttachmentFileError::NotAFile(_))));
    let huge = dir.path().join("huge.bin");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(ATTACHMENT_MAX_BYTES + 1).unwrap(); // sparse: no real disk use
    let e = read_attachment_file(&huge).unwrap_err();
    assert!(matches!(e, AttachmentFileError::TooLarge { size, .. } if size == ATTACHMENT_MAX_BYTES + 1));
    assert!(e.to_string().contains("too large"), "{e}");
}
