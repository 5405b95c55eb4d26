//! Installed models, kept in the store's `models` table.

use std::path::PathBuf;

use serde::Serialize;
use sqlx::Row;

use super::ModelsError;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Download,
    Import,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Download => "download",
            Source::Import => "import",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstalledModel {
    pub id: String,
    pub display_name: String,
    pub repo: Option<String>,
    pub file: String,
    pub quant: Option<String>,
    pub size_bytes: u64,
    pub sha256: Option<String>,
    pub path: PathBuf,
    pub mmproj_path: Option<PathBuf>,
    pub source: Source,
    /// Unix milliseconds.
    pub added_at: i64,
}

/// Ids are used on the command line and in file names: keep them plain.
pub fn check_id(id: &str) -> Result<(), ModelsError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ModelsError::InvalidId(id.to_string()))
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<InstalledModel, ModelsError> {
    let source: String = row.try_get("source")?;
    let size: i64 = row.try_get("size_bytes")?;
    Ok(InstalledModel {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        repo: row.try_get("repo")?,
        file: row.try_get("file")?,
        quant: row.try_get("quant")?,
        size_bytes: u64::try_from(size).unwrap_or(0),
        sha256: row.try_get("sha256")?,
        path: PathBuf::from(row.try_get::<String, _>("path")?),
        mmproj_path: row.try_get::<Option<String>, _>("mmproj_path")?.map(PathBuf::from),
        source: if source == "import" { Source::Import } else { Source::Download },
        added_at: row.try_get("added_at")?,
    })
}

// A macro so queries stay `&'static str` literals (sqlx 0.9 refuses runtime-built SQL).
macro_rules! columns {
    () => {
        "id, display_name, repo, file, quant, size_bytes, sha256, path, mmproj_path, source, added_at"
    };
}

pub async fn list(store: &Store) -> Result<Vec<InstalledModel>, ModelsError> {
    let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM models ORDER BY added_at, id"))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(store: &Store, id: &str) -> Result<Option<InstalledModel>, ModelsError> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM models WHERE id = ?"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn ids(store: &Store) -> Result<Vec<String>, ModelsError> {
    Ok(list(store).await?.into_iter().map(|m| m.id).collect())
}

/// Adds a model; an existing id is refused unless `replace` (a re-download of the same entry).
pub async fn insert(store: &Store, m: &InstalledModel, replace: bool) -> Result<(), ModelsError> {
    check_id(&m.id)?;
    if !replace {
        if let Some(existing) = get(store, &m.id).await? {
            return Err(ModelsError::AlreadyRegistered { id: m.id.clone(), path: existing.path });
        }
    }
    let sql = if replace {
        concat!("INSERT OR REPLACE INTO models (", columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    } else {
        concat!("INSERT INTO models (", columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    };
    sqlx::query(sql)
        .bind(&m.id)
        .bind(&m.display_name)
        .bind(&m.repo)
        .bind(&m.file)
        .bind(&m.quant)
        .bind(i64::try_from(m.size_bytes).unwrap_or(i64::MAX))
        .bind(&m.sha256)
        .bind(m.path.to_string_lossy().into_owned())
        .bind(m.mmproj_path.as_ref().map(|p| p.to_string_lossy().into_owned()))
        .bind(m.source.as_str())
        .bind(m.added_at)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Model `id`'s maximum context, as kept by [`set_context_length`]; `None` while not known.
pub async fn context_length(store: &Store, id: &str) -> Result<Option<u64>, ModelsError> {
    let n: Option<i64> = sqlx::query_scalar("SELECT context_length FROM models WHERE id = ?")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .flatten();
    Ok(n.map(|n| u64::try_from(n).unwrap_or(0)))
}

/// Keeps model `id`'s maximum context (from its GGUF header), so that listing the models need
/// not read the file again.
pub async fn set_context_length(store: &Store, id: &str, context_length: u64) -> Result<(), ModelsError> {
    sqlx::query("UPDATE models SET context_length = ? WHERE id = ?")
        .bind(i64::try_from(context_length).unwrap_or(i64::MAX))
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Removes the registry row only; returns what was removed.
pub async fn delete(store: &Store, id: &str) -> Result<InstalledModel, ModelsError> {
    let Some(m) = get(store, id).await? else {
        return Err(ModelsError::NotRegistered { id: id.to_string(), registered: ids(store).await? });
    };
    sqlx::query("DELETE FROM models WHERE id = ?").bind(id).execute(store.pool()).await?;
    Ok(m)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
