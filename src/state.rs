//! What must survive a restart, in `state_dir/state.json`: per instance in an
//! episode, its start, the codes used, the outstanding code's expiry and
//! whether it was delivered, and a pause's end; per restricted instance, the
//! state the admins were told about; per instance rebooted, when it was
//! last rebooted (so a restart cannot reboot it twice within a cooldown).
//! Never a code, never a token.
//!
//! Writes are atomic (a fresh temp file, fsync, rename, fsync of the
//! directory). A file that cannot be read or parsed is set aside with a
//! warning and relinkd starts fresh; a directory that cannot be written is a
//! startup error. Nothing is ever written or read through a symbolic link
//! planted in the directory, and one daemon at a time holds the directory
//! (an exclusive lock on `relinkd.lock`): a second one would request codes
//! that invalidate the first one's.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock;

pub const FILE_NAME: &str = "state.json";
pub const LOCK_FILE_NAME: &str = "relinkd.lock";
pub const VERSION: u32 = 1;

/// At most one write per this interval: a fleet-wide outage changes many
/// records at once, and they are written together.
const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state_dir {dir}: cannot create it: {source}")]
    Create { dir: PathBuf, source: io::Error },
    #[error("state_dir {dir}: not writable: {source}")]
    NotWritable { dir: PathBuf, source: io::Error },
    #[error(
        "state_dir {dir} is in use by another relinkd{}; two daemons on one fleet would \
         invalidate each other's codes. Stop the other one, or give this one its own state_dir",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse { dir: PathBuf, holder: Option<u32> },
}

/// One instance's persisted episode. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Linking {
        episode_started_ms: u64,
        codes_used: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code_expires_ms: Option<u64>,
        /// `None`: delivery was under way.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code_delivered: Option<bool>,
    },
    Paused {
        episode_started_ms: u64,
        codes_used: u32,
        paused_until_ms: u64,
    },
    /// The admins were told about this restricted state; after a restart
    /// they are not told again.
    Alerted { state: String },
    /// Unlinked outside the linking windows; the admins were told. When a
    /// window opens is not kept: the calendar says, after a restart too.
    Waiting { episode_started_ms: u64 },
}

/// One instance's last confirmed (or possible) reboot, Unix milliseconds
/// (kept apart from its episode: an instance stuck in `starting` is in none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RebootRecordAsWritten")]
pub struct RebootRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reboot_ms: Option<u64>,
}

/// A [`RebootRecord`] as files have it, the previous version's included:
/// it also wrote since when the instance had been `starting`, which is
/// read and dropped (nobody watched the instance while relinkd was
/// stopped), rather than making the whole file unreadable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebootRecordAsWritten {
    #[serde(default)]
    last_reboot_ms: Option<u64>,
    #[serde(default, rename = "starting_since_ms")]
    _starting_since_ms: Option<u64>,
}

impl From<RebootRecordAsWritten> for RebootRecord {
    fn from(written: RebootRecordAsWritten) -> Self {
        Self {
            last_reboot_ms: written.last_reboot_ms,
        }
    }
}

impl RebootRecord {
    fn is_empty(&self) -> bool {
        self.last_reboot_ms.is_none()
    }
}

/// Everything kept of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub episode: Option<Record>,
    pub reboot: RebootRecord,
}

impl Saved {
    /// Nothing to keep: the instance has no entry.
    pub fn is_empty(&self) -> bool {
        self.episode.is_none() && self.reboot.is_empty()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    saved_at_ms: u64,
    /// Keyed by instance id (as text: JSON keys are strings).
    instances: BTreeMap<String, Record>,
    /// Reboot times, keyed likewise; absent from files written before they
    /// were kept (those load as "never rebooted").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    reboots: BTreeMap<String, RebootRecord>,
}

/// Opens without following a symbolic link in the last component.
fn no_follow() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    options
}

/// The state file in its directory, and the directory's lock (held for as
/// long as any clone of the store lives).
#[derive(Debug, Clone)]
pub struct StateStore {
    /// `[daemon] state_dir`; only this store writes in it.
    dir: PathBuf,
    /// The open, flocked `relinkd.lock`: held for the store's life, so a
    /// second relinkd on the same directory is refused.
    _lock: std::sync::Arc<File>,
}

impl StateStore {
    /// Creates the directory if needed, takes its lock (writing the lock
    /// file also proves the directory writable) and records our pid in it.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::Create {
            dir: dir.to_path_buf(),
            source,
        })?;
        let not_writable = |source| StateError::NotWritable {
            dir: dir.to_path_buf(),
            source,
        };
        let mut lock = no_follow()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE_NAME))
            .map_err(not_writable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                return Err(StateError::InUse {
                    dir: dir.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(not_writable(e)),
        }
        lock.set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .and_then(|()| lock.sync_all())
            .map_err(not_writable)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: std::sync::Arc::new(lock),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The saved records; empty if there is no file. An unreadable,
    /// corrupt or unknown-version file is moved aside with a warning.
    pub fn load(&self) -> BTreeMap<u64, Saved> {
        let path = self.path();
        let read = no_follow().read(true).open(&path).and_then(|mut file| {
            let mut text = String::new();
            file.read_to_string(&mut text).map(|_| text)
        });
        let text = match read {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                self.set_aside(&format!("cannot be read: {e}"));
                return BTreeMap::new();
            }
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(file) if file.version == VERSION => {
                let mut records: BTreeMap<u64, Saved> = BTreeMap::new();
                let skip = |key: &str| tracing::warn!(path = %path.display(), key, "state file: skipping an entry whose key is not an instance id");
                for (id, record) in file.instances {
                    match id.parse::<u64>() {
                        Ok(id) => records.entry(id).or_default().episode = Some(record),
                        Err(_) => skip(&id),
                    }
                }
                for (id, reboot) in file.reboots {
                    match id.parse::<u64>() {
                        Ok(id) => records.entry(id).or_default().reboot = reboot,
                        Err(_) => skip(&id),
                    }
                }
                records.retain(|_, saved| !saved.is_empty());
                records
            }
            Ok(file) => {
                self.set_aside(&format!(
                    "has version {} (this relinkd reads version {VERSION})",
                    file.version
                ));
                BTreeMap::new()
            }
            Err(e) => {
                self.set_aside(&format!("is corrupt: {e}"));
                BTreeMap::new()
            }
        }
    }

    fn set_aside(&self, problem: &str) {
        let path = self.path();
        let aside = self.dir.join(format!(
            "{FILE_NAME}.corrupt-{}",
            clock::unix_seconds(SystemTime::now())
        ));
        match fs::rename(&path, &aside) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                moved_to = %aside.display(),
                "state file {problem}; set aside, starting with fresh state"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "state file {problem}, and could not be set aside; starting with fresh state"
            ),
        }
    }

    /// Writes all records atomically.
    pub fn save(&self, records: &BTreeMap<u64, Saved>) -> io::Result<()> {
        let file = StateFile {
            version: VERSION,
            saved_at_ms: clock::unix_millis(SystemTime::now()),
            instances: records
                .iter()
                .filter_map(|(id, r)| Some((id.to_string(), r.episode.clone()?)))
                .collect(),
            reboots: records
                .iter()
                .filter(|(_, r)| !r.reboot.is_empty())
                .map(|(id, r)| (id.to_string(), r.reboot))
                .collect(),
        };
        let body = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        // A fresh name, created exclusively (never a planted file or link);
        // removed again if anything below fails.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{FILE_NAME}."))
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.dir)?;
        tmp.write_all(&body)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path()).map_err(|e| e.error)?;
        // The rename itself is durable once the directory is synced.
        File::open(&self.dir)?.sync_all()
    }
}

/// The records of the running fleet, shared by the supervisors (who publish
/// a record only when it changes) and the writer task.
#[derive(Clone, Default)]
pub struct StateBoard {
    /// What each instance keeps, written by its supervisor (the only writer
    /// of its entry) and read by the writer task.
    records: Arc<Mutex<BTreeMap<u64, Saved>>>,
    /// Wakes the writer task after a change.
    changed: Arc<Notify>,
}

impl StateBoard {
    pub fn new(records: BTreeMap<u64, Saved>) -> Self {
        Self {
            records: Arc::new(Mutex::new(records)),
            changed: Arc::default(),
        }
    }

    /// An instance's entry (empty if it has none).
    pub fn get(&self, id: u64) -> Saved {
        self.lock().get(&id).cloned().unwrap_or_default()
    }

    /// Sets an instance's entry (an empty one clears it).
    pub fn set(&self, id: u64, record: Saved) {
        let mut records = self.lock();
        let changed = if record.is_empty() {
            records.remove(&id).is_some()
        } else if records.get(&id) == Some(&record) {
            false
        } else {
            records.insert(id, record);
            true
        };
        drop(records);
        if changed {
            self.changed.notify_one();
        }
    }

    /// Keeps only the records of `ids` (instances removed from the config
    /// lose theirs).
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|id, _| keep(*id));
        let changed = records.len() != before;
        drop(records);
        if changed {
            self.changed.notify_one();
        }
    }

    pub fn snapshot(&self) -> BTreeMap<u64, Saved> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Saved>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the board whenever it changes (at most once a second) until
    /// `stop`, then once more. Errors are logged; the next change retries.
    pub async fn write_until(self, store: StateStore, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = self.changed.notified() => {}
                () = stop.cancelled() => break,
            }
            self.write(&store);
            tokio::select! {
                () = tokio::time::sleep(MIN_WRITE_INTERVAL) => {}
                () = stop.cancelled() => break,
            }
        }
        self.write(&store);
    }

    /// One synchronous write: the file is small (only instances in an
    /// episode) and writes are rare, so this does not need a blocking pool.
    pub fn write(&self, store: &StateStore) {
        if let Err(error) = store.save(&self.snapshot()) {
            tracing::warn!(path = %store.path().display(), %error, "cannot write the state file; will retry on the next change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(record: Record) -> Saved {
        Saved {
            episode: Some(record),
            reboot: RebootRecord::default(),
        }
    }

    fn records() -> BTreeMap<u64, Saved> {
        BTreeMap::from([
            (
                110100000001,
                episode(Record::Linking {
                    episode_started_ms: 1_795_946_000_000,
                    codes_used: 2,
                    code_expires_ms: Some(1_795_946_550_000),
                    code_delivered: Some(true),
                }),
            ),
            (
                1101000002,
                Saved {
                    episode: Some(Record::Paused {
                        episode_started_ms: 1_795_940_000_000,
                        codes_used: 4,
                        paused_until_ms: 1_795_950_000_000,
                    }),
                    reboot: RebootRecord {
                        last_reboot_ms: Some(1_795_930_000_000),
                    },
                },
            ),
            (
                1101000003,
                Saved {
                    episode: None,
                    reboot: RebootRecord {
                        last_reboot_ms: Some(1_795_900_000_000),
                    },
                },
            ),
        ])
    }

    /// A store in a fresh directory whose state file holds `text`.
    fn store_with_file(text: &str) -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(store.path(), text).unwrap();
        (dir, store)
    }

    #[test]
    fn records_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(store.load().is_empty());
        store.save(&records()).unwrap();
        assert_eq!(store.load(), records());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "only the state file and the lock: {left:?}");
    }

    #[test]
    fn a_file_written_before_reboot_times_were_kept_still_loads() {
        let (_dir, store) = store_with_file(
            r#"{"version":1,"saved_at_ms":0,"instances":{"1101000002":
                {"phase":"paused","episode_started_ms":5,"codes_used":4,"paused_until_ms":9}}}"#,
        );
        assert_eq!(
            store.load(),
            BTreeMap::from([(
                1101000002,
                episode(Record::Paused {
                    episode_started_ms: 5,
                    codes_used: 4,
                    paused_until_ms: 9,
                })
            )])
        );
    }

    #[test]
    fn a_file_that_also_kept_since_when_an_instance_was_starting_still_loads() {
        // As the version before this one wrote it: that time is no longer
        // restored, but the file's episodes and last reboots are.
        let (_dir, store) = store_with_file(
            r#"{"version":1,"saved_at_ms":0,"instances":{"1101000002":
                {"phase":"paused","episode_started_ms":5,"codes_used":4,"paused_until_ms":9}},
                "reboots":{"1101000003":{"starting_since_ms":7,"last_reboot_ms":3}}}"#,
        );
        let loaded = store.load();
        assert_eq!(
            loaded[&1101000002].episode,
            Some(Record::Paused {
                episode_started_ms: 5,
                codes_used: 4,
                paused_until_ms: 9,
            })
        );
        assert_eq!(loaded[&1101000003].reboot.last_reboot_ms, Some(3));
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateStore::open(dir.path()).unwrap();
        let err = StateStore::open(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("in use by another relinkd"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        StateStore::open(dir.path()).expect("free again once the first is gone");
    }

    #[test]
    fn planted_symlinks_are_never_written_or_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        for name in [".relinkd-write-test", "state.json.tmp", LOCK_FILE_NAME] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        // The lock file is a planted link: refused, the victim untouched.
        assert!(StateStore::open(dir.path()).is_err());
        fs::remove_file(dir.path().join(LOCK_FILE_NAME)).unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&records()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        // A state file that is a link is set aside, not read.
        fs::remove_file(store.path()).unwrap();
        std::os::unix::fs::symlink(&victim, store.path()).unwrap();
        assert!(store.load().is_empty());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!store.path().exists());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_state_starts_fresh() {
        let (dir, store) = store_with_file("{\"version\":1,\"instan");
        assert!(store.load().is_empty());
        assert!(!store.path().exists());
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn a_file_of_another_version_is_set_aside() {
        let (_dir, store) = store_with_file(r#"{"version":99,"saved_at_ms":0,"instances":{}}"#);
        assert!(store.load().is_empty());
        assert!(!store.path().exists());
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, "x").unwrap();
        let err = StateStore::open(&file.join("state")).unwrap_err();
        assert!(err.to_string().contains("state_dir"), "{err}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
