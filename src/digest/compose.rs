//! A digest's contents from the fleet's statuses and the totals since the
//! previous one: pure, so every rule is unit-tested.
//!
//! Every instance is counted once (linked, unlinked, paused, restricted or
//! other: the counts add up to `instances`); the list holds every instance
//! counted unlinked or paused (a paused one is unlinked too, and often the
//! one unlinked longest), each with its state and phase, so the list and
//! `more_unlinked` add up to `unlinked + paused`.

use std::time::SystemTime;

use crate::clock;
use crate::delivery::{Counts, Digest, Period, SinceLast, Unlinked};
use crate::linker::InstanceStatus;

/// Most unlinked or paused instances a digest lists; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// The fleet-wide totals a digest reports the growth of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub codes_delivered: u64,
    pub relinks: u64,
    pub delivery_failures: u64,
    pub reloads: u64,
}

impl Totals {
    /// What grew from `earlier` to `self` (a counter never shrinks; a
    /// reset one counts from zero).
    fn since(self, earlier: Totals) -> SinceLast {
        let grew = |now: u64, then: u64| if now >= then { now - then } else { now };
        SinceLast {
            codes_delivered: grew(self.codes_delivered, earlier.codes_delivered),
            relinks: grew(self.relinks, earlier.relinks),
            delivery_failures: grew(self.delivery_failures, earlier.delivery_failures),
            reloads: grew(self.reloads, earlier.reloads),
        }
    }
}

/// The digest `name` for `statuses`, covering `from` to `to`.
pub fn compose(
    name: &str,
    statuses: &[InstanceStatus],
    (from, to): (SystemTime, SystemTime),
    (earlier, now): (Totals, Totals),
) -> Digest {
    let mut counts = Counts {
        instances: statuses.len(),
        ..Counts::default()
    };
    let mut unlinked: Vec<Unlinked> = Vec::new();
    for s in statuses {
        let state = s.state.as_deref();
        // Which count it adds to, and whether it is listed.
        let (count, listed) = match (s.phase.as_str(), state) {
            ("paused" | "waiting", _) => (&mut counts.paused, true),
            ("restricted", _) => (&mut counts.restricted, false),
            (_, Some("authorized")) => (&mut counts.linked, false),
            (_, Some("notAuthorized")) => (&mut counts.unlinked, true),
            _ => (&mut counts.other, false),
        };
        *count += 1;
        if listed {
            unlinked.push(Unlinked {
                id: s.id,
                name: s.name.clone(),
                state: state.unwrap_or("unknown").to_owned(),
                phase: s.phase.clone(),
                since: s
                    .episode_started
                    .clone()
                    .or_else(|| s.state_since.clone())
                    .unwrap_or_default(),
            });
        }
    }
    // RFC 3339 UTC sorts as time: longest unlinked first.
    unlinked.sort_by(|a, b| a.since.cmp(&b.since).then(a.id.cmp(&b.id)));
    let more_unlinked = unlinked.len().saturating_sub(MAX_LISTED);
    unlinked.truncate(MAX_LISTED);
    let since_last = now.since(earlier);
    let period = Period {
        from: clock::rfc3339(from),
        to: clock::rfc3339(to),
    };
    let text = text(
        name,
        &counts,
        &unlinked,
        more_unlinked,
        &since_last,
        (from, to),
    );
    Digest {
        digest: name.to_owned(),
        period,
        counts,
        unlinked,
        more_unlinked,
        since_last,
        text,
    }
}

/// Whether anything is unlinked (for `send = "when_unlinked"`).
pub fn anything_unlinked(digest: &Digest) -> bool {
    digest.counts.unlinked + digest.counts.paused > 0
}

fn text(
    name: &str,
    c: &Counts,
    unlinked: &[Unlinked],
    more: usize,
    since: &SinceLast,
    (from, to): (SystemTime, SystemTime),
) -> String {
    let mut out = format!(
        "relinkd digest {name} ({}): {} instances: {} linked, {} unlinked, {} paused, {} \
         restricted, {} other.",
        clock::utc(to),
        c.instances,
        c.linked,
        c.unlinked,
        c.paused,
        c.restricted,
        c.other
    );
    if !unlinked.is_empty() {
        out.push_str("\nUnlinked and paused, longest first:");
        for u in unlinked {
            let paused = match u.phase.as_str() {
                "paused" => ", paused (code budget spent)",
                "waiting" => ", paused (waiting for a linking window)",
                _ => "",
            };
            out.push_str(&format!(
                "\n- {} ({}) since {}{paused}",
                u.name, u.id, u.since
            ));
        }
        if more > 0 {
            out.push_str(&format!("\n... and {more} more"));
        }
    }
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out.push_str(&format!(
        "\nSince {}: {}, {}, {}, {}.",
        clock::utc(from),
        plural(since.codes_delivered, "code delivered", "codes delivered"),
        plural(since.relinks, "relink", "relinks"),
        plural(
            since.delivery_failures,
            "delivery failure",
            "delivery failures"
        ),
        plural(since.reloads, "reload", "reloads"),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(id: u64, state: &str, phase: &str, since: &str) -> InstanceStatus {
        InstanceStatus {
            id,
            name: format!("line-{id}"),
            state: Some(state.into()),
            state_since: Some(since.into()),
            phase: phase.into(),
            episode_started: (state == "notAuthorized").then(|| since.into()),
            codes_used: 0,
            codes_per_episode: 4,
            code_expires_at: None,
            paused_until: None,
            next_action: "poll".into(),
            next_at: since.into(),
            last_error: None,
            consecutive_failures: 0,
            delivery_errors: Default::default(),
        }
    }

    fn period() -> (SystemTime, SystemTime) {
        let to = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        (to - Duration::from_secs(86_400), to)
    }

    #[test]
    fn counts_by_state_and_the_unlinked_longest_first() {
        let statuses = vec![
            status(1, "authorized", "watching", "2027-01-01T00:00:00Z"),
            status(2, "notAuthorized", "linking", "2027-01-03T10:00:00Z"),
            status(3, "notAuthorized", "paused", "2027-01-02T10:00:00Z"),
            status(4, "yellowCard", "restricted", "2027-01-01T00:00:00Z"),
            status(5, "starting", "watching", "2027-01-01T00:00:00Z"),
            status(6, "authorized", "watching", "2027-01-01T00:00:00Z"),
        ];
        let earlier = Totals::default();
        let now = Totals {
            codes_delivered: 3,
            relinks: 1,
            delivery_failures: 0,
            reloads: 2,
        };
        let d = compose("morning", &statuses, period(), (earlier, now));
        assert_eq!(
            d.counts,
            Counts {
                instances: 6,
                linked: 2,
                unlinked: 1,
                paused: 1,
                restricted: 1,
                other: 1
            }
        );
        let ids: Vec<u64> = d.unlinked.iter().map(|u| u.id).collect();
        assert_eq!(ids, [3, 2], "longest unlinked first");
        let phases: Vec<&str> = d.unlinked.iter().map(|u| u.phase.as_str()).collect();
        assert_eq!(phases, ["paused", "linking"]);
        assert_eq!(d.since_last.codes_delivered, 3);
        assert_eq!(d.since_last.reloads, 2);
        assert!(
            d.text
                .contains("6 instances: 2 linked, 1 unlinked, 1 paused"),
            "{}",
            d.text
        );
        assert!(
            d.text.contains(
                "Unlinked and paused, longest first:\n\
                 - line-3 (3) since 2027-01-02T10:00:00Z, paused (code budget spent)\n\
                 - line-2 (2) since 2027-01-03T10:00:00Z\n"
            ),
            "{}",
            d.text
        );
        assert!(
            d.text
                .contains("3 codes delivered, 1 relink, 0 delivery failures, 2 reloads"),
            "{}",
            d.text
        );
        assert!(anything_unlinked(&d));
    }

    #[test]
    fn at_most_twenty_are_listed_and_the_rest_counted() {
        let statuses: Vec<InstanceStatus> = (0..25)
            .map(|i| {
                status(
                    i,
                    "notAuthorized",
                    "linking",
                    &format!("2027-01-01T00:{i:02}:00Z"),
                )
            })
            .collect();
        let d = compose(
            "morning",
            &statuses,
            period(),
            (Totals::default(), Totals::default()),
        );
        assert_eq!(d.unlinked.len(), 20);
        assert_eq!(d.more_unlinked, 5);
        assert!(d.text.contains("... and 5 more"));
    }

    #[test]
    fn the_counts_the_list_and_the_text_agree() {
        // Only paused ones, of both kinds, past the listing limit; and an
        // unlinked one with a state other than notAuthorized now.
        let mut statuses: Vec<InstanceStatus> = (0..22)
            .map(|i| {
                let phase = if i % 2 == 0 { "paused" } else { "waiting" };
                status(
                    i,
                    "notAuthorized",
                    phase,
                    &format!("2027-01-01T00:{i:02}:00Z"),
                )
            })
            .collect();
        statuses.push(status(50, "starting", "paused", "2027-01-01T01:00:00Z"));
        statuses.push(status(51, "sleepMode", "linking", "2027-01-01T01:00:00Z"));
        let d = compose(
            "morning",
            &statuses,
            period(),
            (Totals::default(), Totals::default()),
        );
        let c = &d.counts;
        assert_eq!(
            c.linked + c.unlinked + c.paused + c.restricted + c.other,
            c.instances
        );
        assert_eq!((c.unlinked, c.paused, c.other), (0, 23, 1));
        assert_eq!(d.unlinked.len() + d.more_unlinked, c.unlinked + c.paused);
        assert_eq!(d.more_unlinked, 3);
        assert!(d.unlinked.iter().all(|u| u.phase != "linking"));
        assert!(d.text.contains("0 unlinked, 23 paused"), "{}", d.text);
        assert!(d.text.contains("... and 3 more"), "{}", d.text);
        assert_eq!(d.text.matches(", paused (").count(), 20, "{}", d.text);
        assert!(d.text.contains(
            "- line-1 (1) since 2027-01-01T00:01:00Z, paused (waiting for a linking window)"
        ));
        assert!(anything_unlinked(&d));
    }

    #[test]
    fn a_quiet_fleet_has_nothing_unlinked() {
        let statuses = vec![status(1, "authorized", "watching", "2027-01-01T00:00:00Z")];
        let d = compose(
            "heartbeat",
            &statuses,
            period(),
            (Totals::default(), Totals::default()),
        );
        assert!(!anything_unlinked(&d));
        assert!(d.unlinked.is_empty());
    }
}
