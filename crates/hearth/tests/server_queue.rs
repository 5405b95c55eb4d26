//! `Runtime::complete_queued` on the real model: generations that would be refused with `busy`
//! wait their turn instead, never overlap, and a waiter that cancels leaves the line.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use engine::chat_template::{ChatMessage, Role};
use engine::session::StopReason;
use hearth::runtime::CompletionRequest;
use support::runtime::Fixture;

fn request(text: &str, max_tokens: usize) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage::new(Role::User, text)],
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Ev {
    Text(usize),
    End(usize),
}

#[test]
fn queued_completions_take_turns_instead_of_being_refused() {
    let f = Fixture::new(64);
    f.load().unwrap();
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (rt, tx) = (f.runtime.clone(), tx.clone());
            std::thread::spawn(move || {
                let out =
                    rt.complete_queued(request("Name a colour.", 6), Arc::new(AtomicBool::new(false)), &mut |_| {
                        let _ = tx.send(Ev::Text(i));
                    });
                let _ = tx.send(Ev::End(i));
                out
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        let c = t.join().unwrap().expect("a queued completion is never refused as busy");
        assert!(c.completion_tokens >= 1);
    }
    // Each generation's pieces and end come together: none overlapped another.
    let events: Vec<Ev> = rx.iter().collect();
    let mut current = None;
    let mut ended = Vec::new();
    for e in &events {
        match *e {
            Ev::Text(i) => {
                assert!(current.is_none_or(|c| c == i), "{i} streamed while {current:?} ran: {events:?}");
                assert!(!ended.contains(&i), "{events:?}");
                current = Some(i);
            }
            Ev::End(i) => {
                ended.push(i);
                current = None;
            }
        }
    }
    assert_eq!(ended.len(), 3);
}

#[test]
fn a_waiter_that_cancels_leaves_the_line_without_running() {
    let f = Fixture::new(64);
    f.load().unwrap();
    // Hold the model's turn as a running generation would.
    let turn = f.runtime.queue().join().unwrap().wait(&AtomicBool::new(false)).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (rt, cancel) = (f.runtime.clone(), cancel.clone());
        std::thread::spawn(move || rt.complete_queued(request("Hi", 4), cancel, &mut |_| panic!("it ran")))
    };
    while f.runtime.queue().status().waiting == 0 {
        std::thread::yield_now();
    }
    cancel.store(true, Ordering::SeqCst);
    f.runtime.queue().wake();
    let c = waiter.join().unwrap().unwrap();
    assert_eq!((c.stop, c.completion_tokens), (StopReason::Cancelled, 0));
    assert_eq!(f.runtime.queue().status().waiting, 0);
    drop(turn);
    let c = f.runtime.complete_queued(request("Hi", 2), Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap();
    assert!(c.completion_tokens >= 1);
}
