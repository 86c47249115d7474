//! Whether relinkd is ready: its config is loaded, its supervisors run,
//! none of them has died, and the fleet makes progress (see `health`). `/-/ready` and the watchdog read it; the daemon
//! sets it at start and clears it at shutdown; the fleet reports a
//! supervisor that panicked (its instance is no longer watched, so relinkd
//! must not look healthy).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Clone, Default)]
pub struct Readiness {
    /// Shared by the daemon (started), the health reporter (progressing),
    /// the fleet (dead supervisors) and the admin API (reads).
    inner: Arc<Inner>,
}

struct Inner {
    /// Set by the daemon once supervisors run; cleared at shutdown.
    started: AtomicBool,
    /// The health reporter's last verdict: the fleet makes progress.
    progressing: AtomicBool,
    /// Supervisors that panicked since start (never un-counted: their
    /// instances stay unwatched until a restart).
    dead_supervisors: AtomicUsize,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            started: AtomicBool::new(false),
            progressing: AtomicBool::new(true),
            dead_supervisors: AtomicUsize::new(0),
        }
    }
}

impl Readiness {
    pub fn set_progressing(&self, progressing: bool) {
        self.inner.progressing.store(progressing, Ordering::Release);
    }

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
        self.inner.started.load(Ordering::Acquire)
            && self.inner.progressing.load(Ordering::Acquire)
            && self.dead_supervisors() == 0
    }
}
