//! Models: the catalog with fit verdicts, installed models, import by path, load (one at a
//! time, off the async workers, with progress on a channel).

use std::path::PathBuf;

use engine::device::DevicePreference;
use engine::session::{Engine, LoadOptions, Session};
use hearth::app_api::{AppSettings, DeviceChoice};
use hearth::models::fit::{self, KvType, Memory};
use hearth::models::{self, gguf_check, registry, Catalog, ImportOptions};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dto::{CatalogEntry, InstalledModel, LoadEvent, ModelState};
use crate::error::{AppError, AppResult};
use crate::state::{lock, AppState, ModelSlot};

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
async fn context_length_of(path: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || {
        gguf_check::read_summary(&path).ok().and_then(|s| s.context_length()).unwrap_or(0)
    })
    .await
    .unwrap_or(0)
}

#[tauri::command]
pub async fn list_installed_models(state: State<'_, AppState>) -> AppResult<Vec<InstalledModel>> {
    let mut out = Vec::new();
    for m in registry::list(&state.store).await? {
        let ctx = context_length_of(m.path.clone()).await;
        out.push(installed_dto(&m, ctx));
    }
    Ok(out)
}

#[tauri::command]
pub async fn model_catalog(state: State<'_, AppState>) -> AppResult<Vec<CatalogEntry>> {
    let catalog = Catalog::load(&state.data_dir)?;
    let settings = AppSettings::load(&state.store).await?;
    let installed = registry::ids(&state.store).await?;
    let memory = tokio::task::spawn_blocking(Memory::detect).await.map_err(AppError::internal)?;
    let mut out = Vec::new();
    for entry in &catalog.models {
        let variant = entry.recommended_variant();
        // A context beyond this model's maximum is estimated at its maximum.
        let n_ctx = (settings.context_size.max(1) as u64).min(entry.context_length);
        let est = fit::estimate(entry, variant, n_ctx, KvType::F16)?;
        let fit = match fit::verdict(est.total_bytes, &memory) {
            fit::Verdict::Fits => "fits",
            fit::Verdict::Tight => "tight",
            fit::Verdict::TooBig | fit::Verdict::ContextTooLong => "too_big",
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
            description: format!(
                "{} parameters, up to {} tokens of context{}",
                entry.params,
                entry.context_length,
                if entry.vision { ", reads images" } else { "" }
            ),
            installed: installed.contains(&entry.installed_id(variant)),
            download: None,
        });
    }
    Ok(out)
}

fn downloads_unsupported() -> AppError {
    AppError::new(
        "unsupported",
        "Downloading from the app is not available yet; download with `hearth models pull` or import a GGUF file.",
    )
}

#[tauri::command]
pub async fn download_model(model_id: String, on_progress: Channel<serde_json::Value>) -> AppResult<()> {
    let _ = (model_id, on_progress);
    Err(downloads_unsupported())
}

#[tauri::command]
pub async fn resume_download(model_id: String, on_progress: Channel<serde_json::Value>) -> AppResult<()> {
    let _ = (model_id, on_progress);
    Err(downloads_unsupported())
}

#[tauri::command]
pub async fn cancel_download(model_id: String) -> AppResult<()> {
    let _ = model_id;
    Err(downloads_unsupported())
}

#[tauri::command]
pub async fn import_model(state: State<'_, AppState>, path: String) -> AppResult<InstalledModel> {
    let path = PathBuf::from(path.trim());
    if path.as_os_str().is_empty() {
        return Err(AppError::new("not_found", "No file was given."));
    }
    let m = models::import_gguf(&state.store, &state.data_dir, &path, &ImportOptions::default()).await?;
    let ctx = context_length_of(m.path.clone()).await;
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
    let loaded = matches!(&*lock(&state.model), ModelSlot::Ready { id, .. } | ModelSlot::Loading { id, .. } if *id == model_id);
    if loaded {
        return Err(AppError::new("model_in_use", "This model is loaded; load another one before removing it."));
    }
    // Files Hearth put on disk go too; a file imported by reference stays (it is the user's).
    models::remove(&state.store, &state.data_dir, &model_id, true).await?;
    Ok(())
}

#[tauri::command]
pub async fn current_model(state: State<'_, AppState>) -> AppResult<ModelState> {
    Ok(lock(&state.model).state())
}

#[tauri::command]
pub async fn load_model(
    state: State<'_, AppState>,
    model_id: String,
    on_progress: Channel<LoadEvent>,
) -> AppResult<ModelState> {
    let model = registry::get(&state.store, &model_id)
        .await?
        .ok_or_else(|| AppError::new("not_found", format!("no installed model {model_id:?}")))?;
    let settings = AppSettings::load(&state.store).await?;
    {
        // Loading replaces the session a reply may be using, and two loads would hold two models.
        let gen = lock(&state.generation);
        let mut slot = lock(&state.model);
        if gen.is_some() || matches!(*slot, ModelSlot::Loading { .. }) {
            return Err(AppError::busy());
        }
        // Drop the old model before reading the new one: one model in memory at a time.
        *slot = ModelSlot::Loading { id: model.id.clone(), name: model.display_name.clone() };
    }
    let _ = on_progress.send(LoadEvent::Progress { fraction: 0.0 });
    if let Some(t) = settings.threads {
        engine::device::set_threads(t as usize);
    }
    let opts = LoadOptions {
        device: match settings.device {
            DeviceChoice::Cpu => DevicePreference::Cpu,
            DeviceChoice::Auto | DeviceChoice::Gpu => DevicePreference::Auto,
        },
        tokenizer_cache_dir: Some(state.data_dir.join("cache").join("tokenizers")),
    };
    let path = model.path.clone();
    let ctx = settings.context_size as usize;
    // Reading weights takes seconds: a blocking thread keeps the window responsive.
    let loaded = tokio::task::spawn_blocking(move || -> AppResult<Session> {
        let engine = Engine::load(&path, &opts)?;
        Ok(Session::new(engine, ctx)?)
    })
    .await
    .unwrap_or_else(|e| Err(AppError::internal(format!("loading stopped: {e}"))));
    let mut slot = lock(&state.model);
    match loaded {
        Ok(session) => {
            *slot = ModelSlot::Ready {
                id: model.id,
                name: model.display_name,
                session: std::sync::Arc::new(std::sync::Mutex::new(session)),
            };
            let _ = on_progress.send(LoadEvent::Progress { fraction: 1.0 });
            let _ = on_progress.send(LoadEvent::Done);
            Ok(slot.state())
        }
        Err(e) => {
            *slot = ModelSlot::Failed { id: model.id, name: model.display_name, error: e.clone() };
            let _ = on_progress.send(LoadEvent::Error { message: e.message.clone(), code: e.code });
            Err(e)
        }
    }
}
