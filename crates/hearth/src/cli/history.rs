//! `hearth history …`: list, show, search, export and import stored conversations.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hearth::store::{ArchiveFilter, ConversationExport, ListOptions, SearchOptions, Store, StoreError};

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub cmd: HistoryCmd,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Md,
    Json,
}

#[derive(clap::Subcommand, Debug)]
pub enum HistoryCmd {
    /// Conversations, pinned first, then most recent first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Only archived conversations.
        #[arg(long, conflicts_with = "all")]
        archived: bool,
        /// Archived and active conversations.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// A conversation's messages, with each message's state.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over titles and messages (Korean and English).
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Write a conversation as Markdown or JSON (JSON includes attachments and can be imported).
    Export {
        id: i64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Md)]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Print a JSON summary (where it was written) instead of nothing; implies --output.
        #[arg(long, requires = "output")]
        json: bool,
    },
    /// Restore a conversation from a JSON export.
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Rename a conversation.
    Rename {
        id: i64,
        title: String,
        #[arg(long)]
        json: bool,
    },
    /// Pin (or with --off unpin) a conversation.
    Pin {
        id: i64,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        json: bool,
    },
    /// Archive (or with --off unarchive) a conversation.
    Archive {
        id: i64,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a conversation with its messages and attachments.
    Delete {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Move a damaged database aside (it is kept, never deleted) and start a fresh one.
    Recover {
        #[arg(long)]
        json: bool,
    },
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn when(ms: i64) -> String {
    hearth::store::format_utc(ms)
}

pub async fn run(args: HistoryArgs, data_dir: &Path) -> anyhow::Result<()> {
    if let HistoryCmd::Recover { json } = args.cmd {
        return recover(data_dir, json).await;
    }
    let store = Store::open(data_dir).await?;
    let result = run_with(&store, args.cmd).await;
    store.close().await;
    result
}

async fn recover(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    // A healthy database is left alone: recover is only for one that fails to open as damaged.
    match Store::open(data_dir).await {
        Ok(store) => {
            store.check_integrity().await?;
            store.close().await;
            if json {
                print_json(&serde_json::json!({"recovered": false, "reason": "the database is healthy"}))?;
            } else {
                println!("The database {} is healthy; nothing to do.", data_dir.join(hearth::store::DB_FILE).display());
            }
            Ok(())
        }
        Err(StoreError::Corrupt { .. }) => {
            let (store, aside) = Store::open_fresh_moving_aside(data_dir).await?;
            store.close().await;
            if json {
                print_json(
                    &serde_json::json!({"recovered": true, "moved_to": aside, "new_database": store.db_path()}),
                )?;
            } else {
                match aside {
                    Some(p) => println!("Kept the damaged database as {}; started a fresh one.", p.display()),
                    None => println!("Started a fresh database."),
                }
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn run_with(store: &Store, cmd: HistoryCmd) -> anyhow::Result<()> {
    match cmd {
        HistoryCmd::List { limit, offset, archived, all, json } => {
            let filter = if all {
                ArchiveFilter::All
            } else if archived {
                ArchiveFilter::Archived
            } else {
                ArchiveFilter::Active
            };
            let page = store.list_conversations(&ListOptions { filter, limit, offset }).await?;
            if json {
                return print_json(&page);
            }
            if page.items.is_empty() {
                println!("No conversations.");
            }
            for c in &page.items {
                let flags = format!(
                    "{}{}",
                    if c.pinned { " [pinned]" } else { "" },
                    if c.archived { " [archived]" } else { "" }
                );
                let title = if c.title.is_empty() { "(untitled)" } else { &c.title };
                println!("{:>6}  {}  {:>4} msgs  {title}{flags}", c.id, when(c.updated_at), c.message_count);
            }
            if let Some(next) = page.next_offset {
                println!("… more: --offset {next}");
            }
        }
        HistoryCmd::Show { id, json } => {
            let c = store.conversation(id).await?;
            let messages = store.messages(id).await?;
            if json {
                return print_json(&serde_json::json!({"conversation": c, "messages": messages}));
            }
            println!("# {} (conversation {})", if c.title.is_empty() { "(untitled)" } else { &c.title }, c.id);
            for m in &messages {
                let stats = match (m.stats.gen_tokens_per_s, &m.stats.stop_reason) {
                    (Some(tps), Some(stop)) => format!(" · {tps:.1} tok/s · {stop}"),
                    _ => String::new(),
                };
                println!("\n[{} #{} · {}{stats}]", m.role.as_str(), m.id, m.state.as_str());
                println!("{}", m.content);
                for a in &m.attachments {
                    println!("  (attachment: {} · {} · {} bytes)", a.file_name, a.mime, a.byte_size);
                }
            }
        }
        HistoryCmd::Search { query, limit, json } => {
            let mut opts = SearchOptions { limit, ..Default::default() };
            if !json {
                opts.highlight_open = "[".into();
                opts.highlight_close = "]".into();
            }
            let hits = store.search(&query, &opts).await?;
            if json {
                return print_json(&hits);
            }
            if hits.is_empty() {
                println!("No matches.");
            }
            for h in &hits {
                match h.message_id {
                    None => println!("{:>6}  title    {}", h.conversation_id, h.snippet),
                    Some(mid) => println!(
                        "{:>6}  #{mid:<6} {}: {}   ({})",
                        h.conversation_id,
                        h.role.map(|r| r.as_str()).unwrap_or("?"),
                        h.snippet,
                        h.conversation_title
                    ),
                }
            }
        }
        HistoryCmd::Export { id, format, output, json } => {
            let text = match format {
                ExportFormat::Md => store.export_markdown(id).await?,
                ExportFormat::Json => serde_json::to_string_pretty(&store.export_json(id).await?)?,
            };
            match &output {
                Some(path) => {
                    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
                    if json {
                        print_json(&serde_json::json!({"conversation_id": id, "output": path, "bytes": text.len()}))?;
                    }
                }
                None => print!("{text}"),
            }
        }
        HistoryCmd::Import { file, json } => {
            let raw = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let export: ConversationExport = serde_json::from_str(&raw)
                .with_context(|| format!("{} is not a Hearth conversation export (JSON)", file.display()))?;
            let c = store.import_json(&export).await?;
            if json {
                return print_json(&c);
            }
            println!("Imported conversation {} ({} messages): {}", c.id, c.message_count, c.title);
        }
        HistoryCmd::Rename { id, title, json } => {
            store.rename_conversation(id, &title).await?;
            done(store, id, json).await?;
        }
        HistoryCmd::Pin { id, off, json } => {
            store.set_pinned(id, !off).await?;
            done(store, id, json).await?;
        }
        HistoryCmd::Archive { id, off, json } => {
            store.set_archived(id, !off).await?;
            done(store, id, json).await?;
        }
        HistoryCmd::Delete { id, json } => {
            store.delete_conversation(id).await?;
            if json {
                print_json(&serde_json::json!({"deleted": id}))?;
            } else {
                println!("Deleted conversation {id}.");
            }
        }
        HistoryCmd::Recover { .. } => unreachable!("handled before the store is opened"),
    }
    Ok(())
}

async fn done(store: &Store, id: i64, json: bool) -> anyhow::Result<()> {
    let c = store.conversation(id).await?;
    if json {
        print_json(&c)
    } else {
        println!(
            "{:>6}  {}{}{}",
            c.id,
            c.title,
            if c.pinned { " [pinned]" } else { "" },
            if c.archived { " [archived]" } else { "" }
        );
        Ok(())
    }
}
