//! Extracted text kept by content, so a document is extracted once: `data_dir/documents/text/
//! <sha256 of the bytes>-<kind>.json`, written whole (temp file + rename). The same bytes
//! attached twice, or summarized again, are not parsed again.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::extract::{extract_bytes, DocKind, Extracted, Limits};
use super::{DocumentError, Result};

/// [`super::extract_file`], answered from the cache under `data_dir` when these bytes were
/// extracted before. A cache that cannot be written only costs the next call a re-extraction.
pub fn extract_file_cached(data_dir: &Path, path: &Path, limits: &Limits) -> Result<Extracted> {
    let io = |source| DocumentError::Io { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let what = path.display().to_string();
    let size = file.metadata().map_err(io)?.len();
    if size > limits.max_input_bytes {
        return Err(DocumentError::TooLarge { what, size, limit: limits.max_input_bytes });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limits.max_input_bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    let kind = DocKind::from_path(path);
    let entry = entry_path(data_dir, &bytes, kind);
    if let Some(hit) = std::fs::read(&entry).ok().and_then(|b| serde_json::from_slice::<Extracted>(&b).ok()) {
        return Ok(hit);
    }
    let doc = extract_bytes(bytes, kind, &what, limits)?;
    if let Err(e) = store(&entry, &doc) {
        log::warn!("cannot keep the extracted text of {what} in {}: {e}", entry.display());
    }
    Ok(doc)
}

fn entry_path(data_dir: &Path, bytes: &[u8], kind: DocKind) -> PathBuf {
    let sha: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    data_dir.join("documents").join("text").join(format!("{sha}-{}.json", kind.as_str()))
}

fn store(entry: &Path, doc: &Extracted) -> std::io::Result<()> {
    if let Some(dir) = entry.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = entry.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(doc).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, entry)
}
