-- Messages form a tree per conversation: regenerating a reply or editing a message adds a
-- sibling (same parent) instead of replacing anything. What the user sees, and what the model is
-- given, is the active path: from the root down to the conversation's active leaf.
-- Forward-only: never edit this file once released; add a new numbered migration instead.

-- NULL for a conversation's first message (and for first messages edited into siblings of it).
-- The parent is always in the same conversation (the Store checks this on every insert).
-- Deleting a message deletes the branches under it.
ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE;

-- The last message of the branch the user looks at. NULL while the conversation is empty; if it
-- is ever NULL with messages present, readers fall back to the newest message.
ALTER TABLE conversations ADD COLUMN active_leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL;

-- Children of a message in creation order (ids grow with time): siblings and branch descent.
CREATE INDEX messages_by_parent ON messages(conversation_id, parent_id, id);

-- Until now every conversation was one linear list: each message's parent is the message before
-- it, and the newest message is the active leaf.
UPDATE messages SET parent_id = (
  SELECT max(p.id) FROM messages p
  WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id
);
UPDATE conversations SET active_leaf_id = (
  SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id
);
