//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the HTTP
//! status a client branches on. A failure that comes from the runtime carries its typed
//! [`ErrorCode`] in `code`; failures of the HTTP layer itself (bad JSON, a wrong key, a
//! missing route) carry a code of their own, listed in [`HttpCode`].
//!
//! Shape: <https://platform.openai.com/docs/guides/error-codes> (the error object of the API
//! reference: message, type, param, code).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ErrorCode, HearthError};

/// Codes for failures that happen before a request reaches the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpCode {
    /// The body is not JSON.
    InvalidJson,
    /// JSON, but not a valid request (a missing field, a wrong type, a value out of range).
    InvalidRequest,
    /// No `Authorization: Bearer` header, or the wrong key.
    InvalidApiKey,
    /// A path this server does not serve.
    UnknownPath,
    MethodNotAllowed,
    /// The body is longer than the server accepts.
    RequestTooLarge,
}

impl HttpCode {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpCode::InvalidJson => "invalid_json",
            HttpCode::InvalidRequest => "invalid_request",
            HttpCode::InvalidApiKey => "invalid_api_key",
            HttpCode::UnknownPath => "unknown_path",
            HttpCode::MethodNotAllowed => "method_not_allowed",
            HttpCode::RequestTooLarge => "request_too_large",
        }
    }
}

/// One failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI's error `type`.
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    /// The request field at fault, e.g. `messages[2].content`.
    pub param: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl ApiError {
    pub fn http(code: HttpCode, message: impl Into<String>) -> Self {
        let (status, kind) = match code {
            HttpCode::InvalidJson | HttpCode::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            HttpCode::InvalidApiKey => (StatusCode::UNAUTHORIZED, "authentication_error"),
            HttpCode::UnknownPath => (StatusCode::NOT_FOUND, "invalid_request_error"),
            HttpCode::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error"),
            HttpCode::RequestTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error"),
        };
        Self { status, kind, code: code.as_str().into(), message: message.into(), param: None }
    }

    /// An invalid value in the request field `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self { param: Some(param.into()), ..Self::http(HttpCode::InvalidRequest, message) }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The JSON text of the error, also sent as the last event of a stream that failed.
    pub fn body(&self) -> String {
        let body = Body {
            error: Inner { message: &self.message, kind: self.kind, param: self.param.as_deref(), code: &self.code },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| String::from(r#"{"error":{"message":"error"}}"#))
    }
}

/// The status for each runtime code: the client's fault (400, 404, 413), the server being
/// occupied or without a model (503, "try again"), or the server's failure (500).
fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::NotFound => StatusCode::NOT_FOUND,
        C::InvalidId
        | C::InvalidTitle
        | C::InvalidUrl
        | C::InvalidMessage
        | C::InvalidSetting
        | C::InvalidQuery
        | C::ContextFull
        | C::ContextTooLong
        | C::DocumentNoText
        | C::DocumentEncrypted
        | C::DocumentUnreadable
        | C::ImageInputUnsupported => StatusCode::BAD_REQUEST,
        C::AttachmentTooLarge | C::DocumentTooLarge | C::DocumentTooLong => StatusCode::PAYLOAD_TOO_LARGE,
        C::Busy | C::NoModel | C::Locked => StatusCode::SERVICE_UNAVAILABLE,
        C::ModelInUse
        | C::NotGguf
        | C::UnsupportedModel
        | C::OutOfMemory
        | C::AlreadyInstalled
        | C::DownloadRunning
        | C::DiskFull
        | C::Io
        | C::ReadOnly
        | C::DatabaseCorrupt
        | C::NewerSchema
        | C::Network
        | C::Gated
        | C::Checksum
        | C::BadDownload
        | C::Catalog
        | C::AttachmentMissing
        | C::AttachmentUnreadable
        | C::Engine
        | C::PortInUse
        | C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        // The model behind this server is another server, which failed.
        C::Remote => StatusCode::BAD_GATEWAY,
    }
}

impl From<HearthError> for ApiError {
    fn from(e: HearthError) -> Self {
        let status = status_of(e.code);
        let kind = match status {
            StatusCode::SERVICE_UNAVAILABLE => "server_busy",
            s if s.is_client_error() => "invalid_request_error",
            _ => "server_error",
        };
        Self { status, kind, code: e.code.as_str().into(), message: e.message, param: e.details.field.clone() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r =
            (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], self.body()).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            // A hint for clients that retry (the openai package honours it).
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_openais_shape_and_the_runtime_code() {
        let e = ApiError::from(HearthError::no_model());
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "no_model");
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string(), "{v}");
        let e = ApiError::invalid("messages", "no messages");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(
            (v["error"]["param"].as_str(), v["error"]["code"].as_str()),
            (Some("messages"), Some("invalid_request"))
        );
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
