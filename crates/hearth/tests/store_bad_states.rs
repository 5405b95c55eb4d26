//! A database that is corrupt, locked by another process, read-only, from a newer Hearth or on a
//! full disk gives a clear error; a corrupt database is never overwritten.
//! Unix-only: the read-only and locking set-ups use file modes, mounts and python3.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth::store::*;

fn quick() -> OpenOptions {
    OpenOptions { busy_timeout: Duration::from_millis(200), ..Default::default() }
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_untouched_and_can_be_moved_aside() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join(DB_FILE);
    let garbage = b"this is not a database, it is a shopping list: eggs, milk".repeat(100);
    std::fs::write(&db, &garbage).unwrap();

    let err = Store::open(d.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains("Move it aside") && !err.to_string().contains("hearth "),
        "the message offers the way out, in words a window can show: {err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "never overwritten");

    let (store, aside) = Store::open_fresh_moving_aside(d.path()).await.unwrap();
    let aside = aside.expect("old file moved aside");
    assert_eq!(std::fs::read(&aside).unwrap(), garbage, "old file kept");
    assert!(store.list_conversations(&ListOptions::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn damaged_pages_are_reported_as_corrupt_and_the_file_kept() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = Store::open(d.path()).await.unwrap();
        let c = s.create_conversation(&NewConversation { title: "x".into(), ..Default::default() }).await.unwrap();
        for i in 0..200 {
            s.append_message(c.id, &NewMessage::complete(Role::User, format!("message {i} {}", "padding ".repeat(50))))
                .await
                .unwrap();
        }
        s.close().await;
    }
    let db = d.path().join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16 * 4096);
    // Keep the header and the first page, scribble over the rest of the b-tree pages.
    for b in bytes[4096..].iter_mut() {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let result = Store::open(d.path()).await;
    let err = match result {
        Err(e) => e,
        // If the schema page survived, reading the data must fail instead.
        Ok(s) => match s.check_integrity().await {
            Err(e) => e,
            Ok(()) => panic!("damage not detected"),
        },
    };
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "never overwritten");
}

#[tokio::test]
async fn a_database_locked_by_another_process_gives_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = Store::open(d.path()).await.unwrap();
        let c = s.create_conversation(&NewConversation::default()).await.unwrap();
        s.append_message(c.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
        // Leave a message streaming by a writer that is gone, so the next open must write.
        s.close().await;
    }
    // Another process takes SQLite's exclusive write lock and holds it until told to stop.
    let db = d.path().join(DB_FILE);
    let mut locker = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\nsys.stdin.read()",
        ])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed to hold a lock from another process");
    let mut line = String::new();
    BufReader::new(locker.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let err = Store::open_with(d.path(), &quick()).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked by another process"));

    drop(locker.stdin.take());
    locker.wait().unwrap();
    let s = Store::open_with(d.path(), &quick()).await.expect("opens once the lock is gone");
    let m: String = sqlx::query_scalar("SELECT state FROM messages").fetch_one(s.pool()).await.unwrap();
    assert_eq!(m, "interrupted");
}

#[tokio::test]
async fn a_database_from_a_newer_hearth_is_refused() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = Store::open(d.path()).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
             VALUES (99990101000000, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
        )
        .execute(s.pool())
        .await
        .unwrap();
        s.close().await;
    }
    let err = Store::open(d.path()).await.unwrap_err();
    match &err {
        StoreError::NewerSchema { found, known, .. } => {
            assert_eq!(*found, 99990101000000);
            assert_eq!(*known, Store::known_schema_version());
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("newer version of Hearth"));
}

#[tokio::test]
async fn a_full_disk_gives_a_clear_error_and_keeps_earlier_data() {
    let d = tempfile::tempdir().unwrap();
    let id;
    {
        let s = Store::open(d.path()).await.unwrap();
        id = s.create_conversation(&NewConversation { title: "kept".into(), ..Default::default() }).await.unwrap().id;
        s.close().await;
    }
    let pages: i64 = {
        let s = Store::open(d.path()).await.unwrap();
        let p = sqlx::query_scalar("PRAGMA page_count").fetch_one(s.pool()).await.unwrap();
        s.close().await;
        p
    };
    // SQLite reports SQLITE_FULL when the database may not grow past max_page_count.
    let s =
        Store::open_with(d.path(), &OpenOptions { max_page_count: Some(pages as u32 + 2), ..quick() }).await.unwrap();
    let big = "가".repeat(20_000);
    let mut err = None;
    for _ in 0..50 {
        if let Err(e) = s.append_message(id, &NewMessage::complete(Role::User, big.clone())).await {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the capped database must fill up");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("is full"));
    s.close().await;
    let s = Store::open(d.path()).await.unwrap();
    assert_eq!(s.conversation(id).await.unwrap().title, "kept");
    s.check_integrity().await.unwrap();
}

/// Whether this process can write files it has made read-only (root can).
fn permissions_are_bypassed(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o444)).unwrap();
    let writable = std::fs::OpenOptions::new().append(true).open(&probe).and_then(|mut f| f.write_all(b"y")).is_ok();
    std::fs::remove_file(&probe).unwrap();
    writable
}

#[tokio::test]
async fn a_read_only_database_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let d = base.path().join("data");
    std::fs::create_dir(&d).unwrap();
    let root = permissions_are_bypassed(base.path());
    if root {
        // File modes do not stop root: put the data folder on a tmpfs and remount it read-only.
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&d).status().unwrap();
        assert!(ok.success(), "mount tmpfs (running as root)");
    }
    {
        let s = Store::open(&d).await.unwrap();
        s.create_conversation(&NewConversation { title: "t".into(), ..Default::default() }).await.unwrap();
        s.close().await;
    }
    if root {
        assert!(Command::new("mount").args(["-o", "remount,ro"]).arg(&d).status().unwrap().success());
    } else {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let result = Store::open_with(&d, &quick()).await;
    if root {
        let _ = Command::new("umount").arg(&d).status();
    } else {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"));
}
