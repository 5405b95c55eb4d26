//! Streamed replies (`stream: true`): server-sent events in OpenAI's `chat.completion.chunk`
//! shape. First a chunk with the assistant's role (sent when the request's turn comes, so a
//! client sees when it stopped waiting), then one chunk per piece of text, then a chunk with
//! `finish_reason` and `usage`, then (with `stream_options.include_usage`) OpenAI's usage-only
//! chunk, then `data: [DONE]`. A failure after the stream began is sent as an `{"error": …}`
//! event, as OpenAI does, and ends the stream.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat-streaming>.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::errors::ApiError;
use super::openai::{ChatCompletionChunk, ChunkChoice, Delta, FinishReason, Usage};
use super::routes::{finish_reason, usage, CancelOnDrop, Job};
use crate::error::HearthError;
use crate::runtime::Completion;

/// While a request waits in line, a comment line this often keeps proxies from timing it out
/// and lets the server notice a client that went away (the write fails).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

enum Msg {
    Start,
    Text(String),
    End(Result<Completion, HearthError>),
}

struct Stream {
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Cancels the generation when the body is dropped before the end (the client left).
    guard: CancelOnDrop,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    pending: VecDeque<String>,
    finished: bool,
}

impl Stream {
    fn chunk(&self, delta: Delta, finish: Option<FinishReason>, usage: Option<Usage>) -> String {
        let choices = vec![ChunkChoice { index: 0, delta, finish_reason: finish }];
        self.encode(choices, usage)
    }

    fn encode(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> String {
        let c = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        };
        serde_json::to_string(&c).unwrap_or_default()
    }

    /// The events one message from the generating thread turns into.
    fn on(&mut self, msg: Option<Msg>) {
        match msg {
            Some(Msg::Start) => {
                let d = Delta { role: Some("assistant"), content: Some(String::new()) };
                let e = self.chunk(d, None, None);
                self.pending.push_back(e);
            }
            Some(Msg::Text(t)) => {
                let e = self.chunk(Delta { content: Some(t), ..Delta::default() }, None, None);
                self.pending.push_back(e);
            }
            Some(Msg::End(Ok(c))) => {
                let u = usage(&c);
                let e = self.chunk(Delta::default(), Some(finish_reason(&c)), Some(u));
                self.pending.push_back(e);
                if self.include_usage {
                    let e = self.encode(Vec::new(), Some(u));
                    self.pending.push_back(e);
                }
                self.pending.push_back("[DONE]".into());
                self.end();
            }
            Some(Msg::End(Err(e))) => {
                self.pending.push_back(ApiError::from(e).body());
                self.end();
            }
            // The thread ended without a result: only a cancelled wait does that.
            None => self.end(),
        }
    }

    fn end(&mut self) {
        self.finished = true;
        self.guard.armed = false;
    }
}

/// Starts `job` on a blocking thread and answers with its event stream.
pub fn stream(job: Job, guard: CancelOnDrop, id: String, model: String, include_usage: bool) -> Response {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = job.cancel.clone();
    tokio::task::spawn_blocking(move || {
        let text_tx = tx.clone();
        let mut on_start = || drop(tx.send(Msg::Start));
        let mut on_text = |piece: &str| {
            // The stream is gone (the client left): stop at this token.
            if text_tx.send(Msg::Text(piece.to_owned())).is_err() {
                cancel.store(true, Ordering::SeqCst);
            }
        };
        if let Some(result) = job.run(&mut on_start, &mut on_text) {
            let _ = text_tx.send(Msg::End(result));
        }
    });
    let state = Stream {
        rx,
        guard,
        id,
        model,
        created: super::unix_now(),
        include_usage,
        pending: VecDeque::new(),
        finished: false,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(data) = s.pending.pop_front() {
                return Some((Ok::<_, Infallible>(Event::default().data(data)), s));
            }
            if s.finished {
                return None;
            }
            let msg = s.rx.recv().await;
            s.on(msg);
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}
