//! What the desktop app needs from the services and nothing else provides: the app's settings
//! (one validated record, stored as JSON) and the sampling parameters they give.

use engine::sampler::SamplingParams;
use engine::vision::preprocess::PanScan;
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
    /// Pan & Scan: an elongated image is read as the whole image plus up to 4 crops (the
    /// reference processor's rule, [`PanScan::default`]), at up to 5 times the soft tokens. Off
    /// by default, as in the reference. Absent from settings stored before it existed.
    #[serde(default)]
    pub pan_scan: bool,
}

/// The sampler's f32 defaults as the decimals they were written as (0.95, not
/// 0.949999988079071, which is what a settings page would otherwise show).
fn decimal(x: f32) -> f64 {
    (f64::from(x) * 1e6).round() / 1e6
}

impl Default for AppSettings {
    /// Gemma's recommended sampling; a context that fits comfortably on a laptop.
    fn default() -> Self {
        let s = SamplingParams::default();
        Self {
            system_prompt: String::new(),
            temperature: decimal(s.temperature),
            top_p: decimal(s.top_p),
            top_k: s.top_k as i64,
            min_p: decimal(s.min_p),
            repeat_penalty: decimal(s.repeat_penalty),
            seed: None,
            context_size: 4096,
            threads: None,
            device: DeviceChoice::Auto,
            theme: Theme::System,
            language: Language::Ko,
            pan_scan: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A field out of range or of the wrong type; the message names the field and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// A number outside its field's range (the row of [`SETTING_RANGES`]).
    #[error("{field} must be between {min} and {max}")]
    OutOfRange { field: &'static str, min: f64, max: f64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Largest context the settings accept; Gemma 3 models go up to 128k tokens.
pub const MAX_CONTEXT: i64 = 131_072;
/// Upper bound for the thread count: more than this is never useful on a desktop.
pub const MAX_THREADS: i64 = 256;

/// The allowed values of one numeric setting. `field` is its JSON name (as in [`AppSettings`]);
/// `step` is what the settings page steps by (a hint: values between steps are accepted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SettingRange {
    #[ts(type = "keyof AppSettings")]
    pub field: &'static str,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    /// Whole numbers only.
    pub integer: bool,
    /// `null` is allowed (a random seed, automatic threads).
    pub nullable: bool,
}

const fn real(field: &'static str, min: f64, max: f64, step: f64) -> SettingRange {
    SettingRange { field, min, max, step, integer: false, nullable: false }
}

const fn whole(field: &'static str, min: i64, max: i64, step: i64, nullable: bool) -> SettingRange {
    SettingRange { field, min: min as f64, max: max as f64, step: step as f64, integer: true, nullable }
}

/// Every numeric setting's range: what `validate` enforces and what the settings page offers
/// (the shell sends this table to the UI; the CLI checks its flags against it).
pub const SETTING_RANGES: &[SettingRange] = &[
    real("temperature", 0.0, 2.0, 0.05),
    real("topP", 0.0, 1.0, 0.01),
    whole("topK", 0, 1000, 1, false),
    real("minP", 0.0, 1.0, 0.01),
    real("repeatPenalty", 0.5, 2.0, 0.05),
    whole("seed", 0, u32::MAX as i64, 1, true),
    whole("contextSize", 256, MAX_CONTEXT, 256, false),
    whole("threads", 1, MAX_THREADS, 1, true),
];

impl SettingRange {
    /// `Ok` when `v` is a finite number within the range; the error names the field and range.
    pub fn check(&self, v: f64) -> Result<(), SettingsError> {
        if v.is_finite() && v >= self.min && v <= self.max {
            Ok(())
        } else {
            Err(SettingsError::OutOfRange { field: self.field, min: self.min, max: self.max })
        }
    }
}

impl AppSettings {
    /// The numeric settings' ranges ([`SETTING_RANGES`]).
    pub fn ranges() -> &'static [SettingRange] {
        SETTING_RANGES
    }

    /// The range of the numeric setting `field` (its JSON name).
    pub fn range(field: &str) -> Option<&'static SettingRange> {
        SETTING_RANGES.iter().find(|r| r.field == field)
    }

    /// Each numeric field's JSON name and value (None: unset, which a nullable field allows).
    fn numbers(&self) -> [(&'static str, Option<f64>); 8] {
        [
            ("temperature", Some(self.temperature)),
            ("topP", Some(self.top_p)),
            ("topK", Some(self.top_k as f64)),
            ("minP", Some(self.min_p)),
            ("repeatPenalty", Some(self.repeat_penalty)),
            ("seed", self.seed.map(|v| v as f64)),
            ("contextSize", Some(self.context_size as f64)),
            ("threads", self.threads.map(|v| v as f64)),
        ]
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        for (field, value) in self.numbers() {
            let range = Self::range(field).ok_or_else(|| SettingsError::Invalid(format!("{field} has no range")))?;
            match value {
                Some(v) => range.check(v)?,
                None if range.nullable => {}
                None => return Err(SettingsError::Invalid(format!("{field} must be set"))),
            }
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

    /// The crop rule images are read with: the reference's when Pan & Scan is on.
    pub fn pan_scan_rule(&self) -> Option<PanScan> {
        self.pan_scan.then(PanScan::default)
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
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid() {
        AppSettings::default().validate().unwrap();
        // Shown as typed in the settings page, not as the f32's binary expansion.
        assert_eq!(AppSettings::default().top_p, 0.95);
    }

    #[test]
    fn a_patch_changes_only_its_fields() {
        let s = AppSettings::default().patched(&json!({"temperature": 0.5, "language": "en", "seed": 7})).unwrap();
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
    fn the_ranges_table_covers_every_numeric_field_by_its_json_name() {
        let json = serde_json::to_value(AppSettings::default()).unwrap();
        let names: Vec<&str> = AppSettings::ranges().iter().map(|r| r.field).collect();
        let numeric: Vec<&str> = AppSettings::default().numbers().iter().map(|(f, _)| *f).collect();
        assert_eq!(names, numeric);
        for r in AppSettings::ranges() {
            assert!(json.get(r.field).is_some(), "{} is not a settings field", r.field);
            assert!(r.min < r.max && r.step > 0.0, "{r:?}");
        }
        // The ranges validate enforces are the table's, at both ends.
        let r = AppSettings::range("repeatPenalty").unwrap();
        assert!(AppSettings::default().patched(&json!({"repeatPenalty": r.min})).is_ok());
        assert!(AppSettings::default().patched(&json!({"repeatPenalty": r.min - 0.01})).is_err());
        let k = AppSettings::range("topK").unwrap();
        assert!(AppSettings::default().patched(&json!({"topK": k.max as i64})).is_ok());
        assert!(AppSettings::default().patched(&json!({"topK": k.max as i64 + 1})).is_err());
        assert!(AppSettings::default().patched(&json!({"seed": null, "threads": null})).is_ok());
    }

    #[test]
    fn the_ui_mock_serves_the_same_ranges() {
        // ui/tests/mock answers `settings_ranges` with this file: it must be this table.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/tests/mock/settings-ranges.json");
        let text = std::fs::read_to_string(path).unwrap();
        let mock: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ours = serde_json::to_value(AppSettings::ranges()).unwrap();
        assert_eq!(mock, ours, "update {path} to:\n{}", serde_json::to_string_pretty(&ours).unwrap());
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
        assert!(matches!(bad, Err(SettingsError::OutOfRange { field: "topP", .. })), "{bad:?}");
        let again = AppSettings::load(&store).await.unwrap();
        assert_eq!(again.theme, Theme::Dark);
        assert_eq!(again.top_p, AppSettings::default().top_p);
    }

    #[test]
    fn pan_scan_is_off_by_default_and_a_boolean() {
        assert!(!AppSettings::default().pan_scan);
        assert_eq!(AppSettings::default().pan_scan_rule(), None);
        let on = AppSettings::default().patched(&json!({"panScan": true})).unwrap();
        assert_eq!(on.pan_scan_rule(), Some(PanScan::default()));
        let e = AppSettings::default().patched(&json!({"panScan": "yes"})).unwrap_err();
        assert_eq!(e.to_string(), "panScan has the wrong type of value");
        // Settings stored before the field existed still load, with it off.
        let mut old = serde_json::to_value(AppSettings::default()).unwrap();
        old.as_object_mut().unwrap().remove("panScan");
        let loaded: AppSettings = serde_json::from_value(old).unwrap();
        assert!(!loaded.pan_scan);
    }
}
