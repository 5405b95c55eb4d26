//! The one error type of the model manager: every failure a user can cause or meet, with the
//! context needed to act on it.

use std::path::{Path, PathBuf};

use engine::gguf::Mismatch;
use engine::EngineError;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Every part of the estimate, so the user sees what to cut (a vision model's projector and
/// encoder, or the context's KV cache).
fn too_big(e: &super::fit::Estimate, available: u64) -> String {
    let mut parts = vec![format!("{} weights", mib(e.weights_bytes))];
    if e.mmproj_bytes > 0 {
        parts.push(format!("{} vision projector", mib(e.mmproj_bytes)));
        parts.push(format!("{} image encoder at work", mib(e.encoder_peak_bytes)));
    }
    parts.push(format!("{} KV cache for {} tokens", mib(e.kv_bytes), e.context));
    parts.push(format!("{} runtime", mib(e.overhead_bytes)));
    format!(
        "{} needs {} of memory ({}) but only {} is available; close other programs, or choose a shorter context or a smaller model",
        e.model,
        mib(e.total_bytes),
        parts.join(" + "),
        mib(available)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("the model catalog is invalid: {0}")]
    Catalog(String),

    #[error("no catalog model '{id}'; known: {}", known.join(", "))]
    UnknownCatalogId { id: String, known: Vec<String> },

    #[error("model '{id}' has no quantization '{quant}'; available: {}", available.join(", "))]
    UnknownQuant { id: String, quant: String, available: Vec<String> },

    #[error("context {requested} is beyond {model}'s maximum of {max} tokens")]
    ContextTooLong { model: String, requested: u64, max: u64 },

    #[error("context must be at least 1 token")]
    ZeroContext,

    #[error("'{arg}' is neither an existing file nor a registered model id; registered: {}",
        if registered.is_empty() { "none (use `hearth models download` or `hearth models import`)".to_string() } else { registered.join(", ") })]
    UnknownModel { arg: String, registered: Vec<String> },

    #[error("no registered model '{id}'; registered: {}", if registered.is_empty() { "none".to_string() } else { registered.join(", ") })]
    NotRegistered { id: String, registered: Vec<String> },

    #[error("registered model '{id}' points at {}, which no longer exists; remove it with `hearth models remove {id}`", path.display())]
    MissingFile { id: String, path: PathBuf },

    #[error("a model with id '{id}' is already registered (at {}); remove it first or choose another id", path.display())]
    AlreadyRegistered { id: String, path: PathBuf },

    #[error("access to {repo} was refused (HTTP {status}): the repo is gated or private. {}",
        if *has_token { "Your Hugging Face token was sent: accept the model's licence on its Hugging Face page with that account, or check that the token is valid." }
        else { "Accept the licence on its Hugging Face page, then add a Hugging Face read token." })]
    Unauthorized { repo: String, status: u16, has_token: bool },

    #[error("not found on the Hub (HTTP 404): {repo}/{file}")]
    NotFound { repo: String, file: String },

    #[error("the Hub answered HTTP {status} for {url}")]
    Http { url: String, status: u16 },

    #[error("timed out talking to {url}; the download can be resumed by running it again")]
    Timeout { url: String },

    #[error("network error for {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("the Hub's answer for {url} lacks {what}")]
    BadResponse { url: String, what: String },

    #[error("the connection was lost after {} of {} of {file}; run the download again to resume", mib(*downloaded), mib(*total))]
    Interrupted { file: String, downloaded: u64, total: u64 },

    #[error("download of {file} cancelled after {} of {}; run it again to resume", mib(*downloaded), mib(*total))]
    Cancelled { file: String, downloaded: u64, total: u64 },

    #[error(
        "{file} failed verification: sha256 {actual} does not match the expected {expected}; the file was discarded"
    )]
    ShaMismatch { file: String, expected: String, actual: String },

    #[error(
        "{file} has no known sha256 (neither in the catalog nor from the Hub), so it cannot be verified; refusing it"
    )]
    NoChecksum { file: String },

    #[error("the server sent {got} bytes of {file} but announced {expected}")]
    SizeMismatch { file: String, expected: u64, got: u64 },

    #[error("not enough free disk space in {}: {} needed, {} available", path.display(), mib(*needed), mib(*available))]
    DiskFull { path: PathBuf, needed: u64, available: u64 },

    #[error("{}", too_big(estimate, *available))]
    TooBig { estimate: Box<super::fit::Estimate>, available: u64 },

    #[error("{file} is already being downloaded by another Hearth process")]
    AlreadyDownloading { file: String },

    #[error("{}: {reason}", path.display())]
    InvalidGguf { path: PathBuf, reason: String },

    #[error("{} is a '{architecture}' model, not Gemma 3 (general.architecture must be 'gemma3')", path.display())]
    NotGemma3 { path: PathBuf, architecture: String },

    #[error("{} is not a Gemma 3 vision projector (mmproj): {reason}", path.display())]
    NotMmproj { path: PathBuf, reason: String },

    #[error("invalid model id '{0}': use letters, digits, '.', '_' and '-' only")]
    InvalidId(String),

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("model registry: {0}")]
    Store(#[from] sqlx::Error),
}

impl ModelsError {
    /// The engine's refusal of a GGUF (it is Hearth's one GGUF reader), in the model manager's
    /// terms: unreadable files stay I/O errors, everything else about the file is `InvalidGguf`.
    pub(crate) fn gguf(path: &Path, e: EngineError) -> Self {
        match e {
            EngineError::Io { path, source } => ModelsError::Io { what: "cannot read", path, source },
            EngineError::InvalidGguf { path, reason } | EngineError::UnsupportedModel { path, reason } => {
                ModelsError::InvalidGguf { path, reason }
            }
            other => ModelsError::InvalidGguf { path: path.to_path_buf(), reason: other.to_string() },
        }
    }

    /// A readable GGUF that is not a Gemma 3 text model.
    pub(crate) fn gguf_mismatch(path: &Path, m: Mismatch) -> Self {
        match m {
            Mismatch::NotGemma3(architecture) => ModelsError::NotGemma3 { path: path.to_path_buf(), architecture },
            other => ModelsError::InvalidGguf { path: path.to_path_buf(), reason: other.to_string() },
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ModelsError::Io { what, path, source }
    }
}
