//! The vocabulary every part of the config is checked with, by `config` and
//! by each channel type's own config: a [`Report`] of problems (each with the
//! key path it is about) and warnings; checks of single values; secrets and
//! their sources (`*_file`, `*_env`, `*_credential`, inline) and the files
//! they are read from; and an item's keys as written, with where they are.
//!
//! Nothing here knows any particular key: that is for the parts that own
//! them.

mod files;
mod keys;
mod report;
mod secrets;
mod values;

pub use files::{FileProblem, read_regular};
pub use keys::{KeyError, Keys};
pub use report::{Issue, Report, Reported};
pub use secrets::{
    Environment, ProcessEnv, RawSecret, SecretContext, Sources, required_secret, resolve,
    resolve_path,
};
pub use values::{describe, duration, http_url, integer, socket_addr, timezone};
