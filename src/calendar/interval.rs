//! One time interval as Alertmanager writes them (`time_intervals`): times
//! of day, weekdays, days of the month, months and years, each a list of
//! inclusive ranges (`monday:friday`, `-3:-1`, `march:october`), in an IANA
//! zone. An interval matches an instant when every field that is set
//! matches it; an unset field matches everything.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};

/// Minutes in a day: `end_time = "24:00"` ends at the next midnight.
const DAY_MINUTES: u16 = 24 * 60;

/// A validated time interval.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    pub name: String,
    /// The IANA name, as written (for display and comparison).
    location: String,
    zone: TimeZone,
    /// `[start, end)` in minutes after local midnight, sorted by start.
    times: Vec<(u16, u16)>,
    /// Inclusive, Sunday = 0 (Alertmanager's week starts on Sunday).
    weekdays: Vec<(i32, i32)>,
    /// Inclusive; negative counts from the month's end (-1 is its last day).
    days_of_month: Vec<(i32, i32)>,
    /// Inclusive, 1 to 12.
    months: Vec<(i32, i32)>,
    /// Inclusive.
    years: Vec<(i32, i32)>,
}

impl PartialEq for TimeInterval {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.location == other.location
            && self.times == other.times
            && self.weekdays == other.weekdays
            && self.days_of_month == other.days_of_month
            && self.months == other.months
            && self.years == other.years
    }
}

impl Eq for TimeInterval {}

/// An interval as written, before validation.
#[derive(Debug, Default, Clone)]
pub struct IntervalSpec<'a> {
    pub name: &'a str,
    pub location: Option<&'a str>,
    /// `(start_time, end_time)` pairs as written.
    pub times: Vec<(&'a str, &'a str)>,
    pub weekdays: Vec<&'a str>,
    pub days_of_month: Vec<&'a str>,
    pub months: Vec<&'a str>,
    pub years: Vec<&'a str>,
}

/// What is wrong with one field of an interval: the field (`times[1]`,
/// `weekdays[0]`, `location`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl TimeInterval {
    /// Validates `spec`; every problem is reported.
    pub fn parse(spec: &IntervalSpec<'_>) -> Result<Self, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut fail = |field: String, message: String| errors.push(SpecError { field, message });
        let location = spec.location.unwrap_or("UTC");
        let zone = match TimeZone::get(location) {
            Ok(zone) => Some(zone),
            // Alertmanager's name for the host's zone: a config copied to
            // another host would change meaning, so the zone is named.
            Err(_) if location.eq_ignore_ascii_case("local") => {
                fail(
                    "location".into(),
                    format!(
                        "{location:?} (the host's zone) is not supported: name the zone, \
                         e.g. \"Europe/London\" (`timedatectl show -p Timezone` prints the \
                         host's)"
                    ),
                );
                None
            }
            Err(_) => {
                fail(
                    "location".into(),
                    format!(
                        "unknown time zone {location:?} (expected an IANA name such as \
                         \"Europe/London\" or \"UTC\")"
                    ),
                );
                None
            }
        };
        let mut times = Vec::new();
        for (i, (start, end)) in spec.times.iter().enumerate() {
            match (time_of_day(start, false), time_of_day(end, true)) {
                (Ok(s), Ok(e)) if e > s => times.push((s, e)),
                (Ok(_), Ok(_)) => fail(
                    format!("times[{i}]"),
                    format!("end_time {end:?} must be after start_time {start:?}"),
                ),
                (s, e) => {
                    for message in [s.err(), e.err()].into_iter().flatten() {
                        fail(format!("times[{i}]"), message);
                    }
                }
            }
        }
        times.sort_unstable();
        let mut ranges =
            |field: &str, items: &[&str], one: &dyn Fn(&str) -> Result<i32, String>| {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match range(item, one) {
                        Ok(r) => out.push(r),
                        Err(message) => fail(format!("{field}[{i}]"), message),
                    }
                }
                out
            };
        let weekdays = ranges("weekdays", &spec.weekdays, &weekday);
        let days_of_month = ranges("days_of_month", &spec.days_of_month, &day_of_month);
        let months = ranges("months", &spec.months, &month);
        let years = ranges("years", &spec.years, &year);
        let interval = zone.map(|zone| TimeInterval {
            name: spec.name.to_owned(),
            location: location.to_owned(),
            zone,
            times,
            weekdays,
            days_of_month,
            months,
            years,
        });
        match interval {
            Some(interval) if errors.is_empty() => Ok(interval),
            _ => Err(errors),
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether the local date `date` is one of the interval's days.
    fn matches_day(&self, date: Date) -> bool {
        let any = |ranges: &[(i32, i32)], v: i32| {
            ranges.is_empty() || ranges.iter().any(|&(a, b)| a <= v && v <= b)
        };
        let days_in_month = i32::from(date.days_in_month());
        let day = i32::from(date.day());
        // -1 is the month's last day; a range is cut to the month's days,
        // and one wholly past them (30:31 in February) matches none.
        let resolve = |d: i32| if d < 0 { days_in_month + 1 + d } else { d };
        let days_match = self.days_of_month.is_empty()
            || self.days_of_month.iter().any(|&(a, b)| {
                let (a, b) = (resolve(a).max(1), resolve(b).min(days_in_month));
                a <= day && day <= b
            });
        any(
            &self.weekdays,
            i32::from(date.weekday().to_sunday_zero_offset()),
        ) && days_match
            && any(&self.months, i32::from(date.month()))
            && any(&self.years, i32::from(date.year()))
    }

    /// The interval's `[start, end)` spans on the local date `date`, as
    /// instants (a local time that a DST change skips is taken as the time
    /// after the gap; one it repeats, as its first occurrence).
    fn spans_on(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if !self.matches_day(date) {
            return Vec::new();
        }
        let at = |minutes: u16| -> Option<Timestamp> {
            let (day, minutes) = if minutes >= DAY_MINUTES {
                (date.checked_add(1.day()).ok()?, minutes - DAY_MINUTES)
            } else {
                (date, minutes)
            };
            let local = DateTime::from_parts(
                day,
                jiff::civil::time((minutes / 60) as i8, (minutes % 60) as i8, 0, 0),
            );
            self.zone.to_ambiguous_timestamp(local).compatible().ok()
        };
        let whole_day = [(0, DAY_MINUTES)];
        let times: &[(u16, u16)] = if self.times.is_empty() {
            &whole_day
        } else {
            &self.times
        };
        times
            .iter()
            .filter_map(|&(s, e)| Some((at(s)?, at(e)?)))
            .filter(|(s, e)| e > s)
            .collect()
    }

    /// `Some(at)` if the interval contains `at`; else the start of its next
    /// span after `at` within `horizon_days`; `None` if there is none.
    pub fn next_open(&self, at: Timestamp, horizon_days: i32) -> Option<Timestamp> {
        // From the day before: a span that started yesterday may still run.
        let today = at.to_zoned_datetime(self.zone.clone()).date();
        let mut date = today.checked_sub(1.day()).ok()?;
        for _ in 0..=horizon_days + 1 {
            for (start, end) in self.spans_on(date) {
                if end > at {
                    return Some(start.max(at));
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}

/// `HH:MM`, 00:00 to 23:59 (or 24:00 for an end).
fn time_of_day(text: &str, is_end: bool) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day (expected \"HH:MM\", e.g. \"08:30\")");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if is_end => Ok(DAY_MINUTES),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(format!(
            "{text:?} is not a time of day (00:00 to 23:59, or 24:00 as an end)"
        )),
    }
}

/// `a` or `a:b` of `one`'s values, with `a <= b` where both have one sign.
/// Only days of the month are negative (counted back from the month's end):
/// a range from such a day to one counted from the start would run into the
/// next month, and one from a day to a day counted back is checked against
/// the longest month.
fn range(text: &str, one: &dyn Fn(&str) -> Result<i32, String>) -> Result<(i32, i32), String> {
    let (a, b) = match text.split_once(':') {
        Some((a, b)) => (one(a.trim())?, one(b.trim())?),
        None => {
            let v = one(text.trim())?;
            (v, v)
        }
    };
    if a.signum() == b.signum() && a > b {
        return Err(format!("{text:?}: the range's start is after its end"));
    }
    if a < 0 && b > 0 {
        let to_end = if a == -1 {
            "-1".to_owned()
        } else {
            format!("{a}:-1")
        };
        let from_start = if b == 1 {
            "1".to_owned()
        } else {
            format!("1:{b}")
        };
        return Err(format!(
            "{text:?}: the range's start (counted back from the month's end) is after its \
             end (counted from its start); a range cannot run into the next month: write \
             two, [\"{to_end}\", \"{from_start}\"]"
        ));
    }
    // -1 is day 31 of the longest month.
    if a > 0 && b < 0 && a > 32 + b {
        return Err(format!(
            "{text:?}: the range's start is after its end in every month"
        ));
    }
    Ok((a, b))
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn weekday(text: &str) -> Result<i32, String> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(text))
        .map(|i| i as i32)
        .ok_or_else(|| {
            format!("{text:?} is not a weekday (expected e.g. \"monday\" or \"monday:friday\")")
        })
}

fn day_of_month(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(d) if (1..=31).contains(&d) || (-31..=-1).contains(&d) => Ok(d),
        _ => Err(format!(
            "{text:?} is not a day of the month (1 to 31, or -1 to -31 from the month's end)"
        )),
    }
}

fn month(text: &str) -> Result<i32, String> {
    if let Ok(m) = text.parse::<i32>() {
        return if (1..=12).contains(&m) {
            Ok(m)
        } else {
            Err(format!("{text:?} is not a month (1 to 12, or a name)"))
        };
    }
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(text))
        .map(|i| i as i32 + 1)
        .ok_or_else(|| format!("{text:?} is not a month (expected e.g. \"march\" or \"3\")"))
}

fn year(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(y) if (1970..=9999).contains(&y) => Ok(y),
        _ => Err(format!("{text:?} is not a year (1970 to 9999)")),
    }
}
