//! Models: the catalog with fit verdicts, installed models, import by path, load (one at a
//! time, off the async workers, with progress on a channel).

use std::path::PathBuf;

use hearth::app_api::AppSettings;
use hearth::models::downloads::UpdateSink;
use hearth::models::fit::{self, KvDType, Memory};
use hearth::models::{self, registry, Catalog, DownloadState, DownloadUpdate, ImportOptions};
use hearth::runtime::ModelStatus;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dto::{CatalogEntry, DownloadEvent, DownloadPhase, DownloadStatus, Fit, InstalledModel, LoadEvent};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

fn installed_dto(m: &registry::InstalledModel, context_length: u64) -> InstalledModel {
    InstalledModel {
        id: m.id.clone(),
        name: m.display_name.clone(),
        path: m.path.display().to_string(),
        size_bytes: m.size_bytes,
        quant: m.quant.clone().unwrap_or_default(),
        context_length,
    }
}

/// The model's maximum context from its GGUF header (0 when the file cannot be read: the
/// models page then shows it as missing rather than failing the whole list).
fn context_length(path: &std::path::Path) -> u64 {
    models::read_summary(path).ok().and_then(|s| s.context_length()).unwrap_or(0)
}

#[tauri::command]
pub async fn list_installed_models(state: State<'_, AppState>) -> AppResult<Vec<InstalledModel>> {
    let mut out = Vec::new();
    for m in registry::list(state.store()).await? {
        // Kept in the registry: this list is on the start-up path.
        let ctx = models::context_length(state.store(), &m).await?;
        out.push(installed_dto(&m, ctx));
    }
    Ok(out)
}

#[tauri::command]
pub async fn model_catalog(state: State<'_, AppState>) -> AppResult<Vec<CatalogEntry>> {
    let catalog = Catalog::load(state.runtime.data_dir())?;
    let settings = AppSettings::load(state.store()).await?;
    let installed = registry::ids(state.store()).await?;
    let memory = tokio::task::spawn_blocking(Memory::detect).await.map_err(AppError::internal)?;
    let mut out = Vec::new();
    for entry in &catalog.models {
        let variant = entry.recommended_variant();
        // A context beyond this model's maximum is estimated at its maximum.
        let n_ctx = (settings.context_size.max(1) as u64).min(entry.context_length);
        let est = fit::estimate(entry, variant, n_ctx, KvDType::F16)?;
        let fit = match fit::verdict(est.total_bytes, &memory) {
            fit::Verdict::Fits => Fit::Fits,
            fit::Verdict::Tight => Fit::Tight,
            fit::Verdict::TooBig | fit::Verdict::ContextTooLong => Fit::TooBig,
        };
        out.push(CatalogEntry {
            id: entry.id.clone(),
            name: format!("{} {}", entry.display_name, variant.name),
            family: entry.display_name.clone(),
            quant: variant.quant.clone(),
            size_bytes: variant.size_bytes,
            required_bytes: est.total_bytes,
            available_bytes: memory.budget(),
            fit,
            params: entry.params.clone(),
            context_length: entry.context_length,
            installed: installed.contains(&entry.installed_id(variant)),
            download: state.downloads.status(&entry.id).await.map(|d| DownloadStatus {
                state: match d.state {
                    DownloadState::Running => DownloadPhase::Running,
                    DownloadState::Paused => DownloadPhase::Paused,
                    DownloadState::Failed => DownloadPhase::Failed,
                },
                bytes: d.bytes,
                total: d.total,
            }),
        });
    }
    Ok(out)
}

/// Forwards a download's updates to the UI's channel (the manager throttles progress to four
/// updates a second). The channel is dropped after the terminal event.
fn forward(on_progress: Channel<DownloadEvent>) -> UpdateSink {
    Box::new(move |u| {
        let ev = match u {
            DownloadUpdate::Progress { bytes, total, bytes_per_sec, eta_secs } => {
                DownloadEvent::Progress { bytes, total, rate: bytes_per_sec, eta: eta_secs }
            }
            DownloadUpdate::Done { model } => {
                // The header read is a few kilobytes: fine on the download's task.
                let ctx = context_length(&model.path);
                DownloadEvent::Done { model: installed_dto(&model, ctx) }
            }
            DownloadUpdate::Cancelled { .. } => DownloadEvent::Cancelled,
            DownloadUpdate::Failed { error } => DownloadEvent::Error { error: AppError::from(error) },
        };
        let _ = on_progress.send(ev);
    })
}

/// Starts downloading a catalog model (`modelId` is the catalog entry's id) and returns; the
/// progress, then `done`, `cancelled` or `error`, arrive on `on_progress`.
#[tauri::command]
pub async fn download_model(
    state: State<'_, AppState>,
    model_id: String,
    on_progress: Channel<DownloadEvent>,
) -> AppResult<()> {
    Ok(state.downloads.start(&model_id, forward(on_progress))?)
}

/// Continues a paused or failed download from its partial file (HTTP range).
#[tauri::command]
pub async fn resume_download(
    state: State<'_, AppState>,
    model_id: String,
    on_progress: Channel<DownloadEvent>,
) -> AppResult<()> {
    Ok(state.downloads.resume(&model_id, forward(on_progress))?)
}

/// Cancels a running download; its channel then gets `cancelled` and the partial file stays.
#[tauri::command]
pub async fn cancel_download(state: State<'_, AppState>, model_id: String) -> AppResult<()> {
    if state.downloads.cancel(&model_id) {
        Ok(())
    } else {
        Err(AppError::not_found("download", &model_id))
    }
}

#[tauri::command]
pub async fn import_model(state: State<'_, AppState>, path: String) -> AppResult<InstalledModel> {
    let path = PathBuf::from(path.trim());
    if path.as_os_str().is_empty() {
        return Err(
            AppError::new(ErrorCode::NotFound, "no file was given").with(crate::error::ErrorDetails::field("file"))
        );
    }
    let m = models::import_gguf(state.store(), state.runtime.data_dir(), &path, &ImportOptions::default()).await?;
    let ctx = models::context_length(state.store(), &m).await?;
    Ok(installed_dto(&m, ctx))
}

#[tauri::command]
pub async fn pick_model_file(app: AppHandle) -> AppResult<Option<String>> {
    // The dialog blocks until the user answers: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        app.dialog()
            .file()
            .add_filter("GGUF model", &["gguf"])
            .blocking_pick_file()
            .and_then(|f| f.into_path().ok())
            .map(|p| p.display().to_string())
    })
    .await
    .map_err(AppError::internal)
}

#[tauri::command]
pub async fn remove_model(state: State<'_, AppState>, model_id: String) -> AppResult<()> {
    state.runtime.remove_model(&model_id).await
}

#[tauri::command]
pub async fn current_model(state: State<'_, AppState>) -> AppResult<ModelStatus> {
    Ok(state.runtime.status())
}

#[tauri::command]
pub async fn load_model(
    state: State<'_, AppState>,
    model_id: String,
    on_progress: Channel<LoadEvent>,
) -> AppResult<ModelStatus> {
    let progress = on_progress.clone();
    let result = state
        .runtime
        .load(&model_id, move |fraction| {
            let _ = progress.send(LoadEvent::Progress { fraction });
        })
        .await;
    let _ = on_progress.send(match &result {
        Ok(_) => LoadEvent::Done,
        Err(e) => LoadEvent::Error { error: e.clone() },
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth::models::DownloadError;
    use std::sync::{Arc, Mutex};
    use tauri::ipc::InvokeResponseBody;

    fn channel() -> (Channel<DownloadEvent>, Arc<Mutex<Vec<serde_json::Value>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let ch = Channel::new(move |body| {
            if let InvokeResponseBody::Json(s) = body {
                g.lock().unwrap().push(serde_json::from_str(&s).unwrap());
            }
            Ok(())
        });
        (ch, got)
    }

    #[test]
    fn download_updates_reach_the_channel_in_the_ipc_shapes() {
        let (ch, got) = channel();
        let mut sink = forward(ch);
        sink(DownloadUpdate::Progress { bytes: 10, total: 40, bytes_per_sec: 5.0, eta_secs: Some(6.0) });
        sink(DownloadUpdate::Cancelled { bytes: 10, total: 40 });
        sink(DownloadUpdate::Failed {
            error: DownloadError::Gated { repo: "google/x".into(), status: 401, has_token: false },
        });
        sink(DownloadUpdate::Failed { error: DownloadError::DiskFull { path: "/d".into(), needed: 2, available: 1 } });
        let got = got.lock().unwrap().clone();
        assert_eq!(got[0], serde_json::json!({"kind": "progress", "bytes": 10, "total": 40, "rate": 5.0, "eta": 6.0}));
        assert_eq!(got[1], serde_json::json!({"kind": "cancelled"}));
        assert_eq!((got[2]["kind"].as_str(), got[2]["code"].as_str()), (Some("error"), Some("gated")));
        assert_eq!(got[2]["details"]["model"], "google/x");
        assert_eq!(got[3]["code"], "disk_full");
    }
}
