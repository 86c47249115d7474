//! Logging: human lines (no colour unless stderr is a terminal) or JSON for
//! log shippers; levels from `RUST_LOG` (default `info`). In JSON, the
//! fields of the spans a line is logged in (a supervisor's `wa_instance`
//! and `instance`) sit at the top level beside the line's own, as they
//! would if every line named them.
//!
//! Under systemd, when stderr is the journal (`JOURNAL_STREAM` names it),
//! each line starts with its syslog priority (`<3>` error, `<4>` warning,
//! `<6>` info, `<7>` debug), sd-daemon(3)'s convention, so `journalctl -p
//! warning` finds warnings and errors; text lines then leave the timestamp
//! to the journal.

use std::io::{IsTerminal as _, Write};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "RUST_LOG={value:?} is not a valid log filter: {error} (e.g. RUST_LOG=info or RUST_LOG=relinkd=debug)"
    )]
    Filter { value: String, error: String },
}

/// Sets up logging for the process; an invalid `RUST_LOG` is an error
/// rather than a silent `info`.
pub fn init(format: LogFormat) -> Result<(), TelemetryError> {
    init_as(format, false)
}

/// Logging for someone watching a terminal (the demo): text lines short
/// enough to read there, with the time of day, the level, the message and
/// its fields, the instance's fields last; no module path, no date.
pub fn init_for_a_terminal(format: LogFormat) -> Result<(), TelemetryError> {
    init_as(format, true)
}

fn init_as(format: LogFormat, short: bool) -> Result<(), TelemetryError> {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref())?;
    let journal = stderr_is_the_journal();
    let writer = Stderr { journal };
    let _ = match (format, journal) {
        (LogFormat::Text, false) if short => tracing_subscriber::fmt()
            // Plain, so the instance's name can be read from its span's fields.
            .with_ansi(false)
            .event_format(Short)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
        (LogFormat::Text, false) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        (LogFormat::Text, true) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .try_init(),
        (LogFormat::Json, _) => tracing_subscriber::registry()
            .with(filter)
            .with(json_lines(writer))
            .try_init()
            .map_err(Into::into),
    };
    Ok(())
}

/// A line for a terminal: `10:40:15  INFO sales-line: notification delivered
/// channel="admin" ...`. The time of day in UTC (the date is the same on
/// every line of a demo); the instance by its name alone; wrapped to fit
/// the terminal, continuation lines indented under the message.
struct Short;

/// Columns before a short line's message: `10:40:15  INFO `.
const SHORT_PREFIX: usize = 15;

impl<S, N> FormatEvent<S, N> for Short
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        let mut buffer = Writer::new(&mut line);
        let time = crate::clock::utc_time_of_day(crate::clock::now());
        let level = event.metadata().level();
        write!(buffer, "{} {level:>5} ", time.trim_end_matches(" UTC"))?;
        for span in ctx
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
        {
            let extensions = span.extensions();
            let fields = extensions.get::<FormattedFields<N>>();
            if let Some(name) = fields.and_then(|f| field_value(f, "instance")) {
                write!(buffer, "{name}: ")?;
            }
        }
        ctx.field_format().format_fields(buffer.by_ref(), event)?;
        let line = crate::terminal::wrap(&line, crate::terminal::WIDTH, SHORT_PREFIX);
        writeln!(writer, "{line}")
    }
}

/// The value of `name=value` in a span's formatted fields.
fn field_value<'f>(fields: &'f str, name: &str) -> Option<&'f str> {
    fields
        .split(' ')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The filter `RUST_LOG` asks for; unset or blank means `info`.
fn filter(rust_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(EnvFilter::new("info")),
        Some(value) => EnvFilter::try_new(value).map_err(|e| TelemetryError::Filter {
            value: value.to_owned(),
            error: e.to_string(),
        }),
    }
}

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is set (by
/// systemd) to the device and inode of stderr. A redirected stderr keeps
/// the variable but not the inode.
fn stderr_is_the_journal() -> bool {
    let Some(named) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some(meta) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    else {
        return false;
    };
    named == format!("{}:{}", meta.dev(), meta.ino())
}

/// The syslog priority prefix of a level (sd-daemon(3)).
fn priority(level: &Level) -> &'static [u8] {
    match *level {
        Level::ERROR => b"<3>",
        Level::WARN => b"<4>",
        Level::INFO => b"<6>",
        Level::DEBUG | Level::TRACE => b"<7>",
    }
}

/// Stderr, each line prefixed with its priority when stderr is the journal.
#[derive(Clone, Copy)]
struct Stderr {
    journal: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            prefix: None,
            at_line_start: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            prefix: self.journal.then(|| priority(meta.level())),
            at_line_start: true,
        }
    }
}

/// One formatted event on its way to stderr.
struct Line {
    /// Put before each of the event's lines, its continuation lines too (a
    /// reload's list of problems): journald stores each line as an entry of
    /// its own, at info unless it has a prefix.
    prefix: Option<&'static [u8]>,
    /// Whether the next byte written starts a line.
    at_line_start: bool,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        match self.prefix {
            // One write, so threads cannot interleave a prefix and its line.
            Some(prefix) => stderr.write_all(&prefixed(prefix, buf, &mut self.at_line_start))?,
            None => stderr.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `buf` with `prefix` at the start of each line; `at_line_start` says
/// whether `buf` begins one and is left saying whether the next write does.
fn prefixed(prefix: &[u8], buf: &[u8], at_line_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + prefix.len());
    for piece in buf.split_inclusive(|&b| b == b'\n') {
        if *at_line_start {
            out.extend_from_slice(prefix);
        }
        out.extend_from_slice(piece);
        *at_line_start = piece.ends_with(b"\n");
    }
    out
}

/// Writes `text` and a newline to stderr outside the logger (start-up
/// errors, `check-config`'s findings, a command's failure). When stderr is
/// the journal (as under the unit's `ExecStartPre`), each of its lines
/// carries `level`'s priority, as log lines do.
pub fn to_stderr(level: Level, text: impl std::fmt::Display) {
    let text = format!("{text}\n");
    let mut stderr = std::io::stderr().lock();
    let _ = if stderr_is_the_journal() {
        stderr.write_all(&prefixed(priority(&level), text.as_bytes(), &mut true))
    } else {
        stderr.write_all(text.as_bytes())
    };
}

/// One JSON object per line: time, level, target, message, the line's
/// fields and its spans' fields, all at the top level.
fn json_lines<S, W>(writer: W) -> json_subscriber::fmt::Layer<S, W>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    json_subscriber::fmt::layer()
        .with_writer(writer)
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_span_list_on_top_level(true)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn an_invalid_rust_log_is_an_error_naming_it_and_blank_is_info() {
        let e = filter(Some("relinkd=loud")).unwrap_err().to_string();
        assert!(
            e.starts_with("RUST_LOG=\"relinkd=loud\" is not a valid log filter"),
            "{e}"
        );
        assert!(filter(Some("  ")).is_ok());
        assert!(filter(None).is_ok());
        assert!(filter(Some("relinkd=debug,info")).is_ok());
    }

    #[test]
    fn every_line_of_a_multi_line_event_gets_the_prefix_even_across_writes() {
        let mut start = true;
        let out = prefixed(b"<3>", b"reload failed: 2 problems:\n  a\n  b", &mut start);
        assert_eq!(out, b"<3>reload failed: 2 problems:\n<3>  a\n<3>  b");
        assert!(!start);
        assert_eq!(prefixed(b"<3>", b" c\n", &mut start), b" c\n");
        assert!(start);
        assert_eq!(prefixed(b"<3>", b"d\n", &mut start), b"<3>d\n");
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(&Level::ERROR), b"<3>");
        assert_eq!(priority(&Level::WARN), b"<4>");
        assert_eq!(priority(&Level::INFO), b"<6>");
        assert_eq!(priority(&Level::DEBUG), b"<7>");
    }

    #[test]
    fn json_lines_carry_their_spans_fields_at_the_top_level() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(json_lines(captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "supervisor",
                wa_instance = 1101000001u64,
                instance = "sales-line"
            );
            let _entered = span.enter();
            tracing::warn!(reason = "timeout", "state poll failed");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["message"], "state poll failed", "{line}");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["reason"], "timeout");
        assert_eq!(line["wa_instance"], 1101000001u64);
        assert_eq!(line["instance"], "sales-line");
        assert!(line.get("timestamp").is_some() && line.get("target").is_some());
        assert!(line.get("span").is_none() && line.get("spans").is_none());
    }
}
