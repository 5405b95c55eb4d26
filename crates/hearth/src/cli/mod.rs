//! Argument parsing and dispatch; each subcommand lives in its own module.

pub mod chat;
mod documents;
mod engine_cmds;
pub mod history;
pub mod models;
mod remote;
pub mod serve;
pub mod settings;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "hearth", version, about = "Private, offline Gemma 3 assistant")]
struct Cli {
    /// Where the database, attachments and imported models live.
    #[arg(long, global = true, env = "HEARTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Token ids of a text (BOS first; control-token strings stay plain text).
    Tokenize(engine_cmds::TokenizeArgs),
    /// Generate a continuation or a chat reply.
    Generate(engine_cmds::GenerateArgs),
    /// Teacher-forced top-K probabilities at every position of a token sequence.
    Score(engine_cmds::ScoreArgs),
    /// Prompt-processing and generation speed, peak memory and KV-cache size.
    Bench(engine_cmds::BenchArgs),
    /// Chat in the terminal (or one turn with --message); every turn is stored.
    Chat(chat::ChatArgs),
    /// Stored conversations: list, show, search, export, import.
    History(history::HistoryArgs),
    /// The model catalog, downloads, imports and installed models.
    Models(models::ModelsArgs),
    /// The app's settings (shared with the desktop app): show, set, ranges.
    Settings(settings::SettingsArgs),
    /// The OpenAI-compatible API on a model, for other programs (loopback only by default).
    Serve(serve::ServeArgs),
    /// A document's text (txt, md, html, pdf, docx, code, csv, json), or why it has none.
    Extract(documents::ExtractArgs),
    /// Summarize documents (whole when they fit the context, else in parts); --plan only plans.
    Summarize(documents::SummarizeArgs),
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => dirs::data_dir().context("no per-user data folder on this system; pass --data-dir")?.join("hearth"),
    };
    match cli.cmd {
        Cmd::Tokenize(a) => engine_cmds::tokenize(a, &data_dir),
        Cmd::Generate(a) => engine_cmds::generate(a, &data_dir),
        Cmd::Score(a) => engine_cmds::score(a, &data_dir),
        Cmd::Bench(a) => engine_cmds::bench(a, &data_dir),
        Cmd::Chat(a) => chat::run(a, &data_dir),
        Cmd::History(a) => runtime()?.block_on(history::run(a, &data_dir)),
        Cmd::Models(a) => runtime()?.block_on(models::run(a, &data_dir)),
        Cmd::Settings(a) => runtime()?.block_on(settings::run(a, &data_dir)),
        Cmd::Serve(a) => serve::run(a, &data_dir),
        Cmd::Extract(a) => documents::extract(a, &data_dir),
        Cmd::Summarize(a) => documents::summarize(a, &data_dir),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// `--model` takes a GGUF path or an installed model's id; the store is only opened for an id.
pub fn resolve_model(arg: &str, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(path.to_owned());
    }
    runtime()?.block_on(async {
        let store = hearth::store::Store::open(data_dir).await?;
        Ok(hearth::models::resolve_model_arg(&store, arg).await?)
    })
}

/// Where built tokenizers are cached between runs.
pub fn tokenizer_cache(data_dir: &Path) -> PathBuf {
    data_dir.join("cache").join("tokenizers")
}

/// What to type next, for errors whose way out is a `hearth` command. The services' messages
/// are written for any front end (a window cannot run commands); the CLI adds its own.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    use hearth::models::{DownloadError, ModelsError};
    use hearth::store::StoreError;
    e.chain().find_map(|cause| {
        if let Some(StoreError::Corrupt { .. }) = cause.downcast_ref::<StoreError>() {
            return Some("`hearth history recover` moves the damaged database aside and starts a fresh one");
        }
        let gated = matches!(cause.downcast_ref::<ModelsError>(), Some(ModelsError::Unauthorized { .. }))
            || matches!(cause.downcast_ref::<DownloadError>(), Some(DownloadError::Gated { .. }));
        gated.then_some("add a Hugging Face read token with `hearth models login` (or set HF_TOKEN)")
    })
}
