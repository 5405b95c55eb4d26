//! The `hearth` binary end to end, with HF_ENDPOINT pointed at a fake Hub on 127.0.0.1.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::fake_hub::{FakeHub, FileSpec};
use support::gguf_gen;

fn hearth(data: &Path, hf_home: &Path, hub: &FakeHub, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .output()
        .expect("run hearth")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// A vision model downloads with its projector (`catalog::IMAGE_INPUT`), is listed as reading
/// images, and is removed with both files.
#[test]
fn download_list_remove_a_vision_model_through_the_cli_with_its_projector() {
    let hub = FakeHub::start();
    let model = gguf_gen::gemma3(300_000);
    let proj = gguf_gen::mmproj();
    hub.add("ggml-org/gemma-3-4b-it-qat-GGUF", "gemma-3-4b-it-qat-Q4_0.gguf", FileSpec::new(model.clone()));
    hub.add("ggml-org/gemma-3-4b-it-GGUF", "mmproj-model-f16.gguf", FileSpec::new(proj.clone()));
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();

    let out = hearth(data.path(), hf.path(), &hub, &["models", "download", "gemma-3-4b-it", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    let kinds: Vec<_> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "finished").count(), 2, "model and projector: {kinds:?}");
    assert!(kinds.contains(&"progress") && kinds.contains(&"verifying"), "{kinds:?}");
    let installed = lines.last().unwrap();
    assert_eq!(installed["id"], "gemma-3-4b-it-q4_0");
    assert_eq!(installed["source"], "download");
    let path = installed["path"].as_str().unwrap();
    assert!(
        path.starts_with(hf.path().join("hub/models--ggml-org--gemma-3-4b-it-qat-GGUF/snapshots").to_str().unwrap()),
        "{path}"
    );
    assert_eq!(std::fs::read(path).unwrap(), model);
    let mmproj = installed["mmproj_path"].as_str().unwrap_or_else(|| panic!("no projector: {installed}")).to_string();
    assert_eq!(std::fs::read(&mmproj).unwrap(), proj);
    assert!(hub.log().iter().any(|r| r.path.contains("mmproj")), "the projector was not requested");

    let out = hearth(data.path(), hf.path(), &hub, &["models", "list", "--json"]);
    assert!(out.status.success());
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(usage["models"][0]["model"]["id"], "gemma-3-4b-it-q4_0");
    assert_eq!(usage["total_bytes"], (model.len() + proj.len()) as u64);
    assert_eq!(usage["models"][0]["reads_images"], true);

    let out = hearth(data.path(), hf.path(), &hub, &["models", "remove", "gemma-3-4b-it-q4_0", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed["deleted_files"].as_array().unwrap().len(), 4, "blob + link of the model and projector");
    assert!(!Path::new(path).exists() && !Path::new(&mmproj).exists());
}

#[test]
fn gated_download_fails_with_a_token_hint_and_registers_nothing() {
    let hub = FakeHub::start();
    hub.add(
        "google/gemma-3-1b-it-qat-q4_0-gguf",
        "gemma-3-1b-it-q4_0.gguf",
        FileSpec { token: Some("hf_x".into()), ..FileSpec::new(gguf_gen::gemma3(0)) },
    );
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let out = hearth(data.path(), hf.path(), &hub, &["models", "download", "gemma-3-1b-it", "--quant", "q4_0-google"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401") && err.contains("gated") && err.contains("hearth models login"), "{err}");
    let out = hearth(data.path(), hf.path(), &hub, &["models", "list", "--json"]);
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(usage["models"].as_array().unwrap().len(), 0);
}

#[test]
fn catalog_fit_list_and_import_never_touch_the_network() {
    let hub = FakeHub::start();
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let gguf = data.path().join("m.gguf");
    gguf_gen::write(&gguf, &gguf_gen::gemma3(0));
    for args in [
        vec!["models", "catalog", "--json"],
        vec!["models", "fit", "--json"],
        vec!["models", "import", gguf.to_str().unwrap(), "--id", "m"],
        vec!["models", "list"],
    ] {
        let out = hearth(data.path(), hf.path(), &hub, &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(hub.log().is_empty(), "offline commands made requests: {:?}", hub.log());
}

#[test]
fn fit_and_list_say_which_device_models_run_on_and_why() {
    let hub = FakeHub::start();
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let out = hearth(data.path(), hf.path(), &hub, &["models", "fit", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let device = &report["memory"]["device"];
    let want = engine::device::report();
    assert_eq!(device["device"], want.device.as_str(), "{device}");
    assert_eq!(device["reason"], want.reason.as_str());
    let line = format!("{} ({})", want.device.as_str(), want.reason);
    for args in [&["models", "fit"][..], &["models", "list"][..]] {
        let out = hearth(data.path(), hf.path(), &hub, args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&line), "{args:?} does not say `{line}`:\n{text}");
    }
}

#[test]
fn gated_download_works_with_a_stored_token_or_hf_token() {
    let hub = FakeHub::start();
    let bytes = gguf_gen::gemma3(1000);
    hub.add(
        "google/gemma-3-1b-it-qat-q4_0-gguf",
        "gemma-3-1b-it-q4_0.gguf",
        FileSpec { token: Some("hf_right".into()), ..FileSpec::new(bytes.clone()) },
    );
    let args = ["models", "download", "gemma-3-1b-it", "--quant", "Q4_0-google", "--json"];

    // 1. `hearth models login` stores the token (stdin), owner-only, outside the database.
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["models", "login"])
        .env("HF_HOME", hf.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"hf_right\n").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let out = hearth(data.path(), hf.path(), &hub, &args);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_lines(&out).last().unwrap()["id"], "gemma-3-1b-it-q4_0-google");
    let db_files: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("hearth.db"))
        .collect();
    assert!(!db_files.is_empty());
    for f in db_files {
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"hf_right"), "the token is in {}", f.path().display());
    }

    // 2. HF_TOKEN, with nothing stored.
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", hf.path())
        .env("HF_TOKEN", "hf_right")
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hf_right"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hf_right"));
}
