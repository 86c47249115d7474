//! A typed client for the GREEN-API methods relinkd uses. One `Client` (one
//! connection pool, one concurrency limit) serves the whole fleet; each
//! instance gets an [`InstanceApi`] that holds its vendor's URL and token and
//! paces its calls so no instance ever sees more than one call per second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::answer::{classify, flag, linking_code, state_instance};
use super::method::Method;
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

/// The vendor's HTTP client for `egress`: idle connections per host bounded
/// by the requests that may be in flight at once (more could never be used).
pub fn vendor_http(
    egress: &outbound::Egress,
    max_in_flight: usize,
) -> Result<reqwest::Client, outbound::ClientError> {
    outbound::client(egress, max_in_flight.max(1))
}

/// Shared by the whole fleet: connection reuse per vendor host and a bound on
/// requests in flight. One allocation, since every instance's handle holds
/// it.
#[derive(Clone)]
pub struct Client(Arc<ClientParts>);

struct ClientParts {
    /// One connection pool for every vendor host (at most
    /// `max_concurrent_requests` idle connections per host); replaced
    /// whole when a reload changes the CA file or the proxies.
    http: RwLock<reqwest::Client>,
    /// `[daemon] max_concurrent_requests` permits, shared by the fleet.
    in_flight: Semaphore,
    metrics: ApiMetrics,
    /// Requests answered or failed; read by the health reporter.
    completed: AtomicU64,
    /// One slot per instance id, shared by every handle to it (the
    /// supervisor's polls and a WhatsApp channel sending through it).
    slots: std::sync::Mutex<HashMap<u64, Arc<Slot>>>,
    /// Each `api_url` parsed once, shared by its instances: a fleet has a
    /// few vendor hosts, and parsing a request's URL from text was about 3 %
    /// of a poll's CPU. Never pruned: an entry per host ever configured.
    bases: std::sync::Mutex<HashMap<Arc<str>, Base>>,
}

/// An `api_url` as parsed (`{api_url}/`), or why it does not parse (said by
/// each request, as before, since the config checks only its shape).
type Base = Result<Arc<Url>, url::ParseError>;

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
    /// The instance's `apiUrl`, without a trailing slash (the config's
    /// copy, shared by the instances of one host).
    pub api_url: Arc<str>,
    /// `idInstance`.
    pub id: u64,
    /// The config's own copy.
    pub token: Arc<SecretString>,
    /// Per request.
    pub timeout: Duration,
}

impl Client {
    /// A client sending through `http` (see [`vendor_http`]).
    pub fn new(max_in_flight: usize, http: reqwest::Client, metrics: ApiMetrics) -> Self {
        Self(Arc::new(ClientParts {
            http: RwLock::new(http),
            in_flight: Semaphore::new(max_in_flight.max(1)),
            metrics,
            completed: AtomicU64::default(),
            slots: std::sync::Mutex::default(),
            bases: std::sync::Mutex::default(),
        }))
    }

    /// Sends every later request through `http` (a reload's new CA file or
    /// proxies); requests in flight finish on the old one.
    pub fn use_http(&self, http: reqwest::Client) {
        *self.0.http.write().unwrap_or_else(|e| e.into_inner()) = http;
    }

    fn http(&self) -> reqwest::Client {
        self.0
            .http
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests answered or failed so far: the watchdog's sign that the
    /// fleet works through its backlog even when the vendor is slow.
    pub fn completed(&self) -> u64 {
        self.0.completed.load(Ordering::Relaxed)
    }

    /// The API of the instance at `endpoint`; every handle to one id shares
    /// its pacing and what its last poll said.
    pub fn instance(&self, endpoint: &Endpoint) -> InstanceApi {
        let token = endpoint.token.clone();
        let base = self
            .0
            .bases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.api_url.clone())
            .or_insert_with(|| {
                Url::parse(&format!("{}/", endpoint.api_url.trim_end_matches('/'))).map(Arc::new)
            })
            .clone();
        InstanceApi(Arc::new(InstanceParts {
            client: self.clone(),
            base,
            id: endpoint.id,
            token,
            timeout: endpoint.timeout,
            slot: self
                .0
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(endpoint.id)
                .or_default()
                .clone(),
        }))
    }
}

/// One instance's view of the vendor. Cloning shares it (one allocation per
/// instance however many handles the fleet, its supervisor and a WhatsApp
/// channel hold).
#[derive(Clone)]
pub struct InstanceApi(Arc<InstanceParts>);

struct InstanceParts {
    /// The fleet's client: its pool, permits and metrics.
    client: Client,
    /// `{apiUrl}/`, shared with the instances of the same vendor host.
    base: Base,
    /// `idInstance`, the `waInstance{id}` of each request's path.
    id: u64,
    /// Goes only into request URLs, which are never printed, and into the
    /// redactor an error's text passes.
    token: Arc<SecretString>,
    /// Per request (`request_timeout`).
    timeout: Duration,
    /// Pacing and last poll, shared with every handle to this instance.
    slot: Arc<Slot>,
}

impl InstanceApi {
    /// Cuts this instance's token out of text; built when asked, since only
    /// an error needs one.
    pub fn redactor(&self) -> Redactor {
        Redactor::of(self.0.token.expose_secret())
    }

    pub async fn get_state(&self) -> Result<InstanceState, ApiError> {
        let state = self
            .call(Method::GetStateInstance, None, state_instance)
            .await?;
        self.0
            .slot
            .authorized
            .store(state == InstanceState::Authorized, Ordering::Relaxed);
        Ok(state)
    }

    /// Whether the last successful state poll of this instance (by any
    /// handle) found it authorized.
    pub fn last_polled_authorized(&self) -> bool {
        self.0.slot.authorized.load(Ordering::Relaxed)
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
            Ok(WaSettings {
                phone: text("phone").unwrap_or_default(),
                state: state_instance(body)?,
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
            let mut next = self.0.slot.next_call.lock().await;
            if let Some(at) = *next {
                tokio::time::sleep_until(at).await;
            }
            let permit = self
                .0
                .client
                .0
                .in_flight
                .acquire()
                .await
                .expect("the semaphore is never closed");
            *next = Some(Instant::now() + MIN_CALL_GAP);
            permit
        };
        let started = Instant::now();
        let result = self.send(method, json).await.and_then(|body| parse(&body));
        let metrics = &self.0.client.0.metrics;
        metrics.observe(method, started.elapsed(), result.as_ref().err());
        self.0.client.0.completed.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn send(&self, method: Method, json: Option<Value>) -> Result<Value, ApiError> {
        let url = self.url(method)?;
        let http = self.0.client.http();
        let request = match json {
            Some(body) => http.post(url).json(&body),
            None => http.get(url),
        };
        let response = request
            .timeout(self.0.timeout)
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
        classify(method, status, retry_after, &bytes, &self.0.token)
    }

    /// `{apiUrl}/waInstance{id}/{method}/{token}`, from the parsed base.
    fn url(&self, method: Method) -> Result<Url, ApiError> {
        let mut url = match &self.0.base {
            Ok(base) => Url::clone(base),
            Err(error) => {
                return Err(ApiError::Transport(format!(
                    "api_url is not a valid URL: {error}"
                )));
            }
        };
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .push(&format!("waInstance{}", self.0.id))
                .push(method.name())
                .push(self.0.token.expose_secret());
        }
        Ok(url)
    }

    /// A transport error: without the URL, and (defence in depth) whatever
    /// else it quotes with the token cut out.
    fn transport(&self, err: reqwest::Error) -> ApiError {
        if err.is_timeout() {
            return ApiError::Timeout;
        }
        ApiError::Transport(
            self.redactor()
                .clean(&outbound::describe_without_url(err), 500),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let registry = prometheus::Registry::new();
        Client::new(1, reqwest::Client::new(), ApiMetrics::register(&registry))
    }

    fn endpoint(api_url: &str, token: &str) -> Endpoint {
        Endpoint {
            api_url: api_url.into(),
            id: 1101000001,
            token: Arc::new(SecretString::from(token.to_owned())),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_request_url_is_the_api_url_the_instance_the_method_and_the_token() {
        let client = client();
        for api_url in [
            "https://1101.api.greenapi.com",
            "https://1101.api.greenapi.com/",
        ] {
            let api = client.instance(&endpoint(api_url, "d75b3a66"));
            let url = api.url(Method::GetStateInstance).unwrap();
            assert_eq!(
                url.as_str(),
                "https://1101.api.greenapi.com/waInstance1101000001/getStateInstance/d75b3a66"
            );
        }
        let behind_a_path = client.instance(&endpoint("http://127.0.0.1:8080/green", "t"));
        assert_eq!(
            behind_a_path.url(Method::Reboot).unwrap().as_str(),
            "http://127.0.0.1:8080/green/waInstance1101000001/reboot/t"
        );
    }

    #[tokio::test]
    async fn an_api_url_that_does_not_parse_fails_each_request_without_quoting_it_or_the_token() {
        let api = client().instance(&endpoint("http://[1101.api", "d75b3a66"));
        let error = api.get_state().await.unwrap_err().to_string();
        assert!(error.contains("api_url is not a valid URL"), "{error}");
        assert!(
            !error.contains("d75b3a66") && !error.contains("1101.api"),
            "{error}"
        );
    }
}
