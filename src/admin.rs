//! The admin listener: `/metrics`, `/-/healthy`, `/-/ready`, a small index,
//! and the admin API (`/api/v1/...`, `POST /-/reload`) behind the bearer
//! token of `[daemon] admin_token_*`.

use std::sync::{Arc, RwLock};

use crate::control::Commands;
use crate::digest::{Digests, NotSent};
use crate::forwarded::Forwarded;
use crate::linker::{FleetView, InstanceStatus};
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde_json::json;

/// Narrow handles only: the admin API reads, and asks the control task for
/// anything that changes the daemon.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Metrics,
    /// Whether supervisors run and none has died.
    pub readiness: Readiness,
    /// The fleet's status, never locked by a reload.
    pub fleet: FleetView,
    /// Reloads and relinks.
    pub commands: Commands,
    /// Replaced by a reload; read per request.
    pub admin_token: Arc<RwLock<Option<SecretString>>>,
    /// `POST /hooks/greenapi`, behind its own token.
    pub forwarded: Forwarded,
    /// Digests sent on request.
    pub digests: Digests,
}

pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v1/instances", get(instances))
        .route("/api/v1/instances/{instance}/relink", post(relink))
        .route("/api/v1/channels/{channel}/digest", post(send_digest))
        .route("/-/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ));
    Router::new()
        .route("/", get(index))
        .route("/metrics", {
            // One render at a time: the endpoint needs no token, and each
            // render of a large fleet holds megabytes; scrapes in flight
            // wait their turn without holding a thread.
            let renders = Arc::new(tokio::sync::Semaphore::new(1));
            get(move |state: State<AdminState>, headers: HeaderMap| {
                metrics(state, headers, renders.clone())
            })
        })
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .merge(api)
        .with_state(state.clone())
        .merge(crate::forwarded::router(state.forwarded))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The admin token's check (see `bearer`).
async fn require_admin_token(
    State(state): State<AdminState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let authorized = {
        let token = state.admin_token.read().unwrap_or_else(|e| e.into_inner());
        let Some(token) = token.as_ref() else {
            return error(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: set [daemon] admin_token_file (or _env, _credential)",
            );
        };
        crate::bearer::matches(&headers, token)
    };
    if !authorized {
        return crate::bearer::refused("missing or wrong admin token");
    }
    next.run(request).await
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><title>relinkd</title></head><body>",
        "<h1>relinkd ",
        env!("CARGO_PKG_VERSION"),
        "</h1><ul>",
        "<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>",
        "<li><a href=\"/-/healthy\">/-/healthy</a>: liveness</li>",
        "<li><a href=\"/-/ready\">/-/ready</a>: readiness</li>",
        "<li>/api/v1/instances: fleet status (admin token)</li>",
        "</ul></body></html>"
    ))
}

/// The exposition, gzipped when the scraper accepts it (Prometheus does):
/// a fleet of 50,000 renders 11 MB of text, about 1 MB gzipped. Rendered
/// and compressed on a blocking thread, not on the runtime's worker that
/// the supervisors share.
async fn metrics(
    State(state): State<AdminState>,
    headers: HeaderMap,
    renders: Arc<tokio::sync::Semaphore>,
) -> Response {
    let gzip = accepts_gzip(&headers);
    let Ok(_turn) = renders.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable");
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let text = state.metrics.render();
        if gzip {
            gzipped(text.as_bytes())
        } else {
            text.into_bytes()
        }
    })
    .await;
    let Ok(body) = rendered else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering the metrics failed",
        );
    };
    let content_type = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    // Caches must not hand one encoding to a client that asked for another.
    let vary = (header::VARY, "accept-encoding");
    if gzip {
        (
            [content_type, vary, (header::CONTENT_ENCODING, "gzip")],
            body,
        )
            .into_response()
    } else {
        ([content_type, vary], body).into_response()
    }
}

/// Whether `Accept-Encoding` lists gzip without refusing it (`q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(key, q)| {
                    key.trim().eq_ignore_ascii_case("q") && q.trim().parse::<f32>() == Ok(0.0)
                })
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn gzipped(text: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    // Fastest: the text is repetitive, so even level 1 shrinks it tenfold.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(text)
        .and_then(|()| encoder.finish())
        .expect("writing to a Vec cannot fail")
}

async fn healthy() -> &'static str {
    "relinkd is healthy.\n"
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "relinkd is ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "relinkd is not ready.\n")
    }
}

async fn instances(State(state): State<AdminState>) -> Response {
    Json(json!({
        "summary": state.fleet.summary().to_string(),
        "instances": state.fleet.statuses(),
    }))
    .into_response()
}

/// `{instance}` is an id or a configured name. The answer says what the
/// relink will do, from the instance's status as it stands.
async fn relink(State(state): State<AdminState>, Path(which): Path<String>) -> Response {
    let Some(status) = state.fleet.find(&which) else {
        return error(
            StatusCode::NOT_FOUND,
            "no instance with that id or name in the running config",
        );
    };
    match state.commands.relink(status.id).await {
        Some(true) => {
            tracing::info!(wa_instance = status.id, instance = %status.name, "relink requested over the admin API");
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "id": status.id,
                    "name": status.name,
                    "relink": "requested",
                    "will": what_a_relink_does(&status),
                })),
            )
                .into_response()
        }
        // It left the config between the lookup and the command.
        Some(false) => error(
            StatusCode::NOT_FOUND,
            "no instance with that id or name in the running config",
        ),
        None => shutting_down(),
    }
}

/// What a relink does to an instance in `status` (the policy's rules: a
/// pause ends, a valid code is kept, a restricted number gets no code).
fn what_a_relink_does(status: &InstanceStatus) -> String {
    let then = "relinkd polls it now and, if it is still unlinked, requests a code";
    match (status.phase.as_str(), &status.code_expires_at) {
        ("linking", Some(expires)) => format!(
            "a code is still valid until {expires}: relinkd polls it now and keeps that code \
             (a valid code is never replaced); the next code comes when it expires"
        ),
        ("paused", _) => format!("the pause ends with a fresh code budget: {then}"),
        ("waiting", _) => format!(
            "the linking windows are overridden for one code (the admin is at the phone): {then}"
        ),
        ("restricted", _) => format!(
            "relinkd polls it now; while WhatsApp restricts the number ({}), no code is requested",
            status.state.as_deref().unwrap_or("restricted")
        ),
        _ if status.consecutive_failures > 0 => {
            format!("the backoff after errors is cut short: {then}")
        }
        _ => then.to_owned(),
    }
}

/// A digest of the fleet to one channel now (`relinkd test-channel NAME
/// --digest`); answers when it was delivered or failed.
async fn send_digest(State(state): State<AdminState>, Path(channel): Path<String>) -> Response {
    match state.digests.send_now(&channel).await {
        Some(Ok(())) => Json(json!({"channel": channel, "delivered": true})).into_response(),
        Some(Err(why)) => {
            let status = match why {
                NotSent::UnknownChannel(_) => StatusCode::NOT_FOUND,
                NotSent::Failed(_) => StatusCode::BAD_GATEWAY,
            };
            let body = json!({"channel": channel, "delivered": false, "error": why.to_string()});
            (status, Json(body)).into_response()
        }
        None => shutting_down(),
    }
}

fn shutting_down() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "relinkd is shutting down")
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.commands.reload().await {
        Some(Ok(changes)) => Json(json!({
            "reloaded": true,
            "added": changes.added,
            "removed": changes.removed,
            "updated": changes.updated,
            "unchanged": changes.unchanged,
        }))
        .into_response(),
        Some(Err(message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "reloaded": false, "error": message })),
        )
            .into_response(),
        None => shutting_down(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_served_when_listed_and_not_refused() {
        assert!(accepting("gzip"));
        assert!(accepting("deflate, GZIP;q=0.5"));
        assert!(!accepting("deflate, br"));
        assert!(!accepting("gzip;q=0"));
        assert!(!accepting("gzip; q=0.000"));
        assert!(!accepting("gzip;Q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
