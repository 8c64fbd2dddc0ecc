//! Where a server keeps what hal-core asked it to make durable ([`Persist`] writes): the
//! [`Storage`] trait the node driver uses, and its production implementation on disk
//! ([`FileStorage`]), over a file system ([`Fs`]: the operating system's, [`OsFs`], or the
//! simulator's, which loses unsynced writes on a crash as DESIGN §6.2 says).
//!
//! The contract: when [`Storage::persist`] returns `Ok`, every write of the batch is
//! durable (synced), in order; a crash afterwards loses none of it. A crash *during* a
//! batch may keep any prefix of it. [`Storage::load`] returns what was durable, as a
//! [`Durable`] that hal-core restarts from.

mod file;

/// The format of the data directory's log and snapshot this build writes. 1 is the
/// layout before formats were numbered (hal-net 0.1.0); 2 begins each file with a header
/// that names its format. This build reads both, and upgrades a format-1 directory when it
/// opens it.
pub const FORMAT: u32 = 2;
mod frame;
mod fs;
mod torn;

use std::future::Future;
use std::path::PathBuf;

use hal_core::server::{Durable, Persist};

pub use file::{
    FileConfig, FileStorage, IfBlank, LOG_PREALLOCATE, LOG_REWRITE_GROWTH, LOG_REWRITE_MIN,
};
pub use fs::{Fs, FsFile, OsFs, StorageEvent};

/// A server's durable storage.
pub trait Storage: Send + 'static {
    /// Reads back everything stored, repairing a torn tail (a batch cut short by a
    /// crash). Called once, before the first `persist`.
    fn load(&mut self) -> impl Future<Output = Result<Durable, StorageError>> + Send;

    /// Writes `batch` in order and syncs it. Group commit is the caller's business: it
    /// passes everything that accumulated while the previous call was running.
    fn persist(
        &mut self,
        batch: Vec<Persist>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// [`Storage::persist`], on the calling thread if the storage can: the thread is held
    /// for the sync, which saves handing the batch to another thread and back. For a
    /// caller with nothing more urgent meanwhile (a follower: its answer waits for the
    /// sync anyway). By default the same as `persist`.
    fn persist_here(
        &mut self,
        batch: Vec<Persist>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        self.persist(batch)
    }
}

/// Why storage failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system error while doing `action` on `path`.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file is damaged in a way no crash explains (see `torn.rs` for the log's rule):
    /// starting would silently drop seats. The message says what the operator may do,
    /// and when it is safe.
    #[error(
        "{path} is damaged at byte {offset} ({detail}); refusing to start. Do not delete it while another server is down. Either restore the data directory from a backup, or, if the other two servers are up and `hal-net status` shows both with log lag 0, move the data directory aside and start this server with --join-empty: it then receives the state from them. Never do this on two servers at once."
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// The data directory is missing, or holds neither a log nor a snapshot, and
    /// [`IfBlank::Refuse`] was asked for: starting would make a blank member.
    #[error(
        "data directory {path} is {}: starting would make this server a blank member with no seats and term 0",
        if *missing { "missing" } else { "empty (no log, no snapshot)" }
    )]
    Blank { path: PathBuf, missing: bool },
    /// Another process holds the data directory.
    #[error("{path}: the data directory is in use by another process (lock held)")]
    Locked { path: PathBuf },
    /// A record is over the size limit that reading enforces, so it could never be read
    /// back; nothing was written.
    #[error("{path}: a record of {bytes} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        path: PathBuf,
        bytes: usize,
        limit: usize,
    },
    /// A file of a newer format than this build reads: a newer HAL wrote it.
    #[error(
        "{path} is in storage format {format}, written by a newer hal-net; this build reads formats 1 to {}. Run the newer version, or, to go back to this one, move the data directory aside and start this server with --join-empty once the other two servers are up (it then receives the state from them)",
        FORMAT
    )]
    NewerFormat { path: PathBuf, format: u32 },
    /// An earlier write failed part-way, so what is on disk is uncertain and appending
    /// could bury a torn record in the middle of the log. Loading again repairs it.
    #[error("{path}: an earlier write failed; restart the server to recover from disk")]
    Failed { path: PathBuf },
}
