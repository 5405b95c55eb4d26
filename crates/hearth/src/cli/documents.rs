//! `hearth extract` and `hearth summarize`: long documents from the command line. Their flags and
//! JSON are a contract the tests rely on.

use std::path::{Path, PathBuf};

use hearth::documents::{self, Limits};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// The document (txt, md, html, pdf, docx, source code, csv, json).
    file: PathBuf,
    /// Print `{kind, text, chars}` as JSON instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn extract(a: ExtractArgs, _data_dir: &Path) -> anyhow::Result<()> {
    let doc = documents::extract_file(&a.file, &Limits::default())?;
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
fn sources(files: &[PathBuf]) -> anyhow::Result<Vec<documents::plan::Source>> {
    files
        .iter()
        .map(|f| {
            let doc = documents::extract_file(f, &Limits::default())?;
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
    let sources = sources(&a.files)?;
    let joined = documents::plan::join(&sources);
    let model = model_arg(a.model.as_deref(), data_dir)?;
    let path = super::resolve_model(&model, data_dir)?;
    let (facts, tokenizer) = documents::plan::ModelFacts::from_gguf(&path, Some(&super::tokenizer_cache(data_dir)))?;
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
    anyhow::bail!("running a summary is not built yet; use --plan")
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
