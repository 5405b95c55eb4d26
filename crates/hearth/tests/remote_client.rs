//! The remote-model client against a real OpenAI-compatible server: `hearth serve` (a child
//! process on the real 270M model). Streaming, cancel (the server is free for the next request
//! at once), the server killed mid-reply, a wrong key and an unreachable address.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};

use engine::chat_template::{ChatMessage, Role};
use hearth::remote::{RemoteClient, RemoteError, RemoteFinish, RemoteKey, RemoteModel, RemoteOptions};
use support::serve::Server;

fn remote(url: &str, model: Option<&str>) -> RemoteModel {
    RemoteModel {
        name: "lab".into(),
        url: hearth::remote::registry::normalize_url(url).unwrap(),
        model: model.map(String::from),
        has_key: false,
        added_at: 0,
    }
}

fn ask(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(Role::User, text)]
}

fn opts(max_tokens: usize) -> RemoteOptions {
    RemoteOptions { max_tokens, temperature: 0.0, top_p: 1.0, seed: Some(1), stop: Vec::new() }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn streams_a_reply_and_its_usage_from_hearth_serve() {
    let server = Server::start(&[]);
    let rt = tokio();
    // No model id given: the client asks the server for its first.
    let client = RemoteClient::new(remote(&server.url, None), None).unwrap();
    assert_eq!(rt.block_on(client.models()).unwrap(), vec![server.model.clone()]);
    let mut pieces = Vec::new();
    let reply = client
        .stream_chat(rt.handle(), &ask("Name three colours."), &opts(12), &AtomicBool::new(false), &mut |p| {
            pieces.push(p.to_string())
        })
        .unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), reply.text);
    assert_eq!(reply.finish, RemoteFinish::Length, "{reply:?}");
    assert_eq!(reply.completion_tokens, Some(12), "{reply:?}");
    assert!(reply.prompt_tokens.is_some_and(|p| p > 5), "{reply:?}");
    assert_eq!(reply.model.as_deref(), Some(server.model.as_str()));

    // The same request again, greedy: the same text (the server is deterministic at T=0).
    let again = client
        .stream_chat(rt.handle(), &ask("Name three colours."), &opts(12), &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    assert_eq!(again.text, reply.text);
}

#[test]
fn cancel_closes_the_request_and_frees_the_server() {
    let server = Server::start(&[]);
    let rt = tokio();
    let client = RemoteClient::new(remote(&server.url, Some(&server.model)), None).unwrap();
    let cancel = AtomicBool::new(false);
    let mut seen = String::new();
    let reply = client
        .stream_chat(rt.handle(), &ask("Write a long story about a lighthouse."), &opts(400), &cancel, &mut |p| {
            seen.push_str(p);
            cancel.store(true, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(reply.finish, RemoteFinish::Cancelled);
    assert_eq!(reply.text, seen);
    assert!(!seen.is_empty());
    // The server noticed the closed connection and is free: a short request is answered at
    // once instead of waiting behind 400 tokens (the server logs the cancel).
    let next = client.stream_chat(rt.handle(), &ask("Hi"), &opts(3), &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(next.completion_tokens, Some(3));
    let log = server.log();
    let ended = log.iter().find(|l| l.contains("ended: cancelled after")).unwrap_or_else(|| panic!("{log:?}"));
    let tokens: usize = ended.split("after ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(tokens < 400, "{ended}");
}

#[test]
fn a_server_killed_mid_reply_is_an_interrupted_error_after_the_partial_text() {
    let mut server = Server::start(&[]);
    let rt = tokio();
    let client = RemoteClient::new(remote(&server.url, Some(&server.model)), None).unwrap();
    let mut seen = String::new();
    let mut killed = false;
    let err = client
        .stream_chat(
            rt.handle(),
            &ask("Write a long story about a lighthouse."),
            &opts(400),
            &AtomicBool::new(false),
            &mut |p| {
                seen.push_str(p);
                if !killed {
                    server.child.kill().unwrap();
                    killed = true;
                }
            },
        )
        .unwrap_err();
    assert!(matches!(&err, RemoteError::Interrupted { .. }), "{err:?}");
    assert!(!seen.is_empty());
    let e = hearth::error::HearthError::from(err);
    assert_eq!(e.code, hearth::error::ErrorCode::Remote);
    assert!(e.details.path.as_deref().is_some_and(|u| server.url.starts_with(u)), "{e:?}");
}

#[test]
fn a_wrong_key_and_a_dead_address_are_clear_errors() {
    let server = Server::start(&["--api-key", "right-key"]);
    let rt = tokio();
    let wrong = RemoteClient::new(remote(&server.url, None), RemoteKey::new("wrong-key")).unwrap();
    let err = rt.block_on(wrong.models()).unwrap_err();
    assert!(matches!(&err, RemoteError::Refused { status: 401, .. }), "{err:?}");
    let right = RemoteClient::new(remote(&server.url, None), RemoteKey::new("right-key")).unwrap();
    assert_eq!(rt.block_on(right.models()).unwrap(), vec![server.model.clone()]);
    // An unknown model id: the server's 404 comes through with its message.
    let client = RemoteClient::new(remote(&server.url, Some("no-such-model")), RemoteKey::new("right-key")).unwrap();
    let err = client.stream_chat(rt.handle(), &ask("Hi"), &opts(2), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, RemoteError::Refused { status: 404, message, .. } if message.contains("no-such-model")),
        "{err:?}"
    );

    // Nothing listens on port 9 (discard) here: connection refused, said plainly.
    let dead = RemoteClient::new(remote("http://127.0.0.1:9", Some("m")), None).unwrap();
    let err = dead.stream_chat(rt.handle(), &ask("Hi"), &opts(2), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(matches!(&err, RemoteError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
