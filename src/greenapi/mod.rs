//! GREEN-API: the vendor's methods, states and errors (see GREENAPI.md).

mod client;
mod error;
mod metrics;
mod state;

pub use client::{
    Client, CodeReply, Endpoint, InstanceApi, MIN_CALL_GAP, Method, VENDOR_CALL_INTERVAL,
    WaSettings,
};
pub use error::ApiError;
pub use metrics::ApiMetrics;
pub use state::InstanceState;
