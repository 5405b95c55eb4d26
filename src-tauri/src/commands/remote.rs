//! Remote models (another machine's OpenAI-compatible server), thin over `hearth::remote`. The
//! API key is sent here once and stored owner-only; it never goes back to the window.

use hearth::remote::{self, registry, RemoteCheck, RemoteKey};
use tauri::State;

use crate::dto::RemoteModelInfo;
use crate::error::AppResult;
use crate::state::AppState;

#[tauri::command]
pub async fn list_remote_models(state: State<'_, AppState>) -> AppResult<Vec<RemoteModelInfo>> {
    let list = registry::list(state.store(), state.runtime.data_dir()).await?;
    Ok(list.iter().map(RemoteModelInfo::from).collect())
}

/// Adds a remote model; nothing is contacted (the window checks it next).
#[tauri::command]
pub async fn add_remote_model(
    state: State<'_, AppState>,
    name: String,
    url: String,
    model: Option<String>,
    api_key: Option<String>,
) -> AppResult<RemoteModelInfo> {
    let key = api_key.as_deref().and_then(RemoteKey::new);
    let m = registry::add(state.store(), state.runtime.data_dir(), name.trim(), &url, model.as_deref(), key.as_ref())
        .await?;
    Ok(RemoteModelInfo::from(&m))
}

#[tauri::command]
pub async fn remove_remote_model(state: State<'_, AppState>, name: String) -> AppResult<()> {
    remote::remove_unless_loaded(&state.runtime, &name).await.map(|_| ())
}

/// Whether its server answers, and what it offers; a server that does not answer is a result.
#[tauri::command]
pub async fn check_remote_model(state: State<'_, AppState>, name: String) -> AppResult<RemoteCheck> {
    Ok(remote::check(state.store(), state.runtime.data_dir(), &name).await?)
}
