//! Logging: human lines (no colour unless stderr is a terminal) or JSON for
//! log shippers; levels from `RUST_LOG` (default `info`). In JSON, the
//! fields of the spans a line is logged in (a supervisor's `wa_instance`
//! and `instance`) sit at the top level beside the line's own, as they
//! would if every line named them.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(json_lines(std::io::stderr))
            .try_init()
            .map_err(Into::into),
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
