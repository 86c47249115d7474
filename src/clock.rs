//! Wall-clock times derived from the monotonic clock, and how relinkd writes
//! times. Expiries shown to admins, exported in metrics and persisted across
//! restarts are computed here, so they follow tokio's clock (and its paused
//! clock in tests). The two clocks are tied by an offset that is re-read
//! when the real clocks drift apart by more than [`REANCHOR_AFTER`]: after a
//! host suspend (the monotonic clock stops) or an NTP step, linking windows
//! and times shown follow the system clock again at the next call, not at
//! the next restart; small slews do not move times already shown.
//!
//! Every conversion and every format here is total: a time from a state
//! file or a vendor, however far off, is clamped, never a panic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Latest time relinkd writes: 9999-12-31T23:59:59Z (RFC 3339 has four-digit
/// years). Later times are written as this.
const LATEST_WRITTEN: Duration = Duration::from_secs(253_402_300_799);

/// Furthest ahead an instant is ever placed (no deadline relinkd keeps is
/// anywhere near; this only keeps arithmetic from overflowing).
const FURTHEST_AHEAD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The fixed origin of [`OFFSET`] and of the wake grid: the monotonic clock
/// read once, with the wall clock read beside it for the first offset.
fn origin() -> std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(|| {
        let (wall, origin) = (SystemTime::now(), std::time::Instant::now());
        OFFSET.store(offset_of(wall, Duration::ZERO), Ordering::Relaxed);
        origin
    })
}

/// How far the real clocks may drift apart before the offset is re-read:
/// more than NTP slews in a while, less than anyone would notice in a
/// linking window.
const REANCHOR_AFTER: Duration = Duration::from_secs(1);

/// Wall time (Unix nanoseconds) minus monotonic time since the origin, as
/// last read (first by [`origin`]); one atomic, so `wall` takes no lock.
static OFFSET: AtomicI64 = AtomicI64::new(0);

/// Unix nanoseconds of `wall` minus the nanoseconds `since_origin`
/// (saturating: only absurd clocks reach the ends).
fn offset_of(wall: SystemTime, since_origin: Duration) -> i64 {
    let wall = match wall.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN + 1, |n| -n),
    };
    let mono = i64::try_from(since_origin.as_nanos()).unwrap_or(i64::MAX);
    wall.saturating_sub(mono)
}

/// Whether the offset the real clocks show now differs from the one in use
/// by more than [`REANCHOR_AFTER`] (the system clock was stepped, or the
/// monotonic clock stood still through a suspend).
fn drifted(in_use: i64, real: i64) -> bool {
    in_use.abs_diff(real) > REANCHOR_AFTER.as_nanos() as u64
}

/// The offset to map instants with: the one in use, unless the real clocks
/// (never tokio's, so a paused clock in tests is unaffected) have drifted
/// from it; then theirs, kept for the next calls.
fn offset() -> i64 {
    let origin = origin();
    let in_use = OFFSET.load(Ordering::Relaxed);
    let real = offset_of(SystemTime::now(), origin.elapsed());
    if drifted(in_use, real) {
        OFFSET.store(real, Ordering::Relaxed);
        real
    } else {
        in_use
    }
}

/// Spacing of the moments supervisors wake at for their own deadlines.
/// With one wake-up a millisecond, waking (the poll, the timer wheel, the
/// thread's park and unpark) cost more than the polls themselves; on a grid
/// 50 ms apart the polls of a large fleet share their wake-ups (at 10,000
/// instances polled every 10 s: 82 -> 40 µs of CPU a poll). A poll 50 ms
/// late is of no consequence.
const WAKE_GRID: Duration = Duration::from_millis(50);

/// `at`, or the first point of the wake grid after it.
pub fn on_wake_grid(at: Instant) -> Instant {
    let origin = Instant::from_std(origin());
    let Some(offset) = at.checked_duration_since(origin) else {
        return at;
    };
    let grid = WAKE_GRID.as_nanos();
    let late_by = (grid - offset.as_nanos() % grid) % grid;
    // Below 50 ms, so it fits.
    at.checked_add(Duration::from_nanos(late_by as u64))
        .unwrap_or(at)
}

/// The wall-clock time of a tokio instant.
pub fn wall(at: Instant) -> SystemTime {
    wall_at(offset(), origin(), at.into_std())
}

/// `at` on the wall clock, given the `offset` from the monotonic `origin`.
fn wall_at(offset: i64, origin: std::time::Instant, at: std::time::Instant) -> SystemTime {
    // Unix nanoseconds of `at`, in i128: no sum of these can overflow it.
    let since_origin = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    let mono = match at.checked_duration_since(origin) {
        Some(d) => since_origin(d),
        None => -since_origin(origin - at),
    };
    let unix = i128::from(offset) + mono;
    if unix <= 0 {
        return UNIX_EPOCH;
    }
    let unix = u64::try_from(unix).map_or(Duration::MAX, Duration::from_nanos);
    UNIX_EPOCH
        .checked_add(unix)
        .unwrap_or(UNIX_EPOCH + LATEST_WRITTEN)
}

/// The tokio instant of a wall-clock time (a time further back than an
/// `Instant` can hold maps to now; one absurdly far ahead, to a century).
pub fn instant(at: SystemTime) -> Instant {
    let now = Instant::now();
    let wall_now = wall(now);
    match at.duration_since(wall_now) {
        Ok(ahead) => now + ahead.min(FURTHEST_AHEAD),
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

/// Now, on the wall clock.
pub fn now() -> SystemTime {
    wall(Instant::now())
}

/// Unix seconds of a wall-clock time (0 before 1970).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Unix milliseconds of a wall-clock time (0 before 1970).
pub fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall-clock time `ms` Unix milliseconds stand for.
pub fn from_unix_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + LATEST_WRITTEN)
}

/// Within what RFC 3339 can write: 1970 to the end of year 9999.
fn writable(at: SystemTime) -> SystemTime {
    at.clamp(UNIX_EPOCH, UNIX_EPOCH + LATEST_WRITTEN)
}

/// `2026-11-29T10:02:30Z`
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(writable(at)).to_string()
}

/// `2026-11-29 10:02:30 UTC`
pub fn utc(at: SystemTime) -> String {
    let rfc = rfc3339(at);
    format!("{} UTC", rfc.trim_end_matches('Z').replacen('T', " ", 1))
}

/// `10:02:30 UTC`
pub fn utc_time_of_day(at: SystemTime) -> String {
    utc(at)
        .split_once(' ')
        .map_or_else(String::new, |(_, time)| time.to_owned())
}

/// `2026-11-29 11:02:30 CET` in `zone`; `None` for an unknown zone.
pub fn in_zone(at: SystemTime, zone: &str) -> Option<String> {
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let ts = jiff::Timestamp::try_from(writable(at)).ok()?;
    Some(
        ts.to_zoned_datetime(tz)
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_the_tokio_clock() {
        let start = now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let later = now();
        assert_eq!(later.duration_since(start).unwrap().as_secs(), 3600);
    }

    #[test]
    fn the_offset_is_reread_only_when_the_real_clocks_drift_apart_by_over_a_second() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_946_550);
        let in_use = offset_of(at, Duration::from_secs(100));
        // A second later on both clocks: the same offset.
        assert_eq!(
            offset_of(at + Duration::from_secs(1), Duration::from_secs(101)),
            in_use
        );
        // Slews within the tolerance keep it.
        for skew_ms in [0, 1, 500, 1000] {
            let slewed = offset_of(
                at + Duration::from_millis(skew_ms),
                Duration::from_secs(100),
            );
            assert!(!drifted(in_use, slewed), "{skew_ms} ms ahead");
            let slewed = offset_of(
                at - Duration::from_millis(skew_ms),
                Duration::from_secs(100),
            );
            assert!(!drifted(in_use, slewed), "{skew_ms} ms behind");
        }
        // A suspend of an hour: the wall clock went on, the monotonic did not.
        let resumed = offset_of(at + Duration::from_secs(3600), Duration::from_secs(100));
        assert!(drifted(in_use, resumed));
        // An NTP step back of 2 s.
        let stepped = offset_of(at - Duration::from_secs(2), Duration::from_secs(100));
        assert!(drifted(in_use, stepped));
    }

    #[test]
    fn a_new_offset_moves_every_wall_time_by_the_drift() {
        let origin = std::time::Instant::now();
        let at = origin + Duration::from_secs(60);
        let start = UNIX_EPOCH + Duration::from_secs(1_795_946_550);
        let before = offset_of(start, Duration::ZERO);
        assert_eq!(wall_at(before, origin, at), start + Duration::from_secs(60));
        let after_suspend = offset_of(start + Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(
            wall_at(after_suspend, origin, at),
            start + Duration::from_secs(3660)
        );
        // Instants before the origin, and absurd offsets, stay in range.
        assert_eq!(wall_at(before, at, origin), start - Duration::from_secs(60));
        assert_eq!(wall_at(i64::MIN, origin, at), UNIX_EPOCH);
        let _ = wall_at(i64::MAX, origin, at);
    }

    #[test]
    fn instants_and_wall_times_round_trip() {
        let at = Instant::now() + Duration::from_secs(90);
        let back = instant(wall(at));
        let diff = if back > at { back - at } else { at - back };
        assert!(diff < Duration::from_millis(5));
    }

    #[test]
    fn deadlines_move_later_onto_one_grid_by_less_than_its_spacing() {
        let base = on_wake_grid(Instant::now() + Duration::from_secs(5));
        assert_eq!(on_wake_grid(base), base, "a grid point stays");
        for late in [1, 999_999, 20_000_000, 49_999_999] {
            let at = base + Duration::from_nanos(late);
            assert_eq!(on_wake_grid(at), base + WAKE_GRID, "{late} ns past a point");
        }
        let far = Instant::now() + FURTHEST_AHEAD;
        assert!(on_wake_grid(far) >= far);
    }

    #[test]
    fn times_read_naturally_in_utc_and_in_a_zone() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_946_550);
        assert_eq!(rfc3339(t), "2026-11-29T10:02:30Z");
        assert_eq!(utc(t), "2026-11-29 10:02:30 UTC");
        assert_eq!(utc_time_of_day(t), "10:02:30 UTC");
        assert_eq!(
            in_zone(t, "Europe/Berlin").as_deref(),
            Some("2026-11-29 11:02:30 CET")
        );
        assert_eq!(in_zone(t, "Mars/Olympus"), None);
    }

    #[test]
    fn no_representable_time_makes_formatting_or_conversion_panic() {
        for ms in [0, 253_402_300_800_000, u64::MAX / 2, u64::MAX] {
            let at = from_unix_millis(ms);
            assert!(rfc3339(at).ends_with('Z'));
            assert!(utc(at).ends_with(" UTC"));
            let _ = in_zone(at, "Asia/Tokyo");
            let _ = instant(at);
        }
        assert_eq!(rfc3339(from_unix_millis(u64::MAX)), "9999-12-31T23:59:59Z");
        let long_ago = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(long_ago), "1970-01-01T00:00:00Z");
        let _ = instant(long_ago);
    }
}
