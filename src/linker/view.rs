//! What the rest of relinkd may see of a running supervisor: its status for
//! the admin API and `systemctl status`, and its progress deadline for the
//! watchdog. Each instance has its own (uncontended) lock: no fleet-wide
//! lock is taken per poll.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::policy::{Phase, Policy};
use crate::clock::{self, rfc3339};

/// One instance as the admin API shows it. Never a code or a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub id: u64,
    pub name: String,
    /// Last polled `stateInstance`; `None` before the first answer.
    pub state: Option<String>,
    /// Since when (RFC 3339) the instance has been in `state`.
    pub state_since: Option<String>,
    /// `watching`, `linking`, `paused` or `restricted`.
    pub phase: String,
    pub episode_started: Option<String>,
    pub codes_used: u32,
    pub codes_per_episode: u32,
    pub code_expires_at: Option<String>,
    pub paused_until: Option<String>,
    /// What the supervisor does next, and when (RFC 3339).
    pub next_action: String,
    pub next_at: String,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

pub struct InstanceView {
    status: Mutex<InstanceStatus>,
    /// Milliseconds on the monotonic clock by which the supervisor must have
    /// moved on; past it, the supervisor is wedged.
    due_by_ms: AtomicU64,
}

fn mono_ms(at: Instant) -> u64 {
    let origin = *MONO_ORIGIN.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX)
}

static MONO_ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl InstanceView {
    pub fn new(id: u64, name: &str) -> Self {
        Self {
            status: Mutex::new(InstanceStatus {
                id,
                name: name.to_owned(),
                state: None,
                state_since: None,
                phase: "watching".into(),
                episode_started: None,
                codes_used: 0,
                codes_per_episode: 0,
                code_expires_at: None,
                paused_until: None,
                next_action: "poll".into(),
                next_at: rfc3339(clock::now()),
                last_error: None,
                consecutive_failures: 0,
            }),
            due_by_ms: AtomicU64::new(u64::MAX),
        }
    }

    pub fn status(&self) -> InstanceStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InstanceStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The supervisor promises to act again by `deadline`.
    pub fn expect_progress_by(&self, deadline: Instant) {
        self.due_by_ms.store(mono_ms(deadline), Ordering::Relaxed);
    }

    /// True if the supervisor missed its promise at `now`.
    pub fn is_overdue(&self, now: Instant) -> bool {
        mono_ms(now) > self.due_by_ms.load(Ordering::Relaxed)
    }

    /// Refreshes the status from the policy after a step.
    pub fn update(&self, name: &str, policy: &Policy, last_error: Option<String>) {
        let mut s = self.lock();
        s.name.clear();
        s.name.push_str(name);
        let observed = policy.observed().map(|st| st.as_str().to_owned());
        if observed != s.state {
            s.state_since = observed.as_ref().map(|_| rfc3339(clock::now()));
            s.state = observed;
        }
        s.codes_per_episode = policy.settings().codes_per_episode;
        s.code_expires_at = None;
        s.paused_until = None;
        s.episode_started = None;
        s.codes_used = 0;
        let (phase, next_action) = match policy.phase() {
            Phase::Watching => ("watching", "poll"),
            Phase::Alerted(_) => ("restricted", "poll"),
            Phase::Linking {
                started,
                codes_used,
                code,
            } => {
                s.episode_started = Some(rfc3339(clock::wall(*started)));
                s.codes_used = *codes_used;
                s.code_expires_at = code
                    .filter(|c| c.expires_at > Instant::now())
                    .map(|c| rfc3339(clock::wall(c.expires_at)));
                let next = if s.code_expires_at.is_some() {
                    "poll (code outstanding)"
                } else {
                    "poll, then request a code"
                };
                ("linking", next)
            }
            Phase::Paused {
                started,
                until,
                codes_used,
            } => {
                s.episode_started = Some(rfc3339(clock::wall(*started)));
                s.codes_used = *codes_used;
                s.paused_until = Some(rfc3339(clock::wall(*until)));
                ("paused", "poll (codes paused)")
            }
        };
        s.phase = phase.to_owned();
        s.next_action = if policy.failures() > 0 {
            "poll (backing off after errors)"
        } else {
            next_action
        }
        .to_owned();
        s.next_at = rfc3339(clock::wall(policy.next_at()));
        s.consecutive_failures = policy.failures();
        if policy.failures() == 0 {
            s.last_error = None;
        }
        if last_error.is_some() {
            s.last_error = last_error;
        }
    }
}

/// Slack given to a supervisor beyond its next wake-up before the watchdog
/// calls it wedged: covers a poll and a code request in flight.
pub fn progress_slack(request_timeout: Duration) -> Duration {
    request_timeout.saturating_mul(2) + Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_supervisor_past_its_promise_is_overdue() {
        let view = InstanceView::new(1, "line");
        let now = Instant::now();
        assert!(!view.is_overdue(now), "no promise yet");
        view.expect_progress_by(now + Duration::from_secs(10));
        assert!(!view.is_overdue(now + Duration::from_secs(10)));
        assert!(view.is_overdue(now + Duration::from_secs(11)));
    }
}
