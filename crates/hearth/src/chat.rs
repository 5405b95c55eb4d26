//! A conversation turn: the stored history goes through the engine session, and the user's
//! message and the streamed reply go into the store.
//!
//! The engine is synchronous and the store is async, so a turn runs on the caller's thread and
//! reaches the store through a Tokio runtime handle. It must not be called from inside that
//! runtime (the desktop app calls it from `spawn_blocking`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::chat_template::{ChatMessage, Role as EngineRole};
use engine::sampler::SamplingParams;
use engine::session::{GenerateOptions, GenerationResult, Session, StopReason};
use serde::Serialize;
use tokio::runtime::Handle;

use crate::store::{
    ConversationId, GenerationStats, Message, MessageFinish, MessageId, MessageState, NewMessage,
    Role, Store, StoreError,
};

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
}

/// What to send in one turn.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub conversation_id: ConversationId,
    pub user_text: String,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Recorded with the reply (model id or file name).
    pub model_label: String,
}

/// What a turn produced; the reply is already stored.
#[derive(Debug, Clone, Serialize)]
pub struct TurnOutcome {
    pub conversation_id: ConversationId,
    pub user_message_id: MessageId,
    pub assistant_message_id: MessageId,
    pub reply: String,
    pub state: MessageState,
    pub stop_reason: String,
    pub gen_tokens_per_s: f64,
    pub prompt_tokens_per_s: f64,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub generated_tokens: usize,
}

/// The stored history as the engine's chat messages: the conversation's system prompt first,
/// then every message with text. Partial replies (interrupted) are kept: the user saw them.
pub fn history_to_chat(system_prompt: Option<&str>, messages: &[Message]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(sp) = system_prompt.filter(|s| !s.trim().is_empty()) {
        out.push(ChatMessage::new(EngineRole::System, sp));
    }
    for m in messages {
        if m.content.is_empty() || m.state == MessageState::Error {
            continue;
        }
        let role = match m.role {
            Role::System => EngineRole::System,
            Role::User => EngineRole::User,
            Role::Assistant => EngineRole::Assistant,
        };
        out.push(ChatMessage::new(role, m.content.clone()));
    }
    out
}

/// A title from the first thing the user said: its first line, cut at a word boundary.
pub fn title_from(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
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

/// The prompt for `chat`, dropping the oldest turns (never the system prompt or the new
/// message) until it leaves room for a reply: a quarter of the context, or `max_tokens` if
/// smaller. The store keeps everything; only what the model sees is cut.
fn fit_to_context(
    session: &Session,
    chat: &mut Vec<ChatMessage>,
    max_tokens: usize,
) -> Result<Vec<u32>, ChatError> {
    let context = session.context();
    let room = max_tokens.min(context / 4).max(1);
    loop {
        let prompt = session.chat_prompt(chat)?;
        let first_droppable =
            usize::from(chat.first().is_some_and(|m| m.role == EngineRole::System));
        if prompt.len() + room <= context || chat.len() <= first_droppable + 1 {
            // Still too long with only the new message: generate reports the overflow clearly.
            return Ok(prompt);
        }
        chat.remove(first_droppable);
        // Gemma's template wants the first turn to be the user's.
        if chat
            .get(first_droppable)
            .is_some_and(|m| m.role == EngineRole::Assistant)
            && chat.len() > first_droppable + 1
        {
            chat.remove(first_droppable);
        }
    }
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
        Self {
            store,
            rt,
            flush_interval: FLUSH_INTERVAL,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One turn: stores the user's message and a `streaming` reply, generates with the session
    /// (which keeps its KV cache between turns, so only new tokens are computed), writes the
    /// partial reply every `FLUSH_INTERVAL` and the final one with its stats. Setting `cancel`
    /// ends the reply early; it is then stored as `interrupted`. `on_text` sees each new piece.
    pub fn turn(
        &self,
        session: &mut Session,
        req: &TurnRequest,
        cancel: Arc<AtomicBool>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnOutcome, ChatError> {
        let text = req.user_text.trim_end();
        if text.trim().is_empty() {
            return Err(ChatError::EmptyMessage);
        }
        let store = &self.store;
        let conv = self.rt.block_on(store.conversation(req.conversation_id))?;
        let history = self.rt.block_on(store.messages(req.conversation_id))?;
        let mut chat = history_to_chat(conv.system_prompt.as_deref(), &history);
        chat.push(ChatMessage::new(EngineRole::User, text));
        // Build the prompt before storing anything: a template error should not leave a
        // half-stored turn.
        let prompt = fit_to_context(session, &mut chat, req.max_tokens)?;

        let user = self
            .rt
            .block_on(store.append_message(conv.id, &NewMessage::complete(Role::User, text)))?;
        if conv.title.is_empty() {
            self.rt
                .block_on(store.rename_conversation(conv.id, &title_from(text)))?;
        }
        let reply = self
            .rt
            .block_on(store.append_message(conv.id, &NewMessage::streaming(Role::Assistant)))?;

        let opts = GenerateOptions {
            max_tokens: req.max_tokens,
            sampling: req.sampling.clone(),
            stop_strings: Vec::new(),
            cancel: Some(cancel),
        };
        let mut partial = String::new();
        // The first piece is written at once, so a reply is visible in the database from its
        // first token; after that at most every flush interval.
        let mut last_flush: Option<Instant> = None;
        let result = session.generate(&prompt, &opts, &mut |piece: &str| {
            partial.push_str(piece);
            on_text(piece);
            if last_flush.is_none_or(|t| t.elapsed() >= self.flush_interval) {
                if let Err(e) = self
                    .rt
                    .block_on(store.update_message_text(reply.id, &partial))
                {
                    // Keep generating: the final write below reports a lasting problem.
                    log::warn!("could not save the partial reply: {e}");
                }
                last_flush = Some(Instant::now());
            }
        });

        match result {
            Ok(r) => self.finish(conv.id, user.id, reply.id, req, r),
            Err(e) => {
                let fin = MessageFinish {
                    content: partial,
                    state: MessageState::Error,
                    token_count: None,
                    stats: GenerationStats {
                        model: Some(req.model_label.clone()),
                        ..Default::default()
                    },
                    error: Some(e.to_string()),
                };
                if let Err(store_err) = self.rt.block_on(store.finish_message(reply.id, &fin)) {
                    log::warn!("could not record the failed reply: {store_err}");
                }
                Err(e.into())
            }
        }
    }

    fn finish(
        &self,
        conversation_id: ConversationId,
        user_message_id: MessageId,
        reply_id: MessageId,
        req: &TurnRequest,
        r: GenerationResult,
    ) -> Result<TurnOutcome, ChatError> {
        let state = if r.stop == StopReason::Cancelled {
            MessageState::Interrupted
        } else {
            MessageState::Complete
        };
        let fin = MessageFinish {
            content: r.text.clone(),
            state,
            token_count: Some(r.ids.len() as i64),
            stats: GenerationStats {
                model: Some(req.model_label.clone()),
                gen_tokens_per_s: Some(r.gen_tokens_per_s),
                prompt_tokens_per_s: Some(r.prompt_tokens_per_s),
                stop_reason: Some(r.stop.as_str().to_string()),
            },
            error: None,
        };
        self.rt
            .block_on(self.store.finish_message(reply_id, &fin))?;
        Ok(TurnOutcome {
            conversation_id,
            user_message_id,
            assistant_message_id: reply_id,
            reply: r.text,
            state,
            stop_reason: r.stop.as_str().to_string(),
            gen_tokens_per_s: r.gen_tokens_per_s,
            prompt_tokens_per_s: r.prompt_tokens_per_s,
            prompt_tokens: r.prompt_tokens,
            reused_tokens: r.reused_tokens,
            generated_tokens: r.ids.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(
            title_from("\n  Plan a trip to Busan  \nmore"),
            "Plan a trip to Busan"
        );
        let long = "word ".repeat(30);
        let t = title_from(&long);
        assert!(
            t.ends_with('…') && t.chars().count() <= TITLE_CHARS + 1,
            "{t}"
        );
        assert!(!t.contains("  "));
        assert_eq!(
            title_from("가".repeat(70).as_str()).chars().count(),
            TITLE_CHARS + 1
        );
    }
}
