//! Instances: states, linking codes, rate limits, call logs, and what each
//! vendor method does to them. Everything here is synchronous; callers hold an
//! instance's lock only for the duration of one of these calls.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use axum::http::Method;
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::reply::Reply;
use super::{
    CALL_LOG_CAP, CallRecord, EnterError, Fault, MESSAGE_LOG_CAP, REBOOT_DURATION, SentMessage,
    SimConfig, SimInstance,
};

pub(crate) const AUTHORIZED: &str = "authorized";
pub(crate) const NOT_AUTHORIZED: &str = "notAuthorized";
pub(crate) const STARTING: &str = "starting";

static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

const SEND_WINDOW: Duration = Duration::from_secs(1);
const SEND_LIMIT: usize = 50;
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const CODE_LEN: usize = 8;
const MAX_LOGGED_METHOD_LEN: usize = 64;

pub(crate) const TEXT_STARTING: &str = "instance in starting process try later";
pub(crate) const TEXT_NOT_AUTHORIZED: &str = "instance account not authorized";
pub(crate) const TEXT_BAD_REQUEST: &str = "bad request data";
pub(crate) const TEXT_BAD_PHONE: &str =
    "Validation failed. Details: Wrong format. 'phoneNumber' must contain only digits";

/// The vendor methods the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VendorMethod {
    GetStateInstance,
    GetAuthorizationCode,
    GetWaSettings,
    Logout,
    Reboot,
    SendMessage,
}

impl VendorMethod {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "getStateInstance" => Self::GetStateInstance,
            "getAuthorizationCode" => Self::GetAuthorizationCode,
            "getWaSettings" => Self::GetWaSettings,
            "logout" => Self::Logout,
            "reboot" => Self::Reboot,
            "sendMessage" => Self::SendMessage,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetStateInstance => "getStateInstance",
            Self::GetAuthorizationCode => "getAuthorizationCode",
            Self::GetWaSettings => "getWaSettings",
            Self::Logout => "logout",
            Self::Reboot => "reboot",
            Self::SendMessage => "sendMessage",
        }
    }

    /// Whether `verb` is the HTTP verb of this method (GET methods also
    /// answer HEAD).
    pub(crate) fn accepts(self, verb: &Method) -> bool {
        if matches!(self, Self::GetAuthorizationCode | Self::SendMessage) {
            verb == Method::POST
        } else {
            verb == Method::GET || verb == Method::HEAD
        }
    }
}

struct Reboot {
    until: Instant,
    then: String,
}

struct IssuedCode {
    code: String,
    expires: Instant,
}

struct CallEntry {
    seq: u64,
    at: Instant,
    method: Cow<'static, str>,
    status: u16,
}

/// One simulated instance.
pub(crate) struct InstanceSim {
    pub(crate) token: String,
    pub(crate) phone: u64,
    state: String,
    reboot: Option<Reboot>,
    code: Option<IssuedCode>,
    pub(crate) faults: Vec<Fault>,
    calls: VecDeque<CallEntry>,
    pub(crate) codes_issued: u64,
    pub(crate) sent: VecDeque<SentMessage>,
    last_state_call: Option<Instant>,
    last_code_call: Option<Instant>,
    send_window: VecDeque<Instant>,
}

impl InstanceSim {
    pub(crate) fn new(instance: SimInstance) -> Self {
        Self {
            token: instance.token,
            phone: instance.phone,
            state: instance.state,
            reboot: None,
            code: None,
            faults: Vec::new(),
            calls: VecDeque::new(),
            codes_issued: 0,
            sent: VecDeque::new(),
            last_state_call: None,
            last_code_call: None,
            send_window: VecDeque::new(),
        }
    }

    /// Applies time-driven transitions (the end of a reboot).
    pub(super) fn settle(&mut self, now: Instant) {
        if self.reboot.as_ref().is_some_and(|r| now >= r.until)
            && let Some(r) = self.reboot.take()
        {
            self.state = r.then;
        }
    }

    pub(crate) fn state(&self) -> &str {
        &self.state
    }

    pub(crate) fn set_state(&mut self, state: &str) {
        self.reboot = None;
        self.state = state.to_owned();
    }

    pub(crate) fn logout(&mut self) {
        self.reboot = None;
        self.code = None;
        self.state = NOT_AUTHORIZED.to_owned();
    }

    fn reboot(&mut self, now: Instant) {
        let then = match self.reboot.take() {
            Some(pending) => pending.then,
            None if self.state == STARTING => NOT_AUTHORIZED.to_owned(),
            None => std::mem::take(&mut self.state),
        };
        self.code = None;
        self.state = STARTING.to_owned();
        self.reboot = Some(Reboot {
            until: now + REBOOT_DURATION,
            then,
        });
    }

    pub(crate) fn current_code(&self, now: Instant) -> Option<&str> {
        self.code
            .as_ref()
            .filter(|c| now < c.expires)
            .map(|c| c.code.as_str())
    }

    pub(crate) fn enter(&mut self, entered: &str, now: Instant) -> Result<(), EnterError> {
        let code = self.code.as_ref().ok_or(EnterError::NoCode)?;
        if now >= code.expires {
            return Err(EnterError::Expired);
        }
        let normalized: String = entered
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if normalized != code.code {
            return Err(EnterError::WrongCode);
        }
        self.code = None;
        self.reboot = None;
        self.state = AUTHORIZED.to_owned();
        Ok(())
    }

    /// Appends a call (status 0 = in flight) and returns its sequence number.
    fn record(&mut self, now: Instant, method: &str) -> u64 {
        let method = match VendorMethod::parse(method) {
            Some(m) => Cow::Borrowed(m.name()),
            None => Cow::Owned(truncate(method, MAX_LOGGED_METHOD_LEN).to_owned()),
        };
        // Unique across instances, so that a call in flight while its
        // instance is replaced cannot update a record of the new one.
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        if self.calls.len() >= CALL_LOG_CAP {
            self.calls.pop_front();
        }
        self.calls.push_back(CallEntry {
            seq,
            at: now,
            method,
            status: 0,
        });
        seq
    }

    /// Sets the status of a recorded call (if it is still in the log).
    pub(crate) fn finish(&mut self, seq: u64, status: u16) {
        if let Some(entry) = self.calls.iter_mut().rev().find(|e| e.seq == seq) {
            entry.status = status;
        }
    }

    pub(crate) fn calls(&self) -> Vec<CallRecord> {
        self.calls
            .iter()
            .map(|e| CallRecord {
                at: e.at,
                method: e.method.to_string(),
                status: e.status,
            })
            .collect()
    }

    /// Takes the first fault matching `method`, counting down its `times`.
    fn take_fault(&mut self, method: &str) -> Option<Fault> {
        self.faults.retain(|f| f.times != Some(0));
        let index = self.faults.iter().position(|f| f.matches(method))?;
        let fault = &mut self.faults[index];
        let taken = fault.clone();
        if let Some(times) = fault.times.as_mut() {
            *times -= 1;
            if *times == 0 {
                self.faults.remove(index);
            }
        }
        Some(taken)
    }

    fn accept_state_call(&mut self, now: Instant, interval: Duration) -> bool {
        accept_interval(&mut self.last_state_call, now, interval)
    }

    fn accept_code_call(&mut self, now: Instant, interval: Duration) -> bool {
        accept_interval(&mut self.last_code_call, now, interval)
    }

    fn accept_send(&mut self, now: Instant) -> bool {
        while self
            .send_window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SEND_WINDOW)
        {
            self.send_window.pop_front();
        }
        if self.send_window.len() >= SEND_LIMIT {
            return false;
        }
        self.send_window.push_back(now);
        true
    }

    /// First phase of a vendor call: record it, check token, method and
    /// verb, and pick the fault that applies.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        method: &str,
        token: &str,
        verb: &Method,
    ) -> Admission {
        let seq = self.record(now, method);
        let answered = |inst: &mut Self, reply: Reply| {
            inst.finish(seq, reply.served_status());
            Admission::Answered(reply)
        };
        if token != self.token {
            return answered(self, Reply::unauthorized());
        }
        let Some(vendor_method) = VendorMethod::parse(method) else {
            return answered(self, Reply::text(404, "Not Found"));
        };
        if !vendor_method.accepts(verb) {
            return answered(self, Reply::text(405, "Method Not Allowed"));
        }
        Admission::Proceed {
            seq,
            method: vendor_method,
            fault: self.take_fault(vendor_method.name()),
        }
    }

    /// Second phase of a vendor call: what the method does.
    pub(crate) fn handle(
        &mut self,
        method: VendorMethod,
        body: &[u8],
        now: Instant,
        config: &SimConfig,
    ) -> Reply {
        let interval = config.state_call_interval;
        match method {
            VendorMethod::GetStateInstance => {
                if !self.accept_state_call(now, interval) {
                    return Reply::too_many_requests();
                }
                Reply::json(200, json!({"stateInstance": self.state}))
            }
            VendorMethod::GetWaSettings => {
                if !self.accept_state_call(now, interval) {
                    return Reply::too_many_requests();
                }
                Reply::json(200, self.wa_settings())
            }
            VendorMethod::Logout => {
                if !self.accept_state_call(now, interval) {
                    return Reply::too_many_requests();
                }
                self.logout();
                Reply::json(200, json!({"isLogout": true}))
            }
            VendorMethod::Reboot => {
                if !self.accept_state_call(now, interval) {
                    return Reply::too_many_requests();
                }
                self.reboot(now);
                Reply::json(200, json!({"isReboot": true}))
            }
            VendorMethod::GetAuthorizationCode => {
                if let Err(reply) = parse_phone(body) {
                    return reply;
                }
                if !self.accept_code_call(now, interval) {
                    return Reply::too_many_requests();
                }
                match self.state.as_str() {
                    AUTHORIZED => Reply::json(200, json!({"status": false, "code": ""})),
                    STARTING => Reply::text(400, TEXT_STARTING),
                    _ => {
                        let code = self.issue_code(now, config.code_ttl);
                        Reply::json(200, json!({"status": true, "code": code}))
                    }
                }
            }
            VendorMethod::SendMessage => {
                let Some(message) = parse_message(body) else {
                    return Reply::text(400, TEXT_BAD_REQUEST);
                };
                if !self.accept_send(now) {
                    return Reply::too_many_requests();
                }
                match self.state.as_str() {
                    AUTHORIZED => {
                        if self.sent.len() >= MESSAGE_LOG_CAP {
                            self.sent.pop_front();
                        }
                        self.sent.push_back(message);
                        Reply::json(200, json!({"idMessage": message_id()}))
                    }
                    STARTING => Reply::text(400, TEXT_STARTING),
                    _ => Reply::text(400, TEXT_NOT_AUTHORIZED),
                }
            }
        }
    }

    fn wa_settings(&self) -> Value {
        if self.state == AUTHORIZED {
            json!({
                "avatar": format!(
                    "https://pps.whatsapp.net/v/t61.24694-24/sim_{}_n.jpg",
                    self.phone
                ),
                "phone": self.phone.to_string(),
                "stateInstance": self.state,
                "deviceId": format!("{}:8@s.whatsapp.net", self.phone),
            })
        } else {
            json!({"avatar": "", "phone": "", "stateInstance": self.state, "deviceId": ""})
        }
    }

    /// Issues a fresh code, which replaces (invalidates) the previous one.
    fn issue_code(&mut self, now: Instant, ttl: Duration) -> String {
        let mut rng = rand::rng();
        let code = loop {
            let candidate: String = (0..CODE_LEN)
                .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
                .collect();
            if self.code.as_ref().is_none_or(|c| c.code != candidate) {
                break candidate;
            }
        };
        self.code = Some(IssuedCode {
            code: code.clone(),
            expires: now + ttl,
        });
        self.codes_issued += 1;
        code
    }
}

/// The outcome of [`InstanceSim::admit`].
pub(crate) enum Admission {
    /// Answered already (401, 404, 405); the call is recorded.
    Answered(Reply),
    /// Go on: apply the fault if any, then [`InstanceSim::handle`].
    Proceed {
        seq: u64,
        method: VendorMethod,
        fault: Option<Fault>,
    },
}

fn accept_interval(last: &mut Option<Instant>, now: Instant, interval: Duration) -> bool {
    if last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
        return false;
    }
    *last = Some(now);
    true
}

/// `{"phoneNumber": <integer>}`; anything else is the vendor's 400.
fn parse_phone(body: &[u8]) -> Result<u64, Reply> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Reply::text(400, TEXT_BAD_REQUEST))?;
    value
        .get("phoneNumber")
        .and_then(Value::as_u64)
        .ok_or_else(|| Reply::text(400, TEXT_BAD_PHONE))
}

/// `{"chatId":"...@c.us","message":"..."}` with a non-empty chat id.
fn parse_message(body: &[u8]) -> Option<SentMessage> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let chat_id = value.get("chatId")?.as_str()?;
    let message = value.get("message")?.as_str()?;
    if !chat_id.contains('@') || chat_id.starts_with('@') {
        return None;
    }
    Some(SentMessage {
        chat_id: chat_id.to_owned(),
        message: message.to_owned(),
    })
}

/// `3EB0` followed by 16 upper-case hex digits, like the vendor's ids.
fn message_id() -> String {
    let n: u64 = rand::rng().random();
    format!("3EB0{n:016X}")
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn message_ids_look_like_the_vendor_s() {
        let id = message_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("3EB0"));
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
