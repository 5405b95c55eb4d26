//! The JSON shapes of ui/IPC.md, built from the services' types. Field names are camelCase;
//! ids are strings; timestamps RFC 3339.

use hearth::app_api::rfc3339_utc;
use hearth::error::HearthError;
use hearth::runtime::ReplyStats;
use hearth::store;
use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, Clone, Serialize, TS)]
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

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
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

/// Who wrote a message, as the window shows it (the system prompt is never listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub index: usize,
    pub count: usize,
    pub sibling_ids: Vec<String>,
}

/// One attachment of a stored message, for its chip (an image's thumbnail comes from
/// `attachment_thumbnail` by this id).
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    pub id: String,
    pub name: String,
    #[ts(type = "\"image\" | \"document\"")]
    pub kind: store::AttachmentKind,
    pub size_bytes: u64,
}

impl From<&store::Attachment> for AttachmentInfo {
    fn from(a: &store::Attachment) -> Self {
        Self { id: a.id.to_string(), name: a.file_name.clone(), kind: a.kind, size_bytes: a.byte_size.max(0) as u64 }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub role: MessageRole,
    pub text: String,
    pub state: store::MessageState,
    pub error: Option<HearthError>,
    pub stats: Option<ReplyStats>,
    pub attachments: Vec<String>,
    /// `attachments` with their ids and kinds, in the same order.
    pub attachment_items: Vec<AttachmentInfo>,
    pub created_at: String,
    pub branch: Branch,
}

/// Where a message stands among its siblings (`siblings`: creation order, from the store's
/// message tree). A message missing from the list (added after the tree was read) is shown as
/// its own only version rather than at a wrong position.
pub fn branch_of(id: store::MessageId, siblings: &[store::MessageId]) -> Branch {
    match siblings.iter().position(|&s| s == id) {
        Some(index) => {
            Branch { index, count: siblings.len(), sibling_ids: siblings.iter().map(|s| s.to_string()).collect() }
        }
        None => Branch { index: 0, count: 1, sibling_ids: vec![id.to_string()] },
    }
}

impl Message {
    /// `m` with its place among `siblings` (see [`branch_of`]).
    pub fn new(m: &store::Message, siblings: &[store::MessageId]) -> Self {
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            // The store's system role never reaches the UI's list (see list_messages).
            role: if m.role == store::Role::User { MessageRole::User } else { MessageRole::Assistant },
            text: m.content.clone(),
            state: m.state,
            error: m.error.as_deref().filter(|_| m.state == store::MessageState::Error).map(HearthError::from_stored),
            stats: ReplyStats::from_stored(m),
            attachments: m.attachments.iter().map(|a| a.file_name.clone()).collect(),
            attachment_items: m.attachments.iter().map(AttachmentInfo::from).collect(),
            created_at: rfc3339_utc(m.created_at),
            branch: branch_of(m.id, siblings),
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    pub messages: Vec<Message>,
    pub context_tokens: usize,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStarted {
    pub user_message_id: Option<String>,
    pub assistant_message_id: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LoadEvent {
    Progress {
        fraction: f64,
    },
    Done,
    Error {
        #[serde(flatten)]
        error: HearthError,
    },
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InstalledModel {
    pub id: String,
    pub name: String,
    pub path: String,
    pub size_bytes: u64,
    pub quant: String,
    pub context_length: u64,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub family: String,
    pub quant: String,
    pub size_bytes: u64,
    pub required_bytes: u64,
    pub available_bytes: u64,
    pub fit: Fit,
    /// The catalog's parameter count as written there ("270M", "4B"); the UI words the
    /// description from it and `context_length` in the user's language.
    pub params: String,
    pub context_length: u64,
    pub installed: bool,
    pub download: Option<DownloadStatus>,
}

/// Whether a catalog model fits this machine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    Fits,
    Tight,
    TooBig,
}

/// An unfinished download's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum DownloadPhase {
    Running,
    Paused,
    Failed,
}

/// `CatalogEntry.download`: an unfinished download of this model.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DownloadStatus {
    pub state: DownloadPhase,
    pub bytes: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum DownloadEvent {
    /// `rate` in bytes/s, `eta` in seconds.
    Progress {
        bytes: u64,
        total: u64,
        rate: f64,
        eta: Option<f64>,
    },
    Done {
        model: InstalledModel,
    },
    Cancelled,
    Error {
        #[serde(flatten)]
        error: HearthError,
    },
}

/// A remote model as the models page lists it (its key never leaves its file: only whether
/// one is stored).
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemoteModelInfo {
    pub name: String,
    /// The server's base URL.
    pub url: String,
    /// The server's model id asked for; `null`: the first one it lists.
    pub model: Option<String>,
    pub has_key: bool,
    pub added_at: String,
}

impl From<&hearth::remote::RemoteModel> for RemoteModelInfo {
    fn from(m: &hearth::remote::RemoteModel) -> Self {
        Self {
            name: m.name.clone(),
            url: m.url.clone(),
            model: m.model.clone(),
            has_key: m.has_key,
            added_at: rfc3339_utc(m.added_at),
        }
    }
}

/// Every DTO's TypeScript declaration (used by the bindings test), after the runtime's (`hearth::bindings`), in an order
/// where each type is declared before the types that use it.
#[cfg(test)]
pub fn declarations() -> Vec<String> {
    use hearth::bindings::decl;
    let mut d = hearth::bindings::declarations();
    d.extend([
        decl::<Conversation>(),
        decl::<ConversationPage>(),
        decl::<SearchHit>(),
        decl::<MessageRole>(),
        decl::<store::MessageState>(),
        decl::<Branch>(),
        decl::<AttachmentInfo>(),
        decl::<Message>(),
        decl::<MessageList>(),
        decl::<GenerationStarted>(),
        decl::<LoadEvent>(),
        decl::<InstalledModel>(),
        decl::<Fit>(),
        decl::<DownloadPhase>(),
        decl::<DownloadStatus>(),
        decl::<CatalogEntry>(),
        decl::<DownloadEvent>(),
        decl::<hearth::documents::DocKind>(),
        decl::<hearth::documents::Extracted>(),
        decl::<hearth::documents::plan::Mode>(),
        decl::<hearth::documents::summarize::Step>(),
        decl::<hearth::documents::app::PlanSummary>(),
        decl::<hearth::documents::app::DocumentCard>(),
        decl::<hearth::documents::summarize::Progress>(),
        decl::<hearth::documents::app::SummaryEvent>(),
        decl::<hearth::documents::app::SummaryResult>(),
        decl::<RemoteModelInfo>(),
        decl::<hearth::remote::RemoteCheck>(),
        decl::<hearth::server::embedded::LocalServerSettings>(),
        decl::<hearth::server::embedded::LocalServerStatus>(),
    ]);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UI's types are generated from these: a stale ui/src/generated/ipc.ts fails here
    /// (and `UPDATE_BINDINGS=1` rewrites it).
    #[test]
    fn bindings_are_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated/ipc.ts");
        let text = hearth::bindings::render(&declarations());
        if let Err(e) = hearth::bindings::check_or_update(&path, &text) {
            panic!("{e}");
        }
    }

    #[test]
    fn stream_events_have_the_ipc_shape() {
        let v = serde_json::to_value(LoadEvent::Progress { fraction: 0.5 }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "progress", "fraction": 0.5}));
        let v =
            serde_json::to_value(DownloadEvent::Progress { bytes: 5, total: 10, rate: 2.5, eta: Some(2.0) }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "progress", "bytes": 5, "total": 10, "rate": 2.5, "eta": 2.0}));
        let v = serde_json::to_value(DownloadEvent::Cancelled).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "cancelled"}));
        let v = serde_json::to_value(DownloadStatus { state: DownloadPhase::Paused, bytes: 1, total: 2 }).unwrap();
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
}
