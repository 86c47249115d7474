//! Turns the raw serde model into a [`Config`]: defaults, per-key checks,
//! cross-references (unique ids and names, channel references), secrets.
//! Every problem is recorded with its key path; all of them are reported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use super::raw::{RawChannel, RawConfig, RawDaemon, RawInstance, RawSettings};
use super::secrets::{self, SecretContext, Sources};
use super::values;
use super::{
    ChannelConfig, ChannelKind, Config, ConfigError, DaemonConfig, Environment, InstanceConfig,
    InstanceSettings, Issue, LogFormat,
};

const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 7788);
const DEFAULT_STATE_DIR: &str = "./state";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;
const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon never calls the vendor more than once per second per instance.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
const CHANNEL_TYPES: &str = "\"webhook\", \"console\"";

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
    let channels = channels(&raw.channels, &ctx, &mut report);
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

    DaemonConfig {
        listen,
        state_dir,
        log_format,
        admin_token,
        max_concurrent_requests,
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
    if let Some(value) = &raw.codes_per_episode {
        if let Some(n) = report.check(
            format!("{prefix}.codes_per_episode"),
            values::codes_per_episode(value),
        ) {
            out.codes_per_episode = n;
        }
    }
    out
}

fn channels(
    raw: &[RawChannel],
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Vec<Option<ChannelConfig>> {
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

        let kind = match ch.kind.as_deref() {
            None => {
                report.error(
                    format!("{prefix}.type"),
                    format!("missing: known types are {CHANNEL_TYPES}"),
                );
                None
            }
            Some("webhook") => webhook(&prefix, ch, ctx, report),
            Some("console") => {
                let extra = [
                    ("url", ch.url.is_some()),
                    ("secret_file", ch.secret_file.is_some()),
                    ("secret_env", ch.secret_env.is_some()),
                    ("secret_credential", ch.secret_credential.is_some()),
                    ("secret", ch.secret.is_some()),
                ];
                for (key, present) in extra {
                    if present {
                        report.error(
                            format!("{prefix}.{key}"),
                            "not allowed for a console channel (it takes only name, type \
                             and timeout)",
                        );
                    }
                }
                Some(ChannelKind::Console)
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
                    rate_limit_per_minute: None,
                    templates: Default::default(),
                    kind,
                })
            }
            _ => None,
        });
    }
    out
}

fn webhook(
    prefix: &str,
    ch: &RawChannel,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<ChannelKind> {
    let url = match ch.url.as_deref() {
        None => {
            report.error(
                format!("{prefix}.url"),
                "missing: a webhook channel needs url = \"https://...\"",
            );
            None
        }
        Some(url) => report.check(format!("{prefix}.url"), values::http_url(url)),
    };
    let sources = Sources {
        base: "secret",
        file: ch.secret_file.as_deref(),
        env: ch.secret_env.as_deref(),
        credential: ch.secret_credential.as_deref(),
        inline: ch.secret.as_ref().map(|s| &s.0),
    };
    let secret = match secrets::resolve(prefix, &sources, ctx, report) {
        Err(()) => return None,
        Ok(None) => None,
        Ok(Some(loaded)) => {
            use secrecy::ExposeSecret as _;
            match secrets::decode_webhook_secret(loaded.value.expose_secret()) {
                Ok(secret) => Some(secret),
                Err(problem) => {
                    report.error(loaded.key, problem.to_string());
                    return None;
                }
            }
        }
    };
    url.map(|url| ChannelKind::Webhook { url, secret })
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
