//! How a channel is doing across every notification it carries: how many
//! attempts have failed since it last delivered (to say when it recovers),
//! and how many failure lines it has logged lately (so an outage logs a few
//! lines a minute per channel, with a count of the rest, rather than one
//! per attempt, or per given-up notification, of every instance).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Lines of one kind a channel logs per window; the rest are counted.
const LINES_PER_WINDOW: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);

/// Shared by every delivery on one channel; kept across a reload.
#[derive(Clone, Default)]
pub struct ChannelHealth {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Failed attempts since the channel last delivered.
    failed_since_success: u64,
    /// "delivery attempt failed" lines.
    attempts: Limit,
    /// "notification not delivered" lines: a budget of their own, so a
    /// notification's end is logged even while its attempts are held back.
    give_ups: Limit,
}

/// A few lines of one kind per window.
#[derive(Default)]
struct Limit {
    /// Start of the current window, and lines logged and held back in it.
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl Limit {
    fn decide(&mut self, now: Instant) -> LogDecision {
        let new_window = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if new_window {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < LINES_PER_WINDOW {
            self.logged += 1;
            LogDecision::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            LogDecision::Suppress
        }
    }
}

/// Whether to log a failure line.
#[derive(Debug, PartialEq, Eq)]
pub enum LogDecision {
    /// Log it, and say how many lines were held back before it.
    Log { suppressed: u64 },
    /// Hold it back (counted, and said with the next line logged).
    Suppress,
}

impl ChannelHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An attempt failed at `now`.
    pub fn attempt_failed(&self, now: Instant) -> LogDecision {
        let mut state = self.lock();
        state.failed_since_success = state.failed_since_success.saturating_add(1);
        state.attempts.decide(now)
    }

    /// A notification was given up at `now` (its metrics count it anyway).
    pub fn gave_up(&self, now: Instant) -> LogDecision {
        self.lock().give_ups.decide(now)
    }

    /// The channel delivered; `Some(n)`: it recovers after `n` failed
    /// attempts.
    pub fn delivered(&self) -> Option<u64> {
        let mut state = self.lock();
        let failed = std::mem::take(&mut state.failed_since_success);
        (failed > 0).then_some(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_logs_a_few_lines_a_minute_and_counts_the_rest() {
        let health = ChannelHealth::default();
        let now = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(
                health.attempt_failed(now),
                LogDecision::Log { suppressed: 0 }
            );
        }
        for _ in 0..7 {
            assert_eq!(health.attempt_failed(now), LogDecision::Suppress);
        }
        let later = now + WINDOW;
        assert_eq!(
            health.attempt_failed(later),
            LogDecision::Log { suppressed: 7 },
            "the next window's first line says what was held back"
        );
        assert_eq!(health.delivered(), Some(u64::from(LINES_PER_WINDOW) + 8));
        assert_eq!(health.delivered(), None, "recovered once");
    }

    #[tokio::test(start_paused = true)]
    async fn given_up_notifications_have_a_budget_of_their_own() {
        let health = ChannelHealth::default();
        let now = Instant::now();
        for _ in 0..LINES_PER_WINDOW + 3 {
            let _ = health.attempt_failed(now);
        }
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(health.gave_up(now), LogDecision::Log { suppressed: 0 });
        }
        for _ in 0..4 {
            assert_eq!(health.gave_up(now), LogDecision::Suppress);
        }
        assert_eq!(
            health.gave_up(now + WINDOW),
            LogDecision::Log { suppressed: 4 }
        );
        assert_eq!(
            health.delivered(),
            Some(u64::from(LINES_PER_WINDOW) + 3),
            "give-ups are not attempts"
        );
    }
}
