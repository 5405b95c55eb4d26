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
    state.runtime.update_settings(&patch).await
}

/// The numeric settings' ranges, the same table `set_settings` validates with: the settings page
/// takes its limits from here.
#[tauri::command]
pub fn settings_ranges() -> Vec<hearth::app_api::SettingRange> {
    AppSettings::ranges().to_vec()
}

/// The devices this build can run a model on here; the settings page offers only these.
#[tauri::command]
pub fn available_devices() -> Vec<hearth::runtime::Device> {
    hearth::runtime::available_devices()
}

/// Whether a Hugging Face token is available for gated models (from the environment, Hearth's
/// token file or the Hugging Face CLI's). The token itself never goes back to the window.
#[tauri::command]
pub async fn hf_token_status(state: State<'_, AppState>) -> AppResult<bool> {
    Ok(hearth::models::token::resolve(state.runtime.data_dir()).is_some())
}

/// Stores the Hugging Face read token (owner-readable file in the data folder, never the
/// database or the log); an empty one forgets the stored token.
#[tauri::command]
pub async fn set_hf_token(state: State<'_, AppState>, token: String) -> AppResult<bool> {
    let dir = state.runtime.data_dir();
    match hearth::models::token::HfToken::new(&token) {
        Some(t) => {
            hearth::models::token::save(dir, &t)?;
        }
        None => {
            hearth::models::token::clear(dir)?;
        }
    }
    Ok(hearth::models::token::resolve(dir).is_some())
}
