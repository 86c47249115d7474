//! Linking windows end to end: simulator → daemon → webhook receiver on
//! 127.0.0.1, tokio's paused clock. The windows are written for the time
//! the test runs (UTC), since the daemon's wall clock follows the real one.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use relinkd::sim::Simulator;

fn code_calls(sim: &Simulator, id: u64) -> usize {
    calls_to(sim, id, "getAuthorizationCode").len()
}

/// `[[time_interval]] name = "window"` open from `from` to `to` (UTC, whole
/// minutes, `from` rounded up; less than a day apart), and `[defaults]`
/// naming it, as `[defaults]` lines.
fn window_between(from: SystemTime, to: SystemTime) -> String {
    let day = |at: SystemTime| {
        let ts = jiff::Timestamp::try_from(at).unwrap();
        let dt = ts
            .round(
                jiff::TimestampRound::new()
                    .smallest(jiff::Unit::Minute)
                    .mode(jiff::RoundMode::Ceil),
            )
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .datetime();
        (
            (dt.year(), dt.month(), dt.day()),
            format!("{:02}:{:02}", dt.hour(), dt.minute()),
        )
    };
    let interval = |(y, m, d): (i16, i8, i8), start: &str, end: &str| {
        format!(
            "\n[[time_interval]]\nname = \"window\"\ntimes = [{{ start_time = \"{start}\", \
             end_time = \"{end}\" }}]\ndays_of_month = [\"{d}\"]\nmonths = [\"{m}\"]\n\
             years = [\"{y}\"]\n"
        )
    };
    let ((d1, t1), (d2, t2)) = (day(from), day(to));
    let intervals = if d1 == d2 {
        interval(d1, &t1, &t2)
    } else {
        let mut both = interval(d1, &t1, "24:00");
        if t2 != "00:00" {
            both.push_str(
                &interval(d2, "00:00", &t2).replace("name = \"window\"", "name = \"window-2\""),
            );
        }
        both
    };
    let names = if intervals.contains("window-2") {
        "[\"window\", \"window-2\"]"
    } else {
        "[\"window\"]"
    };
    format!(
        "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\ncode_ttl = \"150s\"\n\
         codes_per_episode = 3\ncooldown = \"1h\"\nlinking_windows = {names}\n{intervals}"
    )
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn outside_the_window_one_paused_notice_no_code_then_the_window_opens_the_episode() {
    let now = SystemTime::now();
    let s = Scenario::new(&["notAuthorized"])
        .defaults(&window_between(now + 2 * HOUR, now + 3 * HOUR))
        .start()
        .await;

    wait(secs(30 * 60)).await;
    assert_eq!(
        code_calls(&s.sim, FIRST_ID),
        0,
        "no code outside the window"
    );
    let paused = s.hook.events("paused");
    assert_eq!(paused.len(), 1, "one notice");
    assert_eq!(paused[0].json["reason"], "window");
    let resumes_at = paused[0].json["resumes_at"].as_str().unwrap().to_owned();
    assert!(resumes_at.ends_with(":00Z"), "{resumes_at}");
    assert!(s.hook.events("code").is_empty());
    let status = s.daemon.instance_status(FIRST_ID).await;
    assert_eq!(status["phase"], "waiting", "{status}");
    assert_eq!(
        status["next_action"],
        format!("waiting for window until {resumes_at}"),
        "{status}"
    );
    let id = FIRST_ID.to_string();
    let labels = [("wa_instance", id.as_str())];
    assert_eq!(
        s.daemon
            .metric("relinkd_instance_waiting_for_window", &labels)
            .await,
        Some(1.0)
    );
    assert_eq!(
        s.daemon.metric("relinkd_instance_paused", &labels).await,
        None,
        "a window wait is not a spent budget (the gauge is exported only while 1)"
    );

    // The window opens: one resumed notice, then a code within seconds.
    wait(2 * HOUR - secs(30 * 60) + secs(70)).await;
    assert_eq!(s.hook.events("resumed").len(), 1);
    assert_eq!(s.hook.events("code").len(), 1);
    assert_eq!(code_calls(&s.sim, FIRST_ID), 1);
    assert_eq!(s.hook.events("paused").len(), 1, "no second paused notice");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_relink_overrides_the_window_once() {
    let now = SystemTime::now();
    let s = Scenario::new(&["notAuthorized"])
        .defaults(&window_between(now + 5 * HOUR, now + 6 * HOUR))
        .start()
        .await;
    wait(secs(10)).await;
    assert_eq!(s.hook.events("paused").len(), 1);

    let (status, body) = s
        .daemon
        .api_post(
            &format!("/api/v1/instances/{FIRST_ID}/relink"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["will"]
            .as_str()
            .unwrap()
            .contains("overridden for one code"),
        "{body}"
    );
    wait(secs(10)).await;
    assert_eq!(s.hook.events("code").len(), 1, "the relink's code");

    // After it expires, the window still rules: a notice, no second code.
    wait(secs(160)).await;
    assert_eq!(code_calls(&s.sim, FIRST_ID), 1);
    assert_eq!(s.hook.events("paused").len(), 2);
    s.stop().await;
}

#[test]
fn relink_help_says_it_overrides_the_linking_windows_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relinkd"))
        .args(["relink", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("allows one code outside its linking windows"),
        "{help}"
    );
}
