//! `[[digest]]`: a summary of the fleet on a cron schedule, sent to some
//! channels.

use std::collections::BTreeSet;

use super::raw::{RawChannel, RawDigest};
use super::{DigestConfig, DigestSend};
use crate::calendar::CronSchedule;
use crate::validation::Report;

/// Every digest's problems are reported; the valid ones are returned.
pub(super) fn check(
    raw: &[RawDigest],
    channels: &[RawChannel],
    report: &mut Report,
) -> Vec<DigestConfig> {
    let known: Vec<&str> = channels.iter().filter_map(|c| c.name.as_deref()).collect();
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        let prefix = format!("digest[{i}]");
        let errors_before = report.problems();
        let name = match item.name.as_deref().filter(|n| !n.trim().is_empty()) {
            None => {
                report.error(
                    format!("{prefix}.name"),
                    "missing: every digest needs a name",
                );
                None
            }
            Some(name) if !names.insert(name) => {
                report.error(
                    format!("{prefix}.name"),
                    format!("duplicate digest name {name:?}"),
                );
                None
            }
            Some(name) => Some(name.to_owned()),
        };
        let schedule = match item.schedule.as_deref() {
            None => {
                report.error(
                    format!("{prefix}.schedule"),
                    "missing: cron with seconds, e.g. schedule = \"0 0 9 * * Mon-Fri\"",
                );
                None
            }
            Some(text) => {
                match CronSchedule::parse(text, item.timezone.as_deref().unwrap_or("UTC")) {
                    Ok(schedule) => Some(schedule),
                    Err((cron, zone)) => {
                        if let Some(message) = cron {
                            report.error(format!("{prefix}.schedule"), message);
                        }
                        if let Some(message) = zone {
                            report.error(format!("{prefix}.timezone"), message);
                        }
                        None
                    }
                }
            }
        };
        let list = item.channels.clone().unwrap_or_default();
        if list.is_empty() {
            report.error(
                format!("{prefix}.channels"),
                "must list at least one channel, e.g. channels = [\"ops-telegram\"]",
            );
        }
        for channel in &list {
            if !known.contains(&channel.as_str()) {
                let configured: Vec<String> = known.iter().map(|c| format!("{c:?}")).collect();
                report.error(
                    format!("{prefix}.channels"),
                    format!(
                        "unknown channel {channel:?}; configured channels: {}",
                        configured.join(", ")
                    ),
                );
            }
        }
        let send = match item.send.as_deref() {
            None | Some("always") => DigestSend::Always,
            Some("when_unlinked") => DigestSend::WhenUnlinked,
            Some(other) => {
                report.error(
                    format!("{prefix}.send"),
                    format!("must be \"always\" or \"when_unlinked\" (got {other:?})"),
                );
                DigestSend::Always
            }
        };
        if let (Some(name), Some(schedule)) = (name, schedule)
            && report.problems() == errors_before
        {
            out.push(DigestConfig {
                name,
                schedule,
                channels: list,
                send,
            });
        }
    }
    out
}
