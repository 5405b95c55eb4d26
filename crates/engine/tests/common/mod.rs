//! Shared by the integration tests: where the real test model and the llama.cpp references are.
#![allow(dead_code)]

use std::path::PathBuf;

/// The Gemma 3 270M test GGUF. Missing is a failure, never a skip: `scripts/fetch-test-model`
/// installs it.
pub fn test_model() -> PathBuf {
    let path = std::env::var_os("HEARTH_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/hearth-test/gemma-3-270m-q4_k_m.gguf")
    });
    assert!(
        path.is_file(),
        "test model missing at {} — run scripts/fetch-test-model (or set HEARTH_TEST_MODEL)",
        path.display()
    );
    path
}

/// llama.cpp's reference run on the test model (copied from shared/refs).
pub fn refs() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llama-270m.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("refs JSON")
}

pub mod tiny;
pub mod vision;

/// The device the model tests run on: the CPU, or `HEARTH_TEST_DEVICE=cuda|metal` (what
/// scripts/gpu-check sets on a machine with a GPU, so the same fidelity bars judge that path).
pub fn device() -> candle_core::Device {
    let want = std::env::var("HEARTH_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let pref: engine::device::DevicePreference = want.parse().expect("HEARTH_TEST_DEVICE");
    engine::device::select(pref).expect("HEARTH_TEST_DEVICE names a device this build and machine have")
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("array of ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}
