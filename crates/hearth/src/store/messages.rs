//! Messages: append (into the conversation's message tree), stream partial text, finish, read
//! back the active path, switch branches.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::attachments::{insert_attachment_row, sha256_hex};
use super::search::index_text;
use super::{
    now_ms, ConversationId, GenerationStats, Message, MessageFinish, MessageId, MessageState, MessageTree,
    NewAttachment, NewMessage, Result, Role, Store, StoreError,
};

/// Columns of `messages m` that make a [`Message`].
pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.parent_id, m.role, m.content, \
    m.token_count, m.created_at, m.updated_at, m.state, m.error, m.model, m.gen_tokens_per_s, \
    m.prompt_tokens_per_s, m.stop_reason";

/// The path from message `?1` up to its root, as `path(id, depth)` with the message at depth 0.
/// Ids are followed through `parent_id`; the depth cap only guards against a damaged (cyclic)
/// tree, which the schema's insert order makes impossible otherwise.
pub(crate) const PATH_TO_ROOT: &str = "WITH RECURSIVE path(id, depth) AS (
        SELECT ?1, 0
        UNION ALL
        SELECT p.parent_id, path.depth + 1 FROM messages p JOIN path ON p.id = path.id
        WHERE p.parent_id IS NOT NULL AND path.depth < 1000000
    )";

/// A conversation's active leaf: the stored one, else (no leaf recorded but messages exist) the
/// newest message, so a conversation never looks empty because of a missing pointer.
const ACTIVE_LEAF: &str = "SELECT coalesce(c.active_leaf_id,
        (SELECT max(id) FROM messages WHERE conversation_id = c.id))
    FROM conversations c WHERE c.id = ?";

pub(crate) fn message_from_row(r: &SqliteRow) -> std::result::Result<Message, sqlx::Error> {
    let role: String = r.try_get("role")?;
    let state: String = r.try_get("state")?;
    // The schema's CHECK constraints make other values impossible short of corruption.
    let decode = |what: &str, v: &str| sqlx::Error::Decode(format!("unknown message {what} {v:?}").into());
    Ok(Message {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        parent_id: r.try_get("parent_id")?,
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
    sqlx::query("DELETE FROM messages_fts WHERE rowid = ?").bind(id).execute(&mut **tx).await?;
    sqlx::query("INSERT INTO messages_fts (rowid, body) VALUES (?, ?)")
        .bind(id)
        .bind(index_text(content))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts a message row (explicit id optional) under `parent` and indexes it; does not touch the
/// conversation (nor its active leaf). The caller guarantees `parent` is in the same conversation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_message(
    tx: &mut Transaction<'_, Sqlite>,
    id: Option<MessageId>,
    conversation_id: ConversationId,
    parent: Option<MessageId>,
    m: &NewMessage,
    created_at: i64,
    updated_at: i64,
    error: Option<&str>,
    stream_owner: Option<&str>,
) -> std::result::Result<MessageId, sqlx::Error> {
    let id: MessageId = sqlx::query_scalar(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, token_count,
            created_at, updated_at, state, error, model, gen_tokens_per_s, prompt_tokens_per_s,
            stop_reason, stream_owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(id)
    .bind(conversation_id)
    .bind(parent)
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

pub(crate) async fn set_active_leaf(
    tx: &mut Transaction<'_, Sqlite>,
    conversation_id: ConversationId,
    leaf: MessageId,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("UPDATE conversations SET active_leaf_id = ? WHERE id = ?")
        .bind(leaf)
        .bind(conversation_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Where a new message goes in its conversation's tree.
#[derive(Clone, Copy)]
enum At {
    /// Under the active leaf: the conversation simply continues.
    ActiveLeaf,
    /// Under this parent (`None`: a new first message), beside its other children.
    Parent(Option<MessageId>),
}

impl Store {
    /// Appends a message to a conversation under its active leaf, makes it the active leaf and
    /// marks the conversation as updated. A `Streaming` message is owned by this store until
    /// finished; if the process dies first, the next start marks it `Interrupted`.
    pub async fn append_message(&self, conversation_id: ConversationId, new: &NewMessage) -> Result<Message> {
        self.append_at(conversation_id, At::ActiveLeaf, new, &[]).await
    }

    /// Appends a message under `parent` (`None`: as another first message), with its
    /// attachments, and makes it the active leaf: a new branch beside `parent`'s other children.
    /// `parent` must belong to the conversation (else `MessageNotFound`). The message and its
    /// attachments are stored together or not at all.
    pub async fn append_child(
        &self,
        conversation_id: ConversationId,
        parent: Option<MessageId>,
        new: &NewMessage,
        attachments: &[NewAttachment],
    ) -> Result<Message> {
        self.append_at(conversation_id, At::Parent(parent), new, attachments).await
    }

    async fn append_at(
        &self,
        conversation_id: ConversationId,
        at: At,
        new: &NewMessage,
        attachments: &[NewAttachment],
    ) -> Result<Message> {
        // Bytes first: files cannot join the transaction. If the transaction then fails, the
        // bytes are merely unreferenced, and `collect_unused_blobs` removes them later.
        let mut shas = Vec::with_capacity(attachments.len());
        for a in attachments {
            let sha = sha256_hex(&a.bytes);
            self.put_blob(&sha, &a.bytes).await?;
            shas.push(sha);
        }
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
        let parent = match at {
            At::ActiveLeaf => sqlx::query_scalar::<_, Option<MessageId>>(ACTIVE_LEAF)
                .bind(conversation_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.err(e))?,
            At::Parent(None) => None,
            At::Parent(Some(p)) => {
                let conv: Option<ConversationId> =
                    sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = ?")
                        .bind(p)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                if conv != Some(conversation_id) {
                    return Err(StoreError::MessageNotFound(p));
                }
                Some(p)
            }
        };
        let id = insert_message(&mut tx, None, conversation_id, parent, new, now, now, None, owner)
            .await
            .map_err(|e| self.err(e))?;
        for (a, sha) in attachments.iter().zip(&shas) {
            insert_attachment_row(&mut tx, id, a, sha, now).await.map_err(|e| self.err(e))?;
        }
        set_active_leaf(&mut tx, conversation_id, id).await.map_err(|e| self.err(e))?;
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
        index_message(&mut tx, id, content).await.map_err(|e| self.err(e))?;
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
        index_message(&mut tx, id, &fin.content).await.map_err(|e| self.err(e))?;
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
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?");
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

    /// The conversation's active path: from its first message down to the active leaf, oldest
    /// first, with attachments. For a conversation that never branched this is every message.
    /// Other branches are reached through [`Store::message_tree`] and [`Store::select_branch`].
    pub async fn messages(&self, conversation_id: ConversationId) -> Result<Vec<Message>> {
        match self.active_leaf(conversation_id).await? {
            Some(leaf) => self.path_to(leaf).await,
            None => Ok(Vec::new()),
        }
    }

    /// The message at the end of the conversation's active path, `None` while it is empty.
    pub async fn active_leaf(&self, conversation_id: ConversationId) -> Result<Option<MessageId>> {
        sqlx::query_scalar::<_, Option<MessageId>>(ACTIVE_LEAF)
            .bind(conversation_id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::ConversationNotFound(conversation_id))
    }

    /// The messages from the conversation's root down to `message_id` (included), oldest first,
    /// with attachments: the history a reply under `message_id` continues.
    pub async fn path_to(&self, message_id: MessageId) -> Result<Vec<Message>> {
        let sql = format!(
            "{PATH_TO_ROOT} SELECT {MESSAGE_COLUMNS} FROM path JOIN messages m ON m.id = path.id
             ORDER BY path.depth DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        let mut out =
            rows.iter().map(message_from_row).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.err(e))?;
        let Some(last) = out.last() else {
            return Err(StoreError::MessageNotFound(message_id));
        };
        let mut atts = self.attachments_of_conversation(last.conversation_id).await?;
        for m in &mut out {
            m.attachments = atts.remove(&m.id).unwrap_or_default();
        }
        Ok(out)
    }

    /// `message_id` and its siblings (the messages with the same parent), in creation order.
    pub async fn siblings(&self, message_id: MessageId) -> Result<Vec<MessageId>> {
        let ids: Vec<MessageId> = sqlx::query_scalar(
            "SELECT s.id FROM messages m JOIN messages s
                ON s.conversation_id = m.conversation_id AND s.parent_id IS m.parent_id
             WHERE m.id = ? ORDER BY s.id",
        )
        .bind(message_id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        if ids.is_empty() {
            return Err(StoreError::MessageNotFound(message_id));
        }
        Ok(ids)
    }

    /// Every parent's children in the conversation, for showing "version i of n" on a path.
    pub async fn message_tree(&self, conversation_id: ConversationId) -> Result<MessageTree> {
        self.conversation_exists(conversation_id).await?;
        let rows = sqlx::query("SELECT id, parent_id FROM messages WHERE conversation_id = ? ORDER BY id")
            .bind(conversation_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        let mut tree = MessageTree::default();
        for r in &rows {
            let id: MessageId = r.try_get(0).map_err(|e| self.err(e))?;
            let parent: Option<MessageId> = r.try_get(1).map_err(|e| self.err(e))?;
            tree.children.entry(parent).or_default().push(id);
        }
        Ok(tree)
    }

    /// Makes the branch through `message_id` the active one: from it, follows the newest child
    /// at each step down to a leaf, which becomes the conversation's active leaf. Returns that
    /// leaf. Changes no message and not the conversation's `updated_at` (nothing was said).
    pub async fn select_branch(&self, message_id: MessageId) -> Result<MessageId> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let conversation_id: ConversationId = sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = ?")
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::MessageNotFound(message_id))?;
        let mut leaf = message_id;
        loop {
            let newest: Option<MessageId> =
                sqlx::query_scalar("SELECT max(id) FROM messages WHERE conversation_id = ? AND parent_id = ?")
                    .bind(conversation_id)
                    .bind(leaf)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            match newest {
                Some(child) => leaf = child,
                None => break,
            }
        }
        set_active_leaf(&mut tx, conversation_id, leaf).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(leaf)
    }

    pub(crate) async fn conversation_exists(&self, id: ConversationId) -> Result<()> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        found.map(|_| ()).ok_or(StoreError::ConversationNotFound(id))
    }
}
