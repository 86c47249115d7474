//! relinkd keeps a fleet of GREEN-API WhatsApp instances linked: it notices
//! an instance that lost its link, requests phone-number linking codes within
//! a budget, delivers them to the instance's admins, and exports metrics.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_client;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod delivery;
pub mod demo;
pub mod greenapi;
pub mod health;
pub mod linker;
pub mod listener;
pub mod metrics;
pub mod outbound;
pub mod readiness;
pub mod redact;
pub mod service;
pub mod shutdown;
pub mod sim;
pub mod state;
pub mod telemetry;
pub mod template;
pub mod test_channel;
pub mod validation;
