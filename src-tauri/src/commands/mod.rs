//! Tauri commands, one per ui/IPC.md entry, each a thin mapping onto a `hearth` service.
pub mod attachments;
pub mod conversations;
pub mod messages;
pub mod models;
pub mod settings;
pub mod shell;
