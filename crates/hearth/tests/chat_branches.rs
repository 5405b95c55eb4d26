//! Regenerate and edit with the real model: each adds a sibling in the conversation's message
//! tree (same parent as the message it replaces), makes it the active branch, and the model sees
//! the branch's history, with the edited text instead of the original.

mod support;
use support::test_model;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use engine::sampler::SamplingParams;
use engine::session::{Engine, LoadOptions, Session};
use hearth::chat::{ChatError, ChatService, TurnInput, TurnOutcome, TurnRequest};
use hearth::store::{
    AttachmentKind, ConversationId, MessageState, NewAttachment, NewConversation, Role, Store, StoreError,
};

struct Fixture {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    store: Store,
    service: ChatService,
    session: Session,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = rt.block_on(Store::open(dir.path())).unwrap();
        let engine = Engine::load(&test_model(), &LoadOptions::default()).unwrap();
        let session = Session::new(engine, 1024).unwrap();
        let service = ChatService::new(store.clone(), rt.handle().clone());
        Self { rt, _dir: dir, store, service, session }
    }

    fn turn(&mut self, conv: ConversationId, input: TurnInput) -> Result<TurnOutcome, ChatError> {
        let req = TurnRequest {
            conversation_id: conv,
            input,
            max_tokens: 4,
            sampling: SamplingParams { temperature: 0.0, ..Default::default() },
            model_label: "gemma-3-270m".into(),
            vision: None,
            pan_scan: None,
        };
        let mut streamed = String::new();
        let out = self
            .service
            .turn(&mut self.session, &req, Arc::new(AtomicBool::new(false)), &mut |p| streamed.push_str(p))?;
        assert_eq!(out.reply, streamed);
        Ok(out)
    }

    /// What the model's context holds now (prompt and reply), as text.
    fn context_text(&self) -> String {
        let engine = self.session.engine();
        engine.tokenizer().decode(self.session.tokens()).unwrap()
    }

    fn path(&self, conv: ConversationId) -> Vec<i64> {
        let ms = self.rt.block_on(self.store.messages(conv)).unwrap();
        ms.iter().map(|m| m.id).collect()
    }

    fn count(&self) -> i64 {
        self.rt
            .block_on(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages").fetch_one(self.store.pool()))
            .unwrap()
    }
}

#[test]
fn regenerate_and_edit_add_siblings_on_the_active_branch() {
    let mut f = Fixture::new();
    let conv = f.rt.block_on(f.store.create_conversation(&NewConversation::default())).unwrap().id;
    let notes = NewAttachment {
        kind: AttachmentKind::Document,
        file_name: "notes.txt".into(),
        mime: "text/plain".into(),
        bytes: b"giraffes are tall".to_vec(),
        extracted_text: None,
    };
    let first = f.turn(conv, TurnInput::Send { text: "Tell me about cats.".into(), attachments: vec![notes] }).unwrap();
    assert!(first.new_user_message);
    let u1 = f.rt.block_on(f.store.message(first.user_message_id)).unwrap();
    assert_eq!(u1.parent_id, None);
    assert_eq!(u1.attachments.len(), 1, "attachments are stored with the message");
    let a1 = first.assistant_message_id;

    // Regenerate: a new reply beside a1, under the same user message; no new user message.
    let regen = f.turn(conv, TurnInput::Regenerate { reply: a1 }).unwrap();
    let a2 = regen.assistant_message_id;
    assert_ne!(a2, a1);
    assert_eq!(regen.user_message_id, u1.id);
    assert!(!regen.new_user_message);
    let a2m = f.rt.block_on(f.store.message(a2)).unwrap();
    assert_eq!((a2m.role, a2m.parent_id), (Role::Assistant, Some(u1.id)));
    assert_eq!(a2m.state, MessageState::Complete);
    assert_eq!(a2m.content, regen.reply);
    assert_eq!(f.rt.block_on(f.store.siblings(a2)).unwrap(), [a1, a2]);
    assert_eq!(f.path(conv), [u1.id, a2]);
    let ctx = f.context_text();
    assert!(ctx.contains("Tell me about cats."), "{ctx}");

    // A follow-up continues the regenerated branch.
    let second = f.turn(conv, TurnInput::send("What do dogs eat?")).unwrap();
    let u2 = second.user_message_id;
    assert_eq!(f.rt.block_on(f.store.message(u2)).unwrap().parent_id, Some(a2));

    // Edit: a new user message beside u2 (same parent a2) with the new text, and its reply.
    let edit = f.turn(conv, TurnInput::Edit { message: u2, text: "What do zebras eat?".into() }).unwrap();
    assert!(edit.new_user_message);
    let u2b = f.rt.block_on(f.store.message(edit.user_message_id)).unwrap();
    assert_eq!((u2b.role, u2b.parent_id), (Role::User, Some(a2)));
    assert_eq!(u2b.content, "What do zebras eat?");
    let a4 = f.rt.block_on(f.store.message(edit.assistant_message_id)).unwrap();
    assert_eq!(a4.parent_id, Some(u2b.id));
    assert_eq!(f.rt.block_on(f.store.siblings(u2)).unwrap(), [u2, u2b.id]);
    assert_eq!(f.path(conv), [u1.id, a2, u2b.id, a4.id]);
    // The model saw the branch with the edited text, not the original.
    let ctx = f.context_text();
    assert!(ctx.contains("What do zebras eat?"), "{ctx}");
    assert!(!ctx.contains("dogs"), "{ctx}");
    assert!(ctx.contains("Tell me about cats."), "{ctx}");
    assert!(ctx.contains(&a2m.content), "{ctx}");

    // Editing the first message: a new first message that keeps the original's attachments.
    let root_edit = f.turn(conv, TurnInput::Edit { message: u1.id, text: "Tell me about owls.".into() }).unwrap();
    let u1b = f.rt.block_on(f.store.message(root_edit.user_message_id)).unwrap();
    assert_eq!(u1b.parent_id, None);
    assert_eq!(u1b.attachments.len(), 1);
    assert_eq!(u1b.attachments[0].file_name, "notes.txt");
    assert_eq!(u1b.attachments[0].sha256, u1.attachments[0].sha256);
    assert_eq!(f.path(conv), [u1b.id, root_edit.assistant_message_id]);
    let ctx = f.context_text();
    assert!(ctx.contains("owls") && !ctx.contains("cats"), "{ctx}");
    // The older branches are all still there.
    assert_eq!(f.rt.block_on(f.store.siblings(u1.id)).unwrap(), [u1.id, u1b.id]);
    assert_eq!(f.rt.block_on(f.store.select_branch(u1.id)).unwrap(), a4.id);

    // Wrong roles and foreign messages are refused before anything is stored.
    let before = f.count();
    let e = f.turn(conv, TurnInput::Regenerate { reply: u1.id }).unwrap_err();
    assert!(matches!(&e, ChatError::InvalidMessage(m) if m.contains("regenerated")), "{e}");
    let e = f.turn(conv, TurnInput::Edit { message: a1, text: "x".into() }).unwrap_err();
    assert!(matches!(&e, ChatError::InvalidMessage(m) if m.contains("edited")), "{e}");
    let e = f.turn(conv, TurnInput::Edit { message: u2, text: "  ".into() }).unwrap_err();
    assert!(matches!(e, ChatError::EmptyMessage), "{e}");
    let other = f.rt.block_on(f.store.create_conversation(&NewConversation::default())).unwrap().id;
    let e = f.turn(other, TurnInput::Regenerate { reply: a1 }).unwrap_err();
    assert!(matches!(e, ChatError::Store(StoreError::MessageNotFound(id)) if id == a1), "{e}");
    assert_eq!(f.count(), before);
}
