//! `hearth serve`: the OpenAI-compatible API on the model, for other programs.
//!
//! Once it listens it prints one JSON line to stdout, `{"url": …, "model": …}` (scripts and
//! tests read the port from it when `--port 0` picked a free one); logs go to stderr.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use anyhow::{bail, Context};
use hearth::models::registry::{self, InstalledModel, Source};
use hearth::runtime::Runtime;
use hearth::server::{self, ServerOptions};
use hearth::store::Store;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = server::DEFAULT_PORT)]
    pub port: u16,
    /// GGUF file or installed model id (default: the model the app loaded last).
    #[arg(long)]
    pub model: Option<String>,
    /// Clients must send `Authorization: Bearer KEY`.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Let web pages from this origin call the API (e.g. http://localhost:3000, or *).
    #[arg(long)]
    pub cors: Option<String>,
    /// Most requests waiting behind the running one; more are refused with 429.
    #[arg(long, default_value_t = hearth::runtime::queue::DEFAULT_QUEUE_CAPACITY)]
    pub queue: usize,
    /// Largest request body in bytes; larger ones are refused with 413.
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Most messages in one request.
    #[arg(long, default_value_t = server::DEFAULT_MAX_MESSAGES)]
    pub max_messages: usize,
    /// Keep each answered request as a conversation in the app's history (off: API traffic
    /// is not stored).
    #[arg(long)]
    pub store: bool,
}

/// The one address `host:port` names. Every address a name resolves to must pass the check.
fn address(host: &str, port: u16, options: &ServerOptions) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().with_context(|| format!("cannot resolve --host {host:?}"))?.collect();
    for a in &addrs {
        server::check_address(*a, options)?;
    }
    addrs.first().copied().with_context(|| format!("--host {host:?} names no address"))
}

pub fn run(args: ServeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let options = ServerOptions {
        api_key: args.api_key.clone(),
        cors_origin: args.cors.clone(),
        max_body_bytes: args.max_body_bytes,
        max_messages: args.max_messages.max(1),
        store: args.store,
    };
    // Refuse an open address before spending seconds on the model.
    let addr = address(&args.host, args.port, &options)?;
    let rt = super::runtime()?;
    rt.block_on(serve(args, addr, options, data_dir))
}

async fn serve(args: ServeArgs, addr: SocketAddr, options: ServerOptions, data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(data_dir).await?;
    let runtime = Runtime::new(store.clone(), data_dir.to_path_buf(), tokio::runtime::Handle::current());
    runtime.queue().set_capacity(args.queue);
    let model = match &args.model {
        Some(arg) => model_for(&store, arg).await?,
        None => match runtime.startup_model().await {
            Some(m) => {
                runtime.finish_load(m.clone(), |_| {}).await?;
                m
            }
            None => bail!("no model given: pass --model PATH|ID (see `hearth models list`)"),
        },
    };
    if args.model.is_some() {
        log::info!("loading {}", model.path.display());
        runtime.begin_load(&model)?;
        runtime.finish_load(model.clone(), |_| {}).await?;
    }
    let app = server::router(runtime.clone(), &options)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("the listening address")?;
    let url = format!("http://{local}/v1");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({"url": url, "model": model.id}))?;
        out.flush()?;
    }
    eprintln!("Hearth serves {} at {url} (Ctrl-C stops)", model.id);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    ctrlc::set_handler(move || {
        if let Some(tx) = stop_tx.take() {
            let _ = tx.send(());
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    server::serve(listener, app, async move {
        let _ = stop_rx.await;
    })
    .await
    .context("the server failed")?;
    runtime.shutdown(std::time::Duration::from_secs(2));
    store.close().await;
    Ok(())
}

/// `--model`: an installed model's id, or a GGUF file (named by the installed model that is
/// that file, else by the file's name, without registering it; an `mmproj*.gguf` beside it
/// makes it read images).
async fn model_for(store: &Store, arg: &str) -> anyhow::Result<InstalledModel> {
    if let Some(m) = registry::get(store, arg).await? {
        return Ok(m);
    }
    let path = hearth::models::resolve_model_arg(store, arg).await?;
    let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    for m in registry::list(store).await? {
        if std::fs::canonicalize(&m.path).is_ok_and(|p| p == canonical) {
            return Ok(m);
        }
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    Ok(InstalledModel {
        id: stem.clone(),
        display_name: stem,
        repo: None,
        file: path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        quant: None,
        size_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        sha256: None,
        // As an import would pair them: the one `mmproj*.gguf` beside the file.
        mmproj_path: hearth::models::mmproj_beside(&path),
        path,
        source: Source::Import,
        added_at: registry::now_ms(),
    })
}
