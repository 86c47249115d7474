//! The daemon's configuration: the TOML model, validation with precise
//! messages, secret loading and a digest of the file.
//!
//! Entry points are [`load`] (real process environment) and [`load_with`]
//! (any [`Environment`], used by tests). Validation collects every problem it
//! finds; a single problem is reported as [`ConfigError::Invalid`], several as
//! [`ConfigError::Multiple`] (one per line when displayed).
//!
//! Every message has the form `<file>: <key path>: <what is wrong>`, where the
//! key path uses 0-based positions for array tables: `instance[1].phone`,
//! `channel[0].url`, `defaults.cooldown`, `daemon.listen`.
//!
//! Secrets (API tokens, the admin token, webhook signing keys) are held in
//! [`secrecy`] containers and never appear in errors, warnings or `Debug`.

mod files;
mod raw;
mod secrets;
mod validate;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

pub use secrets::InvalidWebhookSecret;

/// Where environment variables come from: the process environment for real,
/// a map in tests. `$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY` and every
/// `*_env` secret are read through it.
pub trait Environment {
    /// The value of `name`, or `None` when unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment (`std::env::var`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: BuildHasher> Environment for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// One validation problem: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// e.g. `instance[2].phone`
    pub key: String,
    /// e.g. `must be 7 to 15 digits (got 5)`
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a config could not be loaded. Display: `<file>: <key path>: <what is wrong>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// TOML syntax, unknown key or wrong type; `message` starts with
    /// `line L, column C:`.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Exactly one validation problem.
    #[error("{}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// Several validation problems, displayed one per line, each as
    /// `<file>: <key path>: <what is wrong>`. (Added to the agreed interface
    /// so that `check-config` can report everything at once.)
    #[error("{}", display_many(path, errors))]
    Multiple { path: PathBuf, errors: Vec<Issue> },
}

fn display_many(path: &Path, errors: &[Issue]) -> String {
    let mut out = String::new();
    for (i, issue) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{}: {issue}", path.display()));
    }
    out
}

impl ConfigError {
    /// The config file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::Parse { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Multiple { path, .. } => path,
        }
    }

    /// The validation problems (empty for read and parse errors).
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            ConfigError::Invalid { key, message, .. } => vec![Issue {
                key: key.clone(),
                message: message.clone(),
            }],
            ConfigError::Multiple { errors, .. } => errors.clone(),
            ConfigError::Read { .. } | ConfigError::Parse { .. } => Vec::new(),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Lowercase hex sha256 of the config file's bytes.
    pub digest: String,
    pub daemon: DaemonConfig,
    pub channels: Vec<ChannelConfig>,
    pub instances: Vec<InstanceConfig>,
    /// Each as `<file>: <key path>: <message>`: inline secrets,
    /// group/world-readable secret files, clamped intervals, an empty fleet,
    /// unused channels.
    pub warnings: Vec<String>,
}

impl Config {
    /// The channel called `name`, if configured.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// The instance with this `idInstance`, if configured.
    pub fn instance(&self, id: u64) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Metrics + admin API; default 127.0.0.1:7788.
    pub listen: SocketAddr,
    /// Default `$STATE_DIRECTORY` (first entry), else `./state`.
    pub state_dir: PathBuf,
    pub log_format: LogFormat,
    /// Bearer token for POST endpoints.
    pub admin_token: Option<SecretString>,
    /// Default 64, 1..=10000.
    pub max_concurrent_requests: usize,
    /// Connections the admin listener holds at once; default 256, 1..=100000.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

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

/// `[channel.templates]`: minijinja templates (validated at load), one per
/// event; `subject` only for email channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOverrides {
    pub code: Option<String>,
    pub linked: Option<String>,
    pub paused: Option<String>,
    pub alert: Option<String>,
    pub resumed: Option<String>,
    pub subject: Option<String>,
}

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
pub enum ChannelKind {
    Webhook {
        /// Starts with http:// or https://.
        url: String,
        secret: Option<WebhookSecret>,
    },
    Console,
    Telegram {
        /// From `bot_token_file` / `_env` / `_credential` / `bot_token`.
        bot_token: SecretString,
        /// A numeric chat id (may be negative) or `@channelusername`.
        chat_id: String,
        /// Default `https://api.telegram.org`; no trailing slash.
        api_base: String,
    },
    Slack {
        /// Incoming-webhook URL (a secret): `url_file` / `_env` / `_credential` / `url`.
        url: SecretString,
    },
    Email {
        smtp_host: String,
        /// Default by `tls`: 25, 587, 465.
        smtp_port: u16,
        /// Key `tls`: "none" | "starttls" (default) | "tls".
        tls: EmailTls,
        username: Option<String>,
        /// `password_file` / `_env` / `_credential` / `password`.
        password: Option<SecretString>,
        /// A mailbox, e.g. `relinkd <relinkd@example.com>`.
        from: String,
        /// Non-empty list of mailboxes.
        to: Vec<String>,
    },
    Whatsapp {
        /// A configured instance that sends the messages.
        via: u64,
        /// `79001234567@c.us` (a person) or `...@g.us` (a group).
        chat_ids: Vec<String>,
    },
}

impl ChannelKind {
    /// The `type` key's value.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Console => "console",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Email { .. } => "email",
            ChannelKind::Whatsapp { .. } => "whatsapp",
        }
    }
}

/// A Standard Webhooks signing key: the decoded bytes of `whsec_<base64>`.
/// `Debug` never shows it. Cloning shares the key (no copy of the bytes).
#[derive(Clone)]
pub struct WebhookSecret(Arc<SecretBox<Vec<u8>>>);

impl WebhookSecret {
    /// Wraps already-decoded key bytes.
    pub fn new(key: Vec<u8>) -> Self {
        WebhookSecret(Arc::new(SecretBox::new(Box::new(key))))
    }

    /// Decodes `whsec_<base64>` (or bare base64; standard alphabet, padding
    /// optional). The error never contains the input.
    pub fn decode(text: &str) -> Result<Self, InvalidWebhookSecret> {
        secrets::decode_webhook_secret(text)
    }

    /// The key bytes, for HMAC.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// idInstance.
    pub id: u64,
    pub name: String,
    /// No trailing slash.
    pub api_url: String,
    pub api_token: SecretString,
    /// Digits only, 7..=15 digits.
    pub phone: u64,
    /// Names of configured channels, non-empty.
    pub channels: Vec<String>,
    pub settings: InstanceSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    pub poll_interval: Duration,
    pub linking_poll_interval: Duration,
    pub code_ttl: Duration,
    pub codes_per_episode: u32,
    pub cooldown: Duration,
    pub request_timeout: Duration,
    pub backoff_max: Duration,
    /// IANA time zone (`timezone`, e.g. "Europe/London") in which messages
    /// also show times; `None`: UTC only.
    pub timezone: Option<String>,
}

impl Default for InstanceSettings {
    /// The built-in defaults (what an empty `[defaults]` gives).
    fn default() -> Self {
        InstanceSettings {
            poll_interval: Duration::from_secs(60),
            linking_poll_interval: Duration::from_secs(5),
            code_ttl: Duration::from_secs(150),
            codes_per_episode: 4,
            cooldown: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(40),
            backoff_max: Duration::from_secs(300),
            timezone: None,
        }
    }
}

/// Reads and validates the config at `path`, loading secrets from the real
/// process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &ProcessEnv)
}

/// Reads and validates the config at `path`, reading environment variables
/// (`*_env` secrets, `$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY`) from `env`.
pub fn load_with(path: &Path, env: &dyn Environment) -> Result<Config, ConfigError> {
    let bytes = read_config_file(path)?;
    let digest = sha256_hex(&bytes);
    let result = parse_and_validate(path, &bytes, digest, env);
    // The text may hold inline secrets: do not leave it lying in freed memory.
    let mut bytes = bytes;
    secrecy::zeroize::Zeroize::zeroize(&mut bytes);
    result
}

/// Reads only the `[daemon]` section of the config at `path`, for commands
/// that talk to a running daemon (`relinkd status`, `relinkd relink`): they
/// need the listener and the admin token, not the fleet's secrets (which an
/// operator's shell may not be able to read). The rest of the file must still
/// parse. With `admin_token` false the admin token is not read (the caller
/// has it from elsewhere, e.g. `--admin-token-file`).
pub fn load_daemon_section(
    path: &Path,
    env: &dyn Environment,
    admin_token: bool,
) -> Result<DaemonConfig, ConfigError> {
    let bytes = read_config_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let mut raw = raw::parse(text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    if !admin_token {
        raw.daemon.admin_token_file = None;
        raw.daemon.admin_token_env = None;
        raw.daemon.admin_token_credential = None;
        raw.daemon.admin_token = None;
    }
    let result = validate::build_daemon(&raw, path, env);
    let mut bytes = bytes;
    secrecy::zeroize::Zeroize::zeroize(&mut bytes);
    result
}

/// Largest config file read (50,000 instances take about 8 MB).
const MAX_CONFIG_BYTES: u64 = 256 << 20;

/// The config file's bytes: a regular file, never a FIFO or a device.
fn read_config_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    files::read_regular(path, MAX_CONFIG_BYTES)
        .map(|(bytes, _mode)| bytes)
        .map_err(|problem| ConfigError::Read {
            path: path.to_path_buf(),
            source: match problem {
                files::FileProblem::Io(e) => e,
                other => io::Error::other(other.to_string()),
            },
        })
}

fn parse_and_validate(
    path: &Path,
    bytes: &[u8],
    digest: String,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let raw = raw::parse(text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    validate::build(raw, path, digest, env)
}

/// Lowercase hex sha256 of `bytes` (the config digest).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}
