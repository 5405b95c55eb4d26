//! The API key: `Authorization: Bearer KEY` on every `/v1/` request when the server has one.
//!
//! Keys are compared as SHA-256 digests in constant time, so neither the comparison's time nor
//! the key's length tells an attacker how close a guess was.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::{ApiError, HttpCode};
use super::AppState;

/// The digest of the server's key; the key itself is not kept.
#[derive(Clone)]
pub struct ApiKey([u8; 32]);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    pub fn matches(&self, offered: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        bool::from(self.0.ct_eq(&d))
    }
}

/// The key in an `Authorization` header value (`Bearer KEY`, the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = &state.api_key else { return next.run(req).await };
    let offered = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match offered {
        Some(k) if key.matches(k) => next.run(req).await,
        Some(_) => ApiError::http(HttpCode::InvalidApiKey, "wrong API key").into_response(),
        None => {
            ApiError::http(HttpCode::InvalidApiKey, "missing API key: send `Authorization: Bearer KEY`").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        let k = ApiKey::new("s3cret");
        assert!(k.matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret ", "S3CRET", "s3cret2"] {
            assert!(!k.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }
}
