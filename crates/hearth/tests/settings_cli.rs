//! `hearth settings` and `hearth chat` use the desktop app's settings record: real binary, real
//! database (and the real test model for the chat turn).

mod support;
use support::test_model;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth::app_api::AppSettings;
use hearth::store::Store;

fn hearth(dir: &Path, args: &[&str]) -> Output {
    let bin = std::env::var_os("HEARTH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth")));
    Command::new(bin).env("HEARTH_DATA_DIR", dir).args(args).output().expect("run hearth")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "hearth failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn the_cli_reads_and_writes_the_apps_settings_record() {
    let dir = tempfile::tempdir().unwrap();
    let shown = json(&hearth(dir.path(), &["settings", "show"]));
    assert_eq!(shown, serde_json::to_value(AppSettings::default()).unwrap());

    let set = json(&hearth(
        dir.path(),
        &["settings", "set", "temperature=0.5", "seed=7", "systemPrompt=Answer in one word."],
    ));
    assert_eq!((set["temperature"].as_f64(), set["seed"].as_i64()), (Some(0.5), Some(7)));
    // What the app reads is what the CLI wrote.
    let store = Store::open(dir.path()).await.unwrap();
    let app = AppSettings::load(&store).await.unwrap();
    store.close().await;
    assert_eq!((app.temperature, app.seed, app.system_prompt.as_str()), (0.5, Some(7), "Answer in one word."));

    // One bad value changes nothing, and the error names the field and its range.
    let bad = hearth(dir.path(), &["settings", "set", "topK=40", "repeatPenalty=0.1"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("repeatPenalty must be between 0.5 and 2"), "{err}");
    assert_eq!(json(&hearth(dir.path(), &["settings", "show"])), set);
    let unknown = hearth(dir.path(), &["settings", "set", "colour=1"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown setting: colour"));

    // Pan & Scan: off by default, a boolean on the command line.
    assert_eq!(shown["panScan"], false);
    let on = json(&hearth(dir.path(), &["settings", "set", "panScan=true"]));
    assert_eq!(on["panScan"], true);
    let store = Store::open(dir.path()).await.unwrap();
    assert!(AppSettings::load(&store).await.unwrap().pan_scan);
    store.close().await;
    let not_bool = hearth(dir.path(), &["settings", "set", "panScan=yes"]);
    assert!(String::from_utf8_lossy(&not_bool.stderr).contains("panScan has the wrong type of value"));

    // The ranges table, as the shell sends it to the UI.
    let ranges = json(&hearth(dir.path(), &["settings", "ranges"]));
    assert_eq!(ranges, serde_json::to_value(AppSettings::ranges()).unwrap());
}

#[tokio::test]
async fn chat_takes_its_defaults_from_the_apps_settings() {
    let dir = tempfile::tempdir().unwrap();
    json(&hearth(dir.path(), &["settings", "set", "systemPrompt=Be brief.", "contextSize=512"]));
    let model = test_model();
    let model = model.to_str().unwrap();
    let out = json(&hearth(
        dir.path(),
        &["chat", "--model", model, "--message", "Hi", "--max-tokens", "2", "--temperature", "0", "--json"],
    ));
    let store = Store::open(dir.path()).await.unwrap();
    let conv = store.conversation(out["conversation_id"].as_i64().unwrap()).await.unwrap();
    store.close().await;
    assert_eq!(conv.system_prompt.as_deref(), Some("Be brief."));

    // Flags are checked against the same ranges.
    let bad = hearth(dir.path(), &["chat", "--model", model, "--message", "Hi", "--context", "10"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--context must be between 256 and 131072"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
