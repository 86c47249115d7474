//! What this build is: the version, the git revision, the commit date and
//! the compiler, stamped by `build.rs`.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("RELINKD_REVISION");
/// The commit's date (`RELINKD_BUILD_DATE` when a packager sets it).
pub const COMMIT_DATE: &str = env!("RELINKD_BUILD_DATE");
pub const RUSTC: &str = env!("RELINKD_RUSTC");

/// `relinkd --version` and `-V`. The date is the commit's, not the build's:
/// the same source builds the same binary (reproducible builds).
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nrevision:  ",
    env!("RELINKD_REVISION"),
    "\ncommitted: ",
    env!("RELINKD_BUILD_DATE"),
    "\ncompiler:  ",
    env!("RELINKD_RUSTC"),
);
