//! Messages and generation. A reply is generated on its own thread (never on the async
//! runtime's workers) through `ChatService::turn`, which stores the turn; tokens go to the UI on
//! a `Channel`. One reply at a time: a second request while one streams is refused with `busy`.
//! Send, regenerate and edit share `start_turn`; they differ only in the `TurnInput`, i.e. where
//! the reply goes in the conversation's message tree.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::session::Session;
use hearth::app_api::{keep_stopped_reply, AppSettings, MAX_REPLY_TOKENS};
use hearth::chat::{history_to_chat, TurnInput, TurnRequest};
use hearth::store::{read_attachment_file, ConversationId, NewAttachment, Role};
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tokio::sync::oneshot;

use crate::dto::{stop_reason, GenerationStarted, GenerationStats, Message, MessageList, StreamEvent};
use crate::error::{parse_id, AppError, AppResult};
use crate::state::{lock, AppState, Running};

#[tauri::command]
pub async fn list_messages(state: State<'_, AppState>, conversation_id: String) -> AppResult<MessageList> {
    message_list(&state, parse_id(&conversation_id)?).await
}

/// The conversation's active branch, each message with its place among its siblings.
async fn message_list(state: &AppState, id: ConversationId) -> AppResult<MessageList> {
    let conv = state.store.conversation(id).await?;
    let messages = state.store.messages(id).await?;
    let tree = state.store.message_tree(id).await?;
    let context_tokens = context_tokens(state, conv.system_prompt.as_deref(), &messages);
    Ok(MessageList {
        messages: messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| Message::new(m, &tree.siblings(m)))
            .collect(),
        context_tokens,
    })
}

/// What the history occupies in the loaded model's context, by its own template and tokenizer;
/// 0 with no model, or while a reply holds the session (the UI asks again after it ends).
fn context_tokens(state: &AppState, system_prompt: Option<&str>, messages: &[hearth::store::Message]) -> usize {
    let Ok((_, session)) = state.session() else { return 0 };
    let Ok(s) = session.try_lock() else { return 0 };
    let chat = history_to_chat(system_prompt, messages);
    if chat.is_empty() {
        return 0;
    }
    s.chat_prompt(&chat).map(|p| p.len()).unwrap_or(0)
}

#[tauri::command]
pub async fn send_message(
    app: AppHandle,
    state: State<'_, AppState>,
    conversation_id: String,
    text: String,
    attachments: Vec<String>,
    on_event: Channel<StreamEvent>,
) -> AppResult<GenerationStarted> {
    let conv_id = parse_id(&conversation_id)?;
    if text.trim().is_empty() {
        return Err(AppError::new("invalid_message", "The message is empty."));
    }
    state.store.conversation(conv_id).await?;
    // Refuse early, before reading possibly large files.
    state.session()?;
    let attachments = tokio::task::spawn_blocking(move || read_attachments(&attachments))
        .await
        .map_err(AppError::internal)??;
    start_turn(app, &state, conv_id, TurnInput::Send { text, attachments }, on_event).await
}

/// The dropped files, read and checked before anything is stored: one missing, unreadable or
/// oversized file refuses the whole message (`attachment_missing`, `attachment_unreadable`,
/// `attachment_too_large`).
fn read_attachments(paths: &[String]) -> AppResult<Vec<NewAttachment>> {
    paths.iter().map(|p| Ok(read_attachment_file(Path::new(p))?)).collect()
}

/// Another reply beside the assistant message `message_id`, made the active branch.
#[tauri::command]
pub async fn regenerate(
    app: AppHandle,
    state: State<'_, AppState>,
    message_id: String,
    on_event: Channel<StreamEvent>,
) -> AppResult<GenerationStarted> {
    let id = parse_id(&message_id)?;
    let m = state.store.message(id).await?;
    if m.role != Role::Assistant {
        return Err(AppError::new("invalid_message", "Only the assistant's replies can be regenerated."));
    }
    start_turn(app, &state, m.conversation_id, TurnInput::Regenerate { reply: id }, on_event).await
}

/// A new version of the user message `message_id` with `text` (and its attachments), and a
/// reply to it, made the active branch.
#[tauri::command]
pub async fn edit_message(
    app: AppHandle,
    state: State<'_, AppState>,
    message_id: String,
    text: String,
    on_event: Channel<StreamEvent>,
) -> AppResult<GenerationStarted> {
    let id = parse_id(&message_id)?;
    if text.trim().is_empty() {
        return Err(AppError::new("invalid_message", "The message is empty."));
    }
    let m = state.store.message(id).await?;
    if m.role != Role::User {
        return Err(AppError::new("invalid_message", "Only your own messages can be edited."));
    }
    start_turn(app, &state, m.conversation_id, TurnInput::Edit { message: id, text }, on_event).await
}

/// Starts a turn on its own thread (send, regenerate and edit alike): refuses with `no_model`
/// or `busy`, and answers once the turn is stored and streaming, or with the turn's error if it
/// fails before its first token (`not_found`, `context_full`, `invalid_message`, …).
async fn start_turn(
    app: AppHandle,
    state: &AppState,
    conv_id: ConversationId,
    input: TurnInput,
    on_event: Channel<StreamEvent>,
) -> AppResult<GenerationStarted> {
    let (model_id, session) = state.session()?;
    let settings = AppSettings::load(&state.store).await?;
    let new_user = !matches!(input, TurnInput::Regenerate { .. });
    let req = TurnRequest {
        conversation_id: conv_id,
        input,
        max_tokens: MAX_REPLY_TOKENS,
        sampling: settings.sampling(),
        model_label: model_id,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    {
        let mut g = lock(&state.generation);
        if g.is_some() {
            return Err(AppError::busy());
        }
        *g = Some(Running {
            conversation_id: conv_id,
            cancel: cancel.clone(),
            stopped_by_user: stopped.clone(),
            thread: None,
        });
    }
    let (tx, rx) = oneshot::channel();
    let job = Job { session, req, new_user, cancel: cancel.clone(), stopped, channel: on_event, started: Some(tx) };
    let spawned = std::thread::Builder::new()
        .name("hearth-generate".into())
        .spawn(move || job.run(&app.state::<AppState>()));
    match spawned {
        Ok(handle) => {
            if let Some(r) = lock(&state.generation).as_mut().filter(|r| Arc::ptr_eq(&r.cancel, &cancel)) {
                r.thread = Some(handle);
            }
        }
        Err(e) => {
            state.finish_running(&cancel);
            return Err(AppError::internal(format!("cannot start generating: {e}")));
        }
    }
    rx.await
        .unwrap_or_else(|_| Err(AppError::internal("the reply ended before it started")))
}

/// One reply on its thread.
struct Job {
    session: Arc<Mutex<Session>>,
    req: TurnRequest,
    /// Whether the turn stores a new user message (send, edit) or answers an existing one.
    new_user: bool,
    cancel: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    channel: Channel<StreamEvent>,
    /// Answers the `send_message` call once the turn is stored and streaming (or has failed).
    started: Option<oneshot::Sender<AppResult<GenerationStarted>>>,
}

impl Job {
    fn run(mut self, state: &AppState) {
        let conv_id = self.req.conversation_id;
        let result = {
            let mut session = lock(&self.session);
            let (started, channel, new_user) = (&mut self.started, &self.channel, self.new_user);
            let mut on_text = |piece: &str| {
                // The first piece means the user message and the reply are stored: report their ids.
                if let Some(tx) = started.take() {
                    let _ = tx.send(stored_ids(state, conv_id, new_user));
                }
                if let Err(e) = channel.send(StreamEvent::Token { text: piece.to_string() }) {
                    log::warn!("cannot send a token to the window: {e}");
                }
            };
            state.chat.turn(&mut session, &self.req, self.cancel.clone(), &mut on_text)
        };
        match result {
            Ok(out) => {
                if out.stop_reason == "cancelled" && self.stopped.load(Ordering::SeqCst) {
                    if let Err(e) = state.rt.block_on(keep_stopped_reply(&state.store, out.assistant_message_id)) {
                        log::warn!("cannot keep the stopped reply: {e}");
                    }
                }
                if let Some(tx) = self.started.take() {
                    let _ = tx.send(Ok(GenerationStarted {
                        user_message_id: out.new_user_message.then(|| out.user_message_id.to_string()),
                        assistant_message_id: out.assistant_message_id.to_string(),
                    }));
                }
                // Free the slot before `done`: the UI may send the next message right away.
                state.finish_running(&self.cancel);
                let stats = GenerationStats {
                    tokens: out.generated_tokens as u64,
                    tokens_per_s: out.gen_tokens_per_s,
                    stop_reason: stop_reason(&out.stop_reason),
                    prompt_tokens: Some(out.prompt_tokens as u64),
                };
                let _ = self.channel.send(StreamEvent::Done { stats });
            }
            Err(e) => {
                let e = AppError::from(e);
                state.finish_running(&self.cancel);
                match self.started.take() {
                    // Nothing streamed yet: the command itself rejects.
                    Some(tx) => {
                        let _ = tx.send(Err(e));
                    }
                    None => {
                        let _ = self.channel.send(StreamEvent::Error { message: e.message, code: e.code });
                    }
                }
            }
        }
    }
}

/// The ids of the turn just stored: its reply is the active leaf (the end of the active path),
/// and a new user message (send, edit) is the message before it.
fn stored_ids(state: &AppState, conv_id: ConversationId, new_user: bool) -> AppResult<GenerationStarted> {
    let path = state.rt.block_on(state.store.messages(conv_id))?;
    let mut newest = path.iter().rev();
    let reply = newest
        .next()
        .filter(|m| m.role == Role::Assistant)
        .ok_or_else(|| AppError::internal("the reply was not stored"))?;
    let user = newest.next().filter(|m| new_user && m.role == Role::User);
    Ok(GenerationStarted { user_message_id: user.map(|m| m.id.to_string()), assistant_message_id: reply.id.to_string() })
}

#[tauri::command]
pub async fn stop_generation(state: State<'_, AppState>, conversation_id: String) -> AppResult<()> {
    let id = parse_id(&conversation_id)?;
    if let Some(r) = lock(&state.generation).as_ref().filter(|r| r.conversation_id == id) {
        r.stopped_by_user.store(true, Ordering::SeqCst);
        r.cancel.store(true, Ordering::SeqCst);
    }
    // Stopping a reply that already ended is not an error: the click and the end can cross.
    Ok(())
}

/// Makes the branch through `message_id` the active one (following its newest descendants) and
/// returns the new active branch. Refused with `busy` while a reply streams in that conversation:
/// the reply is the active branch's end until it is stored.
#[tauri::command]
pub async fn select_branch(state: State<'_, AppState>, message_id: String) -> AppResult<MessageList> {
    let id = parse_id(&message_id)?;
    let m = state.store.message(id).await?;
    if lock(&state.generation).as_ref().is_some_and(|r| r.conversation_id == m.conversation_id) {
        return Err(AppError::busy());
    }
    state.store.select_branch(id).await?;
    message_list(&state, m.conversation_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth::store::AttachmentKind;

    #[test]
    fn attachments_are_read_whole_or_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("cat.jpg");
        let notes = dir.path().join("notes.md");
        std::fs::write(&photo, b"jpeg bytes").unwrap();
        std::fs::write(&notes, b"# notes").unwrap();
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let read = read_attachments(&[path(&photo), path(&notes)]).unwrap();
        let got: Vec<_> = read.iter().map(|a| (a.kind, a.file_name.as_str(), a.bytes.len())).collect();
        assert_eq!(got, [(AttachmentKind::Image, "cat.jpg", 10), (AttachmentKind::Document, "notes.md", 7)]);

        let gone = dir.path().join("gone.png");
        let e = read_attachments(&[path(&photo), path(&gone)]).unwrap_err();
        assert_eq!(e.code, "attachment_missing");
        assert!(e.message.contains("gone.png"), "{e}");
        assert_eq!(read_attachments(&[path(dir.path())]).unwrap_err().code, "attachment_unreadable");
        assert!(read_attachments(&[]).unwrap().is_empty());
    }
}
