//! `type = "whatsapp"`: messages sent through another configured GREEN-API
//! instance (`via`) with `sendMessage`. Only while that instance is
//! authorized: otherwise the vendor queues messages for a day and a code
//! would arrive long expired. An instance's own messages never go through
//! itself (if it is unlinked, they cannot).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

mod config;

use super::{BoxFuture, Channel, Notification, Reason, SendError, Templates};
use crate::greenapi::{ApiError, InstanceApi};
use crate::redact::Redactor;

pub use config::{Config, TYPE, via_of};

/// Why a message can skip this channel.
const SKIP_REASONS: [&str; 2] = ["own_instance", "via_not_authorized"];

/// Chats already served per message, so a retry does not send twice.
const SENT_MEMORY: usize = 10_000;

pub struct Whatsapp {
    name: String,
    via: u64,
    chat_ids: Vec<String>,
    /// The `via` instance's vendor API, which also knows whether its last
    /// poll found it authorized.
    api: InstanceApi,
    /// The `via` instance's token, cut out of any error text.
    redactor: Redactor,
    templates: Templates,
    timeout: Duration,
    sent: Mutex<HashSet<(String, String)>>,
}

impl Whatsapp {
    pub fn new(
        name: &str,
        via: u64,
        chat_ids: Vec<String>,
        api: InstanceApi,
        templates: Templates,
        timeout: Duration,
    ) -> Self {
        Self {
            name: name.to_owned(),
            via,
            chat_ids,
            redactor: api.redactor(),
            api,
            templates,
            // Sending to several chats paces at one call a second.
            timeout,
            sent: Mutex::default(),
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let text = self.templates.body(n)?;
        for chat_id in &self.chat_ids {
            let key = (n.id.clone(), chat_id.clone());
            if self
                .sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&key)
            {
                continue;
            }
            self.api
                .send_message(chat_id, &text)
                .await
                .map_err(classify)?;
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            if sent.len() >= SENT_MEMORY {
                sent.clear();
            }
            sent.insert(key);
        }
        Ok(())
    }
}

fn classify(error: ApiError) -> SendError {
    let reason = match &error {
        ApiError::Unauthorized { .. } => Reason::Auth,
        ApiError::RateLimited { .. } => Reason::RateLimited,
        ApiError::QuotaExceeded | ApiError::Client { .. } => Reason::Client,
        ApiError::Server { .. } => Reason::Server,
        ApiError::Timeout => Reason::Timeout,
        ApiError::Transport(_) => Reason::Transport,
        ApiError::BadBody(_) => Reason::Other,
    };
    SendError {
        reason,
        retry_after: error.retry_after(),
        detail: format!("sendMessage: {error}"),
    }
}

impl Channel for Whatsapp {
    fn name(&self) -> &str {
        &self.name
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.attempt(notification))
    }

    fn unavailable(&self, notification: &Notification) -> Option<&'static str> {
        if notification
            .instance
            .as_ref()
            .is_some_and(|i| i.id == self.via)
        {
            Some(SKIP_REASONS[0])
        } else if !self.api.last_polled_authorized() {
            Some(SKIP_REASONS[1])
        } else {
            None
        }
    }

    fn skip_reasons(&self) -> &'static [&'static str] {
        &SKIP_REASONS
    }
}
