//! Attachments: images and documents on messages, their bytes stored once per sha256.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::{now_ms, Attachment, AttachmentKind, ConversationId, MessageId, NewAttachment, Result, Store, StoreError};

/// Bytes up to this size live in the database row; larger ones in a content-addressed file, so
/// the database stays small and quick to back up.
pub const INLINE_MAX: usize = 256 * 1024;

const ATTACHMENT_COLUMNS: &str = "id, message_id, kind, file_name, mime, byte_size, sha256, extracted_text, created_at";

fn attachment_from_row(r: &SqliteRow) -> std::result::Result<Attachment, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    Ok(Attachment {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        kind: AttachmentKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown attachment kind {kind:?}").into()))?,
        file_name: r.try_get("file_name")?,
        mime: r.try_get("mime")?,
        byte_size: r.try_get("byte_size")?,
        sha256: r.try_get("sha256")?,
        extracted_text: r.try_get("extracted_text")?,
        created_at: r.try_get("created_at")?,
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inserts an attachment row for bytes already stored under `sha`.
pub(crate) async fn insert_attachment_row(
    tx: &mut Transaction<'_, Sqlite>,
    message_id: MessageId,
    new: &NewAttachment,
    sha: &str,
    created_at: i64,
) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO attachments (message_id, kind, file_name, mime, byte_size, sha256,
            extracted_text, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(message_id)
    .bind(new.kind.as_str())
    .bind(&new.file_name)
    .bind(&new.mime)
    .bind(new.bytes.len() as i64)
    .bind(sha)
    .bind(&new.extracted_text)
    .bind(created_at)
    .fetch_one(&mut **tx)
    .await
}

/// Largest file accepted as an attachment. Attachments are read whole into memory and stored in
/// the data folder; 64 MiB covers photos and long documents without letting one drop fill it.
pub const ATTACHMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file could not be attached. Nothing is stored when any file of a message fails.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentFileError {
    #[error("the attached file {0} does not exist")]
    Missing(PathBuf),
    #[error("the attached file {0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("cannot read the attached file {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the attached file {path} is too large ({size} bytes; at most {limit} bytes)")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
}

/// Kind and MIME type from a file name's extension: the common image formats are images,
/// anything else a document.
pub fn attachment_kind(file_name: &str) -> (AttachmentKind, &'static str) {
    let ext =
        Path::new(file_name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    match ext.as_str() {
        "png" => (AttachmentKind::Image, "image/png"),
        "jpg" | "jpeg" => (AttachmentKind::Image, "image/jpeg"),
        "webp" => (AttachmentKind::Image, "image/webp"),
        "gif" => (AttachmentKind::Image, "image/gif"),
        "bmp" => (AttachmentKind::Image, "image/bmp"),
        "txt" => (AttachmentKind::Document, "text/plain"),
        "md" => (AttachmentKind::Document, "text/markdown"),
        "pdf" => (AttachmentKind::Document, "application/pdf"),
        _ => (AttachmentKind::Document, "application/octet-stream"),
    }
}

/// Reads a file the user attached (a path from the desktop app's drop zone) into a
/// [`NewAttachment`] named after the file. Refuses missing, unreadable and oversized files
/// (over [`ATTACHMENT_MAX_BYTES`]) before reading them whole.
pub fn read_attachment_file(path: &Path) -> Result<NewAttachment, AttachmentFileError> {
    let unreadable = |source| AttachmentFileError::Unreadable { path: path.to_path_buf(), source };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AttachmentFileError::Missing(path.to_path_buf()))
        }
        Err(e) => return Err(unreadable(e)),
    };
    if !meta.is_file() {
        return Err(AttachmentFileError::NotAFile(path.to_path_buf()));
    }
    let too_large =
        |size| AttachmentFileError::TooLarge { path: path.to_path_buf(), size, limit: ATTACHMENT_MAX_BYTES };
    if meta.len() > ATTACHMENT_MAX_BYTES {
        return Err(too_large(meta.len()));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    // The file may have grown since its size was checked.
    if bytes.len() as u64 > ATTACHMENT_MAX_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    let file_name =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let (kind, mime) = attachment_kind(&file_name);
    Ok(NewAttachment { kind, file_name, mime: mime.to_string(), bytes, extracted_text: None })
}

/// Relative path of a content-addressed file: `attachments/<2 hex>/<sha256>`.
fn blob_rel_path(sha: &str) -> PathBuf {
    PathBuf::from("attachments").join(&sha[..2]).join(sha)
}

impl Store {
    /// Attaches a file to a message. Identical bytes already stored (by sha256) are reused.
    pub async fn add_attachment(&self, message_id: MessageId, new: &NewAttachment) -> Result<Attachment> {
        let sha = sha256_hex(&new.bytes);
        self.put_blob(&sha, &new.bytes).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attachments (message_id, kind, file_name, mime, byte_size, sha256,
                extracted_text, created_at)
             SELECT id, ?, ?, ?, ?, ?, ?, ? FROM messages WHERE id = ? RETURNING id",
        )
        .bind(new.kind.as_str())
        .bind(&new.file_name)
        .bind(&new.mime)
        .bind(new.bytes.len() as i64)
        .bind(&sha)
        .bind(&new.extracted_text)
        .bind(now_ms())
        .bind(message_id)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.err(e))?
        .ok_or(StoreError::MessageNotFound(message_id))?;
        self.attachment(id).await
    }

    /// Stores bytes under their sha256 unless already there.
    pub(crate) async fn put_blob(&self, sha: &str, bytes: &[u8]) -> Result<()> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE sha256 = ?")
            .bind(sha)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        if exists.is_some() {
            return Ok(());
        }
        let (data, file_path) = if bytes.len() <= INLINE_MAX {
            (Some(bytes), None)
        } else {
            let rel = blob_rel_path(sha);
            let abs = self.data_dir().join(&rel);
            if let Some(dir) = abs.parent() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    action: "create",
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            // Write then rename, so a crash never leaves a truncated file under a valid address.
            let tmp = abs.with_extension("partial");
            std::fs::write(&tmp, bytes).map_err(|source| io_error("write", &tmp, source))?;
            std::fs::rename(&tmp, &abs).map_err(|source| io_error("rename", &tmp, source))?;
            (None, Some(rel.to_string_lossy().replace('\\', "/")))
        };
        sqlx::query(
            "INSERT OR IGNORE INTO blobs (sha256, byte_size, data, file_path, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(sha)
        .bind(bytes.len() as i64)
        .bind(data)
        .bind(file_path)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn attachment(&self, id: i64) -> Result<Attachment> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::AttachmentNotFound(id))?;
        attachment_from_row(&row).map_err(|e| self.err(e))
    }

    pub(crate) async fn attachments_of(&self, message_id: MessageId) -> Result<Vec<Attachment>> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE message_id = ? ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        rows.iter().map(attachment_from_row).collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    pub(crate) async fn attachments_of_conversation(
        &self,
        conversation_id: ConversationId,
    ) -> Result<HashMap<MessageId, Vec<Attachment>>> {
        let rows = sqlx::query(
            "SELECT a.id, a.message_id, a.kind, a.file_name, a.mime, a.byte_size, a.sha256,
                a.extracted_text, a.created_at
             FROM attachments a JOIN messages m ON m.id = a.message_id
             WHERE m.conversation_id = ? ORDER BY a.id",
        )
        .bind(conversation_id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let mut out: HashMap<MessageId, Vec<Attachment>> = HashMap::new();
        for r in &rows {
            let a = attachment_from_row(r).map_err(|e| self.err(e))?;
            out.entry(a.message_id).or_default().push(a);
        }
        Ok(out)
    }

    /// The bytes of an attachment, checked against its sha256.
    pub async fn attachment_bytes(&self, attachment: &Attachment) -> Result<Vec<u8>> {
        self.blob_bytes(&attachment.sha256).await
    }

    pub(crate) async fn blob_bytes(&self, sha: &str) -> Result<Vec<u8>> {
        let row = sqlx::query("SELECT data, file_path FROM blobs WHERE sha256 = ?")
            .bind(sha)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::Corrupt {
                path: self.db_path().to_path_buf(),
                detail: format!("attachment bytes {sha} are missing"),
            })?;
        let data: Option<Vec<u8>> = row.try_get(0).map_err(|e| self.err(e))?;
        let file_path: Option<String> = row.try_get(1).map_err(|e| self.err(e))?;
        let bytes = match (data, file_path) {
            (Some(d), _) => d,
            (None, Some(rel)) => {
                let abs = self.data_dir().join(rel);
                std::fs::read(&abs).map_err(|source| io_error("read", &abs, source))?
            }
            (None, None) => Vec::new(),
        };
        if sha256_hex(&bytes) != sha {
            return Err(StoreError::Corrupt {
                path: self.db_path().to_path_buf(),
                detail: format!("attachment bytes do not match their sha256 {sha}"),
            });
        }
        Ok(bytes)
    }

    /// Removes stored bytes no attachment refers to any more, and their files.
    pub async fn collect_unused_blobs(&self) -> Result<u64> {
        let rows = sqlx::query(
            "DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM attachments)
             RETURNING file_path",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        for r in &rows {
            if let Ok(Some(rel)) = r.try_get::<Option<String>, _>(0) {
                let abs = self.data_dir().join(rel);
                if let Err(e) = std::fs::remove_file(&abs) {
                    log::warn!("could not remove unused attachment file {}: {e}", abs.display());
                }
            }
        }
        Ok(rows.len() as u64)
    }
}

fn io_error(action: &'static str, path: &std::path::Path, source: std::io::Error) -> StoreError {
    if source.kind() == std::io::ErrorKind::StorageFull {
        StoreError::DiskFull { path: path.to_path_buf(), detail: source.to_string() }
    } else {
        StoreError::Io { action, path: path.to_path_buf(), source }
    }
}
