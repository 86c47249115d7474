//! Forwarded GREEN-API notifications (`POST /hooks/greenapi`): a business's
//! own webhook handler may pass the vendor's notifications on to relinkd as
//! a faster signal than polling. relinkd never changes an instance's webhook
//! settings or reads its notification queue; a notification is a hint (the
//! instance is polled now), the poll is the truth.
//!
//! Requests carry `Authorization: Bearer <token>` (GREEN-API sends its
//! `webhookUrlToken` this way), compared in constant time. Without a
//! configured token the endpoint is off (404).

use std::sync::{Arc, RwLock};

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use prometheus::{IntCounterVec, Opts, Registry};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::control::Commands;
use crate::greenapi::InstanceState;

/// Largest body read; a notification is a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// What became of one forwarded request (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A `stateInstanceChanged` for a configured instance: it polls now.
    Accepted,
    /// Another `typeWebhook`: nothing to do.
    Ignored,
    /// A `stateInstanceChanged` for an id relinkd does not watch.
    UnknownInstance,
    Unauthorized,
    /// Not JSON, not a notification, or larger than 64 KiB.
    Malformed,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Ignored,
        Outcome::UnknownInstance,
        Outcome::Unauthorized,
        Outcome::Malformed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Ignored => "ignored",
            Outcome::UnknownInstance => "unknown_instance",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Malformed => "malformed",
        }
    }
}

/// The endpoint's handles: the token (a reload replaces it), the commands
/// it sends, its counter.
#[derive(Clone)]
pub struct Forwarded {
    pub token: Arc<RwLock<Option<SecretString>>>,
    pub commands: Commands,
    outcomes: IntCounterVec,
}

impl Forwarded {
    /// Registers `relinkd_forwarded_webhooks_total{outcome}` (every outcome
    /// at 0) on `registry`.
    pub fn new(
        token: Arc<RwLock<Option<SecretString>>>,
        commands: Commands,
        registry: &Registry,
    ) -> Self {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "relinkd_forwarded_webhooks_total",
                "Forwarded GREEN-API notifications received on POST /hooks/greenapi, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in Outcome::ALL {
            outcomes.with_label_values(&[outcome.as_str()]);
        }
        crate::metrics::register(registry, outcomes.clone());
        Self {
            token,
            commands,
            outcomes,
        }
    }

    fn count(&self, outcome: Outcome) {
        self.outcomes.with_label_values(&[outcome.as_str()]).inc();
    }
}

pub fn router(forwarded: Forwarded) -> Router {
    Router::new()
        .route("/hooks/greenapi", post(receive))
        .with_state(forwarded)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn receive(State(hooks): State<Forwarded>, headers: HeaderMap, body: Body) -> Response {
    let authorized = {
        let token = hooks.token.read().unwrap_or_else(|e| e.into_inner());
        let Some(token) = token.as_ref() else {
            return answer(
                StatusCode::NOT_FOUND,
                json!({"error": "forwarded webhooks are off: set [daemon] \
                       greenapi_webhook_token_file (or _env, _credential)"}),
            );
        };
        crate::bearer::matches(&headers, token)
    };
    if !authorized {
        hooks.count(Outcome::Unauthorized);
        return crate::bearer::refused("missing or wrong bearer token");
    }
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        hooks.count(Outcome::Malformed);
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "the body is larger than 64 KiB"}),
        );
    };
    let notification = match Notification::read(&bytes) {
        Ok(notification) => notification,
        Err(reason) => {
            hooks.count(Outcome::Malformed);
            return answer(StatusCode::BAD_REQUEST, json!({ "error": reason }));
        }
    };
    let Notification::StateChanged { id, state } = notification else {
        hooks.count(Outcome::Ignored);
        return answer(StatusCode::OK, json!({"outcome": "ignored"}));
    };
    match hooks.commands.hint(id, state).await {
        Some(true) => {
            hooks.count(Outcome::Accepted);
            answer(StatusCode::OK, json!({"outcome": "accepted", "id": id}))
        }
        Some(false) => {
            hooks.count(Outcome::UnknownInstance);
            answer(
                StatusCode::OK,
                json!({"outcome": "unknown_instance", "id": id}),
            )
        }
        None => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "relinkd is shutting down"}),
        ),
    }
}

/// What relinkd reads of a GREEN-API notification.
#[derive(Debug, PartialEq, Eq)]
enum Notification {
    /// `stateInstanceChanged` for instance `id`.
    StateChanged { id: u64, state: InstanceState },
    /// Any other `typeWebhook`.
    Other,
}

impl Notification {
    /// The notification in `body`, or a short reason it is not one.
    fn read(body: &[u8]) -> Result<Self, &'static str> {
        let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
        let kind = value
            .get("typeWebhook")
            .and_then(Value::as_str)
            .ok_or("no typeWebhook: not a GREEN-API notification")?;
        if kind != "stateInstanceChanged" {
            return Ok(Notification::Other);
        }
        let id = value
            .pointer("/instanceData/idInstance")
            .and_then(Value::as_u64)
            .ok_or("stateInstanceChanged without instanceData.idInstance")?;
        let state = value
            .get("stateInstance")
            .and_then(Value::as_str)
            .ok_or("stateInstanceChanged without stateInstance")?;
        Ok(Notification::StateChanged {
            id,
            state: InstanceState::parse(state),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_change_names_the_instance_and_its_state() {
        let body = br#"{"typeWebhook":"stateInstanceChanged","instanceData":{"idInstance":1101000001,"wid":"79001234567@c.us","typeInstance":"whatsapp"},"timestamp":1586700690,"stateInstance":"notAuthorized"}"#;
        assert_eq!(
            Notification::read(body),
            Ok(Notification::StateChanged {
                id: 1101000001,
                state: InstanceState::NotAuthorized
            })
        );
    }

    #[test]
    fn other_notifications_are_told_apart_from_malformed_ones() {
        assert_eq!(
            Notification::read(br#"{"typeWebhook":"incomingMessageReceived"}"#),
            Ok(Notification::Other)
        );
        assert_eq!(Notification::read(b"{"), Err("the body is not JSON"));
        assert!(Notification::read(br#"{"x":1}"#).is_err());
        assert!(
            Notification::read(br#"{"typeWebhook":"stateInstanceChanged","stateInstance":"x"}"#)
                .is_err()
        );
    }
}
