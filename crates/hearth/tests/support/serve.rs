//! `hearth serve` as a child process: the built binary on a free port (`--port 0`; the port is
//! read from the JSON line it prints) over a fresh data folder, greedy sampling.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT/v1`
    pub url: String,
    pub model: String,
    /// The server's stderr lines so far (its log).
    pub log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// The `hearth` binary: cargo's, or `HEARTH_TEST_BIN` (for a target folder several checkouts
/// share, where `target/debug/hearth` may be another checkout's build).
pub fn hearth(dir: &std::path::Path) -> Command {
    let bin = std::env::var_os("HEARTH_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_hearth").into());
    let mut c = Command::new(bin);
    c.arg("--data-dir").arg(dir);
    c
}

impl Server {
    /// Serves the test model with `extra` flags; greedy sampling, a 1024-token context.
    pub fn start(extra: &[&str]) -> Server {
        let model = super::test_model();
        let dir = tempfile::tempdir().unwrap();
        let set = hearth(dir.path())
            .args(["settings", "set", "contextSize=1024", "temperature=0", "seed=1"])
            .output()
            .unwrap();
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        let mut child = hearth(dir.path())
            .args(["serve", "--port", "0", "--model"])
            .arg(&model)
            .args(extra)
            .env("RUST_LOG", "hearth=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let log = log.clone();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let v: Value = serde_json::from_str(&first)
            .unwrap_or_else(|_| panic!("no address line from hearth serve: {first:?}; log: {:?}", log.lock().unwrap()));
        Server {
            child,
            url: v["url"].as_str().unwrap().to_string(),
            model: v["model"].as_str().unwrap().to_string(),
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
