//! Delivery's metrics: `relinkd_deliveries_total{channel,outcome,reason}`,
//! `relinkd_delivery_duration_seconds{channel}` and
//! `relinkd_delivery_skips_total{channel,reason}`, registered on the registry
//! passed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::Reason;
use crate::metrics::register;

const DELIVERY_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 150.0];

/// `relinkd_deliveries_total{channel,outcome,reason}` and
/// `relinkd_delivery_duration_seconds{channel}`.
#[derive(Clone)]
pub struct DeliveryMetrics {
    deliveries: IntCounterVec,
    durations: HistogramVec,
    skips: IntCounterVec,
    expired: IntCounterVec,
    /// The skip reasons each channel was registered with (to remove them).
    skip_reasons: Arc<Mutex<HashMap<String, &'static [&'static str]>>>,
}

impl DeliveryMetrics {
    pub fn register(registry: &Registry) -> Self {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "relinkd_deliveries_total",
                "Notifications (a whole retry loop each) per channel: outcome success or \
                 failure, and the reason of a failure (none on success).",
            ),
            &["channel", "outcome", "reason"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "relinkd_delivery_duration_seconds",
                "Time from the start of a notification to its success or final failure.",
            )
            .buckets(DELIVERY_BUCKETS.to_vec()),
            &["channel"],
        )
        .expect("valid metric");
        let skips = IntCounterVec::new(
            Opts::new(
                "relinkd_delivery_skips_total",
                "Messages a channel did not take: a WhatsApp channel never sends an instance's \
                 own messages through it (own_instance), nor through an instance that is not \
                 authorized (via_not_authorized); the other channels still get them.",
            ),
            &["channel", "reason"],
        )
        .expect("valid metric");
        let expired = IntCounterVec::new(
            Opts::new(
                "relinkd_deliveries_expired_total",
                "Notifications per channel that ran out of time (a code's expiry, a notice's \
                 deadline) before an attempt succeeded. Their reason in relinkd_deliveries_total \
                 is their last attempt's; expired there means no attempt could be made.",
            ),
            &["channel"],
        )
        .expect("valid metric");
        register(registry, deliveries.clone());
        register(registry, expired.clone());
        register(registry, durations.clone());
        register(registry, skips.clone());
        Self {
            deliveries,
            durations,
            skips,
            expired,
            skip_reasons: Arc::default(),
        }
    }

    pub fn skipped(&self, channel: &str, reason: &str) {
        self.skips.with_label_values(&[channel, reason]).inc();
    }

    /// Creates a channel's series at 0 so dashboards and alerts see them,
    /// skip series for the reasons it can skip for included.
    pub fn register_channel(&self, channel: &str, skip_reasons: &'static [&'static str]) {
        self.deliveries
            .with_label_values(&[channel, "success", "none"]);
        for reason in Reason::ALL {
            self.deliveries
                .with_label_values(&[channel, "failure", reason.as_str()]);
        }
        self.durations.with_label_values(&[channel]);
        self.expired.with_label_values(&[channel]);
        for reason in skip_reasons {
            self.skips.with_label_values(&[channel, reason]);
        }
        if !skip_reasons.is_empty() {
            self.skip_reasons
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(channel.to_owned(), skip_reasons);
        }
    }

    pub fn remove_channel(&self, channel: &str) {
        let _ = self
            .deliveries
            .remove_label_values(&[channel, "success", "none"]);
        for reason in Reason::ALL {
            let _ = self
                .deliveries
                .remove_label_values(&[channel, "failure", reason.as_str()]);
        }
        let _ = self.durations.remove_label_values(&[channel]);
        let _ = self.expired.remove_label_values(&[channel]);
        let reasons = self
            .skip_reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(channel)
            .unwrap_or_default();
        for reason in reasons {
            let _ = self.skips.remove_label_values(&[channel, reason]);
        }
    }

    /// A notification on `channel` ran out of time.
    pub fn expired(&self, channel: &str) {
        self.expired.with_label_values(&[channel]).inc();
    }

    pub fn record(&self, channel: &str, result: Result<(), Reason>, elapsed: Duration) {
        let (outcome, reason) = match result {
            Ok(()) => ("success", "none"),
            Err(reason) => ("failure", reason.as_str()),
        };
        self.deliveries
            .with_label_values(&[channel, outcome, reason])
            .inc();
        self.durations
            .with_label_values(&[channel])
            .observe(elapsed.as_secs_f64());
    }
}
