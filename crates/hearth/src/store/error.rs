//! What can go wrong with the conversation database, in words a user can act on.

use std::path::PathBuf;

/// Errors from [`crate::store::Store`]. Every variant that concerns the database file names it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },

    #[error(
        "the database {path} is damaged or is not a Hearth database ({detail}); it has been left \
         untouched. Move it aside to start a fresh one"
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error("the database {path} is locked by another process (is another Hearth running?): {detail}")]
    Locked { path: PathBuf, detail: String },

    #[error("the database {path} is read-only; Hearth needs to write to it: {detail}")]
    ReadOnly { path: PathBuf, detail: String },

    #[error(
        "the database {path} was written by a newer version of Hearth (schema version {found}, this \
         version knows up to {known}); update Hearth to open it"
    )]
    NewerSchema { path: PathBuf, found: i64, known: i64 },

    #[error("the disk holding {path} is full; free some space and try again ({detail})")]
    DiskFull { path: PathBuf, detail: String },

    #[error("conversation {0} does not exist")]
    ConversationNotFound(i64),

    #[error("message {0} does not exist")]
    MessageNotFound(i64),

    #[error("attachment {0} does not exist")]
    AttachmentNotFound(i64),

    #[error("the search query {0:?} has no words to search for")]
    EmptyQuery(String),

    #[error("cannot import conversation: {0}")]
    Import(String),

    #[error("setting {key:?} holds a value of the wrong type: {source}")]
    SettingType { key: String, source: serde_json::Error },

    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },

    #[error("updating the database schema of {path} failed: {detail}")]
    Migrate { path: PathBuf, detail: String },

    #[error("database error on {path}: {source}")]
    Db { path: PathBuf, source: sqlx::Error },
}

/// SQLite primary result codes we turn into specific errors.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// Turns a driver error into the variant a user can act on, naming the database file.
pub(crate) fn classify(path: &std::path::Path, e: sqlx::Error) -> StoreError {
    let path = path.to_path_buf();
    if let sqlx::Error::Database(db) = &e {
        // sqlx reports SQLite's extended result code as a decimal string; the low byte is the
        // primary code.
        let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(-1) & 0xff;
        let detail = db.message().to_string();
        match code {
            SQLITE_BUSY | SQLITE_LOCKED => return StoreError::Locked { path, detail },
            SQLITE_READONLY => return StoreError::ReadOnly { path, detail },
            SQLITE_CORRUPT | SQLITE_NOTADB => return StoreError::Corrupt { path, detail },
            SQLITE_FULL => return StoreError::DiskFull { path, detail },
            SQLITE_IOERR if detail.contains("full") => return StoreError::DiskFull { path, detail },
            SQLITE_CANTOPEN if is_read_only(&path) => return StoreError::ReadOnly { path, detail },
            _ => {}
        }
    }
    if let sqlx::Error::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::DiskFull { path, detail: io.to_string() };
        }
    }
    StoreError::Db { path, source: e }
}

/// Whether the file (or, when it does not exist, its folder) cannot be written.
fn is_read_only(path: &std::path::Path) -> bool {
    let target = if path.exists() { path } else { path.parent().unwrap_or(path) };
    std::fs::metadata(target).map(|m| m.permissions().readonly()).unwrap_or(false)
        || std::fs::OpenOptions::new().append(true).open(path).is_err_and(|e| {
            matches!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied)
        })
}

pub(crate) fn io_kind_is_read_only(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied)
}
