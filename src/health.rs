//! Whether the fleet makes progress, told to systemd (watchdog pings,
//! `STATUS=`) and to `/-/ready`. A supervisor past its progress deadline
//! is wedged, unless vendor requests are still completing (a slow vendor is
//! a backlog, not a wedge); a supervisor that stopped or panicked leaves its
//! instance unwatched. Either way the watchdog ping is withheld, so systemd
//! restarts relinkd, and `/-/ready` answers 503.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::greenapi::Client;
use crate::linker::FleetView;
use crate::readiness::Readiness;
use crate::service::Notifier;

/// How often STATUS= is refreshed when systemd wants no watchdog pings.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// What one look at the fleet saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Supervisors past their progress deadline.
    pub overdue: usize,
    /// Supervisors whose task has ended (they never should).
    pub stopped: usize,
    /// Supervisors that panicked since start.
    pub dead: usize,
    /// Vendor requests answered or failed since the previous look.
    pub completed_since: u64,
}

/// Whether the fleet makes progress: every supervisor alive, and none
/// overdue unless requests are still completing.
pub fn progressing(seen: Observation) -> bool {
    seen.stopped == 0 && seen.dead == 0 && (seen.overdue == 0 || seen.completed_since > 0)
}

/// Looks at the fleet every half watchdog interval (or every 10 s): sends
/// `STATUS=` when the summary changes, pings the watchdog while the fleet
/// makes progress, and tells `readiness` either way.
pub async fn report(
    fleet: FleetView,
    client: Client,
    notifier: Notifier,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let watchdog = notifier.watchdog_interval();
    let period = watchdog.map_or(STATUS_INTERVAL, |w| w / 2);
    let mut ticker = tokio::time::interval(period);
    let mut last_status = String::new();
    let mut last_completed = client.completed();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return,
        }
        let health = fleet.health(Instant::now());
        let summary = health.summary.to_string();
        let completed = client.completed();
        let seen = Observation {
            overdue: health.overdue,
            stopped: health.stopped,
            dead: readiness.dead_supervisors(),
            completed_since: completed.wrapping_sub(last_completed),
        };
        last_completed = completed;
        let progressing = progressing(seen);
        readiness.set_progressing(progressing);
        if summary != last_status {
            notifier.status(&summary);
            last_status = summary;
        }
        if progressing {
            if watchdog.is_some() {
                notifier.watchdog();
            }
        } else {
            tracing::error!(
                overdue = seen.overdue,
                first = health.first_overdue,
                stopped = seen.stopped,
                dead = seen.dead,
                "supervisors are not making progress; withholding the watchdog ping"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: Observation = Observation {
        overdue: 0,
        stopped: 0,
        dead: 0,
        completed_since: 0,
    };

    #[test]
    fn a_quiet_healthy_fleet_makes_progress() {
        assert!(progressing(HEALTHY));
    }

    #[test]
    fn an_overdue_supervisor_with_no_request_completing_is_a_wedge() {
        assert!(!progressing(Observation {
            overdue: 1,
            ..HEALTHY
        }));
    }

    #[test]
    fn overdue_supervisors_while_requests_complete_are_a_backlog_not_a_wedge() {
        assert!(progressing(Observation {
            overdue: 500,
            completed_since: 3,
            ..HEALTHY
        }));
    }

    #[test]
    fn a_stopped_or_dead_supervisor_is_never_progress_whatever_completes() {
        for seen in [
            Observation {
                stopped: 1,
                completed_since: 100,
                ..HEALTHY
            },
            Observation {
                dead: 1,
                completed_since: 100,
                ..HEALTHY
            },
        ] {
            assert!(!progressing(seen), "{seen:?}");
        }
    }
}
