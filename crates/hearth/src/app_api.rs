//! What the desktop app needs from the services and nothing else provides: the app's settings
//! (one validated record, stored as JSON) and the sampling parameters they give.

use engine::sampler::SamplingParams;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::store::settings::SettingKey;
use crate::store::{Store, StoreError};

/// The app's settings live in one row so a patch is applied and stored atomically.
pub const APP_SETTINGS: SettingKey<AppSettings> = SettingKey::new("app_settings");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Gpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ko,
    En,
}

/// The settings page's fields (ui/IPC.md `Settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppSettings {
    pub system_prompt: String,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: i64,
    pub min_p: f64,
    pub repeat_penalty: f64,
    pub seed: Option<i64>,
    pub context_size: i64,
    pub threads: Option<i64>,
    pub device: DeviceChoice,
    pub theme: Theme,
    pub language: Language,
}

impl Default for AppSettings {
    /// Gemma's recommended sampling; a context that fits comfortably on a laptop.
    fn default() -> Self {
        let s = SamplingParams::default();
        Self {
            system_prompt: String::new(),
            temperature: f64::from(s.temperature),
            top_p: f64::from(s.top_p),
            top_k: s.top_k as i64,
            min_p: f64::from(s.min_p),
            repeat_penalty: f64::from(s.repeat_penalty),
            seed: None,
            context_size: 4096,
            threads: None,
            device: DeviceChoice::Auto,
            theme: Theme::System,
            language: Language::Ko,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A field out of range or of the wrong type; the message names the field and what is allowed.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Largest context the settings accept; Gemma 3 models go up to 128k tokens.
pub const MAX_CONTEXT: i64 = 131_072;
/// Upper bound for the thread count: more than this is never useful on a desktop.
pub const MAX_THREADS: i64 = 256;

fn range_f(name: &str, v: f64, lo: f64, hi: f64) -> Result<(), SettingsError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(SettingsError::Invalid(format!("{name} must be between {lo} and {hi}")))
    }
}

fn range_i(name: &str, v: i64, lo: i64, hi: i64) -> Result<(), SettingsError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(SettingsError::Invalid(format!("{name} must be between {lo} and {hi}")))
    }
}

impl AppSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        range_f("temperature", self.temperature, 0.0, 2.0)?;
        range_f("topP", self.top_p, 0.0, 1.0)?;
        range_i("topK", self.top_k, 0, 1000)?;
        range_f("minP", self.min_p, 0.0, 1.0)?;
        range_f("repeatPenalty", self.repeat_penalty, 0.5, 2.0)?;
        if let Some(seed) = self.seed {
            range_i("seed", seed, 0, i64::from(u32::MAX))?;
        }
        range_i("contextSize", self.context_size, 256, MAX_CONTEXT)?;
        if let Some(t) = self.threads {
            range_i("threads", t, 1, MAX_THREADS)?;
        }
        Ok(())
    }

    /// These settings with the fields of `patch` (a JSON object with some of the fields)
    /// replaced. Unknown fields, wrong types and out-of-range values reject the whole patch.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<AppSettings, SettingsError> {
        let serde_json::Value::Object(fields) = patch else {
            return Err(SettingsError::Invalid("settings must be an object of fields".into()));
        };
        let serde_json::Value::Object(mut merged) =
            serde_json::to_value(self).map_err(|e| SettingsError::Invalid(e.to_string()))?
        else {
            return Err(SettingsError::Invalid("settings are not an object".into()));
        };
        for (k, v) in fields {
            if !merged.contains_key(k) {
                return Err(SettingsError::Invalid(format!("unknown setting: {k}")));
            }
            let mut one = merged.clone();
            one.insert(k.clone(), v.clone());
            // Field by field, so the error names the field whose value has the wrong type.
            serde_json::from_value::<AppSettings>(serde_json::Value::Object(one))
                .map_err(|_| SettingsError::Invalid(format!("{k} has the wrong type of value")))?;
            merged.insert(k.clone(), v.clone());
        }
        let next: AppSettings = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        next.validate()?;
        Ok(next)
    }

    /// The stored settings, or the defaults before anything was saved.
    pub async fn load(store: &Store) -> Result<AppSettings, SettingsError> {
        Ok(store.get_setting(&APP_SETTINGS).await?.unwrap_or_default())
    }

    /// Validates `patch` against the stored settings and stores the result.
    pub async fn update(store: &Store, patch: &serde_json::Value) -> Result<AppSettings, SettingsError> {
        let next = Self::load(store).await?.patched(patch)?;
        store.set_setting(&APP_SETTINGS, &next).await?;
        Ok(next)
    }

    /// The sampler's parameters; no seed means a fresh random one for each reply.
    pub fn sampling(&self) -> SamplingParams {
        let base = SamplingParams::default();
        SamplingParams {
            temperature: self.temperature as f32,
            top_k: self.top_k.max(0) as usize,
            top_p: self.top_p as f32,
            min_p: self.min_p as f32,
            repeat_penalty: self.repeat_penalty as f32,
            seed: match self.seed {
                Some(s) => s as u64,
                None => SamplingParams::random_seed(),
            },
            ..base
        }
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (`2026-11-27T12:25:10.123Z`), the form the
/// app's front end parses.
pub fn rfc3339_utc(ms: i64) -> String {
    let t = crate::utc::Utc::from_unix_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid() {
        AppSettings::default().validate().unwrap();
    }

    #[test]
    fn a_patch_changes_only_its_fields() {
        let s = AppSettings::default()
            .patched(&json!({"temperature": 0.5, "language": "en", "seed": 7}))
            .unwrap();
        assert_eq!(s.temperature, 0.5);
        assert_eq!(s.language, Language::En);
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.top_k, AppSettings::default().top_k);
        assert_eq!(s.sampling().seed, 7);
    }

    #[test]
    fn out_of_range_values_name_the_field_and_range() {
        let e = AppSettings::default().patched(&json!({"temperature": 3.0})).unwrap_err();
        assert_eq!(e.to_string(), "temperature must be between 0 and 2");
        let e = AppSettings::default().patched(&json!({"contextSize": 10})).unwrap_err();
        assert!(e.to_string().starts_with("contextSize must be between 256"), "{e}");
        let e = AppSettings::default().patched(&json!({"threads": 0})).unwrap_err();
        assert!(e.to_string().starts_with("threads must be between 1"), "{e}");
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_rejected() {
        let e = AppSettings::default().patched(&json!({"theme": "purple"})).unwrap_err();
        assert_eq!(e.to_string(), "theme has the wrong type of value");
        let e = AppSettings::default().patched(&json!({"colour": 1})).unwrap_err();
        assert_eq!(e.to_string(), "unknown setting: colour");
        let e = AppSettings::default().patched(&json!([1])).unwrap_err();
        assert!(e.to_string().contains("object"), "{e}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_utc(1_795_782_310_000), "2026-11-27T12:25:10.000Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[tokio::test]
    async fn settings_persist_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(AppSettings::load(&store).await.unwrap(), AppSettings::default());
        AppSettings::update(&store, &json!({"theme": "dark"})).await.unwrap();
        let bad = AppSettings::update(&store, &json!({"topP": 2})).await;
        assert!(matches!(bad, Err(SettingsError::Invalid(_))));
        let again = AppSettings::load(&store).await.unwrap();
        assert_eq!(again.theme, Theme::Dark);
        assert_eq!(again.top_p, AppSettings::default().top_p);
    }
}
