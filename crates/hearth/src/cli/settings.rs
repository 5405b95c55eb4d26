//! `hearth settings`: the desktop app's settings (one record, `hearth::app_api::AppSettings`),
//! read and written from the terminal with the same validation as the app's settings page.

use std::path::Path;

use anyhow::{bail, Context};
use hearth::app_api::AppSettings;
use hearth::store::Store;

#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    #[command(subcommand)]
    pub cmd: SettingsCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum SettingsCmd {
    /// Print the settings as JSON (the defaults until something was saved).
    Show,
    /// Change settings: `FIELD=VALUE` pairs with the app's field names, e.g. `temperature=0.7
    /// seed=null "systemPrompt=Answer briefly."`. A VALUE that is not JSON is taken as text.
    /// All or nothing: one bad value changes none. Prints the stored settings as JSON.
    Set {
        #[arg(required = true, value_name = "FIELD=VALUE")]
        pairs: Vec<String>,
    },
    /// Print the allowed range of every numeric setting as JSON.
    Ranges,
}

/// `FIELD=VALUE` pairs as one JSON patch object.
pub fn patch_from_pairs(pairs: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut patch = serde_json::Map::new();
    for pair in pairs {
        let Some((field, raw)) = pair.split_once('=') else {
            bail!("'{pair}' is not FIELD=VALUE");
        };
        // Text fields need no quoting on the command line; numbers, null and booleans are JSON.
        let value = serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
        patch.insert(field.trim().to_string(), value);
    }
    Ok(serde_json::Value::Object(patch))
}

pub async fn run(args: SettingsArgs, data_dir: &Path) -> anyhow::Result<()> {
    let out = match args.cmd {
        SettingsCmd::Ranges => serde_json::to_string_pretty(AppSettings::ranges())?,
        SettingsCmd::Show => {
            let store = open(data_dir).await?;
            let s = AppSettings::load(&store).await?;
            store.close().await;
            serde_json::to_string_pretty(&s)?
        }
        SettingsCmd::Set { pairs } => {
            let patch = patch_from_pairs(&pairs)?;
            let store = open(data_dir).await?;
            let s = AppSettings::update(&store, &patch).await;
            store.close().await;
            serde_json::to_string_pretty(&s?)?
        }
    };
    println!("{out}");
    Ok(())
}

async fn open(data_dir: &Path) -> anyhow::Result<Store> {
    Store::open(data_dir).await.with_context(|| format!("opening the store in {}", data_dir.display()))
}
