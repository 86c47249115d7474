//! A typed client for the GREEN-API methods relinkd uses. One `Client` (one
//! connection pool, one concurrency limit) serves the whole fleet; each
//! instance gets an [`InstanceApi`] that holds its URL prefix and token and
//! paces its calls so no instance ever sees more than one call per second.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::metrics::ApiMetrics;
use super::{ApiError, InstanceState};
use crate::outbound::{self, BodyError, MAX_BODY_BYTES};
use crate::redact::Redactor;

/// The vendor's limit: one state call a second per instance (it documents
/// nothing for codes; relinkd holds every call to it). Intervals in the
/// config are never shorter, and the policy never schedules two calls
/// closer.
pub const VENDOR_CALL_INTERVAL: Duration = Duration::from_secs(1);

/// Smallest gap the client lets between two calls to one instance: the
/// vendor's interval and a margin for network jitter.
pub const MIN_CALL_GAP: Duration =
    Duration::from_millis(VENDOR_CALL_INTERVAL.as_millis() as u64 + 100);

/// Vendor error texts are short; anything longer is cut before it reaches a log.
const MAX_VENDOR_TEXT: usize = 200;

/// Longest linking code accepted: WhatsApp's are 8 characters. Anything far
/// longer is not a code (and must not be delivered as one).
const MAX_CODE_CHARS: usize = 16;

/// The texts GREEN-API documents for a refused code request. Any other text
/// in a `getAuthorizationCode` error is not shown: it could hold a code.
const DOCUMENTED_CODE_ERRORS: [&str; 4] = [
    "instance in starting process try later",
    "instance account not authorized",
    "bad request data",
    "Validation failed",
];

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
    /// One slot per instance id, shared by every handle to it (the
    /// supervisor's polls and a WhatsApp channel sending through it).
    slots: Arc<std::sync::Mutex<HashMap<u64, Arc<Slot>>>>,
}

/// What every handle to one instance shares.
#[derive(Default)]
struct Slot {
    /// When the next call may leave: one call at a time, [`MIN_CALL_GAP`]
    /// apart.
    next_call: Mutex<Option<Instant>>,
    /// Whether the last successful state poll said `authorized` (a WhatsApp
    /// channel sends through an instance only while it is).
    authorized: AtomicBool,
}

/// How to reach one instance: from its config, never derived from the id.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The instance's `apiUrl`, without a trailing slash.
    pub api_url: String,
    /// `idInstance`.
    pub id: u64,
    pub token: SecretString,
    /// Per request.
    pub timeout: Duration,
}

impl Endpoint {
    /// Whether two endpoints reach the vendor the same way.
    pub fn same_as(&self, other: &Endpoint) -> bool {
        self.api_url == other.api_url
            && self.id == other.id
            && self.token.expose_secret() == other.token.expose_secret()
            && self.timeout == other.timeout
    }
}

impl Client {
    pub fn new(max_in_flight: usize, metrics: ApiMetrics) -> Self {
        Self {
            http: outbound::client(),
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            metrics,
            completed: Arc::default(),
            slots: Arc::default(),
        }
    }

    /// Requests answered or failed so far: the watchdog's sign that the
    /// fleet works through its backlog even when the vendor is slow.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// The API of the instance at `endpoint`; every handle to one id shares
    /// its pacing and what its last poll said.
    pub fn instance(&self, endpoint: &Endpoint) -> InstanceApi {
        let token = endpoint.token.clone();
        InstanceApi {
            client: self.clone(),
            prefix: format!(
                "{}/waInstance{}/",
                endpoint.api_url.trim_end_matches('/'),
                endpoint.id
            ),
            redactor: Redactor::of(token.expose_secret()),
            token,
            timeout: endpoint.timeout,
            slot: self
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(endpoint.id)
                .or_default()
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
    /// Cuts the token out of any text an error quotes.
    redactor: Redactor,
    timeout: Duration,
    slot: Arc<Slot>,
}

impl InstanceApi {
    /// Cuts this instance's token out of text.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub async fn get_state(&self) -> Result<InstanceState, ApiError> {
        let state = self
            .call(Method::GetStateInstance, None, |body| {
                let state =
                    body.get("stateInstance")
                        .and_then(Value::as_str)
                        .ok_or(ApiError::BadBody(
                            "`stateInstance` is missing or not a string",
                        ))?;
                Ok(InstanceState::parse(state))
            })
            .await?;
        self.slot
            .authorized
            .store(state == InstanceState::Authorized, Ordering::Relaxed);
        Ok(state)
    }

    /// Whether the last successful state poll of this instance (by any
    /// handle) found it authorized.
    pub fn last_polled_authorized(&self) -> bool {
        self.slot.authorized.load(Ordering::Relaxed)
    }

    pub async fn get_authorization_code(&self, phone: u64) -> Result<CodeReply, ApiError> {
        let request = serde_json::json!({ "phoneNumber": phone });
        self.call(Method::GetAuthorizationCode, Some(request), |body| {
            let status = body
                .get("status")
                .and_then(Value::as_bool)
                .ok_or(ApiError::BadBody("`status` is missing or not a boolean"))?;
            if !status {
                return Ok(CodeReply::NotReceived);
            }
            linking_code(body.get("code")).map(CodeReply::Code)
        })
        .await
    }

    pub async fn send_message(&self, chat_id: &str, message: &str) -> Result<String, ApiError> {
        let request = serde_json::json!({ "chatId": chat_id, "message": message });
        self.call(Method::SendMessage, Some(request), |body| {
            body.get("idMessage")
                .and_then(Value::as_str)
                .map(|id| crate::redact::printable(id, 64))
                .ok_or(ApiError::BadBody("`idMessage` is missing or not a string"))
        })
        .await
    }

    pub async fn get_wa_settings(&self) -> Result<WaSettings, ApiError> {
        self.call(Method::GetWaSettings, None, |body| {
            let text = |key: &str| {
                body.get(key)
                    .and_then(Value::as_str)
                    .map(|t| crate::redact::printable(t, 64))
            };
            let state =
                body.get("stateInstance")
                    .and_then(Value::as_str)
                    .ok_or(ApiError::BadBody(
                        "`stateInstance` is missing or not a string",
                    ))?;
            Ok(WaSettings {
                phone: text("phone").unwrap_or_default(),
                state: InstanceState::parse(state),
                device_id: text("deviceId").unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn reboot(&self) -> Result<bool, ApiError> {
        let missing = "`isReboot` is missing or not a boolean";
        self.call(Method::Reboot, None, |body| flag(body, "isReboot", missing))
            .await
    }

    pub async fn logout(&self) -> Result<bool, ApiError> {
        let missing = "`isLogout` is missing or not a boolean";
        self.call(Method::Logout, None, |body| flag(body, "isLogout", missing))
            .await
    }

    /// One attempt: pace, send, classify, read the answer with `parse`.
    /// Records the API metrics (a body `parse` rejects is a `bad_body`).
    async fn call<T>(
        &self,
        method: Method,
        json: Option<Value>,
        parse: impl FnOnce(&Value) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        // The pacing slot is held until the request actually leaves, so two
        // callers of one instance (polls, a WhatsApp channel sending through
        // it) never go out together after waiting for the fleet-wide permit.
        let _permit = {
            let mut next = self.slot.next_call.lock().await;
            if let Some(at) = *next {
                tokio::time::sleep_until(at).await;
            }
            let permit = self
                .client
                .in_flight
                .acquire()
                .await
                .expect("the semaphore is never closed");
            *next = Some(Instant::now() + MIN_CALL_GAP);
            permit
        };
        let started = Instant::now();
        let result = self.send(method, json).await.and_then(|body| parse(&body));
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
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let retry_after = outbound::retry_after(response.headers());
        let bytes = match outbound::read_body(response, MAX_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return Err(ApiError::BadBody("larger than 64 KiB")),
            Err(BodyError::Transport(e)) => return Err(self.transport(e)),
        };
        classify(method, status, retry_after, &bytes, &self.redactor)
    }

    /// A transport error: without the URL, and (defence in depth) whatever
    /// else it quotes with the token cut out.
    fn transport(&self, err: reqwest::Error) -> ApiError {
        if err.is_timeout() {
            return ApiError::Timeout;
        }
        ApiError::Transport(
            self.redactor
                .clean(&outbound::describe_without_url(err), 500),
        )
    }
}

/// Maps an HTTP answer to a JSON body or an [`ApiError`]. Texts an error
/// quotes are the vendor's message only (never a whole body), with the
/// token cut out, escaped and bounded.
pub(crate) fn classify(
    method: Method,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    redactor: &Redactor,
) -> Result<Value, ApiError> {
    match status {
        200..=299 => {}
        401 | 403 => return Err(ApiError::Unauthorized { status }),
        429 => return Err(ApiError::RateLimited { retry_after }),
        466 => return Err(ApiError::QuotaExceeded),
        400..=499 => {
            return Err(ApiError::Client {
                status,
                text: vendor_text(method, body, redactor),
            });
        }
        _ => return Err(ApiError::Server { status }),
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::BadBody("not valid JSON"))?;
    match &value {
        Value::Object(map) => {
            // Seen by SDKs: an error inside HTTP 200, `{"code":401,"description":...}`.
            // A code answer (`{"status":true,"code":...}`) has a `status`.
            if let Some(code) = map
                .get("code")
                .and_then(Value::as_u64)
                .filter(|_| !map.contains_key("status"))
            {
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
                            .map(|t| redactor.clean(t, MAX_VENDOR_TEXT))
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

/// The vendor's error text, one bounded line. JSON bodies such as
/// `{"error":"Forbidden"}` are reduced to their message; JSON without one
/// shows nothing of itself. A code request's text is shown only if it is
/// one the vendor documents: anything else could be carrying a code.
fn vendor_text(method: Method, body: &[u8], redactor: &Redactor) -> String {
    let raw = String::from_utf8_lossy(body);
    let text = match serde_json::from_str::<Value>(&raw) {
        Ok(value) => ["error", "message", "description"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => raw.into_owned(),
    };
    if method == Method::GetAuthorizationCode
        && !DOCUMENTED_CODE_ERRORS
            .iter()
            .any(|known| text.trim().starts_with(known))
    {
        return "(body not shown: it may hold a code)".to_owned();
    }
    // A page that echoes the request path would quote the token: drop the path.
    let text = match text.find("/waInstance") {
        Some(at) => format!("{}[path]", &text[..at]),
        None => text,
    };
    redactor.clean(&text, MAX_VENDOR_TEXT)
}

/// The `code` of a `status:true` answer: a string, or a number taken as its
/// digits; at most [`MAX_CODE_CHARS`] letters, digits and dashes. Anything
/// else is a bad body (a code may have been issued all the same).
fn linking_code(code: Option<&Value>) -> Result<SecretString, ApiError> {
    let text = match code {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => {
            return Err(ApiError::BadBody(
                "`status` is true but `code` is missing or not a string",
            ));
        }
    };
    if text.is_empty() {
        return Err(ApiError::BadBody("`status` is true but `code` is empty"));
    }
    if text.chars().count() > MAX_CODE_CHARS
        || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::BadBody(
            "`code` is not a linking code (over 16 characters, or not letters, digits and dashes)",
        ));
    }
    Ok(SecretString::from(text))
}

/// A boolean answer field such as `isReboot`; `missing` says which is absent.
fn flag(body: &Value, field: &str, missing: &'static str) -> Result<bool, ApiError> {
    body.get(field)
        .and_then(Value::as_bool)
        .ok_or(ApiError::BadBody(missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok-5f2d9c31e4b7a8";

    fn state(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Result<Value, ApiError> {
        classify(
            Method::GetStateInstance,
            status,
            retry_after,
            body,
            &Redactor::of(TOKEN),
        )
    }

    fn code(status: u16, body: &[u8]) -> Result<SecretString, ApiError> {
        let body = classify(
            Method::GetAuthorizationCode,
            status,
            None,
            body,
            &Redactor::of(TOKEN),
        )?;
        linking_code(body.get("code"))
    }

    #[test]
    fn statuses_map_to_distinct_errors() {
        assert_eq!(
            state(401, None, b"{\"error\":\"Unauthorized\"}"),
            Err(ApiError::Unauthorized { status: 401 })
        );
        assert_eq!(
            state(403, None, b""),
            Err(ApiError::Unauthorized { status: 403 })
        );
        assert_eq!(
            state(429, Some(Duration::from_secs(7)), b""),
            Err(ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert_eq!(state(466, None, b"{}"), Err(ApiError::QuotaExceeded));
        assert_eq!(
            state(400, None, b"instance in starting process try later"),
            Err(ApiError::Client {
                status: 400,
                text: "instance in starting process try later".into()
            })
        );
        assert_eq!(
            state(502, None, b"<html>502</html>"),
            Err(ApiError::Server { status: 502 })
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_bad_bodies() {
        assert!(matches!(
            state(200, None, b"null"),
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            state(200, None, b"{\"stat"),
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            state(200, None, b"[1]"),
            Err(ApiError::BadBody(_))
        ));
    }

    #[test]
    fn an_error_inside_http_200_is_an_error() {
        assert_eq!(
            state(200, None, br#"{"code":401,"description":"Unauthorized"}"#),
            Err(ApiError::Unauthorized { status: 401 })
        );
        // A string `code` is a linking code, not an error.
        assert!(state(200, None, br#"{"status":true,"code":"GAPI2018"}"#).is_ok());
    }

    #[test]
    fn a_numeric_code_is_a_code_of_its_digits_not_an_error() {
        let got = code(200, br#"{"status":true,"code":12345678}"#).unwrap();
        assert_eq!(got.expose_secret(), "12345678");
        assert_eq!(
            code(200, br#"{"status":true,"code":"GAPI-2018"}"#)
                .unwrap()
                .expose_secret(),
            "GAPI-2018"
        );
    }

    #[test]
    fn a_code_too_long_or_not_a_code_is_a_bad_body() {
        let huge = format!(r#"{{"status":true,"code":"{}"}}"#, "A".repeat(1 << 20));
        assert!(matches!(
            code(200, huge.as_bytes()),
            Err(ApiError::BadBody(_))
        ));
        let seventeen = br#"{"status":true,"code":"ABCDEFGHIJKLMNOPQ"}"#;
        assert!(matches!(code(200, seventeen), Err(ApiError::BadBody(_))));
        let odd = br#"{"status":true,"code":"AB\nCD"}"#;
        assert!(matches!(code(200, odd), Err(ApiError::BadBody(_))));
        assert!(matches!(
            code(200, br#"{"status":true,"code":""}"#),
            Err(ApiError::BadBody(_))
        ));
    }

    #[test]
    fn a_code_in_an_error_body_is_never_quoted() {
        for body in [
            &br#"{"status":true,"code":"SECRET12"}"#[..],
            b"your code is SECRET12",
        ] {
            let Err(error) = code(400, body) else {
                panic!("a 400 is an error")
            };
            assert!(!error.to_string().contains("SECRET12"), "{error}");
        }
        // The vendor's documented texts are still shown.
        let Err(error) = code(400, b"instance in starting process try later") else {
            panic!("a 400 is an error")
        };
        assert!(error.to_string().contains("starting process"), "{error}");
    }

    #[test]
    fn json_without_a_message_shows_nothing_of_itself() {
        let Err(ApiError::Client { text, .. }) = state(400, None, br#"{"secretish":"x"}"#) else {
            panic!("a 400 is an error")
        };
        assert_eq!(text, "");
    }

    #[test]
    fn a_page_that_echoes_the_request_path_loses_the_path() {
        let text = vendor_text(
            Method::GetStateInstance,
            format!("Cannot GET /waInstance1101/getStateInstance/{TOKEN}").as_bytes(),
            &Redactor::of(TOKEN),
        );
        assert_eq!(text, "Cannot GET [path]");
    }

    #[test]
    fn vendor_text_is_one_bounded_escaped_line_without_the_token() {
        let text = |body: &[u8]| vendor_text(Method::GetStateInstance, body, &Redactor::of(TOKEN));
        let long = "x".repeat(500);
        assert!(text(long.as_bytes()).chars().count() <= MAX_VENDOR_TEXT + 1);
        assert_eq!(text(b"bad\nrequest\r\ndata"), "bad\\nrequest\\r\\ndata");
        assert_eq!(text(br#"{"error":"Forbidden"}"#), "Forbidden");
        // The token straddles the cut at 200 characters: none of it is left.
        let straddling = format!("{}{TOKEN}", "x".repeat(195));
        let cut = text(straddling.as_bytes());
        assert!(!cut.contains(&TOKEN[..5]), "{cut}");
    }
}
