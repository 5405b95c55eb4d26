-- Hearth's first schema: models, conversations, messages, attachments, settings, search.
-- Forward-only: never edit this file once released; add a new numbered migration instead.

CREATE TABLE models (
  id TEXT PRIMARY KEY,          -- catalog id like 'gemma-3-1b-it-q4_0', or 'local-<first 12 hex of sha256>' for imports
  display_name TEXT NOT NULL,
  repo TEXT,                    -- Hugging Face repo id; NULL for imports
  file TEXT NOT NULL,           -- file name of the GGUF
  quant TEXT,
  size_bytes INTEGER NOT NULL,
  sha256 TEXT,
  path TEXT NOT NULL,           -- absolute local path of the GGUF
  mmproj_path TEXT,
  source TEXT NOT NULL CHECK (source IN ('download', 'import')),
  added_at INTEGER NOT NULL     -- unix milliseconds
);

-- All times are unix milliseconds.
CREATE TABLE conversations (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  model TEXT,                   -- model id or GGUF path last used; not a foreign key: models may be removed
  system_prompt TEXT,
  -- Sampling settings; NULL means "the app's default".
  temperature REAL,
  top_k INTEGER,
  top_p REAL,
  min_p REAL,
  repeat_penalty REAL,
  seed INTEGER,
  max_tokens INTEGER,
  pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
  archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
  -- Where a branch came from; the branch survives its origin being deleted.
  branched_from_conversation_id INTEGER REFERENCES conversations(id) ON DELETE SET NULL,
  branched_from_message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL
);
-- The sidebar: pinned first, then most recently updated.
CREATE INDEX conversations_listing ON conversations(archived, pinned DESC, updated_at DESC, id DESC);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content TEXT NOT NULL DEFAULT '',
  token_count INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'complete'
    CHECK (state IN ('complete', 'streaming', 'interrupted', 'error')),
  error TEXT,
  -- Generation stats for assistant replies.
  model TEXT,
  gen_tokens_per_s REAL,
  prompt_tokens_per_s REAL,
  stop_reason TEXT,
  -- Which running Store instance is streaming this message; lets start-up recovery tell a
  -- crashed writer from a live one in another process.
  stream_owner TEXT
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming';

-- Attachment bytes, content-addressed: the same file attached twice is stored once.
-- Small blobs live in the row; large ones in <data_dir>/attachments/<sha[0..2]>/<sha>.
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  byte_size INTEGER NOT NULL,
  data BLOB,
  file_path TEXT,               -- relative to the data folder
  created_at INTEGER NOT NULL,
  CHECK ((data IS NULL) <> (file_path IS NULL))
);

CREATE TABLE attachments (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('image', 'document')),
  file_name TEXT NOT NULL,
  mime TEXT NOT NULL,
  byte_size INTEGER NOT NULL,
  sha256 TEXT NOT NULL REFERENCES blobs(sha256),
  extracted_text TEXT,          -- documents only
  created_at INTEGER NOT NULL
);
CREATE INDEX attachments_by_message ON attachments(message_id);
CREATE INDEX attachments_by_sha ON attachments(sha256);

-- Key/value settings; values are JSON, typed on the Rust side.
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Full-text search. The indexed text is not the raw text but a derived form built in Rust
-- (store::search::index_text): words of alphabetic scripts as themselves, and runs of Hangul/CJK
-- as overlapping character bigrams plus a closing unigram, so that two-syllable Korean queries
-- (회의) find words with attached particles (회의록) and compounds (정기회의). Contentless: the
-- text lives in messages/conversations, snippets are cut in Rust.
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='', contentless_delete=1,
  tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE titles_fts USING fts5(title, content='', contentless_delete=1,
  tokenize = 'unicode61 remove_diacritics 0');

-- Deletes (including FK cascades) keep the index in step; inserts and updates are indexed by
-- the Store in the same transaction, since the derived text is computed in Rust.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  DELETE FROM messages_fts WHERE rowid = old.id;
END;
CREATE TRIGGER titles_fts_delete AFTER DELETE ON conversations BEGIN
  DELETE FROM titles_fts WHERE rowid = old.id;
END;
