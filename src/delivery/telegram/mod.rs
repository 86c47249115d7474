//! `type = "telegram"`: the Bot API's `sendMessage`, HTML parse mode, the
//! code in a `<code>` element (one tap copies it). The bot token is part of
//! the URL, so no URL is ever logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

mod config;

use super::http::{check_status, post_json, read_answer, retry_after};
use super::{Notification, Reason, SendError, Templates};
use crate::redact::Redactor;

pub use config::{Config, TYPE};

pub struct Telegram {
    name: String,
    /// `{api_base}/bot{token}/sendMessage`: a secret.
    url: SecretString,
    /// The bot token.
    redactor: Redactor,
    chat_id: Value,
    templates: Templates,
    timeout: Duration,
    http: reqwest::Client,
}

impl Telegram {
    pub fn new(
        name: &str,
        api_base: &str,
        bot_token: &SecretString,
        chat_id: String,
        templates: Templates,
        timeout: Duration,
        http: reqwest::Client,
    ) -> Self {
        let url = format!(
            "{}/bot{}/sendMessage",
            api_base.trim_end_matches('/'),
            bot_token.expose_secret()
        );
        // Numeric ids go as numbers, `@channel` names as strings.
        let chat_id = chat_id
            .parse::<i64>()
            .map_or_else(|_| Value::from(chat_id), Value::from);
        Self {
            name: name.to_owned(),
            url: SecretString::from(url),
            redactor: Redactor::of(bot_token.expose_secret()),
            chat_id,
            templates,
            timeout,
            http,
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let body = json!({
            "chat_id": self.chat_id,
            "text": self.templates.body(n)?,
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        });
        let response = post_json(&self.http, self.url.expose_secret(), &body, self.timeout).await?;
        let status = response.status();
        let header_retry = retry_after(response.headers());
        let answer: Value = match read_answer(response).await {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            // The status alone says what went wrong.
            Err(_) if !status.is_success() => Value::Null,
            Err(error) => return Err(error),
        };
        if status.is_success() && answer["ok"] == true {
            return Ok(());
        }
        let description = answer["description"].as_str().unwrap_or("no description");
        // Telegram says how long to wait in parameters.retry_after.
        let retry = answer["parameters"]["retry_after"]
            .as_u64()
            .map(|s| Duration::from_secs(s).min(crate::outbound::MAX_RETRY_AFTER))
            .or(header_retry);
        let mut error = match check_status(status, retry) {
            Err(error) => error,
            Ok(()) => SendError::new(Reason::Other, "answer without ok: true"),
        };
        error.detail = format!("{}: {description}", error.detail);
        Err(error)
    }
}

channel_from_attempt!(Telegram);
