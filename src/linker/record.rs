//! The policy's phase and reboot times as the state file keeps them
//! (`state::Saved`), and back: times become Unix milliseconds on the wall
//! clock.

use std::time::SystemTime;

use tokio::time::Instant;

use super::policy::{Code, Phase, Policy};
use crate::clock;
use crate::greenapi::InstanceState;
use crate::state::{RebootRecord, Record, Saved};

fn to_ms(at: SystemTime) -> u64 {
    clock::unix_millis(at)
}

/// Any `u64` is a time (clamped by the clock, then by the policy's restore).
fn from_ms(ms: u64) -> tokio::time::Instant {
    clock::instant(clock::from_unix_millis(ms))
}

/// What a policy keeps across a restart.
pub fn saved_of(policy: &Policy) -> Saved {
    Saved {
        episode: policy.persisted().as_ref().and_then(record_of),
        reboot: RebootRecord {
            last_reboot_ms: policy
                .reboots()
                .last_reboot
                .map(|at| to_ms(clock::wall(at))),
        },
    }
}

/// The last reboot a record restores (clamped by `Policy::with_last_reboot`;
/// one further back than an `Instant` holds maps to now, which holds the
/// next reboot back rather than letting one through early).
pub fn last_reboot_of(record: &RebootRecord) -> Option<Instant> {
    record.last_reboot_ms.map(from_ms)
}

/// The record of a policy phase; `None` for `Watching` (nothing to keep).
pub fn record_of(phase: &Phase) -> Option<Record> {
    let ms = |at| to_ms(clock::wall(at));
    Some(match phase {
        Phase::Watching => return None,
        Phase::Linking {
            started,
            codes_used,
            code,
        } => Record::Linking {
            episode_started_ms: ms(*started),
            codes_used: *codes_used,
            code_expires_ms: code.map(|c| ms(c.expires_at)),
            code_delivered: code.and_then(|c| c.delivered),
        },
        Phase::Paused {
            started,
            until,
            codes_used,
        } => Record::Paused {
            episode_started_ms: ms(*started),
            codes_used: *codes_used,
            paused_until_ms: ms(*until),
        },
        Phase::Alerted(state) => Record::Alerted {
            state: state.as_str().to_owned(),
        },
        Phase::Waiting { started, .. } => Record::Waiting {
            episode_started_ms: ms(*started),
        },
    })
}

/// The phase a record restores (clamped by `Policy::restore`).
pub fn phase_of(record: &Record) -> Phase {
    match record {
        Record::Linking {
            episode_started_ms,
            codes_used,
            code_expires_ms,
            code_delivered,
        } => Phase::Linking {
            started: from_ms(*episode_started_ms),
            codes_used: *codes_used,
            code: code_expires_ms.map(|ms| Code {
                expires_at: from_ms(ms),
                delivered: *code_delivered,
            }),
        },
        Record::Paused {
            episode_started_ms,
            codes_used,
            paused_until_ms,
        } => Phase::Paused {
            started: from_ms(*episode_started_ms),
            until: from_ms(*paused_until_ms),
            codes_used: *codes_used,
        },
        Record::Alerted { state } => Phase::Alerted(InstanceState::parse(state)),
        // `Policy::restore` asks the calendar when the wait ends.
        Record::Waiting { episode_started_ms } => Phase::Waiting {
            started: from_ms(*episode_started_ms),
            opens: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn persisted_episodes_round_trip_through_records() {
        let now = tokio::time::Instant::now();
        let p = Phase::Linking {
            started: now,
            codes_used: 3,
            code: Some(Code {
                expires_at: now + Duration::from_secs(150),
                delivered: Some(true),
            }),
        };
        let back = phase_of(&record_of(&p).unwrap());
        let Phase::Linking {
            code: Some(c),
            codes_used: 3,
            ..
        } = back
        else {
            panic!("{back:?}")
        };
        let diff = (c.expires_at - now).as_millis().abs_diff(150_000);
        assert!(diff <= 2, "{diff}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_reboot_round_trips_through_records() {
        let now = tokio::time::Instant::now();
        let record = RebootRecord {
            last_reboot_ms: Some(to_ms(clock::wall(now - Duration::from_secs(600)))),
        };
        let back = last_reboot_of(&record).unwrap();
        assert!((now - back).as_millis().abs_diff(600_000) <= 2);
        assert_eq!(last_reboot_of(&RebootRecord::default()), None);
    }
}
