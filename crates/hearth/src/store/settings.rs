//! Settings: key/value rows holding JSON, read and written through typed keys.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{now_ms, Result, Store, StoreError};

/// A setting's name together with the Rust type of its value, so a key cannot be read as the
/// wrong type by accident.
pub struct SettingKey<T> {
    pub name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> SettingKey<T> {
    pub const fn new(name: &'static str) -> Self {
        Self { name, _type: PhantomData }
    }
}

// The keys live with their owners: the app's settings (`app_api::APP_SETTINGS`, one record that
// the CLI reads and writes too) and the last-used model (`models::last_used`).

impl Store {
    pub async fn get_setting<T: Serialize + DeserializeOwned>(&self, key: &SettingKey<T>) -> Result<Option<T>> {
        let raw: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key.name)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        raw.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|source| StoreError::SettingType { key: key.name.to_string(), source })
    }

    pub async fn set_setting<T: Serialize + DeserializeOwned>(&self, key: &SettingKey<T>, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)
            .map_err(|source| StoreError::SettingType { key: key.name.to_string(), source })?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key.name)
        .bind(json)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn remove_setting<T>(&self, key: &SettingKey<T>) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = ?")
            .bind(key.name)
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
