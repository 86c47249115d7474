//! When things may or must happen: linking windows (when codes may be
//! requested) and cron schedules (when a digest is due).
//!
//! Linking windows: A window is a named time
//! interval ([`TimeInterval`], Alertmanager's model); an instance's windows
//! are a [`Calendar`], open when any of them is (and always, with none).
//!
//! Whether a calendar is open is computed from the definitions at the
//! instant asked about, never from remembered ticks, so a missed timer or a
//! stepped clock cannot leave an instance waiting for an edge that passed.

mod cron;
mod interval;

use std::sync::Arc;
use std::time::SystemTime;

pub use cron::CronSchedule;
pub use interval::{IntervalSpec, TimeInterval};

/// How far ahead a next opening is looked for: a window that opens only
/// in some later year is still found, and a search always ends.
const HORIZON_DAYS: i32 = 8 * 366;

/// Whether codes may be requested at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Open,
    /// Closed until then.
    OpensAt(SystemTime),
    /// Closed, and no window opens within the horizon.
    Never,
}

/// The linking windows of one instance (shared by every instance that
/// names the same ones). Empty: always open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    windows: Arc<[Arc<TimeInterval>]>,
}

impl Calendar {
    pub fn new(windows: Vec<Arc<TimeInterval>>) -> Self {
        Self {
            windows: windows.into(),
        }
    }

    pub fn is_always_open(&self) -> bool {
        self.windows.is_empty()
    }

    /// The windows' names, as configured.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.windows.iter().map(|w| w.name.as_str())
    }

    /// The window that is open at `at` or opens first after it.
    pub fn first_to_open(&self, at: SystemTime) -> Option<&TimeInterval> {
        let ts = jiff::Timestamp::try_from(at).ok()?;
        self.windows
            .iter()
            .filter_map(|w| Some((w.next_open(ts, HORIZON_DAYS)?, w)))
            .min_by_key(|(t, _)| *t)
            .map(|(_, w)| w.as_ref())
    }

    /// Whether the calendar is open at `at`, and if not, when it opens.
    pub fn at(&self, at: SystemTime) -> Opening {
        if self.windows.is_empty() {
            return Opening::Open;
        }
        let Ok(ts) = jiff::Timestamp::try_from(at) else {
            return Opening::Open;
        };
        let next = self
            .windows
            .iter()
            .filter_map(|w| w.next_open(ts, HORIZON_DAYS))
            .min();
        match next {
            Some(t) if t <= ts => Opening::Open,
            Some(t) => SystemTime::try_from(t).map_or(Opening::Never, Opening::OpensAt),
            None => Opening::Never,
        }
    }
}

/// Whether `interval` matches any instant from `from` on, within the
/// horizon (validation refuses an interval that never can).
pub fn ever_matches(interval: &TimeInterval, from: SystemTime) -> bool {
    jiff::Timestamp::try_from(from)
        .map(|ts| interval.next_open(ts, HORIZON_DAYS).is_some())
        .unwrap_or(true)
}

#[cfg(test)]
mod tests;
