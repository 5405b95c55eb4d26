//! The app binary itself, before any window: a data folder that cannot be opened is a clear
//! error on stderr and a non-zero exit, not a panic or an empty window. (Also makes `cargo test`
//! build the binary that tests/e2e/run drives.)

use std::process::Command;

#[test]
fn unusable_data_dir_is_a_clear_error_without_a_window() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the data folder should be.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-app"))
        .arg("--data-dir")
        .arg(&file)
        // No display: the app must fail on the data folder before it needs one.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the app started on an unusable data folder: {stderr}");
    assert!(stderr.contains("cannot open the data folder"), "stderr: {stderr}");
    assert!(stderr.contains("not-a-folder"), "the message names the folder: {stderr}");
    assert!(!stderr.contains("panicked"), "a panic instead of an error: {stderr}");
}

#[test]
fn data_dir_flag_without_a_value_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-app"))
        .arg("--data-dir")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--data-dir needs a folder"), "stderr: {stderr}");
}
