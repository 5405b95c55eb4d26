//! Models: the catalog with fit verdicts, installed models, import by path, load (one at a
//! time, off the async workers, with progress on a channel).

use std::path::PathBuf;

use engine::device::DevicePreference;
use engine::session::{Engine, LoadOptions, Session};
use hearth::app_api::{AppSettings, DeviceChoice};
use hearth::models::fit::{self, KvType, Memory};
use hearth::models::downloads::UpdateSink;
use hearth::models::last_used::{self, LastUsed};
use hearth::models::{self, gguf_check, registry, Catalog, DownloadState, DownloadUpdate, ImportOptions};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::dto::{CatalogEntry, DownloadEvent, DownloadStatus, InstalledModel, LoadEvent, ModelState};
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
            download: state.downloads.status(&entry.id).await.map(|d| DownloadStatus {
                state: match d.state {
                    DownloadState::Running => "running",
                    DownloadState::Paused => "paused",
                    DownloadState::Failed => "failed",
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
                let ctx = gguf_check::read_summary(&model.path).ok().and_then(|s| s.context_length()).unwrap_or(0);
                DownloadEvent::Done { model: installed_dto(&model, ctx) }
            }
            DownloadUpdate::Cancelled { .. } => DownloadEvent::Cancelled,
            DownloadUpdate::Failed { error } => {
                let e = AppError::from(error);
                DownloadEvent::Error { message: e.message, code: e.code }
            }
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
        Err(AppError::new("not_found", format!("No download of {model_id} is running.")))
    }
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
    begin_load(&state, &model)?;
    finish_load(&state, model, move |ev| {
        let _ = on_progress.send(ev);
    })
    .await
}

/// Marks `model` as loading (what `current_model` reports from now on). Refused while a reply
/// is generated or another model loads: loading replaces the session a reply may be using, and
/// two loads would hold two models.
pub fn begin_load(state: &AppState, model: &registry::InstalledModel) -> AppResult<()> {
    let gen = lock(&state.generation);
    let mut slot = lock(&state.model);
    if gen.is_some() || matches!(*slot, ModelSlot::Loading { .. }) {
        return Err(AppError::busy());
    }
    // Drop the old model before reading the new one: one model in memory at a time.
    *slot = ModelSlot::Loading { id: model.id.clone(), name: model.display_name.clone(), fraction: 0.0 };
    Ok(())
}

/// Reads the model that [`begin_load`] marked, off the async workers, puts it in the slot
/// (`ready`, or `error` with the reason) and remembers it for the next start. The one loading
/// path, for `load_model` and for the start-up reload of the last-used model.
pub async fn finish_load(
    state: &AppState,
    model: registry::InstalledModel,
    on_progress: impl Fn(LoadEvent) + Send + Sync + 'static,
) -> AppResult<ModelState> {
    let on_progress = std::sync::Arc::new(on_progress);
    let loaded = match AppSettings::load(&state.store).await {
        Ok(settings) => {
            on_progress(LoadEvent::Progress { fraction: 0.0 });
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
            let report = on_progress.clone();
            let slot = state.model.clone();
            // Reading weights takes seconds: a blocking thread keeps the window responsive.
            tokio::task::spawn_blocking(move || -> AppResult<Session> {
                // The engine reports per tensor (hundreds of times); the bar needs a step per percent.
                let mut last = 0.0f32;
                let engine = Engine::load_with_progress(&path, &opts, &mut |f| {
                    if f - last >= 0.01 && f < 1.0 {
                        last = f;
                        // Also for `current_model`: the start-up reload has no channel.
                        if let ModelSlot::Loading { fraction, .. } = &mut *lock(&slot) {
                            *fraction = f64::from(f);
                        }
                        report(LoadEvent::Progress { fraction: f64::from(f) });
                    }
                })?;
                Ok(Session::new(engine, ctx)?)
            })
            .await
            .unwrap_or_else(|e| Err(AppError::internal(format!("loading stopped: {e}"))))
        }
        Err(e) => Err(e.into()),
    };
    let result = {
        let mut slot = lock(&state.model);
        match loaded {
            Ok(session) => {
                *slot = ModelSlot::Ready {
                    id: model.id.clone(),
                    name: model.display_name,
                    session: std::sync::Arc::new(std::sync::Mutex::new(session)),
                };
                Ok(slot.state())
            }
            Err(e) => {
                *slot = ModelSlot::Failed { id: model.id.clone(), name: model.display_name, error: e.clone() };
                Err(e)
            }
        }
    };
    match &result {
        Ok(_) => {
            if let Err(e) = last_used::remember(&state.store, &model.id).await {
                log::warn!("cannot remember {} as the last-used model: {e}", model.id);
            }
            on_progress(LoadEvent::Progress { fraction: 1.0 });
            on_progress(LoadEvent::Done);
        }
        Err(e) => on_progress(LoadEvent::Error { message: e.message.clone(), code: e.code }),
    }
    result
}

/// At start-up: the last-used model, if it is still installed with its file, marked as loading
/// (so the window's first `current_model` already says so); [`finish_load`] then reads it in
/// the background. A model that is gone is forgotten, and the log says why.
pub async fn startup_model(state: &AppState) -> Option<registry::InstalledModel> {
    match last_used::remembered(&state.store).await {
        Ok(LastUsed::Installed(m)) => match begin_load(state, &m) {
            Ok(()) => {
                log::info!("loading the last-used model {} in the background", m.id);
                Some(m)
            }
            Err(e) => {
                log::warn!("not reloading {}: {e}", m.id);
                None
            }
        },
        Ok(LastUsed::Forgotten { id, reason }) => {
            log::info!("not reloading the last-used model {id:?}: {reason}; it is forgotten");
            None
        }
        Ok(LastUsed::None) => None,
        Err(e) => {
            log::warn!("cannot read the last-used model: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth::models::registry::Source;
    use hearth::models::DownloadError;
    use hearth::store::Store;
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
        sink(DownloadUpdate::Failed { error: DownloadError::Gated { repo: "google/x".into(), status: 401, has_token: false } });
        sink(DownloadUpdate::Failed { error: DownloadError::DiskFull { path: "/d".into(), needed: 2, available: 1 } });
        let got = got.lock().unwrap().clone();
        assert_eq!(got[0], serde_json::json!({"kind": "progress", "bytes": 10, "total": 40, "rate": 5.0, "eta": 6.0}));
        assert_eq!(got[1], serde_json::json!({"kind": "cancelled"}));
        assert_eq!((got[2]["kind"].as_str(), got[2]["code"].as_str()), (Some("error"), Some("gated")));
        assert!(got[2]["message"].as_str().unwrap().contains("Hugging Face read token"), "{}", got[2]);
        assert_eq!(got[3]["code"], "disk_full");
    }

    fn test_model() -> PathBuf {
        let p = std::env::var_os("HEARTH_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/hearth-test/gemma-3-270m-q4_k_m.gguf")
        });
        assert!(p.is_file(), "test model missing at {} (run scripts/fetch-test-model)", p.display());
        p
    }

    fn registered(id: &str, path: PathBuf) -> registry::InstalledModel {
        registry::InstalledModel {
            id: id.into(),
            display_name: format!("Model {id}"),
            repo: None,
            file: "model.gguf".into(),
            quant: None,
            size_bytes: 0,
            sha256: None,
            path,
            mmproj_path: None,
            source: Source::Import,
            added_at: registry::now_ms(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_loaded_model_is_loaded_again_at_start_up_and_a_missing_one_is_forgotten() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(data.path()).await.unwrap();
        registry::insert(&store, &registered("m270", test_model()), false).await.unwrap();
        AppSettings::update(&store, &serde_json::json!({"contextSize": 512})).await.unwrap();

        // What load_model does: nothing remembered before, the id after.
        let first = AppState::new(store.clone(), data.path().to_path_buf(), tokio::runtime::Handle::current());
        assert_eq!(startup_model(&first).await, None);
        let m = registry::get(&store, "m270").await.unwrap().unwrap();
        begin_load(&first, &m).unwrap();
        finish_load(&first, m, |_| {}).await.unwrap();
        assert_eq!(store.get_setting(&last_used::LAST_USED_MODEL).await.unwrap().as_deref(), Some("m270"));

        // The next start: loading before the window asks, ready after the background load.
        let next = AppState::new(store.clone(), data.path().to_path_buf(), tokio::runtime::Handle::current());
        let m = startup_model(&next).await.expect("the remembered model is loaded again");
        let st = lock(&next.model).state();
        assert_eq!((st.state, st.model_id.as_deref()), ("loading", Some("m270")));
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (sink, slot) = (events.clone(), next.model.clone());
        let polled = std::sync::Arc::new(Mutex::new(Vec::new()));
        let polled_sink = polled.clone();
        let ready = finish_load(&next, m, move |e| {
            // What a window polling current_model would see at this moment.
            polled_sink.lock().unwrap().push(lock(&slot).state().load_fraction);
            sink.lock().unwrap().push(serde_json::to_value(e).unwrap())
        })
        .await
        .unwrap();
        assert_eq!((ready.state, ready.model_id.as_deref(), ready.context_size), ("ready", Some("m270"), Some(512)));
        assert_eq!(lock(&next.model).state().state, "ready");
        let events = events.lock().unwrap();
        assert_eq!(events.last(), Some(&serde_json::json!({"kind": "done"})));
        // Progress from the engine's loader, not only the start and the end.
        let fractions: Vec<f64> = events.iter().filter_map(|e| e["fraction"].as_f64()).collect();
        assert!(fractions.iter().filter(|f| **f > 0.0 && **f < 1.0).count() >= 10, "{fractions:?}");
        assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
        drop(events);
        // current_model carries the same progress, for the start-up reload that has no channel.
        let polled: Vec<f64> = polled.lock().unwrap().iter().flatten().copied().collect();
        assert!(polled.iter().filter(|f| **f > 0.0 && **f < 1.0).count() >= 10, "{polled:?}");
        assert_eq!(lock(&next.model).state().load_fraction, None, "no fraction once ready");
        assert!(next.session().is_ok());

        // A remembered model whose file is gone is forgotten, and nothing loads.
        let gone = data.path().join("gone.gguf");
        std::fs::write(&gone, b"GGUF").unwrap();
        registry::insert(&store, &registered("gone", gone.clone()), false).await.unwrap();
        last_used::remember(&store, "gone").await.unwrap();
        std::fs::remove_file(&gone).unwrap();
        let after = AppState::new(store.clone(), data.path().to_path_buf(), tokio::runtime::Handle::current());
        assert_eq!(startup_model(&after).await, None);
        assert_eq!(lock(&after.model).state().state, "none");
        assert_eq!(store.get_setting(&last_used::LAST_USED_MODEL).await.unwrap(), None);
    }
}
