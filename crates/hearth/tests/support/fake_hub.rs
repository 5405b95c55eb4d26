//! A Hugging Face Hub stand-in on 127.0.0.1, speaking plain HTTP/1.1 like the Hub does for
//! LFS files: `HEAD/GET /{repo}/resolve/{rev}/{file}` answers 302 with X-Repo-Commit,
//! X-Linked-Etag (the sha256) and X-Linked-Size, pointing at `/cdn/{sha}`, which serves the
//! bytes with Range support. It records every request and counts the body bytes it sent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Clone, Default)]
pub struct FileSpec {
    pub bytes: Arc<Vec<u8>>,
    /// The sha256 the Hub announces (the real one unless a test lies).
    pub sha256: String,
    /// Serve these bytes instead of `bytes` (corruption in transit or at rest).
    pub served: Option<Arc<Vec<u8>>>,
    /// Require `Authorization: Bearer <token>`; 401 otherwise.
    pub token: Option<String>,
    /// Close the connection after this many body bytes, on the first `drops` GETs.
    pub drop_after: Option<u64>,
    pub drops: u32,
    /// Pause between 64 KiB chunks (so cancel and timeouts have something to interrupt).
    pub chunk_delay: Option<Duration>,
    /// Stall (send nothing more) after this many body bytes, until the client gives up.
    pub stall_after: Option<u64>,
    /// Answer range requests with the whole file (200), as some proxies do.
    pub ignore_range: bool,
    /// Answer the first this-many content GETs with 503.
    pub unavailable: u32,
}

impl FileSpec {
    pub fn new(bytes: Vec<u8>) -> Self {
        let sha256 = sha_hex(&bytes);
        FileSpec { bytes: Arc::new(bytes), sha256, ..Default::default() }
    }
}

pub fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range_start: Option<u64>,
    pub authorization: Option<String>,
    /// Body bytes written to the socket for this request.
    pub body_bytes_sent: u64,
    pub status: u16,
}

#[derive(Default)]
struct State {
    files: HashMap<String, FileSpec>, // key: "repo/file"
    log: Vec<Request>,
    gets_served: HashMap<String, u32>,
}

pub struct FakeHub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeHub {
    /// A hub client configuration pointed at this server: short timeouts and no retries, so a
    /// test that expects a failure gets it at once (tests override fields as they need).
    pub fn hub_config(&self, cache: &std::path::Path) -> hearth::models::HubConfig {
        hearth::models::HubConfig {
            endpoint: self.url.clone(),
            cache_dir: cache.to_path_buf(),
            token: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            retries: 0,
            retry_backoff: Duration::from_millis(10),
            reserve_bytes: 0,
        }
    }

    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let base = url.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &st, &base);
                });
            }
        });
        FakeHub { url, state }
    }

    pub fn add(&self, repo: &str, file: &str, spec: FileSpec) {
        self.state.lock().unwrap().files.insert(format!("{repo}/{file}"), spec);
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// The log once it holds `n` requests, or whatever is there after 10 s. The server logs a
    /// request after its response is written, so a client can see the answer first.
    pub fn wait_log(&self, n: usize) -> Vec<Request> {
        for _ in 0..1000 {
            let log = self.log();
            if log.len() >= n {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.log()
    }

    /// GETs of file content (the CDN side), in order.
    /// Ordered by where they started (a fresh GET first), since the log is written when a
    /// response ends and a dropped response may end after its resume began.
    pub fn content_gets(&self) -> Vec<Request> {
        let mut gets: Vec<Request> =
            self.log().into_iter().filter(|r| r.method == "GET" && r.path.starts_with("/cdn/")).collect();
        gets.sort_by_key(|g| g.range_start);
        gets
    }

    /// The content GETs once `n` of them have been logged (a response abandoned by the client is
    /// logged only when the server notices), or whatever is there after 10 s.
    pub fn wait_content_gets(&self, n: usize) -> Vec<Request> {
        for _ in 0..1000 {
            let gets = self.content_gets();
            if gets.len() >= n {
                return gets;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.content_gets()
    }

    pub fn content_bytes_sent(&self) -> u64 {
        self.content_gets().iter().map(|r| r.body_bytes_sent).sum()
    }
}

fn handle(mut conn: TcpStream, st: &Arc<Mutex<State>>, base: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range_start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<u64>().ok());
    let authorization = headers.get("authorization").cloned();
    let mut record = Request {
        method: method.clone(),
        path: path.clone(),
        range_start,
        authorization: authorization.clone(),
        body_bytes_sent: 0,
        status: 0,
    };

    let result = respond(&mut conn, st, base, &method, &path, range_start, authorization.as_deref(), &mut record);
    st.lock().unwrap().log.push(record);
    result
}

#[allow(clippy::too_many_arguments)]
fn respond(
    conn: &mut TcpStream,
    st: &Arc<Mutex<State>>,
    base: &str,
    method: &str,
    path: &str,
    range_start: Option<u64>,
    authorization: Option<&str>,
    record: &mut Request,
) -> std::io::Result<()> {
    let simple = |conn: &mut TcpStream, status: u16, reason: &str, extra: &str| {
        write!(conn, "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n")
    };

    if let Some(rest) = path.strip_prefix('/') {
        if let Some((repo, tail)) = rest.split_once("/resolve/") {
            let file = tail.split_once('/').map(|(_, f)| f).unwrap_or("");
            let (spec, repo_exists) = {
                let s = st.lock().unwrap();
                (
                    s.files.get(&format!("{repo}/{file}")).cloned(),
                    s.files.keys().any(|k| k.starts_with(&format!("{repo}/"))),
                )
            };
            let Some(spec) = spec else {
                // Like the Hub: an unknown repo is a 401 (private repos stay hidden), an unknown
                // file in a known repo a 404.
                if !repo_exists {
                    record.status = 401;
                    return simple(conn, 401, "Unauthorized", "X-Error-Code: RepoNotFound\r\n");
                }
                record.status = 404;
                return simple(conn, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n");
            };
            if let Some(tok) = &spec.token {
                if authorization != Some(&format!("Bearer {tok}")) {
                    record.status = 401;
                    return simple(conn, 401, "Unauthorized", "X-Error-Code: GatedRepo\r\n");
                }
            }
            record.status = 302;
            let extra = format!(
                "X-Repo-Commit: {COMMIT}\r\nX-Linked-Etag: \"{}\"\r\nX-Linked-Size: {}\r\nETag: \"{}\"\r\nLocation: {base}/cdn/{}\r\n",
                spec.sha256,
                spec.bytes.len(),
                spec.sha256,
                format_args!("{repo}/{file}").to_string().replace('/', "__"),
            );
            return simple(conn, 302, "Found", &extra);
        }
    }
    if let Some(key) = path.strip_prefix("/cdn/") {
        let key = key.replace("__", "/");
        let (spec, nth) = {
            let mut s = st.lock().unwrap();
            let spec = s.files.get(&key).cloned();
            let nth = if method == "GET" {
                let n = s.gets_served.entry(key.clone()).or_insert(0);
                *n += 1;
                *n
            } else {
                0
            };
            (spec, nth)
        };
        let Some(spec) = spec else {
            record.status = 404;
            return simple(conn, 404, "Not Found", "");
        };
        if method == "GET" && nth <= spec.unavailable {
            record.status = 503;
            return simple(conn, 503, "Service Unavailable", "");
        }
        let body = spec.served.clone().unwrap_or_else(|| spec.bytes.clone());
        let total = body.len() as u64;
        let range_start = if spec.ignore_range { None } else { range_start };
        let start = range_start.unwrap_or(0);
        if start > total || (start == total && range_start.is_some()) {
            record.status = 416;
            return simple(conn, 416, "Range Not Satisfiable", &format!("Content-Range: bytes */{total}\r\n"));
        }
        let (status, head) = if range_start.is_some() {
            (206, format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\n", total - 1))
        } else {
            (200, "HTTP/1.1 200 OK\r\n".to_string())
        };
        record.status = status;
        write!(conn, "{head}Content-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", total - start)?;
        if method == "HEAD" {
            return Ok(());
        }
        let limit = match spec.drop_after {
            Some(n) if nth <= spec.drops => Some(n),
            _ => None,
        };
        let mut pos = start as usize;
        while pos < body.len() {
            let mut end = (pos + 64 * 1024).min(body.len());
            if let Some(l) = limit {
                end = end.min((start + l) as usize);
                if pos >= end {
                    // Drop the connection mid-file.
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
            }
            if let Some(s) = spec.stall_after {
                if record.body_bytes_sent >= s {
                    std::thread::sleep(Duration::from_secs(5));
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
            }
            conn.write_all(&body[pos..end])?;
            record.body_bytes_sent += (end - pos) as u64;
            pos = end;
            if let Some(d) = spec.chunk_delay {
                std::thread::sleep(d);
            }
        }
        return Ok(());
    }
    record.status = 404;
    simple(conn, 404, "Not Found", "")
}
