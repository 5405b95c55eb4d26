//! Hearth's services without a window: models, store, documents, chat.
pub mod models;
pub mod chat;
pub mod store;
pub mod app_api;
pub mod logging;
mod utc;
