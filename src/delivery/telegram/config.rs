//! `type = "telegram"` in the config: the bot's token (`bot_token_file`,
//! `_env`, `_credential` or inline), `chat_id` and `api_base`.

use std::sync::Arc;

use secrecy::SecretString;
use toml::Value;

use super::Telegram;
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, Report, describe, http_url, required_secret};

pub const TYPE: ChannelType = ChannelType {
    name: "telegram",
    keys: &[
        "bot_token_file",
        "bot_token_env",
        "bot_token_credential",
        "bot_token",
        "chat_id",
        "api_base",
    ],
    // Telegram allows about 20 messages a minute to one group.
    default_rate_limit: Some(20),
    check,
};

const DEFAULT_API_BASE: &str = "https://api.telegram.org";

#[derive(Debug, Clone)]
pub struct Config {
    /// From `bot_token_file` / `_env` / `_credential` / `bot_token`.
    pub bot_token: SecretString,
    /// A numeric chat id (may be negative) or `@channelusername`.
    pub chat_id: String,
    /// Default `https://api.telegram.org`; no trailing slash.
    pub api_base: String,
}

fn check(
    keys: &Keys,
    ctx: &CheckContext<'_>,
    report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    let prefix = ctx.prefix;
    let bot_token = required_secret(
        prefix,
        &keys.secret("bot_token", None)?,
        "a telegram channel needs its bot's token (from @BotFather)",
        ctx.secrets,
        report,
    );
    let chat_id = report.required(
        format!("{prefix}.chat_id"),
        keys.value("chat_id"),
        "the chat to send to, a numeric id (e.g. -1001234567890) or \"@channelusername\"",
        telegram_chat_id,
    );
    let api_base = match keys.get::<String>("api_base")? {
        None => Some(DEFAULT_API_BASE.to_owned()),
        Some(url) => report.check(format!("{prefix}.api_base"), http_url(&url)),
    };
    Ok((|| {
        Some(ChannelKind::Telegram(Config {
            bot_token: bot_token?.value,
            chat_id: chat_id?,
            api_base: api_base?,
        }))
    })())
}

/// A Telegram chat id: a TOML integer (negative for groups and channels,
/// e.g. -1001234567890), a string holding one, or `"@channelusername"` (5 to
/// 32 of `[A-Za-z0-9_]` after the `@`). Returned as a string.
fn telegram_chat_id(value: &Value) -> Result<String, String> {
    const EXPECTED: &str = "must be a numeric chat id such as -1001234567890, or \"@\" and a \
                            public chat's username (5 to 32 of A-Z, a-z, 0-9 and '_')";
    let id = match value {
        Value::Integer(i) => *i,
        Value::String(s) => {
            if let Some(username) = s.strip_prefix('@') {
                let ok = (5..=32).contains(&username.len())
                    && username
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                return if ok {
                    Ok(s.clone())
                } else {
                    Err(format!("{EXPECTED} (got {s:?})"))
                };
            }
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("{EXPECTED} (got {s:?})"))?
        }
        other => return Err(format!("{EXPECTED} (got {})", describe(other))),
    };
    if id == 0 {
        return Err(format!("{EXPECTED} (got 0, which is no chat)"));
    }
    Ok(id.to_string())
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        Ok(Arc::new(Telegram::new(
            common.name,
            &self.api_base,
            &self.bot_token,
            self.chat_id.clone(),
            common.templates(Style::Html)?,
            common.timeout,
            deps.http.clone(),
        )))
    }
}
