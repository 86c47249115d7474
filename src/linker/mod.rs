//! The linking policy, the per-instance supervisor that drives it, and the
//! fleet of supervisors.

mod fleet;
pub mod policy;
mod record;
mod supervisor;
mod view;

pub use fleet::{Changes, Fleet, Summary};
pub use policy::{Action, Input, MIN_GAP, Notice, Phase, Policy};
pub use supervisor::{Inbox, InstanceSpec, Shared, Supervisor, Update};
pub use view::{InstanceStatus, InstanceView};
