//! The Hugging Face token for gated repos. Looked up in HF_TOKEN, then Hearth's own token file
//! (mode 0600 in the data dir), then the standard Hugging Face token file. It is never written to
//! the database or logs: its Debug form is redacted.

use std::path::{Path, PathBuf};

use super::ModelsError;

/// A secret Hearth keeps for the user (this token, a remote model's API key). Its Debug form is
/// redacted, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// None for an empty or whitespace-only secret.
    pub fn new(secret: &str) -> Option<Self> {
        let t = secret.trim();
        (!t.is_empty()).then(|| Secret(t.to_string()))
    }
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The Hugging Face read token.
pub type HfToken = Secret;

/// Where Hearth keeps a token the user gave it.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hf_token")
}

/// HF_TOKEN, else Hearth's token file, else the Hugging Face CLI's token file.
pub fn resolve(data_dir: &Path) -> Option<HfToken> {
    if let Some(t) = std::env::var("HF_TOKEN").ok().as_deref().and_then(HfToken::new) {
        return Some(t);
    }
    if let Some(t) = std::fs::read_to_string(token_path(data_dir)).ok().as_deref().and_then(HfToken::new) {
        return Some(t);
    }
    hf_hub::Cache::new(super::hub::hf_cache_from_env()).token().as_deref().and_then(HfToken::new)
}

/// Stores the token readable by the owner only.
pub fn save(data_dir: &Path, token: &HfToken) -> Result<PathBuf, ModelsError> {
    let path = token_path(data_dir);
    std::fs::create_dir_all(data_dir).map_err(ModelsError::io("cannot create", data_dir))?;
    write_private(&path, token.secret().as_bytes()).map_err(ModelsError::io("cannot write", &path))?;
    Ok(path)
}

/// Writes a secret to `path`, readable and writable by the owner only (also when the file
/// existed with a wider mode). Shared by every secret Hearth keeps: this token, remote API keys.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its old mode on open: tighten it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)
}

/// Forgets Hearth's stored token (HF_TOKEN and the Hugging Face CLI's file are left alone).
pub fn clear(data_dir: &Path) -> Result<bool, ModelsError> {
    let path = token_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ModelsError::Io { what: "cannot remove", path, source: e }),
    }
}
