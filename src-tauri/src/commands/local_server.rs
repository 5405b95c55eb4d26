//! The settings page's "Local API server": thin over `hearth::server::embedded`, which owns the
//! server, its stored switch and its key.

use hearth::server::embedded::{LocalServerSettings, LocalServerStatus};
use tauri::State;

use crate::error::AppResult;
use crate::state::AppState;

#[tauri::command]
pub async fn local_server_status(state: State<'_, AppState>) -> AppResult<LocalServerStatus> {
    Ok(state.server.status().await?)
}

/// Applies the section's settings: on starts (or restarts) the server, off stops it. When it
/// cannot start (e.g. `port_in_use`) nothing is stored and the call rejects.
#[tauri::command]
pub async fn set_local_server(
    state: State<'_, AppState>,
    settings: LocalServerSettings,
) -> AppResult<LocalServerStatus> {
    Ok(state.server.apply(settings).await?)
}
