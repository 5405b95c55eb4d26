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
        Self::start_model(&super::test_model(), extra)
    }

    /// `start` with another GGUF file (an `mmproj*.gguf` beside it is its vision projector).
    pub fn start_model(model: &std::path::Path, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let set = hearth(dir.path())
            .args(["settings", "set", "contextSize=1024", "temperature=0", "seed=1"])
            .output()
            .unwrap();
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        let mut child = hearth(dir.path())
            .args(["serve", "--port", "0", "--model"])
            .arg(model)
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

    /// The server's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
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

/// llama.cpp's `llama-server` on the test model (`HEARTH_LLAMA_SERVER`: its binary), on a free
/// loopback port with an API key, 2 threads and a 1024-token context, ready to answer.
pub struct LlamaServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl LlamaServer {
    pub fn start(key: &str) -> LlamaServer {
        let bin = std::env::var_os("HEARTH_LLAMA_SERVER").expect(
            "HEARTH_LLAMA_SERVER must name llama-server (scripts/bench-vs-llamacpp --build-only --with-server)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .arg("-m")
            .arg(super::test_model())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "1024", "-t", "2", "--api-key", key])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = LlamaServer { child, url: format!("http://127.0.0.1:{port}") };
        // /health answers 503 while the model loads, 200 once it can serve.
        for _ in 0..600 {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/health", server.url)])
                .output()
                .unwrap();
            if out.stdout == b"200" {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("llama-server did not become ready at {}", server.url);
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
