//! The instructions around a document, in one place: the plan counts their tokens and the run
//! sends them.

use engine::chat_template::{ChatMessage, Role};

/// Tokens the chat template adds around one user message (`<start_of_turn>user`, ...,
/// `<start_of_turn>model`), plus BOS, rounded up.
pub const TEMPLATE_TOKENS: usize = 16;

/// Part of the key of stored partial summaries: change it when the prompts change.
pub const VERSION: u32 = 1;

const KEEP: &str = "Keep the key facts, names, numbers, dates and decisions. Write plain prose.";

/// The whole document at once.
pub fn whole(text: &str, files: &[&str]) -> Vec<ChatMessage> {
    let what = describe(files);
    vec![ChatMessage::new(Role::User, format!("Summarize {what}. {KEEP}\n\n<document>\n{text}\n</document>"))]
}

/// One chunk of a longer document (`part` counts from 1).
pub fn map(chunk: &str, part: usize, parts: usize, files: &[&str]) -> Vec<ChatMessage> {
    let what = describe(files);
    vec![ChatMessage::new(
        Role::User,
        format!(
            "This is part {part} of {parts} of {what}. Summarize this part only. {KEEP}\n\n\
             <document_part>\n{chunk}\n</document_part>"
        ),
    )]
}

/// Summaries of consecutive parts, to be combined into one.
pub fn reduce(summaries: &[&str], files: &[&str]) -> Vec<ChatMessage> {
    let what = describe(files);
    let mut body = String::new();
    for (i, s) in summaries.iter().enumerate() {
        body.push_str(&format!("<part_summary n=\"{}\">\n{}\n</part_summary>\n", i + 1, s.trim()));
    }
    vec![ChatMessage::new(
        Role::User,
        format!(
            "These are summaries of consecutive parts of {what}, in order. Combine them into one \
             summary of the whole. {KEEP}\n\n{body}"
        ),
    )]
}

fn describe(files: &[&str]) -> String {
    match files {
        [] => "a document".to_owned(),
        [one] => format!("the document \"{one}\""),
        many => format!(
            "a set of {} documents ({})",
            many.len(),
            many.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The text of a prompt, for counting its tokens.
pub fn text_of(messages: &[ChatMessage]) -> String {
    messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
}

/// A question about a document read whole. The document comes before the question, so a
/// follow-up question shares the whole document as the prompt's beginning, which the runtime
/// finds in the KV cache instead of reading it again.
pub fn question(text: &str, files: &[&str], question: &str) -> Vec<ChatMessage> {
    let what = describe(files);
    vec![ChatMessage::new(
        Role::User,
        format!(
            "Answer a question about {what}, using only the document below.\n\n<document>\n{text}\n</document>\n\n\
             Question: {question}"
        ),
    )]
}

/// A question about a document too long to read whole: asked of its summary.
pub fn question_from_summary(summary: &str, files: &[&str], question: &str) -> Vec<ChatMessage> {
    let what = describe(files);
    vec![ChatMessage::new(
        Role::User,
        format!(
            "Below is a summary of {what}, which is too long to read whole. Answer the question using only \
             the summary, and say if it does not contain the answer.\n\n<summary>\n{summary}\n</summary>\n\n\
             Question: {question}"
        ),
    )]
}
