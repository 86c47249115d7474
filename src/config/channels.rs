//! Every `[[channel]]`: the keys every channel takes (name, type, timeout,
//! rate limit, templates), and a type's own keys, which the type's config in
//! `delivery` checks. A key of another type is refused by name.

use std::collections::HashMap;
use std::time::Duration;

use super::raw::{RawChannel, RawInstance};
use crate::delivery::{ChannelConfig, ChannelType, CheckContext, TYPES, TemplateOverrides};
use crate::validation::{KeyError, Report, SecretContext, duration, integer};

const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RATE_LIMIT_PER_MINUTE: i64 = 100_000;
/// The keys every channel type takes.
const COMMON_CHANNEL_KEYS: [&str; 5] = [
    "name",
    "type",
    "timeout",
    "rate_limit_per_minute",
    "templates",
];

/// `"webhook", "console", ...`
fn known_types() -> String {
    let quoted: Vec<String> = TYPES.iter().map(|t| format!("{:?}", t.name)).collect();
    quoted.join(", ")
}

/// Warns about channels no instance uses.
pub(super) fn warn_unused(raw: &[RawChannel], raw_instances: &[RawInstance], report: &mut Report) {
    if raw_instances.is_empty() {
        return;
    }
    for (i, channel) in raw.iter().enumerate() {
        let Some(name) = channel.name.as_deref() else {
            continue;
        };
        let used = raw_instances
            .iter()
            .any(|inst| inst.channels.iter().flatten().any(|c| c == name));
        if !used {
            report.warn(
                &format!("channel[{i}]"),
                &format!("channel {name:?} is not used by any instance"),
            );
        }
    }
}

/// Every `[[channel]]`: its name, the keys every channel takes, and its
/// type's own keys, which the type checks. `Err` for a value of the wrong
/// type (reported as a parse error, where it is).
pub(super) fn check(
    raw: &[RawChannel],
    raw_instances: &[RawInstance],
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<Vec<Option<ChannelConfig>>, KeyError> {
    // `via` checks use every valid instance id as written, so a whatsapp
    // channel does not also fail when an unrelated key of its instance does.
    let instance_ids: Vec<u64> = raw_instances
        .iter()
        .filter_map(|inst| inst.id.as_ref())
        .filter_map(|id| super::instances::instance_id(id).ok())
        .collect();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, ch) in raw.iter().enumerate() {
        let prefix = format!("channel[{i}]");
        let errors_before = report.problems();

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
                    .check(format!("{prefix}.name"), channel_name(name))
                    .is_some();
                if let Some(first) = first_seen.get(name) {
                    report.error(
                        format!("{prefix}.name"),
                        format!(
                            "duplicate channel name {name:?} (also [[channel]] number {})",
                            first + 1
                        ),
                    );
                } else {
                    first_seen.insert(name, i);
                }
                valid.then(|| name.to_owned())
            }
        };

        let attempt_timeout = match &ch.timeout {
            Some(value) => report
                .check(format!("{prefix}.timeout"), duration(value))
                .unwrap_or(DEFAULT_CHANNEL_TIMEOUT),
            None => DEFAULT_CHANNEL_TIMEOUT,
        };

        let rate_limit_per_minute = ch.rate_limit_per_minute.as_ref().and_then(|value| {
            report
                .check(
                    format!("{prefix}.rate_limit_per_minute"),
                    integer(value, 1, MAX_RATE_LIMIT_PER_MINUTE),
                )
                .and_then(|n| u32::try_from(n).ok())
        });

        let type_name = ch.kind.as_deref();
        let known_type = type_name.and_then(|t| TYPES.iter().copied().find(|k| k.name == t));
        let templates = templates(
            &prefix,
            known_type.map(|k| k.name),
            ch.templates.as_ref(),
            report,
        );

        let kind = match (type_name, known_type) {
            (None, _) => {
                report.error(
                    format!("{prefix}.type"),
                    format!("missing: known types are {}", known_types()),
                );
                None
            }
            (Some(_), Some(kind)) => {
                foreign_keys(&prefix, kind, ch, report);
                let check = CheckContext {
                    prefix: &prefix,
                    secrets: ctx,
                    instance_ids: &instance_ids,
                };
                (kind.check)(&ch.keys, &check, report)?
            }
            (Some(other), None) => {
                report.error(
                    format!("{prefix}.type"),
                    format!(
                        "unknown channel type {other:?}; known types are {}",
                        known_types()
                    ),
                );
                None
            }
        };

        out.push(match (name, kind) {
            (Some(name), Some(kind)) if report.problems() == errors_before => Some(ChannelConfig {
                name,
                attempt_timeout,
                rate_limit_per_minute,
                templates,
                kind,
            }),
            _ => None,
        });
    }
    Ok(out)
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
fn foreign_keys(prefix: &str, kind: &ChannelType, ch: &RawChannel, report: &mut Report) {
    let (type_name, allowed) = (kind.name, kind.keys);
    for key in ch.keys.names() {
        if allowed.contains(&key) {
            continue;
        }
        let owners: Vec<&str> = TYPES
            .iter()
            .filter(|t| t.keys.contains(&key))
            .map(|t| t.name)
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
    written: Option<&TemplateOverrides>,
    report: &mut Report,
) -> TemplateOverrides {
    let Some(mut templates) = written.cloned() else {
        return TemplateOverrides::default();
    };
    let has_subject = templates.subject.is_some();
    for (key, source) in templates.by_key() {
        let Some(text) = source.as_deref() else {
            continue;
        };
        let checked = crate::template::check(text);
        if report
            .check(format!("{prefix}.templates.{key}"), checked)
            .is_none()
        {
            *source = None;
        }
    }
    if let Some(t) = type_name.filter(|t| *t != "email" && has_subject) {
        report.error(
            format!("{prefix}.templates.subject"),
            format!(
                "only email channels have a subject (this is {}); its templates are code, \
                 linked, paused, alert, resumed and digest",
                a_channel(t)
            ),
        );
    }
    templates
}

/// A channel name: 1..=64 of `[A-Za-z0-9_.-]` (it becomes a metric label).
fn channel_name(text: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-' \
             (it becomes a metric label; got {text:?})"
        ))
    }
}
