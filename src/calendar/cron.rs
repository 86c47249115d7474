//! When a `[[digest]]` is due: a cron schedule with seconds, read as
//! tokio-cron-scheduler reads it (croner, seconds required, day-of-month and
//! day-of-week both applying), in an IANA zone.
//!
//! The next time is computed in the zone itself, at each arming, so a DST
//! change moves nothing: tokio-cron-scheduler's own zoned jobs keep the UTC
//! offset of the day they were created and fire an hour off after a change.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed schedule in its zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// As written (shown, compared on reload).
    pub text: String,
    /// The IANA name.
    pub zone_name: String,
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.zone_name == other.zone_name
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// `text` in `zone`, or what is wrong with each.
    pub fn parse(text: &str, zone: &str) -> Result<Self, (Option<String>, Option<String>)> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|e| {
                format!(
                    "{text:?} is not a cron schedule with seconds (six fields: second minute hour \
                     day-of-month month day-of-week, e.g. \"0 0 9 * * Mon-Fri\"): {e}"
                )
            });
        let tz = zone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("unknown time zone {zone:?} (expected an IANA name such as \"Europe/London\")")
        });
        match (cron, tz) {
            (Ok(cron), Ok(zone)) => Ok(Self {
                text: text.to_owned(),
                zone_name: zone.name().to_owned(),
                cron,
                zone,
            }),
            (cron, tz) => Err((cron.err(), tz.err())),
        }
    }

    /// The first time strictly after `after` the schedule fires.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after: DateTime<Utc> = after.into();
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.zone), false)
            .ok()
            .map(|next| SystemTime::from(next.with_timezone(&Utc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> SystemTime {
        SystemTime::from(text.parse::<DateTime<Utc>>().unwrap())
    }

    #[test]
    fn weekday_mornings_fire_at_nine_local_time_on_both_sides_of_a_dst_change() {
        let s = CronSchedule::parse("0 0 9 * * Mon-Fri", "Europe/London").unwrap();
        // Friday 2027-03-26 in GMT; Monday 2027-03-29 in BST (UTC+1).
        assert_eq!(
            s.next_after(utc("2027-03-26T08:00:00Z")),
            Some(utc("2027-03-26T09:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2027-03-26T09:00:00Z")),
            Some(utc("2027-03-29T08:00:00Z")),
            "after the clocks go forward, 09:00 London is 08:00 UTC"
        );
        let ny = CronSchedule::parse("0 30 17 * * *", "America/New_York").unwrap();
        // New York falls back on 2027-11-07: 17:30 EDT then EST.
        assert_eq!(
            ny.next_after(utc("2027-11-06T12:00:00Z")),
            Some(utc("2027-11-06T21:30:00Z"))
        );
        assert_eq!(
            ny.next_after(utc("2027-11-06T21:30:00Z")),
            Some(utc("2027-11-07T22:30:00Z"))
        );
    }

    #[test]
    fn the_next_time_is_after_the_one_asked_about_even_long_after_a_missed_one() {
        let s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
        // A tick missed by an hour: the next one is the next after now, not
        // a backlog.
        assert_eq!(
            s.next_after(utc("2027-01-01T10:00:05Z")),
            Some(utc("2027-01-01T10:00:10Z"))
        );
        assert_eq!(
            s.next_after(utc("2027-01-01T10:00:10Z")),
            Some(utc("2027-01-01T10:00:20Z"))
        );
    }

    #[test]
    fn bad_schedules_and_zones_are_told_apart() {
        let (cron, zone) = CronSchedule::parse("0 9 * * *", "Mars/Olympus").unwrap_err();
        assert!(cron.unwrap().contains("six fields"));
        assert!(zone.unwrap().contains("unknown time zone \"Mars/Olympus\""));
        let (cron, zone) = CronSchedule::parse("0 0 9 * * Mon-Fri", "Mars/Olympus").unwrap_err();
        assert!(cron.is_none() && zone.is_some());
    }
}
