//! Remote backends: a model served by another machine's OpenAI-compatible server (llama.cpp's
//! `llama-server`, vLLM, another Hearth's `hearth serve`), chosen and chatted with like an
//! installed model, for models too big for this laptop.
//!
//! - [`registry`]: the remote models (a table in the store) and their API keys (owner-only
//!   files beside the database, never in the database or the logs).
//! - [`client`]: the OpenAI chat-completions client that streams a reply and cancels it.

pub mod client;
pub mod registry;

use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

use crate::error::{ErrorCode, HearthError, HearthResult};
use crate::store::Store;

pub use client::{RemoteClient, RemoteFinish, RemoteOptions, RemoteReply};
pub use registry::{RemoteKey, RemoteModel};

/// What can go wrong with a remote model, with the name and URL involved.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0:?} is not a valid name for a remote model: use letters, digits, '.', '_' or '-' (at most 128)")]
    InvalidName(String),
    #[error("{url:?} is not a usable server address: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("a model named {0:?} exists already: remove it first or pick another name")]
    Exists(String),
    #[error("no remote model named {name:?} (remote models: {known})")]
    NotFound { name: String, known: String },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} refused the request ({status}): {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("{url} answered with something that is not an OpenAI-compatible reply: {reason}")]
    Protocol { url: String, reason: String },
    #[error("the connection to {url} broke in the middle of the reply: {reason}")]
    Interrupted { url: String, reason: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the list of remote models cannot be read or written: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Installed(#[from] crate::models::ModelsError),
}

impl RemoteError {
    /// The server's address this error is about, if any.
    pub fn url(&self) -> Option<&str> {
        match self {
            RemoteError::InvalidUrl { url, .. }
            | RemoteError::Unreachable { url, .. }
            | RemoteError::Refused { url, .. }
            | RemoteError::Protocol { url, .. }
            | RemoteError::Interrupted { url, .. } => Some(url),
            _ => None,
        }
    }
}

/// Whether a remote model's server answers `GET /v1/models` with its stored key, and what it
/// offers: what the models page's "check" shows.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemoteCheck {
    pub name: String,
    /// The model ids the server lists (empty when it failed).
    pub models: Vec<String>,
    /// Why it did not answer; `None`: it answered.
    pub error: Option<HearthError>,
}

/// Asks `name`'s server what it offers. A server that does not answer is a result, not an
/// error; an unknown name or an unreadable key file is an error.
pub async fn check(store: &Store, data_dir: &Path, name: &str) -> Result<RemoteCheck, RemoteError> {
    let Some(m) = registry::get(store, data_dir, name).await? else {
        return Err(not_found(store, data_dir, name).await);
    };
    let key = registry::key(data_dir, name)?;
    let result = async { RemoteClient::new(m, key)?.models().await }.await;
    Ok(match result {
        Ok(models) => RemoteCheck { name: name.to_string(), models, error: None },
        Err(e) => {
            let mut err = HearthError::from(e);
            err.details.model = Some(name.to_string());
            // A check, not a reply: the sentence then says nothing about a partial reply.
            err.details.field = Some("check".to_string());
            RemoteCheck { name: name.to_string(), models: Vec::new(), error: Some(err) }
        }
    })
}

async fn not_found(store: &Store, data_dir: &Path, name: &str) -> RemoteError {
    let known = match registry::list(store, data_dir).await {
        Ok(l) if !l.is_empty() => l.into_iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
        _ => "none".to_string(),
    };
    RemoteError::NotFound { name: name.to_string(), known }
}

/// Removes a remote model unless it is the one in use (`model_in_use`, like an installed model):
/// its turns would fail mid-conversation otherwise.
pub async fn remove_unless_loaded(runtime: &crate::runtime::Runtime, name: &str) -> HearthResult<RemoteModel> {
    let st = runtime.status();
    if st.remote_url.is_some() && st.model_id.as_deref() == Some(name) {
        return Err(HearthError::new(
            ErrorCode::ModelInUse,
            format!("{name} is the model in use: load another model before removing it"),
        )
        .with(crate::error::ErrorDetails::model(name)));
    }
    Ok(registry::remove(runtime.store(), runtime.data_dir(), name).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_reports_a_silent_server_as_a_result_and_remove_spares_nothing_unloaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        // A port nobody listens on: taken from the OS, then given back.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        registry::add(&store, dir.path(), "gone", &url, None, None).await.unwrap();

        let c = check(&store, dir.path(), "gone").await.unwrap();
        assert_eq!((c.name.as_str(), c.models.len()), ("gone", 0));
        let e = c.error.unwrap();
        assert_eq!(e.code, ErrorCode::Remote, "{e:?}");
        assert_eq!((e.details.path.as_deref(), e.details.model.as_deref()), (Some(url.as_str()), Some("gone")));
        assert_eq!(e.details.field.as_deref(), Some("check"));

        let err = check(&store, dir.path(), "nope").await.unwrap_err();
        assert!(matches!(&err, RemoteError::NotFound { known, .. } if known == "gone"), "{err}");

        // Not loaded: removed like any other.
        let runtime = Runtime::new(store.clone(), dir.path().to_path_buf(), tokio::runtime::Handle::current());
        assert_eq!(remove_unless_loaded(&runtime, "gone").await.unwrap().name, "gone");
        assert_eq!(remove_unless_loaded(&runtime, "gone").await.unwrap_err().code, ErrorCode::NotFound);
    }
}
