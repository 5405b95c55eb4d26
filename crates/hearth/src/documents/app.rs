//! Documents as the desktop app shows them: a card for each attached document before it is sent
//! (kind, size, tokens and the summary plan for the loaded model, or why the file cannot be
//! read), its extracted text, and a summary run on the loaded model with progress and cancel.
//!
//! The app summarizes with the model as it is loaded (its context), never reloading it: the
//! plan here is made for that context, so what the card shows is what the run does.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;
use ts_rs::TS;

use super::plan::{self, Joined, Mode, ModelFacts, Plan, PlanOptions, Source};
use super::summarize::{self, Event, PartStore, Step};
use super::{extract_file_cached, DocKind, Extracted, Limits};
use crate::error::{HearthError, HearthResult};
use crate::runtime::{ModelPhase, Runtime};

/// A summary plan as the card shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub mode: Mode,
    /// The loaded model's context, which the run uses.
    pub context: usize,
    pub chunks: usize,
    pub reduce_levels: usize,
    /// Prompt tokens the whole run reads (instructions included).
    pub prompt_tokens: usize,
    /// At the model's last measured prompt speed; `None` before any reply measured one.
    pub seconds: Option<f64>,
    pub kv_bytes: u64,
    /// Weights, KV cache and runtime allowance.
    pub memory_bytes: u64,
    /// `fits`, `tight` or `too big` against this machine's free memory.
    pub memory_verdict: String,
}

impl From<&Plan> for PlanSummary {
    fn from(p: &Plan) -> Self {
        Self {
            mode: p.mode,
            context: p.context,
            chunks: p.chunks.len(),
            reduce_levels: p.reduce_levels,
            prompt_tokens: p.prompt_tokens,
            seconds: p.seconds,
            kv_bytes: p.kv_bytes,
            memory_bytes: p.memory_bytes,
            memory_verdict: p.memory_verdict.clone(),
        }
    }
}

/// What the composer shows for one attached document.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DocumentCard {
    pub path: String,
    pub name: String,
    /// The file's size on disk (0 when it cannot be read).
    pub size_bytes: u64,
    /// What it was read as; `None` when it could not be read.
    pub kind: Option<DocKind>,
    pub chars: Option<usize>,
    /// Tokens for the loaded model; `None` without one.
    pub tokens: Option<usize>,
    /// The model slot when the card was made: without a ready model there is no plan.
    pub model: ModelPhase,
    pub plan: Option<PlanSummary>,
    /// Why the file cannot be read (`document_*`, `not_found`, ...) or summarized (`context_full`).
    pub error: Option<HearthError>,
}

/// What a running summary sends the window.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SummaryEvent {
    /// Where the run stands: sent once at the start (nothing read) and after every step.
    Progress(summarize::Progress),
    /// A step starts; `resumed`: its result was stored by an earlier run.
    Step { step: Step, resumed: bool },
    /// Text of the step being generated.
    Text { text: String },
}

/// How a summary run ended.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SummaryResult {
    /// The new conversation holding the documents and the summary; `None` when cancelled
    /// (the finished steps stay stored, and the same summary started again resumes).
    pub conversation_id: Option<String>,
    pub cancelled: bool,
    pub summary: String,
    pub mode: Mode,
    pub chunks: usize,
    pub seconds: f64,
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The extracted text of `path` (cached by content under the data folder).
pub async fn document_text(runtime: &Runtime, path: PathBuf) -> HearthResult<Extracted> {
    let data_dir = runtime.data_dir().to_owned();
    tokio::task::spawn_blocking(move || Ok(extract_file_cached(&data_dir, &path, &Limits::default())?))
        .await
        .map_err(HearthError::internal)?
}

/// The text of a stored document attachment (a message's, in the history): what was extracted
/// when it was stored, else extracted now from its stored bytes. An image has none
/// (`not_found`, field `attachment`).
pub async fn attachment_text(runtime: &Runtime, id: i64) -> HearthResult<Extracted> {
    let store = runtime.store();
    let att = store.attachment(id).await?;
    if att.kind != crate::store::AttachmentKind::Document {
        return Err(HearthError::not_found("attachment", id));
    }
    let kind = DocKind::from_path(Path::new(&att.file_name));
    if let Some(text) = att.extracted_text {
        let chars = text.chars().count();
        return Ok(Extracted { kind, text, chars });
    }
    let bytes = store.attachment_bytes(&att).await?;
    let name = att.file_name;
    tokio::task::spawn_blocking(move || Ok(super::extract_bytes(bytes, kind, &name, &Limits::default())?))
        .await
        .map_err(HearthError::internal)?
}

/// The model's last measured prompt speed (tokens/s): this run's (a summary's read parts count,
/// a cancelled one's too), else its stored replies'.
async fn last_prompt_speed(runtime: &Runtime, model_id: &str) -> Option<f64> {
    if let Some(speed) = runtime.prompt_speed(model_id) {
        return Some(speed);
    }
    let r: Result<Option<f64>, sqlx::Error> = sqlx::query_scalar(
        "SELECT prompt_tokens_per_s FROM messages
         WHERE model = ? AND prompt_tokens_per_s > 0 ORDER BY id DESC LIMIT 1",
    )
    .bind(model_id)
    .fetch_optional(runtime.store().pool())
    .await;
    // Only an estimate: a failed read shows no time rather than failing the card.
    r.ok().flatten()
}

/// The loaded model's id, the facts a plan needs and the options for planning on it as loaded,
/// or why there is none (`no_model`, `busy` while loading).
async fn loaded_model(runtime: &Runtime) -> HearthResult<(String, ModelFacts, PlanOptions)> {
    let status = runtime.status();
    let id = match (status.state, status.model_id) {
        (ModelPhase::Ready, Some(id)) => id,
        (ModelPhase::Loading, _) => return Err(HearthError::busy()),
        _ => return Err(HearthError::no_model()),
    };
    let installed = runtime.installed(&id).await?;
    let facts = tokio::task::spawn_blocking(move || {
        ModelFacts::from_gguf_header(&installed.path)?.with_projector(installed.mmproj_path.as_deref())
    })
    .await
    .map_err(HearthError::internal)??;
    // A reply holds the session while it streams (no context then): the settings gave it.
    let context = match status.context_size {
        Some(c) => c,
        None => crate::app_api::AppSettings::load(runtime.store()).await?.context_size.max(1) as usize,
    }
    .min(facts.max_context);
    let opts = PlanOptions {
        context: Some(context),
        prompt_tokens_per_s: last_prompt_speed(runtime, &id).await,
        ..PlanOptions::default()
    };
    Ok((id, facts, opts))
}

/// The card for the document at `path`: never fails; what went wrong is on the card.
pub async fn describe(runtime: &Runtime, path: PathBuf) -> DocumentCard {
    let size_bytes = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
    let mut card = DocumentCard {
        path: path.display().to_string(),
        name: file_name(&path),
        size_bytes,
        kind: None,
        chars: None,
        tokens: None,
        model: runtime.status().state,
        plan: None,
        error: None,
    };
    let doc = match document_text(runtime, path).await {
        Ok(doc) => doc,
        Err(e) => {
            card.error = Some(e);
            return card;
        }
    };
    card.kind = Some(doc.kind);
    card.chars = Some(doc.chars);
    if card.model != ModelPhase::Ready {
        return card;
    }
    let (_, facts, opts) = match loaded_model(runtime).await {
        Ok(m) => m,
        Err(e) => {
            // The model went away between the status and now: say so, as without one.
            card.model = runtime.status().state;
            if card.model == ModelPhase::Ready {
                card.error = Some(e);
            }
            return card;
        }
    };
    let joined = plan::join(&[Source { name: card.name.clone(), text: doc.text }]);
    let counter = runtime.clone();
    let planned = tokio::task::spawn_blocking(move || plan::plan(&joined, &facts, &opts, &counter))
        .await
        .map_err(HearthError::internal)
        .and_then(|r| r);
    match planned {
        Ok(p) => {
            card.tokens = Some(p.tokens);
            card.plan = Some(PlanSummary::from(&p));
        }
        Err(e) => card.error = Some(e),
    }
    card
}

/// The documents' texts joined (see [`plan::join`]), each extracted under the default limits.
fn sources(data_dir: &Path, paths: &[PathBuf]) -> HearthResult<Joined> {
    let sources = paths
        .iter()
        .map(|p| {
            let doc = extract_file_cached(data_dir, p, &Limits::default())?;
            Ok(Source { name: file_name(p), text: doc.text })
        })
        .collect::<HearthResult<Vec<_>>>()?;
    Ok(plan::join(&sources))
}

/// Summarizes the documents at `paths` on the loaded model as loaded, sending progress to
/// `on_event`, and saves the result as a new conversation (the documents attached to its user
/// message, with their text). Setting `cancel` stops within a token; the finished steps stay
/// stored and the same summary started again resumes from them. Refused with `no_model`,
/// `busy` (a reply or another summary running, a model loading) or the documents' own errors.
pub async fn summarize(
    runtime: &Runtime,
    paths: Vec<PathBuf>,
    cancel: Arc<AtomicBool>,
    mut on_event: impl FnMut(SummaryEvent) + Send + 'static,
) -> HearthResult<SummaryResult> {
    let (model_id, facts, opts) = loaded_model(runtime).await?;
    let data_dir = runtime.data_dir().to_owned();
    let rt = runtime.clone();
    let model_key = model_id.clone();
    let paths_for_run = paths.clone();
    let (joined, outcome) = tokio::task::spawn_blocking(move || -> HearthResult<_> {
        let joined = sources(&data_dir, &paths_for_run)?;
        let plan = plan::plan(&joined, &facts, &opts, &rt)?;
        on_event(SummaryEvent::Progress(summarize::Progress {
            tokens_read: 0,
            tokens_total: plan.prompt_tokens.max(1),
            steps_done: 0,
            steps_total: 0,
            tokens_per_s: 0.0,
            seconds_left: plan.seconds,
        }));
        let parts = PartStore::new(&data_dir, &joined, &plan, &model_key);
        let outcome = summarize::run(&rt, &joined, &plan, &parts, cancel, &mut |e| match e {
            Event::Step { step, resumed, .. } => on_event(SummaryEvent::Step { step, resumed }),
            Event::Text(t) => on_event(SummaryEvent::Text { text: t.to_owned() }),
            Event::Progress(p) => on_event(SummaryEvent::Progress(p.clone())),
        })?;
        Ok((joined, outcome))
    })
    .await
    .map_err(HearthError::internal)??;
    let mut result = SummaryResult {
        conversation_id: None,
        cancelled: outcome.cancelled,
        summary: outcome.summary,
        mode: outcome.mode,
        chunks: outcome.chunks,
        seconds: outcome.seconds,
    };
    if outcome.cancelled {
        return Ok(result);
    }
    let attachments = paths
        .iter()
        .zip(&joined.files)
        .map(|(p, span)| {
            let mut att = crate::store::read_attachment_file(p)?;
            att.extracted_text = Some(plan::slice_chars(&joined.text, span.start, span.end).to_owned());
            Ok(att)
        })
        .collect::<HearthResult<Vec<_>>>()?;
    let id = summarize::save(runtime.store(), &model_id, attachments, &result.summary).await?;
    result.conversation_id = Some(id.to_string());
    Ok(result)
}
