//! Tauri commands, one per ui/IPC.md entry, each a thin mapping onto a `hearth` service.
pub mod attachments;
pub mod conversations;
pub mod local_server;
pub mod messages;
pub mod models;
pub mod remote;
pub mod settings;
pub mod shell;
