//! [`FileStorage`]: the production [`Storage`], a data directory with an append-only log
//! of checksummed records and a snapshot file. It stores what hal-core asks for; what to
//! write, and how writes are grouped into batches, is decided above it. Its IO goes
//! through a file system ([`Fs`]): the operating system's in production, the simulator's
//! (with its crash model) under simulation, so that recovery runs the same code in both.
//!
//! # Layout
//!
//! - `lock`: exclusively locked while the storage lives, so two servers never share it.
//! - `snapshot`: one record (framing in [`super::frame`]) holding the snapshot the log
//!   starts from.
//! - `log`: records of [`Record`]. The first, `Base`, names the snapshot the log follows
//!   (0/0: none); each later one holds one `persist` batch, snapshots included, so a
//!   batch costs one append and one `fdatasync` and a crash can only tear the last record.
//!   After the records the file holds zeros: space written ahead, [`LOG_PREALLOCATE`] at
//!   a time, so that a batch overwrites blocks that already exist and its `fdatasync`
//!   writes the data alone, not the file's size and block map as well (a third less time
//!   per sync on ext4). The first record header of zeros is the end of the log.
//!
//! A snapshot hal-core asks for is appended to the log like any other write. Once the log
//! has grown past [`LOG_REWRITE_MIN`] (or [`LOG_REWRITE_GROWTH`] times what the last
//! compaction left, if more), it is compacted: the newest snapshot is written to
//! `snapshot.tmp`, synced and renamed over `snapshot`; then the log is rewritten (its
//! base, then one record with the hard state and the entries after the snapshot) the
//! same way. Both renames are followed
//! by a directory sync. So the renames and directory syncs of a compaction come once per
//! tens of megabytes of log, not once per snapshot.
//!
//! # Recovery
//!
//! [`Storage::load`] replays the log over its base, snapshot records included. A crash
//! between the two renames leaves a snapshot file newer than the log's base: the log is
//! replayed over the base, the snapshot file applied on top if the log did not reach it,
//! and the compaction finished.
//!
//! Where the log's intact records end, the rest of the file is either zeros (the end of
//! the log) or damage, which [`super::torn`] judges by file offset and sector: a record
//! a crash cut short (cut by the end of the file, or with a 512-byte sector of it reading
//! all zero, and only zeros after it) is a torn write and is cut off, with a warning
//! (`torn log tail truncated`). Anything else is [`StorageError::Corrupt`], naming the
//! file and byte offset, and the files are left as found: a complete record whose
//! checksum fails (even the last one), damage with a record after it, a damaged length
//! field, a damaged snapshot file (it is replaced by rename, so never torn), or a log
//! that does not fit its snapshot. The server must not start on them.
//!
//! # A blank directory
//!
//! A missing data directory, or one with neither a log nor a snapshot, would start a
//! member with no seats at term 0. [`FileStorage::open`] refuses it unless asked to join
//! empty ([`IfBlank`]), so a mistyped or lost path stops the server instead.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hal_core::plant::{Plant, Plants};
use hal_core::protocol::{LogIndex, Snapshot, Term};
use hal_core::seats::Seats;
use hal_core::server::{Durable, Persist};
use serde::{Deserialize, Serialize};

use super::frame::{self, Damage};
use super::fs::{Fs, FsFile, OsFs, StorageEvent};
use super::torn::{self, Verdict};
use super::{Storage, StorageError};

const LOCK: &str = "lock";
const LOG: &str = "log";
const SNAPSHOT: &str = "snapshot";

/// What a file of format 2 or later begins with, before its format (u32 LE) and records.
/// No format-1 file can begin so: as a record's length these bytes are 760 MB, over
/// [`frame::PAYLOAD_MAX`].
const LOG_MAGIC: &[u8; 8] = b"HAL-LOG\0";
const SNAPSHOT_MAGIC: &[u8; 8] = b"HAL-SNP\0";
/// The magic and the format.
const HEADER_LEN: usize = 12;

/// `magic` and this build's format: the first bytes of a file it writes.
fn header(magic: &[u8; 8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&super::FORMAT.to_le_bytes());
    bytes
}

/// The format of the file at `path` holding `bytes`, and where its records start: 1 with
/// no header (the layout before formats were numbered).
fn read_header(path: &Path, bytes: &[u8], magic: &[u8; 8]) -> Result<(u32, usize), StorageError> {
    let other = if magic == LOG_MAGIC {
        SNAPSHOT_MAGIC
    } else {
        LOG_MAGIC
    };
    if bytes.starts_with(other) {
        return Err(corrupt(
            path,
            0,
            "it has the header of another kind of file",
        ));
    }
    if !bytes.starts_with(magic) {
        return Ok((1, 0));
    }
    let Some(&[a, b, c, d]) = bytes.get(magic.len()..HEADER_LEN) else {
        return Err(corrupt(path, 0, "its header is cut short"));
    };
    let format = u32::from_le_bytes([a, b, c, d]);
    if format > super::FORMAT {
        return Err(StorageError::NewerFormat {
            path: path.to_path_buf(),
            format,
        });
    }
    if format < 2 {
        return Err(corrupt(
            path,
            magic.len(),
            format!("its header names format {format}, which has no header"),
        ));
    }
    Ok((format, HEADER_LEN))
}

/// The log is compacted once it is this long (and holds a snapshot newer than its base):
/// replaying it at start takes well under a second, and compactions come seconds apart at
/// the highest write rates.
pub const LOG_REWRITE_MIN: u64 = 64 << 20;

/// The log is compacted once it is this many times what the last compaction left (if
/// that is more than [`LOG_REWRITE_MIN`]): compaction costs stay a fixed share of the
/// writes, however large the snapshot.
pub const LOG_REWRITE_GROWTH: u64 = 4;

/// How far ahead of its records the log is written with zeros: a record that runs past
/// the zeros extends them by this much, in the same write and the same sync (about 2 ms
/// on a virtual disk, once per megabyte of log).
pub const LOG_PREALLOCATE: u64 = 1 << 20;

/// One record of the log file.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    /// The first record: the snapshot the log continues from.
    Base(Base),
    /// One batch of writes, in the order hal-core made them.
    Writes(Vec<Persist>),
}

/// The snapshot a log follows, by its last index and term; [`Base::NONE`] before any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Base {
    last_index: LogIndex,
    last_term: Term,
}

impl Base {
    const NONE: Base = Base {
        last_index: LogIndex(0),
        last_term: Term(0),
    };

    fn of(snapshot: Option<&Snapshot>) -> Base {
        snapshot.map_or(Base::NONE, |s| Base {
            last_index: s.last_index,
            last_term: s.last_term,
        })
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index {} term {}", self.last_index.0, self.last_term)
    }
}

/// How [`FileStorage`] sizes its log, and the bugs planted in it (none but in the
/// simulator's measurement, see [`hal_core::plant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileConfig {
    /// The log is compacted once it is this long (and holds a snapshot newer than its
    /// base), or `log_rewrite_growth` times what the last compaction left, if more.
    pub log_rewrite_min_bytes: u64,
    pub log_rewrite_growth: u64,
    /// How far ahead of its records the log is written with zeros.
    pub log_preallocate_bytes: u64,
    pub plants: Plants,
}

impl Default for FileConfig {
    /// Production's: [`LOG_REWRITE_MIN`], [`LOG_REWRITE_GROWTH`] and [`LOG_PREALLOCATE`].
    fn default() -> FileConfig {
        FileConfig {
            log_rewrite_min_bytes: LOG_REWRITE_MIN,
            log_rewrite_growth: LOG_REWRITE_GROWTH,
            log_preallocate_bytes: LOG_PREALLOCATE,
            plants: Plants::NONE,
        }
    }
}

/// Durable storage in a data directory (see the module documentation for the format),
/// over the file system `F` (the operating system's, but in the simulator).
pub struct FileStorage<F: Fs = OsFs> {
    fs: F,
    dir: PathBuf,
    loaded: bool,
    // Shared with the blocking task doing the IO. The mutex also orders a call made while
    // the task of a cancelled earlier call still runs.
    state: Arc<Mutex<State<F>>>,
}

/// What the blocking tasks work on.
struct State<F: Fs> {
    fs: F,
    dir: PathBuf,
    /// Holds the directory lock until dropped.
    _lock: F::Lock,
    /// The log, open for writing; `None` before `load` and after a failed write.
    log: Option<F::File>,
    /// What the files hold, so that a snapshot can rewrite the log without reading it.
    mirror: Durable,
    /// The snapshot the log file follows (its `Base` record).
    log_base: Base,
    /// Where the log's records end (the next one is written there).
    log_len: u64,
    /// The log file's length: its records, then zeros.
    log_file_len: u64,
    /// How many zeros a record that runs past them adds.
    preallocate: u64,
    /// The log is compacted once it is longer than this.
    rewrite_at: u64,
    /// The least `rewrite_at` can be.
    rewrite_min: u64,
    /// `rewrite_at` is this many times what a compaction left, if that is more.
    rewrite_growth: u64,
    plants: Plants,
}

impl<F: Fs> fmt::Debug for FileStorage<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

/// What [`FileStorage::open`] does with a *blank* data directory: one that is missing,
/// or holds neither a log nor a snapshot. A server started on one has no seats and is at
/// term 0, which is right for a new triad and wrong for a mistyped or lost path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfBlank {
    /// Fail with [`StorageError::Blank`].
    Refuse,
    /// Create the directory (mode 0700) if it is missing, log a warning, and start
    /// empty: a new triad's first start, or a server emptied to receive the state from
    /// the other two (`hal-net serve --join-empty`).
    JoinEmpty,
}

impl FileStorage {
    /// Opens the data directory `dir` and locks it; a blank one is refused or created as
    /// `if_blank` says. Fails with [`StorageError::Locked`] if another process (or another
    /// `FileStorage`) holds it. Reads nothing yet: call [`Storage::load`] first.
    pub fn open(dir: &Path, if_blank: IfBlank) -> Result<FileStorage, StorageError> {
        FileStorage::open_in(OsFs, dir, if_blank, FileConfig::default())
    }
}

impl<F: Fs> FileStorage<F> {
    /// [`FileStorage::open`] on the file system `fs`, with `config`'s log sizes.
    pub fn open_in(
        fs: F,
        dir: &Path,
        if_blank: IfBlank,
        config: FileConfig,
    ) -> Result<FileStorage<F>, StorageError> {
        let missing = !fs.exists(dir).map_err(io(dir, "read the data directory"))?;
        // Before the lock, so that a refused directory is left as found. (Another server
        // starting on it meanwhile holds the lock, which stops this one anyway.)
        if missing || !holds_state(&fs, dir)? {
            blank(dir, missing, if_blank)?;
        }
        fs.create_dir_all(dir)
            .map_err(io(dir, "create the data directory"))?;
        let lock = lock(&fs, dir)?;
        let state = State {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            _lock: lock,
            log: None,
            mirror: Durable::default(),
            log_base: Base::NONE,
            log_len: 0,
            log_file_len: 0,
            preallocate: config.log_preallocate_bytes,
            rewrite_at: config.log_rewrite_min_bytes,
            rewrite_min: config.log_rewrite_min_bytes,
            rewrite_growth: config.log_rewrite_growth,
            plants: config.plants,
        };
        Ok(FileStorage {
            fs,
            dir: dir.to_path_buf(),
            loaded: false,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Compacts the log once it is longer than `bytes` (default [`LOG_REWRITE_MIN`]):
    /// for tests of compaction without writing megabytes.
    #[cfg(test)]
    fn set_log_rewrite_min(&mut self, bytes: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.rewrite_min = bytes;
            state.rewrite_at = bytes;
        }
    }

    /// Writes the log this many bytes ahead of its records (default
    /// [`LOG_PREALLOCATE`]): for tests of the zeros' end without writing megabytes.
    #[cfg(test)]
    fn set_log_preallocate(&mut self, bytes: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.preallocate = bytes;
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    /// The snapshot file (absent until the first snapshot).
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT)
    }

    /// Runs `work` on the state where the file system does its IO (a blocking thread,
    /// off the async runtime, for the operating system's).
    async fn blocking<T, W>(&self, work: W) -> Result<T, StorageError>
    where
        T: Send + 'static,
        W: FnOnce(&mut State<F>) -> Result<T, StorageError> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let dir = self.dir.clone();
        let task = self.fs.run(move || work(&mut *locked(&state, &dir)?)).await;
        task.map_err(io(&self.dir, "run the storage task"))?
    }
}

impl<F: Fs> Storage for FileStorage<F> {
    async fn load(&mut self) -> Result<Durable, StorageError> {
        let durable = self.blocking(State::load).await?;
        self.loaded = true;
        self.fs.observe(StorageEvent::Loaded);
        Ok(durable)
    }

    async fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        assert!(self.loaded, "FileStorage::persist before load");
        self.blocking(move |state| state.persist(batch)).await
    }

    async fn persist_here(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        assert!(self.loaded, "FileStorage::persist before load");
        let (state, dir) = (&self.state, &self.dir);
        self.fs
            .run_here(move || locked(state, dir)?.persist(batch))
            .await
    }
}

/// The state, unless an earlier call panicked mid-write (the lock is poisoned), which
/// leaves the files of `dir` uncertain.
fn locked<'a, F: Fs>(
    state: &'a Mutex<State<F>>,
    dir: &Path,
) -> Result<std::sync::MutexGuard<'a, State<F>>, StorageError> {
    state.lock().map_err(|_| StorageError::Failed {
        path: dir.to_path_buf(),
    })
}

/// Locks the data directory `dir` for as long as the returned lock is held.
fn lock<F: Fs>(fs: &F, dir: &Path) -> Result<F::Lock, StorageError> {
    let lock_path = dir.join(LOCK);
    match fs.try_lock(&lock_path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(StorageError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(source) => Err(io(&lock_path, "open and lock")(source)),
    }
}

/// Whether `dir` holds a log or a snapshot: anything a server started from. A log is
/// born by rename, so a crash during the first start leaves none (`log.tmp` at most).
fn holds_state<F: Fs>(fs: &F, dir: &Path) -> Result<bool, StorageError> {
    for name in [LOG, SNAPSHOT] {
        let path = dir.join(name);
        if fs.exists(&path).map_err(io(&path, "look for"))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A blank data directory `dir` (`missing`, or empty): refused, or warned about.
fn blank(dir: &Path, missing: bool, if_blank: IfBlank) -> Result<(), StorageError> {
    match if_blank {
        IfBlank::Refuse => Err(StorageError::Blank {
            path: dir.to_path_buf(),
            missing,
        }),
        IfBlank::JoinEmpty => {
            tracing::warn!(
                path = %dir.display(),
                missing,
                "joining empty: the data directory is missing or holds no log and no snapshot, so this server starts with no seats at term 0 and takes the state from the other servers"
            );
            Ok(())
        }
    }
}

impl<F: Fs> State<F> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn load(&mut self) -> Result<Durable, StorageError> {
        self.log = None;
        let snapshot = read_snapshot(&self.fs, &self.path(SNAPSHOT))?;
        let log_path = self.path(LOG);
        let snapshot_len = snapshot.as_ref().map_or(0, |(_, len, _)| *len);
        // The oldest format of the two files: below this build's, the directory is
        // upgraded once it is loaded.
        let mut format = snapshot.as_ref().map_or(super::FORMAT, |(_, _, f)| *f);
        let snapshot = snapshot.map(|(snapshot, _, _)| snapshot);
        let file_base = Base::of(snapshot.as_deref());
        let recovered = match read_if_present(&self.fs, &log_path)? {
            Some(bytes) => {
                let (log_format, start) = read_header(&log_path, &bytes, LOG_MAGIC)?;
                format = format.min(log_format);
                Some(self.recover_log(&log_path, (&bytes, start), snapshot)?)
            }
            // The log is created before any snapshot and only ever replaced by rename.
            None if snapshot.is_some() => {
                return Err(corrupt(&log_path, 0, "missing, but a snapshot exists"));
            }
            None => None,
        };
        match recovered {
            Some(Recovered {
                durable,
                base,
                records_len,
                file_len,
            }) => {
                self.mirror = durable;
                self.log_base = base;
                self.log_len = records_len;
                self.log_file_len = file_len;
                // What the last compaction left is not known here; the snapshot is most of it.
                self.compact_after(snapshot_len);
                if format < super::FORMAT {
                    // Both files written again, in this build's format, each by rename:
                    // a crash on the way leaves either format, both readable.
                    self.compact()?;
                    tracing::info!(
                        dir = %self.dir.display(),
                        from = format,
                        to = super::FORMAT,
                        "upgraded the data directory from format {format} to {}",
                        super::FORMAT
                    );
                    self.fs.observe(StorageEvent::Upgraded);
                } else if file_base == base {
                    self.log = Some(open_log(&self.fs, &log_path)?);
                } else {
                    let mirror_base = Base::of(self.mirror.snapshot.as_deref());
                    tracing::info!(path = %log_path.display(), base = %mirror_base, "finishing an interrupted log compaction");
                    self.compact()?;
                    self.fs.observe(StorageEvent::CompactionFinished);
                }
            }
            None => {
                self.mirror = Durable::default();
                self.rewrite_log()?;
            }
        }
        Ok(self.mirror.clone())
    }

    /// Writes `batch` in order, giving up on this storage if any of it fails.
    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        if self.log.is_none() {
            return Err(StorageError::Failed {
                path: self.path(LOG),
            });
        }
        let result = self.write_batch(batch);
        if result.is_err() {
            // A partial record may sit at the end of the log: appending after it would
            // turn a torn tail into corruption in the middle. `load` repairs it.
            self.log = None;
        }
        result
    }

    fn write_batch(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        self.append(batch)?;
        let newer_snapshot = Base::of(self.mirror.snapshot.as_deref()) != self.log_base;
        if newer_snapshot && self.log_len > self.rewrite_at {
            self.compact()?;
        }
        Ok(())
    }

    /// Appends `writes` to the log as one record and syncs it. A record that runs past the
    /// zeros after the records is followed by [`State::preallocate`] more, and the one
    /// sync covers both.
    fn append(&mut self, writes: Vec<Persist>) -> Result<(), StorageError> {
        if writes.is_empty() {
            return Ok(());
        }
        for write in &writes {
            self.mirror.apply(write);
        }
        let path = self.path(LOG);
        let record = encode(&path, &Record::Writes(writes))?;
        let log = self
            .log
            .as_mut()
            .ok_or(StorageError::Failed { path: path.clone() })?;
        let end = self.log_len + record.len() as u64;
        log.write_all_at(&record, self.log_len)
            .map_err(io(&path, "append to"))?;
        if end > self.log_file_len {
            let zeros = vec![0; usize::try_from(self.preallocate).unwrap_or(usize::MAX)];
            log.write_all_at(&zeros, end)
                .map_err(io(&path, "write zeros ahead of the records of"))?;
            self.log_file_len = end + self.preallocate;
        }
        log.sync_data().map_err(io(&path, "sync"))?;
        self.log_len = end;
        Ok(())
    }

    /// Writes the mirror's snapshot to the snapshot file and rewrites the log to follow
    /// it; the next compaction comes once the log has grown [`State::rewrite_growth`]
    /// times what this leaves.
    fn compact(&mut self) -> Result<(), StorageError> {
        let mut snapshot_len = 0;
        if let Some(snapshot) = &self.mirror.snapshot {
            let mut bytes = header(SNAPSHOT_MAGIC);
            bytes.extend(encode(&self.path(SNAPSHOT), &**snapshot)?);
            self.replace_file(SNAPSHOT, &bytes)?;
            snapshot_len = bytes.len() as u64;
        }
        self.rewrite_log()?;
        self.compact_after(self.log_len + snapshot_len);
        self.fs.observe(StorageEvent::Compacted);
        Ok(())
    }

    /// The next compaction comes once the log is [`State::rewrite_growth`] times `left`
    /// (what a compaction leaves on disk), and never before [`State::rewrite_min`].
    fn compact_after(&mut self, left: u64) {
        self.rewrite_at = self
            .rewrite_min
            .max(self.rewrite_growth.saturating_mul(left));
    }

    /// Replaces the log by the mirror's compact form: its base, then one record with the
    /// hard state and the entries after the snapshot.
    fn rewrite_log(&mut self) -> Result<(), StorageError> {
        self.log = None;
        let base = Base::of(self.mirror.snapshot.as_deref());
        let state = Record::Writes(vec![
            Persist::HardState {
                term: self.mirror.term,
                voted_for: self.mirror.voted_for,
            },
            Persist::Entries {
                first: LogIndex(base.last_index.0 + 1),
                entries: self.mirror.entries.clone(),
            },
        ]);
        let path = self.path(LOG);
        let mut bytes = header(LOG_MAGIC);
        bytes.extend(encode(&path, &Record::Base(base))?);
        bytes.extend(encode(&path, &state)?);
        self.replace_file(LOG, &bytes)?;
        self.log = Some(open_log(&self.fs, &path)?);
        self.log_base = base;
        self.log_len = bytes.len() as u64;
        self.log_file_len = self.log_len;
        Ok(())
    }

    /// Writes `name` in the directory atomically: a synced temporary file renamed over
    /// it, then the directory synced so the rename itself is durable.
    fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let (dir, fs) = (&self.dir, &self.fs);
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut file = fs.create(&tmp).map_err(io(&tmp, "create"))?;
        file.write_all_at(bytes, 0).map_err(io(&tmp, "write"))?;
        file.sync_all().map_err(io(&tmp, "sync"))?;
        fs.rename(&tmp, &path).map_err(io(&path, "rename over"))?;
        fs.sync_dir(dir).map_err(io(dir, "sync the directory"))
    }

    /// Replays the log in `bytes` (its records from `start`) over `snapshot`, cutting off
    /// a torn tail.
    fn recover_log(
        &self,
        path: &Path,
        (bytes, start): (&[u8], usize),
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<Recovered, StorageError> {
        let scan = scan(path, (bytes, start), self.plants)?;
        let (durable, base) = replay(path, (scan.records, start), snapshot)?;
        let mut file_len = bytes.len();
        // Only now: a log that turned out to be corrupt is left as it was found.
        if let Some(damage) = scan.tail {
            truncate_tail(
                &self.fs,
                path,
                scan.intact_len,
                &bytes[scan.intact_len..],
                &damage,
            )?;
            file_len = scan.intact_len;
        }
        Ok(Recovered {
            durable,
            base,
            records_len: scan.intact_len as u64,
            file_len: file_len as u64,
        })
    }
}

/// Reads the snapshot file, if there is one, with its length and format. It is replaced
/// atomically, so any damage is corruption, never a torn write.
fn read_snapshot<F: Fs>(
    fs: &F,
    path: &Path,
) -> Result<Option<(Arc<Snapshot>, u64, u32)>, StorageError> {
    let Some(bytes) = read_if_present(fs, path)? else {
        return Ok(None);
    };
    let (format, start) = read_header(path, &bytes, SNAPSHOT_MAGIC)?;
    match frame::decode::<Snapshot>(&bytes, start) {
        Ok((snapshot, end)) if end == bytes.len() => {
            Ok(Some((Arc::new(snapshot), bytes.len() as u64, format)))
        }
        Ok((_, end)) => Err(corrupt(path, end, "bytes after the snapshot record")),
        Err(damage) => Err(corrupt(path, start, damage.to_string())),
    }
}

/// What a log file holds, once its torn tail is cut off.
struct Recovered {
    /// Its records replayed over the snapshot.
    durable: Durable,
    /// The snapshot it follows.
    base: Base,
    /// Where its records end.
    records_len: u64,
    /// Its length: the records, then zeros.
    file_len: u64,
}

/// The intact records of a log, where they end, and the damage of its torn tail if it has
/// one (zeros after the records are no damage: they are the space written ahead).
struct Scan {
    records: Vec<(usize, Record)>,
    intact_len: usize,
    tail: Option<Damage>,
}

/// Reads the records of the log `bytes` from `start` (after its header).
fn scan(path: &Path, (bytes, start): (&[u8], usize), plants: Plants) -> Result<Scan, StorageError> {
    let mut records = Vec::new();
    let mut offset = start;
    while offset < bytes.len() {
        match frame::decode::<Record>(bytes, offset) {
            Ok((record, next)) => {
                records.push((offset, record));
                offset = next;
            }
            Err(_) if bytes[offset..].iter().all(|&b| b == 0) => break,
            Err(damage) => match torn::judge::<Record>(bytes, offset, &damage) {
                Verdict::Torn if plants.has(Plant::TornTailIsCorruption) => {
                    return Err(corrupt(path, offset, "a torn record (planted bug)"));
                }
                Verdict::Torn => {
                    return Ok(Scan {
                        records,
                        intact_len: offset,
                        tail: Some(damage),
                    });
                }
                Verdict::Corrupt(detail) => return Err(corrupt(path, offset, detail)),
            },
        }
    }
    Ok(Scan {
        records,
        intact_len: offset,
        tail: None,
    })
}

/// Applies the log's records over the snapshot it follows, then a newer snapshot file
/// (left by a crash between the snapshot's rename and the log's) unless the log's own
/// snapshot records reached it.
fn replay(
    path: &Path,
    (records, first): (Vec<(usize, Record)>, usize),
    snapshot: Option<Arc<Snapshot>>,
) -> Result<(Durable, Base), StorageError> {
    let mut records = records.into_iter();
    // The log is born by rename with its base synced, so it is never missing or torn.
    let Some((_, Record::Base(base))) = records.next() else {
        return Err(corrupt(
            path,
            first,
            "the log does not start with a base record",
        ));
    };
    let (mut durable, newer) = start((path, first), base, snapshot)?;
    for (offset, record) in records {
        let Record::Writes(writes) = record else {
            return Err(corrupt(path, offset, "a second base record"));
        };
        for write in &writes {
            durable.apply(write);
        }
    }
    if let Some(newer) = newer {
        // A snapshot no newer than the log's would rewind it (`Durable::apply` takes any).
        let reached = durable.snapshot.as_ref().map_or(0, |s| s.last_index.0);
        if newer.last_index.0 > reached {
            durable.apply(&Persist::Snapshot(newer));
        }
    }
    Ok((durable, base))
}

/// The state to replay the log over, and a newer snapshot to apply after it.
fn start(
    (path, first): (&Path, usize),
    base: Base,
    snapshot: Option<Arc<Snapshot>>,
) -> Result<(Durable, Option<Arc<Snapshot>>), StorageError> {
    let file_base = Base::of(snapshot.as_deref());
    match snapshot {
        Some(snapshot) if file_base == base => {
            let durable = Durable {
                snapshot: Some(snapshot),
                ..Durable::default()
            };
            Ok((durable, None))
        }
        Some(snapshot) if base.last_index < file_base.last_index => {
            // `Durable::apply` only needs the base's index and term to replay; the
            // placeholder is replaced when the newer snapshot is applied.
            let placeholder = (base != Base::NONE).then(|| {
                Arc::new(Snapshot {
                    last_index: base.last_index,
                    last_term: base.last_term,
                    seats: Seats::new(),
                })
            });
            let durable = Durable {
                snapshot: placeholder,
                ..Durable::default()
            };
            Ok((durable, Some(snapshot)))
        }
        None if base == Base::NONE => Ok((Durable::default(), None)),
        _ => {
            let file = snapshot_description(file_base);
            let detail = format!("the log follows the snapshot at {base}, but {file}");
            Err(corrupt(path, first, detail))
        }
    }
}

fn snapshot_description(base: Base) -> String {
    if base == Base::NONE {
        "there is no snapshot file".to_owned()
    } else {
        format!("the snapshot file is at {base}")
    }
}

/// Cuts the log at `intact_len`, dropping `tail` (the torn record and the zeros after it).
fn truncate_tail<F: Fs>(
    fs: &F,
    path: &Path,
    intact_len: usize,
    tail: &[u8],
    damage: &Damage,
) -> Result<(), StorageError> {
    let mut file = fs.open_write(path).map_err(io(path, "open for repair"))?;
    file.set_len(intact_len as u64)
        .map_err(io(path, "truncate"))?;
    file.sync_all().map_err(io(path, "sync"))?;
    fs.observe(StorageEvent::TornTailTruncated);
    // What the torn record left; the zeros after it were never written as records.
    let dropped = tail
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    tracing::warn!(
        path = %path.display(),
        offset = intact_len,
        dropped_bytes = dropped,
        %damage,
        "torn log tail truncated: dropped {dropped} bytes at offset {intact_len}"
    );
    Ok(())
}

/// Opens the log for writing at offsets (not appending: zeros follow the records).
fn open_log<F: Fs>(fs: &F, path: &Path) -> Result<F::File, StorageError> {
    fs.open_write(path).map_err(io(path, "open for writing"))
}

fn read_if_present<F: Fs>(fs: &F, path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs.read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io(path, "read")(error)),
    }
}

fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StorageError> {
    frame::encode(value).map_err(|too_large| StorageError::RecordTooLarge {
        path: path.to_path_buf(),
        bytes: too_large.bytes,
        limit: frame::PAYLOAD_MAX,
    })
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        path,
        action,
        source,
    }
}

fn corrupt(path: &Path, offset: usize, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use hal_core::ServerId;
    use hal_core::protocol::{ClientId, Entry, RequestSeq};
    use std::fs;

    use hal_core::seats::Command;
    use tempfile::TempDir;

    use super::*;

    /// Writes `name` in `dir` as a compaction does: a temporary file renamed over it.
    fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = dir.join(format!("{name}.tmp"));
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, dir.join(name))
    }

    fn grant(n: u64) -> Command {
        Command::Grant {
            client: ClientId(n),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: format!("user{n}").into(),
            host: "host".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: hal_core::time::WallTime(1_800_000_000_000),
        }
    }

    /// The entries `indexes` of `term`, starting at the first of `indexes`.
    fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Persist {
        let first = LogIndex(*indexes.start());
        let entries = indexes
            .map(|n| {
                Arc::new(Entry {
                    term: Term(term),
                    command: grant(n),
                })
            })
            .collect();
        Persist::Entries { first, entries }
    }

    fn hard(term: u64, voted_for: Option<ServerId>) -> Persist {
        Persist::HardState {
            term: Term(term),
            voted_for,
        }
    }

    /// A snapshot whose seat table holds one seat, so it is not trivially empty.
    fn snapshot(last_index: u64, last_term: u64) -> Arc<Snapshot> {
        let mut seats = Seats::new();
        let outcome = seats.apply(LogIndex(1), &grant(1), |_| Some(10));
        assert!(outcome.is_some(), "the grant was applied");
        Arc::new(Snapshot {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            seats,
        })
    }

    /// What `Durable::apply` makes of `batches`: what the files must load as.
    fn model(batches: &[Vec<Persist>]) -> Durable {
        let mut durable = Durable::default();
        batches.iter().flatten().for_each(|w| durable.apply(w));
        durable
    }

    async fn opened(dir: &Path) -> FileStorage {
        let mut storage = FileStorage::open(dir, IfBlank::JoinEmpty).unwrap();
        storage.load().await.unwrap();
        storage
    }

    /// Opens `dir` and persists `batches`; returns where the log's records end after
    /// each batch.
    async fn persist_all(dir: &Path, batches: &[Vec<Persist>]) -> Vec<usize> {
        let mut storage = opened(dir).await;
        let mut lens = Vec::new();
        for batch in batches {
            storage.persist(batch.clone()).await.unwrap();
            lens.push(log_len(dir));
        }
        lens
    }

    /// Opens `dir` and persists `batches`, compacting the log at every snapshot.
    async fn persist_compacting(dir: &Path, batches: &[Vec<Persist>]) {
        let mut storage = opened(dir).await;
        storage.set_log_rewrite_min(0);
        for batch in batches {
            storage.persist(batch.clone()).await.unwrap();
        }
    }

    /// Loads `dir` again, as a restart without `--join-empty` does.
    async fn reload(dir: &Path) -> Result<Durable, StorageError> {
        FileStorage::open(dir, IfBlank::Refuse)?.load().await
    }

    /// Where the records of the log end (the zeros after them left out).
    fn log_len(dir: &Path) -> usize {
        let path = dir.join(LOG);
        let bytes = fs::read(&path).unwrap();
        let (_, start) = read_header(&path, &bytes, LOG_MAGIC).unwrap();
        scan(&path, (&bytes, start), Plants::NONE)
            .unwrap()
            .intact_len
    }

    /// The log file's length: its records and the zeros after them.
    fn file_len(dir: &Path) -> usize {
        fs::read(dir.join(LOG)).unwrap().len()
    }

    fn log_base(dir: &Path) -> Base {
        let bytes = fs::read(dir.join(LOG)).unwrap();
        let (_, start) = read_header(&dir.join(LOG), &bytes, LOG_MAGIC).unwrap();
        match frame::decode::<Record>(&bytes, start).unwrap().0 {
            Record::Base(base) => base,
            Record::Writes(_) => panic!("the log does not start with its base"),
        }
    }

    fn edit_log(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let path = dir.join(LOG);
        let mut bytes = fs::read(&path).unwrap();
        edit(&mut bytes);
        fs::write(&path, bytes).unwrap();
    }

    #[tokio::test]
    async fn a_new_directory_loads_empty() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("data");
        let mut storage = FileStorage::open(&dir, IfBlank::JoinEmpty).unwrap();
        assert_eq!(storage.load().await.unwrap(), Durable::default());
        drop(storage);
        assert_eq!(log_base(&dir), Base::NONE, "load creates the log");
        assert_eq!(reload(&dir).await.unwrap(), Durable::default());
    }

    /// Entries and votes of two terms, in four batches.
    fn two_terms() -> [Vec<Persist>; 4] {
        [
            vec![hard(1, Some(ServerId::PRIMARY)), entries(1, 1..=3)],
            vec![entries(1, 4..=5)],
            vec![hard(2, None)],
            vec![entries(2, 6..=6), hard(2, Some(ServerId::SECONDARY))],
        ]
    }

    #[tokio::test]
    async fn batches_load_back_as_applied() {
        let tmp = TempDir::new().unwrap();
        let batches = two_terms();
        persist_all(tmp.path(), &batches).await;
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches));
        assert_eq!(loaded.entries.len(), 6);
        assert_eq!(loaded.voted_for, Some(ServerId::SECONDARY));
    }

    #[tokio::test]
    async fn batches_persisted_here_load_back_as_those_on_another_thread() {
        let tmp = TempDir::new().unwrap();
        let batches = two_terms();
        let mut storage = opened(tmp.path()).await;
        for (n, batch) in batches.iter().enumerate() {
            if n % 2 == 0 {
                storage.persist_here(batch.clone()).await.unwrap();
            } else {
                storage.persist(batch.clone()).await.unwrap();
            }
        }
        drop(storage);
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
    }

    #[tokio::test]
    async fn entries_from_an_index_replace_the_stored_suffix() {
        let tmp = TempDir::new().unwrap();
        let batches = [
            vec![entries(1, 1..=5)],
            vec![hard(2, None), entries(2, 3..=3)],
        ];
        persist_all(tmp.path(), &batches).await;
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches));
        let terms: Vec<u64> = loaded.entries.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [1, 1, 2]);
    }

    /// Fifty entries, then a batch with writes on both sides of a snapshot at 45.
    fn fifty_then_a_snapshot() -> Vec<Vec<Persist>> {
        let mut batches: Vec<_> = (0..10)
            .map(|i| vec![entries(1, i * 5 + 1..=i * 5 + 5)])
            .collect();
        batches.push(vec![
            hard(3, None),
            Persist::Snapshot(snapshot(45, 1)),
            entries(3, 51..=51),
        ]);
        batches
    }

    #[tokio::test]
    async fn a_snapshot_is_one_more_record_in_the_log() {
        let tmp = TempDir::new().unwrap();
        let batches = fifty_then_a_snapshot();
        let lens = persist_all(tmp.path(), &batches).await;
        assert!(lens[10] > lens[9], "appended");
        assert_eq!(log_base(tmp.path()), Base::NONE, "not rewritten");
        assert!(!tmp.path().join(SNAPSHOT).exists());
        // Writes on both sides of the snapshot in one batch take effect in order.
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches));
        assert_eq!(loaded.entries.len(), 6, "entries 46..=51 stay");
        assert_eq!(loaded.snapshot, Some(snapshot(45, 1)));
        assert_eq!(loaded.term, Term(3));
    }

    #[tokio::test]
    async fn a_long_log_is_compacted_to_its_newest_snapshot() {
        let tmp = TempDir::new().unwrap();
        let mut batches = fifty_then_a_snapshot();
        let mut storage = opened(tmp.path()).await;
        storage.set_log_rewrite_min(1024);
        let mut lens = Vec::new();
        for batch in &batches {
            storage.persist(batch.clone()).await.unwrap();
            lens.push(log_len(tmp.path()));
        }
        assert!(
            lens[9] > 1024,
            "the threshold was passed before the snapshot"
        );
        assert!(lens[10] < lens[9] / 2, "the log was rewritten");
        assert_eq!(log_base(tmp.path()).last_index, LogIndex(45));
        assert_eq!(
            read_snapshot(&OsFs, &tmp.path().join(SNAPSHOT))
                .unwrap()
                .unwrap()
                .0,
            snapshot(45, 1)
        );
        // The next snapshot is appended again until the log is long once more.
        let later = vec![entries(3, 52..=60), Persist::Snapshot(snapshot(55, 3))];
        storage.persist(later.clone()).await.unwrap();
        batches.push(later);
        drop(storage);
        assert_eq!(log_base(tmp.path()).last_index, LogIndex(45));
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches));
        assert_eq!(loaded.snapshot, Some(snapshot(55, 3)));
        assert_eq!(loaded.entries.len(), 5, "entries 56..=60 stay");
    }

    #[tokio::test]
    async fn a_crash_between_the_renames_of_a_compaction_recovers() {
        // The log holds the snapshot at 45 as a record; the compaction renamed the
        // snapshot file and crashed before renaming the rewritten log.
        let tmp = TempDir::new().unwrap();
        let mut batches = fifty_then_a_snapshot();
        persist_all(tmp.path(), &batches).await;
        let record = frame::encode(&*snapshot(45, 1)).unwrap();
        replace_file(tmp.path(), SNAPSHOT, &record).unwrap();
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
        assert_eq!(log_base(tmp.path()).last_index, LogIndex(45), "finished");

        let later = vec![entries(3, 52..=52)];
        persist_all(tmp.path(), std::slice::from_ref(&later)).await;
        batches.push(later);
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
    }

    #[tokio::test]
    async fn a_snapshot_file_older_than_the_logs_own_does_not_rewind_it() {
        // Newer than the log's base (none), older than the log's snapshot record at 45.
        let tmp = TempDir::new().unwrap();
        let batches = fifty_then_a_snapshot();
        persist_all(tmp.path(), &batches).await;
        let record = frame::encode(&*snapshot(20, 1)).unwrap();
        replace_file(tmp.path(), SNAPSHOT, &record).unwrap();
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches));
        assert_eq!(loaded.snapshot, Some(snapshot(45, 1)));
    }

    #[tokio::test]
    async fn a_torn_snapshot_record_is_cut_off_with_its_batch() {
        let tmp = TempDir::new().unwrap();
        let batches = fifty_then_a_snapshot();
        let lens = persist_all(tmp.path(), &batches).await;
        edit_log(tmp.path(), |b| b.truncate((lens[9] + lens[10]) / 2));
        let loaded = reload(tmp.path()).await.unwrap();
        assert_eq!(loaded, model(&batches[..10]));
        assert_eq!(loaded.snapshot, None);
        assert_eq!(loaded.entries.len(), 50);
        assert_eq!(log_len(tmp.path()), lens[9]);
    }

    #[tokio::test]
    async fn a_crash_between_snapshot_and_log_rewrite_recovers() {
        // (snapshot index, term): within the stored log, and beyond it (as a follower
        // receives one), where replaying later writes over the old base would lose them.
        for (index, term) in [(3, 1), (10, 2)] {
            let tmp = TempDir::new().unwrap();
            let mut batches = vec![vec![hard(2, None), entries(1, 1..=5)]];
            persist_all(tmp.path(), &batches).await;
            // The snapshot's rename happened; the log's did not.
            let record = frame::encode(&*snapshot(index, term)).unwrap();
            replace_file(tmp.path(), SNAPSHOT, &record).unwrap();
            batches.push(vec![Persist::Snapshot(snapshot(index, term))]);
            assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
            assert_eq!(log_base(tmp.path()).last_index, LogIndex(index));

            let later = vec![entries(2, index + 1..=index + 1)];
            persist_all(tmp.path(), std::slice::from_ref(&later)).await;
            batches.push(later);
            let loaded = reload(tmp.path()).await.unwrap();
            assert_eq!(loaded, model(&batches), "snapshot at {index}");
            assert_eq!(loaded.entries.last().unwrap().term, Term(2));
        }
    }

    /// A batch whose record spans sectors: entries `first..` of term 1, and a vote.
    fn large_batch(first: u64) -> Vec<Persist> {
        vec![
            hard(1, Some(ServerId::PRIMARY)),
            entries(1, first..=first + 80),
        ]
    }

    /// Persists a small batch, then [`large_batch`] (the one to damage); returns both,
    /// and where the second one's record starts and ends.
    async fn small_then_large(dir: &Path) -> ([Vec<Persist>; 2], usize, usize) {
        let batches = [vec![hard(1, None), entries(1, 1..=3)], large_batch(4)];
        let lens = persist_all(dir, &batches).await;
        let (start, end) = (lens[0], lens[1]);
        assert!(
            start < torn::SECTOR && end > 2 * torn::SECTOR + 100,
            "the record spans three sectors: {start}..{end}"
        );
        (batches, start, end)
    }

    #[tokio::test]
    async fn a_torn_last_record_is_cut_off() {
        type Tear = fn(&mut Vec<u8>, usize, usize);
        const SECTOR: usize = torn::SECTOR;
        let tears: [(&str, Tear); 7] = [
            ("short header", |b, start, _| b.truncate(start + 3)),
            ("half a payload", |b, start, end| {
                b.truncate((start + end) / 2)
            }),
            ("last byte missing", |b, _, end| b.truncate(end - 1)),
            ("zero-filled", |b, start, end| b[start..end].fill(0)),
            ("its last sector unwritten", |b, _, end| {
                b[(end - 1) / SECTOR * SECTOR..end].fill(0);
            }),
            ("all but its first sector unwritten", |b, _, end| {
                b[SECTOR..end].fill(0);
            }),
            (
                "its first sector unwritten, header included",
                |b, start, _| {
                    b[start..SECTOR].fill(0);
                },
            ),
        ];
        for (name, tear) in tears {
            let tmp = TempDir::new().unwrap();
            let ([kept, _], start, end) = small_then_large(tmp.path()).await;
            edit_log(tmp.path(), |b| tear(b, start, end));

            let kept = [kept];
            assert_eq!(reload(tmp.path()).await.unwrap(), model(&kept), "{name}");
            assert_eq!(log_len(tmp.path()), start, "{name}: file cut at the record");

            let after = vec![hard(2, None), entries(2, 4..=4)];
            persist_all(tmp.path(), std::slice::from_ref(&after)).await;
            let all = [kept[0].clone(), after];
            assert_eq!(reload(tmp.path()).await.unwrap(), model(&all), "{name}");
        }
    }

    /// Adds `delta` to the length field of the frame `record`.
    fn add_to_length(record: &mut [u8], delta: i64) {
        let field: &mut [u8; 4] = (&mut record[..4]).try_into().unwrap();
        let len = i64::from(u32::from_le_bytes(*field)) + delta;
        *field = u32::try_from(len).unwrap().to_le_bytes();
    }

    /// Whether some sector chunk of `record`, found at `start` of the log, is all zero.
    fn has_zero_sector(record: &[u8], start: usize) -> bool {
        torn::sector_chunks(start..start + record.len()).any(|chunk| {
            record[chunk.start - start..chunk.end - start]
                .iter()
                .all(|&b| b == 0)
        })
    }

    #[tokio::test]
    async fn a_complete_last_record_whose_checksum_fails_is_corruption() {
        type Harm = fn(&mut [u8]);
        let damages: [(&str, Harm); 4] = [
            ("payload byte", |record| {
                let middle = record.len() / 2;
                record[middle] = if record[middle] == 0x5a { 0xa5 } else { 0x5a };
            }),
            ("checksum field", |record| record[5] ^= 0x10),
            ("length field, longer", |record| add_to_length(record, 300)),
            ("length field, shorter", |record| add_to_length(record, -1)),
        ];
        for (name, damage) in damages {
            let tmp = TempDir::new().unwrap();
            let (_, start, end) = small_then_large(tmp.path()).await;
            let record = fs::read(tmp.path().join(LOG)).unwrap()[start..end].to_vec();
            assert!(
                !has_zero_sector(&record, start),
                "no sector of the record reads zero as written"
            );
            edit_log(tmp.path(), |b| damage(&mut b[start..end]));
            let found = fs::read(tmp.path().join(LOG)).unwrap();

            let error = reload(tmp.path()).await.unwrap_err();
            let StorageError::Corrupt { path, offset, .. } = &error else {
                panic!("{name}: {error}");
            };
            assert_eq!(path, &tmp.path().join(LOG), "{name}");
            assert_eq!(*offset, start as u64, "{name}");
            let message = error.to_string();
            assert!(message.contains(&format!("at byte {start}")), "{message}");
            assert!(message.contains("not a torn write"), "{name}: {message}");
            assert!(message.contains("--join-empty"), "{message}");
            let left = fs::read(tmp.path().join(LOG)).unwrap();
            assert!(left == found, "{name}: left as found");
        }
    }

    #[tokio::test]
    async fn the_zeros_written_ahead_of_the_records_reload_as_the_end_of_the_log() {
        let tmp = TempDir::new().unwrap();
        let mut batches = vec![
            vec![hard(1, None), entries(1, 1..=3)],
            vec![entries(1, 4..=5)],
        ];
        let lens = persist_all(tmp.path(), &batches).await;
        let ahead = usize::try_from(LOG_PREALLOCATE).unwrap();
        // The first record ran past the end of the new log and wrote the zeros after it;
        // the second went into them.
        assert_eq!(file_len(tmp.path()), lens[0] + ahead);
        let bytes = fs::read(tmp.path().join(LOG)).unwrap();
        assert!(bytes[lens[1]..].iter().all(|&b| b == 0));

        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
        assert_eq!(file_len(tmp.path()), lens[0] + ahead, "the zeros are kept");
        let later = vec![hard(2, None), entries(2, 6..=6)];
        let after = persist_all(tmp.path(), std::slice::from_ref(&later)).await;
        batches.push(later);
        assert!(after[0] > lens[1], "written where the records ended");
        assert_eq!(file_len(tmp.path()), lens[0] + ahead);
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
    }

    #[tokio::test]
    async fn records_that_run_past_the_zeros_write_more() {
        let tmp = TempDir::new().unwrap();
        let mut storage = opened(tmp.path()).await;
        storage.set_log_preallocate(100);
        let batches: Vec<_> = (0..20)
            .map(|i| vec![entries(1, i * 2 + 1..=i * 2 + 2)])
            .collect();
        let mut extended = 0;
        for batch in &batches {
            let before = file_len(tmp.path());
            storage.persist(batch.clone()).await.unwrap();
            let (records, file) = (log_len(tmp.path()), file_len(tmp.path()));
            if file > before {
                extended += 1;
                assert_eq!(file, records + 100, "zeros from the end of the record");
            }
            assert!(records <= file);
        }
        assert!(extended > 1 && extended < batches.len(), "{extended}");
        drop(storage);
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));
    }

    #[tokio::test]
    async fn damage_before_an_intact_record_is_corruption_at_its_offset() {
        type Harm = fn(&mut [u8]);
        let damages: [(&str, Harm); 2] = [
            ("payload byte", |record| record[frame::HEADER_LEN + 2] ^= 1),
            ("length field", |record| record[..4].fill(0xee)),
        ];
        for (name, damage) in damages {
            let tmp = TempDir::new().unwrap();
            let batches = [
                vec![entries(1, 1..=2)],
                vec![entries(1, 3..=4)],
                vec![entries(1, 5..=6)],
            ];
            let lens = persist_all(tmp.path(), &batches).await;
            let (start, end) = (lens[0], lens[1]);
            edit_log(tmp.path(), |b| damage(&mut b[start..end]));
            let found = fs::read(tmp.path().join(LOG)).unwrap();

            let error = reload(tmp.path()).await.unwrap_err();
            let StorageError::Corrupt { path, offset, .. } = &error else {
                panic!("{name}: {error}");
            };
            assert_eq!(path, &tmp.path().join(LOG), "{name}");
            assert_eq!(*offset, start as u64, "{name}");
            assert!(error.to_string().contains(&format!("at byte {start}")));
            let left = fs::read(tmp.path().join(LOG)).unwrap();
            assert!(left == found, "{name}: left as found");
        }
    }

    /// The writes of the format-1 fixture (`tests/fixtures/format1-compacted`): a
    /// compaction, then more.
    fn fixture_batches() -> Vec<Vec<Persist>> {
        vec![
            vec![hard(1, None), entries(1, 1..=4)],
            vec![Persist::Snapshot(snapshot(3, 1))],
            vec![hard(2, Some(ServerId::PRIMARY)), entries(2, 5..=6)],
        ]
    }

    /// Copies the fixture `name` (`tests/fixtures/NAME`, written by an earlier version)
    /// into a fresh directory.
    fn fixture(name: &str) -> TempDir {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let tmp = TempDir::new().unwrap();
        for file in [LOG, SNAPSHOT] {
            fs::copy(from.join(file), tmp.path().join(file)).unwrap();
        }
        tmp
    }

    #[tokio::test]
    async fn a_format_1_directory_loads_and_is_upgraded_to_format_2() {
        let tmp = fixture("format1-compacted");
        let old_log = fs::read(tmp.path().join(LOG)).unwrap();
        assert_eq!(
            read_header(Path::new("log"), &old_log, LOG_MAGIC).unwrap(),
            (1, 0)
        );
        let batches = fixture_batches();
        let mut storage = FileStorage::open(tmp.path(), IfBlank::Refuse).unwrap();
        assert_eq!(storage.load().await.unwrap(), model(&batches));
        // Both files are in format 2 now, and hold the same.
        for (file, magic) in [(LOG, LOG_MAGIC), (SNAPSHOT, SNAPSHOT_MAGIC)] {
            let bytes = fs::read(tmp.path().join(file)).unwrap();
            assert_eq!(bytes[..8], magic[..], "{file}");
            assert_eq!(
                read_header(Path::new(file), &bytes, magic).unwrap(),
                (2, HEADER_LEN)
            );
        }
        // It goes on from there, and loads again the same.
        let more = vec![entries(2, 7..=7)];
        storage.persist(more.clone()).await.unwrap();
        drop(storage);
        let mut all = batches;
        all.push(more);
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&all));
    }

    #[tokio::test]
    async fn a_newer_format_is_refused_by_name_and_left_as_found() {
        let tmp = TempDir::new().unwrap();
        persist_all(tmp.path(), &[vec![hard(1, None), entries(1, 1..=2)]]).await;
        edit_log(tmp.path(), |bytes| bytes[8] = 3);
        let found = fs::read(tmp.path().join(LOG)).unwrap();
        let error = reload(tmp.path()).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::NewerFormat { format: 3, .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains(
                "storage format 3, written by a newer hal-net; this build reads formats 1 to 2"
            ),
            "{error}"
        );
        assert!(
            fs::read(tmp.path().join(LOG)).unwrap() == found,
            "left as found"
        );
        // A header cut short, or one naming no format with a header, is damage.
        edit_log(tmp.path(), |bytes| {
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes())
        });
        let error = reload(tmp.path()).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { offset: 8, .. }),
            "{error}"
        );
        edit_log(tmp.path(), |bytes| bytes.truncate(10));
        let error = reload(tmp.path()).await.unwrap_err();
        assert!(
            error.to_string().contains("its header is cut short"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_damaged_snapshot_file_is_corruption() {
        let tmp = TempDir::new().unwrap();
        let batches = [vec![entries(1, 1..=4), Persist::Snapshot(snapshot(3, 1))]];
        persist_compacting(tmp.path(), &batches).await;
        assert_eq!(reload(tmp.path()).await.unwrap(), model(&batches));

        let path = tmp.path().join(SNAPSHOT);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = reload(tmp.path()).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path: p, offset, .. } if *p == path && *offset == HEADER_LEN as u64),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_log_newer_than_the_snapshot_file_is_corruption() {
        let tmp = TempDir::new().unwrap();
        let batches = [vec![entries(1, 1..=4), Persist::Snapshot(snapshot(3, 1))]];
        persist_compacting(tmp.path(), &batches).await;
        assert_eq!(log_base(tmp.path()).last_index, LogIndex(3));
        let older = frame::encode(&*snapshot(2, 1)).unwrap();
        replace_file(tmp.path(), SNAPSHOT, &older).unwrap();
        let error = reload(tmp.path()).await.unwrap_err();
        // The log's base record, after the log's header.
        assert!(
            matches!(&error, StorageError::Corrupt { offset, .. } if *offset == HEADER_LEN as u64),
            "{error}"
        );
        assert!(error.to_string().contains("snapshot file is at index 2"));

        fs::remove_file(tmp.path().join(SNAPSHOT)).unwrap();
        let error = reload(tmp.path()).await.unwrap_err();
        assert!(error.to_string().contains("no snapshot file"), "{error}");
    }

    #[tokio::test]
    async fn a_blank_directory_is_refused_unless_joining_empty() {
        use std::os::unix::fs::PermissionsExt;

        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("data");
        let error = FileStorage::open(&dir, IfBlank::Refuse).unwrap_err();
        assert!(
            matches!(&error, StorageError::Blank { path, missing: true } if *path == dir),
            "{error}"
        );
        assert!(error.to_string().contains("is missing"), "{error}");
        assert!(!dir.exists(), "not created");

        // Empty, or with only what a first start that crashed before its log leaves.
        fs::create_dir(&dir).unwrap();
        let leftovers = [None, Some(LOCK), Some("log.tmp")];
        for (written, leftover) in leftovers.into_iter().enumerate() {
            if let Some(name) = leftover {
                fs::write(dir.join(name), b"").unwrap();
            }
            let error = FileStorage::open(&dir, IfBlank::Refuse).unwrap_err();
            assert!(
                matches!(&error, StorageError::Blank { missing: false, .. }),
                "{leftover:?}: {error}"
            );
            assert!(error.to_string().contains("is empty"), "{error}");
            let names = fs::read_dir(&dir).unwrap().count();
            assert_eq!(names, written, "left as found");
        }
        fs::remove_dir_all(&dir).unwrap();

        let batches = [vec![hard(1, None), entries(1, 1..=2)]];
        persist_all(&dir, &batches).await;
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "created for the server alone");
        assert_eq!(reload(&dir).await.unwrap(), model(&batches));
        // Joining empty only permits emptiness: a directory with data loads its data.
        let mut storage = FileStorage::open(&dir, IfBlank::JoinEmpty).unwrap();
        assert_eq!(storage.load().await.unwrap(), model(&batches));
        drop(storage);
        // A snapshot alone is no blank directory (and the missing log is corruption).
        fs::rename(dir.join(LOG), dir.join(SNAPSHOT)).unwrap();
        let error = reload(&dir).await.unwrap_err();
        assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_second_open_of_the_directory_is_refused() {
        let tmp = TempDir::new().unwrap();
        let first = FileStorage::open(tmp.path(), IfBlank::JoinEmpty).unwrap();
        let error = FileStorage::open(tmp.path(), IfBlank::JoinEmpty).unwrap_err();
        assert!(
            matches!(&error, StorageError::Locked { path } if path == tmp.path()),
            "{error}"
        );
        drop(first);
        assert!(
            FileStorage::open(tmp.path(), IfBlank::JoinEmpty).is_ok(),
            "the lock goes with it"
        );
    }

    /// Property tests of recovery over log bytes built as [`FileStorage`] writes them,
    /// scanned and replayed without files.
    mod props {
        use std::ops::Range;

        use proptest::prelude::*;

        use super::*;

        /// One to four batches: each entries of users with names of any length, so
        /// records start and end anywhere in a sector and some span several, and a vote
        /// for its own term before or after them (after, the record ends in a zero byte:
        /// `voted_for: None`).
        fn batches() -> impl Strategy<Value = Vec<Vec<Persist>>> {
            let users = prop::collection::vec("[a-z]{0,40}", 1..40);
            prop::collection::vec((users, any::<bool>()), 1..5).prop_map(|batches| {
                let mut next = 1;
                let mut out = Vec::new();
                for (n, (users, vote_last)) in (1u64..).zip(batches) {
                    let first = LogIndex(next);
                    let entries = users
                        .into_iter()
                        .map(|user| {
                            let mut command = grant(next);
                            if let Command::Grant { user: u, .. } = &mut command {
                                *u = user.into();
                            }
                            next += 1;
                            Arc::new(Entry {
                                term: Term(n),
                                command,
                            })
                        })
                        .collect();
                    let mut batch = vec![hard(n, None), Persist::Entries { first, entries }];
                    if vote_last {
                        batch.reverse();
                    }
                    out.push(batch);
                }
                out
            })
        }

        /// The log's bytes: its base, one record per batch, then `zeros` zeros; and
        /// where each record lies, the base first.
        fn log_of(batches: &[Vec<Persist>], zeros: usize) -> (Vec<u8>, Vec<Range<usize>>) {
            let mut bytes = frame::encode(&Record::Base(Base::NONE)).unwrap();
            let base = 0..bytes.len();
            let mut records = vec![base];
            for batch in batches {
                let start = bytes.len();
                bytes.extend(frame::encode(&Record::Writes(batch.clone())).unwrap());
                records.push(start..bytes.len());
            }
            bytes.resize(bytes.len() + zeros, 0);
            (bytes, records)
        }

        /// What recovery makes of `bytes`: the state, and where the intact records end.
        fn recover(bytes: &[u8]) -> Result<(Durable, usize), StorageError> {
            let path = Path::new("log");
            // Without a header: where the records start makes no difference to them.
            let scan = scan(path, (bytes, 0), Plants::NONE)?;
            let (durable, _) = replay(path, (scan.records, 0), None)?;
            Ok((durable, scan.intact_len))
        }

        proptest! {
            #[test]
            fn a_torn_last_record_loses_nothing_before_it(
                batches in batches(),
                zeros in prop_oneof![Just(0usize), 1..3000usize],
                cut in any::<prop::sample::Index>(),
                by_zeros in any::<bool>(),
            ) {
                let (mut bytes, records) = log_of(&batches, zeros);
                let last = records.last().unwrap().clone();
                let original = bytes.clone();
                // A cut strictly inside the record.
                let at = last.start + 1 + cut.index(last.len() - 1);
                if by_zeros {
                    // Its sectors from a boundary on unwritten (all of it, if it starts
                    // after the boundary below `at`).
                    let from = (at / torn::SECTOR * torn::SECTOR).max(last.start);
                    bytes[from..last.end].fill(0);
                } else {
                    bytes.truncate(at);
                }
                let (durable, intact_len) = recover(&bytes).unwrap();
                if bytes == original {
                    // The zeroed bytes were zeros already: nothing was torn.
                    prop_assert_eq!(durable, model(&batches));
                } else {
                    prop_assert_eq!(intact_len, last.start);
                    prop_assert_eq!(durable, model(&batches[..batches.len() - 1]));
                }
            }

            #[test]
            fn a_flipped_byte_is_corruption_at_its_record_or_loses_nothing_before_it(
                batches in batches(),
                zeros in prop_oneof![Just(0usize), 1..3000usize],
                which in any::<prop::sample::Index>(),
                at in any::<prop::sample::Index>(),
                in_header in any::<bool>(),
                value in any::<u8>(),
            ) {
                let (mut bytes, records) = log_of(&batches, zeros);
                let hit = which.index(records.len());
                let record = records[hit].clone();
                // Half the time in the header: eight bytes of hundreds, each its own case.
                let span = if in_header { frame::HEADER_LEN } else { record.len() };
                let at = record.start + at.index(span);
                prop_assume!(bytes[at] != value);
                bytes[at] = value;
                match recover(&bytes) {
                    Err(StorageError::Corrupt { offset, .. }) => {
                        prop_assert_eq!(offset, record.start as u64);
                    }
                    Err(error) => prop_assert!(false, "{}", error),
                    Ok((durable, intact_len)) => {
                        // Taken for a torn write: only the last record can be, and only
                        // with a sector of it reading all zero, a torn write's shape
                        // (its own zero bytes, or this byte zeroed next to them). What
                        // the rule cannot tell apart; nothing before it is lost.
                        prop_assert_eq!(hit, records.len() - 1, "not the last record");
                        prop_assert!(has_zero_sector(&bytes[record.clone()], record.start));
                        prop_assert_eq!(intact_len, record.start);
                        prop_assert_eq!(durable, model(&batches[..batches.len() - 1]));
                    }
                }
            }
        }
    }
}
