//! Conversations: list, create, rename, pin, archive, delete, search.

use hearth::app_api::AppSettings;
use hearth::store::{ArchiveFilter, ListOptions, NewConversation, SearchOptions};
use tauri::State;

use crate::dto::{Conversation, ConversationPage, SearchHit};
use crate::error::{parse_id, AppError, AppResult, ErrorCode};
use crate::state::AppState;

/// Most rows one page may ask for; the UI asks for 50.
const MAX_PAGE: u32 = 200;

#[tauri::command]
pub async fn list_conversations(
    state: State<'_, AppState>,
    cursor: Option<String>,
    limit: u32,
    archived: bool,
) -> AppResult<ConversationPage> {
    // The cursor is the store's offset, opaque to the UI.
    let offset = match cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => {
            c.parse::<u32>().map_err(|_| AppError::new(ErrorCode::InvalidId, format!("not a page cursor: {c:?}")))?
        }
    };
    let opts = ListOptions {
        filter: if archived { ArchiveFilter::Archived } else { ArchiveFilter::Active },
        limit: limit.clamp(1, MAX_PAGE),
        offset,
    };
    let page = state.store().list_conversations(&opts).await?;
    Ok(ConversationPage {
        items: page.items.iter().map(Conversation::from).collect(),
        next_cursor: page.next_offset.map(|o| o.to_string()),
    })
}

#[tauri::command]
pub async fn create_conversation(state: State<'_, AppState>, title: Option<String>) -> AppResult<Conversation> {
    let settings = AppSettings::load(state.store()).await?;
    let new = NewConversation {
        title: title.unwrap_or_default().trim().to_string(),
        system_prompt: Some(settings.system_prompt).filter(|s| !s.trim().is_empty()),
        ..Default::default()
    };
    Ok((&state.store().create_conversation(&new).await?).into())
}

#[tauri::command]
pub async fn rename_conversation(state: State<'_, AppState>, id: String, title: String) -> AppResult<Conversation> {
    let id = parse_id(&id)?;
    let title = title.trim();
    if title.is_empty() {
        return Err(AppError::new(ErrorCode::InvalidTitle, "a title cannot be empty"));
    }
    state.store().rename_conversation(id, title).await?;
    Ok((&state.store().conversation(id).await?).into())
}

#[tauri::command]
pub async fn pin_conversation(state: State<'_, AppState>, id: String, pinned: bool) -> AppResult<Conversation> {
    let id = parse_id(&id)?;
    state.store().set_pinned(id, pinned).await?;
    Ok((&state.store().conversation(id).await?).into())
}

#[tauri::command]
pub async fn archive_conversation(state: State<'_, AppState>, id: String, archived: bool) -> AppResult<Conversation> {
    let id = parse_id(&id)?;
    state.store().set_archived(id, archived).await?;
    Ok((&state.store().conversation(id).await?).into())
}

#[tauri::command]
pub async fn delete_conversation(state: State<'_, AppState>, id: String) -> AppResult<()> {
    state.runtime.delete_conversation(parse_id(&id)?).await
}

#[tauri::command]
pub async fn search_conversations(state: State<'_, AppState>, query: String, limit: u32) -> AppResult<Vec<SearchHit>> {
    // The UI searches as the user types: an empty box is no results, not an error.
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let opts = SearchOptions {
        limit: limit.clamp(1, MAX_PAGE),
        highlight_open: "\u{2}".into(),
        highlight_close: "\u{3}".into(),
        ..Default::default()
    };
    Ok(state.store().search(&query, &opts).await?.into_iter().map(SearchHit::from).collect())
}
