//! GREEN-API: the vendor's methods, states and errors (see GREENAPI.md).

mod client;
mod error;
mod state;

pub use client::{Client, CodeReply, InstanceApi, MIN_CALL_GAP, Method, WaSettings};
pub use error::ApiError;
pub use state::InstanceState;
