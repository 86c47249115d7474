//! GREEN-API: the vendor's methods, states and errors (see GREENAPI.md).

mod answer;
mod client;
mod error;
mod method;
mod metrics;
mod state;

pub use client::{Client, CodeReply, Endpoint, InstanceApi, VENDOR_CALL_INTERVAL, vendor_http};
pub use error::ApiError;
pub use method::Method;
pub use metrics::ApiMetrics;
pub use state::InstanceState;
