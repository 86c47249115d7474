//! GREEN-API: the vendor's methods, states and errors (see GREENAPI.md).

mod client;
mod error;
mod metrics;
mod state;

pub use client::{Client, CodeReply, Endpoint, InstanceApi, Method, VENDOR_CALL_INTERVAL};
pub use error::ApiError;
pub use metrics::ApiMetrics;
pub use state::InstanceState;
