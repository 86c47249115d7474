//! The vendor routes (`/waInstance{id}/{method}/{token}`), router assembly
//! and the reply type shared by the simulator's modules.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::Simulator;
use super::faults::FaultKind;
use super::state::Admission;

/// How long a `Hang` fault holds a request: far beyond any client timeout.
const HANG_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) sim: Simulator,
    /// Becomes `true` when the server shuts down: held requests are released.
    release: watch::Receiver<bool>,
}

pub(crate) fn router(sim: Simulator, release: watch::Receiver<bool>) -> Router {
    super::control::routes()
        .route("/{wa}/{method}/{token}", any(vendor))
        .with_state(Ctx { sim, release })
}

/// An answer, before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    body: ReplyBody,
    pub(crate) retry_after: Option<u64>,
}

#[derive(Debug, Clone)]
enum ReplyBody {
    Json(Value),
    Text(String),
    RawJson(&'static str),
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: ReplyBody::Json(body),
            retry_after: None,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: ReplyBody::Text(body.into()),
            retry_after: None,
        }
    }

    /// A body served as JSON but sent verbatim (possibly not valid JSON).
    pub(crate) fn raw_json(status: u16, body: &'static str) -> Self {
        Self {
            status,
            body: ReplyBody::RawJson(body),
            retry_after: None,
        }
    }

    pub(crate) fn too_many_requests() -> Self {
        Self::json(429, json!({"error": "Too Many Requests"}))
    }

    pub(crate) fn unauthorized() -> Self {
        Self::json(401, json!({"error": "Unauthorized"}))
    }

    pub(crate) fn forbidden() -> Self {
        Self::json(403, json!({"error": "Forbidden"}))
    }

    /// The status actually sent (an invalid code is served as 500).
    pub(crate) fn served_status(&self) -> u16 {
        self.status_code().as_u16()
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let (content_type, body) = match self.body {
            ReplyBody::Json(v) => ("application/json", Body::from(v.to_string())),
            ReplyBody::RawJson(s) => ("application/json", Body::from(s)),
            ReplyBody::Text(s) => ("text/plain; charset=utf-8", Body::from(s)),
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Resolves when the server shuts down; never if it is not served by
/// [`super::serve`].
async fn released(mut release: watch::Receiver<bool>) {
    loop {
        if *release.borrow_and_update() {
            return;
        }
        if release.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Parses `waInstance<digits>`: `None` = not that shape (404), `Some(None)` =
/// digits that are no u64 (no such instance: 403).
fn parse_wa(segment: &str) -> Option<Option<u64>> {
    let digits = segment.strip_prefix("waInstance")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().ok())
}

async fn vendor(
    State(ctx): State<Ctx>,
    http_method: Method,
    path: Result<Path<(String, String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let Ok(Path((wa, method, token))) = path else {
        return Reply::text(404, "Not Found").into_response();
    };
    let Some(id) = parse_wa(&wa) else {
        return Reply::text(404, "Not Found").into_response();
    };
    let Some(id) = id else {
        return Reply::forbidden().into_response();
    };
    let sim = &ctx.sim;
    let inner = sim.inner();
    let now = Instant::now();
    let admission = inner
        .store
        .with(id, now, |i| i.admit(now, &method, &token, &http_method));
    let (seq, vendor_method, fault) = match admission {
        None => return Reply::forbidden().into_response(),
        Some(Admission::Answered(reply)) => return reply.into_response(),
        Some(Admission::Proceed { seq, method, fault }) => (seq, method, fault),
    };
    let finish = |reply: Reply| {
        let status = reply.served_status();
        inner
            .store
            .with(id, Instant::now(), |i| i.finish(seq, status));
        reply.into_response()
    };

    let kind = match fault {
        Some(fault) => {
            if let Some(latency) = fault.latency {
                tokio::select! {
                    () = sleep(latency) => {}
                    () = released(ctx.release.clone()) => {
                        return finish(Reply::text(503, "simulator shutting down"));
                    }
                }
            }
            fault.kind
        }
        None => FaultKind::None,
    };
    match kind {
        FaultKind::None => {}
        FaultKind::Hang => {
            // Recorded with status 0: it never answers while the server runs.
            tokio::select! {
                () = sleep(HANG_FOR) => {}
                () = released(ctx.release.clone()) => {}
            }
            return Reply::text(504, "simulator: hung request released").into_response();
        }
        other => {
            if let Some(reply) = other.reply(vendor_method.name()) {
                return finish(reply);
            }
        }
    }

    let reply = inner
        .store
        .with(id, Instant::now(), |i| {
            let reply = i.handle(vendor_method, &body, Instant::now(), &inner.config);
            i.finish(seq, reply.served_status());
            reply
        })
        // Instances are never removed; answer like the vendor if one were.
        .unwrap_or_else(Reply::forbidden);
    reply.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_segment_must_be_wa_instance_digits() {
        assert_eq!(parse_wa("waInstance1101000001"), Some(Some(1_101_000_001)));
        assert_eq!(parse_wa("waInstance"), None);
        assert_eq!(parse_wa("waInstance12a"), None);
        assert_eq!(parse_wa("wainstance1"), None);
        assert_eq!(parse_wa("waInstance+1"), None);
        assert_eq!(parse_wa("waInstance99999999999999999999999"), Some(None));
    }
}
