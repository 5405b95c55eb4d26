//! Running a [`Plan`] through the runtime's raw completions ([`Runtime::complete`]): the whole
//! document at once, or a partial summary per chunk and then summaries of summaries, as many
//! rounds as the plan's fan-in needs.
//!
//! Every finished step is stored at once ([`PartStore`]: files under the data folder, keyed by
//! the text's sha256, the model and the plan), so a run that was cancelled, crashed or killed
//! resumes from the last finished step. The result is saved as an assistant message in a new
//! conversation, after a user message with the documents attached ([`save`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use engine::chat_template::ChatMessage;
use engine::session::StopReason;
use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

use super::plan::{slice_chars, Joined, Mode, Plan};
use super::prompt;
use crate::error::{HearthError, HearthResult};
use crate::runtime::{CompletionRequest, Runtime};
use crate::store::{ConversationId, NewAttachment, NewConversation, NewMessage, Role, Store};

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Whole,
    /// Partial summary of chunk `index` (from 0).
    Map {
        index: usize,
    },
    /// Summary of a group of summaries: round `level` (from 1), group `index` (from 0).
    Reduce {
        level: usize,
        index: usize,
    },
}

impl Step {
    fn file_name(self) -> String {
        match self {
            Step::Whole => "whole.txt".to_owned(),
            Step::Map { index } => format!("map-{index:05}.txt"),
            Step::Reduce { level, index } => format!("reduce-{level:02}-{index:05}.txt"),
        }
    }
}

/// Where a run stands, after each step. The window gets it as is (`SummaryProgress` in the
/// IPC types); the CLI draws its bar from it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "SummaryProgress")]
pub struct Progress {
    /// Prompt tokens read so far (steps resumed from storage count as read).
    pub tokens_read: usize,
    /// The plan's estimate of all prompt tokens.
    pub tokens_total: usize,
    pub steps_done: usize,
    pub steps_total: usize,
    /// Prompt tokens per second over this run's computed steps (0 before the first).
    pub tokens_per_s: f64,
    pub seconds_left: Option<f64>,
}

/// What a run tells its caller as it goes.
pub enum Event<'a> {
    /// A step starts (`resumed`: its result was stored by an earlier run and is reused).
    Step {
        step: Step,
        prompt: &'a [ChatMessage],
        resumed: bool,
    },
    /// Text of the step being generated.
    Text(&'a str),
    Progress(&'a Progress),
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct Outcome {
    /// The summary; with `cancelled`, what the last step had written.
    pub summary: String,
    pub mode: Mode,
    pub chunks: usize,
    /// Prompt tokens this run computed (resumed steps are not counted).
    pub prompt_tokens: usize,
    pub seconds: f64,
    /// Steps reused from storage, and steps computed by this run.
    pub resumed_steps: usize,
    pub computed_steps: usize,
    pub cancelled: bool,
}

/// Finished steps of one (document, model, plan), as files written whole (temp file + rename),
/// so a kill leaves either the whole step or none of it.
pub struct PartStore {
    dir: PathBuf,
}

impl PartStore {
    /// `data_dir/documents/partials/<key>`, where the key hashes the text, the model and what
    /// of the plan decides the steps' prompts.
    pub fn new(data_dir: &Path, joined: &Joined, plan: &Plan, model_key: &str) -> Self {
        let shape = serde_json::json!({
            "model": model_key, "mode": plan.mode, "context": plan.context, "max": plan.max_tokens,
            "map_max": plan.map_max_tokens, "fan_in": plan.reduce_fan_in, "chunks": plan.chunks,
            "files": plan.files, "prompts": prompt::VERSION,
        });
        let key = sha256_hex(format!("{}\0{}", joined.text, shape).as_bytes());
        Self { dir: data_dir.join("documents").join("partials").join(key) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn get(&self, step: Step) -> Option<String> {
        std::fs::read_to_string(self.dir.join(step.file_name())).ok()
    }

    fn put(&self, step: Step, text: &str) -> HearthResult<()> {
        let io = |e: std::io::Error| {
            HearthError::from(crate::store::StoreError::Io {
                action: "store a partial summary in",
                path: self.dir.clone(),
                source: e,
            })
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let tmp = self.dir.join(format!("{}.tmp", step.file_name()));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(step.file_name())).map_err(io)
    }
}

/// Runs `plan` over `joined` on the runtime's loaded model (loaded with the plan's context).
/// Blocking. Setting `cancel` stops within a token; the steps finished so far stay stored.
pub fn run(
    runtime: &Runtime,
    joined: &Joined,
    plan: &Plan,
    parts: &PartStore,
    cancel: Arc<AtomicBool>,
    on_event: &mut dyn FnMut(Event),
) -> HearthResult<Outcome> {
    let names: Vec<&str> = joined.files.iter().map(|f| f.name.as_str()).collect();
    let started = Instant::now();
    let mut run = Running {
        runtime,
        parts,
        cancel,
        on_event,
        progress: Progress {
            tokens_read: 0,
            tokens_total: plan.prompt_tokens.max(1),
            steps_done: 0,
            steps_total: steps_total(plan),
            tokens_per_s: 0.0,
            seconds_left: None,
        },
        computed_tokens: 0,
        compute_seconds: 0.0,
        resumed: 0,
        computed: 0,
    };
    let finish = |run: &Running, summary: String, cancelled: bool| Outcome {
        summary,
        mode: plan.mode,
        chunks: plan.chunks.len(),
        prompt_tokens: run.computed_tokens,
        seconds: started.elapsed().as_secs_f64(),
        resumed_steps: run.resumed,
        computed_steps: run.computed,
        cancelled,
    };
    if plan.mode == Mode::Whole {
        let (text, done) = run.step(Step::Whole, prompt::whole(&joined.text, &names), plan.max_tokens, plan.tokens)?;
        return Ok(finish(&run, text, !done));
    }
    let n = plan.chunks.len();
    let mut level_texts = Vec::with_capacity(n);
    for (index, c) in plan.chunks.iter().enumerate() {
        let chunk = slice_chars(&joined.text, c.start, c.end);
        let messages = prompt::map(chunk, index + 1, n, &names);
        let (text, done) = run.step(Step::Map { index }, messages, plan.map_max_tokens, c.tokens)?;
        if !done {
            return Ok(finish(&run, text, true));
        }
        level_texts.push(text);
    }
    let mut level = 0;
    while level_texts.len() > 1 {
        level += 1;
        let groups: Vec<Vec<String>> = level_texts.chunks(plan.reduce_fan_in.max(2)).map(<[String]>::to_vec).collect();
        let last_round = groups.len() == 1;
        let max = if last_round { plan.max_tokens } else { plan.map_max_tokens };
        let mut next = Vec::with_capacity(groups.len());
        for (index, group) in groups.iter().enumerate() {
            let refs: Vec<&str> = group.iter().map(String::as_str).collect();
            let messages = prompt::reduce(&refs, &names);
            let (text, done) = run.step(Step::Reduce { level, index }, messages, max, 0)?;
            if !done {
                return Ok(finish(&run, text, true));
            }
            next.push(text);
        }
        level_texts = next;
    }
    let summary = level_texts.pop().unwrap_or_default();
    Ok(finish(&run, summary, false))
}

fn steps_total(plan: &Plan) -> usize {
    if plan.mode == Mode::Whole {
        return 1;
    }
    let mut total = plan.chunks.len();
    let mut left = plan.chunks.len();
    while left > 1 {
        left = left.div_ceil(plan.reduce_fan_in.max(2));
        total += left;
    }
    total
}

struct Running<'a> {
    runtime: &'a Runtime,
    parts: &'a PartStore,
    cancel: Arc<AtomicBool>,
    on_event: &'a mut dyn FnMut(Event),
    progress: Progress,
    computed_tokens: usize,
    compute_seconds: f64,
    resumed: usize,
    computed: usize,
}

impl Running<'_> {
    /// One step: its stored result, else a completion. `(text, finished)`; not finished means
    /// cancelled (nothing stored).
    fn step(
        &mut self,
        step: Step,
        messages: Vec<ChatMessage>,
        max_tokens: usize,
        estimate: usize,
    ) -> HearthResult<(String, bool)> {
        if let Some(text) = self.parts.get(step) {
            (self.on_event)(Event::Step { step, prompt: &messages, resumed: true });
            self.resumed += 1;
            self.advance(estimate, None);
            return Ok((text, true));
        }
        if self.cancel.load(Ordering::SeqCst) {
            return Ok((String::new(), false));
        }
        (self.on_event)(Event::Step { step, prompt: &messages, resumed: false });
        let req = CompletionRequest {
            messages,
            max_tokens: Some(max_tokens),
            sampling: None,
            stop: Vec::new(),
            images: Vec::new(),
        };
        let started = Instant::now();
        // The step's reading is reported as it goes (a whole document is one long step); the
        // two callbacks never run at once.
        let base = self.progress.clone();
        let (tokens, seconds) = (self.computed_tokens, self.compute_seconds);
        let on_event = std::cell::RefCell::new(&mut *self.on_event);
        let done = self.runtime.complete_with_progress(
            req,
            self.cancel.clone(),
            &mut |read, _| {
                let mut p = base.clone();
                p.tokens_read = (p.tokens_read + read).min(p.tokens_total);
                p.tokens_per_s = (tokens + read) as f64 / (seconds + started.elapsed().as_secs_f64());
                p.seconds_left = Some((p.tokens_total - p.tokens_read) as f64 / p.tokens_per_s);
                (on_event.borrow_mut())(Event::Progress(&p));
            },
            &mut |t| (on_event.borrow_mut())(Event::Text(t)),
        )?;
        if done.stop == StopReason::Cancelled {
            return Ok((done.text, false));
        }
        let text = done.text.trim().to_owned();
        self.parts.put(step, &text)?;
        self.computed += 1;
        self.computed_tokens += done.prompt_tokens;
        self.compute_seconds += started.elapsed().as_secs_f64();
        self.advance(done.prompt_tokens, Some(done.prompt_tokens));
        Ok((text, true))
    }

    fn advance(&mut self, read: usize, _computed: Option<usize>) {
        let p = &mut self.progress;
        p.steps_done += 1;
        p.tokens_read = (p.tokens_read + read).min(p.tokens_total);
        if self.compute_seconds > 0.0 {
            p.tokens_per_s = self.computed_tokens as f64 / self.compute_seconds;
            p.seconds_left = Some((p.tokens_total - p.tokens_read) as f64 / p.tokens_per_s);
        }
        if p.steps_done == p.steps_total {
            p.tokens_read = p.tokens_total;
            p.seconds_left = Some(0.0);
        }
        (self.on_event)(Event::Progress(&self.progress));
    }
}

/// Saves a finished summary: a new conversation with a user message that asks for it, with
/// the documents attached (their extracted text with them), and the summary as the reply.
pub async fn save(
    store: &Store,
    model_label: &str,
    documents: Vec<NewAttachment>,
    summary: &str,
) -> HearthResult<ConversationId> {
    let names: Vec<&str> = documents.iter().map(|d| d.file_name.as_str()).collect();
    let title = format!("Summary: {}", names.join(", "));
    let conv = store
        .create_conversation(&NewConversation {
            title,
            model: Some(model_label.to_owned()),
            system_prompt: None,
            sampling: Default::default(),
        })
        .await?;
    let ask = format!("Summarize {}.", names.join(", "));
    let user = store.append_message(conv.id, &NewMessage::complete(Role::User, ask)).await?;
    for d in &documents {
        store.add_attachment(user.id, d).await?;
    }
    store.append_message(conv.id, &NewMessage::complete(Role::Assistant, summary)).await?;
    Ok(conv.id)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
