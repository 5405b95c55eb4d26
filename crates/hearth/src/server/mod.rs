//! The local OpenAI-compatible API: other programs (editors, scripts, note apps) use the
//! loaded model over HTTP, the way they use OpenAI's, Ollama's or llama.cpp's servers.
//!
//! Generation goes through the [`Runtime`] like the window's own turns: one at a time, the
//! others waiting in its bounded queue in order of arrival. Nothing here drives the model.
//!
//! Safe defaults: the server listens on loopback only unless told otherwise, and refuses a
//! non-loopback address without an API key; it sends no CORS headers unless an origin is
//! given; bodies and conversations have size limits; requests are not stored as conversations.

mod auth;
pub mod embedded;
pub mod errors;
pub mod openai;
pub mod record;
mod routes;
mod sse;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::runtime::Runtime;

pub use auth::ApiKey;

/// The port Hearth serves on unless told otherwise (Ollama's 11434, plus one).
pub const DEFAULT_PORT: u16 = 11435;
/// Largest request body by default. Text only for now; image parts will need more.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most messages in one request by default.
pub const DEFAULT_MAX_MESSAGES: usize = 512;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{addr} is reachable from other machines; serving there needs an API key (--api-key or HEARTH_API_KEY)")]
    OpenWithoutKey { addr: SocketAddr },
    #[error("an empty API key protects nothing")]
    EmptyKey,
    #[error("{origin:?} is not a valid CORS origin (give e.g. http://localhost:3000, or *)")]
    BadCorsOrigin { origin: String },
}

/// How the server behaves, apart from where it listens.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub api_key: Option<String>,
    /// The one origin browsers may call from (`*` for any); `None`: no CORS headers at all.
    pub cors_origin: Option<String>,
    pub max_body_bytes: usize,
    pub max_messages: usize,
    /// Keep each answered request as a conversation (see [`record`]).
    pub store: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            cors_origin: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_messages: DEFAULT_MAX_MESSAGES,
            store: false,
        }
    }
}

/// Refuses to listen where other machines can reach the server unless it has a key, and
/// options that cannot work (an empty key, a CORS origin that is not one): checked before the
/// model loads, so a mistake costs no wait.
pub fn check_address(addr: SocketAddr, options: &ServerOptions) -> Result<(), ServerError> {
    if options.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err(ServerError::EmptyKey);
    }
    if !addr.ip().is_loopback() && options.api_key.is_none() {
        return Err(ServerError::OpenWithoutKey { addr });
    }
    if let Some(origin) = &options.cors_origin {
        let _valid = cors(origin)?;
    }
    Ok(())
}

/// CORS for one origin (`*`: any). Outermost layer, so a browser's preflight is answered
/// before the key is asked for.
fn cors(origin: &str) -> Result<CorsLayer, ServerError> {
    let allow = if origin == "*" {
        AllowOrigin::any()
    } else {
        let v = HeaderValue::from_str(origin)
            .ok()
            .filter(|_| origin.starts_with("http://") || origin.starts_with("https://"))
            .ok_or_else(|| ServerError::BadCorsOrigin { origin: origin.to_string() })?;
        // A list (of one), not `exact`: only that origin gets the header back.
        AllowOrigin::list([v])
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]))
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    runtime: Runtime,
    api_key: Option<ApiKey>,
    max_messages: usize,
    store: bool,
    /// When the server started (Unix seconds): the model's `created`.
    started: u64,
    /// Numbers the completions (`chatcmpl-…` ids).
    next_id: Arc<AtomicU64>,
}

impl AppState {
    fn completion_id(&self) -> String {
        format!("chatcmpl-hearth-{}-{}", self.started, self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The routes: `GET /health` (no key needed), `GET /v1/models`, `GET /v1/models/{id}`,
/// `POST /v1/chat/completions`; anything else is a 404 in OpenAI's shape. The model offered is
/// whichever the runtime has loaded, named by its id (an installed model's id, or the GGUF
/// file's name for a file loaded by path).
pub fn router(runtime: Runtime, options: &ServerOptions) -> Result<Router, ServerError> {
    let state = AppState {
        runtime,
        api_key: options.api_key.as_deref().map(ApiKey::new),
        max_messages: options.max_messages,
        store: options.store,
        started: unix_now(),
        next_id: Arc::new(AtomicU64::new(1)),
    };
    let api = Router::new()
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{id}", get(routes::model))
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key));
    let mut app = Router::new()
        .route("/health", get(routes::health))
        .merge(api)
        .fallback(routes::unknown_path)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(state);
    if let Some(origin) = &options.cors_origin {
        app = app.layer(cors(origin)?);
    }
    Ok(app)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets running requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_go_without_a_key() {
        let open = ServerOptions::default();
        let keyed = ServerOptions { api_key: Some("k".into()), ..ServerOptions::default() };
        for a in ["127.0.0.1:1", "[::1]:1"] {
            assert!(check_address(a.parse().unwrap(), &open).is_ok(), "{a}");
        }
        for a in ["0.0.0.0:1", "192.168.1.4:1", "[::]:1"] {
            assert!(matches!(check_address(a.parse().unwrap(), &open), Err(ServerError::OpenWithoutKey { .. })), "{a}");
            assert!(check_address(a.parse().unwrap(), &keyed).is_ok(), "{a}");
        }
        let bad_cors = ServerOptions { cors_origin: Some("localhost:3000".into()), ..ServerOptions::default() };
        assert!(matches!(
            check_address("127.0.0.1:1".parse().unwrap(), &bad_cors),
            Err(ServerError::BadCorsOrigin { .. })
        ));
        let blank = ServerOptions { api_key: Some(" ".into()), ..ServerOptions::default() };
        assert!(matches!(check_address("127.0.0.1:1".parse().unwrap(), &blank), Err(ServerError::EmptyKey)));
    }
}
