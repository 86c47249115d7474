//! Reading the files a config is made of (the config itself, `*_file`
//! secrets, credentials): regular files only, opened non-blocking, so a FIFO
//! or a device named by mistake (or malice) is refused at once instead of
//! hanging `check-config` or a reload; and read up to a size cap.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub enum FileProblem {
    Io(io::Error),
    NotRegular,
    TooLarge { limit: u64 },
}

/// The contents of the regular file at `path` (at most `limit` bytes) and
/// its permission bits.
pub fn read_regular(path: &Path, limit: u64) -> Result<(Vec<u8>, u32), FileProblem> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. Regular files ignore the flag.
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(FileProblem::Io)?;
    let meta = file.metadata().map_err(FileProblem::Io)?;
    if !meta.is_file() {
        return Err(FileProblem::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(FileProblem::Io)?;
    if bytes.len() as u64 > limit {
        secrecy::zeroize::Zeroize::zeroize(&mut bytes);
        return Err(FileProblem::TooLarge { limit });
    }
    Ok((
        bytes,
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
    ))
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Io(e) => write!(f, "cannot read: {e}"),
            FileProblem::NotRegular => f.write_str(
                "is not a regular file (a FIFO, a device or a directory); it was not read",
            ),
            FileProblem::TooLarge { limit } if *limit >= 1 << 20 => write!(
                f,
                "is larger than {} MiB; is this the right file?",
                limit >> 20
            ),
            FileProblem::TooLarge { limit } => write!(
                f,
                "is larger than {} KiB; is this the right file?",
                limit / 1024
            ),
        }
    }
}
