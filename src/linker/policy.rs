//! The linking policy of one instance as a pure state machine: inputs and the
//! current time go in, actions come out. No I/O, no clock, no global RNG (the
//! jitter comes from rand's small generator seeded by the instance id), so
//! every rule below is unit-tested exactly.
//!
//! - Poll every `poll_interval`, every `linking_poll_interval` while a code is
//!   outstanding; never twice within the vendor's one call a second.
//! - `notAuthorized` starts an episode: request a code, deliver it, and only
//!   when it expires request the next; at most `codes_per_episode` in a row,
//!   then one `Paused` notice and a pause of `cooldown`.
//! - Poll and code errors back off exponentially with jitter, up to a cap.
//! - `authorized` ends an episode with one `Linked` notice.
//! - `blocked`/`suspended`/`yellowCard`: one `Alert` notice, no codes.
//!   `starting`, `sleepMode` and unknown states: wait, no codes.
//! - Opt-in (`reboot_stuck_after`): an instance `starting` that long gets
//!   one `reboot`, and one notice once the vendor confirms it; at most one
//!   reboot per `cooldown` (restarts too: the last one is persisted). A
//!   refused reboot sends nothing, does not start the cooldown and is
//!   retried at the error backoff; one that may have happened all the same
//!   sends nothing and starts the cooldown. Never an instance in any other
//!   state.
//! - Codes only inside the instance's linking windows: outside them, one
//!   `WaitingForWindow` notice and no code until a window opens (whether
//!   one is open is computed from the calendar at each decision, never
//!   remembered); then one `Resumed` notice and a fresh budget. A code
//!   already delivered when a window closes is left to expire. A relink
//!   allows one code outside the windows.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;

use crate::calendar::Opening;
use crate::clock;
use crate::config::InstanceSettings;
use crate::greenapi::{InstanceState, VENDOR_CALL_INTERVAL};

/// Jitter applied to every backoff, as a fraction of the delay.
const JITTER: f64 = 0.1;

/// How far below its interval a poll may come, as a fraction of it. A poll
/// is never scheduled later than its interval (it then waits for the wake
/// grid, at most 50 ms more), so `poll_interval` bounds how stale
/// a state can be (and how long an unlinked instance waits for its code);
/// the spread keeps instances from polling in step. Small, because gaps
/// shorter on average than the interval crowd a fleet's second polls onto
/// the end of its first round (5 % gave the busiest second 1.8 times the
/// mean; 0.5 %, 1.15).
const POLL_EARLY: f64 = 0.005;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The time returned by [`Policy::next_at`] has come.
    Due,
    Polled(InstanceState),
    PollFailed {
        retry_after: Option<Duration>,
    },
    CodeIssued,
    /// `status:false`: the vendor gave no code this time.
    CodeNotIssued,
    CodeFailed {
        retry_after: Option<Duration>,
        /// The request may have reached the vendor (a timeout, a 5xx, an
        /// unreadable answer): WhatsApp may have made a code, so it counts
        /// against the budget.
        may_have_issued: bool,
    },
    /// Outcome of delivering the code that expires at `expires_at`: did any
    /// channel take it? (A late report about an older code is ignored.)
    CodeDelivered {
        expires_at: Instant,
        delivered: bool,
    },
    /// The vendor confirmed the reboot asked for by [`Action::Reboot`].
    Rebooted,
    /// The reboot failed. `may_have_rebooted`: the vendor may have acted on
    /// it (a timeout, a server error, an unreadable answer), so it counts
    /// as one for the cooldown; otherwise it was refused and nothing was
    /// rebooted.
    RebootFailed {
        retry_after: Option<Duration>,
        may_have_rebooted: bool,
    },
    /// An operator asked for codes now (ends a pause; allows one code
    /// outside the linking windows).
    RelinkRequested,
    /// A forwarded notification says the state changed: poll now (a hint;
    /// the poll decides). A backoff after errors stands.
    StateHinted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    PollState,
    RequestCode,
    /// Deliver the code just received; it is valid until `expires_at`.
    DeliverCode {
        expires_at: Instant,
    },
    /// Reboot the instance (it has been `starting` too long); answered by
    /// [`Input::Rebooted`] or [`Input::RebootFailed`].
    Reboot,
    Notify(Notice),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Linked,
    /// The budget is spent (reason `budget`).
    Paused {
        until: Instant,
        codes: u32,
    },
    /// Outside every linking window (reason `window`); `opens`: when the
    /// next one opens (`None`: none within the calendar's horizon).
    WaitingForWindow {
        opens: Option<Instant>,
    },
    /// A window opened: codes are requested again.
    Resumed,
    /// The instance was `starting` for `stuck_for`: it was rebooted.
    Rebooting {
        stuck_for: Duration,
    },
    Alert {
        state: InstanceState,
    },
}

/// What a policy remembers about reboots; the last one is persisted across
/// restarts (an instance is rebooted at most once per `cooldown`, whoever
/// restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reboots {
    /// Since when the polls have found the instance `starting`.
    pub starting_since: Option<Instant>,
    /// The last reboot the vendor confirmed.
    pub last_reboot: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub expires_at: Instant,
    /// `None` while delivery is under way.
    pub delivered: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No episode: the instance is linked or has not been seen unlinked.
    Watching,
    /// An episode: codes are being requested and delivered.
    Linking {
        started: Instant,
        codes_used: u32,
        code: Option<Code>,
    },
    /// The budget is spent; no codes until `until`.
    Paused {
        started: Instant,
        until: Instant,
        codes_used: u32,
    },
    /// Unlinked outside every linking window: no codes until one opens
    /// (`opens`, as computed when last asked; the calendar decides).
    Waiting {
        started: Instant,
        opens: Option<Instant>,
    },
    /// A restricted state was reported to the admins; no codes.
    Alerted(InstanceState),
}

#[derive(Debug, Clone)]
pub struct Policy {
    settings: Arc<InstanceSettings>,
    phase: Phase,
    observed: Option<InstanceState>,
    /// A restricted state reported during an episode (told once).
    alerted: Option<InstanceState>,
    /// Consecutive failed polls.
    poll_failures: u32,
    /// Consecutive code requests without a code; kept apart from polls, which
    /// succeed in between, so the code backoff keeps growing.
    code_failures: u32,
    /// A relink asked for a code now: the next code request ignores the
    /// linking windows (then this is cleared).
    window_override: bool,
    /// Since when the polls have found the instance `starting`, and the
    /// last confirmed reboot (at most one per `cooldown`).
    reboots: Reboots,
    /// Consecutive failed or refused reboots.
    reboot_failures: u32,
    next_at: Instant,
    /// Jitter, seeded by the instance id: reproducible per instance, spread
    /// across the fleet.
    rng: SmallRng,
}

impl Policy {
    /// A policy whose first poll is at `first_poll` (the fleet spreads first
    /// polls so a large fleet does not start with a burst).
    pub fn new(settings: impl Into<Arc<InstanceSettings>>, seed: u64, first_poll: Instant) -> Self {
        Self {
            settings: settings.into(),
            phase: Phase::Watching,
            observed: None,
            alerted: None,
            poll_failures: 0,
            code_failures: 0,
            window_override: false,
            reboots: Reboots::default(),
            reboot_failures: 0,
            next_at: first_poll,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A policy resuming a persisted episode at `now`. A code known to be
    /// undelivered is forgotten (nobody can enter it; its budget stays
    /// spent); any other code is waited out until it expires, as WhatsApp
    /// keeps one code. A saved file is outside input: no code is taken to
    /// be valid longer than `code_ttl` from now, no pause to last longer
    /// than `cooldown` (or, if that ends outside the windows, until the
    /// next one opens), and no episode to have started in the future.
    pub fn restore(
        settings: impl Into<Arc<InstanceSettings>>,
        seed: u64,
        now: Instant,
        first_poll: Instant,
        saved: Phase,
    ) -> Self {
        let settings = settings.into();
        let started_by = |started: Instant| started.min(now);
        let phase = match saved {
            Phase::Linking {
                started,
                codes_used,
                code,
            } => Phase::Linking {
                started: started_by(started),
                codes_used,
                code: code.filter(|c| c.delivered != Some(false)).map(|c| Code {
                    expires_at: c.expires_at.min(now + settings.code_ttl),
                    ..c
                }),
            },
            Phase::Paused {
                started,
                until,
                codes_used,
            } => Phase::Paused {
                started: started_by(started),
                until,
                codes_used,
            },
            other => other,
        };
        let mut policy = Self::new(settings, seed, first_poll);
        policy.phase = phase;
        // At the latest as a pause starting now would end.
        let latest = policy.pause_end(now);
        if let Phase::Paused { until, .. } = &mut policy.phase {
            *until = (*until).min(latest);
        }
        // When the window opens is computed now, not taken from the file.
        if let Phase::Waiting { started, .. } = policy.phase {
            policy.phase = Phase::Waiting {
                started: started_by(started),
                opens: policy.closed_until(now).flatten(),
            };
        }
        policy
    }

    /// The last confirmed reboot a restart resumes with, from a saved file:
    /// clamped to `now` (a time in the future would hold the next reboot
    /// back for longer than any cooldown). Since when the instance has been
    /// `starting` is not kept: nobody watched it while relinkd was stopped,
    /// so the wait starts again, and a restart can delay a reboot but never
    /// hasten one.
    pub fn with_last_reboot(mut self, saved: Option<Instant>, now: Instant) -> Self {
        self.reboots.last_reboot = saved.map(|at| at.min(now));
        self
    }

    /// The reboot times (only the last reboot is persisted).
    pub fn reboots(&self) -> Reboots {
        self.reboots
    }

    /// What survives a restart (the episode, its budget, the outstanding
    /// code's expiry and delivery, a pause, a reported restriction; never
    /// the code itself); `None` when there is nothing to keep.
    pub fn persisted(&self) -> Option<Phase> {
        match self.phase {
            Phase::Watching => None,
            ref other => Some(other.clone()),
        }
    }

    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn observed(&self) -> Option<&InstanceState> {
        self.observed.as_ref()
    }

    /// Consecutive failures (polls or code requests) behind the current backoff.
    /// Consecutive failed state polls.
    pub fn poll_failures(&self) -> u32 {
        self.poll_failures
    }

    pub fn failures(&self) -> u32 {
        self.poll_failures
            .max(self.code_failures)
            .max(self.reboot_failures)
    }

    pub fn settings(&self) -> &InstanceSettings {
        &self.settings
    }

    /// New settings from a reload; the episode, code and pause are kept,
    /// and so is a backoff (and the vendor's `Retry-After` within it): a
    /// reload must not make relinkd call a failing vendor sooner.
    pub fn update_settings(&mut self, settings: impl Into<Arc<InstanceSettings>>, now: Instant) {
        self.settings = settings.into();
        if self.settings.reboot_stuck_after.is_none() {
            // No reboot will be retried: its failures no longer hold polls back.
            self.reboot_failures = 0;
            self.reboots.starting_since = None;
        }
        // New windows: when the wait ends is asked of the new calendar.
        if let Phase::Waiting { started, .. } = self.phase {
            let opens = self.closed_until(now).flatten();
            self.phase = Phase::Waiting { started, opens };
            if let Some(opens) = opens {
                self.next_at = self.next_at.min(opens.max(now));
            }
        }
        if self.failures() > 0 {
            return;
        }
        // A shorter interval takes effect now rather than after the old one.
        self.next_at = self.next_at.min(now + self.interval());
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::Due => self.on_due(now),
            Input::Polled(state) => self.on_polled(state, now),
            Input::PollFailed { retry_after } => {
                self.poll_failures = self.poll_failures.saturating_add(1);
                self.back_off(now, self.poll_failures, retry_after);
                Vec::new()
            }
            Input::CodeFailed {
                retry_after,
                may_have_issued,
            } => {
                if may_have_issued {
                    self.spend_budget();
                }
                self.code_failures = self.code_failures.saturating_add(1);
                self.back_off(now, self.code_failures, retry_after);
                Vec::new()
            }
            Input::CodeNotIssued => {
                // `status:false` says no code was received, but not that
                // none was made: count it, so refusals cannot loop forever.
                self.spend_budget();
                self.code_failures = self.code_failures.saturating_add(1);
                self.back_off(now, self.code_failures, None);
                Vec::new()
            }
            Input::CodeIssued => self.on_code_issued(now),
            Input::CodeDelivered {
                expires_at,
                delivered,
            } => {
                if let Phase::Linking {
                    code: Some(code), ..
                } = &mut self.phase
                    && code.expires_at == expires_at
                {
                    code.delivered = Some(delivered);
                }
                Vec::new()
            }
            Input::Rebooted => self.on_rebooted(now),
            Input::RebootFailed {
                may_have_rebooted: true,
                ..
            } => {
                // An instance that rebooted sits in `starting` for minutes:
                // asking again now could reboot it again and again. The
                // cooldown starts as for a reboot; nothing is announced.
                self.start_reboot_cooldown(now);
                Vec::new()
            }
            Input::RebootFailed { retry_after, .. } => {
                // Refused: nothing was rebooted, so no cooldown; the next
                // poll that still finds the instance `starting` tries again,
                // after the backoff.
                self.reboot_failures = self.reboot_failures.saturating_add(1);
                self.back_off(now, self.reboot_failures, retry_after);
                Vec::new()
            }
            Input::RelinkRequested => self.on_relink(now),
            Input::StateHinted => {
                if self.failures() == 0 {
                    self.next_at = self.next_at.min(now);
                }
                Vec::new()
            }
        }
    }

    fn spend_budget(&mut self) {
        if let Phase::Linking { codes_used, .. } = &mut self.phase {
            *codes_used = codes_used.saturating_add(1);
        }
    }

    fn on_due(&mut self, now: Instant) -> Vec<Action> {
        if now < self.next_at {
            return Vec::new();
        }
        if let Phase::Paused { started, until, .. } = self.phase
            && now >= until
        {
            // The cooldown is over: a fresh budget within the same episode.
            self.phase = Phase::Linking {
                started,
                codes_used: 0,
                code: None,
            };
        }
        // Until the answer arrives nothing else is due; the answer schedules.
        self.next_at = now + self.settings.backoff_max.max(self.interval());
        vec![Action::PollState]
    }

    fn on_polled(&mut self, state: InstanceState, now: Instant) -> Vec<Action> {
        self.poll_failures = 0;
        if state == InstanceState::NotAuthorized {
            self.alerted = None;
        }
        self.observed = Some(state.clone());
        let mut actions = Vec::new();
        if self
            .reboots
            .last_reboot
            .is_some_and(|at| now.saturating_duration_since(at) >= self.settings.cooldown)
        {
            // Over a cooldown ago: nothing to hold back, nothing to keep.
            self.reboots.last_reboot = None;
        }
        if state == InstanceState::Starting {
            actions.extend(self.reboot_if_stuck(now));
        } else {
            self.reboots.starting_since = None;
            self.reboot_failures = 0;
        }
        match &state {
            InstanceState::Authorized => {
                // Only an episode ends "linked again"; leaving a restricted
                // state without one is not a relink.
                if self.episode_started().is_some() {
                    actions.push(Action::Notify(Notice::Linked));
                }
                self.phase = Phase::Watching;
                self.alerted = None;
                self.code_failures = 0;
                self.window_override = false;
            }
            InstanceState::NotAuthorized => match &mut self.phase {
                Phase::Watching | Phase::Alerted(_) => {
                    self.phase = Phase::Linking {
                        started: now,
                        codes_used: 0,
                        code: None,
                    };
                    return self.request_code_or_pause(now);
                }
                Phase::Linking { code, .. } => match code {
                    Some(c) if now < c.expires_at => {}
                    _ => return self.request_code_or_pause(now),
                },
                Phase::Paused { .. } => {}
                Phase::Waiting { started, .. } => {
                    let started = *started;
                    if self.window_override || self.closed_until(now).is_none() {
                        self.phase = Phase::Linking {
                            started,
                            codes_used: 0,
                            code: None,
                        };
                        let mut actions = vec![Action::Notify(Notice::Resumed)];
                        actions.extend(self.request_code_or_pause(now));
                        return actions;
                    }
                }
            },
            // Told once per restricted state. An episode under way is kept
            // (its code, budget and pause), so a blip cannot reset them.
            restricted if restricted.is_alert() => {
                let told = match &self.phase {
                    Phase::Alerted(s) => s == restricted,
                    _ => self.alerted.as_ref() == Some(restricted),
                };
                if !told {
                    actions.push(Action::Notify(Notice::Alert {
                        state: state.clone(),
                    }));
                }
                match self.phase {
                    Phase::Watching | Phase::Alerted(_) => {
                        self.phase = Phase::Alerted(state.clone());
                        self.window_override = false;
                    }
                    Phase::Linking { .. } | Phase::Paused { .. } | Phase::Waiting { .. } => {
                        self.alerted = Some(state.clone());
                    }
                }
            }
            // starting, sleepMode, unknown: wait; an outstanding code stays
            // valid until it expires, and no new one is requested.
            _ => {}
        }
        self.schedule_poll(now);
        actions
    }

    fn request_code_or_pause(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Linking {
            started,
            codes_used,
            ..
        } = self.phase
        else {
            return Vec::new();
        };
        if codes_used < self.settings.codes_per_episode {
            let overridden = std::mem::take(&mut self.window_override);
            if !overridden && let Some(opens) = self.closed_until(now) {
                self.phase = Phase::Waiting { started, opens };
                self.schedule_poll(now);
                return vec![Action::Notify(Notice::WaitingForWindow { opens })];
            }
            // The code request is the next call; its answer schedules the poll.
            self.next_at = now + self.settings.backoff_max.max(self.interval());
            return vec![Action::RequestCode];
        }
        let until = self.pause_end(now);
        self.phase = Phase::Paused {
            started,
            until,
            codes_used,
        };
        self.schedule_poll(now);
        vec![Action::Notify(Notice::Paused {
            until,
            codes: codes_used,
        })]
    }

    fn on_code_issued(&mut self, now: Instant) -> Vec<Action> {
        self.code_failures = 0;
        let Phase::Linking {
            codes_used, code, ..
        } = &mut self.phase
        else {
            // The episode ended while the request was in flight: the code is
            // not needed (and is not delivered).
            self.schedule_poll(now);
            return Vec::new();
        };
        *codes_used += 1;
        let expires_at = now + self.settings.code_ttl;
        *code = Some(Code {
            expires_at,
            delivered: None,
        });
        self.schedule_poll(now);
        vec![Action::DeliverCode { expires_at }]
    }

    fn on_relink(&mut self, now: Instant) -> Vec<Action> {
        self.window_override = true;
        match self.phase {
            Phase::Paused { started, .. } | Phase::Waiting { started, .. } => {
                self.phase = Phase::Linking {
                    started,
                    codes_used: 0,
                    code: None,
                };
            }
            // Never a new code while one is valid: the poll decides.
            Phase::Linking { .. } | Phase::Watching | Phase::Alerted(_) => {}
        }
        self.poll_failures = 0;
        self.code_failures = 0;
        self.next_at = now;
        Vec::new()
    }

    /// A reboot, if the instance has been `starting` for
    /// `reboot_stuck_after` and none was confirmed (or may have happened)
    /// within `cooldown`.
    fn reboot_if_stuck(&mut self, now: Instant) -> Vec<Action> {
        let Some(after) = self.settings.reboot_stuck_after else {
            return Vec::new();
        };
        let since = *self.reboots.starting_since.get_or_insert(now);
        let stuck_for = now.saturating_duration_since(since);
        let recently = self
            .reboots
            .last_reboot
            .is_some_and(|at| now.saturating_duration_since(at) < self.settings.cooldown);
        if stuck_for < after || recently {
            return Vec::new();
        }
        vec![Action::Reboot]
    }

    /// The vendor confirmed the reboot: the cooldown starts, and the admins
    /// are told (only now, so a failed reboot is never announced).
    fn on_rebooted(&mut self, now: Instant) -> Vec<Action> {
        let stuck_for = self
            .reboots
            .starting_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        self.start_reboot_cooldown(now);
        vec![Action::Notify(Notice::Rebooting { stuck_for })]
    }

    /// A reboot happened (or may have) at `now`: no reboot for `cooldown`,
    /// and the instance's own `starting` after it is a new wait.
    fn start_reboot_cooldown(&mut self, now: Instant) {
        self.reboot_failures = 0;
        self.reboots = Reboots {
            starting_since: None,
            last_reboot: Some(now),
        };
    }

    /// When the episode (the instance unlinked) started; `None` outside one.
    pub fn episode_started(&self) -> Option<Instant> {
        match self.phase {
            Phase::Linking { started, .. }
            | Phase::Paused { started, .. }
            | Phase::Waiting { started, .. } => Some(started),
            Phase::Watching | Phase::Alerted(_) => None,
        }
    }

    /// When a pause of the budget starting at `now` ends: the cooldown's
    /// end, or if no window is open then, the next one's start (so the
    /// `paused` notice names the time codes really resume, and no second
    /// notice, for the window, follows).
    fn pause_end(&self, now: Instant) -> Instant {
        let cooled = now + self.settings.cooldown;
        // No window ever: the pause ends with the cooldown.
        self.closed_until(cooled).flatten().unwrap_or(cooled)
    }

    /// `None` if a linking window is open at `now` (or any other instant);
    /// else when the next one opens (`Some(None)`: none will within the
    /// calendar's horizon).
    fn closed_until(&self, now: Instant) -> Option<Option<Instant>> {
        let wall_now = clock::wall(now);
        match self.settings.linking_windows.at(wall_now) {
            Opening::Open => None,
            Opening::OpensAt(at) => {
                Some(Some(now + at.duration_since(wall_now).unwrap_or_default()))
            }
            Opening::Never => Some(None),
        }
    }

    /// The poll interval of the current phase.
    fn interval(&self) -> Duration {
        let interval = match self.phase {
            Phase::Linking { .. } => self.settings.linking_poll_interval,
            _ => self.settings.poll_interval,
        };
        interval.max(VENDOR_CALL_INTERVAL)
    }

    fn schedule_poll(&mut self, now: Instant) {
        let interval = self.interval();
        let mut next = now + at_most(&mut self.rng, interval).max(VENDOR_CALL_INTERVAL);
        // Poll right when the code expires, so the next code is not late.
        if let Phase::Linking {
            code: Some(code), ..
        } = self.phase
            && code.expires_at > now
        {
            next = next.min(code.expires_at.max(now + VENDOR_CALL_INTERVAL));
        }
        if let Phase::Paused { until, .. }
        | Phase::Waiting {
            opens: Some(until), ..
        } = self.phase
        {
            next = next.min(until.max(now + VENDOR_CALL_INTERVAL));
        }
        self.next_at = next;
    }

    /// Exponential backoff from the phase's interval, capped at
    /// `max(backoff_max, interval)`: errors never make relinkd poll faster.
    fn back_off(&mut self, now: Instant, failures: u32, retry_after: Option<Duration>) {
        let base = self.interval();
        let cap = self.settings.backoff_max.max(base);
        let factor = 2u32.saturating_pow(failures.min(20));
        let delay = base.saturating_mul(factor).min(cap);
        let mut delay = jitter(&mut self.rng, delay).max(VENDOR_CALL_INTERVAL);
        if let Some(retry_after) = retry_after {
            delay = delay.max(retry_after);
        }
        self.next_at = now + delay;
    }
}

/// `d` scaled by a factor drawn uniformly from [1 - POLL_EARLY, 1].
fn at_most(rng: &mut SmallRng, d: Duration) -> Duration {
    d.mul_f64(rng.random_range(1.0 - POLL_EARLY..=1.0))
}

/// `d` scaled by a factor drawn uniformly from [1 - JITTER, 1 + JITTER].
fn jitter(rng: &mut SmallRng, d: Duration) -> Duration {
    d.mul_f64(rng.random_range(1.0 - JITTER..=1.0 + JITTER))
}

#[cfg(test)]
#[path = "policy_tests/mod.rs"]
mod tests;
