//! Checks for single values. Each returns the typed value or a message saying
//! what is wrong; the caller adds the key path. No message here ever quotes a
//! secret (none of these values is one).

use std::net::SocketAddr;
use std::time::Duration;

use toml::Value;

/// Longest duration accepted anywhere (keeps timer arithmetic far from
/// overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a value is named in a message: `the integer 5`, `the string "x"`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::String(s) => format!("the string {s:?}"),
        other => format!("a {}", other.type_str()),
    }
}

/// A humantime duration string: "1s", "150s", "2m 30s", "500ms". Not zero,
/// at most [`MAX_DURATION`].
pub fn duration(value: &Value) -> Result<Duration, String> {
    let text = match value {
        Value::String(s) => s,
        Value::Integer(i) => {
            return Err(format!(
                "must be a duration string such as \"{i}s\" (a bare number has no unit)"
            ));
        }
        other => {
            return Err(format!(
                "must be a duration string such as \"60s\", \"2m 30s\" or \"500ms\" (got {})",
                describe(other)
            ));
        }
    };
    let parsed = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (examples: \"60s\", \"2m 30s\", \"500ms\")")
    })?;
    if parsed.is_zero() {
        return Err(format!("must be greater than zero (got {text:?})"));
    }
    if parsed > MAX_DURATION {
        return Err(format!("must be at most 365 days (got {text:?})"));
    }
    Ok(parsed)
}

/// A TOML integer in `min..=max`.
pub fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    match value {
        Value::Integer(i) if (min..=max).contains(i) => Ok(*i),
        Value::Integer(i) => Err(format!("must be between {min} and {max} (got {i})")),
        Value::String(s) if s.trim().parse::<i64>().is_ok() => Err(format!(
            "must be an integer, not a string (write {} without quotes)",
            s.trim()
        )),
        other => Err(format!("must be an integer (got {})", describe(other))),
    }
}

/// An http(s) URL: starts with `http://` or `https://`, has a host, no
/// whitespace. Trailing slashes are removed. The URL is not quoted back (a
/// webhook URL can carry a token).
pub fn http_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    if text.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".to_owned());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host after the scheme".to_owned());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// A socket address `IP:PORT`, e.g. `127.0.0.1:7788` or `[::1]:7788`.
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "must be an IP address and port such as \"127.0.0.1:7788\" or \"[::]:7788\" \
             (got {text:?}; host names are not resolved)"
        )
    })
}

/// An IANA time zone name known to the bundled tz database, e.g.
/// "Europe/London" or "UTC". Returns the database's spelling of it.
pub fn timezone(value: &Value) -> Result<String, String> {
    const HINT: &str = "an IANA name such as \"Europe/London\", \"America/New_York\" or \"UTC\"";
    let Value::String(name) = value else {
        return Err(format!("must be {HINT} (got {})", describe(value)));
    };
    match jiff::tz::TimeZone::get(name) {
        Ok(zone) => Ok(zone.iana_name().unwrap_or(name).to_owned()),
        Err(_) => Err(format!("unknown time zone {name:?} (expected {HINT})")),
    }
}
