//! The file system under [`super::FileStorage`]: the handful of operations it needs on its
//! data directory ([`Fs`], [`FsFile`]), and the production implementation over `std::fs`
//! ([`OsFs`]). The simulator brings another, in memory, with a crash model (hal-sim's
//! `storage` module), so that the same recovery code runs under simulated crashes.
//!
//! It does not decide what is written where, or when to sync: that is FileStorage's
//! business. An `Fs` decides only where the work runs ([`Fs::run`]: off the async runtime
//! for blocking IO) and how long its syncs take.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::Path;

/// Something worth counting that [`super::FileStorage`] did on its own (not asked for by a
/// `persist`): what a crash left behind being repaired, and compactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageEvent {
    /// `load` read the data directory (and made it durable, if it was blank).
    Loaded,
    /// `load` cut a torn record off the end of the log.
    TornTailTruncated,
    /// The log was compacted to its newest snapshot (both renames done).
    Compacted,
    /// `load` found a compaction a crash interrupted between its renames, and finished it.
    CompactionFinished,
    /// `load` found the directory in an older format and wrote it again in this build's.
    Upgraded,
}

/// The operations [`super::FileStorage`] makes on its data directory. Paths are those of
/// the directory and the files in it.
pub trait Fs: Clone + Send + Sync + 'static {
    /// A file open for writing.
    type File: FsFile;
    /// The lock on a data directory, held until dropped.
    type Lock: Send + 'static;

    /// Runs `work` (which does this file system's IO) and returns its result once its
    /// syncs are done: on a thread where blocking is allowed, or here.
    fn run<T, W>(&self, work: W) -> impl Future<Output = io::Result<T>> + Send
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static;

    /// Runs `work` on the calling thread, holding it for the IO, and returns its result
    /// once its syncs are done.
    fn run_here<T, W>(&self, work: W) -> impl Future<Output = T> + Send
    where
        T: Send,
        W: FnOnce() -> T + Send;

    /// Whether `path` exists (`Ok(false)` for "not found" only).
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Creates the directory `dir` and its parents, for the owner alone (mode 0700).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Creates the file `path` if need be and locks it exclusively; `None` if another
    /// holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Self::Lock>>;

    /// The whole content of `path` (`NotFound` if there is none).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Creates `path` empty (truncating one that exists), open for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens the existing file `path` for writing at offsets.
    fn open_write(&self, path: &Path) -> io::Result<Self::File>;

    /// Renames `from` over `to`; durable once the directory is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the names in `dir` (files created, renamed) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Hears of `event`. A file system that counts them does (the simulator's); by
    /// default, nothing.
    fn observe(&self, event: StorageEvent) {
        let _ = event;
    }
}

/// A file open for writing.
pub trait FsFile: Send + 'static {
    /// Writes all of `bytes` at `offset`.
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The operating system's file system: `std::fs`, blocking work on tokio's blocking
/// threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFs;

impl Fs for OsFs {
    type File = File;
    type Lock = File;

    async fn run<T, W>(&self, work: W) -> io::Result<T>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => Ok(result),
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => Err(io::Error::other(error)),
            },
        }
    }

    async fn run_here<T, W>(&self, work: W) -> T
    where
        T: Send,
        W: FnOnce() -> T + Send,
    {
        work()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<File>> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(lock)),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    fn open_write(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl FsFile for File {
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, bytes, offset)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }
}
