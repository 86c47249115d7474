//! The admin listener: `/metrics`, `/-/healthy`, `/-/ready` and a small index.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AdminState {
    pub metrics: Metrics,
    /// Set once the config is loaded and supervisors run.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .with_state(state)
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
        "</ul></body></html>"
    ))
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn healthy() -> &'static str {
    "relinkd is healthy.\n"
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "relinkd is ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "relinkd is starting.\n")
    }
}
