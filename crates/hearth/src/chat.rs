//! A conversation turn: the stored history goes through the engine session, and the user's
//! message and the streamed reply go into the store.
//!
//! The engine is synchronous and the store is async, so a turn runs on the caller's thread and
//! reaches the store through a Tokio runtime handle. It must not be called from inside that
//! runtime (the desktop app calls it from `spawn_blocking`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::chat_template::ChatMessage;
use engine::sampler::SamplingParams;
pub use engine::session::StopReason;
use engine::session::{GenerateOptions, GenerationResult, Session};
use serde::Serialize;
use tokio::runtime::Handle;

use crate::store::{
    ConversationId, GenerationStats, Message, MessageFinish, MessageId, MessageState, NewAttachment, NewMessage, Role,
    Store, StoreError,
};
use crate::turn_inputs::TurnFile;

/// How often the partial reply is written while it streams. The requirement is "at least every
/// second"; half a second keeps a crash from losing more than a few tokens.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Titles made from the first message are cut to this many characters.
const TITLE_CHARS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the model failed: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("the message is empty")]
    EmptyMessage,
    /// The message a regenerate or edit names cannot be used that way (wrong role, no user
    /// message to answer); the text says why.
    #[error("{0}")]
    InvalidMessage(String),
    /// Images for a model without a vision tower; `vision_models` are the catalog's models
    /// that read images.
    #[error("this model does not read images; a vision model does: {}", vision_models.join(", "))]
    ImagesUnsupported { vision_models: Vec<String> },
    /// Documents too long to read with the conversation's context and still leave room for
    /// a reply.
    #[error(
        "{} too long for this conversation ({tokens} tokens with the message; the context is {context} and a reply needs {room}): summarize it first (`hearth summarize`) and ask about the summary",
        match files.as_slice() { [one] => format!("the document {one} is"), many => format!("the documents {} are", many.join(", ")) }
    )]
    DocumentTooLong { files: Vec<String>, tokens: usize, room: usize, context: usize },
    #[error("cannot read the image {file}: {source}")]
    Image { file: String, source: engine::vision::preprocess::ImageInputError },
    /// A remote model's server failed (already in the form front ends show).
    #[error("{0}")]
    Remote(crate::error::HearthError),
}

impl From<crate::remote::RemoteError> for ChatError {
    fn from(e: crate::remote::RemoteError) -> Self {
        ChatError::Remote(e.into())
    }
}

/// Where a turn's reply is generated.
pub enum Backend<'a> {
    /// The model in this process; its session keeps the KV cache between turns, so only new
    /// tokens are computed.
    Local(&'a mut Session),
    /// A model on another machine's OpenAI-compatible server, which keeps its own cache and
    /// context: it gets the whole history (documents joined, as a local model reads them), and
    /// a failure mid-reply keeps what came.
    Remote(&'a crate::remote::RemoteClient),
}

/// A generated reply, from either backend.
struct Generated {
    text: String,
    stop: StopReason,
    generated_tokens: usize,
    prompt_tokens: usize,
    reused_tokens: usize,
    gen_tokens_per_s: f64,
    /// Unknown for a remote model (the server's time is not ours to measure).
    prompt_tokens_per_s: Option<f64>,
    /// What the stored reply names as its model, when not the request's label.
    model_label: Option<String>,
}

impl From<GenerationResult> for Generated {
    fn from(r: GenerationResult) -> Self {
        Generated {
            generated_tokens: r.ids.len(),
            text: r.text,
            stop: r.stop,
            prompt_tokens: r.prompt_tokens,
            reused_tokens: r.reused_tokens,
            gen_tokens_per_s: r.gen_tokens_per_s,
            prompt_tokens_per_s: Some(r.prompt_tokens_per_s),
            model_label: None,
        }
    }
}

impl Generated {
    fn from_remote(r: crate::remote::RemoteReply, client: &crate::remote::RemoteClient) -> Self {
        use crate::remote::RemoteFinish;
        let remote = client.remote();
        Generated {
            stop: match r.finish {
                RemoteFinish::Stop => StopReason::Eos,
                RemoteFinish::Length => StopReason::MaxTokens,
                RemoteFinish::Cancelled => StopReason::Cancelled,
            },
            generated_tokens: r.completion_tokens.unwrap_or(0) as usize,
            prompt_tokens: r.prompt_tokens.unwrap_or(0) as usize,
            reused_tokens: 0,
            gen_tokens_per_s: r.gen_tokens_per_s,
            prompt_tokens_per_s: None,
            model_label: Some(remote_label(&remote.name, r.model.as_deref(), &remote.url)),
            text: r.text,
        }
    }
}

/// How a stored reply names the remote model that wrote it: which backend answered.
pub fn remote_label(name: &str, served: Option<&str>, url: &str) -> String {
    match served {
        Some(m) if m != name => format!("{name} ({m}, remote at {url})"),
        _ => format!("{name} (remote at {url})"),
    }
}

/// What a turn answers. Every kind ends with a new streamed reply that becomes the
/// conversation's active leaf; they differ in where it goes in the message tree.
#[derive(Debug, Clone)]
pub enum TurnInput {
    /// A new user message (with its attachments) under the active leaf, and the reply under it.
    Send { text: String, attachments: Vec<NewAttachment> },
    /// Another reply beside the assistant message `reply` (same parent: the user message it
    /// answers), generated from the history up to that user message.
    Regenerate { reply: MessageId },
    /// A new version of the user message `message`: beside it (same parent), with `text` and a
    /// copy of its attachments; the reply goes under the new version.
    Edit { message: MessageId, text: String },
}

impl TurnInput {
    /// A plain message without attachments.
    pub fn send(text: impl Into<String>) -> Self {
        TurnInput::Send { text: text.into(), attachments: Vec::new() }
    }
}

/// What to send in one turn.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    /// The conversation; a regenerated or edited message must belong to it.
    pub conversation_id: ConversationId,
    pub input: TurnInput,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Recorded with the reply (model id or file name).
    pub model_label: String,
    /// The loaded model's vision tower; `None` for a model that reads only text (an image in
    /// the turn is then refused).
    pub vision: Option<Arc<crate::turn_inputs::Vision>>,
    /// The Pan & Scan crop rule images are read with (`AppSettings::pan_scan_rule`); `None`:
    /// each image is read whole.
    pub pan_scan: Option<engine::vision::preprocess::PanScan>,
}

/// What a turn produced; the reply is already stored.
#[derive(Debug, Clone, Serialize)]
pub struct TurnOutcome {
    pub conversation_id: ConversationId,
    /// The user message the reply answers (for a regenerate, the existing one).
    pub user_message_id: MessageId,
    /// Whether this turn stored that user message (send, edit) or reused it (regenerate).
    pub new_user_message: bool,
    pub assistant_message_id: MessageId,
    pub reply: String,
    pub state: MessageState,
    pub stop_reason: StopReason,
    pub gen_tokens_per_s: f64,
    pub prompt_tokens_per_s: f64,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub generated_tokens: usize,
}

/// The messages a turn stored, reported before its reply streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTurn {
    /// The user message the reply answers (for a regenerate, the existing one).
    pub user_message_id: MessageId,
    /// Whether this turn stored that user message (send, edit) or reused it (regenerate).
    pub new_user_message: bool,
    /// The reply, stored as `streaming`.
    pub assistant_message_id: MessageId,
}

/// The stored history as the engine's chat messages: the conversation's system prompt first,
/// then every message with text (documents joined into user messages, images left out).
/// Partial replies (interrupted) are kept: the user saw them.
pub fn history_to_chat(system_prompt: Option<&str>, messages: &[Message]) -> Vec<ChatMessage> {
    crate::turn_inputs::history_messages(system_prompt, messages)
}

/// A title from the first thing the user said: its first line, cut at a word boundary.
pub fn title_from(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.chars().count() <= TITLE_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(TITLE_CHARS).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > TITLE_CHARS / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

/// The user's side of a turn, resolved against the store.
struct TurnPlan {
    /// What comes before the user's message (the path to its parent), oldest first.
    history: Vec<Message>,
    /// The user's message as typed (its documents join it in the prompt).
    user_text: String,
    /// A regenerated turn's stored files (send and edit carry theirs in `user`).
    existing_files: Vec<crate::store::Attachment>,
    user: Asked,
}

enum Asked {
    /// Regenerate: the reply answers a stored user message.
    Existing(MessageId),
    /// Send or edit: a new user message goes under `parent` (`None`: a first message).
    New { parent: Option<MessageId>, attachments: Vec<NewAttachment> },
}

fn nonempty(text: &str) -> Result<String, ChatError> {
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Err(ChatError::EmptyMessage);
    }
    Ok(text.to_string())
}

/// Runs conversation turns against a store.
#[derive(Clone)]
pub struct ChatService {
    store: Store,
    rt: Handle,
    flush_interval: Duration,
}

impl ChatService {
    pub fn new(store: Store, rt: Handle) -> Self {
        Self { store, rt, flush_interval: FLUSH_INTERVAL }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One turn: stores the user's message (unless regenerating) and a `streaming` reply where
    /// `req.input` says, generates with the session (which keeps its KV cache between turns, so
    /// only new tokens are computed), writes the partial reply every `FLUSH_INTERVAL` and the
    /// final one with its stats. Setting `cancel` ends the reply early; it is then stored as
    /// `interrupted`. `on_text` sees each new piece. Send, regenerate and edit all go through
    /// here: only the placement in the message tree differs.
    pub fn turn(
        &self,
        session: &mut Session,
        req: &TurnRequest,
        cancel: Arc<AtomicBool>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnOutcome, ChatError> {
        self.turn_observed(session, req, cancel, &mut |_| {}, on_text)
    }

    /// [`ChatService::turn`], also telling `on_stored` which messages it stored, once, before
    /// the first piece of text (so a front end learns the ids without reading them back).
    pub fn turn_observed(
        &self,
        session: &mut Session,
        req: &TurnRequest,
        cancel: Arc<AtomicBool>,
        on_stored: &mut dyn FnMut(&StoredTurn),
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnOutcome, ChatError> {
        self.turn_with(Backend::Local(session), req, cancel, on_stored, on_text)
    }

    /// [`ChatService::turn_observed`] on either backend. A remote model gets the whole
    /// history (its server fits it to its own context); if its connection fails after text
    /// arrived, that text is kept as an `interrupted` reply with the reason.
    pub fn turn_with(
        &self,
        mut backend: Backend<'_>,
        req: &TurnRequest,
        cancel: Arc<AtomicBool>,
        on_stored: &mut dyn FnMut(&StoredTurn),
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnOutcome, ChatError> {
        let store = &self.store;
        let conv = self.rt.block_on(store.conversation(req.conversation_id))?;
        let plan = self.plan(&req.input, conv.id)?;
        // Build the prompt before storing anything: a template error, an image for a text-only
        // model or a document that does not fit should not leave a half-stored turn.
        let files: Vec<TurnFile<'_>> = match &plan.user {
            Asked::Existing(_) => plan.existing_files.iter().map(TurnFile::Stored).collect(),
            Asked::New { attachments, .. } => attachments.iter().map(TurnFile::New).collect(),
        };
        enum Prepared {
            Local(crate::turn_inputs::TurnPrompt),
            Remote(Vec<ChatMessage>),
        }
        let prompt = match &mut backend {
            Backend::Local(session) => Prepared::Local(crate::turn_inputs::prepare(
                session,
                req.vision.as_deref(),
                req.pan_scan.as_ref(),
                conv.system_prompt.as_deref(),
                &plan.history,
                &plan.user_text,
                &files,
                req.max_tokens,
                &mut |a| Ok(self.rt.block_on(store.attachment_bytes(a))?),
            )?),
            Backend::Remote(_) => {
                if files.iter().any(|f| f.is_image()) {
                    return Err(ChatError::InvalidMessage(
                        "images are not sent to a model on another machine yet: use a local vision model".into(),
                    ));
                }
                let mut chat = crate::turn_inputs::history_messages(conv.system_prompt.as_deref(), &plan.history);
                let content = crate::turn_inputs::user_content(&plan.user_text, files.iter().copied());
                chat.push(ChatMessage::new(engine::chat_template::Role::User, content));
                Prepared::Remote(chat)
            }
        };
        drop(files);

        let (user_id, new_user_message) = match plan.user {
            Asked::Existing(id) => (id, false),
            Asked::New { parent, attachments } => {
                let m = NewMessage::complete(Role::User, plan.user_text.as_str());
                let user = self.rt.block_on(store.append_child(conv.id, parent, &m, &attachments))?;
                if conv.title.is_empty() {
                    self.rt.block_on(store.rename_conversation(conv.id, &title_from(&plan.user_text)))?;
                }
                (user.id, true)
            }
        };
        let reply = self.rt.block_on(store.append_child(
            conv.id,
            Some(user_id),
            &NewMessage::streaming(Role::Assistant),
            &[],
        ))?;
        on_stored(&StoredTurn { user_message_id: user_id, new_user_message, assistant_message_id: reply.id });

        let mut partial = String::new();
        // The first piece is written at once, so a reply is visible in the database from its
        // first token; after that at most every flush interval.
        let mut last_flush: Option<Instant> = None;
        let mut on_piece = |piece: &str| {
            partial.push_str(piece);
            on_text(piece);
            if last_flush.is_none_or(|t| t.elapsed() >= self.flush_interval) {
                if let Err(e) = self.rt.block_on(store.update_message_text(reply.id, &partial)) {
                    // Keep generating: the final write below reports a lasting problem.
                    log::warn!("could not save the partial reply: {e}");
                }
                last_flush = Some(Instant::now());
            }
        };
        let result: Result<Generated, ChatError> = match (backend, prompt) {
            (Backend::Local(session), Prepared::Local(prompt)) => {
                let opts = GenerateOptions {
                    max_tokens: req.max_tokens,
                    sampling: req.sampling.clone(),
                    stop_strings: Vec::new(),
                    cancel: Some(cancel),
                };
                session
                    .generate_with_images(&prompt.ids, &prompt.images, &opts, &mut on_piece)
                    .map(Generated::from)
                    .map_err(ChatError::from)
            }
            (Backend::Remote(client), Prepared::Remote(chat)) => {
                let opts = crate::remote::RemoteOptions {
                    max_tokens: req.max_tokens,
                    temperature: req.sampling.temperature,
                    top_p: req.sampling.top_p,
                    seed: Some(req.sampling.seed),
                    stop: Vec::new(),
                };
                client
                    .stream_chat(&self.rt, &chat, &opts, &cancel, &mut on_piece)
                    .map(|r| Generated::from_remote(r, client))
                    .map_err(ChatError::from)
            }
            _ => unreachable!("the prompt is prepared for the backend it runs on"),
        };

        match result {
            Ok(r) => {
                let mut out = self.finish(conv.id, user_id, reply.id, req, r)?;
                out.new_user_message = new_user_message;
                Ok(out)
            }
            Err(e) => {
                let (state, error) = match &e {
                    // What a remote model sent before its connection broke is a partial reply,
                    // like a stopped one; the reason goes with it.
                    ChatError::Remote(h) if !partial.is_empty() => (MessageState::Interrupted, h.clone()),
                    ChatError::Remote(h) => (MessageState::Error, h.clone()),
                    ChatError::Engine(engine_err) => {
                        (MessageState::Error, crate::error::HearthError::of_engine(engine_err))
                    }
                    other => (MessageState::Error, crate::error::HearthError::internal(other)),
                };
                let fin = MessageFinish {
                    content: partial,
                    state,
                    token_count: None,
                    stats: GenerationStats { model: Some(req.model_label.clone()), ..Default::default() },
                    error: Some(error.to_stored()),
                };
                if let Err(store_err) = self.rt.block_on(store.finish_message(reply.id, &fin)) {
                    log::warn!("could not record the failed reply: {store_err}");
                }
                Err(e)
            }
        }
    }

    /// Where the turn goes and what the model sees before the user's message. Checks
    /// everything before the turn stores anything.
    fn plan(&self, input: &TurnInput, conversation_id: ConversationId) -> Result<TurnPlan, ChatError> {
        let store = &self.store;
        // A message of another conversation is as good as missing.
        let message_in_conversation = |id: MessageId| -> Result<Message, ChatError> {
            let m = self.rt.block_on(store.message(id))?;
            if m.conversation_id != conversation_id {
                return Err(StoreError::MessageNotFound(id).into());
            }
            Ok(m)
        };
        // The history before a message: the path to its parent.
        let history_before = |m: &Message| -> Result<Vec<Message>, ChatError> {
            Ok(match m.parent_id {
                Some(p) => self.rt.block_on(store.path_to(p))?,
                None => Vec::new(),
            })
        };
        match input {
            TurnInput::Send { text, attachments } => {
                let text = nonempty(text)?;
                // The attachments join the user's turn in the prompt (`turn_inputs`).
                Ok(TurnPlan {
                    history: self.rt.block_on(store.messages(conversation_id))?,
                    user_text: text,
                    existing_files: Vec::new(),
                    user: Asked::New {
                        parent: self.rt.block_on(store.active_leaf(conversation_id))?,
                        attachments: attachments.clone(),
                    },
                })
            }
            TurnInput::Regenerate { reply } => {
                let old = message_in_conversation(*reply)?;
                if old.role != Role::Assistant {
                    return Err(ChatError::InvalidMessage(format!(
                        "message {reply} is not a reply: only assistant replies can be regenerated"
                    )));
                }
                let question = old
                    .parent_id
                    .map(|p| self.rt.block_on(store.message(p)))
                    .transpose()?
                    .filter(|q| q.role == Role::User)
                    .ok_or_else(|| {
                        ChatError::InvalidMessage(format!(
                            "reply {reply} does not answer a user message, so it cannot be regenerated"
                        ))
                    })?;
                Ok(TurnPlan {
                    history: history_before(&question)?,
                    user_text: question.content.clone(),
                    existing_files: question.attachments.clone(),
                    user: Asked::Existing(question.id),
                })
            }
            TurnInput::Edit { message, text } => {
                let text = nonempty(text)?;
                let old = message_in_conversation(*message)?;
                if old.role != Role::User {
                    return Err(ChatError::InvalidMessage(format!(
                        "message {message} is not a user message: only your own messages can be edited"
                    )));
                }
                // The edited copy keeps the original's attachments (read back and checked
                // against their sha256; storing them again reuses the same bytes).
                let mut attachments = Vec::with_capacity(old.attachments.len());
                for a in &old.attachments {
                    attachments.push(NewAttachment {
                        kind: a.kind,
                        file_name: a.file_name.clone(),
                        mime: a.mime.clone(),
                        bytes: self.rt.block_on(store.attachment_bytes(a))?,
                        extracted_text: a.extracted_text.clone(),
                    });
                }
                Ok(TurnPlan {
                    history: history_before(&old)?,
                    user_text: text,
                    existing_files: Vec::new(),
                    user: Asked::New { parent: old.parent_id, attachments },
                })
            }
        }
    }

    fn finish(
        &self,
        conversation_id: ConversationId,
        user_message_id: MessageId,
        reply_id: MessageId,
        req: &TurnRequest,
        r: Generated,
    ) -> Result<TurnOutcome, ChatError> {
        let state = if r.stop == StopReason::Cancelled { MessageState::Interrupted } else { MessageState::Complete };
        let fin = MessageFinish {
            content: r.text.clone(),
            state,
            token_count: Some(r.generated_tokens as i64),
            stats: GenerationStats {
                model: Some(r.model_label.clone().unwrap_or_else(|| req.model_label.clone())),
                gen_tokens_per_s: Some(r.gen_tokens_per_s),
                prompt_tokens_per_s: r.prompt_tokens_per_s,
                stop_reason: Some(r.stop.as_str().to_string()),
            },
            error: None,
        };
        self.rt.block_on(self.store.finish_message(reply_id, &fin))?;
        Ok(TurnOutcome {
            conversation_id,
            user_message_id,
            new_user_message: true,
            assistant_message_id: reply_id,
            reply: r.text,
            state,
            stop_reason: r.stop,
            gen_tokens_per_s: r.gen_tokens_per_s,
            prompt_tokens_per_s: r.prompt_tokens_per_s.unwrap_or(0.0),
            prompt_tokens: r.prompt_tokens,
            reused_tokens: r.reused_tokens,
            generated_tokens: r.generated_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(title_from("\n  Plan a trip to Busan  \nmore"), "Plan a trip to Busan");
        let long = "word ".repeat(30);
        let t = title_from(&long);
        assert!(t.ends_with('…') && t.chars().count() <= TITLE_CHARS + 1, "{t}");
        assert!(!t.contains("  "));
        assert_eq!(title_from("가".repeat(70).as_str()).chars().count(), TITLE_CHARS + 1);
    }
}
