//! `hearth chat`: talk to a model, every turn stored in the conversation database.
//!
//! With `--message` it sends one turn and exits (for scripts and tests); without, it is a small
//! REPL on stdin that streams replies and keeps the session's KV cache between turns. Ctrl-C
//! stops the current reply (stored as interrupted) instead of quitting.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use engine::kv_cache::KvDType;
use engine::sampler::SamplingParams;
use engine::session::{Engine, LoadOptions, Session};
use hearth::app_api::AppSettings;
use hearth::chat::{Backend, ChatService, TurnInput, TurnRequest};
use hearth::models::last_used::{self, LastUsed};
use hearth::remote::RemoteClient;
use hearth::store::{Conversation, NewAttachment, NewConversation, SamplingSettings, Store};
use hearth::turn_inputs::Vision;

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// GGUF file or installed model id (default: the conversation's model, then the model the
    /// app loaded last).
    #[arg(long)]
    pub model: Option<String>,
    /// Continue this conversation.
    #[arg(long, conflicts_with = "new")]
    pub conversation: Option<i64>,
    /// Start a new conversation (the default when --conversation is not given).
    #[arg(long)]
    pub new: bool,
    /// Send this one message, print the reply and exit.
    #[arg(long)]
    pub message: Option<String>,
    /// Most tokens in a reply.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Print the result of a --message turn as JSON.
    #[arg(long, requires = "message")]
    pub json: bool,
    /// Sampling temperature; 0 is greedy.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sampling seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// CPU threads for the model (default: the app's setting, else automatic).
    #[arg(long)]
    pub threads: Option<usize>,
    /// System prompt for a new conversation (or to replace an existing one's); a new
    /// conversation gets the app's system prompt otherwise.
    #[arg(long)]
    pub system: Option<String>,
    /// Context length in tokens (default: the app's context size setting).
    #[arg(long)]
    pub context: Option<usize>,
    /// Element type of the KV cache: f16 (half the memory) or f32.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvDType,
    /// An image to send with --message (repeatable, in order): stored with the message, and
    /// seen by a model installed with its vision projector.
    #[arg(long = "image", requires = "message")]
    pub images: Vec<PathBuf>,
}

/// The sampling parameters of a conversation: the app's settings (the same ones the desktop app
/// uses) overridden by what was saved with the conversation.
fn sampling_for(s: &SamplingSettings, app: &AppSettings) -> SamplingParams {
    let mut p = app.sampling();
    if let Some(t) = s.temperature {
        p.temperature = t as f32;
    }
    if let Some(k) = s.top_k {
        p.top_k = k.max(0) as usize;
    }
    if let Some(v) = s.top_p {
        p.top_p = v as f32;
    }
    if let Some(v) = s.min_p {
        p.min_p = v as f32;
    }
    if let Some(v) = s.repeat_penalty {
        p.repeat_penalty = v as f32;
    }
    if let Some(v) = s.seed {
        p.seed = v as u64;
    }
    p
}

/// A flag's value checked against the app's range for `field` (one table: `SETTING_RANGES`).
fn in_range(field: &str, flag: &str, v: f64) -> anyhow::Result<()> {
    if let Some(r) = AppSettings::range(field) {
        if r.check(v).is_err() {
            bail!("{flag} must be between {} and {}", r.min, r.max);
        }
    }
    Ok(())
}

pub fn run(args: ChatArgs, data_dir: &Path) -> anyhow::Result<()> {
    if let Some(t) = args.temperature {
        in_range("temperature", "--temperature", f64::from(t))?;
    }
    if let Some(seed) = args.seed {
        in_range("seed", "--seed", seed as f64)?;
    }
    if let Some(c) = args.context {
        in_range("contextSize", "--context", c as f64)?;
    }
    if let Some(n) = args.threads {
        in_range("threads", "--threads", n as f64)?;
    }
    // The store is async; the engine runs on this thread. One worker is plenty for the store.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let store = rt.block_on(Store::open(data_dir))?;
    let app = rt.block_on(AppSettings::load(&store))?;
    let context = args.context.unwrap_or(app.context_size.max(1) as usize);

    let conv = rt.block_on(prepare_conversation(&store, &args, &app))?;
    let model_arg = match (&args.model, &conv.model) {
        (Some(m), _) | (None, Some(m)) => m.clone(),
        (None, None) => match rt.block_on(last_used::remembered(&store))? {
            LastUsed::Installed(m) => m.id,
            LastUsed::None | LastUsed::Forgotten { .. } => {
                bail!("no model given: pass --model PATH|ID (see `hearth models list`)")
            }
        },
    };
    let remote = rt.block_on(remote_model(&store, data_dir, &model_arg))?;
    let model_path: PathBuf = match &remote {
        Some(r) => PathBuf::from(&r.url),
        None => rt.block_on(hearth::models::resolve_model_arg(&store, &model_arg))?,
    };
    if conv.model.as_deref() != Some(model_arg.as_str()) {
        rt.block_on(store.update_conversation_settings(
            conv.id,
            Some(&model_arg),
            conv.system_prompt.as_deref(),
            &conv.sampling,
        ))?;
    }

    let (mut model, vision) = match remote {
        Some(r) => {
            let key = hearth::remote::registry::key(data_dir, &r.name)?;
            let mut client = RemoteClient::new(r.clone(), key.clone())?;
            // Ask the server once which model answers, rather than at every turn.
            if r.model.is_none() {
                let served = rt.block_on(client.model_id())?;
                client = RemoteClient::new(hearth::remote::RemoteModel { model: Some(served), ..r }, key)?;
            }
            (Model::Remote(client), None)
        }
        None => {
            let load = LoadOptions {
                tokenizer_cache_dir: Some(data_dir.join("cache").join("tokenizers")),
                threads: args.threads.or(app.threads.map(|t| t.max(1) as usize)),
                ..Default::default()
            };
            let engine = Engine::load(&model_path, &load)
                .with_context(|| format!("cannot load the model {}", model_path.display()))?;
            // An installed model with its projector reads images; a GGUF path or a model without
            // one reads text only (an image is then refused before anything is stored).
            let mmproj = rt.block_on(hearth::models::registry::get(&store, &model_arg))?.and_then(|m| m.mmproj_path);
            let vision = mmproj
                .map(|m| Vision::load(&m, &engine, data_dir).map(Arc::new))
                .transpose()
                .with_context(|| format!("cannot load the vision projector of {model_arg}"))?;
            (Model::Local(Session::with_kv_dtype(engine, context, args.kv_type)?), vision)
        }
    };
    let service = ChatService::new(store.clone(), rt.handle().clone());
    let images = args
        .images
        .iter()
        .map(|p| hearth::store::read_attachment_file(p).with_context(|| format!("cannot attach {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = |text: String, attachments: Vec<NewAttachment>| TurnRequest {
        conversation_id: conv.id,
        input: TurnInput::Send { text, attachments },
        max_tokens: args.max_tokens,
        sampling: sampling_for(&conv.sampling, &app),
        model_label: model_arg.clone(),
        vision: vision.clone(),
        pan_scan: app.pan_scan_rule(),
    };

    let cancel = Arc::new(AtomicBool::new(false));
    let generating = Arc::new(AtomicBool::new(false));
    {
        let (cancel, generating) = (cancel.clone(), generating.clone());
        ctrlc::set_handler(move || {
            if generating.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                // Nothing is streaming, so nothing is lost by leaving now.
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    if let Some(message) = &args.message {
        generating.store(true, Ordering::SeqCst);
        let mut stdout = std::io::stdout();
        let json = args.json;
        let out = service.turn_with(
            model.backend(),
            &request(message.clone(), images),
            cancel.clone(),
            &mut |_| {},
            &mut |piece| {
                if !json {
                    let _ = stdout.write_all(piece.as_bytes());
                    let _ = stdout.flush();
                }
            },
        )?;
        if json {
            let v = serde_json::json!({
                "conversation_id": out.conversation_id,
                "user_message_id": out.user_message_id,
                "assistant_message_id": out.assistant_message_id,
                "reply": out.reply,
                "state": out.state,
                "stop_reason": out.stop_reason,
                "gen_tokens_per_s": out.gen_tokens_per_s,
                "prompt_tokens_per_s": out.prompt_tokens_per_s,
                "generated_tokens": out.generated_tokens,
                "prompt_tokens": out.prompt_tokens,
            });
            println!("{v}");
        } else {
            println!();
            eprintln!(
                "[conversation {} · {} · {:.1} tok/s]",
                out.conversation_id,
                out.stop_reason.as_str(),
                out.gen_tokens_per_s
            );
        }
        rt.block_on(store.close());
        return Ok(());
    }

    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "Conversation {} with {}. Ctrl-C stops a reply; Ctrl-D or /exit quits.",
            conv.id,
            model_path.display()
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("cannot read stdin")?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/exit" || text == "/quit" {
            break;
        }
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let mut stdout = std::io::stdout();
        let result = service.turn_with(
            model.backend(),
            &request(text.to_string(), Vec::new()),
            cancel.clone(),
            &mut |_| {},
            &mut |piece| {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            },
        );
        generating.store(false, Ordering::SeqCst);
        println!();
        match result {
            Ok(out) if out.stop_reason == hearth::chat::StopReason::Cancelled => {
                eprintln!("[stopped; the partial reply is saved]")
            }
            Ok(_) => {}
            // A failed turn is stored as an error; the REPL goes on.
            Err(e) => eprintln!("error: {e}"),
        }
    }
    rt.block_on(store.close());
    Ok(())
}

/// What replies come from: a model loaded here, or a remote model's server.
enum Model {
    Local(Session),
    Remote(RemoteClient),
}

impl Model {
    fn backend(&mut self) -> Backend<'_> {
        match self {
            Model::Local(s) => Backend::Local(s),
            Model::Remote(c) => Backend::Remote(c),
        }
    }
}

/// `arg` as a remote model's name, unless it is a file or an installed model.
async fn remote_model(
    store: &Store,
    data_dir: &Path,
    arg: &str,
) -> anyhow::Result<Option<hearth::remote::RemoteModel>> {
    if Path::new(arg).is_file() || hearth::models::registry::get(store, arg).await?.is_some() {
        return Ok(None);
    }
    Ok(hearth::remote::registry::get(store, data_dir, arg).await?)
}

/// The conversation to talk in: the one asked for (updated with any new settings), or a new one.
async fn prepare_conversation(store: &Store, args: &ChatArgs, app: &AppSettings) -> anyhow::Result<Conversation> {
    let override_sampling = |mut s: SamplingSettings| {
        if let Some(t) = args.temperature {
            s.temperature = Some(f64::from(t));
        }
        if let Some(seed) = args.seed {
            s.seed = Some(seed as i64);
        }
        s
    };
    match args.conversation {
        Some(id) => {
            let c = store.conversation(id).await?;
            let sampling = override_sampling(c.sampling.clone());
            let system = args.system.clone().or(c.system_prompt.clone());
            if sampling != c.sampling || system != c.system_prompt {
                store.update_conversation_settings(id, c.model.as_deref(), system.as_deref(), &sampling).await?;
            }
            Ok(store.conversation(id).await?)
        }
        None => {
            // As the app does for a new conversation: its system prompt unless it is blank.
            let system =
                args.system.clone().or_else(|| Some(app.system_prompt.clone()).filter(|s| !s.trim().is_empty()));
            let new = NewConversation {
                title: String::new(),
                model: args.model.clone(),
                system_prompt: system,
                sampling: override_sampling(SamplingSettings::default()),
            };
            Ok(store.create_conversation(&new).await?)
        }
    }
}
