//! `[[digest]]`s on tokio-cron-scheduler, end to end. The scheduler counts
//! on the wall clock, so these run in real time on schedules a second or
//! two apart (a few seconds each).

mod common;

use std::time::Duration;

use common::*;

const EVERY_2S: &str = "*/2 * * * * *";

fn digest_block(schedule: &str, send: &str) -> String {
    format!(
        "poll_interval = \"60s\"\nlinking_poll_interval = \"1s\"\n\n[[digest]]\nname = \"morning\"\n\
         schedule = \"{schedule}\"\ntimezone = \"Europe/London\"\nchannels = [\"hook\"]\n\
         send = \"{send}\"\n"
    )
}

async fn real_wait(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_counts_the_fleet_lists_the_unlinked_and_never_carries_a_code() {
    let s = Scenario::new(&["authorized", "notAuthorized", "yellowCard"])
        .defaults(&digest_block(EVERY_2S, "always"))
        .start()
        .await;
    // The first digest may come before the first polls: take one that
    // saw them.
    let polled = |d: &&Received| d.json["counts"]["other"] == 0;
    eventually(Duration::from_secs(8), "a digest after the polls", || {
        s.hook.events("digest").iter().any(|d| polled(&d))
    })
    .await;
    let digests = s.hook.events("digest");
    let digest = digests.iter().find(polled).unwrap().json.clone();
    assert_eq!(digest["digest"], "morning");
    assert_eq!(digest["counts"]["instances"], 3, "{digest}");
    assert_eq!(digest["counts"]["linked"], 1, "{digest}");
    assert_eq!(digest["counts"]["restricted"], 1, "{digest}");
    assert_eq!(
        digest["counts"]["unlinked"].as_u64().unwrap()
            + digest["counts"]["paused"].as_u64().unwrap(),
        1,
        "{digest}"
    );
    assert_eq!(digest["unlinked"][0]["name"], "line-1", "{digest}");
    assert_eq!(digest["unlinked"][0]["id"], FIRST_ID + 1);
    assert!(digest["period"]["from"].as_str().unwrap().ends_with('Z'));
    assert!(digest["since_last"]["codes_delivered"].is_u64(), "{digest}");
    assert!(digest.get("code").is_none(), "{digest}");
    assert!(digest.get("instance").is_none(), "{digest}");
    let text = digest["text"].as_str().unwrap();
    assert!(text.contains("3 instances"), "{text}");
    assert!(text.contains("line-1"), "{text}");
    // Whatever codes went out, none is in any digest.
    let seen = digests.len();
    eventually(Duration::from_secs(6), "another digest", || {
        s.hook.events("digest").len() > seen
    })
    .await;
    let codes = s.hook.codes();
    assert!(!codes.is_empty());
    for d in s.hook.events("digest") {
        let body = String::from_utf8_lossy(&d.body).into_owned();
        for code in &codes {
            assert!(!body.contains(code.as_str()), "a code in a digest: {body}");
        }
    }
    for pair in s.hook.events("digest").windows(2) {
        assert_eq!(
            pair[1].json["period"]["from"], pair[0].json["period"]["to"],
            "periods follow on"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_unlinked_a_quiet_fleet_gets_no_digest() {
    let s = Scenario::new(&["authorized", "authorized"])
        .defaults(&digest_block(EVERY_2S, "when_unlinked"))
        .start()
        .await;
    let skipped = || async {
        s.daemon
            .metric(
                "relinkd_digests_total",
                &[("digest", "morning"), ("outcome", "skipped")],
            )
            .await
            .unwrap_or(0.0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while skipped().await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "no digest was due");
        real_wait(Duration::from_millis(100)).await;
    }
    assert!(s.hook.events("digest").is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_unlinked_a_fleet_with_an_unlinked_instance_gets_its_digest() {
    let s = Scenario::new(&["authorized", "notAuthorized"])
        .defaults(&digest_block(EVERY_2S, "when_unlinked"))
        .start()
        .await;
    eventually(Duration::from_secs(8), "a digest", || {
        !s.hook.events("digest").is_empty()
    })
    .await;
    let digest = s.hook.events("digest")[0].json.clone();
    let counts = &digest["counts"];
    assert_eq!(
        counts["unlinked"].as_u64().unwrap() + counts["paused"].as_u64().unwrap(),
        1,
        "{digest}"
    );
    assert_eq!(digest["unlinked"][0]["name"], "line-1", "{digest}");
    let sent = s
        .daemon
        .metric(
            "relinkd_digests_total",
            &[("digest", "morning"), ("outcome", "sent")],
        )
        .await;
    assert!(sent.is_some_and(|n| n >= 1.0), "{sent:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_an_unchanged_schedule_without_a_double_send_and_reschedules_a_changed_one()
{
    let s = Scenario::new(&["authorized"])
        .defaults(&digest_block("*/3 * * * * *", "always"))
        .start()
        .await;
    eventually(Duration::from_secs(5), "a digest", || {
        !s.hook.events("digest").is_empty()
    })
    .await;
    // Reloads with the schedule unchanged, right after a digest.
    s.daemon.reload().await;
    s.daemon.reload().await;
    real_wait(Duration::from_secs(5)).await;
    let at: Vec<tokio::time::Instant> = s.hook.events("digest").iter().map(|d| d.at).collect();
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(2000),
            "two digests {:?} apart: a double send",
            pair[1] - pair[0]
        );
    }
    // A schedule that never fires during the test: no more digests.
    s.rewrite(&s.fleet_toml(&[0], &digest_block("0 0 0 1 1 *", "always")));
    s.daemon.reload().await;
    real_wait(Duration::from_millis(500)).await;
    let before = s.hook.events("digest").len();
    real_wait(Duration::from_secs(4)).await;
    assert_eq!(
        s.hook.events("digest").len(),
        before,
        "the old schedule was disarmed"
    );
    // Changed again, to one that fires: the new schedule is armed.
    s.rewrite(&s.fleet_toml(&[0], &digest_block(EVERY_2S, "always")));
    s.daemon.reload().await;
    eventually(
        Duration::from_secs(4),
        "a digest on the new schedule",
        || s.hook.events("digest").len() > before,
    )
    .await;
    // (Nothing else could have sent it: the yearly one had stopped all.)
    s.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_tick_missed_under_load_is_sent_late_once_and_the_schedule_goes_on() {
    let s = Scenario::new(&["authorized"])
        .defaults(&digest_block("*/2 * * * * *", "always"))
        .start()
        .await;
    eventually(Duration::from_secs(5), "a digest", || {
        !s.hook.events("digest").is_empty()
    })
    .await;
    // The only runtime thread is busy for 4.2 s: at least one tick passes
    // unseen.
    let before = s.hook.events("digest").len();
    std::thread::sleep(Duration::from_millis(4200));
    let unblocked = tokio::time::Instant::now();
    real_wait(Duration::from_secs(4)).await;
    let after: Vec<tokio::time::Instant> = s.hook.events("digest")[before..]
        .iter()
        .map(|d| d.at)
        .collect();
    assert!(
        after
            .first()
            .is_some_and(|at| *at - unblocked < Duration::from_millis(1500)),
        "the missed tick was not sent late: {:?}",
        after.iter().map(|at| *at - unblocked).collect::<Vec<_>>()
    );
    // No backlog: the ticks that passed are one late digest, and the
    // schedule goes on from now (a second or more apart).
    for pair in after.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(900),
            "two digests {:?} apart after the stall",
            pair[1] - pair[0]
        );
    }
    assert!(after.len() >= 2, "the schedule stalled after a missed tick");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_can_be_sent_now_through_one_channel() {
    let s = Scenario::new(&["authorized"]).start().await;
    let (status, body) = s
        .daemon
        .api_post("/api/v1/channels/hook/digest", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], true);
    let digest = &s.hook.events("digest")[0].json;
    assert_eq!(digest["digest"], "test");
    assert_eq!(digest["counts"]["instances"], 1);
    let (status, body) = s
        .daemon
        .api_post("/api/v1/channels/nope/digest", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 404, "{body}");
    s.stop().await;
}
