//! The daemon's configuration: the TOML file read, checked with precise
//! messages, its secrets loaded, and a digest of it.
//!
//! Entry points are [`load`] (real process environment) and [`load_with`]
//! (any [`Environment`], used by tests). Checking collects every problem it
//! finds; a single problem is reported as [`ConfigError::Invalid`], several as
//! [`ConfigError::Multiple`] (one per line when displayed).
//!
//! Every message has the form `<file>: <place>: <what is wrong>`, where the
//! place names an item by its name and line (`instance "sales-line" (line
//! 26): phone`) and a section's key by its path and line (`daemon.listen
//! (line 3)`). [`Issue::key`] keeps the plain key path (`instance[0].phone`).
//!
//! Each part is checked in its own file (`daemon.rs`, `settings.rs`,
//! `instances.rs`, `channels.rs`); a channel type's own keys are checked by
//! that type's config in `delivery`.
//!
//! Secrets (API tokens, the admin token, webhook signing keys) are held in
//! [`secrecy`] containers and never appear in errors, warnings or `Debug`.

mod channels;
mod daemon;
mod digests;
mod instances;
mod pieces;
mod places;
mod raw;
mod settings;
mod time_intervals;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest, Sha256};

use crate::greenapi::Endpoint;
use crate::validation::{KeyError, Report, SecretContext, read_regular};

pub use crate::delivery::email::Config as EmailConfig;
pub use crate::delivery::email::EmailTls;
pub use crate::delivery::slack::Config as SlackConfig;
pub use crate::delivery::telegram::Config as TelegramConfig;
pub use crate::delivery::webhook::Config as WebhookConfig;
pub use crate::delivery::webhook::{InvalidWebhookSecret, WebhookSecret};
pub use crate::delivery::whatsapp::Config as WhatsappConfig;
pub use crate::delivery::{ChannelConfig, ChannelKind, TemplateOverrides};
/// The environment variables relinkd takes its proxies from (tests and the
/// benchmark start their processes without them).
pub use crate::outbound::PROXY_VARIABLES;
pub use crate::outbound::{CaFile, Egress, Proxies, ProxyUrl};
pub use crate::validation::{Environment, Issue, ProcessEnv};

/// Why a config could not be loaded. Display: `<file>: <place>: <what is wrong>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// TOML syntax, unknown key or wrong type; `message` starts with the
    /// place, as a validation problem's does (`channel "ops" (line 7):
    /// scret:`), the column added for a syntax error, or with `line L,
    /// column C:` where no key is there.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Exactly one validation problem.
    #[error("{}: {issue}", path.display())]
    Invalid { path: PathBuf, issue: Issue },
    /// Several validation problems, displayed one per line, each as
    /// `<file>: <place>: <what is wrong>`. (Added to the agreed interface
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
            ConfigError::Invalid { issue, .. } => vec![issue.clone()],
            ConfigError::Multiple { errors, .. } => errors.clone(),
            ConfigError::Read { .. } | ConfigError::Parse { .. } => Vec::new(),
        }
    }

    /// The error for what checking found (`Ok` if nothing).
    fn from_issues(path: &Path, mut issues: Vec<Issue>) -> Result<(), Self> {
        let path = path.to_path_buf();
        match issues.len() {
            0 => Ok(()),
            1 => Err(ConfigError::Invalid {
                path,
                issue: issues.swap_remove(0),
            }),
            _ => Err(ConfigError::Multiple {
                path,
                errors: issues,
            }),
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
    /// Shared with the fleet's supervisors' records, so a fleet's instances
    /// are held once, not once here and once there.
    pub instances: Vec<Arc<InstanceConfig>>,
    /// `[[digest]]`s: fleet summaries on a schedule.
    pub digests: Vec<DigestConfig>,
    /// Each as `<file>: <place>: <message>`: inline secrets,
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
        self.instances.iter().find(|i| i.id == id).map(|i| &**i)
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
    /// Bearer token of forwarded GREEN-API notifications (`POST
    /// /hooks/greenapi`); `None`: that endpoint is off.
    pub greenapi_webhook_token: Option<SecretString>,
    /// Default 64, 1..=10000.
    pub max_concurrent_requests: usize,
    /// Connections the admin listener holds at once; default 256, 1..=100000.
    pub max_connections: usize,
    /// Outbound connections' extra CA certificates (`ca_file`) and the
    /// environment's proxies. Empty from [`load_daemon_section`]: the admin
    /// commands talk to the daemon only.
    pub egress: Egress,
}

/// One `[[digest]]`: when, to whom, and whether a quiet fleet gets one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    pub name: String,
    /// Cron with seconds in `timezone` (default UTC).
    pub schedule: crate::calendar::CronSchedule,
    pub channels: Vec<String>,
    pub send: DigestSend,
}

/// `send`: every time, or only when something is unlinked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestSend {
    /// Also a heartbeat: relinkd is alive.
    #[default]
    Always,
    WhenUnlinked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// idInstance.
    pub id: u64,
    pub name: String,
    /// No trailing slash. Shared by the instances of one vendor host.
    pub api_url: Arc<str>,
    /// One copy, shared with the instance's vendor handle.
    pub api_token: Arc<SecretString>,
    /// Digits only, 7..=15 digits.
    pub phone: u64,
    /// Names of configured channels, non-empty; shared by the instances
    /// with the same list.
    pub channels: Arc<[String]>,
    /// Shared by instances whose settings are alike (most are: one
    /// `[defaults]`), and with their supervisors.
    pub settings: Arc<InstanceSettings>,
}

impl InstanceConfig {
    /// Whether `other` reaches the vendor as this one does (the same
    /// endpoint); compared in place, as a reload does for every instance.
    pub fn reaches_vendor_as(&self, other: &InstanceConfig) -> bool {
        self.api_url == other.api_url
            && self.id == other.id
            && self.api_token.expose_secret() == other.api_token.expose_secret()
            && self.settings.request_timeout == other.settings.request_timeout
    }

    /// How the vendor is reached for this instance.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            api_url: self.api_url.clone(),
            id: self.id,
            token: self.api_token.clone(),
            timeout: self.settings.request_timeout,
        }
    }
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
    /// When codes may be requested (`linking_windows`); empty: always.
    pub linking_windows: crate::calendar::Calendar,
    /// An instance `starting` this long is rebooted once (at most once per
    /// `cooldown`); `None`: never.
    pub reboot_stuck_after: Option<Duration>,
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
            linking_windows: crate::calendar::Calendar::default(),
            reboot_stuck_after: None,
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
    let text = Text::read(path)?;
    let raw = text.parse()?;
    let mut report = Report::new();
    let ctx = secret_context(path, env);

    let mut daemon = daemon::check(&raw.daemon, &ctx, &mut report);
    daemon.egress = daemon::egress(&raw.daemon, &ctx, &mut report);
    let intervals = time_intervals::check(&raw.time_intervals, crate::clock::now(), &mut report);
    let defaults = settings::check(
        "defaults",
        &raw.defaults,
        &InstanceSettings::default(),
        &intervals,
        &mut report,
    );
    let channels = channels::check(&raw.channels, &raw.instances, &ctx, &mut report)
        .map_err(|e| text.key_error(e))?;
    let instances = instances::check(
        &raw.instances,
        &raw.channels,
        &defaults,
        &intervals,
        &ctx,
        &mut report,
    );
    if raw.instances.is_empty() {
        report.warn(
            "instance",
            "no [[instance]] is configured; relinkd will watch nothing",
        );
    }
    channels::warn_unused(&raw.channels, &raw.instances, &mut report);
    let digests = digests::check(&raw.digests, &raw.channels, &mut report);

    let (issues, warnings) = text.placed(report);
    ConfigError::from_issues(path, issues)?;
    let warnings = warnings
        .iter()
        .map(|w| format!("{}: {w}", path.display()))
        .collect();
    Ok(Config {
        path: path.to_path_buf(),
        digest: text.digest(),
        daemon,
        // With no issues every entry is Some.
        channels: channels.into_iter().flatten().collect(),
        instances: instances.into_iter().flatten().map(Arc::new).collect(),
        digests,
        warnings,
    })
}

/// Reads only the `[daemon]` section of the config at `path`, for commands
/// that talk to a running daemon (`relinkd status`, `relinkd relink`): they
/// need the listener and the admin token, not the fleet's secrets (which an
/// operator's shell may not be able to read). The rest of the file must still
/// parse; `ca_file` and the proxy variables are not read (those commands
/// do not use them). With `admin_token` false the admin token is not read (the caller
/// has it from elsewhere, e.g. `--admin-token-file`).
pub fn load_daemon_section(
    path: &Path,
    env: &dyn Environment,
    admin_token: bool,
) -> Result<DaemonConfig, ConfigError> {
    let text = Text::read(path)?;
    let mut raw = text.parse()?;
    if !admin_token {
        raw.daemon.admin_token_file = None;
        raw.daemon.admin_token_env = None;
        raw.daemon.admin_token_credential = None;
        raw.daemon.admin_token = None;
    }
    let mut report = Report::new();
    let daemon = daemon::check(&raw.daemon, &secret_context(path, env), &mut report);
    ConfigError::from_issues(path, text.placed(report).0)?;
    Ok(daemon)
}

/// Relative `*_file` paths resolve against the config file's directory.
fn secret_context<'a>(path: &'a Path, env: &'a dyn Environment) -> SecretContext<'a> {
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    SecretContext::new(config_dir, env)
}

/// Largest config file read (50,000 instances take about 8 MB).
const MAX_CONFIG_BYTES: u64 = 256 << 20;

/// The config file's text, wiped from memory when dropped (it may hold
/// inline secrets).
struct Text {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Text {
    /// A regular file, never a FIFO or a device.
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let bytes = read_regular(path, MAX_CONFIG_BYTES)
            .map(|(bytes, _mode)| bytes)
            .map_err(|problem| ConfigError::Read {
                path: path.to_path_buf(),
                source: match problem {
                    crate::validation::FileProblem::Io(e) => e,
                    other => io::Error::other(other.to_string()),
                },
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn str(&self) -> Result<&str, ConfigError> {
        std::str::from_utf8(&self.bytes).map_err(|e| ConfigError::Parse {
            path: self.path.clone(),
            message: format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
        })
    }

    /// The report's problems and warnings, each placed in this file.
    fn placed(&self, report: Report) -> (Vec<Issue>, Vec<Issue>) {
        let (mut issues, mut warnings) = report.finish();
        if issues.is_empty() && warnings.is_empty() {
            // Placing parses the file again: not for nothing.
            return (issues, warnings);
        }
        if let Ok(text) = self.str() {
            let places = places::Places::of(text);
            for issue in issues.iter_mut().chain(warnings.iter_mut()) {
                issue.place = places.place(&issue.key);
            }
        }
        (issues, warnings)
    }

    fn parse(&self) -> Result<raw::RawConfig, ConfigError> {
        pieces::parse(self.str()?).map_err(|message| ConfigError::Parse {
            path: self.path.clone(),
            message,
        })
    }

    /// A value of the wrong type, reported like any TOML error: where it is.
    fn key_error(&self, error: KeyError) -> ConfigError {
        let message = match self.str() {
            Ok(text) => places::located(text, error.span.start, &error.message),
            Err(_) => format!("{}: {}", error.key, error.message),
        };
        ConfigError::Parse {
            path: self.path.clone(),
            message,
        }
    }

    fn digest(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        secrecy::zeroize::Zeroize::zeroize(&mut self.bytes);
    }
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
