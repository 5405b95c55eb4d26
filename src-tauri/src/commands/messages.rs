//! Messages and generation: thin mappings onto `hearth::runtime`, which owns the model, the
//! one-reply-at-a-time rule and stopping. Tokens reach the window on a `Channel`.

use std::path::PathBuf;

use hearth::app_api::AppSettings;
use hearth::runtime::{TurnEvent, TurnStarted};
use hearth::store::{ConversationId, Role};
use tauri::ipc::Channel;
use tauri::State;

use crate::dto::{GenerationStarted, Message, MessageList};
use crate::error::{parse_id, AppResult};
use crate::state::AppState;

#[tauri::command]
pub async fn list_messages(state: State<'_, AppState>, conversation_id: String) -> AppResult<MessageList> {
    message_list(&state, parse_id(&conversation_id)?).await
}

/// The conversation's active branch, each message with its place among its siblings.
async fn message_list(state: &AppState, id: ConversationId) -> AppResult<MessageList> {
    let store = state.store();
    let conv = store.conversation(id).await?;
    let messages = store.messages(id).await?;
    let tree = store.message_tree(id).await?;
    let pan_scan = AppSettings::load(store).await?.pan_scan_rule();
    Ok(MessageList {
        messages: messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| Message::new(m, &tree.siblings(m)))
            .collect(),
        context_tokens: state.runtime.context_tokens(conv.system_prompt.as_deref(), &messages, pan_scan.as_ref()),
    })
}

/// Forwards a turn's events to the window's channel.
fn forward(channel: Channel<TurnEvent>) -> impl FnMut(TurnEvent) + Send + 'static {
    move |ev| {
        if let Err(e) = channel.send(ev) {
            log::warn!("cannot send a reply event to the window: {e}");
        }
    }
}

#[tauri::command]
pub async fn send_message(
    state: State<'_, AppState>,
    conversation_id: String,
    text: String,
    attachments: Vec<String>,
    on_event: Channel<TurnEvent>,
) -> AppResult<GenerationStarted> {
    let conv = parse_id(&conversation_id)?;
    let paths = attachments.into_iter().map(PathBuf::from).collect();
    Ok(state.runtime.send(conv, text, paths, forward(on_event)).await?.into())
}

/// Another reply beside the assistant message `message_id`, made the active branch.
#[tauri::command]
pub async fn regenerate(
    state: State<'_, AppState>,
    message_id: String,
    on_event: Channel<TurnEvent>,
) -> AppResult<GenerationStarted> {
    Ok(state.runtime.regenerate(parse_id(&message_id)?, forward(on_event)).await?.into())
}

/// A new version of the user message `message_id` with `text`, and a reply to it.
#[tauri::command]
pub async fn edit_message(
    state: State<'_, AppState>,
    message_id: String,
    text: String,
    on_event: Channel<TurnEvent>,
) -> AppResult<GenerationStarted> {
    Ok(state.runtime.edit(parse_id(&message_id)?, text, forward(on_event)).await?.into())
}

#[tauri::command]
pub async fn stop_generation(state: State<'_, AppState>, conversation_id: String) -> AppResult<()> {
    state.runtime.stop(parse_id(&conversation_id)?);
    Ok(())
}

/// Makes the branch through `message_id` the active one and returns the new active branch.
#[tauri::command]
pub async fn select_branch(state: State<'_, AppState>, message_id: String) -> AppResult<MessageList> {
    let conv = state.runtime.select_branch(parse_id(&message_id)?).await?;
    message_list(&state, conv).await
}

impl From<TurnStarted> for GenerationStarted {
    fn from(t: TurnStarted) -> Self {
        Self {
            user_message_id: t.user_message_id.map(|id| id.to_string()),
            assistant_message_id: t.assistant_message_id.to_string(),
        }
    }
}
