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

/// The model the runtime has loaded (or is loading): the one this server offers. Read on
/// every request, so a server inside the app follows the model the user picks.
fn served_model(s: &AppState) -> Option<String> {
    let status = s.runtime.status();
    matches!(status.state, ModelPhase::Ready | ModelPhase::Loading).then_some(status.model_id).flatten()
}

fn model_object(s: &AppState, id: String) -> ModelObject {
    ModelObject { id, object: "model", created: s.started, owned_by: "hearth" }
}

pub async fn models(State(s): State<AppState>) -> Json<ModelList> {
    let data = served_model(&s).map(|id| model_object(&s, id)).into_iter().collect();
    Json(ModelList { object: "list", data })
}

pub async fn model(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match served_model(&s) {
        Some(m) if m == id => Json(model_object(&s, m)).into_response(),
        served => unknown_model(&id, served.as_deref()).into_response(),
    }
}

fn unknown_model(id: &str, served: Option<&str>) -> ApiError {
    let message = match served {
        Some(m) => format!("no model {id:?} here; this server has {m:?}"),
        None => format!("no model {id:?} here; no model is loaded"),
    };
    ApiError::from(HearthError::not_found("model", id)).with_param("model").with_message(message)
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
    /// The model's id, for a stored exchange.
    pub model: String,
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
        // Kept for `--store` (the request moves into the runtime).
        let messages = self.state.store.then(|| (self.request.messages.clone(), self.request.images.clone()));
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
        if let (Some((messages, images)), Ok(c)) = (messages, &result) {
            // A blocking thread of the server's runtime: not inside an async task.
            let stored = tokio::runtime::Handle::current().block_on(super::record::store_exchange(
                self.state.runtime.store(),
                &self.model,
                &messages,
                &images,
                c,
            ));
            match stored {
                Ok(conv) => log::info!("{} stored as conversation {conv}", self.id),
                Err(e) => log::warn!("{} could not be stored: {e}", self.id),
            }
        }
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
    // Refuse before queueing when no model can answer, or the client asks for another.
    let status = s.runtime.status();
    let model = match (status.state, status.model_id) {
        (ModelPhase::Ready, Some(id)) => id,
        (ModelPhase::Loading, _) => return Err(bad(HearthError::new(ErrorCode::Busy, "the model is loading").into())),
        _ => return Err(bad(HearthError::no_model().into())),
    };
    if let Some(m) = req.model.as_deref().filter(|m| *m != model) {
        return Err(bad(unknown_model(m, Some(&model))));
    }
    let app = AppSettings::load(s.runtime.store()).await.map_err(|e| bad(HearthError::from(e).into()))?;
    let request = CompletionRequest {
        sampling: Some(sampling(&app, &req)),
        messages: req.messages.clone(),
        max_tokens: req.max_tokens,
        stop: req.stop.clone(),
        images: req.images.clone(),
    };
    // The place in line is taken here, in the order requests arrive.
    let ticket = s.runtime.queue().join().map_err(|e| bad(queue_full(e)))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let id = s.completion_id();
    let guard = CancelOnDrop { cancel: cancel.clone(), queue: s.runtime.queue().clone(), armed: true };
    let job = Job { id: id.clone(), model: model.clone(), state: s, ticket, request, cancel };
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
