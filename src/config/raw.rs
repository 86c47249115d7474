//! The serde model of the TOML file, as written: every field optional so that
//! validation can name a missing key by its path, unknown keys rejected at
//! every level. Numbers and durations are kept as raw TOML values so that
//! validation can say precisely what is wrong with them.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub defaults: RawSettings,
    #[serde(default, rename = "channel")]
    pub channels: Vec<RawChannel>,
    #[serde(default, rename = "instance")]
    pub instances: Vec<RawInstance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub listen: Option<String>,
    pub state_dir: Option<String>,
    pub log_format: Option<String>,
    pub admin_token_file: Option<String>,
    pub admin_token_env: Option<String>,
    pub admin_token_credential: Option<String>,
    pub admin_token: Option<RawSecret>,
    pub max_concurrent_requests: Option<Value>,
    pub max_connections: Option<Value>,
}

/// The `[defaults]` keys; each may be overridden in an `[[instance]]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub poll_interval: Option<Value>,
    pub linking_poll_interval: Option<Value>,
    pub code_ttl: Option<Value>,
    pub codes_per_episode: Option<Value>,
    pub cooldown: Option<Value>,
    pub request_timeout: Option<Value>,
    pub backoff_max: Option<Value>,
    pub timezone: Option<Value>,
}

/// One `[[channel]]`. All per-type keys live here; which ones a type allows
/// is checked in validation against [`RawChannel::specific_keys`] (so the
/// message can name the type).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    // common to every type
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub timeout: Option<Value>,
    pub rate_limit_per_minute: Option<Value>,
    pub templates: Option<RawTemplates>,
    // webhook (`url` is also slack's inline webhook URL, a secret; so it is
    // read as one for both types)
    pub url: Option<RawSecret>,
    pub secret_file: Option<String>,
    pub secret_env: Option<String>,
    pub secret_credential: Option<String>,
    pub secret: Option<RawSecret>,
    // telegram
    pub bot_token_file: Option<String>,
    pub bot_token_env: Option<String>,
    pub bot_token_credential: Option<String>,
    pub bot_token: Option<RawSecret>,
    pub chat_id: Option<Value>,
    pub api_base: Option<String>,
    // slack (and `url` above)
    pub url_file: Option<String>,
    pub url_env: Option<String>,
    pub url_credential: Option<String>,
    // email
    pub smtp_host: Option<String>,
    pub smtp_port: Option<Value>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub password_credential: Option<String>,
    pub password: Option<RawSecret>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    // whatsapp
    pub via: Option<Value>,
    pub chat_ids: Option<Vec<String>>,
}

impl RawChannel {
    /// The type-specific keys present in this channel, in the order they are
    /// declared (every key except name, type, timeout, rate_limit_per_minute
    /// and templates).
    pub fn specific_keys(&self) -> Vec<&'static str> {
        let present = [
            ("url", self.url.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("secret_env", self.secret_env.is_some()),
            ("secret_credential", self.secret_credential.is_some()),
            ("secret", self.secret.is_some()),
            ("bot_token_file", self.bot_token_file.is_some()),
            ("bot_token_env", self.bot_token_env.is_some()),
            ("bot_token_credential", self.bot_token_credential.is_some()),
            ("bot_token", self.bot_token.is_some()),
            ("chat_id", self.chat_id.is_some()),
            ("api_base", self.api_base.is_some()),
            ("url_file", self.url_file.is_some()),
            ("url_env", self.url_env.is_some()),
            ("url_credential", self.url_credential.is_some()),
            ("smtp_host", self.smtp_host.is_some()),
            ("smtp_port", self.smtp_port.is_some()),
            ("tls", self.tls.is_some()),
            ("username", self.username.is_some()),
            ("password_file", self.password_file.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_credential", self.password_credential.is_some()),
            ("password", self.password.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("via", self.via.is_some()),
            ("chat_ids", self.chat_ids.is_some()),
        ];
        present
            .into_iter()
            .filter_map(|(key, is_set)| is_set.then_some(key))
            .collect()
    }
}

/// `[channel.templates]`: minijinja sources, one per event (`subject`: email
/// only, checked in validation).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub code: Option<String>,
    pub linked: Option<String>,
    pub paused: Option<String>,
    pub alert: Option<String>,
    pub resumed: Option<String>,
    pub subject: Option<String>,
}

/// One `[[instance]]`. `serde(flatten)` cannot be combined with
/// `deny_unknown_fields`, so the `[defaults]` keys are repeated here.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub id: Option<Value>,
    pub name: Option<String>,
    pub api_url: Option<String>,
    pub api_token_file: Option<String>,
    pub api_token_env: Option<String>,
    pub api_token_credential: Option<String>,
    pub api_token: Option<RawSecret>,
    pub phone: Option<Value>,
    pub channels: Option<Vec<String>>,
    // overrides of [defaults]
    pub poll_interval: Option<Value>,
    pub linking_poll_interval: Option<Value>,
    pub code_ttl: Option<Value>,
    pub codes_per_episode: Option<Value>,
    pub cooldown: Option<Value>,
    pub request_timeout: Option<Value>,
    pub backoff_max: Option<Value>,
    pub timezone: Option<Value>,
}

impl RawInstance {
    pub fn overrides(&self) -> RawSettings {
        RawSettings {
            poll_interval: self.poll_interval.clone(),
            linking_poll_interval: self.linking_poll_interval.clone(),
            code_ttl: self.code_ttl.clone(),
            codes_per_episode: self.codes_per_episode.clone(),
            cooldown: self.cooldown.clone(),
            request_timeout: self.request_timeout.clone(),
            backoff_max: self.backoff_max.clone(),
            timezone: self.timezone.clone(),
        }
    }
}

/// An inline secret. Deserializes only from a string, straight into a
/// `SecretString`; a value of any other type is rejected WITHOUT echoing it
/// (serde's default message would print e.g. an integer token).
pub(super) struct RawSecret(pub SecretString);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawSecret([REDACTED])")
    }
}

const NOT_A_STRING: &str = "invalid type: a secret must be a string (value not shown)";

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(SecretString::from(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Parses the TOML text. The error is toml's message prefixed with
/// `line L, column C:` and, where it can be told, the key path (e.g.
/// `instance[1].phone:`); toml's source snippet is deliberately dropped
/// because the offending line may hold an inline secret.
pub(super) fn parse(text: &str) -> Result<RawConfig, String> {
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                match key_at(text, span.start) {
                    Some(key) => format!("line {line}, column {column}: {key}: {message}"),
                    None => format!("line {line}, column {column}: {message}"),
                }
            }
            None => message.to_owned(),
        }
    })
}

/// The key path of the line holding byte offset `at`, in the style of the
/// validation messages (`daemon.listen`, `instance[1].phone`): the last table
/// header before it, with `[[array]]` headers counted, and the line's key.
/// `None` when the line is not a plain `key = value` (a header, say).
fn key_at(text: &str, at: usize) -> Option<String> {
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|rest| rest.split("]]").next())
        {
            let name = name.trim().to_owned();
            let index = counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{index}]");
            *index += 1;
        } else if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
        {
            table = scoped_table(name.trim(), &counts);
        }
        if at < end || end == text.len() {
            let key = trimmed.split('=').next()?.trim();
            let plain = !key.is_empty()
                && trimmed.contains('=')
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            return plain.then(|| {
                if table.is_empty() {
                    key.to_owned()
                } else {
                    format!("{table}.{key}")
                }
            });
        }
        offset = end;
    }
    None
}

/// A `[table]` header's path with any `[[array]]` it belongs to numbered:
/// after the second `[[channel]]`, `[channel.templates]` is
/// `channel[1].templates`.
fn scoped_table(name: &str, counts: &std::collections::HashMap<String, usize>) -> String {
    let parts: Vec<&str> = name.split('.').map(str::trim).collect();
    for split in (1..=parts.len()).rev() {
        let head = parts[..split].join(".");
        if let Some(count) = counts.get(&head).filter(|c| **c > 0) {
            let mut out = format!("{head}[{}]", count - 1);
            for part in &parts[split..] {
                out.push('.');
                out.push_str(part);
            }
            return out;
        }
    }
    parts.join(".")
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod key_tests {
    use super::key_at;

    #[test]
    fn keys_are_named_by_table_and_position() {
        let text =
            "[daemon]\nlisten = 7\n[[instance]]\nid = 1\n[[instance]]\nid = 2\nphone = \"x\"\n";
        assert_eq!(
            key_at(text, text.find("7").unwrap()).as_deref(),
            Some("daemon.listen")
        );
        assert_eq!(
            key_at(text, text.find("\"x\"").unwrap()).as_deref(),
            Some("instance[1].phone")
        );
        assert_eq!(key_at(text, 1), None);
    }

    #[test]
    fn sub_tables_of_array_tables_are_numbered() {
        let text = "[[channel]]\nname = \"a\"\n[[channel]]\nname = \"b\"\n\
                    [channel.templates]\ncolour = 1\n[daemon]\nlisten = 2\n";
        assert_eq!(
            key_at(text, text.find("1").unwrap()).as_deref(),
            Some("channel[1].templates.colour")
        );
        assert_eq!(
            key_at(text, text.find("2").unwrap()).as_deref(),
            Some("daemon.listen")
        );
    }
}
