//! Attachments in the composer and the history: picking files, pasted images, thumbnails,
//! document cards with their summary plan, the extracted text, and summaries with progress on a
//! `Channel` and cancel. Each command maps onto `hearth::images` or `hearth::documents::app`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hearth::documents::app::{self, DocumentCard, SummaryEvent, SummaryResult};
use hearth::documents::Extracted;
use hearth::images;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::error::{parse_id, AppError, AppResult};
use crate::state::AppState;

/// The system file dialog for attachments (several at once); empty when cancelled.
#[tauri::command]
pub async fn pick_attachment_files(app: AppHandle) -> AppResult<Vec<String>> {
    // The dialog blocks until the user answers: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        app.dialog()
            .file()
            .blocking_pick_files()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.into_path().ok())
            .map(|p| p.display().to_string())
            .collect()
    })
    .await
    .map_err(AppError::internal)
}

/// Stores a pasted image (base64) in the data folder and answers its path, to attach.
#[tauri::command]
pub async fn save_pasted_image(state: State<'_, AppState>, data_base64: String) -> AppResult<String> {
    let dir = state.runtime.data_dir().to_owned();
    let now = hearth::models::registry::now_ms();
    let path = tokio::task::spawn_blocking(move || images::save_pasted_base64(&dir, &data_base64, now))
        .await
        .map_err(AppError::internal)??;
    Ok(path.display().to_string())
}

/// A composer image's thumbnail as a `data:` URL.
#[tauri::command]
pub async fn image_thumbnail(state: State<'_, AppState>, path: String) -> AppResult<String> {
    let dir = state.runtime.data_dir().to_owned();
    tokio::task::spawn_blocking(move || images::file_thumbnail_data_url(&dir, &PathBuf::from(path)))
        .await
        .map_err(AppError::internal)?
}

/// A stored image attachment's thumbnail as a `data:` URL.
#[tauri::command]
pub async fn attachment_thumbnail(state: State<'_, AppState>, attachment_id: String) -> AppResult<String> {
    images::attachment_thumbnail_data_url(state.store(), parse_id(&attachment_id)?).await
}

#[tauri::command]
pub async fn describe_document(state: State<'_, AppState>, path: String) -> AppResult<DocumentCard> {
    Ok(app::describe(&state.runtime, PathBuf::from(path)).await)
}

#[tauri::command]
pub async fn document_text(state: State<'_, AppState>, path: String) -> AppResult<Extracted> {
    app::document_text(&state.runtime, PathBuf::from(path)).await
}

/// A stored document attachment's text (from the history).
#[tauri::command]
pub async fn attachment_text(state: State<'_, AppState>, attachment_id: String) -> AppResult<Extracted> {
    app::attachment_text(&state.runtime, parse_id(&attachment_id)?).await
}

/// Summarizes documents on the loaded model; progress on `on_event`; answers when done or
/// cancelled (`cancel_summary`).
#[tauri::command]
pub async fn summarize_documents(
    state: State<'_, AppState>,
    paths: Vec<String>,
    on_event: Channel<SummaryEvent>,
) -> AppResult<SummaryResult> {
    let cancel = Arc::new(AtomicBool::new(false));
    *state.summary_cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(cancel.clone());
    let paths = paths.into_iter().map(PathBuf::from).collect();
    let result = app::summarize(&state.runtime, paths, cancel, move |ev| {
        if let Err(e) = on_event.send(ev) {
            log::warn!("cannot send summary progress to the window: {e}");
        }
    })
    .await;
    state.summary_cancel.lock().unwrap_or_else(|p| p.into_inner()).take();
    result
}

/// Stops the running summary within a token (its finished steps stay stored).
#[tauri::command]
pub async fn cancel_summary(state: State<'_, AppState>) -> AppResult<()> {
    if let Some(c) = state.summary_cancel.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        c.store(true, Ordering::SeqCst);
    }
    Ok(())
}
