//! What a notification is about: the event, the instance, the code and its
//! expiry. Channels turn it into text with their templates (template.rs).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Code,
    Linked,
    Paused,
    Alert,
    Resumed,
    /// `relinkd test-channel`.
    Test,
    /// A `[[digest]]`: the fleet's summary, about no one instance.
    Digest,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Code => "code",
            Event::Linked => "linked",
            Event::Paused => "paused",
            Event::Alert => "alert",
            Event::Resumed => "resumed",
            Event::Test => "test",
            Event::Digest => "digest",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRef {
    pub id: u64,
    pub name: String,
}

/// One message to an instance's admins (or, for a digest, about the fleet).
/// Debug never shows the code.
pub struct Notification {
    /// Stable across retries (the Standard Webhooks `webhook-id`).
    pub id: String,
    pub event: Event,
    /// `None` for a digest.
    pub instance: Option<InstanceRef>,
    /// A digest's contents (never a code).
    pub digest: Option<Arc<Digest>>,
    pub phone: u64,
    /// The instance's last known `stateInstance`.
    pub state: String,
    code: Option<SecretString>,
    pub expires_at: Option<SystemTime>,
    pub paused_until: Option<SystemTime>,
    /// Why: a `paused` notice's `budget` (the code budget is spent) or
    /// `window` (outside the linking windows); an `alert`'s `rebooted`.
    pub reason: Option<&'static str>,
    /// The zone `paused_until` is also shown in: the opening window's
    /// `location` (else the instance's `timezone`).
    pub paused_until_zone: Option<String>,
    /// An `alert` with reason `rebooted`: how long it was `starting`.
    pub stuck_for: Option<std::time::Duration>,
    pub codes_used: u32,
    /// IANA zone in which times are also shown.
    pub timezone: Option<String>,
    /// No attempt starts after this (a code's expiry).
    pub deadline: Instant,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("instance", &self.instance)
            .field("state", &self.state)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A digest: the fleet by state, the unlinked instances, and what happened
/// since the previous digest. Serialized as the webhook payload's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// The `[[digest]]`'s name.
    pub digest: String,
    pub period: Period,
    pub counts: Counts,
    /// The instances counted unlinked or paused, longest unlinked first, at
    /// most 20.
    pub unlinked: Vec<Unlinked>,
    /// Unlinked or paused instances beyond those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_unlinked: usize,
    pub since_last: SinceLast,
    /// The digest as plain text (the default template shows it).
    #[serde(skip)]
    pub text: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// RFC 3339 UTC.
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub instances: usize,
    pub linked: usize,
    pub unlinked: usize,
    pub paused: usize,
    pub restricted: usize,
    pub other: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unlinked {
    pub id: u64,
    pub name: String,
    pub state: String,
    /// As the status API says: `linking` (counted unlinked), `paused` or
    /// `waiting` (counted paused), `watching` (not yet in an episode).
    pub phase: String,
    /// RFC 3339 UTC: since when it is unlinked.
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinceLast {
    pub codes_delivered: u64,
    pub relinks: u64,
    pub delivery_failures: u64,
    pub reloads: u64,
}

/// The JSON payload of webhook-style channels (DESIGN.md).
#[derive(Serialize)]
pub struct Payload<'a> {
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a InstanceRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `paused`: `budget` or `window`; `alert`: `rebooted` (after being
    /// `starting` too long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// `paused`: when codes resume (RFC 3339 UTC), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumes_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a Digest>,
    pub text: &'a str,
}

/// Builds notifications for one instance.
#[derive(Debug, Clone)]
pub struct About {
    pub instance: InstanceRef,
    pub phone: u64,
    pub timezone: Option<String>,
}

impl About {
    fn build(&self, event: Event, state: &str, deadline: Instant) -> Notification {
        Notification {
            instance: Some(self.instance.clone()),
            phone: self.phone,
            state: state.to_owned(),
            timezone: self.timezone.clone(),
            ..Notification::blank(event, deadline)
        }
    }

    /// A code, valid until `expires_at` (`deadline` on tokio's clock).
    pub fn code(
        &self,
        code: SecretString,
        codes_used: u32,
        expires_at: SystemTime,
        deadline: Instant,
    ) -> Notification {
        Notification {
            code: Some(code),
            expires_at: Some(expires_at),
            codes_used,
            ..self.build(Event::Code, "notAuthorized", deadline)
        }
    }

    pub fn linked(&self, deadline: Instant) -> Notification {
        self.build(Event::Linked, "authorized", deadline)
    }

    pub fn paused(&self, codes: u32, until: SystemTime, deadline: Instant) -> Notification {
        Notification {
            paused_until: Some(until),
            reason: Some("budget"),
            codes_used: codes,
            ..self.build(Event::Paused, "notAuthorized", deadline)
        }
    }

    /// Outside every linking window until `opens` (shown also in `zone`).
    pub fn waiting_for_window(
        &self,
        opens: Option<SystemTime>,
        zone: Option<String>,
        deadline: Instant,
    ) -> Notification {
        Notification {
            paused_until: opens,
            reason: Some("window"),
            paused_until_zone: zone,
            ..self.build(Event::Paused, "notAuthorized", deadline)
        }
    }

    /// A linking window opened: codes are requested again.
    pub fn resumed(&self, deadline: Instant) -> Notification {
        self.build(Event::Resumed, "notAuthorized", deadline)
    }

    pub fn alert(&self, state: &str, deadline: Instant) -> Notification {
        self.build(Event::Alert, state, deadline)
    }

    /// The instance was `starting` for `stuck_for` and is being rebooted.
    pub fn rebooting(&self, stuck_for: std::time::Duration, deadline: Instant) -> Notification {
        Notification {
            reason: Some("rebooted"),
            stuck_for: Some(stuck_for),
            ..self.build(Event::Alert, "starting", deadline)
        }
    }

    pub fn test(&self, deadline: Instant) -> Notification {
        self.build(Event::Test, "-", deadline)
    }
}

fn new_id() -> String {
    format!("msg_{:032x}", rand::rng().random::<u128>())
}

impl Notification {
    /// A digest; no attempt starts after `deadline`.
    pub fn digest(digest: Digest, deadline: Instant) -> Self {
        Notification {
            digest: Some(Arc::new(digest)),
            ..Notification::blank(Event::Digest, deadline)
        }
    }

    /// `event` about no one, with nothing set.
    fn blank(event: Event, deadline: Instant) -> Self {
        Notification {
            id: new_id(),
            event,
            instance: None,
            digest: None,
            phone: 0,
            state: String::new(),
            code: None,
            expires_at: None,
            paused_until: None,
            reason: None,
            paused_until_zone: None,
            stuck_for: None,
            codes_used: 0,
            timezone: None,
            deadline,
        }
    }

    /// The code (channels only).
    pub fn code(&self) -> Option<&str> {
        self.code.as_ref().map(|c| c.expose_secret())
    }

    pub fn is_code(&self) -> bool {
        self.event == Event::Code
    }

    /// The webhook payload with `text` as rendered for that channel.
    pub fn payload<'a>(&'a self, text: &'a str) -> Payload<'a> {
        Payload {
            event: self.event.as_str(),
            instance: self.instance.as_ref(),
            code: self.code(),
            expires_at: self.expires_at.map(crate::clock::rfc3339),
            reason: self.reason,
            resumes_at: self
                .paused_until
                .filter(|_| self.event == Event::Paused)
                .map(crate::clock::rfc3339),
            state: self.instance.as_ref().map(|_| self.state.as_str()),
            digest: self.digest.as_deref(),
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn about() -> About {
        About {
            instance: InstanceRef {
                id: 1101000001,
                name: "sales-line".into(),
            },
            phone: 441234567890,
            timezone: None,
        }
    }

    #[test]
    fn a_code_payload_carries_the_code_and_expiry() {
        let n = about().code(
            SecretString::from("ABCD1234"),
            1,
            SystemTime::now() + Duration::from_secs(150),
            Instant::now(),
        );
        let json = serde_json::to_value(n.payload("text")).unwrap();
        assert_eq!(json["event"], "code");
        assert_eq!(json["instance"]["id"], 1101000001u64);
        assert_eq!(json["code"], "ABCD1234");
        assert_eq!(json["state"], "notAuthorized");
        assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn debug_output_never_shows_the_code() {
        let n = about().code(
            SecretString::from("SECRET99"),
            1,
            SystemTime::now(),
            Instant::now(),
        );
        assert!(!format!("{n:?}").contains("SECRET99"));
    }

    #[test]
    fn notices_have_no_code_fields() {
        let n = about().linked(Instant::now());
        let json = serde_json::to_value(n.payload("t")).unwrap();
        assert_eq!(json["event"], "linked");
        assert!(json.get("code").is_none());
        assert!(json.get("expires_at").is_none());
    }
}
