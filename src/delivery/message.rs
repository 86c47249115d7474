//! What a notification says: the event, the instance, the code and its
//! expiry, and the default texts admins read.

use std::fmt;
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
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Code => "code",
            Event::Linked => "linked",
            Event::Paused => "paused",
            Event::Alert => "alert",
            Event::Resumed => "resumed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRef {
    pub id: u64,
    pub name: String,
}

/// One message to an instance's admins. Debug never shows the code or text.
pub struct Notification {
    /// Stable across retries (the Standard Webhooks `webhook-id`).
    pub id: String,
    pub event: Event,
    pub instance: InstanceRef,
    /// The instance's last known `stateInstance`.
    pub state: String,
    code: Option<SecretString>,
    pub expires_at: Option<SystemTime>,
    /// No attempt starts after this (a code's expiry).
    pub deadline: Instant,
    text: SecretString,
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

/// The JSON payload of webhook-style channels (DESIGN.md).
#[derive(Serialize)]
pub struct Payload<'a> {
    pub event: &'static str,
    pub instance: &'a InstanceRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub state: &'a str,
    pub text: &'a str,
}

impl Notification {
    /// A code message: the code, its expiry in UTC and seconds left, and how
    /// to enter it.
    pub fn code(
        instance: InstanceRef,
        phone: u64,
        code: SecretString,
        expires_at: SystemTime,
        deadline: Instant,
    ) -> Self {
        let left = expires_at
            .duration_since(crate::clock::now())
            .map_or(0, |d| d.as_secs());
        let text = format!(
            "relinkd: linking code for {name} ({id}): {code}\n\
             Expires {expiry} (in {left} s).\n\
             On the phone of +{phone}, open WhatsApp → Linked devices → Link a device → \
             Link with phone number instead, and enter the code.",
            name = instance.name,
            id = instance.id,
            code = code.expose_secret(),
            expiry = format_utc(expires_at),
        );
        Self::build(
            Event::Code,
            instance,
            "notAuthorized".into(),
            Some(code),
            Some(expires_at),
            deadline,
            text,
        )
    }

    pub fn linked(instance: InstanceRef, deadline: Instant) -> Self {
        let text = format!(
            "relinkd: {} ({}) is linked again. Nothing more to do.",
            instance.name, instance.id
        );
        Self::build(
            Event::Linked,
            instance,
            "authorized".into(),
            None,
            None,
            deadline,
            text,
        )
    }

    pub fn paused(instance: InstanceRef, codes: u32, until: SystemTime, deadline: Instant) -> Self {
        let text = format!(
            "relinkd: {name} ({id}) is still not linked after {codes} codes in a row. \
             No more codes until {until}, so WhatsApp does not lock the number out. \
             To get a code sooner: relinkd relink {id}",
            name = instance.name,
            id = instance.id,
            until = format_utc(until),
        );
        Self::build(
            Event::Paused,
            instance,
            "notAuthorized".into(),
            None,
            None,
            deadline,
            text,
        )
    }

    pub fn alert(instance: InstanceRef, state: &str, deadline: Instant) -> Self {
        let text = format!(
            "relinkd: {name} ({id}) is {state}: WhatsApp restricts this number, so no linking \
             codes will be requested. Check the number in the GREEN-API console.",
            name = instance.name,
            id = instance.id,
        );
        Self::build(
            Event::Alert,
            instance,
            state.into(),
            None,
            None,
            deadline,
            text,
        )
    }

    fn build(
        event: Event,
        instance: InstanceRef,
        state: String,
        code: Option<SecretString>,
        expires_at: Option<SystemTime>,
        deadline: Instant,
        text: String,
    ) -> Self {
        Self {
            id: format!("msg_{:032x}", rand::rng().random::<u128>()),
            event,
            instance,
            state,
            code,
            expires_at,
            deadline,
            text: SecretString::from(text),
        }
    }

    /// The human text (holds the code on code events: channels only).
    pub fn text(&self) -> &str {
        self.text.expose_secret()
    }

    pub fn payload(&self) -> Payload<'_> {
        Payload {
            event: self.event.as_str(),
            instance: &self.instance,
            code: self.code.as_ref().map(|c| c.expose_secret()),
            expires_at: self
                .expires_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            state: &self.state,
            text: self.text(),
        }
    }
}

/// `2026-11-29 10:02:30 UTC`
pub fn format_utc(t: SystemTime) -> String {
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", rfc.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn sales() -> InstanceRef {
        InstanceRef {
            id: 1101000001,
            name: "sales-line".into(),
        }
    }

    #[test]
    fn a_code_message_names_the_instance_the_code_its_expiry_and_how_to_enter_it() {
        let expires = SystemTime::now() + Duration::from_secs(150);
        let n = Notification::code(
            sales(),
            441234567890,
            SecretString::from("ABCD1234"),
            expires,
            Instant::now(),
        );
        let text = n.text();
        assert!(text.contains("sales-line (1101000001)"));
        assert!(text.contains("ABCD1234"));
        assert!(text.contains(&format_utc(expires)));
        assert!(text.contains("s)."));
        assert!(text.contains("Link with phone number instead"));
        let json = serde_json::to_value(n.payload()).unwrap();
        assert_eq!(json["event"], "code");
        assert_eq!(json["instance"]["id"], 1101000001u64);
        assert_eq!(json["code"], "ABCD1234");
        assert_eq!(json["state"], "notAuthorized");
        assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn debug_output_never_shows_the_code() {
        let n = Notification::code(
            sales(),
            441234567890,
            SecretString::from("SECRET99"),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(!format!("{n:?}").contains("SECRET99"));
    }

    #[test]
    fn notices_have_no_code_fields() {
        let n = Notification::linked(sales(), Instant::now());
        let json = serde_json::to_value(n.payload()).unwrap();
        assert_eq!(json["event"], "linked");
        assert!(json.get("code").is_none());
        assert!(json.get("expires_at").is_none());
    }

    #[test]
    fn utc_times_read_naturally() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_946_550);
        assert_eq!(format_utc(t), "2026-11-29 10:02:30 UTC");
    }
}
