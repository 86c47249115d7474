//! Whether relinkd is ready: its config is loaded, its supervisors run, and
//! none of them has died. `/-/ready` and the watchdog read it; the daemon
//! sets it at start and clears it at shutdown; the fleet reports a
//! supervisor that panicked (its instance is no longer watched, so relinkd
//! must not look healthy).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set by the daemon once supervisors run; cleared at shutdown.
    started: AtomicBool,
    /// Supervisors that panicked since start (never un-counted: their
    /// instances stay unwatched until a restart).
    dead_supervisors: AtomicUsize,
}

impl Readiness {
    pub fn set_started(&self, started: bool) {
        self.inner.started.store(started, Ordering::Release);
    }

    pub fn supervisor_died(&self) {
        self.inner.dead_supervisors.fetch_add(1, Ordering::AcqRel);
    }

    pub fn dead_supervisors(&self) -> usize {
        self.inner.dead_supervisors.load(Ordering::Acquire)
    }

    pub fn is_ready(&self) -> bool {
        self.inner.started.load(Ordering::Acquire) && self.dead_supervisors() == 0
    }
}
