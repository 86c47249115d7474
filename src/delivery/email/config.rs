//! `type = "email"` in the config: the SMTP server (`smtp_host`,
//! `smtp_port`, `tls`), an optional login (`username` and a password from
//! `password_file`, `_env`, `_credential` or inline), `from` and `to`.

use std::sync::Arc;

use secrecy::SecretString;

use super::Email;
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, Report, integer, required_secret};

pub const TYPE: ChannelType = ChannelType {
    name: "email",
    keys: &[
        "smtp_host",
        "smtp_port",
        "tls",
        "username",
        "password_file",
        "password_env",
        "password_credential",
        "password",
        "from",
        "to",
    ],
    default_rate_limit: Some(30),
    check,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain SMTP (port 25 by default).
    None,
    /// STARTTLS, required (port 587 by default).
    StartTls,
    /// Implicit TLS (port 465 by default).
    Tls,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub smtp_host: String,
    /// Default by `tls`: 25, 587, 465.
    pub smtp_port: u16,
    /// Key `tls`: "none" | "starttls" (default) | "tls".
    pub tls: EmailTls,
    pub username: Option<String>,
    /// `password_file` / `_env` / `_credential` / `password`.
    pub password: Option<SecretString>,
    /// A mailbox, e.g. `relinkd <relinkd@example.com>`.
    pub from: String,
    /// Non-empty list of mailboxes.
    pub to: Vec<String>,
}

fn check(
    keys: &Keys,
    ctx: &CheckContext<'_>,
    report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    let prefix = ctx.prefix;
    let smtp_host = report.required(
        format!("{prefix}.smtp_host"),
        keys.get::<String>("smtp_host")?,
        "the SMTP server's host name, e.g. smtp_host = \"smtp.example.com\"",
        |host| smtp_host(&host),
    );
    let tls = match keys.get::<String>("tls")?.as_deref() {
        None | Some("starttls") => Some(EmailTls::StartTls),
        Some("tls") => Some(EmailTls::Tls),
        Some("none") => Some(EmailTls::None),
        Some(other) => {
            report.error(
                format!("{prefix}.tls"),
                format!("must be \"none\", \"starttls\" or \"tls\" (got {other:?})"),
            );
            None
        }
    };
    let smtp_port = match keys.value("smtp_port") {
        None => tls.map(|tls| match tls {
            EmailTls::None => 25,
            EmailTls::StartTls => 587,
            EmailTls::Tls => 465,
        }),
        Some(value) => report
            .check(format!("{prefix}.smtp_port"), integer(value, 1, 65_535))
            .and_then(|port| u16::try_from(port).ok()),
    };
    let given_username = keys.get::<String>("username")?;
    let username = match given_username.as_deref() {
        Some(name) if name.trim().is_empty() => {
            report.error(
                format!("{prefix}.username"),
                "must not be empty (remove it to send without SMTP authentication)",
            );
            None
        }
        other => other.map(str::to_owned),
    };
    let sources = keys.secret("password", None)?;
    let password = match (&given_username, sources.given_key()) {
        (None, None) => None,
        (None, Some(key)) => {
            report.error(
                format!("{prefix}.{key}"),
                "given without username: SMTP authentication needs both (set username, or \
                 remove the password)",
            );
            None
        }
        (Some(_), _) => required_secret(
            prefix,
            &sources,
            "username is set, so SMTP authentication needs a password",
            ctx.secrets,
            report,
        )
        .map(|loaded| loaded.value),
    };
    if tls == Some(EmailTls::None) && password.is_some() {
        report.warn(
            &format!("{prefix}.tls"),
            "is \"none\": the SMTP password is sent in clear text; use \"starttls\" or \"tls\"",
        );
    }
    let from = report.required(
        format!("{prefix}.from"),
        keys.get::<String>("from")?,
        "the sender, e.g. from = \"relinkd <relinkd@example.com>\"",
        |text| mailbox(&text),
    );
    let to = match keys.get::<Vec<String>>("to")?.as_deref() {
        None => {
            report.error(
                format!("{prefix}.to"),
                "missing: the recipients, e.g. to = [\"ops@example.com\"]",
            );
            None
        }
        Some([]) => {
            report.error(
                format!("{prefix}.to"),
                "must list at least one recipient, e.g. to = [\"ops@example.com\"]",
            );
            None
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, text)| report.check(format!("{prefix}.to[{j}]"), mailbox(text)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<String>>>(),
    };
    Ok((|| {
        Some(ChannelKind::Email(Config {
            smtp_host: smtp_host?,
            smtp_port: smtp_port?,
            tls: tls?,
            username,
            password,
            from: from?,
            to: to?,
        }))
    })())
}

/// An email mailbox: `relinkd@example.com` or `relinkd <relinkd@example.com>`.
/// Returns it as lettre writes it.
fn mailbox(text: &str) -> Result<String, String> {
    text.parse::<lettre::message::Mailbox>()
        .map(|mailbox| mailbox.to_string())
        .map_err(|_| {
            format!(
                "not a valid mailbox {text:?} (expected an address such as \
                 \"relinkd@example.com\" or \"relinkd <relinkd@example.com>\")"
            )
        })
}

/// An SMTP server's host name or IP address: not empty, no whitespace, not a
/// URL.
fn smtp_host(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(
            "must not be empty: the SMTP server's host name, e.g. \"smtp.example.com\"".to_owned(),
        );
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("must not contain spaces (got {text:?})"));
    }
    if text.contains("://") {
        return Err(format!(
            "must be a host name such as \"smtp.example.com\", not a URL (got {text:?}; \
             set the port with smtp_port and the encryption with tls)"
        ));
    }
    Ok(text.to_owned())
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        let extra_roots = deps
            .egress
            .ca_file
            .as_ref()
            .map_or(&[][..], |ca| &ca.certificates[..]);
        Ok(Arc::new(Email::new(
            common.name,
            self,
            common.templates(Style::Plain)?,
            common.timeout,
            extra_roots,
        )?))
    }
}
