//! The linking policy, the per-instance supervisor that drives it, and the
//! fleet of supervisors, with the metrics and log lines they emit.

mod events;
mod fleet;
mod mailbox;
mod metrics;
pub mod policy;
mod record;
mod supervisor;
mod view;

pub use fleet::{Changes, Fleet, FleetDeps};
pub use metrics::LinkerMetrics;
pub use view::{FleetView, InstanceStatus};
