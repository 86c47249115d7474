//! Vendor calls per wall-clock second, for the benchmark's poll spread:
//! a ring of the last hour's seconds, lock-free.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds kept.
const SLOTS: usize = 3600;

pub(crate) struct CallsPerSecond {
    /// Per slot: the Unix second it counts (so a stale slot is told apart).
    seconds: Vec<AtomicU64>,
    counts: Vec<AtomicU64>,
    total: AtomicU64,
}

impl Default for CallsPerSecond {
    fn default() -> Self {
        Self {
            seconds: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            counts: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }
}

fn unix_second(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl CallsPerSecond {
    pub(crate) fn count(&self) {
        let second = unix_second(SystemTime::now());
        let slot = (second % SLOTS as u64) as usize;
        // A new second in this slot resets it; two threads racing on the
        // reset lose at most a count, which a spread figure tolerates.
        if self.seconds[slot].swap(second, Ordering::Relaxed) != second {
            self.counts[slot].store(0, Ordering::Relaxed);
        }
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// `(unix second, calls)` for the seconds from `from` to `to` (at most
    /// an hour back), oldest first; seconds without calls are 0.
    pub(crate) fn between(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let from = from.max(to.saturating_sub(SLOTS as u64 - 1));
        (from..=to)
            .map(|second| {
                let slot = (second % SLOTS as u64) as usize;
                let counted = self.seconds[slot].load(Ordering::Relaxed) == second;
                let calls = if counted {
                    self.counts[slot].load(Ordering::Relaxed)
                } else {
                    0
                };
                (second, calls)
            })
            .collect()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}
