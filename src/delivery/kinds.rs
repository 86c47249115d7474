//! The channel types. Each is a folder holding its config (its keys, their
//! checks, its default rate limit) and its `build()`; here they are listed
//! once. A new channel type is a folder and one line of `channel_types!`.

use std::sync::Arc;
use std::time::Duration;

use super::template::{Style, TemplateOverrides, Templates};
use super::{Channel, console, email, slack, telegram, webhook, whatsapp};
use crate::greenapi::InstanceApi;
use crate::outbound::Egress;
use crate::validation::{KeyError, Keys, Report, SecretContext};

/// A configured channel: what every type has, and its type's own config.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Unique, 1..=64 of `[A-Za-z0-9_.-]` (a metric label).
    pub name: String,
    /// Per-attempt timeout (key `timeout`, default 10s).
    pub attempt_timeout: Duration,
    /// Key `rate_limit_per_minute` (1..=100000); `None`: the type's default.
    pub rate_limit_per_minute: Option<u32>,
    /// Key `[channel.templates]`: message templates overriding the defaults.
    pub templates: TemplateOverrides,
    pub kind: ChannelKind,
}

impl ChannelConfig {
    /// The messages a minute the channel may send (`None`: no limit).
    pub fn rate_limit(&self) -> Option<u32> {
        self.rate_limit_per_minute
            .or_else(|| self.kind.channel_type().default_rate_limit)
    }
}

/// What config validation needs to know of a channel type.
pub struct ChannelType {
    /// The `type` key's value.
    pub name: &'static str,
    /// The keys it takes besides the ones every channel takes.
    pub keys: &'static [&'static str],
    /// `rate_limit_per_minute` when the config sets none.
    pub default_rate_limit: Option<u32>,
    /// Checks its keys (already known to be its own); `Ok(None)` when a
    /// problem was reported, `Err` for a value of the wrong type.
    pub check: fn(&Keys, &CheckContext<'_>, &mut Report) -> Result<Option<ChannelKind>, KeyError>,
}

/// Lists the channel types once: a [`ChannelKind`] variant and a [`TYPES`]
/// entry each, and the dispatch to each type's `TYPE` and `build()`.
macro_rules! channel_types {
    ($($variant:ident => $module:ident),+ $(,)?) => {
        /// One variant per channel type, holding that type's config.
        #[derive(Debug, Clone)]
        pub enum ChannelKind {
            $($variant($module::Config)),+
        }

        /// Every channel type, in the order their keys are listed in messages.
        pub const TYPES: &[&ChannelType] = &[$(&$module::TYPE),+];

        impl ChannelKind {
            pub fn channel_type(&self) -> &'static ChannelType {
                match self {
                    $(ChannelKind::$variant(_) => &$module::TYPE),+
                }
            }

            fn build(
                &self,
                common: &Common<'_>,
                deps: &BuildDeps<'_>,
            ) -> Result<Arc<dyn Channel>, String> {
                match self {
                    $(ChannelKind::$variant(config) => config.build(common, deps)),+
                }
            }
        }
    };
}

channel_types! {
    Webhook => webhook,
    Console => console,
    Telegram => telegram,
    Slack => slack,
    Email => email,
    Whatsapp => whatsapp,
}

/// What a type's check needs besides its keys.
pub struct CheckContext<'a> {
    /// The channel's key path, e.g. `channel[2]`.
    pub prefix: &'a str,
    pub secrets: &'a SecretContext<'a>,
    /// Every instance id the config gives (WhatsApp's `via` names one).
    pub instance_ids: &'a [u64],
}

/// What building a channel needs from outside delivery.
pub struct BuildDeps<'a> {
    /// HTTP channels' client (its CA file and proxies are `egress`'s).
    pub http: &'a reqwest::Client,
    /// What other clients (SMTP) trust besides the built-in roots.
    pub egress: &'a Egress,
    /// The vendor API of a configured instance (WhatsApp sends through one).
    pub instance_api: &'a dyn Fn(u64) -> Option<InstanceApi>,
}

#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct BuildError {
    pub channel: String,
    pub message: String,
}

impl ChannelKind {
    /// The `type` key's value.
    pub fn type_name(&self) -> &'static str {
        self.channel_type().name
    }
}

/// What every channel type's `build()` gets.
pub struct Common<'a> {
    pub name: &'a str,
    pub timeout: Duration,
    templates: &'a TemplateOverrides,
}

impl Common<'_> {
    /// The channel's templates, compiled for its markup `style`.
    pub fn templates(&self, style: Style) -> Result<Templates, String> {
        Templates::new(self.name, style, self.templates)
    }
}

impl ChannelConfig {
    /// The running channel.
    pub fn build(&self, deps: &BuildDeps<'_>) -> Result<Arc<dyn Channel>, BuildError> {
        let common = Common {
            name: &self.name,
            timeout: self.attempt_timeout,
            templates: &self.templates,
        };
        self.kind
            .build(&common, deps)
            .map_err(|message| BuildError {
                channel: self.name.clone(),
                message,
            })
    }
}
