-- Models served by another machine: an OpenAI-compatible server (llama.cpp's llama-server, vLLM,
-- another Hearth). They are chosen like installed models, so a name is unique across both tables
-- (the code checks `models` before inserting here). API keys are never stored here: they live in
-- owner-only files beside the database, like the Hugging Face token.
-- Forward-only: never edit this file once released; add a new numbered migration instead.
CREATE TABLE remote_models (
  name TEXT PRIMARY KEY,
  -- The server's base URL, without a trailing "/v1" (requests go to <url>/v1/...).
  url TEXT NOT NULL,
  -- The model id to ask the server for; NULL: the first one its /v1/models lists.
  model TEXT,
  -- Unix milliseconds.
  added_at INTEGER NOT NULL
);
