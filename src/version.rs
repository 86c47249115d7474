//! What this build is: the version, the git revision, the commit date and
//! the compiler, stamped by `build.rs`.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("RELINKD_REVISION");
pub const BUILD_DATE: &str = env!("RELINKD_BUILD_DATE");
pub const RUSTC: &str = env!("RELINKD_RUSTC");

/// `relinkd --version`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nrevision: ",
    env!("RELINKD_REVISION"),
    "\nbuilt:    ",
    env!("RELINKD_BUILD_DATE"),
    "\ncompiler: ",
    env!("RELINKD_RUSTC"),
);
