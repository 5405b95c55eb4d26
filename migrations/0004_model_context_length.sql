-- A model's maximum context from its GGUF header, kept when it is imported or downloaded, so that
-- listing the models reads no GGUF (reading a header parses its whole vocabulary: 250-390 ms for
-- Gemma 3's 262,144 tokens, on the app's start-up path). NULL: not known yet; the app reads the
-- header once and stores it.
-- Forward-only: never edit this file once released; add a new numbered migration instead.
ALTER TABLE models ADD COLUMN context_length INTEGER;
