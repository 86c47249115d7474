//! The message template language: minijinja, with the variables a template
//! sees, the `bold`/`mono` filters, escaping per markup style, and bounds on
//! what a template may cost. Rendering runs inside a delivery, so a template
//! must not be able to wedge the runtime: each render gets [`FUEL`]
//! instructions and [`MAX_OUTPUT_BYTES`] of output, and `check-config`
//! refuses a template that needs more on sample values.

use std::fmt::Write as _;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind};
use serde::Serialize;

/// Instructions one render may execute. The default templates take a few
/// hundred; this allows any sensible custom one and stops a loop bomb in
/// about a millisecond.
pub const FUEL: u64 = 50_000;

/// Largest text one render may produce (Telegram takes 4,096 characters,
/// Slack about 40,000).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// How a channel marks text up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    /// Telegram `parse_mode: HTML`.
    Html,
    /// Slack / Mattermost mrkdwn.
    Slack,
}

/// The variables a template sees (documented in README).
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    pub event: &'a str,
    pub channel: &'a str,
    pub instance_name: &'a str,
    pub instance_id: u64,
    /// A digest's name and its text (`digest` events only).
    pub digest: Option<&'a str>,
    pub digest_text: Option<&'a str>,
    pub phone: u64,
    pub state: &'a str,
    pub code: Option<&'a str>,
    pub expires_at: Option<String>,
    pub expires_at_utc: Option<String>,
    pub expires_at_time_utc: Option<String>,
    pub expires_at_local: Option<String>,
    pub seconds_left: Option<u64>,
    pub paused_until_utc: Option<String>,
    pub paused_until_local: Option<String>,
    /// `paused`: `budget` or `window`; `alert`: `rebooted`.
    pub reason: Option<&'a str>,
    /// `alert` with reason `rebooted`: how long it was `starting` (`10m`).
    pub stuck_for: Option<String>,
    pub codes_used: u32,
    pub timezone: Option<&'a str>,
}

/// The events a template is rendered for.
pub const EVENTS: [&str; 7] = [
    "code", "linked", "paused", "alert", "resumed", "test", "digest",
];

impl Context<'static> {
    /// Every variable set, at its largest plausible value, for `event`.
    pub fn sample(event: &'static str) -> Self {
        Context {
            event,
            channel: "ops-telegram",
            instance_name: "sales-line",
            instance_id: 110_100_000_001,
            digest: Some("morning"),
            digest_text: Some("relinkd digest morning: 7 instances, 5 linked, 1 unlinked"),
            phone: 441_234_567_890,
            state: "notAuthorized",
            code: Some("ABCD1234"),
            expires_at: Some("2026-11-29T10:02:30Z".into()),
            expires_at_utc: Some("2026-11-29 10:02:30 UTC".into()),
            expires_at_time_utc: Some("10:02:30 UTC".into()),
            expires_at_local: Some("2026-11-29 11:02:30 CET".into()),
            seconds_left: Some(150),
            paused_until_utc: Some("2026-11-29 11:00:00 UTC".into()),
            paused_until_local: Some("2026-11-29 12:00:00 CET".into()),
            reason: Some("window"),
            stuck_for: Some("10m 30s".into()),
            codes_used: 7,
            timezone: Some("Europe/Berlin"),
        }
    }
}

/// An environment for `style`: escaping, the filters, and the fuel bound.
pub fn environment(style: Style) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    match style {
        Style::Plain => env.set_auto_escape_callback(|_| AutoEscape::None),
        Style::Html => env.set_auto_escape_callback(|_| AutoEscape::Html),
        Style::Slack => {
            env.set_auto_escape_callback(|_| AutoEscape::None);
            env.set_formatter(|out, _state, value| {
                if value.is_undefined() || value.is_none() {
                    return Ok(());
                }
                let text = value.to_string();
                let text = if value.is_safe() {
                    text
                } else {
                    slack_escape(&text)
                };
                out.write_str(&text)
                    .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "write failed"))
            });
        }
    }
    env.add_filter("bold", move |v: Value| {
        markup(style, &v.to_string(), Mark::Bold)
    });
    env.add_filter("mono", move |v: Value| {
        markup(style, &v.to_string(), Mark::Mono)
    });
    env
}

/// Renders template `name` of `env` within the bounds; the message says why
/// not (never quoting a value, which could be a code).
pub fn render(env: &Environment<'_>, name: &str, ctx: &Context<'_>) -> Result<String, String> {
    let template = env.get_template(name).map_err(|e| e.kind().to_string())?;
    let mut out = Bounded::default();
    match template.render_captured_to(ctx, &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out.bytes).trim().to_owned()),
        Err(_) if out.overflowed => Err(format!(
            "the text is longer than {} KiB",
            MAX_OUTPUT_BYTES / 1024
        )),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(format!(
            "rendering takes more than {FUEL} steps (a loop too large?)"
        )),
        Err(e) => Err(e.kind().to_string()),
    }
}

/// A template as `check-config` sees it: it must compile, and render within
/// the bounds for every event on sample values (the message names the
/// template line where minijinja knows it).
pub fn check(source: &str) -> Result<(), String> {
    if source.trim().is_empty() {
        return Err("must not be empty (remove the key to use the default text)".to_owned());
    }
    let mut env = environment(Style::Plain);
    if let Err(e) = env.add_template_owned("t", source.to_owned()) {
        let mut message = format!("not a valid template: {}", e.kind());
        if let Some(detail) = e.detail() {
            let _ = write!(message, ": {detail}");
        }
        if let Some(line) = e.line() {
            let _ = write!(message, " (line {line})");
        }
        return Err(message);
    }
    for event in EVENTS {
        match render(&env, "t", &Context::sample(event)) {
            Ok(_) => {}
            // A mistake that only shows at render time (an unknown filter,
            // say) is the sender's to find in the message, as before; the
            // bounds are what must hold.
            Err(why) if why.contains("steps") || why.contains("longer than") => {
                return Err(format!("too costly to render: {why}"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// An output that stops at [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Mark {
    Bold,
    Mono,
}

/// `bold` / `mono` filters: escape the value for the style, then mark it up.
fn markup(style: Style, text: &str, mark: Mark) -> Value {
    let out = match (style, mark) {
        (Style::Plain, _) => return Value::from(text),
        (Style::Html, Mark::Bold) => format!("<b>{}</b>", html_escape(text)),
        (Style::Html, Mark::Mono) => format!("<code>{}</code>", html_escape(text)),
        (Style::Slack, Mark::Bold) => format!("*{}*", slack_escape(text)),
        (Style::Slack, Mark::Mono) => format!("`{}`", slack_escape(text)),
    };
    Value::from_safe_string(out)
}

/// The escaping Telegram's HTML parse mode requires.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The escaping Slack's mrkdwn requires.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_bomb_is_refused_by_check_config() {
        let bomb =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let why = check(bomb).unwrap_err();
        assert!(why.contains("too costly to render"), "{why}");
        assert!(why.contains("steps"), "{why}");
    }

    #[test]
    fn a_huge_output_is_refused_by_check_config() {
        let why = check("{% for i in range(100) %}{{ 'x' * 10000 }}{% endfor %}").unwrap_err();
        assert!(why.contains("longer than 64 KiB"), "{why}");
    }

    #[test]
    fn a_loop_bomb_stops_quickly_when_rendered() {
        let mut env = environment(Style::Html);
        env.add_template_owned(
            "t",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% if code %}{% endif %}\
             {% endfor %}{% endfor %}"
                .to_owned(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let why = render(&env, "t", &Context::sample("code")).unwrap_err();
        assert!(why.contains("steps"), "{why}");
        // Not a timing assertion of the suite's speed: a runaway loop would
        // take hours, not seconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn ordinary_templates_pass_and_syntax_errors_name_their_line() {
        assert_eq!(
            check("{{ code | mono }} for {{ instance_name | bold }} ({{ seconds_left }}s)"),
            Ok(())
        );
        let why = check("ok\n{% if %}").unwrap_err();
        assert!(why.contains("(line 2)"), "{why}");
    }
}
