//! `type = "slack"`: an incoming webhook (Slack, or Mattermost, which takes
//! the same payload): mrkdwn `text` plus a section block. The webhook URL
//! is a secret and is never logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

mod config;

use super::http::{check_status, post_json, read_answer, retry_after};
use super::{Notification, SendError, Templates};
use crate::redact::Redactor;

pub use config::{Config, TYPE};

pub struct Slack {
    name: String,
    url: SecretString,
    /// The URL, and its path alone (a receiver may echo the path).
    redactor: Redactor,
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
            redactor: Redactor::default().with_url(url.expose_secret()),
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
        let response = post_json(&self.http, self.url.expose_secret(), &body, self.timeout).await?;
        let Err(mut error) = check_status(response.status(), retry_after(response.headers()))
        else {
            return Ok(());
        };
        // Slack explains in a short body, e.g. `invalid_payload`.
        let answer = read_answer(response).await.unwrap_or_default();
        if !answer.trim().is_empty() {
            error.detail = format!("{}: {}", error.detail, answer.trim());
        }
        Err(error)
    }
}

channel_from_attempt!(Slack);
