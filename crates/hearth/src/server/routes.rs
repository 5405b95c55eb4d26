//! The handlers: health, the model list, chat completions (whole or streamed), and the
//! OpenAI-shaped answers for unknown paths and methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::sampler::SamplingParams;

use super::errors::{ApiError, HttpCode};
use super::openai::{self, ChatCompletion, ChatRequest, FinishReason, ModelList, ModelObject, Usage};
use super::{sse, AppState};
use crate::app_api::AppSettings;
use crate::error::{ErrorCode, HearthError};
use crate::runtime::{Completion, CompletionRequest, GenerationQueue, ModelPhase, QueueTicket};

pub async fn health(State(s): State<AppState>) -> Response {
    let status = s.runtime.status();
    let ready = status.state == ModelPhase::Ready;
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "model": match status.state {
            ModelPhase::None => "none",
            ModelPhase::Loading => "loading",
            ModelPhase::Ready => "ready",
            ModelPhase::Error => "error",
        },
        "queue": s.runtime.queue().status(),
    });
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

fn model_object(s: &AppState) -> ModelObject {
    ModelObject { id: s.model_id.clone(), object: "model", created: s.started, owned_by: "hearth" }
}

pub async fn models(State(s): State<AppState>) -> Json<ModelList> {
    Json(ModelList { object: "list", data: vec![model_object(&s)] })
}

pub async fn model(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if id == s.model_id {
        Json(model_object(&s)).into_response()
    } else {
        unknown_model(&s, &id).into_response()
    }
}

fn unknown_model(s: &AppState, id: &str) -> ApiError {
    ApiError::from(HearthError::not_found("model", id))
        .with_param("model")
        .with_message(format!("no model {id:?} here; this server has {:?}", s.model_id))
}

pub async fn unknown_path(uri: axum::http::Uri) -> ApiError {
    ApiError::http(HttpCode::UnknownPath, format!("no such path: {}", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::http(HttpCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}

/// A body the server would not read: too large (413), or unreadable (400).
fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::http(HttpCode::RequestTooLarge, "the request body is larger than this server accepts")
    } else {
        ApiError::http(HttpCode::InvalidRequest, rejection.body_text())
    }
}

/// The app's sampling settings with the request's overrides.
fn sampling(app: &AppSettings, req: &ChatRequest) -> SamplingParams {
    let mut p = app.sampling();
    if let Some(t) = req.temperature {
        p.temperature = t;
    }
    if let Some(v) = req.top_p {
        p.top_p = v;
    }
    if let Some(k) = req.top_k {
        p.top_k = k;
    }
    if let Some(seed) = req.seed {
        p.seed = seed;
    }
    p
}

/// A full line: 429, so clients back off and retry (the `openai` package does, honouring
/// `Retry-After`).
fn queue_full(e: HearthError) -> ApiError {
    ApiError { status: StatusCode::TOO_MANY_REQUESTS, kind: "rate_limit_error", ..ApiError::from(e) }
}

pub fn finish_reason(c: &Completion) -> FinishReason {
    use engine::session::StopReason as S;
    match c.stop {
        S::MaxTokens | S::ContextFull => FinishReason::Length,
        S::Eos | S::StopString | S::Cancelled => FinishReason::Stop,
    }
}

pub fn usage(c: &Completion) -> Usage {
    Usage::new(c.prompt_tokens, c.completion_tokens)
}

/// Sets the cancel flag when dropped unless disarmed: a request whose client went away (axum
/// drops the handler's future, or the stream's body) stops its generation, or leaves the line.
pub struct CancelOnDrop {
    pub cancel: Arc<AtomicBool>,
    pub queue: Arc<GenerationQueue>,
    pub armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cancel.store(true, Ordering::SeqCst);
            // A waiter notices at once rather than at its next poll.
            self.queue.wake();
        }
    }
}

/// One request's generation, once it holds a place in line.
pub struct Job {
    /// The completion's id, naming it in the log.
    pub id: String,
    pub state: AppState,
    pub ticket: QueueTicket,
    pub request: CompletionRequest,
    pub cancel: Arc<AtomicBool>,
}

impl Job {
    /// Waits for the turn, then generates; blocking. `None` when the request was cancelled
    /// while it waited. `on_start` runs once the turn has come, before the first token.
    pub fn run(
        self,
        on_start: &mut dyn FnMut(),
        on_text: &mut dyn FnMut(&str),
    ) -> Option<Result<Completion, HearthError>> {
        let Ok(turn) = self.ticket.wait(&self.cancel) else {
            log::info!("{} left the line before its turn", self.id);
            return None;
        };
        log::info!("{} started", self.id);
        on_start();
        let result = self.state.runtime.complete(self.request, self.cancel, on_text);
        match &result {
            Ok(c) => log::info!(
                "{} ended: {} after {} tokens ({} prompt tokens, {} reused)",
                self.id,
                c.stop.as_str(),
                c.completion_tokens,
                c.prompt_tokens,
                c.reused_tokens
            ),
            Err(e) => log::info!("{} failed: {} ({})", self.id, e.message, e.code),
        }
        // The model is free (complete released it); now the next in line may start.
        drop(turn);
        Some(result)
    }
}

pub async fn chat_completions(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match start(s, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn start(s: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, Response> {
    let bad = |e: ApiError| e.into_response();
    let body = body.map_err(|r| bad(body_error(r)))?;
    let req = openai::parse_request(&body, s.max_messages).map_err(bad)?;
    if let Some(m) = req.model.as_deref().filter(|m| *m != s.model_id) {
        return Err(bad(unknown_model(&s, m)));
    }
    // Refuse before queueing when no model can answer.
    match s.runtime.status().state {
        ModelPhase::Ready => {}
        ModelPhase::Loading => return Err(bad(HearthError::new(ErrorCode::Busy, "the model is loading").into())),
        ModelPhase::None | ModelPhase::Error => return Err(bad(HearthError::no_model().into())),
    }
    let app = AppSettings::load(s.runtime.store()).await.map_err(|e| bad(HearthError::from(e).into()))?;
    let request = CompletionRequest {
        sampling: Some(sampling(&app, &req)),
        messages: req.messages.clone(),
        max_tokens: req.max_tokens,
        stop: req.stop.clone(),
    };
    // The place in line is taken here, in the order requests arrive.
    let ticket = s.runtime.queue().join().map_err(|e| bad(queue_full(e)))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let id = s.completion_id();
    let model = s.model_id.clone();
    let guard = CancelOnDrop { cancel: cancel.clone(), queue: s.runtime.queue().clone(), armed: true };
    let job = Job { id: id.clone(), state: s, ticket, request, cancel };
    if req.stream {
        return Ok(sse::stream(job, guard, id, model, req.include_usage));
    }
    let mut guard = guard;
    let result = tokio::task::spawn_blocking(move || job.run(&mut || {}, &mut |_| {})).await;
    guard.armed = false;
    match result {
        Ok(Some(Ok(c))) => {
            let body = ChatCompletion::new(id, super::unix_now(), model, c.text.clone(), finish_reason(&c), usage(&c));
            Ok(Json(body).into_response())
        }
        Ok(Some(Err(e))) => Err(bad(e.into())),
        // Only this request's own guard cancels a wait, and it was armed until now.
        Ok(None) => Err(bad(HearthError::internal("the request was cancelled while it waited").into())),
        Err(e) => Err(bad(HearthError::internal(format!("the generation stopped: {e}")).into())),
    }
}
