//! Checks for single values. Each returns the typed value or a message saying
//! what is wrong; the caller adds the key path. No message here ever quotes a
//! secret (none of these values is one).

use std::net::SocketAddr;
use std::time::Duration;

use toml::Value;

/// Longest duration accepted anywhere (keeps timer arithmetic far from
/// overflow).
pub(super) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most linking codes in a row WhatsApp tolerates before locking the number out.
pub(super) const MAX_CODES_PER_EPISODE: i64 = 7;

fn describe(value: &Value) -> String {
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
pub(super) fn duration(value: &Value) -> Result<Duration, String> {
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
pub(super) fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
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

/// `codes_per_episode`: 1..=7.
pub(super) fn codes_per_episode(value: &Value) -> Result<u32, String> {
    match value {
        Value::Integer(i) if *i > MAX_CODES_PER_EPISODE => Err(format!(
            "must be at most {MAX_CODES_PER_EPISODE} (got {i}): WhatsApp locks a number out \
             of linking after about {MAX_CODES_PER_EPISODE} codes in a row"
        )),
        Value::Integer(i) if *i < 1 => Err(format!("must be at least 1 (got {i})")),
        other => integer(other, 1, MAX_CODES_PER_EPISODE)
            .map(|i| u32::try_from(i).unwrap_or(MAX_CODES_PER_EPISODE as u32)),
    }
}

/// An instance id (`idInstance`): a TOML integer greater than zero.
pub(super) fn instance_id(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) if *i > 0 => u64::try_from(*i).map_err(|_| "out of range".to_owned()),
        Value::Integer(i) => Err(format!("must be a positive integer (got {i})")),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "must be a TOML integer, not a string (write id = {s} without quotes)"
        )),
        other => Err(format!(
            "must be a positive integer, the idInstance (got {})",
            describe(other)
        )),
    }
}

/// A phone number in international form: digits only (no `+`, spaces or
/// dashes), 7 to 15 digits, as a TOML integer or a string of digits.
pub(super) fn phone(value: &Value) -> Result<u64, String> {
    const DIGITS_ONLY: &str =
        "must be digits only, with no + or spaces (international form, e.g. 441234567890)";
    let digits = match value {
        Value::Integer(i) if *i > 0 => i.to_string(),
        Value::Integer(i) => return Err(format!("{DIGITS_ONLY} (got {i})")),
        Value::String(s) => {
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{DIGITS_ONLY} (got {s:?})"));
            }
            s.clone()
        }
        other => {
            return Err(format!(
                "must be an integer or a string of digits (got {})",
                describe(other)
            ));
        }
    };
    if !(7..=15).contains(&digits.len()) {
        return Err(format!("must be 7 to 15 digits (got {})", digits.len()));
    }
    if digits.starts_with('0') {
        return Err(
            "must start with the country code, not 0 (e.g. 441234567890, not 01234567890)"
                .to_owned(),
        );
    }
    digits
        .parse::<u64>()
        .map_err(|_| "must be 7 to 15 digits".to_owned())
}

/// An http(s) URL: starts with `http://` or `https://`, has a host, no
/// whitespace. Trailing slashes are removed. The URL is not quoted back (a
/// webhook URL can carry a token).
pub(super) fn http_url(text: &str) -> Result<String, String> {
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
pub(super) fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "must be an IP address and port such as \"127.0.0.1:7788\" or \"[::]:7788\" \
             (got {text:?}; host names are not resolved)"
        )
    })
}

/// A channel name: 1..=64 of `[A-Za-z0-9_.-]` (it becomes a metric label).
pub(super) fn channel_name(text: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-' \
             (it becomes a metric label; got {text:?})"
        ))
    }
}

/// An IANA time zone name known to the bundled tz database, e.g.
/// "Europe/London" or "UTC". Returns the database's spelling of it.
pub(super) fn timezone(value: &Value) -> Result<String, String> {
    const HINT: &str = "an IANA name such as \"Europe/London\", \"America/New_York\" or \"UTC\"";
    let Value::String(name) = value else {
        return Err(format!("must be {HINT} (got {})", describe(value)));
    };
    match jiff::tz::TimeZone::get(name) {
        Ok(zone) => Ok(zone.iana_name().unwrap_or(name).to_owned()),
        Err(_) => Err(format!("unknown time zone {name:?} (expected {HINT})")),
    }
}

/// A Telegram chat id: a TOML integer (negative for groups and channels,
/// e.g. -1001234567890), a string holding one, or `"@channelusername"` (5 to
/// 32 of `[A-Za-z0-9_]` after the `@`). Returned as a string.
pub(super) fn telegram_chat_id(value: &Value) -> Result<String, String> {
    const EXPECTED: &str = "must be a numeric chat id such as -1001234567890, or \"@\" and a \
                            public chat's username (5 to 32 of A-Z, a-z, 0-9 and '_')";
    let id = match value {
        Value::Integer(i) => *i,
        Value::String(s) => {
            if let Some(username) = s.strip_prefix('@') {
                let ok = (5..=32).contains(&username.len())
                    && username
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                return if ok {
                    Ok(s.clone())
                } else {
                    Err(format!("{EXPECTED} (got {s:?})"))
                };
            }
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("{EXPECTED} (got {s:?})"))?
        }
        other => return Err(format!("{EXPECTED} (got {})", describe(other))),
    };
    if id == 0 {
        return Err(format!("{EXPECTED} (got 0, which is no chat)"));
    }
    Ok(id.to_string())
}

/// A WhatsApp chat id as GREEN-API takes it: `<7 to 15 digits>@c.us` (a
/// person, international number without `+`) or `<digits and dashes>@g.us`
/// (a group).
pub(super) fn whatsapp_chat_id(text: &str) -> Result<(), String> {
    if let Some(number) = text.strip_suffix("@c.us") {
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            return if (7..=15).contains(&number.len()) {
                Ok(())
            } else {
                Err(format!(
                    "a person's number before @c.us must be 7 to 15 digits (got {} in {text:?})",
                    number.len()
                ))
            };
        }
    } else if let Some(group) = text.strip_suffix("@g.us") {
        let ok = group.starts_with(|c: char| c.is_ascii_digit())
            && group.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if ok {
            return Ok(());
        }
    }
    Err(format!(
        "must be \"<number>@c.us\" for a person (7 to 15 digits, international form \
         without +, e.g. \"79001234567@c.us\") or \"<group id>@g.us\" for a group (digits \
         and dashes, e.g. \"120363043968066561@g.us\"); got {text:?}"
    ))
}

/// An email mailbox: `relinkd@example.com` or `relinkd <relinkd@example.com>`.
/// Returns it as lettre writes it.
pub(super) fn mailbox(text: &str) -> Result<String, String> {
    text.parse::<lettre::message::Mailbox>()
        .map(|mailbox| mailbox.to_string())
        .map_err(|_| {
            format!(
                "not a valid mailbox {text:?} (expected an address such as \
                 \"relinkd@example.com\" or \"relinkd <relinkd@example.com>\")"
            )
        })
}

/// An SMTP server's host name or IP address: not empty, no whitespace, not a
/// URL.
pub(super) fn smtp_host(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(
            "must not be empty: the SMTP server's host name, e.g. \"smtp.example.com\"".to_owned(),
        );
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("must not contain spaces (got {text:?})"));
    }
    if text.contains("://") {
        return Err(format!(
            "must be a host name such as \"smtp.example.com\", not a URL (got {text:?}; \
             set the port with smtp_port and the encryption with tls)"
        ));
    }
    Ok(text.to_owned())
}

/// The id of a configured instance, as a TOML integer (whatsapp `via`).
pub(super) fn instance_ref(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) if *i > 0 => u64::try_from(*i).map_err(|_| "out of range".to_owned()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "must be a TOML integer, not a string (write {s} without quotes)"
        )),
        other => Err(format!(
            "must be the id (idInstance, a positive integer) of a configured [[instance]] \
             (got {})",
            describe(other)
        )),
    }
}

/// A minijinja template: must compile and render within the template
/// bounds (see `crate::template::check`).
pub(super) fn template(source: &str) -> Result<(), String> {
    crate::template::check(source)
}
