//! Helpers shared by the integration tests: the real test model, a fake Hugging Face Hub and a
//! GGUF writer.
#![allow(dead_code)]

pub mod fake_hub;
pub mod gguf_gen;

/// The Gemma 3 270M test GGUF (`HEARTH_TEST_MODEL`, else where `scripts/fetch-test-model` puts
/// it). Missing is a failure, never a skip.
pub fn test_model() -> std::path::PathBuf {
    let p = std::env::var_os("HEARTH_TEST_MODEL").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
        home.join(".cache/hearth-test/gemma-3-270m-q4_k_m.gguf")
    });
    assert!(
        p.is_file(),
        "test model missing at {} (run scripts/fetch-test-model or set HEARTH_TEST_MODEL)",
        p.display()
    );
    p
}
pub mod runtime;
pub mod serve;
