//! `type = "email"`: SMTP with lettre (plain, STARTTLS or implicit TLS,
//! optional login), a subject that says which instance and when the code
//! expires, and a plain-text body.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

mod config;

use super::{Notification, Reason, SendError, Templates};
use crate::redact::Redactor;

pub use config::{Config, EmailTls, TYPE};

pub struct Email {
    name: String,
    /// The password, and the base64 forms SMTP AUTH sends it in (a server
    /// may quote them back in a reply).
    redactor: Redactor,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    templates: Templates,
    timeout: Duration,
}

impl Email {
    /// From an `email` channel's config (addresses were validated at load);
    /// TLS trusts the built-in roots and `extra_roots` (DER: `ca_file`'s).
    pub fn new(
        name: &str,
        config: &Config,
        templates: Templates,
        timeout: Duration,
        extra_roots: &[Vec<u8>],
    ) -> Result<Self, String> {
        let Config {
            smtp_host,
            smtp_port,
            tls,
            username,
            password,
            from,
            to,
        } = config;
        let tls_parameters = || {
            let mut tls = TlsParameters::builder(smtp_host.clone());
            for der in extra_roots {
                let root =
                    Certificate::from_der(der.clone()).map_err(|e| format!("ca_file: TLS: {e}"))?;
                tls = tls.add_root_certificate(root);
            }
            tls.build().map_err(|e| format!("smtp_host: TLS: {e}"))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp_host)
            .port(*smtp_port)
            .timeout(Some(timeout));
        builder = match tls {
            EmailTls::None => builder.tls(Tls::None),
            EmailTls::StartTls => builder.tls(Tls::Required(tls_parameters()?)),
            EmailTls::Tls => builder.tls(Tls::Wrapper(tls_parameters()?)),
        };
        let mut redactor = Redactor::default();
        if let (Some(user), Some(password)) = (username, password) {
            let password = password.expose_secret();
            redactor = auth_redactor(user, password);
            builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
        }
        let from = from.parse::<Mailbox>().map_err(|e| format!("from: {e}"))?;
        let to = to
            .iter()
            .map(|a| a.parse::<Mailbox>().map_err(|e| format!("to: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            redactor,
            transport: builder.build(),
            from,
            to,
            templates,
            timeout,
        })
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(self.templates.subject(n)?)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(self.templates.body(n)?)
            .map_err(|e| SendError::new(Reason::Other, format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// The password as typed and as AUTH PLAIN and AUTH LOGIN encode it.
fn auth_redactor(user: &str, password: &str) -> Redactor {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Redactor::of(password)
        .with(&b64(password.as_bytes()))
        .with(&b64(format!("\0{user}\0{password}").as_bytes()))
}

/// SMTP answers: 5xx are permanent (535/530: bad login), 4xx transient.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|c| c.to_string());
    let reason = if error.is_timeout() {
        Reason::Timeout
    } else if error.is_permanent() {
        match code.as_deref() {
            Some("530" | "535" | "534") => Reason::Auth,
            _ => Reason::Client,
        }
    } else if error.is_transient() {
        Reason::Server
    } else if error.is_client() || error.is_response() || error.is_transport_shutdown() {
        // Ours, or an answer that is not SMTP.
        Reason::Other
    } else {
        // Connecting, the network or TLS.
        Reason::Transport
    };
    SendError::new(reason, format!("SMTP: {error}"))
}

channel_from_attempt!(Email);
