//! Messages: append, stream partial text, finish, read back.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::search::index_text;
use super::{
    now_ms, ConversationId, GenerationStats, Message, MessageFinish, MessageId, MessageState,
    NewMessage, Result, Role, Store, StoreError,
};

pub(crate) const MESSAGE_COLUMNS: &str = "id, conversation_id, role, content, token_count, \
    created_at, updated_at, state, error, model, gen_tokens_per_s, prompt_tokens_per_s, stop_reason";

pub(crate) fn message_from_row(r: &SqliteRow) -> std::result::Result<Message, sqlx::Error> {
    let role: String = r.try_get("role")?;
    let state: String = r.try_get("state")?;
    // The schema's CHECK constraints make other values impossible short of corruption.
    let decode =
        |what: &str, v: &str| sqlx::Error::Decode(format!("unknown message {what} {v:?}").into());
    Ok(Message {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        role: Role::parse(&role).ok_or_else(|| decode("role", &role))?,
        content: r.try_get("content")?,
        token_count: r.try_get("token_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        state: MessageState::parse(&state).ok_or_else(|| decode("state", &state))?,
        error: r.try_get("error")?,
        stats: GenerationStats {
            model: r.try_get("model")?,
            gen_tokens_per_s: r.try_get("gen_tokens_per_s")?,
            prompt_tokens_per_s: r.try_get("prompt_tokens_per_s")?,
            stop_reason: r.try_get("stop_reason")?,
        },
        attachments: Vec::new(),
    })
}

pub(crate) async fn index_message(
    tx: &mut Transaction<'_, Sqlite>,
    id: MessageId,
    content: &str,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM messages_fts WHERE rowid = ?")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO messages_fts (rowid, body) VALUES (?, ?)")
        .bind(id)
        .bind(index_text(content))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts a message row (explicit id optional) and indexes it; does not touch the conversation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_message(
    tx: &mut Transaction<'_, Sqlite>,
    id: Option<MessageId>,
    conversation_id: ConversationId,
    m: &NewMessage,
    created_at: i64,
    updated_at: i64,
    error: Option<&str>,
    stream_owner: Option<&str>,
) -> std::result::Result<MessageId, sqlx::Error> {
    let id: MessageId = sqlx::query_scalar(
        "INSERT INTO messages (id, conversation_id, role, content, token_count, created_at,
            updated_at, state, error, model, gen_tokens_per_s, prompt_tokens_per_s, stop_reason,
            stream_owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(id)
    .bind(conversation_id)
    .bind(m.role.as_str())
    .bind(&m.content)
    .bind(m.token_count)
    .bind(created_at)
    .bind(updated_at)
    .bind(m.state.as_str())
    .bind(error)
    .bind(&m.stats.model)
    .bind(m.stats.gen_tokens_per_s)
    .bind(m.stats.prompt_tokens_per_s)
    .bind(&m.stats.stop_reason)
    .bind(stream_owner)
    .fetch_one(&mut **tx)
    .await?;
    index_message(tx, id, &m.content).await?;
    Ok(id)
}

impl Store {
    /// Appends a message to a conversation and marks the conversation as updated. A `Streaming`
    /// message is owned by this store until finished; if the process dies first, the next start
    /// marks it `Interrupted`.
    pub async fn append_message(
        &self,
        conversation_id: ConversationId,
        new: &NewMessage,
    ) -> Result<Message> {
        let now = now_ms();
        let owner = (new.state == MessageState::Streaming).then(|| self.instance_id());
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let touched = sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound(conversation_id));
        }
        let id = insert_message(&mut tx, None, conversation_id, new, now, now, None, owner)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.message(id).await
    }

    /// Saves the partial text of a streaming reply (called at least every second while it
    /// streams).
    pub async fn update_message_text(&self, id: MessageId, content: &str) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query("UPDATE messages SET content = ?, updated_at = ? WHERE id = ?")
            .bind(content)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MessageNotFound(id));
        }
        index_message(&mut tx, id, content)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Writes a message's final text, state and stats, and releases it from this store.
    pub async fn finish_message(&self, id: MessageId, fin: &MessageFinish) -> Result<Message> {
        let now = now_ms();
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let conversation_id: ConversationId = sqlx::query_scalar(
            "UPDATE messages SET content = ?, state = ?, token_count = ?, error = ?, model = ?,
                gen_tokens_per_s = ?, prompt_tokens_per_s = ?, stop_reason = ?, updated_at = ?,
                stream_owner = NULL
             WHERE id = ? RETURNING conversation_id",
        )
        .bind(&fin.content)
        .bind(fin.state.as_str())
        .bind(fin.token_count)
        .bind(&fin.error)
        .bind(&fin.stats.model)
        .bind(fin.stats.gen_tokens_per_s)
        .bind(fin.stats.prompt_tokens_per_s)
        .bind(&fin.stats.stop_reason)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .ok_or(StoreError::MessageNotFound(id))?;
        sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        index_message(&mut tx, id, &fin.content)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.message(id).await
    }

    /// Sets a message's token count (e.g. once the user's text has been tokenized).
    pub async fn set_token_count(&self, id: MessageId, tokens: i64) -> Result<()> {
        let done = sqlx::query("UPDATE messages SET token_count = ? WHERE id = ?")
            .bind(tokens)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MessageNotFound(id));
        }
        Ok(())
    }

    pub async fn message(&self, id: MessageId) -> Result<Message> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::MessageNotFound(id))?;
        let mut m = message_from_row(&row).map_err(|e| self.err(e))?;
        m.attachments = self.attachments_of(id).await?;
        Ok(m)
    }

    /// All messages of a conversation, oldest first, with their attachments.
    pub async fn messages(&self, conversation_id: ConversationId) -> Result<Vec<Message>> {
        // Distinguish "no messages" from "no conversation".
        self.conversation_exists(conversation_id).await?;
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        let mut out = rows
            .iter()
            .map(message_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut atts = self.attachments_of_conversation(conversation_id).await?;
        for m in &mut out {
            m.attachments = atts.remove(&m.id).unwrap_or_default();
        }
        Ok(out)
    }

    pub(crate) async fn conversation_exists(&self, id: ConversationId) -> Result<()> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        found
            .map(|_| ())
            .ok_or(StoreError::ConversationNotFound(id))
    }
}
