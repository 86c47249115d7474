//! The one registry every component registers its own metrics on (passed
//! down, never a global), the renderer of `/metrics`, and what belongs to no
//! component: `relinkd_build_info` and the process metrics. Components whose
//! series are too many for per-series objects (one set per instance) render
//! their own text through a [`TextSource`].

mod process;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};

/// Series rendered straight to Prometheus text at scrape time.
pub trait TextSource: Send + Sync {
    fn render(&self, out: &mut String);
}

/// The exported metrics. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Metrics {
    /// Components register their families here at build time.
    registry: Registry,
    /// Rendered after the registry, in the order added.
    sources: Arc<RwLock<Vec<Arc<dyn TextSource>>>>,
    /// The last render's length: the next one starts at about that size
    /// rather than doubling its way to 11 MB (each doubling a copy, and a
    /// peak of one and a half times the text).
    last_len: Arc<AtomicUsize>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with `relinkd_build_info` and the process metrics.
    pub fn new() -> Self {
        let registry = Registry::new();

        let build_info = IntGauge::with_opts(
            Opts::new(
                "relinkd_build_info",
                "relinkd's version and revision; always 1.",
            )
            .const_label("version", crate::version::VERSION)
            .const_label("revision", crate::version::REVISION),
        )
        .expect("valid metric");
        build_info.set(1);
        register(&registry, build_info);

        let metrics = Self {
            registry,
            sources: Arc::default(),
            last_len: Arc::default(),
        };
        metrics.add_text_source(Arc::new(process::ProcessMetrics::new()));
        metrics
    }

    /// The registry components register their own metrics on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The sum of the registered counter `name`'s series whose `label` is
    /// `value` (0 if there is none).
    pub fn counter_sum(&self, name: &str, (label, value): (&str, &str)) -> u64 {
        self.registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == label && l.value() == value)
            })
            .map(|m| m.get_counter().value() as u64)
            .sum()
    }

    /// Adds series that a component renders itself.
    pub fn add_text_source(&self, source: Arc<dyn TextSource>) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        let mut out = String::from_utf8(buffer).expect("the text format is UTF-8");
        let last_len = self.last_len.load(Ordering::Relaxed);
        out.reserve((last_len + last_len / 64).saturating_sub(out.len()));
        for source in self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            source.render(&mut out);
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }
}

/// Registers `collector` on `registry`; registering one twice is a bug.
pub fn register<C: prometheus::core::Collector + 'static>(registry: &Registry, collector: C) {
    registry
        .register(Box::new(collector))
        .expect("each metric is registered once");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_have_their_usual_names() {
        let text = Metrics::new().render();
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_start_time_seconds "));
        assert!(text.contains("relinkd_build_info{revision="));
    }

    #[test]
    fn text_sources_are_rendered_after_the_registry() {
        struct Fixed;
        impl TextSource for Fixed {
            fn render(&self, out: &mut String) {
                out.push_str("# TYPE relinkd_fixed gauge\nrelinkd_fixed 1\n");
            }
        }
        let metrics = Metrics::new();
        metrics.add_text_source(Arc::new(Fixed));
        let text = metrics.render();
        assert!(text.ends_with("relinkd_fixed 1\n"), "{text}");
        assert!(text.contains("relinkd_build_info"));
    }
}
