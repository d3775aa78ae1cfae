//! `Waker`: where the threads of one side of a queue (readers, or writers) sleep. A notifier
//! pays one load when nobody sleeps (crossbeam's `SyncWaker` idea with a condition variable).
//!
//! No lost wake-up: a sleeper takes `lock`, registers (`sleepers += 1`, SeqCst), then evaluates
//! its "still blocked" predicate (SeqCst loads of what the other side claims with SeqCst
//! read-modify-writes, see `ring.rs`) and waits on `cv` only if it holds, releasing `lock`
//! atomically. A notifier makes its claim, then loads `sleepers` (SeqCst). In the single total
//! order of SeqCst operations, either the registration comes first, so the notifier sees it and
//! takes `lock` (which it gets only once the sleeper waits) to notify; or the claim comes
//! first, so the sleeper's predicate sees it and the sleeper does not wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

pub(super) struct Waker {
    /// Threads registered to sleep (between registration and leaving `sleep`). Changed under
    /// `lock`; loaded without it by notifiers (SeqCst, see the module doc).
    sleepers: AtomicUsize,
    /// Held by a sleeper from registration until it waits, and by notifiers while notifying.
    lock: Mutex<()>,
    cv: Condvar,
}

impl Waker {
    pub(super) fn new() -> Self {
        Self {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Sleeps until notified, `deadline` passes or a spurious wake-up, unless `blocked`
    /// (evaluated after registering) says the caller can go on. The caller retries its
    /// operation afterwards in every case.
    pub(super) fn sleep(&self, blocked: impl FnOnce() -> bool, deadline: Option<Instant>) {
        let mut guard = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if blocked() {
            match deadline {
                None => self.cv.wait(&mut guard),
                Some(d) => {
                    self.cv.wait_until(&mut guard, d);
                }
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes one sleeper, if any: one load when there is none. Call after the claim that
    /// unblocks the other side.
    pub(super) fn notify_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            let _guard = self.lock.lock();
            self.cv.notify_one();
        }
    }

    /// Wakes every sleeper (close).
    pub(super) fn notify_all(&self) {
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }

    /// Whether someone is registered (for `Drop` checks).
    pub(super) fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::SeqCst) != 0
    }
}
