//! `type = "slack"`: an incoming webhook (Slack, or Mattermost, which takes
//! the same payload): mrkdwn `text` plus a section block. The webhook URL
//! is a secret and is never logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::http::{check_status, retry_after, transport_error};
use super::{Notification, SendError, Templates};

pub struct Slack {
    name: String,
    url: SecretString,
    templates: Templates,
    timeout: Duration,
    http: reqwest::Client,
}

impl Slack {
    pub fn new(
        name: &str,
        url: SecretString,
        templates: Templates,
        timeout: Duration,
        http: reqwest::Client,
    ) -> Self {
        Self {
            name: name.to_owned(),
            url,
            templates,
            timeout,
            http,
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let text = self.templates.body(n)?;
        let body = json!({
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        });
        let response = self
            .http
            .post(self.url.expose_secret())
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let answer = response.text().await.unwrap_or_default();
        check_status(status, retry).map_err(|mut e| {
            // Slack explains in a short body, e.g. `invalid_payload`.
            let reason: String = answer.chars().take(100).collect();
            if !reason.trim().is_empty() {
                e.detail = format!("{}: {}", e.detail, reason.trim());
            }
            e
        })
    }
}

channel_from_attempt!(Slack);
