//! Wall-clock times derived from the monotonic clock. Expiries shown to
//! admins, exported in metrics and persisted across restarts are computed
//! here, so they follow tokio's clock (and its paused clock in tests) and
//! never jump when the system clock is stepped.

use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::time::Instant;

/// The wall clock and the monotonic clock read once, together.
fn anchor() -> &'static (SystemTime, std::time::Instant) {
    static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();
    ANCHOR.get_or_init(|| (SystemTime::now(), std::time::Instant::now()))
}

/// The wall-clock time of a tokio instant.
pub fn wall(at: Instant) -> SystemTime {
    let (wall, mono) = *anchor();
    let at = at.into_std();
    if at >= mono {
        wall + (at - mono)
    } else {
        wall - (mono - at)
    }
}

/// The tokio instant of a wall-clock time (a time further back than an
/// `Instant` can hold maps to now).
pub fn instant(at: SystemTime) -> Instant {
    let now = Instant::now();
    let wall_now = wall(now);
    match at.duration_since(wall_now) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

/// Now, on the wall clock.
pub fn now() -> SystemTime {
    wall(Instant::now())
}

/// Unix seconds of a wall-clock time (0 before 1970).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_the_tokio_clock() {
        let start = now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let later = now();
        assert_eq!(later.duration_since(start).unwrap().as_secs(), 3600);
    }

    #[test]
    fn instants_and_wall_times_round_trip() {
        let at = Instant::now() + Duration::from_secs(90);
        let back = instant(wall(at));
        let diff = if back > at { back - at } else { at - back };
        assert!(diff < Duration::from_millis(5));
    }
}
