//! The vendor routes (`/waInstance{id}/{method}/{token}`): admission, faults,
//! then what the method does.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::Ctx;
use super::faults::FaultKind;
use super::reply::Reply;
use super::state::Admission;

/// How long a `Hang` fault holds a request: far beyond any client timeout.
const HANG_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

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

pub(crate) async fn vendor(
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
    if method == "getStateInstance" {
        inner.state_calls.count();
    }
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
