//! The one user-facing error shape: `{code, message, details}`.
//!
//! Every front end (the window, the CLI, a later local API) gets the same [`ErrorCode`] for the
//! same failure. The window translates the code into a sentence in the user's language and
//! fills in [`ErrorDetails`]; `message` is the English text of the underlying error, shown only
//! behind "details" (and printed by the CLI). Each service error maps here exhaustively: a new
//! variant must pick its code, it cannot fall through to `internal`.
//!
//! The TypeScript side (`ui/src/generated/`) is generated from these types (see
//! [`crate::bindings`]), so the UI cannot drift from them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::models::{DownloadError, ModelsError};
use crate::store::{AttachmentFileError, StoreError};

/// What went wrong, in a form a front end can branch on and translate. Serialised in
/// `snake_case` (`"not_found"`, `"context_full"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A conversation, message, model or file that does not exist (details: what and which).
    NotFound,
    /// An id that is not one of ours.
    InvalidId,
    /// An empty title.
    InvalidTitle,
    /// A link that is not http, https or mailto.
    InvalidUrl,
    /// An empty message, or a regenerate/edit of the wrong kind of message.
    InvalidMessage,
    /// A setting out of range or of the wrong type (details: field, min, max).
    InvalidSetting,
    /// A search with no words in it.
    InvalidQuery,
    /// A reply is being generated or a model is loading.
    Busy,
    /// No model is loaded.
    NoModel,
    /// The model is loaded, so it cannot be removed.
    ModelInUse,
    /// The conversation no longer fits the model's context (details: tokens, context).
    ContextFull,
    /// The context asked for is longer than the model supports (details: requested, max).
    ContextTooLong,
    /// The file is not a GGUF model Hearth can read (truncated, foreign, damaged).
    NotGguf,
    /// A readable GGUF that is not a Gemma 3 model (or not a Gemma 3 vision projector).
    UnsupportedModel,
    /// The model needs more memory than the machine has free (details: needed, available).
    OutOfMemory,
    /// The model is installed already.
    AlreadyInstalled,
    /// This model is already downloading.
    DownloadRunning,
    /// The disk is full (details: path, needed, available).
    DiskFull,
    /// A file could not be read or written (details: path).
    Io,
    /// The database is locked by another program (another Hearth?).
    Locked,
    /// The database file is read-only.
    ReadOnly,
    /// The database is damaged or not a Hearth database; it was left untouched.
    DatabaseCorrupt,
    /// The database was written by a newer Hearth.
    NewerSchema,
    /// The network failed or timed out; a download can be resumed.
    Network,
    /// Hugging Face refused access to a gated model (details: repo).
    Gated,
    /// A downloaded file failed its checksum and was discarded.
    Checksum,
    /// The server's answer made no sense (wrong size, no checksum, bad response).
    BadDownload,
    /// The model catalog is unreadable, or names an unknown quantization.
    Catalog,
    /// An attached file does not exist (details: path).
    AttachmentMissing,
    /// An attached file cannot be read (details: path).
    AttachmentUnreadable,
    /// An attached file is larger than allowed (details: path, size, limit).
    AttachmentTooLarge,
    /// The model failed while generating (a tokenizer, template or device error).
    Engine,
    /// A bug: something Hearth did not expect, e.g. a crash inside a reply or a load that
    /// the runtime caught. The app keeps working.
    Internal,
    /// A document (or a whitespace-only one) has no text; a PDF with no text layer (scanned).
    DocumentNoText,
    /// A document is encrypted with a password.
    DocumentEncrypted,
    /// A document is damaged, not of its kind, binary data, or its reader failed on it.
    DocumentUnreadable,
    /// A document is over a limit: size, inflated size, parts, nesting or reading time
    /// (details: path, size, limit).
    DocumentTooLarge,
    /// A remote model's server failed: unreachable, refused the request, or broke off mid-reply
    /// (details: model = its name, path = its URL).
    Remote,
    /// Images were attached for a model that reads only text (details: model, the catalog's
    /// vision models, comma-separated).
    ImageInputUnsupported,
    /// An attached document is too long for the conversation's context; summarizing it is the
    /// way (details: path, the file names; needed, the prompt's tokens; limit, the context).
    DocumentTooLong,
    /// The local API server cannot listen: another program uses the port (details: path = the
    /// address, e.g. `127.0.0.1:11435`).
    PortInUse,
}

impl ErrorCode {
    /// Every code, for tests that check each has a translation.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::NotFound,
        ErrorCode::InvalidId,
        ErrorCode::InvalidTitle,
        ErrorCode::InvalidUrl,
        ErrorCode::InvalidMessage,
        ErrorCode::InvalidSetting,
        ErrorCode::InvalidQuery,
        ErrorCode::Busy,
        ErrorCode::NoModel,
        ErrorCode::ModelInUse,
        ErrorCode::ContextFull,
        ErrorCode::ContextTooLong,
        ErrorCode::NotGguf,
        ErrorCode::UnsupportedModel,
        ErrorCode::OutOfMemory,
        ErrorCode::AlreadyInstalled,
        ErrorCode::DownloadRunning,
        ErrorCode::DiskFull,
        ErrorCode::Io,
        ErrorCode::Locked,
        ErrorCode::ReadOnly,
        ErrorCode::DatabaseCorrupt,
        ErrorCode::NewerSchema,
        ErrorCode::Network,
        ErrorCode::Gated,
        ErrorCode::Checksum,
        ErrorCode::BadDownload,
        ErrorCode::Catalog,
        ErrorCode::AttachmentMissing,
        ErrorCode::AttachmentUnreadable,
        ErrorCode::AttachmentTooLarge,
        ErrorCode::Engine,
        ErrorCode::Internal,
        ErrorCode::DocumentNoText,
        ErrorCode::DocumentEncrypted,
        ErrorCode::DocumentUnreadable,
        ErrorCode::DocumentTooLarge,
        ErrorCode::Remote,
        ErrorCode::ImageInputUnsupported,
        ErrorCode::DocumentTooLong,
        ErrorCode::PortInUse,
    ];

    /// The wire name (`"not_found"`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let names = NAMES.get_or_init(|| {
            ErrorCode::ALL
                .iter()
                .map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
                .collect()
        });
        Self::ALL.iter().position(|c| *c == self).map(|i| names[i].as_str()).unwrap_or("internal")
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts a translated sentence needs. Every field is optional; each code documents which
/// it fills. Sizes are bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    /// A file or folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub path: Option<String>,
    /// A model id, name or Hugging Face repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub model: Option<String>,
    /// A settings field, or what was not found (`conversation`, `message`, `model`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub needed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub available: Option<u64>,
    /// A range's bounds (settings) or a count's maximum (context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max: Option<f64>,
}

impl ErrorDetails {
    pub fn path(p: &Path) -> Self {
        Self { path: Some(p.display().to_string()), ..Self::default() }
    }
    pub fn model(m: impl Into<String>) -> Self {
        Self { model: Some(m.into()), ..Self::default() }
    }
    pub fn field(f: impl Into<String>) -> Self {
        Self { field: Some(f.into()), ..Self::default() }
    }
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A failure as every front end sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct HearthError {
    pub code: ErrorCode,
    /// The underlying error in English (the CLI prints it; the window shows it under
    /// "details"). Never instructions for the CLI.
    pub message: String,
    #[serde(default)]
    // Boxed: errors travel in `Result`s everywhere, and most have few details.
    pub details: Box<ErrorDetails>,
}

pub type HearthResult<T> = Result<T, HearthError>;

impl HearthError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Box::default() }
    }

    pub fn with(mut self, details: ErrorDetails) -> Self {
        *self.details = details;
        self
    }

    pub fn busy() -> Self {
        Self::new(ErrorCode::Busy, "a reply is being generated or a model is loading")
    }

    pub fn no_model() -> Self {
        Self::new(ErrorCode::NoModel, "no model is loaded")
    }

    pub fn not_found(what: &str, which: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("no {what} {which}")).with(ErrorDetails::field(what))
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }

    /// The form kept in a failed message's `error` column: this error as JSON.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }

    /// A failed message's stored error. Replies that failed before errors were typed hold
    /// plain text: those were the model's failures.
    pub fn from_stored(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Self::new(ErrorCode::Engine, text))
    }
}

impl From<StoreError> for HearthError {
    fn from(e: StoreError) -> Self {
        let (code, details) = match &e {
            StoreError::ConversationNotFound(_) => (ErrorCode::NotFound, ErrorDetails::field("conversation")),
            StoreError::MessageNotFound(_) => (ErrorCode::NotFound, ErrorDetails::field("message")),
            StoreError::AttachmentNotFound(_) => (ErrorCode::NotFound, ErrorDetails::field("attachment")),
            StoreError::EmptyQuery(_) => (ErrorCode::InvalidQuery, ErrorDetails::default()),
            StoreError::DiskFull { path, .. } => (ErrorCode::DiskFull, ErrorDetails::path(path)),
            StoreError::CreateDir { path, .. } | StoreError::Io { path, .. } => {
                (ErrorCode::Io, ErrorDetails::path(path))
            }
            StoreError::ReadOnly { path, .. } => (ErrorCode::ReadOnly, ErrorDetails::path(path)),
            StoreError::Locked { path, .. } => (ErrorCode::Locked, ErrorDetails::path(path)),
            StoreError::Corrupt { path, .. } => (ErrorCode::DatabaseCorrupt, ErrorDetails::path(path)),
            StoreError::NewerSchema { path, .. } => (ErrorCode::NewerSchema, ErrorDetails::path(path)),
            StoreError::Import(_) => (ErrorCode::InvalidMessage, ErrorDetails::default()),
            // A stored value Hearth wrote itself that it cannot read back, a failed migration
            // or an unexpected SQLite error: bugs or damage, not something the user typed.
            StoreError::SettingType { .. } | StoreError::Migrate { .. } | StoreError::Db { .. } => {
                (ErrorCode::Internal, ErrorDetails::default())
            }
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<ModelsError> for HearthError {
    fn from(e: ModelsError) -> Self {
        use ModelsError as M;
        let (code, details) = match &e {
            M::Catalog(_) | M::UnknownQuant { .. } => (ErrorCode::Catalog, ErrorDetails::default()),
            M::UnknownCatalogId { id, .. } | M::UnknownModel { arg: id, .. } | M::NotRegistered { id, .. } => {
                (ErrorCode::NotFound, ErrorDetails { field: Some("model".into()), ..ErrorDetails::model(id) })
            }
            M::ContextTooLong { model, requested, max } => (
                ErrorCode::ContextTooLong,
                ErrorDetails { needed: Some(*requested), limit: Some(*max), ..ErrorDetails::model(model) },
            ),
            M::ZeroContext => (ErrorCode::InvalidSetting, ErrorDetails::field("contextSize")),
            M::MissingFile { path, .. } => (ErrorCode::NotFound, ErrorDetails::path(path)),
            M::AlreadyRegistered { id, .. } => (ErrorCode::AlreadyInstalled, ErrorDetails::model(id)),
            M::Unauthorized { repo, .. } => (ErrorCode::Gated, ErrorDetails::model(repo)),
            M::NotFound { repo, file } => {
                (ErrorCode::NotFound, ErrorDetails { path: Some(file.clone()), ..ErrorDetails::model(repo) })
            }
            M::Http { .. } | M::Timeout { .. } | M::Network { .. } | M::Interrupted { .. } => {
                (ErrorCode::Network, ErrorDetails::default())
            }
            M::BadResponse { .. } | M::NoChecksum { .. } | M::SizeMismatch { .. } => {
                (ErrorCode::BadDownload, ErrorDetails::default())
            }
            // A cancelled download is not an error for the user; callers that surface it
            // anyway report it as the network stopping.
            M::Cancelled { .. } => (ErrorCode::Network, ErrorDetails::default()),
            M::ShaMismatch { file, .. } => {
                (ErrorCode::Checksum, ErrorDetails { path: Some(file.clone()), ..Default::default() })
            }
            M::DiskFull { path, needed, available } => (
                ErrorCode::DiskFull,
                ErrorDetails { needed: Some(*needed), available: Some(*available), ..ErrorDetails::path(path) },
            ),
            M::TooBig { estimate, available } => (
                ErrorCode::OutOfMemory,
                ErrorDetails {
                    needed: Some(estimate.total_bytes),
                    available: Some(*available),
                    ..ErrorDetails::model(&estimate.model)
                },
            ),
            M::AlreadyDownloading { file } => (ErrorCode::DownloadRunning, ErrorDetails::model(file)),
            M::InvalidGguf { path, .. } => (ErrorCode::NotGguf, ErrorDetails::path(path)),
            M::NotGemma3 { path, .. } | M::NotMmproj { path, .. } => {
                (ErrorCode::UnsupportedModel, ErrorDetails::path(path))
            }
            M::InvalidId(_) => (ErrorCode::InvalidId, ErrorDetails::default()),
            M::Io { path, source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                (ErrorCode::NotFound, ErrorDetails::path(path))
            }
            M::Io { path, .. } => (ErrorCode::Io, ErrorDetails::path(path)),
            M::Store(_) => (ErrorCode::Internal, ErrorDetails::default()),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<DownloadError> for HearthError {
    fn from(e: DownloadError) -> Self {
        use DownloadError as D;
        let (code, details) = match &e {
            D::Busy { id } => (ErrorCode::DownloadRunning, ErrorDetails::model(id)),
            D::UnknownModel { id } => (ErrorCode::NotFound, ErrorDetails::model(id)),
            D::NotFound { repo, file } => {
                (ErrorCode::NotFound, ErrorDetails { path: Some(file.clone()), ..ErrorDetails::model(repo) })
            }
            D::Network { .. } => (ErrorCode::Network, ErrorDetails::default()),
            D::Gated { repo, .. } => (ErrorCode::Gated, ErrorDetails::model(repo)),
            D::Checksum { file, .. } => {
                (ErrorCode::Checksum, ErrorDetails { path: Some(file.clone()), ..Default::default() })
            }
            D::DiskFull { path, needed, available } => (
                ErrorCode::DiskFull,
                ErrorDetails { needed: Some(*needed), available: Some(*available), ..ErrorDetails::path(path) },
            ),
            D::Other(_) => (ErrorCode::Io, ErrorDetails::default()),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<crate::documents::DocumentError> for HearthError {
    fn from(e: crate::documents::DocumentError) -> Self {
        use crate::documents::DocumentError as D;
        let what = |w: &str| ErrorDetails { path: Some(w.to_owned()), ..Default::default() };
        let (code, details) = match &e {
            D::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                (ErrorCode::NotFound, ErrorDetails::path(path))
            }
            D::Io { path, .. } => (ErrorCode::Io, ErrorDetails::path(path)),
            D::TooLarge { what: w, size, limit } => {
                (ErrorCode::DocumentTooLarge, ErrorDetails { size: Some(*size), limit: Some(*limit), ..what(w) })
            }
            D::TooDeep { what: w, depth, limit } => (
                ErrorCode::DocumentTooLarge,
                ErrorDetails { size: Some(*depth as u64), limit: Some(*limit as u64), ..what(w) },
            ),
            D::TooManyParts { what: w, limit } => {
                (ErrorCode::DocumentTooLarge, ErrorDetails { limit: Some(*limit as u64), ..what(w) })
            }
            D::Timeout { what: w, seconds } => {
                (ErrorCode::DocumentTooLarge, ErrorDetails { limit: Some(*seconds), ..what(w) })
            }
            D::NoText { what: w } | D::NoTextLayer { what: w } => (ErrorCode::DocumentNoText, what(w)),
            D::Encrypted { what: w } => (ErrorCode::DocumentEncrypted, what(w)),
            D::Binary { what: w, .. } | D::Damaged { what: w, .. } | D::ParserFailed { what: w, .. } => {
                (ErrorCode::DocumentUnreadable, what(w))
            }
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<crate::remote::RemoteError> for HearthError {
    fn from(e: crate::remote::RemoteError) -> Self {
        use crate::remote::RemoteError as R;
        let code = match &e {
            R::InvalidName(_) => ErrorCode::InvalidId,
            R::InvalidUrl { .. } => ErrorCode::InvalidUrl,
            R::Exists(_) => ErrorCode::AlreadyInstalled,
            R::NotFound { .. } => ErrorCode::NotFound,
            R::Io { path, .. } => {
                return Self::new(ErrorCode::Io, e.to_string()).with(ErrorDetails::path(path));
            }
            // The database failed under us: not something the user typed.
            R::Db(_) | R::Installed(_) => ErrorCode::Internal,
            R::Unreachable { .. } | R::Refused { .. } | R::Protocol { .. } | R::Interrupted { .. } => ErrorCode::Remote,
        };
        let details = ErrorDetails { path: e.url().map(String::from), ..Default::default() };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<engine::EngineError> for HearthError {
    fn from(e: engine::EngineError) -> Self {
        Self::of_engine(&e)
    }
}

impl HearthError {
    /// The engine's error, which cannot be cloned, as the shared shape.
    pub fn of_engine(e: &engine::EngineError) -> Self {
        use engine::EngineError as E;
        let (code, details) = match e {
            E::ContextOverflow { tokens, context } => (
                ErrorCode::ContextFull,
                ErrorDetails { needed: Some(*tokens as u64), limit: Some(*context as u64), ..Default::default() },
            ),
            E::InvalidGguf { path, .. } => (ErrorCode::NotGguf, ErrorDetails::path(path)),
            E::UnsupportedModel { path, .. } => (ErrorCode::UnsupportedModel, ErrorDetails::path(path)),
            E::MmprojMismatch { .. } => (ErrorCode::UnsupportedModel, ErrorDetails::default()),
            E::InsufficientMemory { needed, available } => (
                ErrorCode::OutOfMemory,
                ErrorDetails { needed: Some(*needed), available: Some(*available), ..Default::default() },
            ),
            E::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                (ErrorCode::NotFound, ErrorDetails::path(path))
            }
            E::Io { path, .. } => (ErrorCode::Io, ErrorDetails::path(path)),
            // Metadata the model needs is missing or wrong: the file is not a usable model.
            E::Metadata { .. } => (ErrorCode::UnsupportedModel, ErrorDetails::default()),
            E::Tokenizer(_) | E::ChatTemplate(_) | E::Device(_) | E::Candle(_) => {
                (ErrorCode::Engine, ErrorDetails::default())
            }
            E::InvalidArgument(_) => (ErrorCode::Internal, ErrorDetails::default()),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<AttachmentFileError> for HearthError {
    fn from(e: AttachmentFileError) -> Self {
        let (code, details) = match &e {
            AttachmentFileError::Missing(p) => (ErrorCode::AttachmentMissing, ErrorDetails::path(p)),
            AttachmentFileError::NotAFile(p) | AttachmentFileError::Unreadable { path: p, .. } => {
                (ErrorCode::AttachmentUnreadable, ErrorDetails::path(p))
            }
            AttachmentFileError::TooLarge { path, size, limit } => (
                ErrorCode::AttachmentTooLarge,
                ErrorDetails { size: Some(*size), limit: Some(*limit), ..ErrorDetails::path(path) },
            ),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<crate::images::ThumbnailError> for HearthError {
    fn from(e: crate::images::ThumbnailError) -> Self {
        use crate::images::ThumbnailError as T;
        let (code, details) = match &e {
            // Not an image, or one the decoder refuses: the file cannot be shown.
            T::Image(_) | T::Encode(_) => (ErrorCode::AttachmentUnreadable, ErrorDetails::default()),
            T::Cache { path, .. } => (ErrorCode::Io, ErrorDetails::path(path)),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<crate::images::PasteError> for HearthError {
    fn from(e: crate::images::PasteError) -> Self {
        use crate::images::PasteError as P;
        let (code, details) = match &e {
            P::TooLarge { size, limit } => (
                ErrorCode::AttachmentTooLarge,
                ErrorDetails { size: Some(*size), limit: Some(*limit), ..Default::default() },
            ),
            P::NotAnImage(_) | P::Encoding(_) => (ErrorCode::AttachmentUnreadable, ErrorDetails::default()),
            P::Io { path, source } if source.kind() == std::io::ErrorKind::StorageFull => {
                (ErrorCode::DiskFull, ErrorDetails::path(path))
            }
            P::Io { path, .. } => (ErrorCode::Io, ErrorDetails::path(path)),
        };
        Self { code, message: e.to_string(), details: Box::new(details) }
    }
}

impl From<crate::turn_inputs::VisionLoadError> for HearthError {
    fn from(e: crate::turn_inputs::VisionLoadError) -> Self {
        use crate::turn_inputs::VisionLoadError as V;
        match &e {
            V::Io { path, .. } => Self::new(ErrorCode::Io, e.to_string()).with(ErrorDetails::path(path)),
            V::Engine { path, source } => {
                let mut out = Self::of_engine(source);
                out.message = e.to_string();
                if out.details.path.is_none() {
                    out.details.path = Some(path.display().to_string());
                }
                out
            }
        }
    }
}

impl From<crate::chat::ChatError> for HearthError {
    fn from(e: crate::chat::ChatError) -> Self {
        use crate::chat::ChatError as C;
        match e {
            C::Store(s) => s.into(),
            C::Engine(g) => g.into(),
            C::EmptyMessage | C::InvalidMessage(_) => Self::new(ErrorCode::InvalidMessage, e.to_string()),
            C::Remote(h) => h,
            C::ImagesUnsupported { ref vision_models } => {
                let models = vision_models.join(", ");
                Self::new(ErrorCode::ImageInputUnsupported, e.to_string()).with(ErrorDetails::model(models))
            }
            C::DocumentTooLong { ref files, tokens, context, .. } => {
                let details = ErrorDetails {
                    path: Some(files.join(", ")),
                    needed: Some(tokens as u64),
                    limit: Some(context as u64),
                    ..Default::default()
                };
                Self::new(ErrorCode::DocumentTooLong, e.to_string()).with(details)
            }
            C::Image { ref file, .. } => {
                Self::new(ErrorCode::AttachmentUnreadable, e.to_string()).with(ErrorDetails::path(Path::new(file)))
            }
        }
    }
}

impl From<crate::app_api::SettingsError> for HearthError {
    fn from(e: crate::app_api::SettingsError) -> Self {
        use crate::app_api::SettingsError as S;
        match e {
            S::Invalid(ref m) => Self::new(ErrorCode::InvalidSetting, m.clone()),
            S::OutOfRange { field, min, max } => Self::new(ErrorCode::InvalidSetting, e.to_string())
                .with(ErrorDetails { min: Some(min), max: Some(max), ..ErrorDetails::field(field) }),
            S::Store(s) => s.into(),
        }
    }
}

/// Ids cross front-end boundaries as opaque strings; the store's are integers.
pub fn parse_id(id: &str) -> HearthResult<i64> {
    id.parse::<i64>().map_err(|_| HearthError::new(ErrorCode::InvalidId, format!("no such item: {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_in_snake_case_and_round_trip() {
        for c in ErrorCode::ALL {
            let v = serde_json::to_value(c).unwrap();
            let s = v.as_str().unwrap();
            assert_eq!(s, c.as_str());
            assert!(s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'), "{s}");
            assert_eq!(serde_json::from_value::<ErrorCode>(v.clone()).unwrap(), *c);
        }
        assert_eq!(ErrorCode::ContextFull.as_str(), "context_full");
    }

    #[test]
    fn errors_serialise_as_code_message_details() {
        let e: HearthError = StoreError::ConversationNotFound(7).into();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "not_found");
        assert_eq!(v["details"], serde_json::json!({"field": "conversation"}));
        assert!(v["message"].as_str().unwrap().contains('7'), "{v}");
    }

    #[test]
    fn details_carry_what_a_sentence_needs() {
        let e = HearthError::from(AttachmentFileError::TooLarge { path: "/x.bin".into(), size: 2, limit: 1 });
        assert_eq!(e.code, ErrorCode::AttachmentTooLarge);
        assert_eq!((e.details.path.as_deref(), e.details.size, e.details.limit), (Some("/x.bin"), Some(2), Some(1)));
        let e = HearthError::from(DownloadError::Gated { repo: "google/x".into(), status: 401, has_token: false });
        assert_eq!((e.code, e.details.model.as_deref()), (ErrorCode::Gated, Some("google/x")));
        let e = HearthError::from(engine::EngineError::ContextOverflow { tokens: 9, context: 8 });
        assert_eq!((e.code, e.details.needed, e.details.limit), (ErrorCode::ContextFull, Some(9), Some(8)));
        let e = HearthError::from(DownloadError::DiskFull { path: "/d".into(), needed: 2, available: 1 });
        assert_eq!((e.code, e.details.needed, e.details.available), (ErrorCode::DiskFull, Some(2), Some(1)));
    }

    #[test]
    fn bad_ids_are_invalid_not_a_panic() {
        assert_eq!(parse_id("12").unwrap(), 12);
        assert_eq!(parse_id("x1").unwrap_err().code, ErrorCode::InvalidId);
        assert_eq!(parse_id("").unwrap_err().code, ErrorCode::InvalidId);
    }

    #[test]
    fn no_message_a_window_shows_tells_the_user_to_run_a_command() {
        let samples: Vec<HearthError> = vec![
            DownloadError::Gated { repo: "google/x".into(), status: 401, has_token: false }.into(),
            DownloadError::Gated { repo: "google/x".into(), status: 403, has_token: true }.into(),
            StoreError::Corrupt { path: "/d/hearth.db".into(), detail: "not a database".into() }.into(),
            StoreError::NewerSchema { path: "/d/hearth.db".into(), found: 9, known: 2 }.into(),
        ];
        for e in samples {
            assert!(!e.message.contains("hearth "), "a CLI instruction in a GUI message: {}", e.message);
        }
    }
}
