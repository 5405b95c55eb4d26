//! The local API server inside the desktop app: the same [`router`](super::router) over the
//! app's own runtime, switched on and off from the settings page, on loopback only.
//!
//! [`Embedded`] owns the running server (one at most) and its settings ([`LocalServerSettings`],
//! their own row in the settings table, so the app's sampling settings keep their shape). Its
//! API key is generated on first use and kept like the Hugging Face token: an owner-only file in
//! the data folder, never in the database or the log.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Mutex};
use ts_rs::TS;

use super::{ServerError, ServerOptions};
use crate::error::{ErrorCode, ErrorDetails, HearthError};
use crate::runtime::Runtime;
use crate::store::settings::SettingKey;
use crate::store::StoreError;

/// The switch, the port and whether API conversations are stored, in one row.
pub const LOCAL_SERVER: SettingKey<LocalServerSettings> = SettingKey::new("local_server");

/// The key's file in the data folder.
const KEY_FILE: &str = "local_api_key";

/// How long stopping waits for running requests before cutting them off (a streamed reply can
/// run for minutes; quitting or switching off must not).
pub const STOP_WAIT: Duration = Duration::from_secs(3);

/// The settings page's "Local API server" section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalServerSettings {
    /// On: the server runs, and comes back at the next start.
    pub enabled: bool,
    /// The loopback port (1..=65535).
    pub port: u16,
    /// Keep each answered API request as a conversation.
    pub store: bool,
    /// Clients must send the key (`Authorization: Bearer KEY`). Off by default: the server
    /// listens on loopback only, and the key is there for clients that insist on one.
    pub require_key: bool,
}

impl Default for LocalServerSettings {
    fn default() -> Self {
        Self { enabled: false, port: super::DEFAULT_PORT, store: false, require_key: false }
    }
}

/// What the settings page shows.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalServerStatus {
    pub settings: LocalServerSettings,
    /// While it runs: the base URL clients use (`http://127.0.0.1:PORT/v1`).
    pub url: Option<String>,
    /// The key, once one was generated (the first time the server was switched on).
    pub api_key: Option<String>,
    /// Why the server is not running although switched on (e.g. the port was taken at start-up).
    pub error: Option<HearthError>,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("{addr} is in use by another program: choose another port")]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("port 0 is not a port clients can be told: choose one from 1 to 65535")]
    NoPort,
    #[error("cannot {what} the API key file {path}: {source}")]
    Key {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Options(#[from] ServerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EmbeddedError> for HearthError {
    fn from(e: EmbeddedError) -> Self {
        match e {
            EmbeddedError::Store(s) => s.into(),
            other => other.to_hearth(),
        }
    }
}

impl EmbeddedError {
    /// The shared error shape, without consuming the error (a failed start is also kept for the
    /// status).
    pub fn to_hearth(&self) -> HearthError {
        let message = self.to_string();
        let at = |addr: &SocketAddr| ErrorDetails { path: Some(addr.to_string()), ..Default::default() };
        match self {
            EmbeddedError::PortInUse { addr } => HearthError::new(ErrorCode::PortInUse, message).with(at(addr)),
            EmbeddedError::Listen { addr, .. } => HearthError::new(ErrorCode::Io, message).with(at(addr)),
            EmbeddedError::NoPort => HearthError::new(ErrorCode::InvalidSetting, message).with(ErrorDetails {
                field: Some("port".into()),
                min: Some(1.0),
                max: Some(f64::from(u16::MAX)),
                ..Default::default()
            }),
            EmbeddedError::Key { path, .. } => HearthError::new(ErrorCode::Io, message).with(ErrorDetails::path(path)),
            // Options Hearth built itself, or the database under us: not something the user typed.
            EmbeddedError::Options(_) | EmbeddedError::Store(_) => HearthError::new(ErrorCode::Internal, message),
        }
    }
}

/// The API key, generated (32 random bytes, hex) and stored owner-only on first use.
pub fn api_key(data_dir: &Path) -> Result<String, EmbeddedError> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => return Ok(k.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(EmbeddedError::Key { what: "read", path, source }),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| EmbeddedError::Key {
        what: "generate",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    let key: String = std::iter::once("hearth-".to_string()).chain(bytes.iter().map(|b| format!("{b:02x}"))).collect();
    crate::models::token::write_private(&path, key.as_bytes()).map_err(|source| EmbeddedError::Key {
        what: "write",
        path,
        source,
    })?;
    Ok(key)
}

/// The key if one was generated already; never creates one.
fn existing_key(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(KEY_FILE)).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty())
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Default)]
struct Inner {
    running: Option<Running>,
    /// Why the last start failed, until the next start or stop.
    error: Option<HearthError>,
}

/// The app's local API server: at most one, over the app's runtime.
pub struct Embedded {
    runtime: Runtime,
    inner: Mutex<Inner>,
}

impl Embedded {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime, inner: Mutex::new(Inner::default()) }
    }

    /// The stored settings (the defaults before the section was ever used).
    pub async fn settings(&self) -> Result<LocalServerSettings, EmbeddedError> {
        Ok(self.runtime.store().get_setting(&LOCAL_SERVER).await?.unwrap_or_default())
    }

    /// Starts on `127.0.0.1:port` (stopping a running server first) and returns the address.
    /// Port 0 picks a free one (tests); the app's settings never store 0.
    pub async fn start(&self, port: u16, options: &ServerOptions) -> Result<SocketAddr, EmbeddedError> {
        let mut inner = self.inner.lock().await;
        if let Some(r) = inner.running.take() {
            stop_running(r, STOP_WAIT).await;
        }
        let result = self.listen(port, options).await;
        match result {
            Ok(r) => {
                let addr = r.addr;
                inner.running = Some(r);
                inner.error = None;
                Ok(addr)
            }
            Err(e) => {
                inner.error = Some(e.to_hearth());
                Err(e)
            }
        }
    }

    async fn listen(&self, port: u16, options: &ServerOptions) -> Result<Running, EmbeddedError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        super::check_address(addr, options)?;
        let app = super::router(self.runtime.clone(), options)?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                EmbeddedError::PortInUse { addr }
            } else {
                EmbeddedError::Listen { addr, source }
            }
        })?;
        let addr = listener.local_addr().map_err(|source| EmbeddedError::Listen { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(super::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        log::info!("local API server listening on http://{addr}/v1");
        Ok(Running { addr, stop, task })
    }

    /// Stops the server, letting running requests finish for up to `wait`. The port is free
    /// when this returns.
    pub async fn stop(&self, wait: Duration) {
        let mut inner = self.inner.lock().await;
        inner.error = None;
        if let Some(r) = inner.running.take() {
            stop_running(r, wait).await;
        }
    }

    /// The address it listens on, while it runs.
    pub async fn addr(&self) -> Option<SocketAddr> {
        self.inner.lock().await.running.as_ref().map(|r| r.addr)
    }

    /// Applies and stores new settings: on starts (or restarts on the new port/options), off
    /// stops. When the server cannot start, nothing is stored and the error says why.
    pub async fn apply(&self, next: LocalServerSettings) -> Result<LocalServerStatus, EmbeddedError> {
        if next.enabled {
            if next.port == 0 {
                return Err(EmbeddedError::NoPort);
            }
            let options = self.options(&next)?;
            self.start(next.port, &options).await?;
        } else {
            self.stop(STOP_WAIT).await;
        }
        self.runtime.store().set_setting(&LOCAL_SERVER, &next).await?;
        self.status().await
    }

    /// At the app's start: brings the server back if it was on. A failure is kept for
    /// [`status`](Self::status) (the switch stays on, to be retried from the settings page).
    pub async fn restore(&self) -> Result<Option<SocketAddr>, EmbeddedError> {
        let s = self.settings().await?;
        if !s.enabled || s.port == 0 {
            return Ok(None);
        }
        let options = self.options(&s)?;
        self.start(s.port, &options).await.map(Some)
    }

    pub async fn status(&self) -> Result<LocalServerStatus, EmbeddedError> {
        let settings = self.settings().await?;
        let inner = self.inner.lock().await;
        Ok(LocalServerStatus {
            url: inner.running.as_ref().map(|r| format!("http://{}/v1", r.addr)),
            api_key: existing_key(self.runtime.data_dir()),
            error: if settings.enabled { inner.error.clone() } else { None },
            settings,
        })
    }

    fn options(&self, s: &LocalServerSettings) -> Result<ServerOptions, EmbeddedError> {
        // The key exists from the first switch-on, whether or not it is required, so the page
        // can show it and clients that insist on a key have one.
        let key = api_key(self.runtime.data_dir())?;
        Ok(ServerOptions { api_key: s.require_key.then_some(key), store: s.store, ..ServerOptions::default() })
    }
}

async fn stop_running(mut r: Running, wait: Duration) {
    let _ = r.stop.send(());
    match tokio::time::timeout(wait, &mut r.task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => log::warn!("the local API server failed: {e}"),
        Ok(Err(e)) if e.is_cancelled() => {}
        Ok(Err(e)) => log::warn!("the local API server's task failed: {e}"),
        Err(_) => {
            log::info!("cutting off API requests still running after {wait:?}");
            r.task.abort();
            // Aborted, its listener is dropped: the port is free once the task is gone.
            let _ = r.task.await;
        }
    }
    log::info!("local API server on {} stopped", r.addr);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn app(dir: &Path) -> Embedded {
        let store = Store::open(dir).await.unwrap();
        Embedded::new(Runtime::new(store, dir.to_path_buf(), tokio::runtime::Handle::current()))
    }

    async fn post_chat(base: &str, key: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .body(r#"{"messages":[{"role":"user","content":"Hi"}]}"#);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), serde_json::from_str(&r.text().await.unwrap()).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_app_server_answers_over_the_apps_runtime_and_stopping_frees_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let server = app(dir.path()).await;
        let addr = server.start(0, &ServerOptions::default()).await.unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(server.addr().await, Some(addr));

        // The app has no model loaded: the API says so in OpenAI's shape.
        let (status, v) = post_chat(&format!("http://{addr}/v1"), None).await;
        assert_eq!(status, 503, "{v}");
        assert_eq!(v["error"]["code"], "no_model", "{v}");

        server.stop(STOP_WAIT).await;
        assert_eq!(server.addr().await, None);
        // The port is free again: this process can listen there.
        let again = tokio::net::TcpListener::bind(addr).await;
        assert!(again.is_ok(), "{addr} still taken: {again:?}");
        drop(again);
        // Nothing answers there any more.
        assert!(reqwest::get(format!("http://{addr}/health")).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_taken_port_is_a_typed_error_kept_for_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let server = app(dir.path()).await;
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();

        let on = LocalServerSettings { enabled: true, port, ..LocalServerSettings::default() };
        let err = server.apply(on.clone()).await.unwrap_err();
        assert!(matches!(err, EmbeddedError::PortInUse { addr } if addr.port() == port), "{err}");
        let e = HearthError::from(err);
        assert_eq!(e.code, ErrorCode::PortInUse);
        assert_eq!(e.details.path.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
        // Nothing was stored: the switch is still off.
        assert_eq!(server.settings().await.unwrap(), LocalServerSettings::default());

        // A start-up restore with the switch on keeps the failure for the settings page.
        server.runtime.store().set_setting(&LOCAL_SERVER, &on).await.unwrap();
        assert!(matches!(server.restore().await, Err(EmbeddedError::PortInUse { .. })));
        let st = server.status().await.unwrap();
        assert_eq!((st.url, st.error.map(|e| e.code)), (None, Some(ErrorCode::PortInUse)));

        // Once the port is free, switching on works and clears the error.
        drop(taken);
        let st = server.apply(on).await.unwrap();
        assert_eq!(st.url, Some(format!("http://127.0.0.1:{port}/v1")));
        assert_eq!(st.error, None);
        server.stop(STOP_WAIT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn switching_on_makes_an_owner_only_key_and_persists_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let server = app(dir.path()).await;
        assert_eq!(server.status().await.unwrap().api_key, None, "no key before the first switch-on");
        assert!(server.restore().await.unwrap().is_none(), "off: nothing starts");

        // A free port, found by letting the OS pick one and giving it back.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let on = LocalServerSettings { enabled: true, port, store: true, require_key: true };
        let st = server.apply(on.clone()).await.unwrap();
        let key = st.api_key.clone().unwrap();
        assert!(key.len() >= 64, "{key}");
        assert_eq!(st.settings, on);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Changing an option while it runs restarts it on the same port.
        let relaxed = LocalServerSettings { require_key: false, ..on.clone() };
        let st2 = server.apply(relaxed).await.unwrap();
        assert_eq!((st2.url.clone(), st2.api_key.as_deref()), (st.url.clone(), Some(key.as_str())));
        assert_eq!(post_chat(st2.url.as_deref().unwrap(), None).await.0, 503, "no key needed now");
        let st = server.apply(on.clone()).await.unwrap();
        // The key is required when asked for, and is the one shown.
        let base = st.url.clone().unwrap();
        assert_eq!(post_chat(&base, None).await.0, 401);
        assert_eq!(post_chat(&base, Some(&key)).await.0, 503, "past the key: no model");

        // The next start (a new handle over the same data folder) comes back on, with the same key.
        server.stop(STOP_WAIT).await;
        let next = app(dir.path()).await;
        let addr = next.restore().await.unwrap().unwrap();
        assert_eq!(addr.port(), port);
        assert_eq!(next.status().await.unwrap().api_key, Some(key));

        // Off: stopped and stored off.
        let off = LocalServerSettings { enabled: false, ..on };
        let st = next.apply(off).await.unwrap();
        assert_eq!(st.url, None);
        assert!(!next.settings().await.unwrap().enabled);
        assert!(tokio::net::TcpListener::bind(addr).await.is_ok());
    }

    #[test]
    fn port_zero_is_refused_as_a_setting() {
        let e = EmbeddedError::NoPort.to_hearth();
        assert_eq!((e.code, e.details.field.as_deref()), (ErrorCode::InvalidSetting, Some("port")));
    }
}
