//! `hearth models …`: the catalog, the hardware fit, downloads, imports, the installed list.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::kv_cache::KvDType;
use hearth::models::{
    self, catalog::Catalog, fit, registry, token, CancelToken, DownloadEvent, Hub, HubConfig, ImportOptions,
};
use hearth::store::Store;

#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub cmd: ModelsCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum ModelsCmd {
    /// List the Gemma 3 models Hearth can download (no network unless --refresh).
    Catalog {
        /// Ask the Hub for every file's exact size and existence, and keep the result.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        json: bool,
    },
    /// List installed models with their size on disk.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Which catalog models fit this machine's memory at a context length.
    Fit {
        /// Context length in tokens.
        #[arg(long, default_value_t = 8192)]
        context: u64,
        /// KV-cache element type: f16 or f32 (the engine's cache types).
        #[arg(long, default_value = "f16")]
        kv_type: String,
        /// Only this model: a catalog id, a registered id or a GGUF path (refuses a context
        /// beyond its maximum).
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Download a catalog model from Hugging Face (resumes a partial download).
    Download {
        /// Catalog id, e.g. gemma-3-4b-it.
        id: String,
        /// Variant, e.g. Q4_0 (default: the recommended one), Q4_K_M, Q8_0.
        #[arg(long)]
        quant: Option<String>,
        /// Skip the vision projector of multimodal models (the model then reads text only).
        #[arg(long)]
        no_mmproj: bool,
        /// Print JSON lines (progress events, then the installed model).
        #[arg(long)]
        json: bool,
    },
    /// Register a local Gemma 3 GGUF.
    Import {
        path: PathBuf,
        /// Copy the file into Hearth's data folder instead of using it where it is.
        #[arg(long)]
        copy: bool,
        /// A vision projector (mmproj GGUF) for the model.
        #[arg(long)]
        mmproj: Option<PathBuf>,
        /// Registry id (default: local-<sha256 prefix>).
        #[arg(long)]
        id: Option<String>,
        /// Display name (default: the GGUF's general.name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Unregister a model and delete the files Hearth downloaded or copied for it.
    Remove {
        id: String,
        /// Unregister only; leave the files.
        #[arg(long)]
        keep_files: bool,
        #[arg(long)]
        json: bool,
    },
    /// Models on another machine's OpenAI-compatible server: add, remove, list.
    Remote {
        #[command(subcommand)]
        cmd: super::remote::RemoteCmd,
    },
    /// Store a Hugging Face token (read from stdin) for gated repos, owner-readable only.
    Login {
        /// Forget the stored token instead.
        #[arg(long)]
        clear: bool,
    },
}

pub async fn run(args: ModelsArgs, data_dir: &Path) -> anyhow::Result<()> {
    match args.cmd {
        ModelsCmd::Catalog { refresh: true, json } => refresh(data_dir, json).await,
        ModelsCmd::Catalog { refresh: false, json } => catalog(data_dir, json),
        ModelsCmd::Fit { context, kv_type, model, json } => {
            fit_cmd(data_dir, context, &kv_type, model.as_deref(), json).await
        }
        ModelsCmd::List { json } => list(data_dir, json).await,
        ModelsCmd::Download { id, quant, no_mmproj, json } => {
            download(data_dir, &id, quant.as_deref(), !no_mmproj, json).await
        }
        ModelsCmd::Import { path, copy, mmproj, id, name, json } => {
            let opts = ImportOptions { copy, id, display_name: name, mmproj };
            let store = open_store(data_dir).await?;
            let m = models::import_gguf(&store, data_dir, &path, &opts).await?;
            if json {
                println!("{}", serde_json::to_string(&m)?);
            } else {
                println!(
                    "Imported {} as '{}' ({}, {})",
                    m.path.display(),
                    m.id,
                    m.quant.as_deref().unwrap_or("?"),
                    human(m.size_bytes)
                );
                if let Some(mm) = &m.mmproj_path {
                    println!("  vision projector: {}", mm.display());
                }
            }
            Ok(())
        }
        ModelsCmd::Remove { id, keep_files, json } => {
            let store = open_store(data_dir).await?;
            let removed = models::remove(&store, data_dir, &id, !keep_files).await?;
            if json {
                println!("{}", serde_json::to_string(&removed)?);
            } else {
                println!("Removed '{}'", removed.model.id);
                for f in &removed.deleted_files {
                    println!("  deleted {}", f.display());
                }
            }
            Ok(())
        }
        ModelsCmd::Remote { cmd } => super::remote::run(cmd, &open_store(data_dir).await?, data_dir).await,
        ModelsCmd::Login { clear } => {
            if clear {
                let had = token::clear(data_dir)?;
                println!("{}", if had { "Token removed." } else { "No stored token." });
                return Ok(());
            }
            let mut line = String::new();
            if std::io::stdin().is_terminal() {
                eprintln!("Paste a Hugging Face read token and press Enter:");
            }
            std::io::stdin().read_line(&mut line).context("reading the token from stdin")?;
            let t = token::HfToken::new(&line).context("the token is empty")?;
            let path = token::save(data_dir, &t)?;
            println!("Token stored in {} (readable by you only).", path.display());
            Ok(())
        }
    }
}

async fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    Store::open(data_dir).await.with_context(|| format!("opening the store in {}", data_dir.display()))
}

fn human(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / (1024.0 * 1024.0))
    }
}

async fn refresh(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let hub = Hub::new(HubConfig::from_env(data_dir))?;
    let (cat, notes) = models::refresh_catalog(&hub, &Catalog::load(data_dir)?).await;
    let path = cat.save(data_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&notes)?);
        return Ok(());
    }
    for n in &notes {
        println!(
            "{:<16} {:<20} {:>10}  {}  {}/{}",
            n.model,
            n.variant,
            n.size_bytes.map_or_else(|| "-".into(), human),
            n.outcome,
            n.repo,
            n.file
        );
    }
    println!("Saved to {}", path.display());
    Ok(())
}

fn catalog(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let cat = Catalog::load(data_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cat.models)?);
        return Ok(());
    }
    for m in &cat.models {
        println!(
            "{}  {} — context {}K{}",
            m.id,
            m.display_name,
            m.context_length / 1024,
            if m.reads_images() { ", vision" } else { "" }
        );
        for v in &m.variants {
            println!(
                "    {:<12} {:>10}  {}/{}{}{}",
                format!("{}{}", v.name, if v.name == m.recommended { " *" } else { "" }),
                format!("{}{}", if v.size_exact { "" } else { "~" }, human(v.size_bytes)),
                v.repo,
                v.file,
                if v.gated { "  [gated: needs a token]" } else { "" },
                if v.sha256.is_some() { "  [sha256 pinned]" } else { "" },
            );
        }
        if let Some(mm) = m.mmproj.as_ref().filter(|_| m.reads_images()) {
            println!("    {:<12} {:>10}  {}/{}", "mmproj", human(mm.size_bytes), mm.repo, mm.file);
        }
    }
    println!("* recommended variant");
    Ok(())
}

async fn fit_cmd(data_dir: &Path, context: u64, kv_type: &str, model: Option<&str>, json: bool) -> anyhow::Result<()> {
    // The engine's cache types only: a fit for a cache the engine cannot allocate would promise
    // nothing.
    let kv: KvDType = kv_type.parse().map_err(|_| anyhow::anyhow!("unknown --kv-type '{kv_type}'; use f16 or f32"))?;
    if let Some(r) = match model {
        Some(m) => super::remote::find(data_dir, m).await?,
        None => None,
    } {
        // Weights and KV cache live on the server: nothing to plan here.
        if json {
            let v = serde_json::json!({"model": r.name, "remote": true, "url": r.url, "local_bytes": 0,
                "verdict": "remote", "context": context});
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("{} runs on {}: it needs no memory on this machine.", r.name, r.url);
        }
        return Ok(());
    }
    let cat = Catalog::load(data_dir)?;
    let memory = fit::Memory::detect();
    let mut report = fit::fit_catalog(&cat, &memory, context, kv)?;
    match model {
        Some(id) if cat.get(id).is_ok() => {
            let entry = cat.get(id)?;
            // A single model gets a hard refusal for a context beyond its maximum.
            fit::estimate(entry, entry.recommended_variant(), context, kv)?;
            report.rows.retain(|r| r.model == entry.id);
        }
        Some(arg) => {
            // Not in the catalog: an installed model or a file, measured from its GGUF header.
            let store = open_store(data_dir).await?;
            let path = models::resolve_model_arg(&store, arg).await?;
            // An installed vision model loads with its projector: it counts as loading holds it.
            let mmproj = registry::get(&store, arg).await?.and_then(|m| m.mmproj_path);
            let estimate = fit::estimate_installed(arg, &path, mmproj.as_deref(), context, kv)?;
            report.rows = vec![fit::FitRow {
                verdict: fit::verdict(estimate.total_bytes, &memory),
                recommended_variant: false,
                model: arg.to_string(),
                variant: estimate.variant.clone(),
                max_context: estimate.max_context,
                estimate: Some(estimate),
            }];
            report.recommended = None;
        }
        None => {}
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "Memory: {} total, {} available{}",
        human(memory.total_ram),
        human(memory.available_ram),
        match (memory.gpu_backend, memory.vram) {
            (None, _) => " (no GPU backend compiled in: weights and KV cache in RAM)".to_string(),
            (Some(b), Some(v)) => format!(", {b}: {} free VRAM (the budget)", human(v)),
            (Some(b), None) => format!(" ({b} backend; VRAM not measured, using RAM)"),
        }
    );
    println!("Device: {} ({})", memory.device.device.as_str(), memory.device.reason);
    println!(
        "Context: {context} tokens; KV cache {kv_type}; local layers keep min(context, window) tokens; +{} runtime allowance",
        human(fit::RUNTIME_OVERHEAD_BYTES)
    );
    println!("Vision models: MMPROJ = the projector as held in memory, ENCODER = the image encoder's activation peak");
    println!(
        "fits = total <= {:.0}% of available memory; tight = within available (or 90% of total RAM)\n",
        fit::FIT_FRACTION * 100.0
    );
    println!(
        "{:<16} {:<13} {:>10} {:>9} {:>9} {:>10} {:>10}  VERDICT",
        "MODEL", "VARIANT", "WEIGHTS", "MMPROJ", "ENCODER", "KV CACHE", "TOTAL"
    );
    for r in &report.rows {
        let name = format!("{}{}", r.variant, if r.recommended_variant { " *" } else { "" });
        match &r.estimate {
            Some(e) => println!(
                "{:<16} {:<13} {:>10} {:>9} {:>9} {:>10} {:>10}  {}",
                r.model,
                name,
                human(e.weights_bytes),
                if e.mmproj_bytes > 0 { human(e.mmproj_bytes) } else { "-".into() },
                if e.encoder_peak_bytes > 0 { human(e.encoder_peak_bytes) } else { "-".into() },
                human(e.kv_bytes),
                human(e.total_bytes),
                r.verdict.label()
            ),
            None => println!(
                "{:<16} {:<13} {:>10} {:>9} {:>9} {:>10} {:>10}  context too long (max {})",
                r.model, name, "", "", "", "", "", r.max_context
            ),
        }
    }
    match &report.recommended {
        Some((m, v)) => println!("\nRecommended: {m} {v}  →  hearth models download {m} --quant {v}"),
        None if model.is_some() => {}
        None => println!("\nNothing in the catalog fits this machine at {context} tokens; try a shorter --context."),
    }
    Ok(())
}

async fn list(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let cfg = HubConfig::from_env(data_dir);
    let usage = models::disk_usage(&store, &cfg.cache_dir).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
        return Ok(());
    }
    if usage.models.is_empty() {
        println!("No models installed. See `hearth models fit`, then `hearth models download ID` or `hearth models import PATH`.");
    }
    for u in &usage.models {
        let m = &u.model;
        println!(
            "{:<28} {:<8} {:>10}  {:<8} {}{}",
            m.id,
            m.quant.as_deref().unwrap_or("?"),
            human(u.on_disk_bytes),
            match m.source {
                registry::Source::Download => "download",
                registry::Source::Import => "import",
            },
            m.path.display(),
            if u.present { "" } else { "  [MISSING]" }
        );
    }
    let device = engine::device::report();
    println!("Models run on: {} ({})", device.device.as_str(), device.reason);
    println!(
        "Total on disk: {}; free where downloads go ({}): {}",
        human(usage.total_bytes),
        cfg.cache_dir.display(),
        usage.free_bytes.map_or_else(|| "unknown".into(), human)
    );
    Ok(())
}

async fn download(data_dir: &Path, id: &str, quant: Option<&str>, with_mmproj: bool, json: bool) -> anyhow::Result<()> {
    let cat = Catalog::load(data_dir)?;
    let entry = cat.get(id)?;
    let store = open_store(data_dir).await?;
    let hub = Hub::new(HubConfig::from_env(data_dir))?;
    let cancel = CancelToken::new();
    {
        let c = cancel.clone();
        // Ctrl-C stops cleanly and keeps the partial file for a resume.
        let _ = ctrlc::set_handler(move || c.cancel());
    }
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    });
    let mut on_event = |e: &DownloadEvent| {
        if json {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
            return;
        }
        match (e, &bar) {
            (DownloadEvent::Started { file, total, resumed_from }, Some(pb)) => {
                pb.reset();
                pb.set_length(*total);
                pb.set_position(*resumed_from);
                pb.set_message(file.clone());
            }
            (DownloadEvent::Progress { downloaded, .. }, Some(pb)) => pb.set_position(*downloaded),
            (DownloadEvent::Retrying { attempt, .. }, Some(pb)) => {
                pb.set_message(format!("connection lost, retry {attempt}"))
            }
            (DownloadEvent::Verifying { file }, Some(pb)) => pb.set_message(format!("verifying {file}")),
            (DownloadEvent::Finished { file, .. }, Some(pb)) => pb.println(format!("✓ {file}")),
            (DownloadEvent::Started { file, total, resumed_from }, None) => {
                eprintln!("downloading {file}: {} (resuming at {})", human(*total), human(*resumed_from))
            }
            (DownloadEvent::Finished { file, .. }, None) => eprintln!("done: {file}"),
            _ => {}
        }
    };
    let result = models::install(&store, &hub, entry, quant, with_mmproj, &mut on_event, &cancel).await;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let m = result?;
    if json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        println!("Installed '{}' ({}) at {}", m.id, human(m.size_bytes), m.path.display());
        println!("Use it with --model {}", m.id);
    }
    Ok(())
}
