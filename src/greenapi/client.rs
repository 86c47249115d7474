//! A typed client for the GREEN-API methods relinkd uses. One `Client` (one
//! connection pool, one concurrency limit) serves the whole fleet; each
//! instance gets an [`InstanceApi`] that holds its URL prefix and token and
//! paces its calls so no instance ever sees more than one call per second.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::{ApiError, InstanceState};
use crate::metrics::ApiMetrics;

/// Smallest gap between two calls to one instance. The vendor allows 1/s on
/// state calls and documents nothing for codes; a margin absorbs network jitter.
pub const MIN_CALL_GAP: Duration = Duration::from_millis(1100);

/// A `Retry-After` longer than this is taken as this: a bogus header must
/// not park an instance for days (or overflow a deadline).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Vendor error texts are short; anything longer is cut before it reaches a log.
const MAX_VENDOR_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    GetStateInstance,
    GetAuthorizationCode,
    SendMessage,
    GetWaSettings,
    Reboot,
    Logout,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::GetStateInstance,
        Method::GetAuthorizationCode,
        Method::SendMessage,
        Method::GetWaSettings,
        Method::Reboot,
        Method::Logout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::GetStateInstance => "getStateInstance",
            Method::GetAuthorizationCode => "getAuthorizationCode",
            Method::SendMessage => "sendMessage",
            Method::GetWaSettings => "getWaSettings",
            Method::Reboot => "reboot",
            Method::Logout => "logout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Answer of `getAuthorizationCode`.
#[derive(Debug)]
pub enum CodeReply {
    Code(SecretString),
    /// `status:false`: no code this time (already authorized, or transient).
    NotReceived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaSettings {
    pub phone: String,
    pub state: InstanceState,
    pub device_id: String,
}

/// Shared by the whole fleet: connection reuse per vendor host and a bound on
/// requests in flight.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
    metrics: ApiMetrics,
    completed: Arc<AtomicU64>,
    /// One pacing slot per instance id, shared by every handle to it (the
    /// supervisor's polls and a WhatsApp channel sending through it).
    pacers: Arc<std::sync::Mutex<HashMap<u64, Arc<Mutex<Instant>>>>>,
}

impl Client {
    pub fn new(max_in_flight: usize, metrics: ApiMetrics) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("relinkd/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's fixed settings are valid");
        Self {
            http,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            metrics,
            completed: Arc::default(),
            pacers: Arc::default(),
        }
    }

    /// Requests answered or failed so far: the watchdog's sign that the
    /// fleet works through its backlog even when the vendor is slow.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub fn instance(
        &self,
        api_url: &str,
        id: u64,
        token: SecretString,
        timeout: Duration,
    ) -> InstanceApi {
        InstanceApi {
            client: self.clone(),
            prefix: format!("{}/waInstance{}/", api_url.trim_end_matches('/'), id),
            token,
            timeout,
            next_call: self
                .pacers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .or_insert_with(|| Arc::new(Mutex::new(Instant::now())))
                .clone(),
        }
    }
}

/// One instance's view of the vendor. Cloning shares the pacing.
#[derive(Clone)]
pub struct InstanceApi {
    client: Client,
    prefix: String,
    token: SecretString,
    timeout: Duration,
    next_call: Arc<Mutex<Instant>>,
}

impl InstanceApi {
    pub async fn get_state(&self) -> Result<InstanceState, ApiError> {
        let body = self.call(Method::GetStateInstance, None).await?;
        let state = body
            .get("stateInstance")
            .and_then(Value::as_str)
            .ok_or(ApiError::BadBody(
                "`stateInstance` is missing or not a string",
            ))?;
        Ok(InstanceState::parse(state))
    }

    pub async fn get_authorization_code(&self, phone: u64) -> Result<CodeReply, ApiError> {
        let request = serde_json::json!({ "phoneNumber": phone });
        let body = self
            .call(Method::GetAuthorizationCode, Some(request))
            .await?;
        let status = body
            .get("status")
            .and_then(Value::as_bool)
            .ok_or(ApiError::BadBody("`status` is missing or not a boolean"))?;
        if !status {
            return Ok(CodeReply::NotReceived);
        }
        match body.get("code").and_then(Value::as_str) {
            Some(code) if !code.trim().is_empty() => {
                Ok(CodeReply::Code(SecretString::from(code.trim().to_owned())))
            }
            _ => Err(ApiError::BadBody(
                "`status` is true but `code` is missing or empty",
            )),
        }
    }

    pub async fn send_message(&self, chat_id: &str, message: &str) -> Result<String, ApiError> {
        let request = serde_json::json!({ "chatId": chat_id, "message": message });
        let body = self.call(Method::SendMessage, Some(request)).await?;
        body.get("idMessage")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(ApiError::BadBody("`idMessage` is missing or not a string"))
    }

    pub async fn get_wa_settings(&self) -> Result<WaSettings, ApiError> {
        let body = self.call(Method::GetWaSettings, None).await?;
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let state = text("stateInstance").ok_or(ApiError::BadBody(
            "`stateInstance` is missing or not a string",
        ))?;
        Ok(WaSettings {
            phone: text("phone").unwrap_or_default(),
            state: InstanceState::parse(&state),
            device_id: text("deviceId").unwrap_or_default(),
        })
    }

    pub async fn reboot(&self) -> Result<bool, ApiError> {
        let body = self.call(Method::Reboot, None).await?;
        body.get("isReboot")
            .and_then(Value::as_bool)
            .ok_or(ApiError::BadBody("`isReboot` is missing or not a boolean"))
    }

    pub async fn logout(&self) -> Result<bool, ApiError> {
        let body = self.call(Method::Logout, None).await?;
        body.get("isLogout")
            .and_then(Value::as_bool)
            .ok_or(ApiError::BadBody("`isLogout` is missing or not a boolean"))
    }

    /// One attempt: pace, send, classify. Records the API metrics.
    async fn call(&self, method: Method, json: Option<Value>) -> Result<Value, ApiError> {
        // The pacing slot is held until the request actually leaves, so two
        // callers of one instance (polls, a WhatsApp channel sending through
        // it) never go out together after waiting for the fleet-wide permit.
        let _permit = {
            let mut next = self.next_call.lock().await;
            tokio::time::sleep_until(*next).await;
            let permit = self
                .client
                .in_flight
                .acquire()
                .await
                .expect("the semaphore is never closed");
            *next = Instant::now() + MIN_CALL_GAP;
            permit
        };
        let started = Instant::now();
        let result = self.send(method, json).await.map_err(|e| self.scrub(e));
        let metrics = &self.client.metrics;
        metrics.observe(method, started.elapsed(), result.as_ref().err());
        self.client.completed.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn send(&self, method: Method, json: Option<Value>) -> Result<Value, ApiError> {
        let url = format!(
            "{}{}/{}",
            self.prefix,
            method.name(),
            self.token.expose_secret()
        );
        let request = match json {
            Some(body) => self.client.http.post(url).json(&body),
            None => self.client.http.get(url),
        };
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(ApiError::from_reqwest)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER.as_secs())));
        let bytes = response.bytes().await.map_err(ApiError::from_reqwest)?;
        classify(status, retry_after, &bytes)
    }

    /// Defence in depth: whatever an error quotes (a transport error, a
    /// proxy's 404 page echoing the path), the token is cut out.
    fn scrub(&self, err: ApiError) -> ApiError {
        let token = self.token.expose_secret();
        match err {
            ApiError::Transport(text) => ApiError::Transport(text.replace(token, "[token]")),
            ApiError::Client { status, text } => ApiError::Client {
                status,
                text: text.replace(token, "[token]"),
            },
            other => other,
        }
    }
}

/// Maps an HTTP answer to a JSON body or an [`ApiError`].
pub(crate) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Value, ApiError> {
    match status {
        200..=299 => {}
        401 | 403 => return Err(ApiError::Unauthorized { status }),
        429 => return Err(ApiError::RateLimited { retry_after }),
        466 => return Err(ApiError::QuotaExceeded),
        400..=499 => {
            return Err(ApiError::Client {
                status,
                text: vendor_text(body),
            });
        }
        _ => return Err(ApiError::Server { status }),
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::BadBody("not valid JSON"))?;
    match &value {
        Value::Object(map) => {
            // Seen by SDKs: an error inside HTTP 200, `{"code":401,"description":...}`.
            if let Some(code) = map.get("code").and_then(Value::as_u64) {
                return Err(match code {
                    401 | 403 => ApiError::Unauthorized {
                        status: code as u16,
                    },
                    429 => ApiError::RateLimited { retry_after: None },
                    500..=599 => ApiError::Server {
                        status: code as u16,
                    },
                    _ => ApiError::Client {
                        status: code.min(u16::MAX as u64) as u16,
                        text: map
                            .get("description")
                            .and_then(Value::as_str)
                            .map(|t| vendor_text(t.as_bytes()))
                            .unwrap_or_default(),
                    },
                });
            }
            Ok(value)
        }
        Value::Null => Err(ApiError::BadBody("`null` (instance still being created?)")),
        _ => Err(ApiError::BadBody("not a JSON object")),
    }
}

/// The vendor's error text, single-line and bounded. JSON bodies such as
/// `{"error":"Forbidden"}` are reduced to their message.
fn vendor_text(body: &[u8]) -> String {
    let raw = String::from_utf8_lossy(body);
    let text = serde_json::from_str::<Value>(&raw)
        .ok()
        .and_then(|v| {
            ["error", "message", "description"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| raw.into_owned());
    // A page that echoes the request path would quote the token: drop the path.
    let text = match text.find("/waInstance") {
        Some(at) => format!("{}[path]", &text[..at]),
        None => text,
    };
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_VENDOR_TEXT)
        .collect();
    if text.chars().count() > MAX_VENDOR_TEXT {
        line.push('…');
    }
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_distinct_errors() {
        assert_eq!(
            classify(401, None, b"{\"error\":\"Unauthorized\"}"),
            Err(ApiError::Unauthorized { status: 401 })
        );
        assert_eq!(
            classify(403, None, b""),
            Err(ApiError::Unauthorized { status: 403 })
        );
        assert_eq!(
            classify(429, Some(Duration::from_secs(7)), b""),
            Err(ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert_eq!(classify(466, None, b"{}"), Err(ApiError::QuotaExceeded));
        assert_eq!(
            classify(400, None, b"instance in starting process try later"),
            Err(ApiError::Client {
                status: 400,
                text: "instance in starting process try later".into()
            })
        );
        assert_eq!(
            classify(502, None, b"<html>502</html>"),
            Err(ApiError::Server { status: 502 })
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_bad_bodies() {
        assert!(matches!(
            classify(200, None, b"null"),
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            classify(200, None, b"{\"stat"),
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            classify(200, None, b"[1]"),
            Err(ApiError::BadBody(_))
        ));
    }

    #[test]
    fn an_error_inside_http_200_is_an_error() {
        assert_eq!(
            classify(200, None, br#"{"code":401,"description":"Unauthorized"}"#),
            Err(ApiError::Unauthorized { status: 401 })
        );
        // A string `code` is a linking code, not an error.
        assert!(classify(200, None, br#"{"status":true,"code":"GAPI2018"}"#).is_ok());
    }

    #[test]
    fn a_page_that_echoes_the_request_path_loses_the_path() {
        let text = vendor_text(b"Cannot GET /waInstance1101/getStateInstance/secrettoken");
        assert_eq!(text, "Cannot GET [path]");
    }

    #[test]
    fn vendor_text_is_one_bounded_line() {
        let long = "x".repeat(500);
        let text = vendor_text(long.as_bytes());
        assert!(text.chars().count() <= MAX_VENDOR_TEXT + 1);
        assert_eq!(vendor_text(b"bad\nrequest\r\ndata"), "bad request  data");
        assert_eq!(vendor_text(br#"{"error":"Forbidden"}"#), "Forbidden");
    }
}
