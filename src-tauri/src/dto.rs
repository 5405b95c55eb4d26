//! The JSON shapes of ui/IPC.md, built from the services' types. Field names are camelCase;
//! ids are strings; timestamps RFC 3339.

use hearth::app_api::rfc3339_utc;
use hearth::store;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub pinned: bool,
    pub archived: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&store::Conversation> for Conversation {
    fn from(c: &store::Conversation) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title.clone(),
            pinned: c.pinned,
            archived: c.archived,
            created_at: rfc3339_utc(c.created_at),
            updated_at: rfc3339_utc(c.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub conversation_id: String,
    pub message_id: Option<String>,
    pub title: String,
    pub snippet: String,
}

impl From<store::SearchHit> for SearchHit {
    fn from(h: store::SearchHit) -> Self {
        Self {
            conversation_id: h.conversation_id.to_string(),
            message_id: h.message_id.map(|m| m.to_string()),
            title: h.conversation_title,
            snippet: h.snippet,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStats {
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub stop_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
}

/// The engine's stop reasons in the UI's words: a user's stop is `stopped`; a stop string
/// ends a reply as naturally as end-of-sequence.
pub fn stop_reason(engine_reason: &str) -> &'static str {
    match engine_reason {
        "max_tokens" => "max_tokens",
        "cancelled" => "stopped",
        "context_full" => "context_full",
        _ => "eos",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorPayload {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub index: usize,
    pub count: usize,
    pub sibling_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub role: &'static str,
    pub text: String,
    pub state: &'static str,
    pub error: Option<ErrorPayload>,
    pub stats: Option<GenerationStats>,
    pub attachments: Vec<String>,
    pub created_at: String,
    pub branch: Branch,
}

/// Where a message stands among its siblings (`siblings`: creation order, from the store's
/// message tree). A message missing from the list (added after the tree was read) is shown as
/// its own only version rather than at a wrong position.
pub fn branch_of(id: store::MessageId, siblings: &[store::MessageId]) -> Branch {
    match siblings.iter().position(|&s| s == id) {
        Some(index) => Branch {
            index,
            count: siblings.len(),
            sibling_ids: siblings.iter().map(|s| s.to_string()).collect(),
        },
        None => Branch { index: 0, count: 1, sibling_ids: vec![id.to_string()] },
    }
}

impl Message {
    /// `m` with its place among `siblings` (see [`branch_of`]).
    pub fn new(m: &store::Message, siblings: &[store::MessageId]) -> Self {
        let stats = m.stats.stop_reason.as_deref().map(|r| GenerationStats {
            tokens: m.token_count.unwrap_or(0).max(0) as u64,
            tokens_per_s: m.stats.gen_tokens_per_s.unwrap_or(0.0),
            stop_reason: stop_reason(r),
            prompt_tokens: None,
        });
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            // The store's system role never reaches the UI's list (see list_messages).
            role: if m.role == store::Role::User { "user" } else { "assistant" },
            text: m.content.clone(),
            state: m.state.as_str(),
            error: m
                .error
                .as_ref()
                .filter(|_| m.state == store::MessageState::Error)
                .map(|e| ErrorPayload { code: "generation", message: e.clone() }),
            stats,
            attachments: m.attachments.iter().map(|a| a.file_name.clone()).collect(),
            created_at: rfc3339_utc(m.created_at),
            branch: branch_of(m.id, siblings),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    pub messages: Vec<Message>,
    pub context_tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStarted {
    pub user_message_id: Option<String>,
    pub assistant_message_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StreamEvent {
    Token { text: String },
    Done { stats: GenerationStats },
    Error { message: String, code: &'static str },
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LoadEvent {
    Progress { fraction: f64 },
    Done,
    Error { message: String, code: &'static str },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledModel {
    pub id: String,
    pub name: String,
    pub path: String,
    pub size_bytes: u64,
    pub quant: String,
    pub context_length: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub family: String,
    pub quant: String,
    pub size_bytes: u64,
    pub required_bytes: u64,
    pub available_bytes: u64,
    pub fit: &'static str,
    pub description: String,
    pub installed: bool,
    pub download: Option<DownloadStatus>,
}

/// `CatalogEntry.download`: an unfinished download of this model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadStatus {
    pub state: &'static str,
    pub bytes: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum DownloadEvent {
    /// `rate` in bytes/s, `eta` in seconds.
    Progress { bytes: u64, total: u64, rate: f64, eta: Option<f64> },
    Done { model: InstalledModel },
    Cancelled,
    Error { message: String, code: &'static str },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelState {
    pub state: &'static str,
    pub model_id: Option<String>,
    pub name: Option<String>,
    pub context_size: Option<usize>,
    /// While `loading`: the fraction read so far (0..=1).
    pub load_fraction: Option<f64>,
    pub error: Option<ErrorPayload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_have_the_ipc_shape() {
        let v = serde_json::to_value(StreamEvent::Token { text: "hi".into() }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "token", "text": "hi"}));
        let v = serde_json::to_value(StreamEvent::Done {
            stats: GenerationStats { tokens: 3, tokens_per_s: 1.5, stop_reason: "stopped", prompt_tokens: Some(9) },
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "done", "stats": {"tokens": 3, "tokensPerS": 1.5, "stopReason": "stopped", "promptTokens": 9}})
        );
        let v = serde_json::to_value(LoadEvent::Progress { fraction: 0.5 }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "progress", "fraction": 0.5}));
        let v = serde_json::to_value(DownloadEvent::Progress { bytes: 5, total: 10, rate: 2.5, eta: Some(2.0) }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "progress", "bytes": 5, "total": 10, "rate": 2.5, "eta": 2.0}));
        let v = serde_json::to_value(DownloadEvent::Cancelled).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "cancelled"}));
        let v = serde_json::to_value(DownloadStatus { state: "paused", bytes: 1, total: 2 }).unwrap();
        assert_eq!(v, serde_json::json!({"state": "paused", "bytes": 1, "total": 2}));
    }

    #[test]
    fn branches_give_the_position_among_siblings() {
        let b = branch_of(7, &[3, 7, 9]);
        assert_eq!((b.index, b.count), (1, 3));
        assert_eq!(b.sibling_ids, ["3", "7", "9"]);
        let v = serde_json::to_value(branch_of(3, &[3])).unwrap();
        assert_eq!(v, serde_json::json!({"index": 0, "count": 1, "siblingIds": ["3"]}));
        // Not among the siblings given: its own only version, never a wrong index.
        let b = branch_of(5, &[3, 7]);
        assert_eq!((b.index, b.count, b.sibling_ids), (0, 1, vec!["5".to_string()]));
    }

    #[test]
    fn stop_reasons_use_the_ui_names() {
        assert_eq!(stop_reason("cancelled"), "stopped");
        assert_eq!(stop_reason("stop_string"), "eos");
        assert_eq!(stop_reason("eos"), "eos");
        assert_eq!(stop_reason("max_tokens"), "max_tokens");
        assert_eq!(stop_reason("context_full"), "context_full");
    }
}
