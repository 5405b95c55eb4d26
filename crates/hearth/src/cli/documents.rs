//! `hearth extract` and `hearth summarize`: long documents from the command line. Their flags and
//! JSON are a contract the tests rely on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use hearth::documents::{self, Limits};
use hearth::models::registry::InstalledModel;
use hearth::runtime::Runtime;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// The document (txt, md, html, pdf, docx, source code, csv, json).
    file: PathBuf,
    /// Print `{kind, text, chars}` as JSON instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn extract(a: ExtractArgs, data_dir: &Path) -> anyhow::Result<()> {
    let doc = documents::extract_file_cached(data_dir, &a.file, &Limits::default())?;
    if a.json {
        println!("{}", json!({ "kind": doc.kind, "text": doc.text, "chars": doc.chars }));
    } else {
        println!("{}", doc.text);
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct SummarizeArgs {
    /// One or more documents; several are planned and summarized as one.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// GGUF file or installed model id (default: the model the app loaded last).
    #[arg(long)]
    model: Option<String>,
    /// Context length in tokens (default: what the document needs, up to the model's maximum
    /// and the memory).
    #[arg(long)]
    context: Option<usize>,
    /// Most tokens in the summary (and in each partial summary).
    #[arg(long, default_value_t = documents::plan::DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
    /// Only plan: tokens, mode, context, KV bytes and chunks.
    #[arg(long)]
    plan: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The documents' texts, each extracted under the default limits; the first failure stops.
fn sources(files: &[PathBuf], data_dir: &Path) -> anyhow::Result<Vec<documents::plan::Source>> {
    files
        .iter()
        .map(|f| {
            let doc = documents::extract_file_cached(data_dir, f, &Limits::default())?;
            let name = f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok(documents::plan::Source { name, text: doc.text })
        })
        .collect()
}

/// The model argument as an id or path, defaulting to the last-used installed model.
fn model_arg(arg: Option<&str>, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(m) = arg {
        return Ok(m.to_owned());
    }
    super::runtime()?.block_on(async {
        let store = hearth::store::Store::open(data_dir).await?;
        match hearth::models::last_used::remembered(&store).await? {
            hearth::models::last_used::LastUsed::Installed(m) => Ok(m.id),
            _ => anyhow::bail!("no model given: pass --model PATH|ID (see `hearth models list`)"),
        }
    })
}

pub fn summarize(a: SummarizeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let sources = sources(&a.files, data_dir)?;
    let joined = documents::plan::join(&sources);
    let model = model_arg(a.model.as_deref(), data_dir)?;
    let path = super::resolve_model(&model, data_dir)?;
    let (facts, tokenizer) = documents::plan::ModelFacts::from_gguf(&path, Some(&super::tokenizer_cache(data_dir)))?;
    // The runtime loads an installed vision model's projector too: the plan counts it.
    let installed = super::runtime()?.block_on(async {
        let store = hearth::store::Store::open(data_dir).await?;
        installed_model(&store, &model, &path).await
    })?;
    let facts = facts.with_projector(installed.mmproj_path.as_deref())?;
    let opts = documents::plan::PlanOptions { context: a.context, max_tokens: a.max_tokens, ..Default::default() };
    let plan = documents::plan::plan(&joined, &facts, &opts, &tokenizer)?;
    if a.plan {
        if a.json {
            println!("{}", serde_json::to_string(&plan)?);
        } else {
            print_plan(&plan);
        }
        return Ok(());
    }
    run_summary(&a, data_dir, installed, &joined, &plan)
}

/// The installed model `arg` names, or one made up for a GGUF path that is not installed (it
/// is loaded, not registered).
async fn installed_model(store: &hearth::store::Store, arg: &str, path: &Path) -> anyhow::Result<InstalledModel> {
    use hearth::models::registry;
    if let Some(m) = registry::get(store, arg).await.ok().flatten() {
        return Ok(m);
    }
    if let Some(m) = registry::list(store).await?.into_iter().find(|m| m.path == path) {
        return Ok(m);
    }
    Ok(InstalledModel {
        id: arg.to_owned(),
        display_name: path.file_name().map_or_else(|| arg.to_owned(), |n| n.to_string_lossy().into_owned()),
        repo: None,
        file: path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        quant: None,
        size_bytes: 0,
        sha256: None,
        path: path.to_owned(),
        mmproj_path: None,
        source: registry::Source::Import,
        added_at: registry::now_ms(),
    })
}

fn run_summary(
    a: &SummarizeArgs,
    data_dir: &Path,
    model: InstalledModel,
    joined: &documents::plan::Joined,
    plan: &documents::plan::Plan,
) -> anyhow::Result<()> {
    use documents::summarize::{self, Event, PartStore};
    let rt = super::runtime()?;
    let store = rt.block_on(hearth::store::Store::open(data_dir))?;
    let runtime = Runtime::new(store.clone(), data_dir.to_owned(), rt.handle().clone());
    runtime.begin_load(&model)?;
    rt.block_on(runtime.finish_load_with_context(model.clone(), Some(plan.context), |_| {}))?;

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    let parts = PartStore::new(data_dir, joined, plan, &model.id);
    let bar = indicatif::ProgressBar::new(plan.prompt_tokens as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens read · {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let streaming = !a.json && plan.mode == documents::plan::Mode::Whole;
    let mut stdout = std::io::stdout();
    let outcome = summarize::run(&runtime, joined, plan, &parts, cancel, &mut |e| match e {
        Event::Step { step, resumed, .. } => {
            bar.set_message(format!("{step:?}{}", if resumed { " (stored)" } else { "" }));
        }
        Event::Text(t) if streaming => {
            bar.suspend(|| {
                let _ = stdout.write_all(t.as_bytes());
                let _ = stdout.flush();
            });
        }
        Event::Text(_) => {}
        Event::Progress(p) => {
            bar.set_length(p.tokens_total as u64);
            bar.set_position(p.tokens_read as u64);
            let left = p.seconds_left.map_or_else(String::new, |s| format!(", about {s:.0} s left"));
            bar.set_message(format!("step {}/{} · {:.0} tok/s{left}", p.steps_done, p.steps_total, p.tokens_per_s));
        }
    })?;
    bar.finish_and_clear();
    if outcome.cancelled {
        anyhow::bail!("stopped; the finished parts are stored, and running the same command again resumes");
    }
    let attachments = a
        .files
        .iter()
        .zip(&joined.files)
        .map(|(f, span)| {
            let mut att = hearth::store::read_attachment_file(f)?;
            att.extracted_text = Some(documents::plan::slice_chars(&joined.text, span.start, span.end).to_owned());
            Ok(att)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let conversation_id = rt.block_on(summarize::save(&store, &model.id, attachments, &outcome.summary))?;
    if a.json {
        let v = json!({
            "summary": outcome.summary,
            "mode": outcome.mode,
            "chunks": outcome.chunks,
            "prompt_tokens": outcome.prompt_tokens,
            "seconds": outcome.seconds,
            "conversation_id": conversation_id,
            "resumed_steps": outcome.resumed_steps,
            "computed_steps": outcome.computed_steps,
        });
        println!("{v}");
    } else {
        if !streaming {
            println!("{}", outcome.summary);
        } else {
            println!();
        }
        eprintln!(
            "[conversation {conversation_id} · {} · {} prompt tokens in {:.1} s]",
            if outcome.mode == documents::plan::Mode::Whole { "whole" } else { "map-reduce" },
            outcome.prompt_tokens,
            outcome.seconds
        );
    }
    Ok(())
}

fn print_plan(p: &documents::plan::Plan) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mode = match p.mode {
        documents::plan::Mode::Whole => "whole".to_owned(),
        documents::plan::Mode::MapReduce => {
            format!("map-reduce: {} chunks, {} reduce round(s)", p.chunks.len(), p.reduce_levels)
        }
    };
    println!("{} tokens · {mode} · context {}", p.tokens, p.context);
    println!(
        "memory {:.0} MiB ({}), of which KV cache {:.1} MiB",
        mib(p.memory_bytes),
        p.memory_verdict,
        mib(p.kv_bytes)
    );
    if let Some(s) = p.seconds {
        println!("about {s:.0} s to read {} prompt tokens", p.prompt_tokens);
    }
}
