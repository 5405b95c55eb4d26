//! An OpenAI chat-completions client for remote models: streams a reply over server-sent events
//! (the wire format llama-server, vLLM and `hearth serve` share: `data: {chunk}` lines, then
//! `data: [DONE]`; https://platform.openai.com/docs/api-reference/chat-streaming), and stops
//! within one poll when cancelled by closing the connection, which these servers take as a
//! cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use engine::chat_template::ChatMessage;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::registry::{RemoteKey, RemoteModel};
use super::RemoteError;

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may stay silent before its first piece: a big model reading a long prompt
/// on a busy server takes minutes.
const FIRST_PIECE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a server may stay silent between pieces before the reply counts as broken.
const PIECE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a blocking caller checks its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// What a remote reply is asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteOptions {
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
}

/// Why a remote reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteFinish {
    /// The model finished, or a stop string matched.
    Stop,
    /// `max_tokens` (or the server's context) ended it.
    Length,
    /// The caller cancelled it.
    Cancelled,
}

/// A finished remote reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteReply {
    pub text: String,
    pub finish: RemoteFinish,
    /// The model id the server says answered.
    pub model: Option<String>,
    /// Token counts, when the server reports usage.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Seconds from the request to the first piece of text.
    pub first_piece_s: Option<f64>,
    /// Completion tokens (or pieces, without usage) per second after the first piece.
    pub gen_tokens_per_s: f64,
}

/// A connection to one remote model.
#[derive(Clone)]
pub struct RemoteClient {
    http: reqwest::Client,
    remote: RemoteModel,
    key: Option<RemoteKey>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient").field("remote", &self.remote).field("key", &self.key).finish()
    }
}

/// What the streaming task tells the caller's thread.
enum Piece {
    Text(String),
    End(Result<RemoteReply, RemoteError>),
}

impl RemoteClient {
    pub fn new(remote: RemoteModel, key: Option<RemoteKey>) -> Result<Self, RemoteError> {
        let http = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).build().map_err(|e| {
            RemoteError::Unreachable { url: remote.url.clone(), reason: format!("cannot set up HTTP: {e}") }
        })?;
        Ok(Self { http, remote, key })
    }

    pub fn remote(&self) -> &RemoteModel {
        &self.remote
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}/v1/{path}", self.remote.url));
        match &self.key {
            Some(k) => r.bearer_auth(k.secret()),
            None => r,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> RemoteError {
        RemoteError::Unreachable { url: self.remote.url.clone(), reason: describe(e) }
    }

    /// The model ids the server offers (`GET /v1/models`): checks the address and the key.
    pub async fn models(&self) -> Result<Vec<String>, RemoteError> {
        let r = self
            .request(reqwest::Method::GET, "models")
            .timeout(PIECE_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let v = self.json_or_refusal(r).await?;
        let ids = v["data"].as_array().map(|d| d.iter().filter_map(|m| m["id"].as_str().map(String::from)).collect());
        ids.ok_or_else(|| self.protocol("its /v1/models answer has no `data` list"))
    }

    /// The model to ask for: the configured one, else the first the server lists.
    pub async fn model_id(&self) -> Result<String, RemoteError> {
        if let Some(m) = &self.remote.model {
            return Ok(m.clone());
        }
        self.models().await?.into_iter().next().ok_or_else(|| self.protocol("it offers no model"))
    }

    fn protocol(&self, reason: impl Into<String>) -> RemoteError {
        RemoteError::Protocol { url: self.remote.url.clone(), reason: reason.into() }
    }

    /// The body as JSON if the status is a success; else the server's refusal, with the message
    /// from its OpenAI-shaped error when it sent one.
    async fn json_or_refusal(&self, r: reqwest::Response) -> Result<Value, RemoteError> {
        let status = r.status();
        let body = r.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().or(v["message"].as_str()).map(String::from))
                .unwrap_or_else(|| body.chars().take(200).collect::<String>());
            return Err(RemoteError::Refused { url: self.remote.url.clone(), status: status.as_u16(), message });
        }
        serde_json::from_str(&body).map_err(|e| self.protocol(format!("not JSON ({e})")))
    }

    /// Streams a reply to `messages`, blocking the calling thread (which must not be inside the
    /// async runtime: `on_text` may block on it, e.g. to store the partial reply). Each piece of
    /// text goes to `on_text` as it arrives. Setting `cancel` closes the connection within
    /// [`CANCEL_POLL`] and returns what came so far as [`RemoteFinish::Cancelled`]. A connection
    /// that breaks mid-reply is [`RemoteError::Interrupted`]; the pieces already given to
    /// `on_text` are the partial reply.
    pub fn stream_chat(
        &self,
        rt: &Handle,
        messages: &[ChatMessage],
        opts: &RemoteOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<RemoteReply, RemoteError> {
        let (tx, rx) = mpsc::channel();
        let this = self.clone();
        let body = self.chat_body(messages, opts);
        let task = rt.spawn(async move {
            let end = this.stream_task(body, &tx).await;
            let _ = tx.send(Piece::End(end));
        });
        let mut text = String::new();
        loop {
            if cancel.load(Ordering::SeqCst) {
                // Dropping the response closes the connection: the server stops generating.
                task.abort();
                return Ok(RemoteReply {
                    text,
                    finish: RemoteFinish::Cancelled,
                    model: None,
                    prompt_tokens: None,
                    completion_tokens: None,
                    first_piece_s: None,
                    gen_tokens_per_s: 0.0,
                });
            }
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(Piece::Text(t)) => {
                    on_text(&t);
                    text.push_str(&t);
                }
                Ok(Piece::End(end)) => return end,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RemoteError::Interrupted {
                        url: self.remote.url.clone(),
                        reason: "the reply's task ended without an answer".into(),
                    })
                }
            }
        }
    }

    fn chat_body(&self, messages: &[ChatMessage], opts: &RemoteOptions) -> Value {
        let msgs: Vec<Value> =
            messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
        let mut body = json!({
            "messages": msgs,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
        });
        if let Some(seed) = opts.seed {
            // 31 bits: every server takes that (llama-server's seed is a u32, others an i64;
            // Hearth's own seeds are u64).
            body["seed"] = json!(seed & 0x7fff_ffff);
        }
        if !opts.stop.is_empty() {
            body["stop"] = json!(opts.stop);
        }
        body
    }

    async fn stream_task(&self, mut body: Value, tx: &mpsc::Sender<Piece>) -> Result<RemoteReply, RemoteError> {
        body["model"] = json!(self.model_id().await?);
        let started = Instant::now();
        let r = self
            .request(reqwest::Method::POST, "chat/completions")
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !r.status().is_success() {
            return Err(self
                .json_or_refusal(r)
                .await
                .err()
                .unwrap_or_else(|| self.protocol("an error without a status")));
        }
        let interrupted = |reason: String| RemoteError::Interrupted { url: self.remote.url.clone(), reason };
        let mut stream = r.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut reply = RemoteReply {
            text: String::new(),
            finish: RemoteFinish::Stop,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            first_piece_s: None,
            gen_tokens_per_s: 0.0,
        };
        let mut pieces = 0u64;
        let mut first_piece_at: Option<Instant> = None;
        let mut finished = false;
        loop {
            let wait = if first_piece_at.is_none() { FIRST_PIECE_TIMEOUT } else { PIECE_TIMEOUT };
            let chunk = match tokio::time::timeout(wait, stream.next()).await {
                Err(_) => return Err(interrupted(format!("no data for {} s", wait.as_secs()))),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(interrupted(describe(&e))),
                Ok(Some(Ok(c))) => c,
            };
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim_end_matches(['\r', '\n']).strip_prefix("data:") else { continue };
                let data = data.trim_start();
                if data == "[DONE]" {
                    return Ok(finish(reply, pieces, first_piece_at, started));
                }
                let v: Value = serde_json::from_str(data).map_err(|e| self.protocol(format!("a bad event ({e})")))?;
                if let Some(err) = v.get("error") {
                    let message = err["message"].as_str().unwrap_or("unknown error").to_string();
                    return Err(interrupted(format!("the server reported: {message}")));
                }
                if let Some(m) = v["model"].as_str() {
                    reply.model = Some(m.to_string());
                }
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    reply.prompt_tokens = u["prompt_tokens"].as_u64();
                    reply.completion_tokens = u["completion_tokens"].as_u64();
                }
                let Some(choice) = v["choices"].get(0) else { continue };
                if let Some(t) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                    first_piece_at.get_or_insert_with(Instant::now);
                    pieces += 1;
                    reply.text.push_str(t);
                    if tx.send(Piece::Text(t.to_string())).is_err() {
                        // The caller is gone (cancelled): dropping the stream closes the connection.
                        return Ok(finish(reply, pieces, first_piece_at, started));
                    }
                }
                match choice["finish_reason"].as_str() {
                    Some("length") => (reply.finish, finished) = (RemoteFinish::Length, true),
                    Some(_) => (reply.finish, finished) = (RemoteFinish::Stop, true),
                    None => {}
                }
            }
        }
        // The stream closed without [DONE]: a complete reply if the server said it finished.
        if finished {
            Ok(finish(reply, pieces, first_piece_at, started))
        } else {
            Err(interrupted("the server closed the connection before the reply ended".into()))
        }
    }
}

fn finish(mut reply: RemoteReply, pieces: u64, first: Option<Instant>, started: Instant) -> RemoteReply {
    if let Some(first) = first {
        reply.first_piece_s = Some(first.duration_since(started).as_secs_f64());
        let tokens = reply.completion_tokens.unwrap_or(pieces).saturating_sub(1);
        let secs = first.elapsed().as_secs_f64();
        reply.gen_tokens_per_s = if secs > 0.0 { tokens as f64 / secs } else { 0.0 };
    }
    reply
}

/// A network error in words, with its causes (reqwest's own text alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}
