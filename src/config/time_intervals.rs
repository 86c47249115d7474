//! `[[time_interval]]`: named time intervals (Alertmanager's model), which
//! `linking_windows` in `[defaults]` or an `[[instance]]` name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::raw::RawTimeInterval;
use crate::calendar::{self, Calendar, IntervalSpec, TimeInterval};
use crate::validation::Report;

/// The intervals of a config.
#[derive(Default)]
pub(super) struct Intervals {
    /// The valid ones, by name.
    valid: BTreeMap<String, Arc<TimeInterval>>,
    /// Every name written, valid or not (an invalid interval's problems are
    /// reported once, where it is, not again where it is used).
    written: Vec<String>,
}

impl Intervals {
    /// The calendar of `names`, or the first name that no interval has.
    pub(super) fn calendar(&self, names: &[String]) -> Result<Calendar, String> {
        let mut windows = Vec::new();
        for name in names {
            match self.valid.get(name) {
                Some(interval) => windows.push(interval.clone()),
                None if self.written.contains(name) => {}
                None => {
                    let known: Vec<String> =
                        self.written.iter().map(|n| format!("{n:?}")).collect();
                    return Err(if known.is_empty() {
                        format!(
                            "unknown time interval {name:?}: no [[time_interval]] is configured"
                        )
                    } else {
                        format!(
                            "unknown time interval {name:?}; configured intervals: {}",
                            known.join(", ")
                        )
                    });
                }
            }
        }
        Ok(Calendar::new(windows))
    }
}

/// Every interval's problems are reported; the valid ones are returned.
/// `now`: an interval that matches no instant from now on is refused.
pub(super) fn check(raw: &[RawTimeInterval], now: SystemTime, report: &mut Report) -> Intervals {
    let mut named = Intervals::default();
    let mut seen = BTreeMap::new();
    for (i, item) in raw.iter().enumerate() {
        let prefix = format!("time_interval[{i}]");
        let Some(name) = item.name.as_deref().filter(|n| !n.trim().is_empty()) else {
            report.error(
                format!("{prefix}.name"),
                "missing: every time interval needs a name (linking_windows refer to it)",
            );
            continue;
        };
        named.written.push(name.to_owned());
        if let Some(first) = seen.insert(name.to_owned(), i) {
            report.error(
                format!("{prefix}.name"),
                format!(
                    "duplicate time interval name {name:?} (also [[time_interval]] number {})",
                    first + 1
                ),
            );
            continue;
        }
        let mut spec = IntervalSpec {
            name,
            location: item.location.as_deref(),
            ..IntervalSpec::default()
        };
        let mut complete = true;
        for (j, range) in item.times.iter().flatten().enumerate() {
            match (range.start_time.as_deref(), range.end_time.as_deref()) {
                (Some(start), Some(end)) => spec.times.push((start, end)),
                (start, _) => {
                    let key = if start.is_none() {
                        "start_time"
                    } else {
                        "end_time"
                    };
                    report.error(
                        format!("{prefix}.times[{j}]"),
                        format!("missing {key}: a time range needs both, e.g. {{ start_time = \"08:00\", end_time = \"20:00\" }}"),
                    );
                    complete = false;
                }
            }
        }
        spec.weekdays = strs(&item.weekdays);
        spec.days_of_month = strs(&item.days_of_month);
        spec.months = strs(&item.months);
        spec.years = strs(&item.years);
        match TimeInterval::parse(&spec) {
            Ok(interval) if !calendar::ever_matches(&interval, now) => report.error(
                prefix,
                format!(
                    "{name:?} can never match from now on, or not within 8 years (check its \
                     years, months and days)"
                ),
            ),
            Ok(interval) if complete => {
                named.valid.insert(name.to_owned(), Arc::new(interval));
            }
            Ok(_) => {}
            Err(errors) => {
                for e in errors {
                    report.error(format!("{prefix}.{}", e.field), e.message);
                }
            }
        }
    }
    named
}

fn strs(v: &Option<Vec<String>>) -> Vec<&str> {
    v.iter().flatten().map(String::as_str).collect()
}
