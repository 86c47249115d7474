//! The linking policy, the per-instance supervisor that drives it, and the
//! fleet of supervisors.

mod fleet;
pub mod policy;
mod supervisor;

pub use fleet::Fleet;
pub use policy::{Action, Input, MIN_GAP, Notice, Phase, Policy};
pub use supervisor::{Command, InstanceSpec, Supervisor};
