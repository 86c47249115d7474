//! What the rest of relinkd may see of the running supervisors: each one's
//! status for the admin API and `systemctl status`, its progress deadline
//! for the watchdog, and whether its task still runs. Each instance has its
//! own (uncontended) lock: no fleet-wide lock is taken per poll, and the
//! fleet-wide map is locked only to add or remove an instance, never across
//! an await, so a reload never holds up a reader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::policy::{Phase, Policy};
use crate::clock::{self, rfc3339};
use crate::delivery::{Observer, SendError};
use crate::greenapi::InstanceState;

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
    /// Per channel, its last failed attempt for this instance; a channel is
    /// dropped from here once it delivers again.
    #[serde(default)]
    pub delivery_errors: BTreeMap<String, DeliveryError>,
}

/// A channel's last failed attempt for an instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryError {
    /// The reason alone, for machines: `server`, `transport`, ... (the
    /// `reason` label of relinkd_deliveries_total).
    #[serde(default)]
    pub reason: String,
    /// The reason and the detail, e.g. `server (HTTP 503)`.
    pub error: String,
    /// The attempt's number within its notification.
    pub attempt: u32,
    /// When (RFC 3339).
    pub at: String,
}

/// One supervisor's view; written by the supervisor, read by anyone.
pub struct InstanceView {
    /// Written by the supervisor after each step, read by the admin API.
    published: Mutex<Published>,
    /// Milliseconds on the monotonic clock by which the supervisor must have
    /// moved on; past it, the supervisor is wedged.
    due_by_ms: AtomicU64,
    /// Set when the supervisor's task ends (it should only end at shutdown
    /// or when its instance leaves the config).
    ended: AtomicBool,
}

/// What a supervisor last published, kept as the policy has it: every poll
/// publishes, while a status is read only now and then, so the formatting
/// into an [`InstanceStatus`] happens on reading.
struct Published {
    id: u64,
    name: String,
    state: Option<InstanceState>,
    /// When `state` was first seen (wall clock, as it was then).
    state_since: Option<SystemTime>,
    phase: Phase,
    codes_per_episode: u32,
    failures: u32,
    next_at: Instant,
    last_error: Option<String>,
    delivery_errors: BTreeMap<String, DeliveryError>,
}

impl Published {
    /// `watching`, `linking`, `paused`, `waiting` or `restricted`.
    fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Watching => "watching",
            Phase::Alerted(_) => "restricted",
            Phase::Linking { .. } => "linking",
            Phase::Paused { .. } => "paused",
            Phase::Waiting { .. } => "waiting",
        }
    }

    fn status(&self, now: Instant) -> InstanceStatus {
        let wall = |at: Instant| rfc3339(clock::wall(at));
        let mut status = InstanceStatus {
            id: self.id,
            name: self.name.clone(),
            state: self.state.as_ref().map(|s| s.as_str().to_owned()),
            state_since: self.state_since.map(rfc3339),
            phase: self.phase_name().to_owned(),
            episode_started: None,
            codes_used: 0,
            codes_per_episode: self.codes_per_episode,
            code_expires_at: None,
            paused_until: None,
            next_action: String::new(),
            next_at: wall(self.next_at),
            last_error: self.last_error.clone(),
            consecutive_failures: self.failures,
            delivery_errors: self.delivery_errors.clone(),
        };
        status.next_action = match &self.phase {
            Phase::Watching | Phase::Alerted(_) => "poll".to_owned(),
            Phase::Linking {
                started,
                codes_used,
                code,
            } => {
                status.episode_started = Some(wall(*started));
                status.codes_used = *codes_used;
                status.code_expires_at = code
                    .filter(|c| c.expires_at > now)
                    .map(|c| wall(c.expires_at));
                match status.code_expires_at {
                    Some(_) => "poll (code outstanding)".to_owned(),
                    None => "poll, then request a code".to_owned(),
                }
            }
            Phase::Paused {
                started,
                until,
                codes_used,
            } => {
                status.episode_started = Some(wall(*started));
                status.codes_used = *codes_used;
                status.paused_until = Some(wall(*until));
                "poll (codes paused)".to_owned()
            }
            Phase::Waiting { started, opens } => {
                status.episode_started = Some(wall(*started));
                status.paused_until = opens.map(wall);
                match &status.paused_until {
                    Some(until) => format!("waiting for window until {until}"),
                    None => "waiting for window (none opens)".to_owned(),
                }
            }
        };
        if self.failures > 0 {
            status.next_action = "poll (backing off after errors)".to_owned();
        }
        status
    }
}

/// Phase counts over the fleet (for `STATUS=`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub instances: usize,
    pub linked: usize,
    pub linking: usize,
    pub paused: usize,
    pub restricted: usize,
    pub other: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} instances: {} linked, {} linking, {} paused",
            self.instances, self.linked, self.linking, self.paused
        )?;
        if self.restricted > 0 {
            write!(f, ", {} restricted", self.restricted)?;
        }
        if self.other > 0 {
            write!(f, ", {} other", self.other)?;
        }
        Ok(())
    }
}

/// The fleet as readers see it (the admin API, the watchdog): read-only,
/// cheap to clone. Only the fleet adds and removes instances.
#[derive(Clone, Default)]
pub struct FleetView {
    /// Added to and removed from by the fleet only, never across an await.
    instances: Arc<RwLock<BTreeMap<u64, Arc<InstanceView>>>>,
}

impl FleetView {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<InstanceView>>> {
        self.instances.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert(&self, view: Arc<InstanceView>) {
        let id = view.lock().id;
        self.instances
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, view);
    }

    pub(super) fn remove(&self, id: u64) {
        self.instances
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.read().contains_key(&id)
    }

    /// The instance `which` names: its id, else its configured name.
    pub fn find(&self, which: &str) -> Option<InstanceStatus> {
        let instances = self.read();
        if let Some(view) = which.parse().ok().and_then(|id| instances.get(&id)) {
            return Some(view.status());
        }
        instances
            .values()
            .find(|v| v.lock().name == which)
            .map(|v| v.status())
    }

    /// Every instance's status, ordered by id.
    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.read().values().map(|v| v.status()).collect()
    }

    /// The fleet's counts, read in place (for `STATUS=` at start and
    /// reload, and the admin API; the health loop takes them from
    /// [`FleetView::health`]).
    pub fn summary(&self) -> Summary {
        self.health(Instant::now()).summary
    }

    /// The counts and the supervisors not making progress, in one walk:
    /// the instances' views are scattered over the heap, and each walk
    /// of 50,000 is a cache miss per instance.
    pub fn health(&self, now: Instant) -> Health {
        let instances = self.read();
        let mut health = Health {
            summary: Summary {
                instances: instances.len(),
                ..Summary::default()
            },
            ..Health::default()
        };
        for (id, view) in instances.iter() {
            let ended = view.has_ended();
            if ended {
                health.stopped += 1;
            }
            if ended || view.is_overdue(now) {
                health.overdue += 1;
                health.first_overdue.get_or_insert(*id);
            }
            let published = view.lock();
            let summary = &mut health.summary;
            match (&published.phase, &published.state) {
                (Phase::Linking { .. }, _) => summary.linking += 1,
                (Phase::Paused { .. } | Phase::Waiting { .. }, _) => summary.paused += 1,
                (Phase::Alerted(_), _) => summary.restricted += 1,
                (_, Some(InstanceState::Authorized)) => summary.linked += 1,
                _ => summary.other += 1,
            }
        }
        health
    }
}

/// One look at the fleet for the health loop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub summary: Summary,
    /// Supervisors past their progress deadline or ended.
    pub overdue: usize,
    /// The lowest such id, to name one in the log.
    pub first_overdue: Option<u64>,
    /// Supervisors whose task has ended (they never should).
    pub stopped: usize,
}

fn mono_ms(at: Instant) -> u64 {
    let origin = *MONO_ORIGIN.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX)
}

static MONO_ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl InstanceView {
    pub fn new(id: u64, name: &str) -> Self {
        Self {
            published: Mutex::new(Published {
                id,
                name: name.to_owned(),
                state: None,
                state_since: None,
                phase: Phase::Watching,
                codes_per_episode: 0,
                failures: 0,
                next_at: Instant::now(),
                last_error: None,
                delivery_errors: BTreeMap::new(),
            }),
            due_by_ms: AtomicU64::new(u64::MAX),
            ended: AtomicBool::new(false),
        }
    }

    /// The supervisor's task ended.
    pub fn set_ended(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> InstanceStatus {
        self.lock().status(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut p = self.lock();
        if p.name != name {
            p.name = name.to_owned();
        }
        if policy.observed() != p.state.as_ref() {
            p.state = policy.observed().cloned();
            p.state_since = p.state.as_ref().map(|_| clock::now());
        }
        p.phase.clone_from(policy.phase());
        p.codes_per_episode = policy.settings().codes_per_episode;
        p.failures = policy.failures();
        p.next_at = policy.next_at();
        if p.failures == 0 {
            p.last_error = None;
        }
        if last_error.is_some() {
            p.last_error = last_error;
        }
    }
}

/// Deliveries for this instance report here as they happen.
impl Observer for InstanceView {
    fn attempt_failed(
        &self,
        channel: &str,
        attempt: u32,
        error: &SendError,
        _retry_in: Option<Duration>,
    ) {
        let failed = DeliveryError {
            reason: error.reason.as_str().to_owned(),
            error: error.to_string(),
            attempt,
            at: rfc3339(clock::now()),
        };
        self.lock()
            .delivery_errors
            .insert(channel.to_owned(), failed);
    }

    fn delivered(&self, channel: &str, _attempts: u32) {
        self.lock().delivery_errors.remove(channel);
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

    #[tokio::test(start_paused = true)]
    async fn the_fleet_view_counts_phases_and_reports_ended_supervisors() {
        let fleet = FleetView::default();
        let (a, b) = (
            Arc::new(InstanceView::new(2, "b")),
            Arc::new(InstanceView::new(1, "a")),
        );
        fleet.insert(a.clone());
        fleet.insert(b.clone());
        let ids: Vec<u64> = fleet.statuses().iter().map(|s| s.id).collect();
        assert_eq!(ids, [1, 2], "ordered by id");
        assert_eq!(
            fleet.summary().to_string(),
            "2 instances: 0 linked, 0 linking, 0 paused, 2 other"
        );
        assert_eq!(fleet.health(Instant::now()).stopped, 0);
        a.set_ended();
        let health = fleet.health(Instant::now());
        assert_eq!((health.stopped, health.overdue), (1, 1));
        assert_eq!(health.first_overdue, Some(2));
        fleet.remove(2);
        assert!(!fleet.contains(2) && fleet.contains(1));
    }
}
