//! The line in front of the model: one generation at a time, the others waiting in order of
//! arrival, at most `capacity` of them.
//!
//! A caller first takes a [`QueueTicket`] (its place in line, answered at once: refused when
//! the line is full), then waits for its turn on a thread that may block. Taking the place
//! and waiting are separate so that a front end can tell its client "accepted" or "full"
//! before the wait, and so that arrival order is the order places were taken, whatever the
//! threads' scheduling. A ticket dropped while waiting leaves the line; a [`QueueTurn`]
//! dropped (generation over, panicked or abandoned) lets the next one in at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{ErrorDetails, HearthError, HearthResult};

/// How many generations may wait behind the running one unless a front end sets another bound.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// A waiter re-checks its cancel flag this often, for callers that set the flag without
/// calling [`GenerationQueue::wake`].
const CANCEL_POLL: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Line {
    next_ticket: u64,
    /// The ticket whose generation runs now.
    serving: Option<u64>,
    /// Tickets in order of arrival.
    waiting: VecDeque<u64>,
}

/// See the module docs. Shared (`Arc`) by the runtime and every ticket.
pub struct GenerationQueue {
    capacity: AtomicUsize,
    line: Mutex<Line>,
    changed: Condvar,
}

/// A place in line. Dropping it before its turn leaves the line.
pub struct QueueTicket {
    queue: Arc<GenerationQueue>,
    id: u64,
    /// Set once the ticket became a turn (then the turn, not the ticket, frees the model).
    admitted: bool,
}

/// The model is ours until this is dropped.
pub struct QueueTurn {
    queue: Arc<GenerationQueue>,
    id: u64,
}

/// Why a wait ended without a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitCancelled;

/// Where the line stands, for a health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QueueStatus {
    pub running: bool,
    pub waiting: usize,
    pub capacity: usize,
}

/// A poisoned lock only means a waiter panicked; every write to the line is one small step.
fn lock(m: &Mutex<Line>) -> MutexGuard<'_, Line> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GenerationQueue {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: AtomicUsize::new(capacity),
            line: Mutex::new(Line::default()),
            changed: Condvar::new(),
        })
    }

    /// Changes how many may wait from now on (those already waiting keep their places).
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    pub fn status(&self) -> QueueStatus {
        let line = lock(&self.line);
        QueueStatus {
            running: line.serving.is_some(),
            waiting: line.waiting.len(),
            capacity: self.capacity.load(Ordering::Relaxed),
        }
    }

    /// A place at the end of the line, or `busy` (details: `limit`, the capacity) when as many
    /// wait as the capacity allows. With nobody running or waiting the ticket's wait returns
    /// at once.
    pub fn join(self: &Arc<Self>) -> HearthResult<QueueTicket> {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let mut line = lock(&self.line);
        // The running generation does not count: `capacity` is how many may wait behind it.
        let idle = line.serving.is_none() && line.waiting.is_empty();
        if !idle && line.waiting.len() >= capacity {
            return Err(HearthError::new(
                crate::error::ErrorCode::Busy,
                format!("{} requests are already waiting for the model; try again later", line.waiting.len()),
            )
            .with(ErrorDetails { limit: Some(capacity as u64), ..ErrorDetails::default() }));
        }
        let id = line.next_ticket;
        line.next_ticket += 1;
        line.waiting.push_back(id);
        Ok(QueueTicket { queue: self.clone(), id, admitted: false })
    }

    /// Wakes every waiter to re-check its cancel flag (a front end calls this after setting
    /// one, so the wait ends at once rather than at the next poll).
    pub fn wake(&self) {
        self.changed.notify_all();
    }
}

impl QueueTicket {
    /// Blocks until every ticket taken before this one has had its turn and finished, then
    /// returns the turn; or returns [`WaitCancelled`] (leaving the line) once `cancel` is set.
    pub fn wait(mut self, cancel: &AtomicBool) -> Result<QueueTurn, WaitCancelled> {
        let queue = self.queue.clone();
        let mut line = lock(&queue.line);
        loop {
            if cancel.load(Ordering::SeqCst) {
                // Dropping `self` (after the guard) removes the ticket and wakes the others.
                drop(line);
                return Err(WaitCancelled);
            }
            if line.serving.is_none() && line.waiting.front() == Some(&self.id) {
                line.waiting.pop_front();
                line.serving = Some(self.id);
                self.admitted = true;
                return Ok(QueueTurn { queue: queue.clone(), id: self.id });
            }
            line = queue.changed.wait_timeout(line, CANCEL_POLL).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        if self.admitted {
            return;
        }
        let mut line = lock(&self.queue.line);
        line.waiting.retain(|t| *t != self.id);
        drop(line);
        // The one behind may now be first.
        self.queue.changed.notify_all();
    }
}

impl Drop for QueueTurn {
    fn drop(&mut self) {
        let mut line = lock(&self.queue.line);
        if line.serving == Some(self.id) {
            line.serving = None;
        }
        drop(line);
        self.queue.changed.notify_all();
    }
}

impl super::Runtime {
    /// [`super::Runtime::complete`] that waits its turn in the runtime's line instead of being
    /// refused with `busy` while another queued generation runs; refused with `busy` only when
    /// the line is full. Blocking. Setting `cancel` while it waits leaves the line and returns
    /// an empty completion stopped as `cancelled`.
    pub fn complete_queued(
        &self,
        req: super::CompletionRequest,
        cancel: Arc<AtomicBool>,
        on_text: &mut dyn FnMut(&str),
    ) -> HearthResult<super::Completion> {
        let ticket = self.queue().join()?;
        let Ok(turn) = ticket.wait(&cancel) else {
            return Ok(super::Completion {
                text: String::new(),
                prompt_tokens: 0,
                reused_tokens: 0,
                completion_tokens: 0,
                stop: engine::session::StopReason::Cancelled,
                prompt_tokens_per_s: 0.0,
                gen_tokens_per_s: 0.0,
            });
        };
        let result = self.complete(req, cancel, on_text);
        // After `complete` freed the model: the next in line starts on a free slot.
        drop(turn);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::sync::mpsc;

    #[test]
    fn turns_come_in_order_of_arrival_one_at_a_time() {
        let q = GenerationQueue::new(16);
        let first = q.join().unwrap().wait(&AtomicBool::new(false)).unwrap();
        // Tickets taken in this order; their threads start in reverse so scheduling cannot
        // explain the order.
        let tickets: Vec<_> = (0..8).map(|_| q.join().unwrap()).collect();
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::new();
        for (i, t) in tickets.into_iter().enumerate().rev() {
            let tx = tx.clone();
            handles.push(std::thread::spawn(move || {
                let turn = t.wait(&AtomicBool::new(false)).unwrap();
                tx.send(("start", i)).unwrap();
                tx.send(("end", i)).unwrap();
                drop(turn);
            }));
        }
        assert_eq!(q.status(), QueueStatus { running: true, waiting: 8, capacity: 16 });
        drop(first);
        for h in handles {
            h.join().unwrap();
        }
        let events: Vec<_> = rx.try_iter().collect();
        let expected: Vec<_> = (0..8).flat_map(|i| [("start", i), ("end", i)]).collect();
        assert_eq!(events, expected);
        assert_eq!(q.status(), QueueStatus { running: false, waiting: 0, capacity: 16 });
    }

    #[test]
    fn a_full_line_refuses_with_busy_and_its_capacity() {
        let q = GenerationQueue::new(2);
        let _running = q.join().unwrap().wait(&AtomicBool::new(false)).unwrap();
        let _a = q.join().unwrap();
        let _b = q.join().unwrap();
        let e = q.join().err().expect("a third waiter is refused");
        assert_eq!((e.code, e.details.limit), (ErrorCode::Busy, Some(2)));
        // An idle queue admits even with capacity 0: nobody waits.
        let idle = GenerationQueue::new(0);
        assert!(idle.join().unwrap().wait(&AtomicBool::new(false)).is_ok());
    }

    #[test]
    fn a_cancelled_waiter_leaves_the_line_and_the_next_one_moves_up() {
        let q = GenerationQueue::new(4);
        let running = q.join().unwrap().wait(&AtomicBool::new(false)).unwrap();
        let gone = q.join().unwrap();
        let next = q.join().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let waiter = {
            let cancel = cancel.clone();
            std::thread::spawn(move || gone.wait(&cancel).err())
        };
        cancel.store(true, Ordering::SeqCst);
        q.wake();
        assert_eq!(waiter.join().unwrap(), Some(WaitCancelled));
        assert_eq!(q.status().waiting, 1);
        drop(running);
        assert!(next.wait(&AtomicBool::new(false)).is_ok());
    }

    #[test]
    fn a_dropped_ticket_frees_its_place() {
        let q = GenerationQueue::new(1);
        let _running = q.join().unwrap().wait(&AtomicBool::new(false)).unwrap();
        let t = q.join().unwrap();
        assert!(q.join().is_err());
        drop(t);
        assert!(q.join().is_ok());
    }
}
