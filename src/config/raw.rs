//! The serde model of the TOML file, as written: every field optional so that
//! validation can name a missing key by its path, unknown keys rejected at
//! every level. Numbers and durations are kept as raw TOML values so that
//! validation can say precisely what is wrong with them.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::{Spanned, Value};

use super::places::located;
use crate::delivery::TemplateOverrides;
use crate::validation::{Keys, RawSecret};

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
    #[serde(default, rename = "time_interval")]
    pub time_intervals: Vec<RawTimeInterval>,
    #[serde(default, rename = "digest")]
    pub digests: Vec<RawDigest>,
}

/// One `[[digest]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDigest {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub channels: Option<Vec<String>>,
    pub send: Option<String>,
}

/// One `[[time_interval]]`, Alertmanager's fields as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeInterval {
    pub name: Option<String>,
    pub location: Option<String>,
    pub times: Option<Vec<RawTimeRange>>,
    pub weekdays: Option<Vec<String>>,
    pub days_of_month: Option<Vec<String>>,
    pub months: Option<Vec<String>>,
    pub years: Option<Vec<String>>,
}

/// `{ start_time = "08:00", end_time = "20:00" }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeRange {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
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
    pub greenapi_webhook_token_file: Option<String>,
    pub greenapi_webhook_token_env: Option<String>,
    pub greenapi_webhook_token_credential: Option<String>,
    pub greenapi_webhook_token: Option<RawSecret>,
    pub max_concurrent_requests: Option<Value>,
    pub max_connections: Option<Value>,
    pub ca_file: Option<String>,
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
    pub linking_windows: Option<Value>,
    pub reboot_stuck_after: Option<Value>,
}

/// One `[[channel]]`: the keys every channel takes, and the rest as written
/// (the channel's type reads those). A key no type takes is kept to be
/// reported where it is.
#[derive(Debug, Default)]
pub(super) struct RawChannel {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub timeout: Option<Value>,
    pub rate_limit_per_minute: Option<Value>,
    pub templates: Option<TemplateOverrides>,
    /// The type's own keys (and other types' keys, to be refused by name).
    pub keys: Keys,
    /// Keys no channel type takes, with where they are.
    pub unknown: Vec<Spanned<String>>,
}

/// The keys every channel takes, as serde lists them.
const COMMON_KEYS: [&str; 5] = [
    "name",
    "type",
    "timeout",
    "rate_limit_per_minute",
    "templates",
];

/// Every key a `[[channel]]` may have: the common ones, then each type's in
/// the order of `delivery::TYPES`.
pub(super) fn channel_keys() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = COMMON_KEYS.to_vec();
    for kind in crate::delivery::TYPES {
        for key in kind.keys {
            if !all.contains(key) {
                all.push(key);
            }
        }
    }
    all
}

impl<'de> Deserialize<'de> for RawChannel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChannelVisitor;
        impl<'de> Visitor<'de> for ChannelVisitor {
            type Value = RawChannel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [[channel]] table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawChannel, A::Error> {
                let known = channel_keys();
                let mut channel = RawChannel::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.get_ref().as_str() {
                        "name" => channel.name = map.next_value()?,
                        "type" => channel.kind = map.next_value()?,
                        "timeout" => channel.timeout = map.next_value()?,
                        "rate_limit_per_minute" => {
                            channel.rate_limit_per_minute = map.next_value()?;
                        }
                        "templates" => channel.templates = map.next_value()?,
                        other if known.contains(&other) => {
                            let value = map.next_value::<Spanned<Value>>()?;
                            channel.keys.push(key.into_inner(), value);
                        }
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            channel.unknown.push(key);
                        }
                    }
                }
                Ok(channel)
            }
        }
        deserializer.deserialize_map(ChannelVisitor)
    }
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
    pub linking_windows: Option<Value>,
    pub reboot_stuck_after: Option<Value>,
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
            linking_windows: self.linking_windows.clone(),
            reboot_stuck_after: self.reboot_stuck_after.clone(),
        }
    }
}

/// Parses the TOML text whole. The error is toml's message after its
/// place, as validation places its problems (`channel "ops" (line 7):
/// scret: ...`); toml's source snippet is deliberately dropped because the
/// offending line may hold an inline secret.
pub(super) fn parse(text: &str) -> Result<RawConfig, String> {
    let raw = toml::from_str::<RawConfig>(text).map_err(|e| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => located(text, span.start, message),
            None => message.to_owned(),
        }
    })?;
    checked(raw, text)
}

/// `raw`, parsed from `text`, unless a channel has a key no channel type
/// takes: that is reported as serde reports any unknown key.
pub(super) fn checked(raw: RawConfig, text: &str) -> Result<RawConfig, String> {
    if let Some(key) = raw.channels.iter().flat_map(|c| &c.unknown).next() {
        let expected: Vec<String> = channel_keys().iter().map(|k| format!("`{k}`")).collect();
        let message = format!(
            "unknown field `{}`, expected one of {}",
            key.get_ref(),
            expected.join(", ")
        );
        return Err(located(text, key.span().start, &message));
    }
    Ok(raw)
}
