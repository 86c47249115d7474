//! How a vendor answer is read: its status and body become a JSON value or
//! an [`ApiError`], and what of it an error may quote (never a code, never
//! the token, never a whole body).

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use super::method::Method;
use super::{ApiError, InstanceState};
use crate::redact::Redactor;

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

/// Maps an HTTP answer to a JSON body or an [`ApiError`]. Texts an error
/// quotes are the vendor's message only (never a whole body), with the
/// `token` cut out, escaped and bounded. (The token, not a redactor built
/// ahead: only an error needs one, and each instance keeping its own cost
/// 130 bytes of every idle instance.)
pub fn classify(
    method: Method,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    token: &SecretString,
) -> Result<Value, ApiError> {
    match status {
        200..=299 => {}
        401 | 403 => return Err(ApiError::Unauthorized { status }),
        429 => return Err(ApiError::RateLimited { retry_after }),
        466 => return Err(ApiError::QuotaExceeded),
        400..=499 => {
            return Err(ApiError::Client {
                status,
                text: vendor_text(method, body, token),
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
                            .map(|t| Redactor::of(token.expose_secret()).clean(t, MAX_VENDOR_TEXT))
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
fn vendor_text(method: Method, body: &[u8], token: &SecretString) -> String {
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
    Redactor::of(token.expose_secret()).clean(&text, MAX_VENDOR_TEXT)
}

/// The `code` of a `status:true` answer: a string, or a number taken as its
/// digits; at most [`MAX_CODE_CHARS`] letters, digits and dashes. Anything
/// else is a bad body (a code may have been issued all the same).
pub fn linking_code(code: Option<&Value>) -> Result<SecretString, ApiError> {
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

/// The answer's `stateInstance`.
pub fn state_instance(body: &Value) -> Result<InstanceState, ApiError> {
    body.get("stateInstance")
        .and_then(Value::as_str)
        .map(InstanceState::parse)
        .ok_or(ApiError::BadBody(
            "`stateInstance` is missing or not a string",
        ))
}

/// A boolean answer field such as `isReboot`; `missing` says which is absent.
pub fn flag(body: &Value, field: &str, missing: &'static str) -> Result<bool, ApiError> {
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
            &SecretString::from(TOKEN),
        )
    }

    fn code(status: u16, body: &[u8]) -> Result<SecretString, ApiError> {
        let body = classify(
            Method::GetAuthorizationCode,
            status,
            None,
            body,
            &SecretString::from(TOKEN),
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
            &SecretString::from(TOKEN),
        );
        assert_eq!(text, "Cannot GET [path]");
    }

    #[test]
    fn vendor_text_is_one_bounded_escaped_line_without_the_token() {
        let text =
            |body: &[u8]| vendor_text(Method::GetStateInstance, body, &SecretString::from(TOKEN));
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
