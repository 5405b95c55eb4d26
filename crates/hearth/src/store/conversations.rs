//! Conversations: create, list, rename, pin, archive, delete, branch.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::messages::{set_active_leaf, PATH_TO_ROOT};
use super::search::index_text;
use super::{
    now_ms, ArchiveFilter, BranchPoint, Conversation, ConversationId, ConversationPage, ListOptions, MessageId,
    NewConversation, Result, SamplingSettings, Store, StoreError,
};

pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.title, c.created_at, c.updated_at, c.model, \
    c.system_prompt, c.temperature, c.top_k, c.top_p, c.min_p, c.repeat_penalty, c.seed, c.max_tokens, \
    c.pinned, c.archived, c.branched_from_conversation_id, c.branched_from_message_id, \
    (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count";

pub(crate) fn conversation_from_row(r: &SqliteRow) -> std::result::Result<Conversation, sqlx::Error> {
    Ok(Conversation {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        model: r.try_get("model")?,
        system_prompt: r.try_get("system_prompt")?,
        sampling: SamplingSettings {
            temperature: r.try_get("temperature")?,
            top_k: r.try_get("top_k")?,
            top_p: r.try_get("top_p")?,
            min_p: r.try_get("min_p")?,
            repeat_penalty: r.try_get("repeat_penalty")?,
            seed: r.try_get("seed")?,
            max_tokens: r.try_get("max_tokens")?,
        },
        pinned: r.try_get("pinned")?,
        archived: r.try_get("archived")?,
        branched_from_conversation_id: r.try_get("branched_from_conversation_id")?,
        branched_from_message_id: r.try_get("branched_from_message_id")?,
        message_count: r.try_get("message_count")?,
    })
}

/// Inserts a conversation row (with an explicit id when `id` is given) and indexes its title.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_conversation(
    tx: &mut Transaction<'_, Sqlite>,
    id: Option<ConversationId>,
    new: &NewConversation,
    created_at: i64,
    updated_at: i64,
    pinned: bool,
    archived: bool,
    branched_from: (Option<ConversationId>, Option<MessageId>),
) -> std::result::Result<ConversationId, sqlx::Error> {
    let s = &new.sampling;
    let id: ConversationId = sqlx::query_scalar(
        "INSERT INTO conversations (id, title, created_at, updated_at, model, system_prompt,
            temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens, pinned, archived,
            branched_from_conversation_id, branched_from_message_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(id)
    .bind(&new.title)
    .bind(created_at)
    .bind(updated_at)
    .bind(&new.model)
    .bind(&new.system_prompt)
    .bind(s.temperature)
    .bind(s.top_k)
    .bind(s.top_p)
    .bind(s.min_p)
    .bind(s.repeat_penalty)
    .bind(s.seed)
    .bind(s.max_tokens)
    .bind(pinned)
    .bind(archived)
    .bind(branched_from.0)
    .bind(branched_from.1)
    .fetch_one(&mut **tx)
    .await?;
    index_title(tx, id, &new.title).await?;
    Ok(id)
}

async fn index_title(
    tx: &mut Transaction<'_, Sqlite>,
    id: ConversationId,
    title: &str,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM titles_fts WHERE rowid = ?").bind(id).execute(&mut **tx).await?;
    sqlx::query("INSERT INTO titles_fts (rowid, title) VALUES (?, ?)")
        .bind(id)
        .bind(index_text(title))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn create_conversation(&self, new: &NewConversation) -> Result<Conversation> {
        let now = now_ms();
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let id = insert_conversation(&mut tx, None, new, now, now, false, false, (None, None))
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.conversation(id).await
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::ConversationNotFound(id))?;
        conversation_from_row(&row).map_err(|e| self.err(e))
    }

    /// One page of conversations: pinned first, then most recently updated first.
    pub async fn list_conversations(&self, opts: &ListOptions) -> Result<ConversationPage> {
        let filter = match opts.filter {
            ArchiveFilter::Active => "WHERE c.archived = 0",
            ArchiveFilter::Archived => "WHERE c.archived = 1",
            ArchiveFilter::All => "",
        };
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c {filter}
             ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?"
        );
        // Fetch one extra row to know whether another page follows.
        let limit = opts.limit.max(1);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit) + 1)
            .bind(i64::from(opts.offset))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        let mut items = rows
            .iter()
            .map(conversation_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let next_offset = if items.len() > limit as usize {
            items.truncate(limit as usize);
            Some(opts.offset + limit)
        } else {
            None
        };
        Ok(ConversationPage { items, next_offset })
    }

    pub async fn rename_conversation(&self, id: ConversationId, title: &str) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query("UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?")
            .bind(title)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(id));
        }
        index_title(&mut tx, id, title).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Pinning does not change `updated_at`: it is not activity in the conversation.
    pub async fn set_pinned(&self, id: ConversationId, pinned: bool) -> Result<()> {
        self.set_flag(id, "pinned", pinned).await
    }

    pub async fn set_archived(&self, id: ConversationId, archived: bool) -> Result<()> {
        self.set_flag(id, "archived", archived).await
    }

    async fn set_flag(&self, id: ConversationId, column: &'static str, value: bool) -> Result<()> {
        let sql = format!("UPDATE conversations SET {column} = ? WHERE id = ?");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(id));
        }
        Ok(())
    }

    /// Changes the model, system prompt and sampling settings used for the next turns.
    pub async fn update_conversation_settings(
        &self,
        id: ConversationId,
        model: Option<&str>,
        system_prompt: Option<&str>,
        sampling: &SamplingSettings,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE conversations SET model = ?, system_prompt = ?, temperature = ?, top_k = ?,
                top_p = ?, min_p = ?, repeat_penalty = ?, seed = ?, max_tokens = ?
             WHERE id = ?",
        )
        .bind(model)
        .bind(system_prompt)
        .bind(sampling.temperature)
        .bind(sampling.top_k)
        .bind(sampling.top_p)
        .bind(sampling.min_p)
        .bind(sampling.repeat_penalty)
        .bind(sampling.seed)
        .bind(sampling.max_tokens)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(id));
        }
        Ok(())
    }

    /// Deletes a conversation with its messages and attachments (attachment bytes no other
    /// message uses are removed too).
    pub async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let done = sqlx::query("DELETE FROM conversations WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(id));
        }
        self.collect_unused_blobs().await?;
        Ok(())
    }

    /// Starts a new conversation from `message_id`'s conversation, copying its settings and the
    /// messages on the path to (or through) that message, with their attachments. The original
    /// is left as it was. (The CLI's branches; the app branches inside one conversation, see
    /// `Store::append_child`.)
    pub async fn branch_from_message(&self, message_id: MessageId, point: BranchPoint) -> Result<Conversation> {
        let source_id: ConversationId = sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = ?")
            .bind(message_id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::MessageNotFound(message_id))?;
        let source = self.conversation(source_id).await?;
        let now = now_ms();
        let new = NewConversation {
            title: source.title.clone(),
            model: source.model.clone(),
            system_prompt: source.system_prompt.clone(),
            sampling: source.sampling.clone(),
        };
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let id = insert_conversation(&mut tx, None, &new, now, now, false, false, (Some(source_id), Some(message_id)))
            .await
            .map_err(|e| self.err(e))?;
        // The path to the message (its branch only, not the other versions beside it).
        let skip_last = match point {
            BranchPoint::Before => "WHERE path.depth > 0",
            BranchPoint::Through => "",
        };
        let sql = format!(
            "{PATH_TO_ROOT} SELECT m.id, m.content FROM path JOIN messages m ON m.id = path.id
             {skip_last} ORDER BY path.depth DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        // The copy is one linear path; its last message is the active leaf.
        let mut parent: Option<MessageId> = None;
        for r in rows {
            let old: MessageId = r.try_get(0).map_err(|e| self.err(e))?;
            let content: String = r.try_get(1).map_err(|e| self.err(e))?;
            // A copy of a message still streaming elsewhere is a snapshot: mark it interrupted.
            let new_id: MessageId = sqlx::query_scalar(
                "INSERT INTO messages (conversation_id, parent_id, role, content, token_count,
                    created_at, updated_at, state, error, model, gen_tokens_per_s,
                    prompt_tokens_per_s, stop_reason)
                 SELECT ?, ?, role, content, token_count, created_at, updated_at,
                    CASE state WHEN 'streaming' THEN 'interrupted' ELSE state END,
                    error, model, gen_tokens_per_s, prompt_tokens_per_s, stop_reason
                 FROM messages WHERE id = ? RETURNING id",
            )
            .bind(id)
            .bind(parent)
            .bind(old)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            sqlx::query(
                "INSERT INTO attachments (message_id, kind, file_name, mime, byte_size, sha256,
                    extracted_text, created_at)
                 SELECT ?, kind, file_name, mime, byte_size, sha256, extracted_text, created_at
                 FROM attachments WHERE message_id = ? ORDER BY id",
            )
            .bind(new_id)
            .bind(old)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            super::messages::index_message(&mut tx, new_id, &content).await.map_err(|e| self.err(e))?;
            parent = Some(new_id);
        }
        if let Some(leaf) = parent {
            set_active_leaf(&mut tx, id, leaf).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.conversation(id).await
    }
}
