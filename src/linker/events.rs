//! What a supervisor observes, one struct per kind of thing: `emit` writes
//! its log line and its metrics together, and returns what the status shows
//! as the instance's last error. Log lines name no instance: they are
//! written inside the supervisor's span, which carries `wa_instance` and
//! `instance` (and which a supervisor makes only for what logs).

use std::time::{Duration, SystemTime};

use super::metrics::{CodeMetrics, CodeOutcome, InstanceMetrics};
use crate::clock;
use crate::greenapi::{ApiError, InstanceState};

/// A `getStateInstance` answer.
pub struct Polled<'a> {
    pub previous: Option<&'a InstanceState>,
    pub state: &'a InstanceState,
    /// Polls that failed in a row before this one.
    pub failed_before: u32,
}

impl Polled<'_> {
    /// Whether `emit` writes a line (a routine poll writes none).
    pub fn logs(&self) -> bool {
        self.failed_before > 0 || self.previous != Some(self.state)
    }

    pub fn emit(&self, metrics: &InstanceMetrics) {
        metrics.poll_succeeded();
        metrics.set_state(self.state);
        if self.failed_before > 0 {
            tracing::info!(failures = self.failed_before, "state polls succeed again");
        }
        if self.previous == Some(self.state) {
            return;
        }
        let from = self.previous.map_or("(none)", InstanceState::as_str);
        let state = self.state;
        match state {
            InstanceState::Other(_) => tracing::warn!(
                from, state = %state,
                "instance reports a state relinkd does not know; no codes will be requested"
            ),
            InstanceState::Authorized if self.previous.is_none() => {
                tracing::debug!(state = %state, "instance state");
            }
            _ => tracing::info!(from, state = %state, "instance state changed"),
        }
    }
}

/// A `getStateInstance` call that failed.
pub struct PollFailed<'a> {
    pub error: &'a ApiError,
    /// Consecutive failures, this one included.
    pub failures: u32,
}

impl PollFailed<'_> {
    pub fn emit(&self, metrics: &InstanceMetrics) -> String {
        metrics.poll_failed(self.error);
        let error = self.error;
        tracing::warn!(
            reason = error.outcome(),
            %error,
            failures = self.failures,
            "state poll failed"
        );
        format!("getStateInstance: {error}")
    }
}

/// How a `getAuthorizationCode` call ended.
pub enum CodeRequested<'a> {
    Received,
    NotReceived,
    Failed(&'a ApiError),
}

impl CodeRequested<'_> {
    pub fn emit(&self, metrics: &InstanceMetrics) -> Option<String> {
        match self {
            Self::Received => {
                metrics.code_requested(CodeOutcome::Received);
                None
            }
            Self::NotReceived => {
                metrics.code_requested(CodeOutcome::NotReceived);
                tracing::warn!("vendor answered status:false (no code this time); backing off");
                Some("getAuthorizationCode: status false (no code)".into())
            }
            Self::Failed(error) => {
                metrics.code_requested(CodeOutcome::Error);
                tracing::warn!(reason = error.outcome(), %error, "code request failed; backing off");
                Some(format!("getAuthorizationCode: {error}"))
            }
        }
    }
}

/// A code handed to delivery.
pub struct CodeDelivering<'a> {
    pub expires_at: SystemTime,
    pub channels: &'a [String],
}

impl CodeDelivering<'_> {
    pub fn emit(&self) {
        tracing::info!(
            expires_at = %clock::utc(self.expires_at),
            channels = ?self.channels,
            "linking code received; delivering"
        );
    }
}

/// A code's deliveries are over: delivered by at least one channel, or by
/// none before it expired.
pub struct CodeDelivered {
    pub delivered: bool,
    /// For the episode's first delivered code: how long since the instance
    /// was first seen unlinked.
    pub first_after: Option<Duration>,
}

impl CodeDelivered {
    pub fn emit(&self, codes: &CodeMetrics) {
        codes.code_delivered(self.delivered);
        if let Some(latency) = self.first_after {
            codes.first_code_delivered_after(latency);
        }
    }
}

/// The instance is authorized again; the episode is over.
pub struct Linked;

impl Linked {
    pub fn emit(&self, metrics: &InstanceMetrics) {
        metrics.relinked();
        tracing::info!("instance linked again; episode over");
    }
}

/// The code budget is spent; codes pause until `until`.
pub struct Paused {
    pub codes: u32,
    pub until: SystemTime,
}

impl Paused {
    pub fn emit(&self, metrics: &InstanceMetrics) {
        metrics.episode_paused();
        tracing::warn!(
            codes = self.codes,
            until = %clock::utc(self.until),
            "code budget spent; pausing codes"
        );
    }
}

/// Unlinked outside every linking window: no code until one opens.
pub struct WaitingForWindow {
    pub opens: Option<SystemTime>,
}

impl WaitingForWindow {
    pub fn emit(&self, _metrics: &InstanceMetrics) {
        match self.opens {
            Some(opens) => tracing::info!(
                opens = %clock::utc(opens),
                "outside the linking windows; no code until one opens"
            ),
            None => tracing::warn!(
                "outside the linking windows, and none opens within 8 years; no codes"
            ),
        }
    }
}

/// A forwarded notification reported the instance's state: it is polled now.
pub struct StateHinted<'a> {
    pub state: &'a InstanceState,
}

impl StateHinted<'_> {
    pub fn emit(&self) {
        tracing::debug!(state = %self.state, "forwarded state notification; polling now");
    }
}

/// The poll after a forwarded notification found another state.
pub struct HintContradicted<'a> {
    pub hinted: &'a InstanceState,
    pub polled: &'a InstanceState,
}

impl HintContradicted<'_> {
    pub fn emit(&self, mismatches: &prometheus::IntCounter) {
        mismatches.inc();
        tracing::info!(
            forwarded = %self.hinted,
            polled = %self.polled,
            "a forwarded state was not confirmed by the poll; the poll decides"
        );
    }
}

/// The instance was `starting` too long: a `reboot` call and its outcome.
pub struct Rebooted<'a> {
    pub result: &'a Result<bool, crate::greenapi::ApiError>,
}

impl Rebooted<'_> {
    /// Counts a confirmed reboot per instance and a failed one fleet-wide;
    /// a failure is also the instance's last error.
    pub fn emit(
        &self,
        metrics: &InstanceMetrics,
        failures: &prometheus::IntCounter,
    ) -> Option<String> {
        match self.result {
            Ok(true) => {
                metrics.rebooted();
                tracing::warn!("stuck in starting; rebooted the instance");
                None
            }
            Ok(false) => {
                failures.inc();
                tracing::warn!(
                    "stuck in starting; the vendor refused the reboot (isReboot false); will retry"
                );
                Some("reboot: refused (isReboot false)".into())
            }
            Err(error) => {
                failures.inc();
                tracing::warn!(reason = error.outcome(), %error, "stuck in starting; the reboot failed; will retry");
                Some(format!("reboot: {error}"))
            }
        }
    }
}

/// A linking window opened for an unlinked instance.
pub struct Resumed;

impl Resumed {
    pub fn emit(&self) {
        tracing::info!("a linking window opened; codes resume");
    }
}

/// WhatsApp restricted the instance.
pub struct Restricted<'a> {
    pub state: &'a InstanceState,
}

impl Restricted<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            state = %self.state,
            "instance restricted by WhatsApp; no codes will be requested"
        );
    }
}

/// An operator asked for codes now.
pub struct RelinkRequested;

impl RelinkRequested {
    pub fn emit(&self) {
        tracing::info!("relink requested");
    }
}
