//! Questions about a document. When the plan reads it whole, the question goes after the whole
//! document, so the runtime's KV cache holds the document from one question to the next and a
//! follow-up costs only its own tokens. When it does not fit, the question is asked of the
//! summary, and the answer says so (`from_summary`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;
use ts_rs::TS;

use super::plan::{Joined, Mode, Plan};
use super::prompt;
use crate::error::{ErrorCode, HearthError, HearthResult};
use crate::runtime::{CompletionRequest, Runtime};

#[derive(Debug, Clone, Serialize, TS)]
pub struct Answer {
    pub text: String,
    /// The document did not fit the context: the answer comes from its summary.
    pub from_summary: bool,
    pub prompt_tokens: usize,
    /// Prompt tokens found in the KV cache (the document, on a follow-up question).
    pub reused_tokens: usize,
}

/// Asks `question` about `joined` on the runtime's loaded model (loaded with the plan's
/// context). `summary` is needed when the plan is map-reduce.
pub fn ask(
    runtime: &Runtime,
    joined: &Joined,
    plan: &Plan,
    summary: Option<&str>,
    question: &str,
    cancel: Arc<AtomicBool>,
    on_text: &mut dyn FnMut(&str),
) -> HearthResult<Answer> {
    let names: Vec<&str> = joined.files.iter().map(|f| f.name.as_str()).collect();
    let (messages, from_summary) = match (plan.mode, summary) {
        (Mode::Whole, _) => (prompt::question(&joined.text, &names, question), false),
        (Mode::MapReduce, Some(s)) => (prompt::question_from_summary(s, &names, question), true),
        (Mode::MapReduce, None) => {
            return Err(HearthError::new(
                ErrorCode::InvalidMessage,
                "the document is longer than the context; summarize it before asking about it",
            ))
        }
    };
    let req = CompletionRequest {
        messages,
        max_tokens: Some(plan.max_tokens),
        sampling: None,
        stop: Vec::new(),
        images: Vec::new(),
    };
    let done = runtime.complete(req, cancel, on_text)?;
    Ok(Answer {
        text: done.text.trim().to_owned(),
        from_summary,
        prompt_tokens: done.prompt_tokens,
        reused_tokens: done.reused_tokens,
    })
}
