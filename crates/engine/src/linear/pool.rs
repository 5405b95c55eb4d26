//! Splitting a kernel's work across threads.
//!
//! `par_for` shares numbered work items between the calling thread and helpers that run on the
//! current rayon pool: the model's `device::CpuThreads`, which sessions install around each
//! forward pass (rayon's global pool only for callers outside any pool). The caller starts on the items at
//! once and never waits for a helper that has not started: helpers take items from a shared
//! counter, and the caller waits only for items a helper has already taken. On a quiet machine
//! all threads share the work; on a busy one, where a helper may be scheduled late, the caller
//! simply does more of it itself. (rayon's own `par_iter` makes the caller wait for every split
//! it handed out, which on the shared 2-core test machine cost more than it gained.)

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Threads the work may be split across: those of the pool the caller runs in.
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

type Work = dyn Fn(usize) + Sync;

struct Shared {
    n: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// The caller's closure; only called for an index taken from `next` below `n`, and
    /// `par_for` does not return before every such call has finished.
    f: *const Work,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `f` points to a `Sync` closure, used as described on the field.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n {
                return;
            }
            // SAFETY: i < n, so the caller is still inside `par_for`, waiting for this item.
            let f = unsafe { &*self.f };
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))) {
                self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// Runs `f(i)` for every `i` in `0..n`, on the calling thread and up to `threads() - 1` helpers.
pub(crate) fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    let helpers = threads().saturating_sub(1).min(n.saturating_sub(1));
    if helpers == 0 {
        (0..n).for_each(f);
        return;
    }
    let f: &(dyn Fn(usize) + Sync + '_) = &f;
    // SAFETY: only the lifetime is erased; see `Shared::f`.
    let f: *const Work = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Work>(f) };
    let shared =
        Arc::new(Shared { n, next: AtomicUsize::new(0), done: AtomicUsize::new(0), f, panic: Mutex::new(None) });
    for _ in 0..helpers {
        let s = shared.clone();
        rayon::spawn(move || s.work());
    }
    shared.work();
    // Items taken by helpers may still be running.
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < n {
        if spins < 2000 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    let panic = shared.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
}

/// A raw pointer that closures running on other threads may carry; users guarantee that
/// concurrent writes through it touch disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
// SAFETY: the pointer is only dereferenced inside `unsafe` blocks whose users guarantee that
// concurrent accesses through it touch disjoint elements (see above).
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::CpuThreads;

    /// Kernels split their work by the pool they are called in: inside a pool of n threads
    /// `threads()` is n and every item runs on one of that pool's threads.
    #[test]
    fn par_for_uses_the_installed_pool() {
        for n in [1, 3] {
            let pool = CpuThreads::new(n).unwrap();
            let (seen, on_pool) = pool.install(|| {
                let names = Mutex::new(std::collections::HashSet::new());
                let on_pool = AtomicUsize::new(0);
                par_for(64, |_| {
                    let t = std::thread::current();
                    names.lock().unwrap().insert(t.name().unwrap_or("").to_string());
                    if t.name().is_some_and(|s| s.starts_with("hearth-cpu-")) {
                        on_pool.fetch_add(1, Ordering::Relaxed);
                    }
                    // Long enough that helpers, when there are any, get items.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                });
                assert_eq!(threads(), n);
                (names.into_inner().unwrap(), on_pool.into_inner())
            });
            assert_eq!(on_pool, 64, "every item ran on the installed pool");
            assert!(seen.len() <= n, "{n} threads, items ran on {seen:?}");
        }
    }
}
