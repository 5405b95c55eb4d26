//! `--store`: an answered API request kept as a conversation, as if it had been typed in the
//! app (its system prompt, the request's turns with their images, the reply with its figures). Off by default:
//! other programs' traffic is theirs, not the user's history.

use engine::chat_template::{ChatMessage, Role};

use crate::runtime::{Completion, CompletionImage};
use crate::store::{
    AttachmentKind, ConversationId, GenerationStats, NewAttachment, NewConversation, NewMessage, Store, StoreError,
};

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

/// An image of a request as a stored attachment, named by its place and its format's extension.
fn image_attachment(n: usize, bytes: &[u8]) -> NewAttachment {
    let format = image::guess_format(bytes).ok();
    let ext = format.and_then(|f| f.extensions_str().first().copied()).unwrap_or("bin");
    let mime = format.map_or("application/octet-stream", |f| f.to_mime_type());
    NewAttachment {
        kind: AttachmentKind::Image,
        file_name: format!("image-{n}.{ext}"),
        mime: mime.to_string(),
        bytes: bytes.to_vec(),
        extracted_text: None,
    }
}

/// Stores `messages` (with `images`, as the request placed them) and the reply `c` (by
/// `model`) as a new conversation.
pub async fn store_exchange(
    store: &Store,
    model: &str,
    messages: &[ChatMessage],
    images: &[CompletionImage],
    c: &Completion,
) -> Result<ConversationId, StoreError> {
    let (system, turns, first) = match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (Some(first.content.clone()), rest, 1),
        _ => (None, messages, 0),
    };
    let new = NewConversation {
        title: title(messages),
        model: Some(model.to_string()),
        system_prompt: system,
        sampling: Default::default(),
    };
    let conv = store.create_conversation(&new).await?;
    let (mut parent, mut n) = (None, 0);
    for (i, m) in turns.iter().enumerate() {
        let attachments: Vec<NewAttachment> = images
            .iter()
            .filter(|im| im.message == first + i)
            .map(|im| {
                n += 1;
                image_attachment(n, &im.bytes)
            })
            .collect();
        let new = NewMessage::complete(m.role, m.content.clone());
        parent = Some(store.append_child(conv.id, parent, &new, &attachments).await?.id);
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
