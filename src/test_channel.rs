//! `relinkd test-channel NAME`: one test message through one configured
//! channel, with the channel's own retries, so an operator can check a
//! channel before an outage needs it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ChannelKind, Config};
use crate::control::build_dispatcher;
use crate::delivery::{About, BuildError, DeliveryMetrics, InstanceRef, Outcome};
use crate::greenapi::{ApiError, ApiMetrics, Client};
use crate::metrics::Metrics;

/// How long the test message may keep retrying.
const TEST_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TestChannelError {
    #[error("no channel named {name:?} in the config (channels: {known})")]
    Unknown { name: String, known: String },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("channel {channel}: sending instance {via} could not be polled: {error}")]
    Via {
        channel: String,
        via: u64,
        error: ApiError,
    },
    #[error("channel {channel}: not delivered: {reason} ({detail})")]
    Failed {
        channel: String,
        reason: &'static str,
        detail: String,
    },
}

/// Sends the test message; `Ok` once the channel accepted it.
pub async fn run(config: &Config, name: &str) -> Result<(), TestChannelError> {
    let Some(channel) = config.channel(name) else {
        return Err(TestChannelError::Unknown {
            name: name.to_owned(),
            known: config
                .channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let metrics = Metrics::new();
    let client = Client::new(4, ApiMetrics::register(metrics.registry()));
    if let ChannelKind::Whatsapp(whatsapp) = &channel.kind {
        // The channel sends only through an instance polled authorized:
        // poll it (the channel shares the client, and so the answer).
        if let Some(sender) = config.instance(whatsapp.via) {
            client
                .instance(&sender.endpoint())
                .get_state()
                .await
                .map_err(|error| TestChannelError::Via {
                    channel: name.to_owned(),
                    via: whatsapp.via,
                    error,
                })?;
        }
    }
    let only = Config {
        channels: vec![channel.clone()],
        ..config.clone()
    };
    // The daemon's own HTTP client, so the test behaves as a real delivery.
    let http = crate::outbound::client();
    let delivery_metrics = DeliveryMetrics::register(metrics.registry());
    let dispatcher = build_dispatcher(&only, &client, &http, &delivery_metrics)?;
    let about = About {
        instance: InstanceRef {
            id: 0,
            name: "relinkd test-channel".into(),
        },
        phone: 0,
        timezone: None,
    };
    let message = Arc::new(about.test(Instant::now() + TEST_DEADLINE));
    let outcomes = dispatcher
        .deliver_each(message, std::slice::from_ref(&channel.name))
        .await;
    match outcomes.into_iter().next().map(|(_, o)| o) {
        Some(Outcome::Delivered) => Ok(()),
        Some(Outcome::Skipped(reason)) => Err(TestChannelError::Failed {
            channel: name.to_owned(),
            reason,
            detail: "the channel cannot send right now".into(),
        }),
        Some(Outcome::Failed(error)) => Err(TestChannelError::Failed {
            channel: name.to_owned(),
            reason: error.reason.as_str(),
            detail: error.detail,
        }),
        None => Err(TestChannelError::Failed {
            channel: name.to_owned(),
            reason: "other",
            detail: "no outcome".into(),
        }),
    }
}
