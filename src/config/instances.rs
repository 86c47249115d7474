//! Every `[[instance]]`: which WhatsApp instance it is and how to reach it,
//! its phone number, the channels that get its messages, and its settings.

use std::collections::HashMap;
use std::sync::Arc;

use toml::Value;

use super::raw::{RawChannel, RawInstance};
use super::time_intervals::Intervals;
use super::{InstanceConfig, InstanceSettings, settings};
use crate::validation::{Report, Reported, SecretContext, Sources, describe, http_url, resolve};

/// Distinct settings compared with each instance's to share them.
const SHARED_SETTINGS_KEPT: usize = 8;

/// Every `[[instance]]`: its id, name, vendor endpoint, token, phone and
/// channels, and its settings over `defaults`.
pub(super) fn check(
    raw: &[RawInstance],
    raw_channels: &[RawChannel],
    defaults: &InstanceSettings,
    intervals: &Intervals,
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
            let via = crate::delivery::whatsapp::via_of(&c.keys)?;
            Some((c.name.as_deref()?, via))
        })
        .collect();
    let mut shared: Vec<Arc<InstanceSettings>> = Vec::new();
    let known_channels = if channel_names.is_empty() {
        "no [[channel]] is configured".to_owned()
    } else {
        let quoted: Vec<String> = channel_names.iter().map(|n| format!("{n:?}")).collect();
        format!("configured channels: {}", quoted.join(", "))
    };

    let mut ids: HashMap<u64, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    // A fleet has a few vendor hosts and channel lists: one copy of each,
    // shared by its instances (two allocations fewer per instance).
    let mut api_urls: HashMap<String, Arc<str>> = HashMap::new();
    let mut channel_lists: HashMap<Vec<String>, Arc<[String]>> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, inst) in raw.iter().enumerate() {
        let prefix = format!("instance[{i}]");
        let errors_before = report.problems();

        let id = report.required(
            format!("{prefix}.id"),
            inst.id.as_ref(),
            "set id to the instance's idInstance",
            instance_id,
        );
        if let Some(id) = id {
            if let Some(first) = ids.get(&id) {
                report.error(
                    format!("{prefix}.id"),
                    match raw[*first].name.as_deref() {
                        Some(other) => format!("duplicate id {id} (also instance {other:?})"),
                        None => {
                            format!("duplicate id {id} (also [[instance]] number {})", first + 1)
                        }
                    },
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
                        format!(
                            "duplicate instance name {name:?} (also [[instance]] number {})",
                            first + 1
                        ),
                    );
                } else {
                    names.insert(name, i);
                }
                Some(name.to_owned())
            }
        };

        let api_url = report.required(
            format!("{prefix}.api_url"),
            inst.api_url.as_deref(),
            "set it to the instance's apiUrl, e.g. \"https://1101.api.greenapi.com\"",
            http_url,
        );

        let sources = Sources {
            base: "api_token",
            file: inst.api_token_file.clone(),
            env: inst.api_token_env.clone(),
            credential: inst.api_token_credential.clone(),
            inline: inst.api_token.as_ref().map(|s| s.0.clone()),
            inline_warning: None,
        };
        let api_token = match resolve(&prefix, &sources, ctx, report) {
            Ok(Some(loaded)) => Some(Arc::new(loaded.value)),
            Ok(None) => {
                report.error(
                    format!("{prefix}.api_token"),
                    "missing: set exactly one of api_token_file, api_token_env, \
                     api_token_credential or api_token",
                );
                None
            }
            Err(Reported) => None,
        };

        let phone = report.required(
            format!("{prefix}.phone"),
            inst.phone.as_ref(),
            "the instance's phone number, digits only (e.g. 441234567890)",
            phone,
        );

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

        let settings = settings::check(&prefix, &inst.overrides(), defaults, intervals, report);
        // Alike settings are held once: a fleet's instances mostly take
        // `[defaults]` as they are. Only the last few distinct ones are
        // compared, so a fleet of all-different settings stays linear.
        let settings = match shared.iter().find(|s| ***s == settings) {
            Some(same) => same.clone(),
            None => {
                let settings = Arc::new(settings);
                if shared.len() == SHARED_SETTINGS_KEPT {
                    shared.remove(0);
                }
                shared.push(settings.clone());
                settings
            }
        };

        out.push(match (id, name, api_url, api_token, phone, channels) {
            (Some(id), Some(name), Some(api_url), Some(api_token), Some(phone), Some(channels))
                if report.problems() == errors_before =>
            {
                Some(InstanceConfig {
                    id,
                    name,
                    api_url: api_urls
                        .entry(api_url)
                        .or_insert_with_key(|url| Arc::from(url.as_str()))
                        .clone(),
                    api_token,
                    phone,
                    channels: channel_lists
                        .entry(channels)
                        .or_insert_with_key(|list| Arc::from(list.as_slice()))
                        .clone(),
                    settings,
                })
            }
            _ => None,
        });
    }
    out
}

/// An instance id (`idInstance`): a TOML integer greater than zero.
pub(super) fn instance_id(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) if *i > 0 => u64::try_from(*i).map_err(|_| "out of range".to_owned()),
        Value::Integer(i) => Err(format!("must be a positive integer (got {i})")),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "must be a TOML integer, not a string (write id = {s} without quotes)"
        )),
        other => Err(format!(
            "must be a positive integer, the idInstance (got {})",
            describe(other)
        )),
    }
}

/// A phone number in international form: digits only (no `+`, spaces or
/// dashes), 7 to 15 digits, as a TOML integer or a string of digits.
fn phone(value: &Value) -> Result<u64, String> {
    const DIGITS_ONLY: &str =
        "must be digits only, with no + or spaces (international form, e.g. 441234567890)";
    let digits = match value {
        Value::Integer(i) if *i > 0 => i.to_string(),
        Value::Integer(i) => return Err(format!("{DIGITS_ONLY} (got {i})")),
        Value::String(s) => {
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{DIGITS_ONLY} (got {s:?})"));
            }
            s.clone()
        }
        other => {
            return Err(format!(
                "must be an integer or a string of digits (got {})",
                describe(other)
            ));
        }
    };
    if !(7..=15).contains(&digits.len()) {
        return Err(format!("must be 7 to 15 digits (got {})", digits.len()));
    }
    if digits.starts_with('0') {
        return Err(
            "must start with the country code, not 0 (e.g. 441234567890, not 01234567890)"
                .to_owned(),
        );
    }
    digits
        .parse::<u64>()
        .map_err(|_| "must be 7 to 15 digits".to_owned())
}
