//! OpenAI's chat-completions wire format: the request as clients send it, checked and turned
//! into what the runtime takes, and the responses (whole, or `chat.completion.chunk` events).
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat>. Fields a client may send
//! that Hearth has no use for (`user`, `frequency_penalty`, `logit_bias`, ...) are ignored, as
//! other OpenAI-compatible servers do; fields whose meaning Hearth cannot honour (`n` > 1,
//! tools) are refused rather than silently dropped.

use engine::chat_template::{ChatMessage, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{ApiError, HttpCode};
use crate::runtime::CompletionImage;

/// OpenAI allows at most this many stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 4;

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Not OpenAI's, but llama.cpp's server and vLLM take it.
    pub top_k: Option<i64>,
    pub max_tokens: Option<i64>,
    /// The newer name of `max_tokens`.
    pub max_completion_tokens: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub n: Option<i64>,
    #[serde(default)]
    pub tools: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Value,
}

/// A request the runtime can run.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub stream: bool,
    pub include_usage: bool,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub max_tokens: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    /// The `image_url` parts, each tied to its (joined) message in `messages`.
    pub images: Vec<CompletionImage>,
}

/// Parses and checks a request body. `max_messages` bounds the conversation's length.
pub fn parse_request(body: &[u8], max_messages: usize) -> Result<ChatRequest, ApiError> {
    let req: ChatCompletionRequest = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::http(HttpCode::InvalidJson, format!("the request body is not valid JSON: {e}"))
            }
            Category::Data => ApiError::http(HttpCode::InvalidRequest, format!("invalid request: {e}")),
        }
    })?;
    check(req, max_messages)
}

fn check(req: ChatCompletionRequest, max_messages: usize) -> Result<ChatRequest, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid("messages", "`messages` must hold at least one message"));
    }
    if req.messages.len() > max_messages {
        return Err(ApiError::invalid(
            "messages",
            format!("{} messages is more than this server accepts ({max_messages})", req.messages.len()),
        ));
    }
    if let Some(n) = req.n.filter(|n| *n != 1) {
        return Err(ApiError::invalid("n", format!("`n` must be 1 (one reply per request), not {n}")));
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_null()) {
        return Err(ApiError::invalid("tools", "this server does not call tools"));
    }
    let temperature = match req.temperature {
        Some(t) if !(0.0..=2.0).contains(&t) => {
            return Err(ApiError::invalid("temperature", format!("`temperature` must be between 0 and 2, not {t}")))
        }
        t => t.map(|t| t as f32),
    };
    let top_p = match req.top_p {
        Some(p) if !(p > 0.0 && p <= 1.0) => {
            return Err(ApiError::invalid("top_p", format!("`top_p` must be above 0 and at most 1, not {p}")))
        }
        p => p.map(|p| p as f32),
    };
    let top_k = match req.top_k {
        Some(k) if k < 0 => return Err(ApiError::invalid("top_k", format!("`top_k` must be 0 or more, not {k}"))),
        k => k.map(|k| k as usize),
    };
    let (max_param, max) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    let max_tokens = match max {
        Some(m) if m < 1 => {
            return Err(ApiError::invalid(max_param, format!("`{max_param}` must be at least 1, not {m}")))
        }
        m => m.map(|m| m as usize),
    };
    let stop = match req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > MAX_STOP_SEQUENCES {
        return Err(ApiError::invalid("stop", format!("at most {MAX_STOP_SEQUENCES} stop sequences")));
    }
    if stop.iter().any(|s| s.is_empty()) {
        return Err(ApiError::invalid("stop", "a stop sequence cannot be empty"));
    }
    let messages = req.messages.into_iter().enumerate().map(|(i, m)| message(i, m)).collect::<Result<Vec<_>, _>>()?;
    let (messages, images) = turns(messages)?;
    Ok(ChatRequest {
        model: req.model,
        messages,
        stream: req.stream,
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        temperature,
        top_p,
        top_k,
        max_tokens,
        // OpenAI's seed is any integer; the sampler's is 64 bits: keep the bits.
        seed: req.seed.map(|s| s as u64),
        stop,
        images,
    })
}

/// The messages as Gemma's chat template takes them: one system message at most, first; then
/// turns that alternate, starting with the user's (Gemma's official template refuses anything
/// else). OpenAI accepts several messages of one role in a row, so those are joined into one
/// turn, as other servers for alternating-role models do.
fn turns(messages: Vec<WireTurn>) -> Result<(Vec<ChatMessage>, Vec<CompletionImage>), ApiError> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    let mut images = Vec::new();
    for (i, (m, bytes)) in messages.into_iter().enumerate() {
        if m.role == Role::System && i > 0 {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                "a system message is only supported as the first message",
            ));
        }
        match out.last_mut() {
            Some(last) if last.role == m.role => {
                // An images-only message adds no text, and no blank lines.
                if !m.content.is_empty() {
                    if !last.content.is_empty() {
                        last.content.push_str("\n\n");
                    }
                    last.content.push_str(&m.content);
                }
            }
            last => {
                let after_system = last.is_none_or(|l| l.role == Role::System);
                if after_system && m.role == Role::Assistant {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        "the conversation must start with a user message",
                    ));
                }
                out.push(m);
            }
        }
        // A joined message keeps every image of its parts, in order.
        images.extend(bytes.into_iter().map(|bytes| CompletionImage { message: out.len() - 1, bytes }));
    }
    Ok((out, images))
}

/// One wire message as the template takes it, with the bytes of its images.
type WireTurn = (ChatMessage, Vec<Vec<u8>>);

fn message(i: usize, m: WireMessage) -> Result<WireTurn, ApiError> {
    let role = match m.role.as_str() {
        // OpenAI's newer name for the system role.
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                format!("unknown role {other:?} (expected system, developer, user or assistant)"),
            ))
        }
    };
    let param = format!("messages[{i}].content");
    let mut images = Vec::new();
    let content = match m.content {
        Value::String(s) => s,
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => match part.get("text").and_then(Value::as_str) {
                        Some(t) => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(t);
                        }
                        None => {
                            return Err(ApiError::invalid(
                                format!("{param}[{j}].text"),
                                "a text part needs a string `text`",
                            ))
                        }
                    },
                    Some("image_url") => {
                        let at = format!("{param}[{j}].image_url");
                        if role != Role::User {
                            return Err(ApiError::invalid(at, "only a user message can hold images"));
                        }
                        images.push(image_bytes(part.get("image_url"), &at)?);
                    }
                    Some(other) => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}].type"),
                            format!("unknown content part type {other:?} (expected text or image_url)"),
                        ))
                    }
                    None => return Err(ApiError::invalid(format!("{param}[{j}]"), "a content part needs a `type`")),
                }
            }
            text
        }
        Value::Null => return Err(ApiError::invalid(param, "a message needs `content`")),
        _ => return Err(ApiError::invalid(param, "`content` must be a string or an array of parts")),
    };
    Ok((ChatMessage::new(role, content), images))
}

/// The file in an `image_url` part: `{"url": "data:<type>;base64,<data>"}` (or the URL as a
/// plain string, as some clients send it). Only `data:` URLs: the server never fetches from
/// the network on a client's behalf. The bytes are decoded (and refused if they are not an
/// image) when the model encodes them.
fn image_bytes(part: Option<&Value>, param: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    let url = match part {
        Some(Value::String(u)) => u.as_str(),
        Some(v) => match v.get("url").and_then(Value::as_str) {
            Some(u) => u,
            None => return Err(ApiError::invalid(format!("{param}.url"), "an image_url part needs a string `url`")),
        },
        None => return Err(ApiError::invalid(param, "an image_url part needs `image_url`")),
    };
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(ApiError::invalid(
            format!("{param}.url"),
            "only `data:` URLs are accepted (base64 image data): this server does not fetch images from the network",
        ));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(ApiError::invalid(format!("{param}.url"), "a data: URL needs a `,` before its data"));
    };
    if !meta.ends_with(";base64") {
        return Err(ApiError::invalid(format!("{param}.url"), "the image's data: URL must be base64 (`;base64,`)"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| ApiError::invalid(format!("{param}.url"), format!("the image's base64 data is invalid: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(format!("{param}.url"), "the image is empty"));
    }
    Ok(bytes)
}

/// Why a reply ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished, or a stop sequence was reached.
    Stop,
    /// `max_tokens` or the context ran out.
    Length,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: FinishReason,
}

/// A whole reply (`stream: false`).
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

impl ChatCompletion {
    pub fn new(id: String, created: u64, model: String, text: String, finish: FinishReason, usage: Usage) -> Self {
        Self {
            id,
            object: "chat.completion",
            created,
            model,
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage { role: "assistant", content: text },
                finish_reason: finish,
            }],
            usage,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<FinishReason>,
}

/// One streamed event (`stream: true`).
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// On the chunk that ends the reply (and, with `stream_options.include_usage`, on a last
    /// chunk with no choices, as OpenAI sends it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
pub struct ModelObject {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn parse(v: Value) -> Result<ChatRequest, ApiError> {
        parse_request(v.to_string().as_bytes(), 8)
    }

    #[test]
    fn content_is_a_string_or_text_parts_and_the_options_are_read() {
        let r = parse(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
            ],
            "stream": true, "stream_options": {"include_usage": true},
            "temperature": 0.5, "top_p": 0.9, "max_tokens": 7, "seed": -1, "stop": "\n", "user": "ignored"
        }))
        .unwrap();
        assert_eq!(
            r.messages,
            vec![ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "Hi\nthere")]
        );
        assert!(r.stream && r.include_usage);
        assert_eq!((r.temperature, r.top_p, r.max_tokens, r.seed), (Some(0.5), Some(0.9), Some(7), Some(u64::MAX)));
        assert_eq!(r.stop, vec!["\n".to_string()]);
        let r = parse(serde_json::json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]})).unwrap();
        assert_eq!((r.model, r.stop.len(), r.stream), (None, 2, false));
    }

    #[test]
    fn malformed_json_and_invalid_requests_are_told_apart() {
        let e = parse_request(b"{\"messages\": [", 8).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (StatusCode::BAD_REQUEST, "invalid_json"));
        let e = parse_request(b"{\"messages\": 3}", 8).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (StatusCode::BAD_REQUEST, "invalid_request"));
        let e = parse_request(b"{}", 8).unwrap_err();
        assert!(e.message.contains("messages"), "{}", e.message);
    }

    #[test]
    fn each_bad_field_names_itself() {
        let cases = [
            (serde_json::json!({"messages": []}), "messages"),
            (serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}), "messages[0].role"),
            (serde_json::json!({"messages": [{"role": "user"}]}), "messages[0].content"),
            (serde_json::json!({"messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
            (
                serde_json::json!({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
                "messages[0].content[0].type",
            ),
            (serde_json::json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}), "temperature"),
            (serde_json::json!({"messages": [{"role": "user", "content": "x"}], "top_p": 0}), "top_p"),
            (serde_json::json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}), "max_tokens"),
            (serde_json::json!({"messages": [{"role": "user", "content": "x"}], "n": 2}), "n"),
            (
                serde_json::json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}),
                "stop",
            ),
            (serde_json::json!({"messages": [{"role": "user", "content": "x"}], "stop": ""}), "stop"),
        ];
        for (body, param) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{body}");
        }
        let nine: Vec<Value> = (0..9).map(|_| serde_json::json!({"role": "user", "content": "x"})).collect();
        assert_eq!(parse(serde_json::json!({"messages": nine})).unwrap_err().param.as_deref(), Some("messages"));
    }

    #[test]
    fn turns_alternate_and_messages_of_one_role_in_a_row_are_joined() {
        let r = parse(serde_json::json!({"messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "user", "content": "d"},
        ]}))
        .unwrap();
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User]);
        assert_eq!(r.messages[1].content, "a\n\nb");
        let late_system = serde_json::json!({"messages": [
            {"role": "user", "content": "a"}, {"role": "system", "content": "S"}]});
        assert_eq!(parse(late_system).unwrap_err().param.as_deref(), Some("messages[1].role"));
        let model_first = serde_json::json!({"messages": [
            {"role": "system", "content": "S"}, {"role": "assistant", "content": "a"}]});
        assert_eq!(parse(model_first).unwrap_err().param.as_deref(), Some("messages[1].role"));
    }

    #[test]
    fn image_parts_become_images_of_their_joined_message() {
        let png = |b: &[u8]| {
            use base64::Engine as _;
            format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(b))
        };
        let r = parse(serde_json::json!({"messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": png(b"one")}}
            ]},
            {"role": "user", "content": [{"type": "image_url", "image_url": png(b"two")}]},
            {"role": "assistant", "content": "a cat"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": png(b"three")}}]},
        ]}))
        .unwrap();
        let got: Vec<(usize, &[u8])> = r.images.iter().map(|i| (i.message, &i.bytes[..])).collect();
        assert_eq!(got, [(1, &b"one"[..]), (1, &b"two"[..]), (3, &b"three"[..])]);
        assert_eq!(r.messages[1].content, "what is this?");
    }

    #[test]
    fn an_image_part_that_cannot_be_used_names_itself() {
        let with = |role: &str, image: Value| {
            parse(serde_json::json!({"messages": [
                {"role": "user", "content": "x"},
                {"role": role, "content": [{"type": "image_url", "image_url": image}]}
            ]}))
            .unwrap_err()
        };
        let cases = [
            (
                "user",
                serde_json::json!({"url": "https://example.com/cat.png"}),
                "messages[1].content[0].image_url.url",
                "network",
            ),
            (
                "user",
                serde_json::json!({"url": "data:image/png,abc"}),
                "messages[1].content[0].image_url.url",
                "base64",
            ),
            (
                "user",
                serde_json::json!({"url": "data:image/png;base64,***"}),
                "messages[1].content[0].image_url.url",
                "invalid",
            ),
            (
                "user",
                serde_json::json!({"url": "data:image/png;base64,"}),
                "messages[1].content[0].image_url.url",
                "empty",
            ),
            ("user", serde_json::json!({}), "messages[1].content[0].image_url.url", "url"),
            (
                "assistant",
                serde_json::json!({"url": "data:image/png;base64,AAAA"}),
                "messages[1].content[0].image_url",
                "user message",
            ),
        ];
        for (role, image, param, says) in cases {
            let e = with(role, image.clone());
            assert_eq!((e.status, e.param.as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{image}");
            assert!(e.message.contains(says), "{image}: {}", e.message);
        }
    }
}
