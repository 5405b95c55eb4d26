//! Hearth's services without a window: the runtime (the one owner of the loaded model and the
//! running turn), models, store, chat turns, image thumbnails, logging, and the error codes every
//! front end shares.
pub mod app_api;
pub mod bindings;
pub mod chat;
pub mod documents;
pub mod error;
pub mod images;
pub mod logging;
pub mod models;
pub mod remote;
pub mod runtime;
pub mod server;
pub mod store;
pub mod turn_inputs;
mod utc;

/// See `engine::memory::configure_malloc`; for binaries that do not depend on the engine.
pub use engine::memory::configure_malloc;
