//! What can go wrong reading a document, in words a user can act on.

use std::path::PathBuf;

/// Errors from [`crate::documents`]. Every variant names the file when one is known.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{what} is {size} bytes, more than the {limit}-byte limit for documents")]
    TooLarge { what: String, size: u64, limit: u64 },

    #[error("{what} nests {depth} levels deep, more than the limit of {limit}")]
    TooDeep { what: String, depth: usize, limit: usize },

    #[error("{what} has more than {limit} parts")]
    TooManyParts { what: String, limit: usize },

    #[error("{what} has no text")]
    NoText { what: String },

    #[error("{what} has no text layer (a scanned PDF?); Hearth cannot read text from images of pages")]
    NoTextLayer { what: String },

    #[error("{what} is encrypted; save an unprotected copy and try again")]
    Encrypted { what: String },

    #[error("{what} looks like binary data, not text ({detail})")]
    Binary { what: String, detail: String },

    #[error("{what} is not a readable {kind} file: {detail}")]
    Damaged { what: String, kind: &'static str, detail: String },

    #[error("reading {what} took longer than {seconds} s and was stopped")]
    Timeout { what: String, seconds: u64 },

    #[error("the {kind} reader failed on {what} ({detail}); the file was skipped")]
    ParserFailed { what: String, kind: &'static str, detail: String },
}

pub type Result<T> = std::result::Result<T, DocumentError>;
