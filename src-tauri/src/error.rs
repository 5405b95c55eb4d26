//! The one error type every command rejects with: `{code, message}` (ui/IPC.md "Errors").
//! Codes are stable and machine-readable; messages are shown to the user as they are.

use hearth::app_api::SettingsError;
use hearth::chat::ChatError;
use hearth::models::{DownloadError, ModelsError};
use hearth::store::{AttachmentFileError, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppError {
    pub code: &'static str,
    pub message: String,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn busy() -> Self {
        Self::new("busy", "A reply is being generated or a model is loading; wait for it to finish, or stop the reply.")
    }

    pub fn no_model() -> Self {
        Self::new("no_model", "No model is loaded. Load one on the Models page.")
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new("internal", e.to_string())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::ConversationNotFound(_)
            | StoreError::MessageNotFound(_)
            | StoreError::AttachmentNotFound(_) => "not_found",
            StoreError::EmptyQuery(_) => "invalid_query",
            StoreError::DiskFull { .. } => "disk_full",
            StoreError::Io { .. } | StoreError::CreateDir { .. } | StoreError::ReadOnly { .. } => "io",
            StoreError::Locked { .. } => "locked",
            _ => "internal",
        };
        Self::new(code, e.to_string())
    }
}

impl From<ModelsError> for AppError {
    fn from(e: ModelsError) -> Self {
        let code = match &e {
            ModelsError::UnknownModel { .. } | ModelsError::NotRegistered { .. } | ModelsError::NotFound { .. } => {
                "not_found"
            }
            ModelsError::MissingFile { .. } => "not_found",
            ModelsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "not_found",
            ModelsError::Io { .. } => "io",
            ModelsError::InvalidGguf { .. } => "not_gguf",
            ModelsError::NotGemma3 { .. } => "unsupported_model",
            ModelsError::AlreadyRegistered { .. } => "already_installed",
            ModelsError::DiskFull { .. } => "disk_full",
            ModelsError::Network { .. } | ModelsError::Timeout { .. } | ModelsError::Http { .. } => "network",
            ModelsError::Unauthorized { .. } => "gated",
            ModelsError::ShaMismatch { .. } => "checksum",
            ModelsError::UnknownCatalogId { .. } => "not_found",
            ModelsError::InvalidId(_) => "invalid_id",
            _ => "internal",
        };
        Self::new(code, e.to_string())
    }
}

impl From<DownloadError> for AppError {
    fn from(e: DownloadError) -> Self {
        let code = match &e {
            DownloadError::Busy { .. } => "busy",
            DownloadError::UnknownModel { .. } | DownloadError::NotFound { .. } => "not_found",
            DownloadError::Network { .. } => "network",
            DownloadError::Gated { .. } => "gated",
            DownloadError::Checksum { .. } => "checksum",
            DownloadError::DiskFull { .. } => "disk_full",
            DownloadError::Other(_) => "internal",
        };
        Self::new(code, e.to_string())
    }
}

impl From<engine::EngineError> for AppError {
    fn from(e: engine::EngineError) -> Self {
        use engine::EngineError as E;
        let code = match &e {
            E::ContextOverflow { .. } => "context_full",
            E::InvalidGguf { .. } => "not_gguf",
            E::UnsupportedModel { .. } => "unsupported_model",
            E::InsufficientMemory { .. } => "out_of_memory",
            E::Io { .. } => "io",
            _ => "engine",
        };
        Self::new(code, e.to_string())
    }
}

impl From<ChatError> for AppError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Store(s) => s.into(),
            ChatError::Engine(g) => g.into(),
            ChatError::EmptyMessage | ChatError::InvalidMessage(_) => Self::new("invalid_message", e.to_string()),
        }
    }
}

impl From<AttachmentFileError> for AppError {
    fn from(e: AttachmentFileError) -> Self {
        let code = match &e {
            AttachmentFileError::Missing(_) => "attachment_missing",
            AttachmentFileError::NotAFile(_) | AttachmentFileError::Unreadable { .. } => "attachment_unreadable",
            AttachmentFileError::TooLarge { .. } => "attachment_too_large",
        };
        Self::new(code, e.to_string())
    }
}

impl From<SettingsError> for AppError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(m) => Self::new("invalid_setting", m),
            SettingsError::Store(s) => s.into(),
        }
    }
}

/// Ids cross the IPC boundary as opaque strings; the store's are integers.
pub fn parse_id(id: &str) -> AppResult<i64> {
    id.parse::<i64>()
        .map_err(|_| AppError::new("not_found", format!("no such item: {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let e: AppError = StoreError::ConversationNotFound(7).into();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "not_found");
        assert!(v["message"].as_str().unwrap().contains('7'), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn bad_ids_are_not_found_not_a_panic() {
        assert_eq!(parse_id("12").unwrap(), 12);
        assert_eq!(parse_id("x1").unwrap_err().code, "not_found");
        assert_eq!(parse_id("").unwrap_err().code, "not_found");
    }

    #[test]
    fn chat_and_settings_errors_keep_their_meaning() {
        assert_eq!(AppError::from(ChatError::EmptyMessage).code, "invalid_message");
        let e = AppError::from(ChatError::InvalidMessage("only replies can be regenerated".into()));
        assert_eq!((e.code, e.message.as_str()), ("invalid_message", "only replies can be regenerated"));
        let e = AppError::from(AttachmentFileError::TooLarge { path: "/x.bin".into(), size: 2, limit: 1 });
        assert_eq!(e.code, "attachment_too_large");
        assert!(e.message.contains("/x.bin"), "{e}");
        assert_eq!(AppError::from(AttachmentFileError::Missing("/y".into())).code, "attachment_missing");
        let e = AppError::from(SettingsError::Invalid("temperature must be between 0 and 2".into()));
        assert_eq!((e.code, e.message.as_str()), ("invalid_setting", "temperature must be between 0 and 2"));
        let e = AppError::from(DownloadError::Gated { repo: "google/x".into(), status: 401, has_token: false });
        assert_eq!(e.code, "gated");
        assert!(e.message.contains("Hugging Face read token"), "{}", e.message);
        assert_eq!(AppError::from(DownloadError::Busy { id: "m".into() }).code, "busy");
        let e = AppError::from(engine::EngineError::ContextOverflow { tokens: 9, context: 8 });
        assert_eq!(e.code, "context_full");
    }
}
