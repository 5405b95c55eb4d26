//! Remote backends: a model served by another machine's OpenAI-compatible server (llama.cpp's
//! `llama-server`, vLLM, another Hearth's `hearth serve`), chosen and chatted with like an
//! installed model, for models too big for this laptop.
//!
//! - [`registry`]: the remote models (a table in the store) and their API keys (owner-only
//!   files beside the database, never in the database or the logs).
//! - [`client`]: the OpenAI chat-completions client that streams a reply and cancels it.

pub mod client;
pub mod registry;

use std::path::PathBuf;

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
