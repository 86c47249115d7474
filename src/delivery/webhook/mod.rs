//! `type = "webhook"`: the JSON payload of DESIGN.md, POSTed, optionally
//! signed per Standard Webhooks v1.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod config;
mod signing;

use super::http::{check_status, retry_after, transport_error};
use super::{Notification, SendError, Templates};
use crate::redact::Redactor;

pub use config::{Config, InvalidWebhookSecret, TYPE, WebhookSecret};
pub use signing::{WebhookSigner, sign};

pub struct Webhook {
    name: String,
    url: String,
    signer: Option<WebhookSigner>,
    /// The signing secret (never sent, so never echoed: defence in depth).
    redactor: Redactor,
    templates: Templates,
    timeout: Duration,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(
        name: &str,
        url: String,
        signer: Option<WebhookSigner>,
        templates: Templates,
        timeout: Duration,
        http: reqwest::Client,
    ) -> Self {
        Self {
            name: name.to_owned(),
            url,
            redactor: signer
                .as_ref()
                .map_or_else(Redactor::default, WebhookSigner::redactor),
            signer,
            templates,
            timeout,
            http,
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let text = self.templates.body(n)?;
        let body = serde_json::to_vec(&n.payload(&text)).expect("the payload always serializes");
        // The signature's timestamp is the real wall clock: receivers
        // compare it with theirs.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &n.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(signer) = &self.signer {
            request = request.header(
                "webhook-signature",
                signer.signature(&n.id, timestamp, &body),
            );
        }
        let response = request
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        check_status(response.status(), retry_after(response.headers()))
    }
}

channel_from_attempt!(Webhook);
