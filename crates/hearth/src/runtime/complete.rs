//! Raw completions: a list of chat messages in, streamed text out, nothing stored.
//!
//! For front ends whose requests are not conversation turns: the local API server and document
//! summaries. A completion takes the same model slot and the same one-at-a-time rule as a chat
//! turn (refused with `busy` while another generation runs), and runs inside the same panic
//! boundary. It uses the loaded model's session, so a request that repeats an earlier prompt's
//! beginning (a follow-up question about a document, a chat client resending its history) only
//! computes its new tokens.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use engine::chat_template::ChatMessage;
use engine::sampler::SamplingParams;
use engine::session::{GenerateOptions, StopReason};
use serde::Serialize;

use super::load::panic_text;
use super::turn::{reset_session, Release};
use super::{lock, Running, Runtime};
use crate::app_api::AppSettings;
use crate::chat::ChatError;
use crate::error::{HearthError, HearthResult};

/// One completion to run.
#[derive(Debug, Clone, Default)]
pub struct CompletionRequest {
    /// The conversation as the model should see it, oldest first (an optional system message,
    /// then alternating user and assistant, ending with the user's).
    pub messages: Vec<ChatMessage>,
    /// The reply's length limit; `None`: the runtime's reply limit.
    pub max_tokens: Option<usize>,
    /// `None`: the app's sampling settings.
    pub sampling: Option<SamplingParams>,
    /// The reply ends before the first of these it contains.
    pub stop: Vec<String>,
    /// Images (encoded files: PNG, JPEG, …), each before the text of the user message it
    /// belongs to, in order. Refused with `image_input_unsupported` unless the model reads images.
    pub images: Vec<CompletionImage>,
}

/// One image of a completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionImage {
    /// The index in `CompletionRequest::messages` of the (user) message it belongs to.
    pub message: usize,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// What a completion produced.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens found in the KV cache and not computed again.
    pub reused_tokens: usize,
    pub completion_tokens: usize,
    pub stop: StopReason,
    pub prompt_tokens_per_s: f64,
    pub gen_tokens_per_s: f64,
}

impl Runtime {
    /// Runs `req` on the loaded model, streaming each piece of text to `on_text`. Blocking: call
    /// it from a thread of its own or `spawn_blocking`, never from inside the runtime's tokio
    /// handle. Setting `cancel` ends it within one token (`stop` = `cancelled`, text so far
    /// kept). Refused with `no_model` or `busy` before anything runs; a prompt longer than the
    /// context fails with `context_full`.
    pub fn complete(
        &self,
        req: CompletionRequest,
        cancel: Arc<AtomicBool>,
        on_text: &mut dyn FnMut(&str),
    ) -> HearthResult<Completion> {
        self.complete_with_progress(req, cancel, &mut |_, _| {}, on_text)
    }

    /// `complete`, telling `on_prompt(read, total)` how far a long text prompt has been read
    /// (every [`PROMPT_PROGRESS_TOKENS`]): a document read whole can take minutes before its
    /// first word. Cancel is honoured between those parts too.
    pub fn complete_with_progress(
        &self,
        req: CompletionRequest,
        cancel: Arc<AtomicBool>,
        on_prompt: &mut dyn FnMut(usize, usize),
        on_text: &mut dyn FnMut(&str),
    ) -> HearthResult<Completion> {
        if req.messages.is_empty() {
            return Err(HearthError::new(crate::error::ErrorCode::InvalidMessage, "a completion needs a message"));
        }
        // The app's settings give the sampling a request leaves out and how images are read.
        let settings = if req.sampling.is_none() || !req.images.is_empty() {
            Some(self.inner.rt.block_on(AppSettings::load(&self.inner.store))?)
        } else {
            None
        };
        let pan_scan = settings.as_ref().and_then(AppSettings::pan_scan_rule);
        let sampling = match (req.sampling, &settings) {
            (Some(s), _) => s,
            (None, Some(app)) => app.sampling(),
            (None, None) => AppSettings::default().sampling(),
        };
        let max_tokens = req.max_tokens.unwrap_or_else(|| self.inner.reply_limit.load(Ordering::Relaxed)).max(1);
        // Both locks, in begin_load's order (as a chat turn takes them).
        let (session, vision) = {
            let mut running = lock(&self.inner.running);
            let (_, session) = self.session()?;
            let vision = self.vision();
            if running.is_some() {
                return Err(HearthError::busy());
            }
            *running = Some(Running {
                conversation_id: None,
                cancel: cancel.clone(),
                stopped_by_user: Arc::new(AtomicBool::new(false)),
                thread: None,
                _queue_turn: None,
            });
            (session, vision)
        };
        let _release = Release { inner: &self.inner, cancel: cancel.clone() };
        let opts = GenerateOptions { max_tokens, sampling, stop_strings: req.stop, cancel: Some(cancel.clone()) };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut s = lock(&session);
            let mut cached_before = usize::MAX;
            let (prompt, images) = if req.images.is_empty() {
                let prompt = s.chat_prompt(&req.messages)?;
                cached_before = s.cached_prefix(&prompt);
                let read = read_in_parts(&mut s, &prompt, cached_before, &cancel, on_prompt)?;
                if let Some(speed) = read.tokens_per_s {
                    self.note_prompt_speed(speed);
                }
                if let Some(cancelled) = read.cancelled {
                    return Ok(cancelled);
                }
                (prompt, Vec::new())
            } else {
                let images: Vec<(usize, &[u8])> = req.images.iter().map(|i| (i.message, &i.bytes[..])).collect();
                let p = crate::turn_inputs::completion_prompt(
                    &s,
                    vision.as_deref(),
                    pan_scan.as_ref(),
                    &req.messages,
                    &images,
                )
                .map_err(completion_error)?;
                (p.ids, p.images)
            };
            let mut r = s
                .generate_with_images(&prompt, &images, &opts, &mut |piece: &str| {
                    fail::fail_point!("runtime::complete::token");
                    on_text(piece);
                })
                .map_err(HearthError::from)?;
            // What was cached before this request, not what the parts read above left there.
            r.reused_tokens = r.reused_tokens.min(cached_before);
            Ok(r)
        }));
        if let Ok(Ok(r)) = &result {
            self.note_prompt_speed(r.prompt_tokens_per_s);
        }
        match result {
            Ok(Ok(r)) => Ok(Completion {
                completion_tokens: r.ids.len(),
                text: r.text,
                prompt_tokens: r.prompt_tokens,
                reused_tokens: r.reused_tokens,
                stop: r.stop,
                prompt_tokens_per_s: r.prompt_tokens_per_s,
                gen_tokens_per_s: r.gen_tokens_per_s,
            }),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let e = HearthError::internal(format!("the completion crashed: {}", panic_text(&*panic)));
                log::error!("{}", e.message);
                reset_session(&self.inner, &session);
                Err(e)
            }
        }
    }

    /// How many tokens `text` is for the loaded model's tokenizer (no special tokens added).
    pub fn count_tokens(&self, text: &str) -> HearthResult<usize> {
        // The tokenizer lives on the engine, which a running reply does not lock.
        let engine = match &*lock(&self.inner.slot) {
            super::Slot::Ready { engine, .. } => Some(engine.clone()),
            _ => None,
        };
        // No local model: `session` says why (none, loading, or a remote one).
        let Some(engine) = engine else { return self.session().map(|_| 0) };
        Ok(engine.tokenizer().encode(text, false)?.len())
    }
}

/// How often (in prompt tokens) a long prompt's reading is reported: the engine's prefill chunk,
/// so reading in parts computes exactly what one prefill would.
pub const PROMPT_PROGRESS_TOKENS: usize = engine::session::PREFILL_CHUNK;

/// What [`read_in_parts`] did: `cancelled` (an empty, cancelled result) when `cancel` was set
/// between parts, else `None` and the rest is left to `generate`; the speed of the parts read.
struct PartsRead {
    cancelled: Option<engine::session::GenerationResult>,
    tokens_per_s: Option<f64>,
}

/// Reads the first parts of a long prompt into the session's cache (what `generate` then finds
/// there and does not compute again), reporting each; `cached` of its tokens are in the cache
/// already.
fn read_in_parts(
    s: &mut engine::session::Session,
    prompt: &[u32],
    cached: usize,
    cancel: &AtomicBool,
    on_prompt: &mut dyn FnMut(usize, usize),
) -> HearthResult<PartsRead> {
    let mut read = PartsRead { cancelled: None, tokens_per_s: None };
    if prompt.len() <= PROMPT_PROGRESS_TOKENS || prompt.len() > s.context() {
        // Short, or refused by `generate` with the numbers.
        return Ok(read);
    }
    let began = std::time::Instant::now();
    let mut end = (cached / PROMPT_PROGRESS_TOKENS + 1) * PROMPT_PROGRESS_TOKENS;
    while end < prompt.len() {
        if cancel.load(Ordering::SeqCst) {
            read.cancelled = Some(engine::session::GenerationResult {
                ids: Vec::new(),
                text: String::new(),
                stop: StopReason::Cancelled,
                prompt_tokens: prompt.len(),
                reused_tokens: cached,
                prompt_tokens_per_s: 0.0,
                gen_tokens_per_s: 0.0,
            });
            break;
        }
        s.next_token_top(&prompt[..end], &[], 1)?;
        on_prompt(end, prompt.len());
        let seconds = began.elapsed().as_secs_f64();
        read.tokens_per_s = (seconds > 0.0).then(|| end.saturating_sub(cached) as f64 / seconds);
        end += PROMPT_PROGRESS_TOKENS;
    }
    Ok(read)
}

/// A completion's image that cannot be decoded came with the request, unlike a chat turn's
/// stored file: the caller's mistake (`invalid_message`), not an unreadable attachment.
fn completion_error(e: ChatError) -> HearthError {
    match e {
        ChatError::Image { .. } => HearthError::new(crate::error::ErrorCode::InvalidMessage, e.to_string()),
        other => other.into(),
    }
}
