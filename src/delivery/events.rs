//! What delivery observes, one struct per kind of thing: `emit` writes the
//! log line and the metrics together. Lines name no instance: a delivery
//! runs in its supervisor's span, which carries `wa_instance` and
//! `instance`.

use std::time::Duration;

use super::health::{ChannelHealth, LogDecision};
use super::metrics::DeliveryMetrics;
use super::{Event, Failure, SendError};

/// `tracing::$level!(...)`, or `debug!` when something else already shows
/// the same to the user (`shown`).
macro_rules! unless_shown {
    ($shown:expr, $level:ident, $($arg:tt)+) => {
        if $shown {
            tracing::debug!($($arg)+)
        } else {
            tracing::$level!($($arg)+)
        }
    };
}

/// A notification reached its channel.
pub struct Delivered<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub attempts: u32,
    pub elapsed: Duration,
    /// `Some(n)`: the channel had failed `n` attempts (for any instance)
    /// since it last delivered.
    pub recovered_after: Option<u64>,
    /// The channel's own output, or the observer, showed the delivery: the
    /// line is debug.
    pub shown: bool,
}

impl Delivered<'_> {
    pub fn emit(&self, metrics: &DeliveryMetrics) {
        metrics.record(self.channel, Ok(()), self.elapsed);
        if let Some(failed_attempts) = self.recovered_after {
            tracing::info!(
                channel = self.channel,
                failed_attempts,
                "channel delivers again"
            );
        }
        let (channel, event, attempts) = (self.channel, self.event.as_str(), self.attempts);
        unless_shown!(
            self.shown,
            info,
            channel,
            event,
            attempts,
            "notification delivered"
        );
    }
}

/// A notification's retry loop ended without delivering it: its last
/// attempt's reason, and whether it ran out of time. Counted always; logged
/// at most a few times a minute per channel (an outage gives up every
/// instance's codes), with a count of the lines held back.
pub struct GaveUp<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub attempts: u32,
    pub failure: &'a Failure,
    pub elapsed: Duration,
    /// The observer showed it: the line is debug.
    pub shown: bool,
}

impl GaveUp<'_> {
    pub fn emit(&self, metrics: &DeliveryMetrics, health: &ChannelHealth) {
        let Failure { error, expired } = self.failure;
        metrics.record(self.channel, Err(error.reason), self.elapsed);
        if *expired {
            metrics.expired(self.channel);
        }
        let LogDecision::Log { suppressed } = health.gave_up(tokio::time::Instant::now()) else {
            return;
        };
        unless_shown!(
            self.shown,
            warn,
            channel = self.channel,
            event = self.event.as_str(),
            attempts = self.attempts,
            reason = error.reason.as_str(),
            detail = error.detail,
            expired,
            suppressed,
            "notification not delivered"
        );
    }
}

/// One attempt failed; `retry_in`: when the next goes (`None`: none will).
/// Logged at most a few times a minute per channel, with a count of the
/// lines held back.
pub struct AttemptFailed<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub attempt: u32,
    pub error: &'a SendError,
    pub retry_in: Option<Duration>,
    /// The observer showed it: the line is debug.
    pub shown: bool,
}

impl AttemptFailed<'_> {
    pub fn emit(&self, health: &ChannelHealth) {
        let LogDecision::Log { suppressed } = health.attempt_failed(tokio::time::Instant::now())
        else {
            return;
        };
        let retry_in = self.retry_in.map(|d| format!("{d:.1?}"));
        unless_shown!(
            self.shown,
            warn,
            channel = self.channel,
            event = self.event.as_str(),
            attempt = self.attempt,
            reason = self.error.reason.as_str(),
            detail = self.error.detail,
            retry_in = retry_in.as_deref().unwrap_or("no retry"),
            suppressed,
            "delivery attempt failed"
        );
    }
}

/// A channel that cannot take this message at all (the instance's other
/// channels still get it).
pub struct Skipped<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub reason: &'static str,
}

impl Skipped<'_> {
    pub fn emit(&self, metrics: &DeliveryMetrics) {
        metrics.skipped(self.channel, self.reason);
        tracing::info!(
            channel = self.channel,
            event = self.event.as_str(),
            reason = self.reason,
            "channel skipped for this message; the instance's other channels still get it"
        );
    }
}
