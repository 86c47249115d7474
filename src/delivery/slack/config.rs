//! `type = "slack"` in the config: the incoming-webhook URL, which is a
//! secret (`url_file`, `_env`, `_credential` or inline `url`). Mattermost's
//! incoming webhooks take the same payload.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::Slack;
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, Report, http_url, required_secret};

pub const TYPE: ChannelType = ChannelType {
    name: "slack",
    keys: &["url_file", "url_env", "url_credential", "url"],
    // Slack takes about one message a second per webhook.
    default_rate_limit: Some(60),
    check,
};

const INLINE_WARNING: &str = "the Slack webhook URL is a secret (anyone who has it can post \
     to the channel) and is written inline in the config file; use url_file or url_credential \
     instead";

#[derive(Debug, Clone)]
pub struct Config {
    /// Incoming-webhook URL (a secret): `url_file` / `_env` / `_credential` / `url`.
    pub url: SecretString,
}

fn check(
    keys: &Keys,
    ctx: &CheckContext<'_>,
    report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    let prefix = ctx.prefix;
    let Some(loaded) = required_secret(
        prefix,
        &keys.secret("url", Some(INLINE_WARNING))?,
        "a slack channel needs its incoming-webhook URL",
        ctx.secrets,
        report,
    ) else {
        return Ok(None);
    };
    // http_url's messages never quote the URL.
    if let Err(problem) = http_url(loaded.value.expose_secret()) {
        report.error(
            loaded.key,
            format!("{problem} (the URL is a secret: it is not shown)"),
        );
        return Ok(None);
    }
    Ok(Some(ChannelKind::Slack(Config { url: loaded.value })))
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        Ok(Arc::new(Slack::new(
            common.name,
            self.url.clone(),
            common.templates(Style::Slack)?,
            common.timeout,
            deps.http.clone(),
        )))
    }
}
