//! Plain data the store hands out and takes in.

use serde::{Deserialize, Serialize};

pub type ConversationId = i64;
pub type MessageId = i64;

/// Sampling settings saved with a conversation; `None` means "the app's default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingSettings {
    pub temperature: Option<f64>,
    pub top_k: Option<i64>,
    pub top_p: Option<f64>,
    pub min_p: Option<f64>,
    pub repeat_penalty: Option<f64>,
    pub seed: Option<i64>,
    pub max_tokens: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewConversation {
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub sampling: SamplingSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub title: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub sampling: SamplingSettings,
    pub pinned: bool,
    pub archived: bool,
    pub branched_from_conversation_id: Option<ConversationId>,
    pub branched_from_message_id: Option<MessageId>,
    /// Every stored message, on all branches of the message tree (not only the active path).
    pub message_count: i64,
}

/// Which conversations a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveFilter {
    /// Only conversations not archived (the sidebar).
    #[default]
    Active,
    Archived,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    pub filter: ArchiveFilter,
    pub limit: u32,
    pub offset: u32,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self { filter: ArchiveFilter::Active, limit: 50, offset: 0 }
    }
}

/// One page of conversations: pinned first, then most recently updated first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    /// Offset of the next page, if there is one.
    pub next_offset: Option<u32>,
}

/// A message's author: the same roles the chat template renders, stored as their text.
pub use engine::chat_template::Role;

/// Where a message stands. `Streaming` is only ever seen while its writer is alive: a crash
/// leaves it to be marked `Interrupted` at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Complete,
    Streaming,
    Interrupted,
    Error,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Complete => "complete",
            MessageState::Streaming => "streaming",
            MessageState::Interrupted => "interrupted",
            MessageState::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<MessageState> {
        match s {
            "complete" => Some(MessageState::Complete),
            "streaming" => Some(MessageState::Streaming),
            "interrupted" => Some(MessageState::Interrupted),
            "error" => Some(MessageState::Error),
            _ => None,
        }
    }
}

/// How a reply was generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    pub model: Option<String>,
    pub gen_tokens_per_s: Option<f64>,
    pub prompt_tokens_per_s: Option<f64>,
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    pub state: MessageState,
    pub token_count: Option<i64>,
    pub stats: GenerationStats,
}

impl NewMessage {
    /// A finished message with no stats, e.g. what the user typed.
    pub fn complete(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            state: MessageState::Complete,
            token_count: None,
            stats: GenerationStats::default(),
        }
    }
    /// An empty reply about to stream.
    pub fn streaming(role: Role) -> Self {
        Self { state: MessageState::Streaming, ..Self::complete(role, "") }
    }
}

/// Final update of a message: its text, state and stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFinish {
    pub content: String,
    pub state: MessageState,
    pub token_count: Option<i64>,
    pub stats: GenerationStats,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// The message this one follows in the conversation's tree: `None` for a first message.
    /// Siblings (same parent) are alternative versions: regenerated replies, edited messages.
    /// Always a message of the same conversation. Older exports lack it (read as `None`; import
    /// chains messages linearly anyway).
    #[serde(default)]
    pub parent_id: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub token_count: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: MessageState,
    pub error: Option<String>,
    pub stats: GenerationStats,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    Image,
    Document,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Document => "document",
        }
    }
    pub fn parse(s: &str) -> Option<AttachmentKind> {
        match s {
            "image" => Some(AttachmentKind::Image),
            "document" => Some(AttachmentKind::Document),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAttachment {
    pub kind: AttachmentKind,
    pub file_name: String,
    pub mime: String,
    pub bytes: Vec<u8>,
    /// Text extracted from a document, for the model and for search.
    pub extracted_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: i64,
    pub message_id: MessageId,
    pub kind: AttachmentKind,
    pub file_name: String,
    pub mime: String,
    pub byte_size: i64,
    /// Lowercase hex; the content address of the bytes.
    pub sha256: String,
    pub extracted_text: Option<String>,
    pub created_at: i64,
}

/// The shape of a conversation's message tree: each parent's children in creation order (ids
/// grow with time). The root level (first messages) is under `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageTree {
    pub children: std::collections::HashMap<Option<MessageId>, Vec<MessageId>>,
}

impl MessageTree {
    /// `m`'s siblings in creation order, `m` included (just `m` if the tree does not know it,
    /// e.g. a message added after the tree was read).
    pub fn siblings(&self, m: &Message) -> Vec<MessageId> {
        match self.children.get(&m.parent_id) {
            Some(ids) if ids.contains(&m.id) => ids.clone(),
            _ => vec![m.id],
        }
    }
}

/// Where a branch starts relative to the chosen message (for `Store::branch_from_message`, which
/// copies into a new conversation; in-conversation branches are siblings in the message tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchPoint {
    /// Copy the messages before it: the branch is ready for an edited version of it
    /// (edit-and-resend).
    Before,
    /// Copy up to and including it: continue the conversation differently from there.
    Through,
}
