//! The TypeScript side of the types front ends exchange with the runtime, generated from the
//! Rust types with `ts-rs`, so the UI cannot drift from them. The desktop shell adds its own
//! DTOs and writes the whole file (`ui/src/generated/ipc.ts`); a test there fails when the file
//! is stale.

use std::path::Path;

use ts_rs::{Config, TS};

use crate::app_api::{AppSettings, DeviceChoice, Language, SettingRange, Theme};
use crate::error::{ErrorCode, ErrorDetails, HearthError};
use crate::runtime::{Device, ModelPhase, ModelStatus, ReplyStats, ReplyStop, TurnEvent};

/// Sizes and counts are plain JavaScript numbers: none comes near 2^53.
pub fn config() -> Config {
    Config::new().with_large_int("number")
}

/// `export type T = ...;` for one type.
pub fn decl<T: TS>() -> String {
    format!("export {}", T::decl(&config()))
}

/// The runtime's types, in an order where each is declared before the types that use it.
pub fn declarations() -> Vec<String> {
    vec![
        decl::<ErrorCode>(),
        decl::<ErrorDetails>(),
        decl::<HearthError>(),
        decl::<ModelPhase>(),
        decl::<Device>(),
        decl::<ModelStatus>(),
        decl::<ReplyStop>(),
        decl::<ReplyStats>(),
        decl::<TurnEvent>(),
        decl::<DeviceChoice>(),
        decl::<Theme>(),
        decl::<Language>(),
        decl::<AppSettings>(),
        decl::<SettingRange>(),
    ]
}

/// Every error code as a value, for front ends that check a code they received.
fn error_codes() -> String {
    let names: Vec<String> = ErrorCode::ALL.iter().map(|c| format!("\"{}\"", c.as_str())).collect();
    format!("export const ERROR_CODES: readonly ErrorCode[] = [{}];", names.join(", "))
}

/// The generated file: a header, then `declarations`, then the error codes as a value.
pub fn render(declarations: &[String]) -> String {
    let mut out = String::from(
        "// Generated from the Rust types by `hearth::bindings` (src-tauri's bindings test). Do not edit:\n\
         // run `UPDATE_BINDINGS=1 cargo test -p hearth-app bindings` after changing a Rust type.\n\n",
    );
    for d in declarations {
        out.push_str(d.trim_end());
        out.push_str("\n\n");
    }
    out.push_str(&error_codes());
    out.push('\n');
    out
}

/// Compares `path` with `text`; with `UPDATE_BINDINGS` set, writes it instead. The error says
/// how to fix a stale file.
pub fn check_or_update(path: &Path, text: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        return std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    let old = std::fs::read_to_string(path).unwrap_or_default();
    if old == text {
        Ok(())
    } else {
        Err(format!(
            "{} is stale: run `UPDATE_BINDINGS=1 cargo test -p hearth-app bindings` and commit the result",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_in_the_typescript_union() {
        let d = decl::<ErrorCode>();
        for c in ErrorCode::ALL {
            assert!(d.contains(&format!("\"{}\"", c.as_str())), "{c} missing from {d}");
        }
        assert!(decl::<ErrorDetails>().contains("size?: number"), "{}", decl::<ErrorDetails>());
    }
}
