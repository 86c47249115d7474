//! The vendor client's metrics: `relinkd_api_requests_total{method,outcome}`
//! and `relinkd_api_request_duration_seconds{method}`, registered on the
//! registry passed in.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::{ApiError, Method};
use crate::metrics::register;

const API_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0];

/// `relinkd_api_requests_total{method,outcome}` and
/// `relinkd_api_request_duration_seconds{method}`, with every series resolved
/// up front so a request touches only atomics.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Arc<Vec<IntCounter>>,
    durations: Arc<Vec<Histogram>>,
}

impl ApiMetrics {
    pub fn register(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "relinkd_api_requests_total",
                "Requests to GREEN-API by method and outcome (success or the kind of error).",
            ),
            &["method", "outcome"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "relinkd_api_request_duration_seconds",
                "Time from sending a request to GREEN-API to its answer or error.",
            )
            .buckets(API_BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let mut counters = Vec::new();
        let mut histograms = Vec::new();
        for method in Method::ALL {
            for outcome in ApiError::OUTCOMES {
                counters.push(requests.with_label_values(&[method.name(), outcome]));
            }
            histograms.push(durations.with_label_values(&[method.name()]));
        }
        register(registry, requests);
        register(registry, durations);
        Self {
            requests: Arc::new(counters),
            durations: Arc::new(histograms),
        }
    }

    pub fn observe(&self, method: Method, elapsed: Duration, error: Option<&ApiError>) {
        let outcome = error.map_or(0, ApiError::outcome_index);
        self.requests[method.index() * ApiError::OUTCOMES.len() + outcome].inc();
        self.durations[method.index()].observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_series_exist_for_every_method_and_outcome() {
        let metrics = crate::metrics::Metrics::new();
        ApiMetrics::register(metrics.registry());
        let text = metrics.render();
        for method in Method::ALL {
            for outcome in ApiError::OUTCOMES {
                let line = format!(
                    "relinkd_api_requests_total{{method=\"{}\",outcome=\"{outcome}\"}} 0",
                    method.name()
                );
                assert!(text.contains(&line), "missing {line}");
            }
        }
    }
}
