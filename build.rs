//! Stamps the git revision, the commit date and the compiler into the
//! binary (`relinkd --version`, `relinkd_build_info`).
use std::process::Command;

/// The trimmed stdout of `program args`, if it ran and said something.
fn output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    // Packagers building from a tarball set these; a checkout asks git.
    let revision = std::env::var("RELINKD_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // The commit's date, not the build's (`committed:` in --version): the
    // same source builds the same binary. The variable keeps its old name
    // for packagers who set it.
    let date = std::env::var("RELINKD_BUILD_DATE")
        .ok()
        .or_else(|| output("git", &["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc = output(&rustc, &["--version"]).unwrap_or_else(|| "rustc (unknown)".to_owned());
    println!("cargo:rustc-env=RELINKD_REVISION={revision}");
    println!("cargo:rustc-env=RELINKD_BUILD_DATE={date}");
    println!("cargo:rustc-env=RELINKD_RUSTC={rustc}");
    println!("cargo:rerun-if-env-changed=RELINKD_REVISION");
    println!("cargo:rerun-if-env-changed=RELINKD_BUILD_DATE");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
