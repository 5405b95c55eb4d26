//! Import of local GGUFs: the real 270M test model, refusals of wrong or broken files,
//! `--model` resolution, removal and disk usage.

mod support;
use support::test_model;

use std::path::{Path, PathBuf};

use hearth::models::{self, registry, ImportOptions, ModelsError, Source};
use hearth::store::Store;
use support::gguf_gen;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn real_270m_model_imports_by_reference() {
    let (data, store) = store().await;
    let path = test_model();
    let m = models::import_gguf(&store, data.path(), &path, &ImportOptions::default()).await.unwrap();
    let sha = models::hub::sha256_file(&path).await.unwrap();
    assert_eq!(m.id, format!("local-{}", &sha[..12]));
    assert_eq!(m.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(m.path, std::fs::canonicalize(&path).unwrap());
    assert_eq!(m.source, Source::Import);
    assert_eq!(m.quant.as_deref(), Some("Q4_K_M"));
    assert_eq!(m.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(m.file, "gemma-3-270m-q4_k_m.gguf");
    assert_eq!(registry::list(&store).await.unwrap(), vec![m.clone()]);

    // Its header really is Gemma 3 with the expected tensors.
    let s = models::check_gemma3(&path).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("gemma3"));
    assert!(s.has_tensor("blk.17.ffn_down.weight"));
    assert!(!s.has_tensor("blk.18.ffn_down.weight"));
    assert_eq!(s.context_length(), Some(32_768));
    assert!(!s.is_mmproj());
    // Kept with the model at import, so the app lists models without reading the file again.
    assert_eq!(registry::context_length(&store, &m.id).await.unwrap(), Some(32_768));
    // A model registered before it was kept has its header read once, and the result kept.
    sqlx::query("UPDATE models SET context_length = NULL").execute(store.pool()).await.unwrap();
    assert_eq!(registry::context_length(&store, &m.id).await.unwrap(), None);
    assert_eq!(models::context_length(&store, &m).await.unwrap(), 32_768);
    assert_eq!(registry::context_length(&store, &m.id).await.unwrap(), Some(32_768));

    // `--model` takes the id as well as the path.
    assert_eq!(models::resolve_model_arg(&store, &m.id).await.unwrap(), m.path);
    assert_eq!(models::resolve_model_arg(&store, path.to_str().unwrap()).await.unwrap(), path);

    // Importing it again under the same id is refused.
    let err = models::import_gguf(&store, data.path(), &path, &ImportOptions::default()).await.unwrap_err();
    assert!(matches!(err, ModelsError::AlreadyRegistered { .. }), "{err:?}");

    // Removing a referenced import never deletes the user's file.
    let removed = models::remove(&store, data.path(), &m.id, true).await.unwrap();
    assert!(removed.deleted_files.is_empty());
    assert!(path.is_file());
    assert!(registry::list(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn copied_import_lives_in_the_data_dir_and_is_deleted_on_remove() {
    let (data, store) = store().await;
    let src = tempfile::tempdir().unwrap();
    let model = src.path().join("tiny-gemma.gguf");
    let proj = src.path().join("mmproj.gguf");
    gguf_gen::write(&model, &gguf_gen::gemma3(1000));
    gguf_gen::write(&proj, &gguf_gen::mmproj());
    let opts = ImportOptions { copy: true, id: Some("tiny".into()), display_name: None, mmproj: Some(proj.clone()) };
    let m = models::import_gguf(&store, data.path(), &model, &opts).await.unwrap();
    assert_eq!(m.id, "tiny");
    assert_eq!(m.display_name, "Test Gemma");
    assert_eq!(m.quant.as_deref(), Some("F32"));
    assert!(m.path.starts_with(data.path().join("models").join("tiny")), "{}", m.path.display());
    assert_eq!(std::fs::read(&m.path).unwrap(), std::fs::read(&model).unwrap());
    let mp = m.mmproj_path.clone().unwrap();
    assert_eq!(std::fs::read(&mp).unwrap(), std::fs::read(&proj).unwrap());

    let usage = models::disk_usage(&store, data.path()).await.unwrap();
    let expected = std::fs::metadata(&model).unwrap().len() + std::fs::metadata(&proj).unwrap().len();
    assert_eq!(usage.total_bytes, expected);
    assert!(usage.models[0].present);

    let removed = models::remove(&store, data.path(), "tiny", true).await.unwrap();
    assert_eq!(removed.deleted_files.len(), 2);
    assert!(!m.path.exists() && !mp.exists());
    assert!(model.exists() && proj.exists(), "the originals stay");
    let err = models::remove(&store, data.path(), "tiny", true).await.unwrap_err();
    assert!(matches!(err, ModelsError::NotRegistered { .. }), "{err:?}");
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[tokio::test]
async fn non_gemma_model_is_refused_with_its_architecture() {
    let (data, store) = store().await;
    let p = write_tmp(data.path(), "llama.gguf", &gguf_gen::llama());
    let err = models::import_gguf(&store, data.path(), &p, &ImportOptions::default()).await.unwrap_err();
    assert!(matches!(&err, ModelsError::NotGemma3 { architecture, .. } if architecture == "llama"), "{err:?}");
    assert!(err.to_string().contains("'llama' model, not Gemma 3"), "{err}");
    assert!(registry::list(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn truncated_real_model_is_refused() {
    let (data, store) = store().await;
    // The first 50 MB of the real model: a complete header, missing tensor data.
    let mut f = std::fs::File::open(test_model()).unwrap();
    let mut head = vec![0u8; 50_000_000];
    std::io::Read::read_exact(&mut f, &mut head).unwrap();
    let p = write_tmp(data.path(), "cut.gguf", &head);
    let err = models::import_gguf(&store, data.path(), &p, &ImportOptions::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelsError::InvalidGguf { .. }), "{err:?}");
    assert!(msg.contains("truncated") && msg.contains("but the file has 50000000 bytes"), "{msg}");
    assert!(registry::list(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn header_cut_short_and_garbage_are_refused() {
    let (data, store) = store().await;
    let bytes = gguf_gen::gemma3(0);
    let cut = write_tmp(data.path(), "cut.gguf", &bytes[..100]);
    let err = models::import_gguf(&store, data.path(), &cut, &ImportOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let junk = write_tmp(data.path(), "junk.gguf", b"this is not a model at all");
    let err = models::import_gguf(&store, data.path(), &junk, &ImportOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("not a GGUF file"), "{err}");

    let err = models::import_gguf(&store, data.path(), &data.path().join("absent.gguf"), &ImportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelsError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.gguf"), "{err}");
}

#[test]
fn absurd_header_counts_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gguf_gen::gemma3(0);
    // tensor count := 2^60
    bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let p = write_tmp(dir.path(), "absurd.gguf", &bytes);
    let err = models::read_summary(&p).unwrap_err();
    assert!(matches!(err, ModelsError::InvalidGguf { .. }), "{err:?}");
    assert!(err.to_string().contains("tensor_count 1152921504606846976"), "{err}");

    let mut bytes = gguf_gen::gemma3(0);
    // The first key's length := 2^40
    bytes[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let p = write_tmp(dir.path(), "absurd2.gguf", &bytes);
    let err = models::read_summary(&p).unwrap_err();
    assert!(matches!(err, ModelsError::InvalidGguf { .. }), "{err:?}");
    assert!(err.to_string().contains("string length 1099511627776"), "{err}");
}

#[tokio::test]
async fn a_gemma3_without_the_engines_hyper_parameters_is_refused() {
    let (data, store) = store().await;
    // The tiny model with gemma3.block_count removed (its key renamed, so offsets stay).
    let mut bytes = gguf_gen::gemma3(0);
    let at = bytes.windows(18).position(|w| w == b"gemma3.block_count").unwrap();
    bytes[at..at + 18].copy_from_slice(b"gemma3.block_xxxxx");
    let p = write_tmp(data.path(), "nolayers.gguf", &bytes);
    let err = models::import_gguf(&store, data.path(), &p, &ImportOptions::default()).await.unwrap_err();
    assert!(matches!(err, ModelsError::InvalidGguf { .. }), "{err:?}");
    assert!(err.to_string().contains("gemma3.block_count"), "{err}");
}

#[tokio::test]
async fn a_projector_that_is_not_gemma3_is_refused() {
    let (data, store) = store().await;
    let model = write_tmp(data.path(), "m.gguf", &gguf_gen::gemma3(0));
    // A text model given as the projector.
    let opts = ImportOptions { mmproj: Some(model.clone()), ..Default::default() };
    let err = models::import_gguf(&store, data.path(), &model, &opts).await.unwrap_err();
    assert!(matches!(err, ModelsError::NotMmproj { .. }), "{err:?}");
    assert!(err.to_string().contains("expected 'clip'"), "{err}");
}

#[tokio::test]
async fn unknown_model_argument_lists_the_registered_ids() {
    let (data, store) = store().await;
    let err = models::resolve_model_arg(&store, "gemma-9").await.unwrap_err();
    assert!(err.to_string().contains("none (use `hearth models download`"), "{err}");
    let p = write_tmp(data.path(), "m.gguf", &gguf_gen::gemma3(0));
    let opts = ImportOptions { id: Some("mine".into()), ..Default::default() };
    models::import_gguf(&store, data.path(), &p, &opts).await.unwrap();
    let err = models::resolve_model_arg(&store, "gemma-9").await.unwrap_err();
    assert!(
        matches!(&err, ModelsError::UnknownModel { registered, .. } if registered == &vec!["mine".to_string()]),
        "{err:?}"
    );
    assert!(err.to_string().contains("registered: mine"), "{err}");

    // A registered file that has since vanished is reported as such.
    std::fs::remove_file(&p).unwrap();
    let err = models::resolve_model_arg(&store, "mine").await.unwrap_err();
    assert!(matches!(err, ModelsError::MissingFile { .. }), "{err:?}");

    let bad = ImportOptions { id: Some("../evil".into()), ..Default::default() };
    let p2 = write_tmp(data.path(), "m2.gguf", &gguf_gen::gemma3(0));
    let err = models::import_gguf(&store, data.path(), &p2, &bad).await.unwrap_err();
    assert!(matches!(err, ModelsError::InvalidId(_)), "{err:?}");
}

#[test]
fn token_file_is_owner_only_and_redacted() {
    use hearth::models::token;
    let dir = tempfile::tempdir().unwrap();
    let t = token::HfToken::new("  hf_abc123\n").unwrap();
    assert_eq!(t.secret(), "hf_abc123");
    assert!(!format!("{t:?}").contains("hf_abc"));
    let p = token::save(dir.path(), &t).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "hf_abc123");
    assert!(token::HfToken::new("   ").is_none());
    assert!(token::clear(dir.path()).unwrap());
    assert!(!token::clear(dir.path()).unwrap());
}
