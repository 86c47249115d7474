//! `stateInstance` as an open set: the vendor adds states, so an unknown string
//! is kept and reported, never a parse failure.

use std::fmt;

/// Longest unknown state kept (the vendor's are under 20 characters).
const MAX_UNKNOWN_STATE_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Authorized,
    NotAuthorized,
    Blocked,
    SleepMode,
    Starting,
    YellowCard,
    Suspended,
    Other(String),
}

impl InstanceState {
    /// Values of the `state` label of `relinkd_instance_state`; every unknown
    /// state maps to `unknown` so the label set stays bounded.
    pub const METRIC_LABELS: [&'static str; 8] = [
        "authorized",
        "notAuthorized",
        "blocked",
        "sleepMode",
        "starting",
        "yellowCard",
        "suspended",
        "unknown",
    ];

    /// Parses a `stateInstance`. An unknown one is kept as one bounded,
    /// escaped line: it reaches logs, the status API and the state file.
    pub fn parse(s: &str) -> Self {
        match s {
            "authorized" => Self::Authorized,
            "notAuthorized" => Self::NotAuthorized,
            "blocked" => Self::Blocked,
            "sleepMode" => Self::SleepMode,
            "starting" => Self::Starting,
            "yellowCard" => Self::YellowCard,
            "suspended" => Self::Suspended,
            other => Self::Other(crate::redact::printable(other, MAX_UNKNOWN_STATE_CHARS)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(s) => s,
            known => Self::METRIC_LABELS[known.metric_index()],
        }
    }

    /// Index into [`Self::METRIC_LABELS`].
    pub fn metric_index(&self) -> usize {
        match self {
            Self::Authorized => 0,
            Self::NotAuthorized => 1,
            Self::Blocked => 2,
            Self::SleepMode => 3,
            Self::Starting => 4,
            Self::YellowCard => 5,
            Self::Suspended => 6,
            Self::Other(_) => 7,
        }
    }

    /// States in which WhatsApp restricts the number: admins are told once
    /// and no codes are requested.
    pub fn is_alert(&self) -> bool {
        matches!(self, Self::Blocked | Self::Suspended | Self::YellowCard)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_states_round_trip_and_unknown_ones_are_kept() {
        for label in &InstanceState::METRIC_LABELS[..7] {
            assert_eq!(InstanceState::parse(label).as_str(), *label);
        }
        let odd = InstanceState::parse("pendingCode");
        assert_eq!(odd, InstanceState::Other("pendingCode".into()));
        assert_eq!(odd.as_str(), "pendingCode");
        assert_eq!(InstanceState::METRIC_LABELS[odd.metric_index()], "unknown");
    }

    #[test]
    fn an_unknown_state_is_kept_as_one_bounded_line() {
        let forged = InstanceState::parse("odd\n2026-12-01T00:00:00Z ERROR relinkd: forged");
        assert!(!forged.as_str().contains('\n'), "{forged}");
        let huge = InstanceState::parse(&"s".repeat(1 << 20));
        assert!(huge.as_str().chars().count() <= MAX_UNKNOWN_STATE_CHARS + 1);
    }
}
