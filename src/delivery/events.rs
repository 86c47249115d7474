//! What delivery observes, one struct per kind of thing: `emit` writes the
//! log line and the metrics together. Lines name no instance: a delivery
//! runs in its supervisor's span, which carries `wa_instance` and
//! `instance`.

use std::time::Duration;

use super::metrics::DeliveryMetrics;
use super::{Event, Reason, SendError};

/// A notification reached its channel.
pub struct Delivered<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub attempts: u32,
    pub elapsed: Duration,
}

impl Delivered<'_> {
    pub fn emit(&self, metrics: &DeliveryMetrics) {
        metrics.record(self.channel, Ok(()), self.elapsed);
        tracing::info!(
            channel = self.channel,
            event = self.event.as_str(),
            attempts = self.attempts,
            "notification delivered"
        );
    }
}

/// A notification's retry loop ended without delivering it.
pub struct GaveUp<'a> {
    pub channel: &'a str,
    pub event: Event,
    pub attempts: u32,
    pub reason: Reason,
    pub detail: &'a str,
    pub elapsed: Duration,
}

impl GaveUp<'_> {
    pub fn emit(&self, metrics: &DeliveryMetrics) {
        metrics.record(self.channel, Err(self.reason), self.elapsed);
        tracing::warn!(
            channel = self.channel,
            event = self.event.as_str(),
            attempts = self.attempts,
            reason = self.reason.as_str(),
            detail = self.detail,
            "notification not delivered"
        );
    }
}

/// One attempt failed; another follows after `retry_in`.
pub struct AttemptFailed<'a> {
    pub channel: &'a str,
    pub attempt: u32,
    pub error: &'a SendError,
    pub retry_in: Duration,
}

impl AttemptFailed<'_> {
    pub fn emit(&self) {
        tracing::debug!(
            channel = self.channel,
            attempt = self.attempt,
            error = %self.error,
            retry_in = ?self.retry_in,
            "delivery attempt failed; will retry"
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
