//! `relinkd test-channel NAME`: one test message through one configured
//! channel, with the channel's own retries, so an operator can check a
//! channel before an outage needs it. Each failed attempt is printed as it
//! happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ChannelKind, Config};
use crate::control::build_dispatcher;
use crate::delivery::{
    About, BuildError, DeliveryMetrics, Failure, InstanceRef, Observer, Outcome, SendError,
};
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
    #[error(transparent)]
    Outbound(#[from] crate::outbound::ClientError),
    #[error("channel {channel}: sending instance {via} could not be polled: {error}")]
    Via {
        channel: String,
        via: u64,
        error: ApiError,
    },
    #[error("channel {channel}: not delivered: {why}")]
    Failed { channel: String, why: String },
}

/// Prints each attempt as it happens, and counts them.
#[derive(Default)]
struct Printer {
    attempts: AtomicU32,
}

impl Observer for Printer {
    fn attempt_failed(
        &self,
        channel: &str,
        attempt: u32,
        error: &SendError,
        retry_in: Option<Duration>,
    ) {
        self.attempts.store(attempt, Ordering::Relaxed);
        let next = match retry_in {
            Some(delay) => format!("retrying in {delay:.1?}"),
            None => "no more attempts".to_owned(),
        };
        println!("channel {channel}: attempt {attempt} failed: {error}; {next}");
    }

    fn delivered(&self, _channel: &str, attempts: u32) {
        self.attempts.store(attempts, Ordering::Relaxed);
    }

    /// Each attempt is printed here and the outcome by the command: the
    /// delivery's own log lines would say it all again.
    fn shows_attempts(&self) -> bool {
        true
    }
}

/// Why the test message failed, in words: the real reason, and whether
/// time ran out.
fn why(failure: &Failure, attempts: u32) -> String {
    let tries = if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    };
    if failure.expired {
        format!(
            "no attempt succeeded within the test's {} s ({tries}; the last: {})",
            TEST_DEADLINE.as_secs(),
            failure.error
        )
    } else {
        format!("{} after {tries}", failure.error)
    }
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
    let egress = &config.daemon.egress;
    let client = Client::new(
        4,
        crate::greenapi::vendor_http(egress, 4)?,
        ApiMetrics::register(metrics.registry()),
    );
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
    let http = crate::outbound::client(egress, crate::outbound::CHANNEL_IDLE_PER_HOST)?;
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
    let printer = Arc::new(Printer::default());
    let outcomes = dispatcher
        .deliver_each(
            message,
            std::slice::from_ref(&channel.name),
            printer.clone(),
        )
        .await;
    let failed = |why: String| {
        Err(TestChannelError::Failed {
            channel: name.to_owned(),
            why,
        })
    };
    match outcomes.into_iter().next().map(|(_, o)| o) {
        Some(Outcome::Delivered) => Ok(()),
        Some(Outcome::Skipped(reason)) => {
            failed(format!("{reason} (the channel cannot send right now)"))
        }
        Some(Outcome::Failed(failure)) => {
            failed(why(&failure, printer.attempts.load(Ordering::Relaxed)))
        }
        None => failed("no outcome".into()),
    }
}
