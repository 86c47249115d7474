//! Window edges in several zones, across DST changes, with Alertmanager's
//! range syntax.

use std::sync::Arc;
use std::time::SystemTime;

use super::*;

fn utc(text: &str) -> SystemTime {
    SystemTime::try_from(text.parse::<jiff::Timestamp>().unwrap()).unwrap()
}

fn interval(spec: IntervalSpec<'_>) -> Arc<TimeInterval> {
    Arc::new(TimeInterval::parse(&spec).unwrap_or_else(|e| panic!("{e:?}")))
}

fn calendar(specs: Vec<IntervalSpec<'_>>) -> Calendar {
    Calendar::new(specs.into_iter().map(interval).collect())
}

fn office_hours(location: &'static str) -> IntervalSpec<'static> {
    IntervalSpec {
        name: "office-hours",
        location: Some(location),
        times: vec![("08:00", "20:00")],
        weekdays: vec!["monday:friday"],
        ..IntervalSpec::default()
    }
}

fn errors(spec: IntervalSpec<'_>) -> Vec<String> {
    TimeInterval::parse(&spec)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

#[test]
fn no_windows_is_always_open() {
    assert_eq!(
        Calendar::default().at(utc("2027-01-01T03:00:00Z")),
        Opening::Open
    );
}

#[test]
fn office_hours_in_london_open_at_eight_and_close_at_twenty_local_time() {
    let c = calendar(vec![office_hours("Europe/London")]);
    // Winter: London is UTC.
    assert_eq!(c.at(utc("2027-01-05T08:00:00Z")), Opening::Open);
    assert_eq!(c.at(utc("2027-01-05T19:59:59Z")), Opening::Open);
    assert_eq!(
        c.at(utc("2027-01-05T20:00:00Z")),
        Opening::OpensAt(utc("2027-01-06T08:00:00Z"))
    );
    // Summer: BST, UTC+1.
    assert_eq!(
        c.at(utc("2027-07-06T06:30:00Z")),
        Opening::OpensAt(utc("2027-07-06T07:00:00Z"))
    );
    assert_eq!(c.at(utc("2027-07-06T18:59:00Z")), Opening::Open);
    assert_ne!(c.at(utc("2027-07-06T19:00:00Z")), Opening::Open);
}

#[test]
fn a_friday_evening_opens_on_monday_across_the_spring_dst_change() {
    // London's clocks go forward on Sunday 2027-03-28: Friday is UTC+0,
    // Monday UTC+1, so Monday 08:00 local is 07:00 UTC.
    let c = calendar(vec![office_hours("Europe/London")]);
    assert_eq!(
        c.at(utc("2027-03-26T20:00:00Z")),
        Opening::OpensAt(utc("2027-03-29T07:00:00Z"))
    );
}

#[test]
fn the_autumn_dst_change_moves_the_edges_back_an_hour() {
    // New York falls back on Sunday 2027-11-07: Friday EDT (UTC-4), Monday
    // EST (UTC-5).
    let c = calendar(vec![office_hours("America/New_York")]);
    assert_eq!(c.at(utc("2027-11-05T12:00:00Z")), Opening::Open);
    assert_eq!(
        c.at(utc("2027-11-06T00:00:00Z")),
        Opening::OpensAt(utc("2027-11-08T13:00:00Z"))
    );
}

#[test]
fn a_local_time_skipped_by_dst_opens_after_the_gap() {
    // 01:30 does not exist in London on 2027-03-28; it becomes 02:30 BST.
    let c = calendar(vec![IntervalSpec {
        name: "night",
        location: Some("Europe/London"),
        times: vec![("01:30", "03:00")],
        days_of_month: vec!["28"],
        months: vec!["march"],
        years: vec!["2027"],
        ..IntervalSpec::default()
    }]);
    assert_eq!(
        c.at(utc("2027-03-28T00:00:00Z")),
        Opening::OpensAt(utc("2027-03-28T01:30:00Z"))
    );
}

#[test]
fn days_of_month_count_back_from_the_months_end() {
    let c = calendar(vec![IntervalSpec {
        name: "month-end",
        days_of_month: vec!["-3:-1"],
        ..IntervalSpec::default()
    }]);
    // February 2027 has 28 days: 26, 27 and 28 are in.
    assert_eq!(
        c.at(utc("2027-02-25T12:00:00Z")),
        Opening::OpensAt(utc("2027-02-26T00:00:00Z"))
    );
    assert_eq!(c.at(utc("2027-02-28T23:59:00Z")), Opening::Open);
    assert_eq!(
        c.at(utc("2027-03-01T00:00:00Z")),
        Opening::OpensAt(utc("2027-03-29T00:00:00Z"))
    );
}

#[test]
fn every_set_field_must_match_and_ranges_are_inclusive() {
    let c = calendar(vec![IntervalSpec {
        name: "summer-mornings",
        times: vec![("09:00", "17:30")],
        weekdays: vec!["saturday", "sunday"],
        months: vec!["march:october"],
        years: vec!["2027:2028"],
        ..IntervalSpec::default()
    }]);
    // Saturday 2027-10-30 is in October; Saturday 2027-11-06 is not.
    assert_eq!(c.at(utc("2027-10-30T17:29:00Z")), Opening::Open);
    assert_eq!(
        c.at(utc("2027-10-31T17:30:00Z")),
        Opening::OpensAt(utc("2028-03-04T09:00:00Z"))
    );
    assert_eq!(c.at(utc("2029-01-01T00:00:00Z")), Opening::Never);
}

#[test]
fn several_windows_are_open_when_any_is() {
    let c = calendar(vec![
        IntervalSpec {
            name: "mornings",
            times: vec![("08:00", "12:00")],
            ..IntervalSpec::default()
        },
        IntervalSpec {
            name: "evenings",
            times: vec![("18:00", "24:00")],
            ..IntervalSpec::default()
        },
    ]);
    assert_eq!(c.at(utc("2027-05-01T09:00:00Z")), Opening::Open);
    assert_eq!(c.at(utc("2027-05-01T23:59:00Z")), Opening::Open);
    assert_eq!(
        c.at(utc("2027-05-01T12:00:00Z")),
        Opening::OpensAt(utc("2027-05-01T18:00:00Z"))
    );
    assert_eq!(
        c.at(utc("2027-05-02T00:00:00Z")),
        Opening::OpensAt(utc("2027-05-02T08:00:00Z"))
    );
}

#[test]
fn bad_ranges_are_named_by_field_and_position() {
    let e = errors(IntervalSpec {
        name: "bad",
        location: Some("Mars/Olympus"),
        times: vec![("09:00", "08:00"), ("25:00", "26:00"), ("24:00", "24:00")],
        weekdays: vec!["monday:friday", "friday:monday", "funday"],
        days_of_month: vec!["0", "-3:-1", "10:5", "-1:1", "28:-5", "10:-1"],
        months: vec!["march:october", "13", "smarch"],
        years: vec!["2027", "1800"],
    });
    let expected = [
        "location: unknown time zone \"Mars/Olympus\"",
        "times[0]: end_time \"08:00\" must be after start_time \"09:00\"",
        "times[1]: \"25:00\" is not a time of day",
        "times[1]: \"26:00\" is not a time of day",
        "times[2]: \"24:00\" is not a time of day",
        "weekdays[1]: \"friday:monday\": the range's start is after its end",
        "weekdays[2]: \"funday\" is not a weekday",
        "days_of_month[0]: \"0\" is not a day of the month",
        "days_of_month[2]: \"10:5\": the range's start is after its end",
        "days_of_month[3]: \"-1:1\": the range's start (counted back from the month's end) is \
         after its end (counted from its start); a range cannot run into the next month: \
         write two, [\"-1\", \"1\"]",
        "days_of_month[4]: \"28:-5\": the range's start is after its end in every month",
        "months[1]: \"13\" is not a month",
        "months[2]: \"smarch\" is not a month",
        "years[1]: \"1800\" is not a year",
    ];
    for needle in expected {
        assert!(
            e.iter().any(|l| l.starts_with(needle)),
            "{needle:?} not in {e:#?}"
        );
    }
    assert_eq!(e.len(), expected.len(), "{e:#?}");
}

#[test]
fn an_interval_that_can_never_match_is_told_apart() {
    let never = interval(IntervalSpec {
        name: "february-30",
        days_of_month: vec!["30:31"],
        months: vec!["february"],
        ..IntervalSpec::default()
    });
    assert!(!ever_matches(&never, utc("2027-01-01T00:00:00Z")));
    let past = interval(IntervalSpec {
        name: "last-year",
        years: vec!["2020"],
        ..IntervalSpec::default()
    });
    assert!(!ever_matches(&past, utc("2027-01-01T00:00:00Z")));
    let leap_day = interval(IntervalSpec {
        name: "leap-day",
        days_of_month: vec!["29"],
        months: vec!["february"],
        ..IntervalSpec::default()
    });
    assert!(ever_matches(&leap_day, utc("2027-01-01T00:00:00Z")));
}

#[test]
fn the_hosts_local_zone_is_refused_with_a_way_to_name_it() {
    let e = errors(IntervalSpec {
        name: "office",
        location: Some("Local"),
        ..IntervalSpec::default()
    });
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("location: \"Local\" (the host's zone) is not supported: name the zone"),
        "{e:#?}"
    );
}
