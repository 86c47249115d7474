//! The `process_*` metrics every Prometheus client exports, read from
//! `/proc/self` at each scrape. Ours rather than the prometheus crate's
//! collector, which counts CPU in whole seconds: a quiet daemon showed 0 for
//! minutes and the dashboard's CPU panel stayed flat. The kernel counts in
//! clock ticks (1/100 s), and so does this.

use std::fmt::Write as _;

use super::TextSource;

/// Renders the process metrics of this process.
pub struct ProcessMetrics {
    /// When the process started, in Unix seconds (it never changes).
    start_time: Option<f64>,
}

impl ProcessMetrics {
    pub fn new() -> Self {
        let start_time = procfs::process::Process::myself()
            .and_then(|me| me.stat())
            .ok()
            .zip(procfs::boot_time_secs().ok())
            .map(|(stat, boot)| boot as f64 + ticks_to_seconds(stat.starttime));
        Self { start_time }
    }
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::ticks_per_second() as f64
}

impl TextSource for ProcessMetrics {
    fn render(&self, out: &mut String) {
        let Ok(me) = procfs::process::Process::myself() else {
            return;
        };
        if let Ok(stat) = me.stat() {
            let cpu = ticks_to_seconds(stat.utime + stat.stime);
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
            family(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                stat.vsize as f64,
            );
            let rss = stat.rss as f64 * procfs::page_size() as f64;
            family(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss,
            );
            family(
                out,
                "process_threads",
                "gauge",
                "Number of OS threads in the process.",
                stat.num_threads as f64,
            );
        }
        if let Ok(open) = me.fd_count() {
            family(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open as f64,
            );
        }
        if let Ok(limits) = me.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            family(
                out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max as f64,
            );
        }
        if let Some(start) = self.start_time {
            family(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                start,
            );
        }
    }
}

/// One family of one unlabelled series.
fn family(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn cpu_time_counts_fractions_of_a_second() {
        let metrics = ProcessMetrics::new();
        let mut before = String::new();
        metrics.render(&mut before);
        // Spin for about 50 ms of CPU: five clock ticks.
        let started = procfs::process::Process::myself().unwrap().stat().unwrap();
        let start_ticks = started.utime + started.stime;
        let mut x = 0u64;
        while {
            let now = procfs::process::Process::myself().unwrap().stat().unwrap();
            now.utime + now.stime < start_ticks + 5
        } {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let mut after = String::new();
        metrics.render(&mut after);
        let (b, a) = (
            value(&before, "process_cpu_seconds_total"),
            value(&after, "process_cpu_seconds_total"),
        );
        // Whole seconds would show 0 or 1 here.
        assert!(a - b > 0.0 && a - b < 0.9, "{b} -> {a} ({x})");
    }

    #[test]
    fn the_usual_process_metrics_are_there() {
        let mut text = String::new();
        ProcessMetrics::new().render(&mut text);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
            "process_start_time_seconds",
        ] {
            let at_least = if name == "process_cpu_seconds_total" {
                0.0
            } else {
                1.0
            };
            assert!(value(&text, name) >= at_least, "{name}:\n{text}");
        }
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
