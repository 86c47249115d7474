//! `[[time_interval]]` and `linking_windows`: accepted as Alertmanager
//! writes them, refused with the interval, field and problem named.

use crate::support::*;

const OFFICE: &str = "[[time_interval]]\nname = \"office-hours\"\nlocation = \"Europe/London\"\n\
                      times = [{ start_time = \"08:00\", end_time = \"20:00\" }]\n\
                      weekdays = [\"monday:friday\"]\n";

fn with_intervals(intervals: &str, defaults: &str) -> String {
    format!("[defaults]\n{defaults}\n\n{intervals}\n{BASE}")
}

#[test]
fn windows_in_alertmanagers_syntax_are_accepted_in_defaults_and_per_instance() {
    let toml = with_intervals(
        &format!(
            "{OFFICE}\n[[time_interval]]\nname = \"month-end\"\ndays_of_month = [\"-3:-1\"]\n\
             months = [\"march:october\", \"12\"]\nyears = [\"2026:2099\"]\n"
        ),
        "linking_windows = [\"office-hours\"]",
    );
    let config = ok(&toml);
    let names: Vec<&str> = config.instances[0]
        .settings
        .linking_windows
        .names()
        .collect();
    assert_eq!(names, ["office-hours"]);

    let per_instance = ok(&edit(
        &toml,
        "channels = [\"ops\"]",
        "channels = [\"ops\"]\nlinking_windows = [\"office-hours\", \"month-end\"]",
    ));
    let names: Vec<&str> = per_instance.instances[0]
        .settings
        .linking_windows
        .names()
        .collect();
    assert_eq!(names, ["office-hours", "month-end"]);

    // An instance can opt out of the defaults' windows with [].
    let always = ok(&edit(
        &toml,
        "channels = [\"ops\"]",
        "channels = [\"ops\"]\nlinking_windows = []",
    ));
    assert!(
        always.instances[0]
            .settings
            .linking_windows
            .is_always_open()
    );
}

#[test]
fn no_windows_means_always() {
    assert!(
        ok(BASE).instances[0]
            .settings
            .linking_windows
            .is_always_open()
    );
}

#[test]
fn bad_intervals_and_references_are_refused_with_the_interval_field_and_problem() {
    let bad = |interval: &str, defaults: &str| {
        error(&with_intervals(
            &format!("[[time_interval]]\nname = \"office-hours\"\n{interval}"),
            defaults,
        ))
    };
    assert_rejected(&[
        (
            "an unknown interval name",
            with_intervals(OFFICE, "linking_windows = [\"office\"]"),
            &[
                "defaults.linking_windows: unknown time interval \"office\"; configured \
               intervals: \"office-hours\"",
            ],
        ),
        (
            "a name and no interval at all",
            with_daemon("").replace("[daemon]\n", "[defaults]\nlinking_windows = [\"x\"]\n"),
            &[
                "defaults.linking_windows: unknown time interval \"x\": no [[time_interval]] \
               is configured",
            ],
        ),
        (
            "not a list",
            with_intervals(OFFICE, "linking_windows = \"office-hours\""),
            &["defaults.linking_windows: must be a list of [[time_interval]] names"],
        ),
        (
            "a missing name",
            with_intervals("[[time_interval]]\nweekdays = [\"monday\"]\n", ""),
            &["time_interval[0].name: missing: every time interval needs a name"],
        ),
        (
            "an unknown key",
            with_intervals(
                "[[time_interval]]\nname = \"x\"\nweekday = [\"monday\"]\n",
                "",
            ),
            &["time_interval \"x\" (line 6): weekday: unknown field `weekday`"],
        ),
    ]);
    let e = bad("weekdays = [\"friday:monday\"]\n", "");
    assert_has(
        &shown(&e).join("\n"),
        &[
            "time_interval \"office-hours\" (line ",
            "): weekdays[0]: \"friday:monday\": the \
           range's start is after its end",
        ],
    );
    let e = bad(
        "times = [{ start_time = \"20:00\", end_time = \"08:00\" }]\n",
        "",
    );
    assert_has(
        &e,
        &["time_interval[0].times[0]: end_time \"08:00\" must be after start_time \"20:00\""],
    );
    let e = bad("location = \"Mars/Olympus\"\n", "");
    assert_has(
        &e,
        &["time_interval[0].location: unknown time zone \"Mars/Olympus\""],
    );
    let e = bad("days_of_month = [\"30:31\"]\nmonths = [\"february\"]\n", "");
    assert_has(
        &e,
        &["time_interval[0]: \"office-hours\" can never match from now on"],
    );
    let e = bad("years = [\"2020\"]\n", "");
    assert_has(&e, &["can never match from now on"]);
    let e = bad("times = [{ start_time = \"08:00\" }]\n", "");
    assert_has(&e, &["time_interval[0].times[0]: missing end_time"]);
    // A bad interval is reported once, where it is, not again where used.
    let e = bad(
        "weekdays = [\"funday\"]\n",
        "linking_windows = [\"office-hours\"]",
    );
    assert_eq!(shown(&e).len(), 1, "{e}");
}

#[test]
fn digests_are_accepted_and_bad_ones_refused_with_the_key_and_problem() {
    let digest = |body: &str| format!("{BASE}\n[[digest]]\nname = \"morning\"\n{body}");
    let config = ok(&digest(
        "schedule = \"0 0 9 * * Mon-Fri\"\ntimezone = \"Europe/London\"\nchannels = [\"ops\"]\n\
         send = \"when_unlinked\"",
    ));
    assert_eq!(config.digests.len(), 1);
    assert_eq!(config.digests[0].channels, ["ops"]);
    assert_eq!(config.digests[0].schedule.zone_name, "Europe/London");
    assert_rejected(&[
        (
            "five fields",
            digest("schedule = \"0 9 * * *\"\nchannels = [\"ops\"]"),
            &["digest[0].schedule: \"0 9 * * *\" is not a cron schedule with seconds"],
        ),
        (
            "an unknown zone",
            digest("schedule = \"0 0 9 * * *\"\ntimezone = \"Mars/Olympus\"\nchannels = [\"ops\"]"),
            &["digest[0].timezone: unknown time zone \"Mars/Olympus\""],
        ),
        (
            "an unknown channel",
            digest("schedule = \"0 0 9 * * *\"\nchannels = [\"pager\"]"),
            &["digest[0].channels: unknown channel \"pager\"; configured channels: \"ops\""],
        ),
        (
            "no channel",
            digest("schedule = \"0 0 9 * * *\"\nchannels = []"),
            &["digest[0].channels: must list at least one channel"],
        ),
        (
            "a bad send",
            digest("schedule = \"0 0 9 * * *\"\nchannels = [\"ops\"]\nsend = \"sometimes\""),
            &["digest[0].send: must be \"always\" or \"when_unlinked\" (got \"sometimes\")"],
        ),
        (
            "no schedule",
            digest("channels = [\"ops\"]"),
            &["digest[0].schedule: missing"],
        ),
    ]);
    let e = error(&digest("schedule = \"0 9 * * *\"\nchannels = [\"ops\"]"));
    assert_has(&shown(&e).join("\n"), &["digest \"morning\" (line "]);
}
