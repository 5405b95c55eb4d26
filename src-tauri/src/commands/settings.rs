//! Settings: read and patch the app's settings (validated in `hearth::app_api`).

use hearth::app_api::AppSettings;
use tauri::State;

use crate::error::AppResult;
use crate::state::AppState;

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> AppResult<AppSettings> {
    Ok(AppSettings::load(state.store()).await?)
}

#[tauri::command]
pub async fn set_settings(state: State<'_, AppState>, patch: serde_json::Value) -> AppResult<AppSettings> {
    Ok(AppSettings::update(state.store(), &patch).await?)
}
