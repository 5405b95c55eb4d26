//! `hearth models remote …`: models on another machine's OpenAI-compatible server.

use std::path::Path;

use anyhow::Context;
use hearth::remote::{registry, RemoteClient, RemoteKey};
use hearth::store::Store;
use serde_json::json;

#[derive(clap::Subcommand, Debug)]
pub enum RemoteCmd {
    /// Add a model served elsewhere (llama-server, vLLM, another `hearth serve`); it is then
    /// chosen and chatted with like an installed model. Checks that the server answers.
    Add {
        /// The name to choose it by (letters, digits, '.', '_', '-').
        name: String,
        /// The server's address, e.g. http://192.168.1.20:8080 (a trailing /v1 is fine).
        #[arg(long)]
        url: String,
        /// The model id to ask the server for (default: the first one it lists).
        #[arg(long)]
        model: Option<String>,
        /// The server's API key; stored readable by you only, never in the database or logs.
        #[arg(long, env = "HEARTH_REMOTE_KEY", hide_env_values = true)]
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Forget a remote model and its key.
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The remote models; with --check, whether each server answers and what it offers.
    List {
        #[arg(long)]
        check: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: RemoteCmd, store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    match cmd {
        RemoteCmd::Add { name, url, model, key, json } => {
            let key = key.as_deref().and_then(RemoteKey::new);
            let m = registry::add(store, data_dir, &name, &url, model.as_deref(), key.as_ref()).await?;
            let check = check(&m, key).await;
            if json {
                println!("{}", serde_json::to_string(&json!({"remote": m, "check": check}))?);
            } else {
                println!(
                    "Added '{}' → {}{}",
                    m.name,
                    m.url,
                    m.model.as_deref().map(|x| format!(" ({x})")).unwrap_or_default()
                );
                match check["ok"].as_bool() {
                    Some(true) => println!("  the server answers; it offers: {}", check["models"]),
                    _ => println!("  warning: {} (added anyway; it is tried again at each turn)", check["error"]),
                }
            }
            Ok(())
        }
        RemoteCmd::Remove { name, json } => {
            let m = registry::remove(store, data_dir, &name).await?;
            if json {
                println!("{}", serde_json::to_string(&m)?);
            } else {
                println!("Removed '{}' ({})", m.name, m.url);
            }
            Ok(())
        }
        RemoteCmd::List { check: do_check, json } => {
            let list = registry::list(store, data_dir).await?;
            let mut rows = Vec::with_capacity(list.len());
            for m in &list {
                let mut row = serde_json::to_value(m)?;
                if do_check {
                    let key = registry::key(data_dir, &m.name)?;
                    row["check"] = check(m, key).await;
                }
                rows.push(row);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!("No remote models. Add one: hearth models remote add NAME --url http://HOST:PORT");
            }
            for r in &rows {
                let status = match r.get("check") {
                    None => String::new(),
                    Some(c) if c["ok"] == true => format!("  ok: {}", c["models"]),
                    Some(c) => format!("  FAILED: {}", c["error"].as_str().unwrap_or("?")),
                };
                println!(
                    "{:<20} {}{}{}{}",
                    r["name"].as_str().unwrap_or(""),
                    r["url"].as_str().unwrap_or(""),
                    r["model"].as_str().map(|m| format!(" ({m})")).unwrap_or_default(),
                    if r["has_key"] == true { "  [key]" } else { "" },
                    status
                );
            }
            Ok(())
        }
    }
}

/// Whether the server answers `GET /v1/models` with this key: `{ok, models}` or `{ok, error}`.
async fn check(m: &registry::RemoteModel, key: Option<RemoteKey>) -> serde_json::Value {
    let result = async { RemoteClient::new(m.clone(), key)?.models().await }.await;
    match result {
        Ok(models) => json!({"ok": true, "models": models}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }
}

/// The remote model named `name`, if there is one: `models fit` reports that it needs no
/// memory on this machine.
pub async fn find(data_dir: &Path, name: &str) -> anyhow::Result<Option<registry::RemoteModel>> {
    let store = Store::open(data_dir).await.with_context(|| format!("opening the store in {}", data_dir.display()))?;
    Ok(registry::get(&store, data_dir, name).await?)
}
