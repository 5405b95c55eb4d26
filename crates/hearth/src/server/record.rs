//! `--store`: an answered API request kept as a conversation, as if it had been typed in the
//! app (its system prompt, the request's turns, the reply with its figures). Off by default:
//! other programs' traffic is theirs, not the user's history.

use engine::chat_template::{ChatMessage, Role};

use crate::runtime::Completion;
use crate::store::{ConversationId, GenerationStats, NewConversation, NewMessage, Store, StoreError};

/// A conversation's title from the request's first user turn (its first line, shortened).
fn title(messages: &[ChatMessage]) -> String {
    let first = messages.iter().find(|m| m.role == Role::User).map(|m| m.content.trim()).unwrap_or_default();
    let line = first.lines().next().unwrap_or_default();
    let mut t: String = line.chars().take(60).collect();
    if t.len() < line.len() {
        t.push('…');
    }
    t
}

/// Stores `messages` and the reply `c` (by `model`) as a new conversation.
pub async fn store_exchange(
    store: &Store,
    model: &str,
    messages: &[ChatMessage],
    c: &Completion,
) -> Result<ConversationId, StoreError> {
    let (system, turns) = match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (Some(first.content.clone()), rest),
        _ => (None, messages),
    };
    let new = NewConversation {
        title: title(messages),
        model: Some(model.to_string()),
        system_prompt: system,
        sampling: Default::default(),
    };
    let conv = store.create_conversation(&new).await?;
    for m in turns {
        store.append_message(conv.id, &NewMessage::complete(m.role, m.content.clone())).await?;
    }
    let reply = NewMessage {
        token_count: Some(c.completion_tokens as i64),
        stats: GenerationStats {
            model: Some(model.to_string()),
            gen_tokens_per_s: Some(c.gen_tokens_per_s),
            prompt_tokens_per_s: Some(c.prompt_tokens_per_s),
            stop_reason: Some(c.stop.as_str().to_string()),
        },
        ..NewMessage::complete(Role::Assistant, c.text.clone())
    };
    store.append_message(conv.id, &reply).await?;
    Ok(conv.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_user_line_shortened() {
        let m = |r, t: &str| ChatMessage::new(r, t);
        assert_eq!(title(&[m(Role::System, "S"), m(Role::User, "  Hello there\nmore")]), "Hello there");
        let long = "x".repeat(80);
        assert_eq!(title(&[m(Role::User, &long)]), format!("{}…", "x".repeat(60)));
        assert_eq!(title(&[m(Role::System, "S")]), "");
    }
}
