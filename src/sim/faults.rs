//! Injected faults: what they look like, which call they hit, what they answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::reply::Reply;

/// A fault injected into an instance's vendor calls.
///
/// JSON form (control route `POST /sim/instances/{id}/faults`):
/// `{"method":"getStateInstance","latency":"2s","kind":{"kind":"status","code":502,"body":"..."},"times":3}`;
/// the control route also accepts the kind's fields flattened:
/// `{"kind":"rate_limited","retry_after":5,"times":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The vendor method it applies to; `None` = every vendor method.
    #[serde(default)]
    pub method: Option<String>,
    /// Delay before answering (for every kind, `None` included).
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    #[serde(default)]
    pub kind: FaultKind,
    /// How many matching calls it affects; `None` = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// A fault of `kind` on every method, forever, without latency.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            method: None,
            latency: None,
            kind,
            times: None,
        }
    }

    /// Restricts the fault to one vendor method.
    pub fn on(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Adds latency before the answer.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Limits the fault to `times` matching calls.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub(crate) fn matches(&self, method: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
    }
}

/// What a fault answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Latency only: then the call proceeds normally.
    #[default]
    None,
    /// Any status with a raw text body (500, 502 html, 400 "instance in
    /// starting process try later", ...). A status outside 100..=999 is
    /// served as 500.
    Status { code: u16, body: String },
    /// 429 `{"error":"Too Many Requests"}`, with `Retry-After` if `Some`.
    RateLimited {
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Never answers (until the server shuts down), so the client times out.
    /// Recorded with status 0.
    Hang,
    /// 200 with a body that is not JSON: `{"stateInst`.
    Malformed,
    /// 200 with body `null` (an instance being created).
    NullBody,
    /// 200 `{"status":false,"code":""}` (meant for getAuthorizationCode).
    StatusFalse,
    /// 401 `{"error":"Unauthorized"}`.
    Unauthorized,
    /// 200 `{"code":401,"description":"Unauthorized"}`.
    ErrorIn200,
    /// 466 `{"invokeStatus":{...,"status":"QUOTE_EXCEEDED",...}}`.
    QuotaExceeded,
}

/// The body served by [`FaultKind::Malformed`].
pub(crate) const MALFORMED_BODY: &str = r#"{"stateInst"#;

impl FaultKind {
    /// The answer for every kind except `None` and `Hang` (which have none).
    pub(crate) fn reply(&self, method: &str) -> Option<Reply> {
        Some(match self {
            Self::None | Self::Hang => return None,
            Self::Status { code, body } => Reply::text(*code, body.clone()),
            Self::RateLimited { retry_after } => {
                let mut r = Reply::too_many_requests();
                r.retry_after = *retry_after;
                r
            }
            Self::Malformed => Reply::raw_json(200, MALFORMED_BODY),
            Self::NullBody => Reply::json(200, Value::Null),
            Self::StatusFalse => Reply::json(200, json!({"status": false, "code": ""})),
            Self::Unauthorized => Reply::unauthorized(),
            Self::ErrorIn200 => {
                Reply::json(200, json!({"code": 401, "description": "Unauthorized"}))
            }
            Self::QuotaExceeded => Reply::json(
                466,
                json!({"invokeStatus": {
                    "method": method,
                    "used": 3,
                    "total": 3,
                    "status": "QUOTE_EXCEEDED",
                    "description": "Monthly quota has been exceeded"
                }}),
            ),
        })
    }
}

/// Parses a fault from a control request body, accepting both the nested
/// form (`"kind": {"kind": "hang"}`) and the flat one (`"kind": "hang"`).
pub(crate) fn parse_fault(body: &[u8]) -> Result<Fault, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let value = match value {
        Value::Object(mut fields) if fields.get("kind").is_some_and(Value::is_string) => {
            let mut kind = Map::new();
            for key in ["kind", "code", "body", "retry_after"] {
                if let Some(v) = fields.remove(key) {
                    kind.insert(key.to_owned(), v);
                }
            }
            fields.insert("kind".to_owned(), Value::Object(kind));
            Value::Object(fields)
        }
        other => other,
    };
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_forms_parse_alike() {
        let nested = parse_fault(
            br#"{"method":"getStateInstance","latency":"2s","kind":{"kind":"status","code":502,"body":"x"},"times":3}"#,
        )
        .expect("nested");
        let flat = parse_fault(
            br#"{"method":"getStateInstance","latency":"2s","kind":"status","code":502,"body":"x","times":3}"#,
        )
        .expect("flat");
        assert_eq!(nested, flat);
        assert_eq!(nested.latency, Some(Duration::from_secs(2)));
        assert_eq!(
            nested.kind,
            FaultKind::Status {
                code: 502,
                body: "x".into()
            }
        );
        let empty = parse_fault(b"{}").expect("empty");
        assert_eq!(empty, Fault::new(FaultKind::None));
        assert!(parse_fault(b"{\"kind\":\"nope\"}").is_err());
        assert!(parse_fault(b"[").is_err());
    }
}
