//! One notification on one channel: attempts with backoff and jitter until
//! one succeeds, a failure is final, or the deadline passes (a code is
//! useless once it expires, so no attempt starts after it).

use std::time::Duration;

use tokio::time::Instant;

use super::rate::RateGate;
use super::{Channel, Notification, Reason, SendError};

/// Longest error detail kept from one attempt.
const MAX_DETAIL_CHARS: usize = 300;

/// Retry schedule of one notification on one channel.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// One notification on one channel: attempts with backoff and jitter until
/// one succeeds, a failure is final, or the deadline passes. Logs the outcome.
pub async fn notify(
    channel: &dyn Channel,
    gate: &RateGate,
    notification: &Notification,
    retry: RetryPolicy,
) -> Result<(), SendError> {
    let deadline = notification.deadline;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if tokio::time::timeout_at(deadline, gate.acquire(notification.is_code()))
            .await
            .is_err()
        {
            let detail = "the channel's rate limit left no slot before the deadline";
            return Err(give_up(
                channel,
                notification,
                attempt - 1,
                Reason::Expired,
                detail,
            ));
        }
        let now = Instant::now();
        if now >= deadline {
            let detail = "deadline passed before the attempt";
            return Err(give_up(
                channel,
                notification,
                attempt - 1,
                Reason::Expired,
                detail,
            ));
        }
        let limit = channel.attempt_timeout().min(deadline - now);
        let mut error = match tokio::time::timeout(limit, channel.send(notification)).await {
            Ok(Ok(())) => {
                tracing::info!(
                    channel = channel.name(),
                    instance = %notification.instance.name,
                    wa_instance = notification.instance.id,
                    event = notification.event.as_str(),
                    attempts = attempt,
                    "notification delivered"
                );
                return Ok(());
            }
            Ok(Err(error)) => error,
            Err(_) if Instant::now() >= deadline => {
                let detail = "attempt cut off at the deadline";
                return Err(give_up(
                    channel,
                    notification,
                    attempt,
                    Reason::Expired,
                    detail,
                ));
            }
            Err(_) => SendError::new(Reason::Timeout, format!("no answer within {limit:?}")),
        };
        // The one place a channel's error text is cleaned: whatever it
        // quotes from its peer loses the channel's secrets, then is bounded.
        error.detail = channel.redactor().clean(&error.detail, MAX_DETAIL_CHARS);
        if !error.reason.is_retryable() {
            return Err(give_up(
                channel,
                notification,
                attempt,
                error.reason,
                &error.detail,
            ));
        }
        let backoff = retry
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(retry.max_delay)
            .mul_f64(0.8 + 0.4 * rand::random::<f64>());
        // A bogus Retry-After must not overflow the deadline arithmetic.
        let delay = error
            .retry_after
            .map_or(backoff, |r| r.max(backoff))
            .min(crate::outbound::MAX_RETRY_AFTER);
        if Instant::now() + delay >= deadline {
            // The next attempt could only start after expiry: drop, count.
            let detail = format!("last attempt: {error}");
            return Err(give_up(
                channel,
                notification,
                attempt,
                Reason::Expired,
                &detail,
            ));
        }
        tracing::debug!(
            channel = channel.name(),
            wa_instance = notification.instance.id,
            attempt,
            error = %error,
            retry_in = ?delay,
            "delivery attempt failed; will retry"
        );
        tokio::time::sleep(delay).await;
    }
}

fn give_up(
    channel: &dyn Channel,
    notification: &Notification,
    attempts: u32,
    reason: Reason,
    detail: &str,
) -> SendError {
    tracing::warn!(
        channel = channel.name(),
        instance = %notification.instance.name,
        wa_instance = notification.instance.id,
        event = notification.event.as_str(),
        attempts,
        reason = reason.as_str(),
        detail,
        "notification not delivered"
    );
    SendError::new(reason, detail)
}
