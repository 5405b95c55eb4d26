//! The model the app loaded last: remembered in the settings, reloaded at the next start only
//! while it is installed and its file exists, forgotten otherwise.

use hearth::models::last_used::{self, LastUsed, LAST_USED_MODEL};
use hearth::models::registry::{self, InstalledModel, Source};
use hearth::store::Store;

fn model(id: &str, path: &std::path::Path) -> InstalledModel {
    InstalledModel {
        id: id.into(),
        display_name: format!("Model {id}"),
        repo: None,
        file: "m.gguf".into(),
        quant: Some("Q4_0".into()),
        size_bytes: 3,
        sha256: None,
        path: path.to_path_buf(),
        mmproj_path: None,
        source: Source::Import,
        added_at: registry::now_ms(),
    }
}

#[tokio::test]
async fn the_remembered_model_survives_a_restart_while_its_file_exists() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("m.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    let m = model("local-abc", &file);
    {
        let store = Store::open(data.path()).await.unwrap();
        assert_eq!(last_used::remembered(&store).await.unwrap(), LastUsed::None);
        registry::insert(&store, &m, false).await.unwrap();
        last_used::remember(&store, "local-abc").await.unwrap();
        store.close().await;
    }
    let store = Store::open(data.path()).await.unwrap();
    assert_eq!(store.get_setting(&LAST_USED_MODEL).await.unwrap().as_deref(), Some("local-abc"));
    assert_eq!(last_used::remembered(&store).await.unwrap(), LastUsed::Installed(m.clone()));
    // Asking does not forget.
    assert_eq!(last_used::remembered(&store).await.unwrap(), LastUsed::Installed(m));
}

#[tokio::test]
async fn a_missing_file_or_a_removed_model_is_forgotten_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).await.unwrap();
    let file = data.path().join("gone.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    registry::insert(&store, &model("local-gone", &file), false).await.unwrap();
    last_used::remember(&store, "local-gone").await.unwrap();
    std::fs::remove_file(&file).unwrap();

    match last_used::remembered(&store).await.unwrap() {
        LastUsed::Forgotten { id, reason } => {
            assert_eq!(id, "local-gone");
            assert!(reason.contains("no longer exists") && reason.contains("gone.gguf"), "{reason}");
        }
        other => panic!("expected Forgotten, got {other:?}"),
    }
    assert_eq!(store.get_setting(&LAST_USED_MODEL).await.unwrap(), None);
    assert_eq!(last_used::remembered(&store).await.unwrap(), LastUsed::None);

    // A model removed from the registry is forgotten too.
    last_used::remember(&store, "never-installed").await.unwrap();
    assert!(matches!(
        last_used::remembered(&store).await.unwrap(),
        LastUsed::Forgotten { reason, .. } if reason.contains("no longer installed")
    ));
    assert_eq!(store.get_setting(&LAST_USED_MODEL).await.unwrap(), None);
}
