//! Hearth's desktop app: a Tauri 2 window over the `hearth` services, showing the ui/ front end.
//! Commands map one-to-one onto services (ui/IPC.md); this crate holds no business logic.
//!
//! The data folder is `--data-dir PATH`, else `HEARTH_DATA_DIR`, else the per-user data folder
//! (tests point it at a temporary folder).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod dto;
mod error;
mod state;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hearth::runtime::Runtime;
use hearth::store::Store;
use tauri::Manager;

use crate::state::AppState;

/// How long quitting waits for a running reply to be stored as interrupted.
const QUIT_WAIT: Duration = Duration::from_secs(5);

fn data_dir_from(args: &[String], env: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--data-dir" {
            let v = it.next().context("--data-dir needs a folder")?;
            return Ok(PathBuf::from(v));
        }
        if let Some(v) = a.strip_prefix("--data-dir=") {
            return Ok(PathBuf::from(v));
        }
    }
    if let Some(d) = env.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(d);
    }
    Ok(dirs::data_dir().context("no per-user data folder on this system; pass --data-dir")?.join("hearth"))
}

fn main() -> anyhow::Result<()> {
    hearth::configure_malloc();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data_dir = data_dir_from(&args, std::env::var_os("HEARTH_DATA_DIR").map(PathBuf::from))?;
    // A window started from a menu has no terminal: the log also goes to <data>/logs (rotated).
    // The guard lives until main returns. Without a usable folder the log stays on stderr and the
    // store reports the folder's problem just below.
    let _log = match hearth::logging::init(&data_dir, log::LevelFilter::Info) {
        Ok(guard) => Some(guard),
        Err(e) => {
            let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).try_init();
            log::warn!("no log file: {e}");
            None
        }
    };

    // One runtime for the store and Tauri's async commands; generation runs on its own thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tauri::async_runtime::set(rt.handle().clone());
    let store = rt
        .block_on(Store::open(&data_dir))
        .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
    log::info!("data folder: {}", data_dir.display());

    let runtime = Runtime::new(store, data_dir, rt.handle().clone());
    // A quick database read; the model itself loads in the background once the window is up.
    let startup_model = rt.block_on(runtime.startup_model());
    let state = AppState::new(runtime, rt.handle().clone());

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(state)
        .setup(move |app| {
            // The local API server comes back if it was on; a failure (port taken) waits in its
            // status for the settings page.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                match handle.state::<AppState>().server.restore().await {
                    Ok(Some(addr)) => log::info!("local API server back on http://{addr}/v1"),
                    Ok(None) => {}
                    Err(e) => log::warn!("cannot start the local API server: {e}"),
                }
            });
            if let Some(model) = startup_model {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    let state = handle.state::<AppState>();
                    let id = model.id.clone();
                    match state.runtime.finish_load(model, |_| {}).await {
                        Ok(_) => log::info!("last-used model {id} is ready"),
                        Err(e) => log::warn!("cannot load the last-used model {id}: {e}"),
                    }
                });
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::conversations::list_conversations,
            commands::conversations::create_conversation,
            commands::conversations::rename_conversation,
            commands::conversations::pin_conversation,
            commands::conversations::archive_conversation,
            commands::conversations::delete_conversation,
            commands::conversations::search_conversations,
            commands::messages::list_messages,
            commands::messages::send_message,
            commands::messages::stop_generation,
            commands::messages::regenerate,
            commands::messages::edit_message,
            commands::messages::select_branch,
            commands::models::model_catalog,
            commands::models::list_installed_models,
            commands::models::download_model,
            commands::models::cancel_download,
            commands::models::resume_download,
            commands::models::import_model,
            commands::models::pick_model_file,
            commands::models::remove_model,
            commands::models::load_model,
            commands::models::current_model,
            commands::settings::get_settings,
            commands::settings::set_settings,
            commands::settings::settings_ranges,
            commands::settings::available_devices,
            commands::settings::hf_token_status,
            commands::settings::set_hf_token,
            commands::shell::open_external,
            commands::attachments::pick_attachment_files,
            commands::attachments::save_pasted_image,
            commands::attachments::image_thumbnail,
            commands::attachments::attachment_thumbnail,
            commands::attachments::describe_document,
            commands::attachments::document_text,
            commands::attachments::attachment_text,
            commands::attachments::summarize_documents,
            commands::attachments::cancel_summary,
            commands::remote::list_remote_models,
            commands::remote::add_remote_model,
            commands::remote::remove_remote_model,
            commands::remote::check_remote_model,
            commands::local_server::local_server_status,
            commands::local_server::set_local_server,
        ])
        .build(tauri::generate_context!())
        .context("cannot start the window")?;

    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            let state = handle.state::<AppState>();
            // API clients first: their requests would otherwise hold the runtime's queue.
            state.rt.block_on(state.server.stop(hearth::server::embedded::STOP_WAIT));
            // A reply cut off by quitting is stored as interrupted, and the database closed cleanly.
            state.runtime.shutdown(QUIT_WAIT);
            // Downloads stop with their partial files intact, to resume at the next start.
            state.rt.block_on(state.downloads.shutdown(QUIT_WAIT));
            state.rt.block_on(state.store().close());
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_flag_beats_the_environment() {
        let env = Some(PathBuf::from("/env"));
        assert_eq!(data_dir_from(&args(&["--data-dir", "/a"]), env.clone()).unwrap(), PathBuf::from("/a"));
        assert_eq!(data_dir_from(&args(&["--data-dir=/b"]), env.clone()).unwrap(), PathBuf::from("/b"));
        assert_eq!(data_dir_from(&args(&["--other"]), env).unwrap(), PathBuf::from("/env"));
        assert!(data_dir_from(&args(&["--data-dir"]), None).is_err());
    }
}
