//! Messages and generation. A reply is generated on its own thread (never on the async
//! runtime's workers) through `ChatService::turn`, which stores the turn; tokens go to the UI on
//! a `Channel`. One reply at a time: a second request while one streams is refused with `busy`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::session::Session;
use hearth::app_api::{keep_stopped_reply, AppSettings, MAX_REPLY_TOKENS};
use hearth::chat::{history_to_chat, TurnRequest};
use hearth::store::{ConversationId, Role};
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tokio::sync::oneshot;

use crate::dto::{stop_reason, GenerationStarted, GenerationStats, Message, MessageList, StreamEvent};
use crate::error::{parse_id, AppError, AppResult};
use crate::state::{lock, AppState, Running};

#[tauri::command]
pub async fn list_messages(state: State<'_, AppState>, conversation_id: String) -> AppResult<MessageList> {
    let id = parse_id(&conversation_id)?;
    let conv = state.store.conversation(id).await?;
    let messages = state.store.messages(id).await?;
    let context_tokens = context_tokens(&state, conv.system_prompt.as_deref(), &messages);
    Ok(MessageList {
        messages: messages.iter().filter(|m| m.role != Role::System).map(Message::from).collect(),
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
    if !attachments.is_empty() {
        return Err(AppError::new(
            "unsupported",
            "Attachments are not supported yet; send the message without them.",
        ));
    }
    state.store.conversation(conv_id).await?;
    let (model_id, session) = state.session()?;
    let settings = AppSettings::load(&state.store).await?;
    let req = TurnRequest {
        conversation_id: conv_id,
        user_text: text,
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
    let job = Job { session, req, cancel: cancel.clone(), stopped, channel: on_event, started: Some(tx) };
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
            let (started, channel) = (&mut self.started, &self.channel);
            let mut on_text = |piece: &str| {
                // The first piece means the user message and the reply are stored: report their ids.
                if let Some(tx) = started.take() {
                    let _ = tx.send(stored_ids(state, conv_id));
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
                        user_message_id: Some(out.user_message_id.to_string()),
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

/// The ids of the turn just stored: the conversation's newest user message and reply.
fn stored_ids(state: &AppState, conv_id: ConversationId) -> AppResult<GenerationStarted> {
    let messages = state.rt.block_on(state.store.messages(conv_id))?;
    let newest = |role: Role| messages.iter().rev().find(|m| m.role == role).map(|m| m.id.to_string());
    let assistant = newest(Role::Assistant).ok_or_else(|| AppError::internal("the reply was not stored"))?;
    Ok(GenerationStarted { user_message_id: newest(Role::User), assistant_message_id: assistant })
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

fn branches_unsupported() -> AppError {
    AppError::new(
        "unsupported",
        "Editing and regenerating replies (message branches) are not available yet.",
    )
}

#[tauri::command]
pub async fn regenerate(message_id: String, on_event: Channel<StreamEvent>) -> AppResult<GenerationStarted> {
    let _ = (message_id, on_event);
    Err(branches_unsupported())
}

#[tauri::command]
pub async fn edit_message(message_id: String, text: String, on_event: Channel<StreamEvent>) -> AppResult<GenerationStarted> {
    let _ = (message_id, text, on_event);
    Err(branches_unsupported())
}

#[tauri::command]
pub async fn select_branch(message_id: String) -> AppResult<MessageList> {
    let _ = message_id;
    Err(branches_unsupported())
}
