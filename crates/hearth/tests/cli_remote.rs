//! `hearth models remote add|list|remove`, `models fit` and `chat` on a remote model, against
//! `hearth serve` (a child process on the real 270M model). The key never reaches the
//! database or the output.

mod support;

use serde_json::Value;
use support::serve::{hearth, Server};

const KEY: &str = "cli-remote-key-77";

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = hearth(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn add_check_chat_fit_and_remove_a_remote_model() {
    let server = Server::start(&["--api-key", KEY]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let (ok, out, err) = run(d, &["models", "remote", "add", "lab", "--url", &server.url, "--key", KEY, "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["remote"]["name"], "lab");
    assert_eq!(v["remote"]["has_key"], true);
    assert_eq!(v["check"]["ok"], true, "{v}");
    assert_eq!(v["check"]["models"][0], server.model.as_str());
    assert!(!out.contains(KEY));

    // A second one with a wrong key: added, but the check says why it fails.
    let (ok, out, _) = run(
        d,
        &["models", "remote", "add", "lab2", "--url", &server.url, "--model", &server.model, "--key", "nope", "--json"],
    );
    assert!(ok);
    let v = json(&out);
    assert_eq!(v["remote"]["model"], server.model.as_str(), "{v}");
    assert_eq!(v["check"]["ok"], false);
    assert!(v["check"]["error"].as_str().unwrap().contains("401"), "{v}");

    let (ok, out, err) = run(d, &["models", "remote", "list", "--check", "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lab", "lab2"]);
    assert_eq!((v[0]["check"]["ok"].as_bool(), v[1]["check"]["ok"].as_bool()), (Some(true), Some(false)));

    let (ok, out, err) = run(d, &["models", "fit", "--model", "lab", "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!((v["remote"].as_bool(), v["local_bytes"].as_u64()), (Some(true), Some(0)), "{v}");

    let (ok, out, err) = run(
        d,
        &["chat", "--model", "lab", "--message", "Say hello.", "--max-tokens", "6", "--temperature", "0", "--json"],
    );
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["state"], "complete", "{v}");
    assert!(!v["reply"].as_str().unwrap().is_empty());
    let (ok, out, _) = run(d, &["history", "show", &v["conversation_id"].to_string(), "--json"]);
    assert!(ok);
    assert!(out.contains("remote at http://127.0.0.1"), "the stored reply names its backend: {out}");

    // Same name as an existing one, or a URL with credentials: refused.
    let (ok, _, err) = run(d, &["models", "remote", "add", "lab", "--url", &server.url]);
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = run(d, &["models", "remote", "add", "x", "--url", "http://u:p@127.0.0.1:1"]);
    assert!(!ok && err.contains("--key"), "{err}");

    for name in ["lab", "lab2"] {
        let (ok, _, err) = run(d, &["models", "remote", "remove", name]);
        assert!(ok, "{err}");
    }
    let (_, out, _) = run(d, &["models", "remote", "list", "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
    // Nothing of the key is left on disk.
    assert!(!d.join("remote_keys").join("lab").exists());
    for entry in walk(d) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "{} holds the key", entry.display());
    }
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
