//! `[defaults]` and each `[[instance]]`'s overrides of them: polling, the
//! code budget, timeouts, the time zone; and the warnings for settings that
//! would spend WhatsApp's pairing budget too fast.

use std::time::Duration;

use toml::Value;

use super::InstanceSettings;
use super::raw::RawSettings;
use super::time_intervals::Intervals;
use crate::greenapi::VENDOR_CALL_INTERVAL;
use crate::validation::{Report, duration, integer, timezone};

/// Below these, `code_ttl` and `cooldown` are warned about (tests and
/// trials use short values; production must not).
const SHORT_CODE_TTL: Duration = Duration::from_secs(30);
const SHORT_COOLDOWN: Duration = Duration::from_secs(5 * 60);
/// Shortest `reboot_stuck_after`: `starting` lasts seconds on every start.
const MIN_REBOOT_STUCK_AFTER: Duration = Duration::from_secs(60);
/// More codes than this in any hour, for one instance, is warned about:
/// WhatsApp locks numbers out after about seven codes in a row.
const MAX_CODES_PER_HOUR: u64 = 7;

/// Applies the keys present in `raw` (under `prefix`, e.g. `defaults` or
/// `instance[2]`) on top of `base`. Invalid keys are reported and left at
/// their `base` value.
pub(super) fn check(
    prefix: &str,
    raw: &RawSettings,
    base: &InstanceSettings,
    intervals: &Intervals,
    report: &mut Report,
) -> InstanceSettings {
    let mut out = base.clone();
    let mut set_duration = |name: &str, value: &Option<Value>, slot: &mut Duration, floor: bool| {
        let Some(value) = value else { return };
        let key = format!("{prefix}.{name}");
        if let Some(d) = report.check(key.as_str(), duration(value)) {
            if floor && d < VENDOR_CALL_INTERVAL {
                report.warn(
                    &key,
                    &format!(
                        "{} is below the 1s minimum (relinkd never calls the API more than \
                         once per second per instance); using 1s",
                        humantime::format_duration(d)
                    ),
                );
                *slot = VENDOR_CALL_INTERVAL;
            } else {
                *slot = d;
            }
        }
    };
    set_duration(
        "poll_interval",
        &raw.poll_interval,
        &mut out.poll_interval,
        true,
    );
    set_duration(
        "linking_poll_interval",
        &raw.linking_poll_interval,
        &mut out.linking_poll_interval,
        true,
    );
    set_duration("code_ttl", &raw.code_ttl, &mut out.code_ttl, false);
    set_duration("cooldown", &raw.cooldown, &mut out.cooldown, false);
    set_duration(
        "request_timeout",
        &raw.request_timeout,
        &mut out.request_timeout,
        false,
    );
    set_duration("backoff_max", &raw.backoff_max, &mut out.backoff_max, false);
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
            codes_per_episode(value),
        )
    {
        out.codes_per_episode = n;
    }
    if let Some(value) = &raw.timezone
        && let Some(zone) = report.check(format!("{prefix}.timezone"), timezone(value))
    {
        out.timezone = Some(zone);
    }
    if let Some(value) = &raw.reboot_stuck_after {
        let key = format!("{prefix}.reboot_stuck_after");
        if let Some(d) = report.check(key.as_str(), duration(value)) {
            if d < MIN_REBOOT_STUCK_AFTER {
                report.error(
                    key,
                    format!(
                        "must be at least 1m (got {}): an instance passes through starting for \
                         seconds on every start",
                        humantime::format_duration(d)
                    ),
                );
            } else {
                out.reboot_stuck_after = Some(d);
            }
        }
    }
    if let Some(value) = &raw.linking_windows
        && let Some(names) = report.check(format!("{prefix}.linking_windows"), window_names(value))
        && let Some(calendar) = report.check(
            format!("{prefix}.linking_windows"),
            intervals.calendar(&names),
        )
    {
        out.linking_windows = calendar;
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
    let ttl = s.code_ttl.max(VENDOR_CALL_INTERVAL).as_millis();
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

/// `linking_windows`: a list of `[[time_interval]]` names (`[]`: always).
fn window_names(value: &Value) -> Result<Vec<String>, String> {
    const HINT: &str =
        "a list of [[time_interval]] names, e.g. linking_windows = [\"office-hours\"]";
    let Value::Array(items) = value else {
        return Err(format!("must be {HINT}"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(name) => Ok(name.clone()),
            _ => Err(format!("must be {HINT}")),
        })
        .collect()
}

/// Most linking codes in a row WhatsApp tolerates before locking the number out.
const MAX_CODES_PER_EPISODE: i64 = 7;

/// `codes_per_episode`: 1..=7.
fn codes_per_episode(value: &Value) -> Result<u32, String> {
    match value {
        Value::Integer(i) if *i > MAX_CODES_PER_EPISODE => Err(format!(
            "must be at most {MAX_CODES_PER_EPISODE} (got {i}): WhatsApp locks a number out \
             of linking after about {MAX_CODES_PER_EPISODE} codes in a row"
        )),
        Value::Integer(i) if *i < 1 => Err(format!("must be at least 1 (got {i})")),
        other => integer(other, 1, MAX_CODES_PER_EPISODE)
            .map(|i| u32::try_from(i).unwrap_or(MAX_CODES_PER_EPISODE as u32)),
    }
}
