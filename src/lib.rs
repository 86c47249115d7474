//! relinkd keeps a fleet of GREEN-API WhatsApp instances linked: it notices
//! an instance that lost its link, requests phone-number linking codes within
//! a budget, delivers them to the instance's admins, and exports metrics.
//!
//! The public modules are what the `relinkd` binary and the tests of its
//! behaviour use; `ARCHITECTURE.md` maps the rest.
#![forbid(unsafe_code)]

pub mod admin_client;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod manual;
pub mod sim;
pub mod telemetry;
pub mod test_channel;
pub mod version;

mod admin;
mod bearer;
mod calendar;
mod delivery;
mod digest;
mod forwarded;
mod greenapi;
mod health;
mod linker;
mod listener;
mod metrics;
mod outbound;
mod readiness;
mod redact;
mod service;
mod shutdown;
mod state;
mod template;
mod terminal;
mod validation;
