//! Export a conversation to Markdown (to read) or JSON (to restore), and import the JSON.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::attachments::sha256_hex;
use super::conversations::insert_conversation;
use super::messages::{insert_message, set_active_leaf};
use super::{
    Conversation, ConversationId, Message, MessageState, NewConversation, NewMessage, Result, Role, Store, StoreError,
};

pub const EXPORT_FORMAT: &str = "hearth-conversation";
pub const EXPORT_VERSION: u32 = 1;

/// A whole conversation with its messages, attachment metadata and attachment bytes (base64,
/// keyed by sha256 so identical files appear once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationExport {
    pub format: String,
    pub version: u32,
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub blobs: BTreeMap<String, String>,
}

impl Store {
    /// Exports the conversation's active path (what the user sees), not the other branches of
    /// its message tree: an export is one linear conversation, and import restores it as one.
    pub async fn export_json(&self, id: ConversationId) -> Result<ConversationExport> {
        let conversation = self.conversation(id).await?;
        let messages = self.messages(id).await?;
        let mut blobs = BTreeMap::new();
        for a in messages.iter().flat_map(|m| &m.attachments) {
            if !blobs.contains_key(&a.sha256) {
                let bytes = self.blob_bytes(&a.sha256).await?;
                blobs.insert(a.sha256.clone(), base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        Ok(ConversationExport { format: EXPORT_FORMAT.into(), version: EXPORT_VERSION, conversation, messages, blobs })
    }

    /// The active path as Markdown, like [`Store::export_json`].
    pub async fn export_markdown(&self, id: ConversationId) -> Result<String> {
        let c = self.conversation(id).await?;
        let messages = self.messages(id).await?;
        let mut md = String::new();
        let title = if c.title.is_empty() { "Untitled conversation" } else { &c.title };
        md.push_str(&format!("# {title}\n\n"));
        md.push_str(&format!("- Created: {}\n", format_utc(c.created_at)));
        if let Some(model) = &c.model {
            md.push_str(&format!("- Model: {model}\n"));
        }
        if let Some(sp) = &c.system_prompt {
            md.push_str(&format!("- System prompt: {}\n", sp.replace('\n', " ")));
        }
        for m in &messages {
            let who = match m.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
            };
            md.push_str(&format!("\n## {who}\n\n"));
            if m.state != MessageState::Complete {
                md.push_str(&format!("_({})_\n\n", m.state.as_str()));
            }
            md.push_str(m.content.trim_end());
            md.push('\n');
            for a in &m.attachments {
                md.push_str(&format!(
                    "\n> Attachment: {} ({}, {} bytes, sha256 {})\n",
                    a.file_name, a.mime, a.byte_size, a.sha256
                ));
            }
        }
        Ok(md)
    }

    /// Restores an exported conversation. Ids are kept when none of them is taken in this
    /// database (so a round trip into a fresh database is exact); otherwise new ids are given.
    /// The messages are restored as one linear path in their order (exported `parent_id`s are
    /// not trusted), the last one the active leaf.
    pub async fn import_json(&self, export: &ConversationExport) -> Result<Conversation> {
        if export.format != EXPORT_FORMAT {
            return Err(StoreError::Import(format!(
                "not a Hearth conversation export (format {:?}, expected {EXPORT_FORMAT:?})",
                export.format
            )));
        }
        if export.version > EXPORT_VERSION {
            return Err(StoreError::Import(format!(
                "export version {} is newer than this Hearth understands ({EXPORT_VERSION})",
                export.version
            )));
        }
        // Check every attachment's bytes before writing anything.
        let mut decoded: HashMap<&str, Vec<u8>> = HashMap::new();
        for (sha, b64) in &export.blobs {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| StoreError::Import(format!("attachment {sha} is not valid base64: {e}")))?;
            if sha256_hex(&bytes) != *sha {
                return Err(StoreError::Import(format!("attachment bytes do not match their sha256 {sha}")));
            }
            decoded.insert(sha.as_str(), bytes);
        }
        for a in export.messages.iter().flat_map(|m| &m.attachments) {
            if !decoded.contains_key(a.sha256.as_str()) {
                return Err(StoreError::Import(format!(
                    "attachment {:?} has no bytes in the export (sha256 {})",
                    a.file_name, a.sha256
                )));
            }
        }
        for (sha, bytes) in &decoded {
            self.put_blob(sha, bytes).await?;
        }

        let keep_ids = self.ids_free(export).await?;
        let c = &export.conversation;
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        // Branch origins are kept only if they exist here.
        let origin_conv = match c.branched_from_conversation_id {
            Some(id) => sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?,
            None => None,
        };
        let origin_msg = match c.branched_from_message_id {
            Some(id) => sqlx::query_scalar::<_, i64>("SELECT id FROM messages WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?,
            None => None,
        };
        let new = NewConversation {
            title: c.title.clone(),
            model: c.model.clone(),
            system_prompt: c.system_prompt.clone(),
            sampling: c.sampling.clone(),
        };
        let conv_id = insert_conversation(
            &mut tx,
            keep_ids.then_some(c.id),
            &new,
            c.created_at,
            c.updated_at,
            c.pinned,
            c.archived,
            (origin_conv, origin_msg),
        )
        .await
        .map_err(|e| self.err(e))?;
        let mut parent = None;
        for m in &export.messages {
            // Nobody is streaming an imported message.
            let state = if m.state == MessageState::Streaming { MessageState::Interrupted } else { m.state };
            let nm = NewMessage {
                role: m.role,
                content: m.content.clone(),
                state,
                token_count: m.token_count,
                stats: m.stats.clone(),
            };
            let msg_id = insert_message(
                &mut tx,
                keep_ids.then_some(m.id),
                conv_id,
                parent,
                &nm,
                m.created_at,
                m.updated_at,
                m.error.as_deref(),
                None,
            )
            .await
            .map_err(|e| self.err(e))?;
            for a in &m.attachments {
                sqlx::query(
                    "INSERT INTO attachments (id, message_id, kind, file_name, mime, byte_size,
                        sha256, extracted_text, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(keep_ids.then_some(a.id))
                .bind(msg_id)
                .bind(a.kind.as_str())
                .bind(&a.file_name)
                .bind(&a.mime)
                .bind(a.byte_size)
                .bind(&a.sha256)
                .bind(&a.extracted_text)
                .bind(a.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            parent = Some(msg_id);
        }
        if let Some(leaf) = parent {
            set_active_leaf(&mut tx, conv_id, leaf).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.conversation(conv_id).await
    }

    async fn ids_free(&self, export: &ConversationExport) -> Result<bool> {
        let taken = |table: &'static str, id: i64| async move {
            let sql = format!("SELECT 1 FROM {table} WHERE id = ?");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map(|r| r.is_some())
                .map_err(|e| self.err(e))
        };
        if taken("conversations", export.conversation.id).await? {
            return Ok(false);
        }
        for m in &export.messages {
            if taken("messages", m.id).await? {
                return Ok(false);
            }
            for a in &m.attachments {
                if taken("attachments", a.id).await? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// `YYYY-MM-DD HH:MM UTC` from unix milliseconds (no time-zone database needed).
pub fn format_utc(ms: i64) -> String {
    let t = crate::utc::Utc::from_unix_ms(ms);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year, t.month, t.day, t.hour, t.minute)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_unix_milliseconds_as_utc() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00 UTC");
        // 2026-11-27 11:20:06 UTC
        assert_eq!(super::format_utc(1_795_778_406_000), "2026-11-27 11:20 UTC");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
