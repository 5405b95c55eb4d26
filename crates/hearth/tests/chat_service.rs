//! The chat service with the real model: turns are stored, the session's KV cache is reused
//! between turns, cancelling stores the partial reply as interrupted, and the interactive
//! `hearth chat` survives Ctrl-C.

mod support;
use support::test_model;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::sampler::SamplingParams;
use engine::session::{Engine, LoadOptions, Session};
use hearth::chat::{ChatService, TurnInput, TurnRequest};
use hearth::store::{MessageState, NewConversation, Role, Store, DB_FILE};

fn greedy() -> SamplingParams {
    SamplingParams { temperature: 0.0, ..Default::default() }
}

#[test]
fn turns_reuse_the_cache_and_cancel_keeps_the_partial_reply() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(Store::open(dir.path())).unwrap();
    let conv = rt
        .block_on(
            store.create_conversation(&NewConversation {
                system_prompt: Some("Be brief.".into()),
                ..Default::default()
            }),
        )
        .unwrap();
    let engine = Engine::load(&test_model(), &LoadOptions::default()).unwrap();
    let mut session = Session::new(engine, 2048).unwrap();
    let service = ChatService::new(store.clone(), rt.handle().clone());
    let req = |text: &str, max_tokens| TurnRequest {
        conversation_id: conv.id,
        input: TurnInput::send(text),
        max_tokens,
        sampling: greedy(),
        model_label: "gemma-3-270m".into(),
        vision: None,
        pan_scan: None,
    };

    let mut streamed = String::new();
    let first = service
        .turn(&mut session, &req("Tell me about cats.", 10), Arc::new(AtomicBool::new(false)), &mut |p| {
            streamed.push_str(p)
        })
        .unwrap();
    assert_eq!(first.reply, streamed, "what streamed is what was stored");
    assert_eq!(first.state, MessageState::Complete);
    assert_eq!(first.generated_tokens, 10);
    let stored = rt.block_on(store.message(first.assistant_message_id)).unwrap();
    assert_eq!(stored.content, first.reply);
    assert_eq!(stored.stats.stop_reason.as_deref(), Some("max_tokens"));
    assert_eq!(stored.stats.model.as_deref(), Some("gemma-3-270m"));
    assert_eq!(rt.block_on(store.conversation(conv.id)).unwrap().title, "Tell me about cats.");

    // Second turn: the whole conversation is re-sent, most of it already in the KV cache.
    // Cancel after the third piece: the reply so far is stored as interrupted.
    let cancel = Arc::new(AtomicBool::new(false));
    let mut pieces = 0;
    let c2 = cancel.clone();
    let second = service
        .turn(&mut session, &req("And dogs?", 200), cancel, &mut |_| {
            pieces += 1;
            if pieces == 3 {
                c2.store(true, Ordering::SeqCst);
            }
        })
        .unwrap();
    assert!(second.reused_tokens > first.prompt_tokens / 2, "cache reused: {second:?}");
    assert_eq!(second.state, MessageState::Interrupted);
    assert_eq!(second.stop_reason, hearth::chat::StopReason::Cancelled);
    let msgs = rt.block_on(store.messages(conv.id)).unwrap();
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[3].state, MessageState::Interrupted);
    assert_eq!(msgs[3].content, second.reply);
    assert!(!second.reply.is_empty());

    // An empty message is refused before anything is stored.
    assert!(service.turn(&mut session, &req("   ", 5), Arc::new(AtomicBool::new(false)), &mut |_| {}).is_err());
    assert_eq!(rt.block_on(store.messages(conv.id)).unwrap().len(), 4);
}

#[test]
fn a_history_longer_than_the_context_is_trimmed_from_the_oldest_turn() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(Store::open(dir.path())).unwrap();
    let conv = rt
        .block_on(
            store.create_conversation(&NewConversation { system_prompt: Some("Answer.".into()), ..Default::default() }),
        )
        .unwrap();
    for i in 0..12 {
        let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
        let text = format!("turn {i}: {}", "the quick brown fox jumps over the lazy dog ".repeat(4));
        rt.block_on(store.append_message(conv.id, &hearth::store::NewMessage::complete(role, text))).unwrap();
    }
    let engine = Engine::load(&test_model(), &LoadOptions::default()).unwrap();
    // About 45 tokens a turn: twelve turns do not fit in 256.
    let mut session = Session::new(engine, 256).unwrap();
    let service = ChatService::new(store.clone(), rt.handle().clone());
    let out = service
        .turn(
            &mut session,
            &TurnRequest {
                conversation_id: conv.id,
                input: TurnInput::send("Last question?"),
                max_tokens: 8,
                sampling: greedy(),
                model_label: "m".into(),
                vision: None,
                pan_scan: None,
            },
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )
        .unwrap();
    assert!(out.prompt_tokens + 8 <= 256, "{out:?}");
    assert!(out.prompt_tokens > 100, "recent turns kept: {out:?}");
    assert_eq!(out.state, MessageState::Complete);
    // The store still has every turn.
    assert_eq!(rt.block_on(store.messages(conv.id)).unwrap().len(), 14);
}

/// Ctrl-C (SIGINT) in the interactive REPL stops the reply and stores it as interrupted; the
/// REPL carries on to the next line (here `/exit`, so it exits normally instead of by signal).
#[cfg(unix)]
#[test]
fn ctrl_c_in_the_repl_cancels_the_reply_not_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_DATA_DIR", dir.path())
        .args(["chat", "--model"])
        .arg(test_model())
        .args(["--max-tokens", "2000", "--temperature", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth chat");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "Write a long story about a dragon.").unwrap();
    // Wait for the reply to start streaming on stdout.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut out, &mut first).expect("reply starts");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // The app is still there and reads the next line: quit normally.
    writeln!(stdin, "/exit").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(600);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "hearth chat did not finish");
        // Keep draining stdout so the child never blocks on a full pipe.
        let mut line = String::new();
        let _ = out.read_line(&mut line);
    };
    assert!(code.success(), "the REPL exits normally after Ctrl-C stopped a reply: {code}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(dir.path())).unwrap();
    let pool = store.pool().clone();
    let conv: i64 = rt.block_on(sqlx::query_scalar("SELECT id FROM conversations").fetch_one(&pool)).unwrap();
    let msgs = rt.block_on(store.messages(conv)).unwrap();
    let roles: Vec<_> = msgs.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant]);
    assert_eq!(msgs[1].state, MessageState::Interrupted);
    assert_eq!(msgs[1].stats.stop_reason.as_deref(), Some("cancelled"));
    assert!(!msgs[1].content.is_empty());
    assert!(dir.path().join(DB_FILE).is_file());
}
