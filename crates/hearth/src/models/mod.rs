//! The model manager: the catalog of Gemma 3 downloads, the hardware fit, Hugging Face
//! downloads, imports of local GGUFs and the registry of installed models. The CLI and the
//! desktop app both drive it through the functions here.
//!
//! GGUF files are read by the engine (`engine::gguf`, Hearth's one GGUF parser): `read_summary`,
//! `check_gemma3` and `check_mmproj` below only put its answers and refusals in `ModelsError`
//! terms.

pub mod catalog;
pub mod downloads;
mod error;
pub mod fit;
pub mod hub;
pub mod last_used;
pub mod registry;
pub mod token;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use catalog::{Catalog, CatalogEntry, Variant};
pub use downloads::{DownloadError, DownloadManager, DownloadState, DownloadStatus, DownloadUpdate};
pub use engine::gguf::Summary;
pub use error::ModelsError;
pub use hub::{CancelToken, DownloadEvent, FileRequest, Hub, HubConfig};
pub use registry::{InstalledModel, Source};

use crate::store::Store;

/// The header of the GGUF at `path` (see `engine::gguf::Summary`): readable, a GGUF, every
/// tensor inside the file.
pub fn read_summary(path: &Path) -> Result<Summary, ModelsError> {
    Summary::read(path).map_err(|e| ModelsError::gguf(path, e))
}

/// A Gemma 3 text model the engine can run: `NotGemma3` for another architecture,
/// `InvalidGguf` for a broken file or one without the tensors or hyper-parameters it needs.
pub fn check_gemma3(path: &Path) -> Result<Summary, ModelsError> {
    let s = read_summary(path)?;
    s.check_gemma3().map_err(|m| ModelsError::gguf_mismatch(path, m))?;
    Ok(s)
}

/// A Gemma 3 vision projector (llama.cpp's clip format); `NotMmproj` says why not.
pub fn check_mmproj(path: &Path) -> Result<Summary, ModelsError> {
    let s = read_summary(path)?;
    s.check_mmproj().map_err(|m| ModelsError::NotMmproj { path: path.to_path_buf(), reason: m.to_string() })?;
    Ok(s)
}

/// For every `--model` argument: an existing file is used as is; otherwise a registered id
/// gives its path; otherwise the error lists the registered ids.
pub async fn resolve_model_arg(store: &Store, arg: &str) -> Result<PathBuf, ModelsError> {
    let as_path = Path::new(arg);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    match registry::get(store, arg).await? {
        Some(m) if m.path.is_file() => Ok(m.path),
        Some(m) => Err(ModelsError::MissingFile { id: m.id, path: m.path }),
        None => Err(ModelsError::UnknownModel { arg: arg.to_string(), registered: registry::ids(store).await? }),
    }
}

/// Where copies of imported models go.
pub fn imported_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Copy into the data dir instead of referencing the file where it is.
    pub copy: bool,
    /// Registry id; default `local-<first 12 hex of sha256>`.
    pub id: Option<String>,
    pub display_name: Option<String>,
    /// A vision projector to register with the model.
    pub mmproj: Option<PathBuf>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ModelsError> + Send + 'static,
) -> Result<T, ModelsError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ModelsError::Io {
            what: "background task failed for",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })
    })
}

/// Adds `m` to the registry (`registry::insert`) with its header's context length, so that
/// listing the models reads no GGUF.
async fn register(store: &Store, m: &InstalledModel, replace: bool, summary: &Summary) -> Result<(), ModelsError> {
    registry::insert(store, m, replace).await?;
    if let Some(n) = summary.context_length() {
        registry::set_context_length(store, &m.id, n).await?;
    }
    Ok(())
}

/// Model `m`'s maximum context: kept in the registry at import or download; a model registered
/// before that has its header read once (off the async workers: the read parses the whole
/// vocabulary) and the result kept. 0 when the file cannot be read (the models page then shows
/// the model as missing rather than failing the whole list).
pub async fn context_length(store: &Store, m: &InstalledModel) -> Result<u64, ModelsError> {
    if let Some(n) = registry::context_length(store, &m.id).await? {
        return Ok(n);
    }
    let path = m.path.clone();
    let n = blocking(move || Ok(read_summary(&path).ok().and_then(|s| s.context_length()).unwrap_or(0))).await?;
    if n > 0 {
        registry::set_context_length(store, &m.id, n).await?;
    }
    Ok(n)
}

/// Validates a local GGUF (Gemma 3 architecture, readable header, all tensor data present;
/// the optional projector likewise) and registers it.
pub async fn import_gguf(
    store: &Store,
    data_dir: &Path,
    path: &Path,
    opts: &ImportOptions,
) -> Result<InstalledModel, ModelsError> {
    let path = std::fs::canonicalize(path).map_err(ModelsError::io("cannot find", path))?;
    if !path.is_file() {
        return Err(ModelsError::InvalidGguf { path, reason: "not a regular file".into() });
    }
    if let Some(id) = &opts.id {
        registry::check_id(id)?;
        if let Some(existing) = registry::get(store, id).await? {
            return Err(ModelsError::AlreadyRegistered { id: id.clone(), path: existing.path });
        }
    }
    let p = path.clone();
    let summary = blocking(move || check_gemma3(&p)).await?;
    let mmproj = match &opts.mmproj {
        Some(m) => {
            let m = std::fs::canonicalize(m).map_err(ModelsError::io("cannot find", m))?;
            let mc = m.clone();
            blocking(move || check_mmproj(&mc)).await?;
            Some(m)
        }
        None => match mmproj_beside(&path) {
            // Found, not asked for: a file that is no projector is left out, not an error.
            Some(m) => {
                let mc = m.clone();
                match blocking(move || check_mmproj(&mc)).await {
                    Ok(_) => {
                        log::info!("using the vision projector {} found beside the model", m.display());
                        Some(m)
                    }
                    Err(e) => {
                        log::warn!("not using {} as the vision projector: {e}", m.display());
                        None
                    }
                }
            }
            None => None,
        },
    };
    let sha256 = hub::sha256_file(&path).await?;
    let id = opts.id.clone().unwrap_or_else(|| format!("local-{}", &sha256[..12]));
    if let Some(existing) = registry::get(store, &id).await? {
        return Err(ModelsError::AlreadyRegistered { id, path: existing.path });
    }
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();

    let (final_path, final_mmproj) = if opts.copy {
        let dir = imported_dir(data_dir).join(&id);
        let model_copy = copy_into(&path, &dir).await?;
        let mmproj_copy = match &mmproj {
            Some(m) => Some(copy_into(m, &dir).await?),
            None => None,
        };
        (model_copy, mmproj_copy)
    } else {
        (path.clone(), mmproj)
    };

    let model = InstalledModel {
        display_name: opts.display_name.clone().or_else(|| summary.name.clone()).unwrap_or_else(|| file.clone()),
        id,
        repo: None,
        file,
        quant: summary.quant().map(str::to_string),
        size_bytes: summary.file_size,
        sha256: Some(sha256),
        path: final_path,
        mmproj_path: final_mmproj,
        source: Source::Import,
        added_at: registry::now_ms(),
    };
    register(store, &model, false, &summary).await?;
    Ok(model)
}

/// The one `mmproj*.gguf` (any case) in the model's folder, as llama.cpp's downloads name
/// projectors; `None` when there is none, or several (which one pairs with the model is then
/// not clear: `--mmproj` says).
pub fn mmproj_beside(model: &Path) -> Option<PathBuf> {
    let dir = model.parent()?;
    let mut found = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        name.starts_with("mmproj") && name.ends_with(".gguf") && p.as_path() != model && p.is_file()
    });
    let first = found.next()?;
    match found.next() {
        None => Some(first),
        Some(second) => {
            log::warn!(
                "several vision projectors beside {} ({} and {}...): pass --mmproj to pick one",
                model.display(),
                first.display(),
                second.display()
            );
            None
        }
    }
}

/// Copies through a temporary name so a crash never leaves a half file under the real name.
async fn copy_into(src: &Path, dir: &Path) -> Result<PathBuf, ModelsError> {
    tokio::fs::create_dir_all(dir).await.map_err(ModelsError::io("cannot create", dir))?;
    let name = src.file_name().unwrap_or_default();
    let dest = dir.join(name);
    let available = hub::free_disk_bytes(dir).map_err(ModelsError::io("cannot check free space in", dir))?;
    let needed = tokio::fs::metadata(src).await.map_err(ModelsError::io("cannot read", src))?.len();
    if available < needed {
        return Err(ModelsError::DiskFull { path: dir.to_path_buf(), needed, available });
    }
    let tmp = dir.join(format!(".{}.partial", name.to_string_lossy()));
    tokio::fs::copy(src, &tmp).await.map_err(ModelsError::io("cannot copy to", &tmp))?;
    tokio::fs::rename(&tmp, &dest).await.map_err(ModelsError::io("cannot move into place", &dest))?;
    Ok(dest)
}

/// Downloads a catalog model (and its projector, for vision models when `with_mmproj`),
/// verifies and validates it, and registers it as `<catalog id>-<variant>`.
pub async fn install(
    store: &Store,
    hub: &Hub,
    entry: &CatalogEntry,
    quant: Option<&str>,
    with_mmproj: bool,
    on_event: &mut (dyn FnMut(&DownloadEvent) + Send),
    cancel: &CancelToken,
) -> Result<InstalledModel, ModelsError> {
    let variant = entry.variant(quant)?;
    let request = |f: &catalog::HubFile| FileRequest {
        repo: f.repo.clone(),
        file: f.file.clone(),
        revision: "main".into(),
        expected_sha256: f.sha256.clone(),
    };
    let model = hub.download(&request(&variant.hub_file()), on_event, cancel).await?;
    let mp = model.path.clone();
    let summary = blocking(move || check_gemma3(&mp)).await?;
    let mmproj = match entry.mmproj_for(variant).filter(|_| with_mmproj) {
        Some(f) => {
            let d = hub.download(&request(&f), on_event, cancel).await?;
            let dp = d.path.clone();
            blocking(move || check_mmproj(&dp)).await?;
            Some(d.path)
        }
        None => None,
    };
    let installed = InstalledModel {
        id: entry.installed_id(variant),
        display_name: format!("{} ({})", entry.display_name, variant.name),
        repo: Some(variant.repo.clone()),
        file: variant.file.clone(),
        quant: Some(variant.quant.clone()),
        size_bytes: model.size,
        sha256: Some(model.sha256),
        path: model.path,
        mmproj_path: mmproj,
        source: Source::Download,
        added_at: registry::now_ms(),
    };
    register(store, &installed, true, &summary).await?;
    Ok(installed)
}

/// How one catalog file fared in a refresh.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshNote {
    pub model: String,
    /// Variant name, or "mmproj".
    pub variant: String,
    pub repo: String,
    pub file: String,
    /// "ok", "not found", "gated" or an error message.
    pub outcome: String,
    pub size_bytes: Option<u64>,
}

/// Asks the Hub (HEAD requests only) for every catalog file's exact size and whether it exists.
/// Sizes become exact, missing files are marked unverified, pinned sha256s are kept and a Hub
/// sha that disagrees with one is reported. Only on the user's request: this is network access.
pub async fn refresh_catalog(hub: &Hub, catalog: &Catalog) -> (Catalog, Vec<RefreshNote>) {
    let mut out = catalog.clone();
    let mut notes = Vec::new();
    for entry in &mut out.models {
        for v in &mut entry.variants {
            let note = probe(hub, &entry.id, &v.name, &v.repo, &v.file, v.sha256.as_deref()).await;
            if let Some(size) = note.size_bytes {
                (v.size_bytes, v.size_exact, v.verified) = (size, true, true);
            } else if note.outcome == "not found" {
                v.verified = false;
            }
            notes.push(note);
            if let Some(m) = &mut v.mmproj {
                let label = format!("{} mmproj", v.name);
                let note = probe(hub, &entry.id, &label, &m.repo, &m.file, m.sha256.as_deref()).await;
                apply_size(m, &note);
                notes.push(note);
            }
        }
        if let Some(m) = &mut entry.mmproj {
            let note = probe(hub, &entry.id, "mmproj", &m.repo, &m.file, m.sha256.as_deref()).await;
            apply_size(m, &note);
            notes.push(note);
        }
    }
    (out, notes)
}

fn apply_size(f: &mut catalog::HubFile, note: &RefreshNote) {
    if let Some(size) = note.size_bytes {
        (f.size_bytes, f.size_exact) = (size, true);
    }
}

async fn probe(hub: &Hub, model: &str, variant: &str, repo: &str, file: &str, pinned: Option<&str>) -> RefreshNote {
    let (outcome, size_bytes) = match hub.file_info(&FileRequest::new(repo, file)).await {
        Ok(info) => match (pinned, &info.sha256) {
            (Some(p), Some(h)) if !p.eq_ignore_ascii_case(h) => {
                (format!("sha256 on the Hub ({h}) differs from the pinned one"), Some(info.size))
            }
            _ => ("ok".to_string(), Some(info.size)),
        },
        Err(ModelsError::NotFound { .. }) => ("not found".to_string(), None),
        Err(ModelsError::Unauthorized { .. }) => ("gated".to_string(), None),
        Err(e) => (e.to_string(), None),
    };
    RefreshNote {
        model: model.to_string(),
        variant: variant.to_string(),
        repo: repo.to_string(),
        file: file.to_string(),
        outcome,
        size_bytes,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub model: InstalledModel,
    pub deleted_files: Vec<PathBuf>,
}

/// Unregisters a model. With `delete_files`, also deletes what Hearth put on disk: the cache
/// blob and snapshot link of a download, or the copy of an imported file. A file imported by
/// reference is never deleted: it belongs to the user.
pub async fn remove(store: &Store, data_dir: &Path, id: &str, delete_files: bool) -> Result<Removed, ModelsError> {
    let model = registry::delete(store, id).await?;
    let mut deleted_files = Vec::new();
    if delete_files {
        let others = registry::list(store).await?;
        let shared = |p: &Path| others.iter().any(|o| o.path == p || o.mmproj_path.as_deref() == Some(p));
        let mut paths = vec![model.path.clone()];
        paths.extend(model.mmproj_path.clone());
        for p in paths {
            if shared(&p) {
                continue;
            }
            match model.source {
                Source::Download => {
                    // The snapshot entry is a link to the blob: delete both.
                    if let Ok(blob) = std::fs::canonicalize(&p) {
                        if blob != p && std::fs::remove_file(&blob).is_ok() {
                            deleted_files.push(blob);
                        }
                    }
                    if std::fs::remove_file(&p).is_ok() {
                        deleted_files.push(p);
                    }
                }
                Source::Import => {
                    let copies = imported_dir(data_dir).join(&model.id);
                    if p.starts_with(&copies) && std::fs::remove_file(&p).is_ok() {
                        deleted_files.push(p);
                    }
                }
            }
        }
        let _ = std::fs::remove_dir(imported_dir(data_dir).join(&model.id));
    }
    Ok(Removed { model, deleted_files })
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelUsage {
    pub model: InstalledModel,
    /// Bytes on disk now (model + projector); 0 when the files are missing.
    pub on_disk_bytes: u64,
    pub present: bool,
    /// Whether the model reads images: it has its vision projector (mmproj) on disk.
    pub reads_images: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    pub models: Vec<ModelUsage>,
    pub total_bytes: u64,
    pub free_bytes: Option<u64>,
}

/// Installed models with their size on disk, and the free space where downloads go.
pub async fn disk_usage(store: &Store, download_dir: &Path) -> Result<DiskUsage, ModelsError> {
    let mut models = Vec::new();
    let mut total_bytes = 0;
    for m in registry::list(store).await? {
        let size = |p: &Path| std::fs::metadata(p).map(|md| md.len()).ok();
        let main = size(&m.path);
        let mm = m.mmproj_path.as_deref().and_then(size).unwrap_or(0);
        let on_disk = main.unwrap_or(0) + mm;
        total_bytes += on_disk;
        let reads_images = m.mmproj_path.as_deref().is_some_and(Path::is_file);
        models.push(ModelUsage { present: main.is_some(), on_disk_bytes: on_disk, reads_images, model: m });
    }
    Ok(DiskUsage { models, total_bytes, free_bytes: hub::free_disk_bytes(download_dir).ok() })
}
