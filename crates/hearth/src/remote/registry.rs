//! The remote models: the `remote_models` table, and each one's API key in an owner-only file
//! (`remote_keys/<name>` in the data folder), stored like the Hugging Face token.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::Row;

use super::RemoteError;
use crate::models::registry as installed;
use crate::store::Store;

/// A model on another machine's OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteModel {
    /// Chosen like an installed model's id; unique across both.
    pub name: String,
    /// The server's base URL (no trailing `/v1`).
    pub url: String,
    /// The server's model id to ask for; `None`: the first one the server lists.
    pub model: Option<String>,
    /// Whether an API key is stored for it (the key itself never leaves its file).
    pub has_key: bool,
    /// Unix milliseconds.
    pub added_at: i64,
}

/// A remote server's API key (redacted in Debug output, like every [`Secret`]).
pub type RemoteKey = crate::models::token::Secret;

/// A server address as given (`http://host:8080`, `.../`, `.../v1`), as stored: its base.
/// Credentials in the URL are refused: they would end up in the database (use a key).
pub fn normalize_url(url: &str) -> Result<String, RemoteError> {
    let bad = |reason| RemoteError::InvalidUrl { url: url.to_string(), reason };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| bad("not a URL (e.g. http://192.168.1.20:8080)"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// servers are supported"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it holds a user name or password: give the key with --key instead"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a server address has no ?query or #fragment"));
    }
    let s = parsed.as_str().trim_end_matches('/');
    Ok(s.strip_suffix("/v1").unwrap_or(s).to_string())
}

fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("remote_keys")
}

/// Where `name`'s key lives; names are checked ids, so they are safe file names.
fn key_path(data_dir: &Path, name: &str) -> PathBuf {
    keys_dir(data_dir).join(name)
}

fn check_name(name: &str) -> Result<(), RemoteError> {
    installed::check_id(name).map_err(|_| RemoteError::InvalidName(name.to_string()))
}

/// `name`'s API key, if one is stored.
pub fn key(data_dir: &Path, name: &str) -> Result<Option<RemoteKey>, RemoteError> {
    check_name(name)?;
    let path = key_path(data_dir, name);
    match std::fs::read_to_string(&path) {
        Ok(k) => Ok(RemoteKey::new(&k)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RemoteError::Io { what: "read", path, source }),
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow, data_dir: &Path) -> Result<RemoteModel, RemoteError> {
    let name: String = row.try_get("name")?;
    Ok(RemoteModel {
        has_key: key_path(data_dir, &name).is_file(),
        url: row.try_get("url")?,
        model: row.try_get("model")?,
        added_at: row.try_get("added_at")?,
        name,
    })
}

pub async fn list(store: &Store, data_dir: &Path) -> Result<Vec<RemoteModel>, RemoteError> {
    let rows = sqlx::query("SELECT name, url, model, added_at FROM remote_models ORDER BY added_at, name")
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(|r| from_row(r, data_dir)).collect()
}

pub async fn get(store: &Store, data_dir: &Path, name: &str) -> Result<Option<RemoteModel>, RemoteError> {
    let row = sqlx::query("SELECT name, url, model, added_at FROM remote_models WHERE name = ?")
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(|r| from_row(r, data_dir)).transpose()
}

/// Adds a remote model (nothing is contacted: `hearth models remote list --check` or the first
/// turn does that). The name must be free among installed and remote models.
pub async fn add(
    store: &Store,
    data_dir: &Path,
    name: &str,
    url: &str,
    model: Option<&str>,
    key: Option<&RemoteKey>,
) -> Result<RemoteModel, RemoteError> {
    check_name(name)?;
    let url = normalize_url(url)?;
    let model = model.map(str::trim).filter(|m| !m.is_empty());
    let taken = installed::get(store, name).await?;
    if taken.is_some() || get(store, data_dir, name).await?.is_some() {
        return Err(RemoteError::Exists(name.to_string()));
    }
    // The key first: a row without its key would later fail with a confusing 401.
    let path = key_path(data_dir, name);
    match key {
        Some(k) => {
            let dir = keys_dir(data_dir);
            std::fs::create_dir_all(&dir).map_err(|source| RemoteError::Io { what: "create", path: dir, source })?;
            crate::models::token::write_private(&path, k.secret().as_bytes()).map_err(|source| RemoteError::Io {
                what: "write",
                path: path.clone(),
                source,
            })?;
        }
        None => remove_key(&path)?,
    }
    let added_at = installed::now_ms();
    sqlx::query("INSERT INTO remote_models (name, url, model, added_at) VALUES (?, ?, ?, ?)")
        .bind(name)
        .bind(&url)
        .bind(model)
        .bind(added_at)
        .execute(store.pool())
        .await?;
    Ok(RemoteModel { name: name.to_string(), url, model: model.map(String::from), has_key: key.is_some(), added_at })
}

fn remove_key(path: &Path) -> Result<(), RemoteError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RemoteError::Io { what: "remove", path: path.to_owned(), source }),
    }
}

/// Removes a remote model and its key; returns what was removed.
pub async fn remove(store: &Store, data_dir: &Path, name: &str) -> Result<RemoteModel, RemoteError> {
    let Some(m) = get(store, data_dir, name).await? else {
        let known: Vec<String> = list(store, data_dir).await?.into_iter().map(|m| m.name).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return Err(RemoteError::NotFound { name: name.to_string(), known });
    };
    sqlx::query("DELETE FROM remote_models WHERE name = ?").bind(name).execute(store.pool()).await?;
    remove_key(&key_path(data_dir, name))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_stored_as_their_base() {
        assert_eq!(normalize_url("http://10.0.0.2:8080").unwrap(), "http://10.0.0.2:8080");
        assert_eq!(normalize_url(" http://10.0.0.2:8080/ ").unwrap(), "http://10.0.0.2:8080");
        assert_eq!(normalize_url("https://gpu.example/v1").unwrap(), "https://gpu.example");
        assert_eq!(normalize_url("https://gpu.example/llm/v1/").unwrap(), "https://gpu.example/llm");
        for bad in ["ftp://x", "not a url", "http://user:pw@host:1", "http://host/?k=secret", "file:///etc"] {
            assert!(matches!(normalize_url(bad), Err(RemoteError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let k = RemoteKey::new(" sk-very-secret ").unwrap();
        assert_eq!(k.secret(), "sk-very-secret");
        assert!(!format!("{k:?}").contains("secret"));
        assert!(RemoteKey::new("  ").is_none());
    }

    #[tokio::test]
    async fn add_list_remove_keeps_the_key_in_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let key = RemoteKey::new("sk-123").unwrap();
        let m =
            add(&store, dir.path(), "big-27b", "http://127.0.0.1:9/v1", Some("gemma-3-27b"), Some(&key)).await.unwrap();
        assert_eq!((m.url.as_str(), m.model.as_deref(), m.has_key), ("http://127.0.0.1:9", Some("gemma-3-27b"), true));
        assert_eq!(list(&store, dir.path()).await.unwrap(), vec![m.clone()]);
        assert_eq!(self::key(dir.path(), "big-27b").unwrap(), Some(key));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path(), "big-27b")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The key is nowhere in the database file.
        for file in [store.db_path().to_owned(), store.db_path().with_extension("db-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(!bytes.windows(6).any(|w| w == b"sk-123"), "{}", file.display());
        }

        assert!(matches!(
            add(&store, dir.path(), "big-27b", "http://h", None, None).await,
            Err(RemoteError::Exists(_))
        ));
        assert!(matches!(
            add(&store, dir.path(), "../x", "http://h", None, None).await,
            Err(RemoteError::InvalidName(_))
        ));
        let gone = remove(&store, dir.path(), "big-27b").await.unwrap();
        assert_eq!(gone.name, "big-27b");
        assert_eq!(self::key(dir.path(), "big-27b").unwrap(), None);
        let err = remove(&store, dir.path(), "big-27b").await.unwrap_err();
        assert!(matches!(&err, RemoteError::NotFound { known, .. } if known == "none"), "{err}");
    }
}
