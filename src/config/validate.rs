//! Turns the raw serde model into a [`Config`]: defaults, per-key checks,
//! cross-references (unique ids and names, channel references), secrets.
//! Every problem is recorded with its key path; all of them are reported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use secrecy::ExposeSecret as _;

use super::raw::{RawChannel, RawConfig, RawDaemon, RawInstance, RawSettings, RawTemplates};
use super::secrets::{self, SecretContext, Sources};
use super::values;
use super::{
    ChannelConfig, ChannelKind, Config, ConfigError, DaemonConfig, EmailTls, Environment,
    InstanceConfig, InstanceSettings, Issue, LogFormat, TemplateOverrides,
};

const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 7788);
const DEFAULT_STATE_DIR: &str = "./state";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 256;
const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon never calls the vendor more than once per second per instance.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Below these, `code_ttl` and `cooldown` are warned about (tests and
/// trials use short values; production must not).
const SHORT_CODE_TTL: Duration = Duration::from_secs(30);
const SHORT_COOLDOWN: Duration = Duration::from_secs(5 * 60);
/// More codes than this in any hour, for one instance, is warned about:
/// WhatsApp locks numbers out after about seven codes in a row.
const MAX_CODES_PER_HOUR: u64 = 7;
const CHANNEL_TYPES: &str =
    "\"webhook\", \"console\", \"telegram\", \"slack\", \"email\", \"whatsapp\"";
/// The keys every channel type takes.
const COMMON_CHANNEL_KEYS: [&str; 5] = [
    "name",
    "type",
    "timeout",
    "rate_limit_per_minute",
    "templates",
];
/// The keys each channel type takes besides [`COMMON_CHANNEL_KEYS`]. Any
/// other key of [`RawChannel`] is an error naming the key and the type.
const TYPE_KEYS: [(&str, &[&str]); 6] = [
    (
        "webhook",
        &[
            "url",
            "secret_file",
            "secret_env",
            "secret_credential",
            "secret",
        ],
    ),
    ("console", &[]),
    (
        "telegram",
        &[
            "bot_token_file",
            "bot_token_env",
            "bot_token_credential",
            "bot_token",
            "chat_id",
            "api_base",
        ],
    ),
    ("slack", &["url_file", "url_env", "url_credential", "url"]),
    (
        "email",
        &[
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
    ),
    ("whatsapp", &["via", "chat_ids"]),
];
const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";
const MAX_RATE_LIMIT_PER_MINUTE: i64 = 100_000;
const SLACK_INLINE_WARNING: &str = "the Slack webhook URL is a secret (anyone who has it can post \
     to the channel) and is written inline in the config file; use url_file or url_credential \
     instead";

/// Problems and warnings found while validating.
pub(super) struct Report {
    file: String,
    issues: Vec<Issue>,
    warnings: Vec<String>,
}

impl Report {
    fn new(path: &Path) -> Self {
        Report {
            file: path.display().to_string(),
            issues: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn warn(&mut self, key: &str, message: &str) {
        self.warnings
            .push(format!("{}: {key}: {message}", self.file));
    }

    /// Records `result`'s error under `key`; returns the value if any.
    fn check<T>(&mut self, key: impl Into<String>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }
}

pub(super) fn build(
    raw: RawConfig,
    path: &Path,
    digest: String,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    let mut report = Report::new(path);
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ctx = SecretContext { config_dir, env };

    let daemon = daemon(&raw.daemon, &ctx, &mut report);
    let defaults = settings(
        "defaults",
        &raw.defaults,
        &InstanceSettings::default(),
        &mut report,
    );
    let channels = channels(&raw.channels, &raw.instances, &ctx, &mut report);
    let instances = instances(&raw.instances, &raw.channels, &defaults, &ctx, &mut report);

    if raw.instances.is_empty() {
        report.warn(
            "instance",
            "no [[instance]] is configured; relinkd will watch nothing",
        );
    }
    for (i, channel) in raw.channels.iter().enumerate() {
        let Some(name) = channel.name.as_deref() else {
            continue;
        };
        let used = raw
            .instances
            .iter()
            .any(|inst| inst.channels.iter().flatten().any(|c| c == name));
        if !used && !raw.instances.is_empty() {
            report.warn(
                &format!("channel[{i}]"),
                &format!("channel {name:?} is not used by any instance"),
            );
        }
    }

    let Report {
        mut issues,
        warnings,
        ..
    } = report;
    let path = path.to_path_buf();
    if issues.is_empty() {
        return Ok(Config {
            path,
            digest,
            daemon,
            // With no issues every entry is Some.
            channels: channels.into_iter().flatten().collect(),
            instances: instances.into_iter().flatten().collect(),
            warnings,
        });
    }
    if issues.len() > 1 {
        return Err(ConfigError::Multiple {
            path,
            errors: issues,
        });
    }
    let Issue { key, message } = issues.swap_remove(0);
    Err(ConfigError::Invalid { path, key, message })
}

/// Validates the `[daemon]` section alone (see `load_daemon_section`).
pub(super) fn build_daemon(
    raw: &RawConfig,
    path: &Path,
    env: &dyn Environment,
) -> Result<DaemonConfig, ConfigError> {
    let mut report = Report::new(path);
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ctx = SecretContext { config_dir, env };
    let daemon = daemon(&raw.daemon, &ctx, &mut report);
    let path = path.to_path_buf();
    match report.issues.len() {
        0 => Ok(daemon),
        1 => {
            let Issue { key, message } = report.issues.swap_remove(0);
            Err(ConfigError::Invalid { path, key, message })
        }
        _ => Err(ConfigError::Multiple {
            path,
            errors: report.issues,
        }),
    }
}

fn daemon(raw: &RawDaemon, ctx: &SecretContext<'_>, report: &mut Report) -> DaemonConfig {
    let default_listen = SocketAddr::from(DEFAULT_LISTEN);
    let listen = match raw.listen.as_deref() {
        Some(text) => report
            .check("daemon.listen", values::socket_addr(text))
            .unwrap_or(default_listen),
        None => default_listen,
    };

    let state_dir = match raw.state_dir.as_deref() {
        Some("") => {
            report.error("daemon.state_dir", "must not be empty");
            PathBuf::from(DEFAULT_STATE_DIR)
        }
        Some(dir) => PathBuf::from(dir),
        None => ctx
            .env
            .var("STATE_DIRECTORY")
            .and_then(|v| {
                v.split(':')
                    .next()
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
    };

    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            report.error(
                "daemon.log_format",
                format!("must be \"text\" or \"json\" (got {other:?})"),
            );
            LogFormat::Text
        }
    };

    let sources = Sources {
        base: "admin_token",
        file: raw.admin_token_file.as_deref(),
        env: raw.admin_token_env.as_deref(),
        credential: raw.admin_token_credential.as_deref(),
        inline: raw.admin_token.as_ref().map(|s| &s.0),
        inline_warning: None,
    };
    let admin_token = secrets::resolve("daemon", &sources, ctx, report)
        .ok()
        .flatten()
        .map(|loaded| loaded.value);

    let max_concurrent_requests = match &raw.max_concurrent_requests {
        Some(value) => report
            .check(
                "daemon.max_concurrent_requests",
                values::integer(value, 1, 10_000),
            )
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS),
        None => DEFAULT_MAX_CONCURRENT_REQUESTS,
    };

    let max_connections = match &raw.max_connections {
        Some(value) => report
            .check("daemon.max_connections", values::integer(value, 1, 100_000))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    };

    DaemonConfig {
        listen,
        state_dir,
        log_format,
        admin_token,
        max_concurrent_requests,
        max_connections,
    }
}

/// Applies the keys present in `raw` (under `prefix`, e.g. `defaults` or
/// `instance[2]`) on top of `base`. Invalid keys are reported and left at
/// their `base` value.
fn settings(
    prefix: &str,
    raw: &RawSettings,
    base: &InstanceSettings,
    report: &mut Report,
) -> InstanceSettings {
    let mut out = base.clone();
    let mut duration = |name: &str, value: &Option<Value>, slot: &mut Duration, floor: bool| {
        let Some(value) = value else { return };
        let key = format!("{prefix}.{name}");
        if let Some(d) = report.check(key.as_str(), values::duration(value)) {
            if floor && d < MIN_POLL_INTERVAL {
                report.warn(
                    &key,
                    &format!(
                        "{} is below the 1s minimum (relinkd never calls the API more than \
                         once per second per instance); using 1s",
                        humantime::format_duration(d)
                    ),
                );
                *slot = MIN_POLL_INTERVAL;
            } else {
                *slot = d;
            }
        }
    };
    duration(
        "poll_interval",
        &raw.poll_interval,
        &mut out.poll_interval,
        true,
    );
    duration(
        "linking_poll_interval",
        &raw.linking_poll_interval,
        &mut out.linking_poll_interval,
        true,
    );
    duration("code_ttl", &raw.code_ttl, &mut out.code_ttl, false);
    duration("cooldown", &raw.cooldown, &mut out.cooldown, false);
    duration(
        "request_timeout",
        &raw.request_timeout,
        &mut out.request_timeout,
        false,
    );
    duration("backoff_max", &raw.backoff_max, &mut out.backoff_max, false);
    let budget_keys = [
        ("code_ttl", &raw.code_ttl, out.code_ttl),
        ("cooldown", &raw.cooldown, out.cooldown),
    ];
    for (name, given, value) in budget_keys {
        if given.is_some() && value < Duration::from_secs(1) {
            report.error(
                format!("{prefix}.{name}"),
                format!(
                    "must be at least 1s (got {}): shorter would let relinkd ask for linking \
                     codes as fast as the vendor answers, and WhatsApp locks the number out",
                    humantime::format_duration(value)
                ),
            );
        }
    }
    if let Some(value) = &raw.codes_per_episode
        && let Some(n) = report.check(
            format!("{prefix}.codes_per_episode"),
            values::codes_per_episode(value),
        )
    {
        out.codes_per_episode = n;
    }
    if let Some(value) = &raw.timezone
        && let Some(zone) = report.check(format!("{prefix}.timezone"), values::timezone(value))
    {
        out.timezone = Some(zone);
    }
    // Said where the budget is written, so 50,000 instances inheriting
    // [defaults] give one warning, not 50,000.
    if raw.code_ttl.is_some() || raw.cooldown.is_some() || raw.codes_per_episode.is_some() {
        warn_about_the_lockout_budget(prefix, &out, report);
    }
    out
}

/// Settings that pass validation but spend WhatsApp's pairing budget
/// faster than it tolerates: warnings, not errors (trials use short values).
fn warn_about_the_lockout_budget(prefix: &str, s: &InstanceSettings, report: &mut Report) {
    if s.code_ttl >= Duration::from_secs(1) && s.code_ttl < SHORT_CODE_TTL {
        report.warn(
            &format!("{prefix}.code_ttl"),
            &format!(
                "{} is far shorter than a code lives (about 2.5 minutes): each new code \
                 invalidates the one an admin may still be typing; use 150s outside tests",
                humantime::format_duration(s.code_ttl)
            ),
        );
    }
    if s.cooldown >= Duration::from_secs(1) && s.cooldown < SHORT_COOLDOWN {
        report.warn(
            &format!("{prefix}.cooldown"),
            &format!(
                "{} is short: WhatsApp locks a number out of linking for hours after about 7 \
                 codes in a row; use 1h outside tests",
                humantime::format_duration(s.cooldown)
            ),
        );
    }
    let per_hour = most_codes_in_an_hour(s);
    if per_hour > MAX_CODES_PER_HOUR {
        report.warn(
            prefix,
            &format!(
                "codes_per_episode = {}, code_ttl = {} and cooldown = {} allow up to {per_hour} \
                 linking codes an hour for one instance; WhatsApp locks a number out after \
                 about {MAX_CODES_PER_HOUR} in a row",
                s.codes_per_episode,
                humantime::format_duration(s.code_ttl),
                humantime::format_duration(s.cooldown)
            ),
        );
    }
}

/// The most codes one instance can be asked for in any hour: episodes of
/// `codes_per_episode` codes, one per `code_ttl` (and never two within a
/// second), each followed by `cooldown`; the hour starting with an episode.
fn most_codes_in_an_hour(s: &InstanceSettings) -> u64 {
    let hour = 3_600_000u128;
    let per_episode = u128::from(s.codes_per_episode.max(1));
    let ttl = s.code_ttl.max(MIN_POLL_INTERVAL).as_millis();
    let cycle = per_episode * ttl + s.cooldown.as_millis();
    let whole = hour / cycle;
    let rest = hour % cycle;
    let in_rest = if rest == 0 {
        0
    } else {
        rest.div_ceil(ttl).min(per_episode)
    };
    u64::try_from(whole * per_episode + in_rest).unwrap_or(u64::MAX)
}

fn channels(
    raw: &[RawChannel],
    raw_instances: &[RawInstance],
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Vec<Option<ChannelConfig>> {
    // `via` checks use every valid instance id as written, so a whatsapp
    // channel does not also fail when an unrelated key of its instance does.
    let instance_ids: Vec<u64> = raw_instances
        .iter()
        .filter_map(|inst| inst.id.as_ref())
        .filter_map(|id| values::instance_id(id).ok())
        .collect();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, ch) in raw.iter().enumerate() {
        let prefix = format!("channel[{i}]");
        let errors_before = report.issues.len();

        let name = match ch.name.as_deref() {
            None => {
                report.error(
                    format!("{prefix}.name"),
                    "missing: every channel needs a name",
                );
                None
            }
            Some(name) => {
                let valid = report
                    .check(format!("{prefix}.name"), values::channel_name(name))
                    .is_some();
                if let Some(first) = first_seen.get(name) {
                    report.error(
                        format!("{prefix}.name"),
                        format!("duplicate channel name {name:?} (also channel[{first}])"),
                    );
                } else {
                    first_seen.insert(name, i);
                }
                valid.then(|| name.to_owned())
            }
        };

        let attempt_timeout = match &ch.timeout {
            Some(value) => report
                .check(format!("{prefix}.timeout"), values::duration(value))
                .unwrap_or(DEFAULT_CHANNEL_TIMEOUT),
            None => DEFAULT_CHANNEL_TIMEOUT,
        };

        let rate_limit_per_minute = ch.rate_limit_per_minute.as_ref().and_then(|value| {
            report
                .check(
                    format!("{prefix}.rate_limit_per_minute"),
                    values::integer(value, 1, MAX_RATE_LIMIT_PER_MINUTE),
                )
                .and_then(|n| u32::try_from(n).ok())
        });

        let type_name = ch.kind.as_deref();
        let known_type = type_name.filter(|t| TYPE_KEYS.iter().any(|(known, _)| known == t));
        let templates = templates(&prefix, known_type, ch.templates.as_ref(), report);

        let kind = match type_name {
            None => {
                report.error(
                    format!("{prefix}.type"),
                    format!("missing: known types are {CHANNEL_TYPES}"),
                );
                None
            }
            Some(t) if known_type.is_some() => {
                foreign_keys(&prefix, t, ch, report);
                match t {
                    "webhook" => webhook(&prefix, ch, ctx, report),
                    "console" => Some(ChannelKind::Console),
                    "telegram" => telegram(&prefix, ch, ctx, report),
                    "slack" => slack(&prefix, ch, ctx, report),
                    "email" => email(&prefix, ch, ctx, report),
                    "whatsapp" => whatsapp(&prefix, ch, &instance_ids, report),
                    _ => unreachable!("channel type {t:?} is in TYPE_KEYS but has no builder"),
                }
            }
            Some(other) => {
                report.error(
                    format!("{prefix}.type"),
                    format!("unknown channel type {other:?}; known types are {CHANNEL_TYPES}"),
                );
                None
            }
        };

        out.push(match (name, kind) {
            (Some(name), Some(kind)) if report.issues.len() == errors_before => {
                Some(ChannelConfig {
                    name,
                    attempt_timeout,
                    rate_limit_per_minute,
                    templates,
                    kind,
                })
            }
            _ => None,
        });
    }
    out
}

/// "an email channel", "a slack channel".
fn a_channel(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name} channel")
}

/// `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Reports every key of `ch` that `type_name` does not take, naming the
/// type(s) it belongs to and what the type does take.
fn foreign_keys(prefix: &str, type_name: &str, ch: &RawChannel, report: &mut Report) {
    let allowed: &[&str] = TYPE_KEYS
        .iter()
        .find(|(t, _)| *t == type_name)
        .map_or(&[], |(_, keys)| *keys);
    for key in ch.specific_keys() {
        if allowed.contains(&key) {
            continue;
        }
        let owners: Vec<&str> = TYPE_KEYS
            .iter()
            .filter(|(_, keys)| keys.contains(&key))
            .map(|(t, _)| *t)
            .collect();
        let takes = if allowed.is_empty() {
            format!("only {}", and_list(&COMMON_CHANNEL_KEYS))
        } else {
            let all: Vec<&str> = COMMON_CHANNEL_KEYS.iter().chain(allowed).copied().collect();
            and_list(&all)
        };
        report.error(
            format!("{prefix}.{key}"),
            format!(
                "not allowed for {} ({key} is a key of {} channels; {} takes {takes})",
                a_channel(type_name),
                and_list(&owners),
                a_channel(type_name),
            ),
        );
    }
}

/// `[channel.templates]`: each given template must compile; `subject` only
/// for email channels (not checked when the type itself is missing or
/// unknown: that is reported already).
fn templates(
    prefix: &str,
    type_name: Option<&str>,
    raw: Option<&RawTemplates>,
    report: &mut Report,
) -> TemplateOverrides {
    let Some(raw) = raw else {
        return TemplateOverrides::default();
    };
    let mut check = |name: &str, source: &Option<String>| -> Option<String> {
        let source = source.as_ref()?;
        report
            .check(
                format!("{prefix}.templates.{name}"),
                values::template(source),
            )
            .map(|()| source.clone())
    };
    let out = TemplateOverrides {
        code: check("code", &raw.code),
        linked: check("linked", &raw.linked),
        paused: check("paused", &raw.paused),
        alert: check("alert", &raw.alert),
        resumed: check("resumed", &raw.resumed),
        subject: check("subject", &raw.subject),
    };
    if let Some(t) = type_name.filter(|t| *t != "email" && raw.subject.is_some()) {
        report.error(
            format!("{prefix}.templates.subject"),
            format!(
                "only email channels have a subject (this is {}); its templates are code, \
                 linked, paused, alert and resumed",
                a_channel(t)
            ),
        );
    }
    out
}

/// A secret that must be given: `Some` when loaded, `None` when missing
/// (reported, with `what` saying what it is) or invalid (reported).
fn required_secret(
    prefix: &str,
    sources: &Sources<'_>,
    what: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<secrets::Loaded> {
    match secrets::resolve(prefix, sources, ctx, report) {
        Ok(Some(loaded)) => Some(loaded),
        Ok(None) => {
            report.error(
                format!("{prefix}.{}", sources.base),
                format!("missing: {what}; set exactly one of {}", sources.choices()),
            );
            None
        }
        Err(()) => None,
    }
}

fn webhook(
    prefix: &str,
    ch: &RawChannel,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<ChannelKind> {
    let url = match &ch.url {
        None => {
            report.error(
                format!("{prefix}.url"),
                "missing: a webhook channel needs url = \"https://...\"",
            );
            None
        }
        Some(url) => report.check(
            format!("{prefix}.url"),
            values::http_url(url.0.expose_secret()),
        ),
    };
    let sources = Sources {
        base: "secret",
        file: ch.secret_file.as_deref(),
        env: ch.secret_env.as_deref(),
        credential: ch.secret_credential.as_deref(),
        inline: ch.secret.as_ref().map(|s| &s.0),
        inline_warning: None,
    };
    let secret = match secrets::resolve(prefix, &sources, ctx, report) {
        Err(()) => return None,
        Ok(None) => None,
        Ok(Some(loaded)) => match secrets::decode_webhook_secret(loaded.value.expose_secret()) {
            Ok(secret) => Some(secret),
            Err(problem) => {
                report.error(loaded.key, problem.to_string());
                return None;
            }
        },
    };
    url.map(|url| ChannelKind::Webhook { url, secret })
}

fn telegram(
    prefix: &str,
    ch: &RawChannel,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<ChannelKind> {
    let sources = Sources {
        base: "bot_token",
        file: ch.bot_token_file.as_deref(),
        env: ch.bot_token_env.as_deref(),
        credential: ch.bot_token_credential.as_deref(),
        inline: ch.bot_token.as_ref().map(|s| &s.0),
        inline_warning: None,
    };
    let bot_token = required_secret(
        prefix,
        &sources,
        "a telegram channel needs its bot's token (from @BotFather)",
        ctx,
        report,
    );
    let chat_id = match &ch.chat_id {
        None => {
            report.error(
                format!("{prefix}.chat_id"),
                "missing: the chat to send to, a numeric id (e.g. -1001234567890) or \
                 \"@channelusername\"",
            );
            None
        }
        Some(value) => report.check(format!("{prefix}.chat_id"), values::telegram_chat_id(value)),
    };
    let api_base = match ch.api_base.as_deref() {
        None => Some(DEFAULT_TELEGRAM_API_BASE.to_owned()),
        Some(url) => report.check(format!("{prefix}.api_base"), values::http_url(url)),
    };
    Some(ChannelKind::Telegram {
        bot_token: bot_token?.value,
        chat_id: chat_id?,
        api_base: api_base?,
    })
}

fn slack(
    prefix: &str,
    ch: &RawChannel,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<ChannelKind> {
    let sources = Sources {
        base: "url",
        file: ch.url_file.as_deref(),
        env: ch.url_env.as_deref(),
        credential: ch.url_credential.as_deref(),
        inline: ch.url.as_ref().map(|s| &s.0),
        inline_warning: Some(SLACK_INLINE_WARNING),
    };
    let loaded = required_secret(
        prefix,
        &sources,
        "a slack channel needs its incoming-webhook URL",
        ctx,
        report,
    )?;
    // http_url's messages never quote the URL.
    if let Err(problem) = values::http_url(loaded.value.expose_secret()) {
        report.error(
            loaded.key,
            format!("{problem} (the URL is a secret: it is not shown)"),
        );
        return None;
    }
    Some(ChannelKind::Slack { url: loaded.value })
}

fn email(
    prefix: &str,
    ch: &RawChannel,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<ChannelKind> {
    let smtp_host = match ch.smtp_host.as_deref() {
        None => {
            report.error(
                format!("{prefix}.smtp_host"),
                "missing: the SMTP server's host name, e.g. smtp_host = \"smtp.example.com\"",
            );
            None
        }
        Some(host) => report.check(format!("{prefix}.smtp_host"), values::smtp_host(host)),
    };
    let tls = match ch.tls.as_deref() {
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
    let smtp_port = match &ch.smtp_port {
        None => tls.map(|tls| match tls {
            EmailTls::None => 25,
            EmailTls::StartTls => 587,
            EmailTls::Tls => 465,
        }),
        Some(value) => report
            .check(
                format!("{prefix}.smtp_port"),
                values::integer(value, 1, 65_535),
            )
            .and_then(|port| u16::try_from(port).ok()),
    };
    let username = match ch.username.as_deref() {
        Some(name) if name.trim().is_empty() => {
            report.error(
                format!("{prefix}.username"),
                "must not be empty (remove it to send without SMTP authentication)",
            );
            None
        }
        other => other.map(str::to_owned),
    };
    let sources = Sources {
        base: "password",
        file: ch.password_file.as_deref(),
        env: ch.password_env.as_deref(),
        credential: ch.password_credential.as_deref(),
        inline: ch.password.as_ref().map(|s| &s.0),
        inline_warning: None,
    };
    let password = match (&ch.username, sources.given_key()) {
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
            ctx,
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
    let from = match ch.from.as_deref() {
        None => {
            report.error(
                format!("{prefix}.from"),
                "missing: the sender, e.g. from = \"relinkd <relinkd@example.com>\"",
            );
            None
        }
        Some(text) => report.check(format!("{prefix}.from"), values::mailbox(text)),
    };
    let to = match ch.to.as_deref() {
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
            .map(|(j, text)| report.check(format!("{prefix}.to[{j}]"), values::mailbox(text)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<String>>>(),
    };
    Some(ChannelKind::Email {
        smtp_host: smtp_host?,
        smtp_port: smtp_port?,
        tls: tls?,
        username,
        password,
        from: from?,
        to: to?,
    })
}

fn whatsapp(
    prefix: &str,
    ch: &RawChannel,
    instance_ids: &[u64],
    report: &mut Report,
) -> Option<ChannelKind> {
    let via = match &ch.via {
        None => {
            report.error(
                format!("{prefix}.via"),
                "missing: the id of the [[instance]] that sends the messages, e.g. \
                 via = 1101000001",
            );
            None
        }
        Some(value) => report
            .check(format!("{prefix}.via"), values::instance_ref(value))
            .and_then(|id| {
                if instance_ids.contains(&id) {
                    return Some(id);
                }
                let known = if instance_ids.is_empty() {
                    "no [[instance]] is configured".to_owned()
                } else {
                    let ids: Vec<String> = instance_ids.iter().map(u64::to_string).collect();
                    format!("configured ids: {}", ids.join(", "))
                };
                report.error(
                    format!("{prefix}.via"),
                    format!("no [[instance]] has id {id}; {known}"),
                );
                None
            }),
    };
    let chat_ids = match ch.chat_ids.as_deref() {
        None => {
            report.error(
                format!("{prefix}.chat_ids"),
                "missing: the chats to send to, e.g. chat_ids = [\"79001234567@c.us\"]",
            );
            None
        }
        Some([]) => {
            report.error(
                format!("{prefix}.chat_ids"),
                "must list at least one chat, e.g. chat_ids = [\"79001234567@c.us\"]",
            );
            None
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, id)| {
                report
                    .check(
                        format!("{prefix}.chat_ids[{j}]"),
                        values::whatsapp_chat_id(id),
                    )
                    .map(|()| id.clone())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<String>>>(),
    };
    Some(ChannelKind::Whatsapp {
        via: via?,
        chat_ids: chat_ids?,
    })
}

fn instances(
    raw: &[RawInstance],
    raw_channels: &[RawChannel],
    defaults: &InstanceSettings,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Vec<Option<InstanceConfig>> {
    // Reference checks use every channel name as written, even invalid ones,
    // so one bad channel does not also make each instance using it fail.
    let channel_names: Vec<&str> = raw_channels
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    // Whatsapp channels by name, with the instance they send through.
    let whatsapp_via: HashMap<&str, u64> = raw_channels
        .iter()
        .filter(|c| c.kind.as_deref() == Some("whatsapp"))
        .filter_map(|c| {
            let via = values::instance_ref(c.via.as_ref()?).ok()?;
            Some((c.name.as_deref()?, via))
        })
        .collect();
    let known_channels = if channel_names.is_empty() {
        "no [[channel]] is configured".to_owned()
    } else {
        let quoted: Vec<String> = channel_names.iter().map(|n| format!("{n:?}")).collect();
        format!("configured channels: {}", quoted.join(", "))
    };

    let mut ids: HashMap<u64, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, inst) in raw.iter().enumerate() {
        let prefix = format!("instance[{i}]");
        let errors_before = report.issues.len();

        let id = match &inst.id {
            None => {
                report.error(
                    format!("{prefix}.id"),
                    "missing: set id to the instance's idInstance",
                );
                None
            }
            Some(value) => report.check(format!("{prefix}.id"), values::instance_id(value)),
        };
        if let Some(id) = id {
            if let Some(first) = ids.get(&id) {
                report.error(
                    format!("{prefix}.id"),
                    format!("duplicate id {id} (also instance[{first}])"),
                );
            } else {
                ids.insert(id, i);
            }
        }

        let name = match inst.name.as_deref() {
            None => {
                report.error(
                    format!("{prefix}.name"),
                    "missing: every instance needs a name",
                );
                None
            }
            Some(name) if name.trim().is_empty() => {
                report.error(format!("{prefix}.name"), "must not be empty");
                None
            }
            Some(name) => {
                if let Some(first) = names.get(name) {
                    report.error(
                        format!("{prefix}.name"),
                        format!("duplicate instance name {name:?} (also instance[{first}])"),
                    );
                } else {
                    names.insert(name, i);
                }
                Some(name.to_owned())
            }
        };

        let api_url = match inst.api_url.as_deref() {
            None => {
                report.error(
                    format!("{prefix}.api_url"),
                    "missing: set it to the instance's apiUrl, e.g. \"https://1101.api.greenapi.com\"",
                );
                None
            }
            Some(url) => report.check(format!("{prefix}.api_url"), values::http_url(url)),
        };

        let sources = Sources {
            base: "api_token",
            file: inst.api_token_file.as_deref(),
            env: inst.api_token_env.as_deref(),
            credential: inst.api_token_credential.as_deref(),
            inline: inst.api_token.as_ref().map(|s| &s.0),
            inline_warning: None,
        };
        let api_token = match secrets::resolve(&prefix, &sources, ctx, report) {
            Ok(Some(loaded)) => Some(loaded.value),
            Ok(None) => {
                report.error(
                    format!("{prefix}.api_token"),
                    "missing: set exactly one of api_token_file, api_token_env, \
                     api_token_credential or api_token",
                );
                None
            }
            Err(()) => None,
        };

        let phone = match &inst.phone {
            None => {
                report.error(
                    format!("{prefix}.phone"),
                    "missing: the instance's phone number, digits only (e.g. 441234567890)",
                );
                None
            }
            Some(value) => report.check(format!("{prefix}.phone"), values::phone(value)),
        };

        let channels = match &inst.channels {
            None => {
                report.error(
                    format!("{prefix}.channels"),
                    format!("missing: list the channels that get this instance's codes ({known_channels})"),
                );
                None
            }
            Some(list) if list.is_empty() => {
                report.error(
                    format!("{prefix}.channels"),
                    format!("must list at least one channel ({known_channels})"),
                );
                None
            }
            Some(list) => {
                let mut ok = true;
                for (j, name) in list.iter().enumerate() {
                    if id.is_some()
                        && whatsapp_via.get(name.as_str()) == id.as_ref()
                        && !list[..j].contains(name)
                    {
                        report.warn(
                            &format!("{prefix}.channels"),
                            &format!(
                                "channel {name:?} sends through this instance itself; relinkd \
                                 skips it for this instance's own messages"
                            ),
                        );
                    }
                    if !channel_names.contains(&name.as_str()) {
                        report.error(
                            format!("{prefix}.channels"),
                            format!("unknown channel {name:?}; {known_channels}"),
                        );
                        ok = false;
                    } else if list[..j].contains(name) {
                        report.error(
                            format!("{prefix}.channels"),
                            format!("channel {name:?} is listed twice"),
                        );
                        ok = false;
                    }
                }
                ok.then(|| list.clone())
            }
        };

        let settings = settings(&prefix, &inst.overrides(), defaults, report);

        out.push(match (id, name, api_url, api_token, phone, channels) {
            (Some(id), Some(name), Some(api_url), Some(api_token), Some(phone), Some(channels))
                if report.issues.len() == errors_before =>
            {
                Some(InstanceConfig {
                    id,
                    name,
                    api_url,
                    api_token,
                    phone,
                    channels,
                    settings,
                })
            }
            _ => None,
        });
    }
    out
}
