//! Control routes under `/sim` (JSON): inspect and drive instances from the
//! demo, from a human with curl, or from tests in another process. They never
//! reveal tokens; they do reveal codes (the simulator is a test double).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Ctx;
use super::faults::parse_fault;
use super::reply::Reply;
use super::state::InstanceSim;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/sim/instances", get(list))
        .route("/sim/instances/{id}", get(one))
        .route("/sim/instances/{id}/enter", post(enter))
        .route("/sim/instances/{id}/logout", post(logout))
        .route("/sim/instances/{id}/state", post(set_state))
        .route(
            "/sim/instances/{id}/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/sim/instances/{id}/code", get(code))
        .route("/sim/instances/{id}/calls", get(calls))
        .route("/sim/instances/{id}/messages", get(messages))
        .route("/sim/stats", get(stats))
}

fn summary(id: u64, instance: &InstanceSim, now: Instant) -> Value {
    json!({
        "id": id,
        "state": instance.state(),
        "code_valid": instance.current_code(now).is_some(),
    })
}

fn bad_request(message: impl Into<String>) -> Response {
    Reply::json(
        400,
        json!({"error": "bad_request", "message": message.into()}),
    )
    .into_response()
}

fn unknown_instance() -> Response {
    Reply::json(404, json!({"error": "unknown_instance"})).into_response()
}

fn ok(body: Value) -> Response {
    Reply::json(200, body).into_response()
}

fn parse_id(raw: &str) -> Result<u64, String> {
    raw.parse()
        .map_err(|_| format!("instance id must be an integer, got {raw:?}"))
}

/// Runs `f` on instance `raw_id`: 400 for a bad id, 404 for an unknown one.
fn on_instance(
    ctx: &Ctx,
    raw_id: &str,
    f: impl FnOnce(u64, &mut InstanceSim, Instant) -> Response,
) -> Response {
    let id = match parse_id(raw_id) {
        Ok(id) => id,
        Err(message) => return bad_request(message),
    };
    let now = Instant::now();
    ctx.sim
        .inner()
        .store
        .with(id, now, |i| f(id, i, now))
        .unwrap_or_else(unknown_instance)
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

async fn list(State(ctx): State<Ctx>) -> Response {
    let now = Instant::now();
    let all = ctx.sim.inner().store.each(now, |id, i| summary(id, i, now));
    ok(Value::Array(all))
}

async fn one(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |id, i, now| {
        let mut body = summary(id, i, now);
        if let Value::Object(fields) = &mut body {
            fields.insert("phone".into(), json!(i.phone));
            fields.insert("codes_issued".into(), json!(i.codes_issued));
            fields.insert("faults".into(), json!(i.faults));
        }
        ok(body)
    })
}

#[derive(Deserialize)]
struct EnterBody {
    code: String,
}

async fn enter(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let body: EnterBody = match parse_body(&body) {
        Ok(b) => b,
        Err(message) => return bad_request(message),
    };
    on_instance(&ctx, &id, |_, i, now| match i.enter(&body.code, now) {
        Ok(()) => ok(json!({"state": i.state()})),
        Err(e) => {
            Reply::json(400, json!({"error": e.reason(), "message": e.to_string()})).into_response()
        }
    })
}

async fn logout(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |_, i, _| {
        i.logout();
        ok(json!({"state": i.state()}))
    })
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
}

async fn set_state(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let body: StateBody = match parse_body(&body) {
        Ok(b) => b,
        Err(message) => return bad_request(message),
    };
    on_instance(&ctx, &id, |_, i, _| {
        i.set_state(&body.state);
        ok(json!({"state": i.state()}))
    })
}

async fn faults(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |_, i, _| ok(json!(i.faults)))
}

async fn add_fault(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let fault = match parse_fault(&body) {
        Ok(f) => f,
        Err(message) => return bad_request(message),
    };
    if let super::FaultKind::Status { code, .. } = &fault.kind
        && !(100..=999).contains(code)
    {
        return bad_request(format!("status code {code} is not in 100..=999"));
    }
    on_instance(&ctx, &id, |_, i, _| {
        i.faults.push(fault);
        ok(json!(i.faults))
    })
}

async fn clear_faults(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |_, i, _| {
        i.faults.clear();
        ok(json!([]))
    })
}

async fn code(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |_, i, now| match i.current_code(now) {
        Some(code) => ok(json!({"code": code})),
        None => Reply::json(404, json!({"error": "no_valid_code"})).into_response(),
    })
}

async fn calls(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    let started = ctx.sim.inner().started;
    on_instance(&ctx, &id, |_, i, _| {
        let calls: Vec<Value> = i
            .calls()
            .into_iter()
            .map(|c| {
                json!({
                    "at_ms": c.at.saturating_duration_since(started).as_millis() as u64,
                    "method": c.method,
                    "status": c.status,
                })
            })
            .collect();
        ok(Value::Array(calls))
    })
}

/// `getStateInstance` calls per wall-clock second over the last `seconds`
/// (default 600, at most 3600), the total, and when the simulator started
/// (Unix ms; a call's `at_ms` counts from it).
async fn stats(
    State(ctx): State<Ctx>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let inner = ctx.sim.inner();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let seconds: u64 = query
        .get("seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let per_second: Vec<Value> = inner
        .state_calls
        .between(now.saturating_sub(seconds), now)
        .into_iter()
        .map(|(second, calls)| json!([second, calls]))
        .collect();
    let started = inner
        .started_wall
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    ok(json!({
        "started_unix_ms": started,
        "state_calls_total": inner.state_calls.total(),
        "state_calls_per_second": per_second,
    }))
}

async fn messages(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    on_instance(&ctx, &id, |_, i, _| {
        let sent: Vec<Value> = i
            .sent
            .iter()
            .map(|m| json!({"chatId": m.chat_id, "message": m.message}))
            .collect();
        ok(Value::Array(sent))
    })
}
