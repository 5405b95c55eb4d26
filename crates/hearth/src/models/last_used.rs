//! The model the desktop app loaded last, kept as a setting so the next start can load it again.

use super::registry::{self, InstalledModel};
use super::ModelsError;
use crate::store::{SettingKey, Store, StoreError};

/// The registry id of the model the app loaded last.
pub const LAST_USED_MODEL: SettingKey<String> = SettingKey::new("last_used_model");

#[derive(Debug, thiserror::Error)]
pub enum LastUsedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Models(#[from] ModelsError),
}

/// What start-up finds.
#[derive(Debug, Clone, PartialEq)]
pub enum LastUsed {
    /// Nothing remembered.
    None,
    /// Still installed, its file present: load it.
    Installed(InstalledModel),
    /// It was remembered but cannot be loaded any more; it has been forgotten, for this reason.
    Forgotten { id: String, reason: String },
}

/// Remembers `id` as the model to load at the next start.
pub async fn remember(store: &Store, id: &str) -> Result<(), LastUsedError> {
    Ok(store.set_setting(&LAST_USED_MODEL, &id.to_string()).await?)
}

pub async fn forget(store: &Store) -> Result<(), LastUsedError> {
    Ok(store.remove_setting(&LAST_USED_MODEL).await?)
}

/// The remembered model if it is still registered and its file still exists; otherwise the
/// setting is removed and the reason returned (for the log).
pub async fn remembered(store: &Store) -> Result<LastUsed, LastUsedError> {
    let id = match store.get_setting(&LAST_USED_MODEL).await {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(LastUsed::None),
        Err(StoreError::SettingType { .. }) => {
            forget(store).await?;
            return Ok(LastUsed::Forgotten { id: String::new(), reason: "the stored value was not a model id".into() });
        }
        Err(e) => return Err(e.into()),
    };
    let reason = match registry::get(store, &id).await? {
        Some(m) if m.path.is_file() => return Ok(LastUsed::Installed(m)),
        Some(m) => format!("its file {} no longer exists", m.path.display()),
        None => "it is no longer installed".to_string(),
    };
    forget(store).await?;
    Ok(LastUsed::Forgotten { id, reason })
}
