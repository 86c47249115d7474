//! `type = "console"`: prints messages on stdout, for the demo and for
//! trying relinkd out. Under systemd stdout is the journal, where a code
//! would be stored: not for production.

use std::io::Write as _;
use std::time::Duration;

mod config;

use super::{BoxFuture, Channel, Notification, Reason, SendError, Templates};
use crate::redact::Redactor;

pub use config::{Config, TYPE};

/// Columns a message is wrapped at, for the terminal it is read on.
const MESSAGE_WIDTH: usize = 100;

pub struct Console {
    name: String,
    /// Empty: the console holds no secret.
    redactor: Redactor,
    templates: Templates,
    timeout: Duration,
}

impl Console {
    pub fn new(name: &str, templates: Templates, timeout: Duration) -> Self {
        Self {
            name: name.to_owned(),
            redactor: Redactor::default(),
            templates,
            timeout,
        }
    }
}

impl Channel for Console {
    fn name(&self) -> &str {
        &self.name
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn shows_its_deliveries(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            // Wrapped: a message's prose runs longer than a terminal.
            let text = crate::terminal::wrap(&self.templates.body(notification)?, MESSAGE_WIDTH, 0);
            let mut out = std::io::stdout().lock();
            writeln!(out, "\n──── {} ────\n{text}\n", self.name)
                .and_then(|()| out.flush())
                .map_err(|e| SendError::new(Reason::Other, format!("stdout: {e}")))
        })
    }
}
