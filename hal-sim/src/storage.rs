//! A server's disk in memory ([`SimDisk`]) and the file system its process sees
//! ([`SimFs`], hal-net's [`Fs`]), so that simulated servers run hal-net's own
//! [`hal_net::storage::FileStorage`]: its torn-tail repair, replay and compaction run
//! under simulated crashes.
//!
//! The disk outlives the process: a restarted server boots on the same files. What a
//! crash keeps is DESIGN §6.2's crash model, drawn from the disk's own seeded generator:
//!
//! - Data a completed `sync_data`/`sync_all` covered, and names a completed directory
//!   sync covered, are never lost.
//! - Of each file's writes (and truncations) since its last completed sync, any prefix is
//!   kept; the first write not kept whole may be *torn*: a prefix of its bytes kept, or
//!   some of its 512-byte sectors (by file offset), the others reading as before.
//! - Of the names created and renamed since the last directory sync, any prefix is kept.
//! - Nothing issued after the sync that was running at the crash was ever issued.
//!
//! A sync takes `sync_time` of simulated time: the IO of a storage call runs at once, in
//! memory, and the call then sleeps `sync_time` per sync it made, each sync completing
//! as its sleep ends. A process dropped mid-sleep (a crash) is dropped mid-sync.
//!
//! It does not model: several directories' syncs apart (one directory sync makes every
//! name durable), data reaching the disk before its sync (it never does), directories
//! lost (they are durable when created), or a full disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use hal_core::plant::Plants;
use hal_net::storage::{FileConfig, FileStorage, Fs, FsFile, IfBlank, Storage, StorageEvent};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The data directory of every simulated server.
pub const DATA_DIR: &str = "/var/lib/hal";

/// A simulated server's log is compacted once it is this long, or as long as what the
/// last compaction left ([`LOG_REWRITE_GROWTH`]), if more: a server of the standard world
/// writes a few hundred bytes a second, so that it compacts every few seconds, and
/// aimed crashes ([`crate::aim`]) land in compactions.
pub const LOG_REWRITE_MIN_BYTES: u64 = 1 << 10;

/// See [`LOG_REWRITE_MIN_BYTES`].
pub const LOG_REWRITE_GROWTH: u64 = 1;

/// How far ahead of its records a disk's log may be written with zeros, one of these
/// drawn per disk: none (every record runs past the end of the file, which a crash may
/// cut at any byte), a few dozen bytes (records, most of them a few dozen bytes of vote
/// and term, run past the zeros every other append), or production's sort of margin
/// (records are written over zeros, of which a crash keeps whole sectors).
pub const LOG_PREALLOCATE_BYTES: [u64; 3] = [0, 32, 64 << 10];

/// The unit a disk writes whole: a torn write keeps some of its sectors.
const SECTOR_BYTES: u64 = 512;

/// What a disk has seen, for tests and sweeps to show that recovery ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DiskCounts {
    /// Processes started on the disk.
    pub boots: u64,
    /// Syncs completed (files' and the directory's).
    pub syncs: u64,
    /// Boots after a crash that left unsynced writes or names.
    pub crashes_unsynced: u64,
    /// Writes a crash tore (kept in part).
    pub writes_torn: u64,
    /// Writes and truncations a crash lost.
    pub writes_lost: u64,
    /// Renames and creations a crash lost.
    pub names_lost: u64,
    /// Loads that completed.
    pub loads: u64,
    /// Torn log tails that a load cut off.
    pub torn_tails_truncated: u64,
    /// Compactions that completed.
    pub compactions: u64,
    /// Compactions a crash interrupted between the renames, finished by a load.
    pub compactions_finished: u64,
}

impl DiskCounts {
    /// The sum of `self` and `other`, field by field.
    pub fn plus(self, other: DiskCounts) -> DiskCounts {
        DiskCounts {
            boots: self.boots + other.boots,
            syncs: self.syncs + other.syncs,
            crashes_unsynced: self.crashes_unsynced + other.crashes_unsynced,
            writes_torn: self.writes_torn + other.writes_torn,
            writes_lost: self.writes_lost + other.writes_lost,
            names_lost: self.names_lost + other.names_lost,
            loads: self.loads + other.loads,
            torn_tails_truncated: self.torn_tails_truncated + other.torn_tails_truncated,
            compactions: self.compactions + other.compactions,
            compactions_finished: self.compactions_finished + other.compactions_finished,
        }
    }
}

type Ino = u64;

/// Names and files: what the process sees, or what survives a crash.
#[derive(Debug, Clone, Default)]
struct Tree {
    dirs: BTreeSet<PathBuf>,
    names: BTreeMap<PathBuf, Ino>,
    files: BTreeMap<Ino, Vec<u8>>,
}

impl Tree {
    fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) {
        let file = self.files.entry(ino).or_default();
        let (start, end) = (offset as usize, offset as usize + bytes.len());
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(bytes);
    }

    fn set_len(&mut self, ino: Ino, len: u64) {
        self.files.entry(ino).or_default().resize(len as usize, 0);
    }

    fn name(&mut self, op: &NameOp) {
        match op {
            NameOp::Create { path, ino } => {
                self.names.insert(path.clone(), *ino);
                self.files.entry(*ino).or_default();
            }
            NameOp::Rename { from, to } => {
                if let Some(ino) = self.names.remove(from) {
                    self.names.insert(to.clone(), ino);
                }
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write { ino, offset, bytes } => self.write(*ino, *offset, bytes),
            Op::SetLen { ino, len } => self.set_len(*ino, *len),
            Op::Name(op) => self.name(op),
            Op::Sync { .. } => {}
        }
    }

    /// Drops the files no name reaches and none of `kept` is.
    fn collect(&mut self, kept: &BTreeSet<Ino>) {
        let named: BTreeSet<Ino> = self.names.values().copied().collect();
        self.files
            .retain(|ino, _| named.contains(ino) || kept.contains(ino));
    }
}

#[derive(Debug, Clone)]
enum NameOp {
    Create { path: PathBuf, ino: Ino },
    Rename { from: PathBuf, to: PathBuf },
}

/// What a sync covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Synced {
    File(Ino),
    /// Every name (one directory, in practice).
    Names,
}

/// An operation not yet durable, in the order the process made them.
#[derive(Debug, Clone)]
enum Op {
    Write {
        ino: Ino,
        offset: u64,
        bytes: Vec<u8>,
    },
    SetLen {
        ino: Ino,
        len: u64,
    },
    Name(NameOp),
    /// `done`: completed but, on a disk that loses syncs, made nothing durable.
    Sync {
        what: Synced,
        done: bool,
    },
}

impl Op {
    /// The file whose data this changes.
    fn data_of(&self) -> Option<Ino> {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } => Some(*ino),
            Op::Name(_) | Op::Sync { .. } => None,
        }
    }

    fn covered_by(&self, sync: &Synced) -> bool {
        match (self, sync) {
            (Op::Name(_), Synced::Names) => true,
            (_, Synced::File(ino)) => self.data_of() == Some(*ino),
            _ => false,
        }
    }

    fn inos(&self) -> Vec<Ino> {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } => vec![*ino],
            Op::Name(NameOp::Create { ino, .. }) => vec![*ino],
            Op::Sync {
                what: Synced::File(ino),
                ..
            } => vec![*ino],
            _ => Vec::new(),
        }
    }
}

/// The disk itself.
#[derive(Debug)]
struct Disk {
    sync_time: Duration,
    /// A planted bug: a sync completes and makes nothing durable.
    lose_syncs: bool,
    /// Draws what a crash keeps.
    rng: ChaCha8Rng,
    durable: Tree,
    live: Tree,
    journal: Vec<Op>,
    next_ino: Ino,
    /// Handles open on each file, by the running process.
    open: BTreeMap<Ino, usize>,
    locked: bool,
    /// The running process's boot; handles of an earlier one are dead.
    boot: u64,
    /// How far ahead its log is written with zeros (of [`LOG_PREALLOCATE_BYTES`]).
    preallocate_bytes: u64,
    counts: DiskCounts,
}

/// One server's disk, shared by the harness and every process started on it.
#[derive(Debug, Clone)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
}

impl SimDisk {
    /// A server's disk as installed, before the run: its data directory ([`DATA_DIR`])
    /// holds the empty log a server's first start writes, durable (so that a run's
    /// servers start on it at once, and a blank directory after a crash is a bug). Its
    /// syncs take `sync_time`, its crashes draw from `seed`, and its syncs make nothing
    /// durable if `lose_syncs` (a planted bug).
    pub fn new(seed: u64, sync_time: Duration, lose_syncs: bool) -> SimDisk {
        let disk = SimDisk::blank(seed, sync_time);
        disk.format();
        let mut inner = disk.lock();
        inner.lose_syncs = lose_syncs;
        inner.counts = DiskCounts::default();
        drop(inner);
        disk
    }

    /// Writes what a server's first start writes on the disk, every sync instant.
    fn format(&self) {
        let fs = SimFs {
            disk: self.clone(),
            boot: self.lock().boot,
            instant: true,
        };
        let dir = Path::new(DATA_DIR);
        let config = self.file_config(Plants::NONE);
        let formatted = FileStorage::open_in(fs, dir, IfBlank::JoinEmpty, config)
            .map(|mut storage| storage.load().now_or_never());
        assert!(
            matches!(formatted, Ok(Some(Ok(_)))),
            "formatting a simulated disk: {formatted:?}"
        );
    }

    /// An empty disk, its directory not even made.
    fn blank(seed: u64, sync_time: Duration) -> SimDisk {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let preallocate_bytes = LOG_PREALLOCATE_BYTES[rng.random_range(0..3)];
        let disk = Disk {
            sync_time,
            lose_syncs: false,
            rng,
            preallocate_bytes,
            durable: Tree::default(),
            live: Tree::default(),
            journal: Vec::new(),
            next_ino: 1,
            open: BTreeMap::new(),
            locked: false,
            boot: 0,
            counts: DiskCounts::default(),
        };
        SimDisk {
            disk: Arc::new(Mutex::new(disk)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a process on the disk: first, the previous process is taken to have
    /// crashed (a power cut), and what it had not synced is kept as the crash model
    /// draws. Returns the file system the new process sees.
    pub fn boot(&self) -> SimFs {
        let mut disk = self.lock();
        disk.crash();
        disk.boot += 1;
        disk.counts.boots += 1;
        SimFs {
            disk: self.clone(),
            boot: disk.boot,
            instant: false,
        }
    }

    /// The storage config of a server on this disk with `plants` planted.
    pub fn file_config(&self, plants: Plants) -> FileConfig {
        FileConfig {
            log_rewrite_min_bytes: LOG_REWRITE_MIN_BYTES,
            log_rewrite_growth: LOG_REWRITE_GROWTH,
            log_preallocate_bytes: self.lock().preallocate_bytes,
            plants,
        }
    }

    /// How many syncs the running process has queued and not completed.
    pub fn syncs_queued(&self) -> usize {
        self.lock().syncs_queued_here()
    }

    /// Whether the running process has created or renamed a file that a directory sync
    /// has not yet made durable (a compaction is under way, in practice).
    pub fn names_unsynced(&self) -> bool {
        self.lock()
            .journal
            .iter()
            .any(|op| matches!(op, Op::Name(_)))
    }

    /// How long a sync takes.
    pub fn sync_time(&self) -> Duration {
        self.lock().sync_time
    }

    /// What the disk has seen so far.
    pub fn counts(&self) -> DiskCounts {
        self.lock().counts
    }

    /// The durable content of `path` (what a crash now would certainly keep of it, and
    /// possibly more), for tests.
    pub fn durable_file(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.lock();
        let ino = disk.durable.names.get(path)?;
        disk.durable.files.get(ino).cloned()
    }
}

impl Disk {
    fn new_ino(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    fn check_boot(&self, boot: u64) -> io::Result<()> {
        if boot == self.boot {
            Ok(())
        } else {
            Err(io::Error::other(
                "the process that opened this file is gone",
            ))
        }
    }

    fn push(&mut self, op: Op) {
        self.live.apply(&op);
        self.journal.push(op);
    }

    fn syncs_queued_here(&self) -> usize {
        self.journal
            .iter()
            .filter(|op| matches!(op, Op::Sync { done: false, .. }))
            .count()
    }

    fn pending_sync(&self) -> bool {
        self.journal
            .iter()
            .any(|op| matches!(op, Op::Sync { done: false, .. }))
    }

    /// The oldest running sync completes: what it covers becomes durable (unless the
    /// disk loses syncs).
    fn complete_sync(&mut self) {
        self.counts.syncs += 1;
        let Some(at) = self
            .journal
            .iter()
            .position(|op| matches!(op, Op::Sync { done: false, .. }))
        else {
            return;
        };
        if self.lose_syncs {
            if let Op::Sync { done, .. } = &mut self.journal[at] {
                *done = true;
            }
            return;
        }
        let Op::Sync { what, .. } = self.journal.remove(at) else {
            return;
        };
        let mut rest = Vec::with_capacity(self.journal.len());
        for (index, op) in std::mem::take(&mut self.journal).into_iter().enumerate() {
            if index < at && op.covered_by(&what) {
                self.durable.apply(&op);
            } else {
                rest.push(op);
            }
        }
        self.journal = rest;
        if what == Synced::Names {
            self.collect_durable();
        }
    }

    /// Drops durable files that no durable name reaches and no pending operation names.
    fn collect_durable(&mut self) {
        let pending: BTreeSet<Ino> = self.journal.iter().flat_map(Op::inos).collect();
        self.durable.collect(&pending);
    }

    /// A power cut: what was not synced is kept as the crash model draws; the process's
    /// view, handles and lock are gone.
    fn crash(&mut self) {
        let journal = std::mem::take(&mut self.journal);
        // Nothing after the sync that was running was issued.
        let issued = journal
            .iter()
            .position(|op| matches!(op, Op::Sync { done: false, .. }))
            .unwrap_or(journal.len());
        let issued = &journal[..issued];
        if issued.iter().any(|op| !matches!(op, Op::Sync { .. })) {
            self.counts.crashes_unsynced += 1;
        }
        let mut files: BTreeMap<Ino, Vec<&Op>> = BTreeMap::new();
        let mut names = Vec::new();
        for op in issued {
            match op {
                Op::Name(name) => names.push(name),
                Op::Write { ino, .. } | Op::SetLen { ino, .. } => {
                    files.entry(*ino).or_default().push(op);
                }
                Op::Sync { .. } => {}
            }
        }
        for ops in files.values() {
            self.keep_writes(ops);
        }
        self.keep_names(&names);
        self.collect_durable();
        self.live = self.durable.clone();
        self.open.clear();
        self.locked = false;
    }

    /// Keeps a prefix of one file's unsynced `ops`, the first not kept possibly torn.
    fn keep_writes(&mut self, ops: &[&Op]) {
        let kept = self.rng.random_range(0..=ops.len());
        for op in &ops[..kept] {
            self.durable.apply(op);
        }
        let Some(Op::Write { ino, offset, bytes }) = ops.get(kept).copied() else {
            self.counts.writes_lost += (ops.len() - kept) as u64;
            return;
        };
        self.counts.writes_lost += (ops.len() - kept - 1) as u64;
        match self.rng.random_range(0..3) {
            0 => self.counts.writes_lost += 1,
            1 => {
                let len = self.torn_prefix(*ino, *offset, bytes.len() as u64);
                self.durable.write(*ino, *offset, &bytes[..len as usize]);
                self.counts.writes_torn += 1;
            }
            _ => {
                for (start, end) in sectors(*offset, bytes.len() as u64) {
                    if self.rng.random_bool(0.5) {
                        let chunk = &bytes[(start - offset) as usize..(end - offset) as usize];
                        self.durable.write(*ino, start, chunk);
                    }
                }
                self.counts.writes_torn += 1;
            }
        }
    }

    /// How much of a write of `len` bytes at `offset` to `ino` a tear keeps as a prefix:
    /// any number of bytes where the file grows (its end cuts the write there), but whole
    /// sectors within the file as it was (a sector is written whole or not at all).
    fn torn_prefix(&mut self, ino: Ino, offset: u64, len: u64) -> u64 {
        let kept = self.rng.random_range(0..len.max(1));
        let file_len = self.durable.files.get(&ino).map_or(0, |f| f.len() as u64);
        let cut = offset + kept;
        if cut >= file_len {
            return kept;
        }
        (cut / SECTOR_BYTES * SECTOR_BYTES).max(offset) - offset
    }

    /// Keeps a prefix of the unsynced creations and renames.
    fn keep_names(&mut self, names: &[&NameOp]) {
        let kept = self.rng.random_range(0..=names.len());
        for op in &names[..kept] {
            self.durable.name(op);
        }
        self.counts.names_lost += (names.len() - kept) as u64;
    }

    fn observe(&mut self, event: StorageEvent) {
        let counts = &mut self.counts;
        match event {
            StorageEvent::Loaded => counts.loads += 1,
            StorageEvent::TornTailTruncated => counts.torn_tails_truncated += 1,
            StorageEvent::Compacted => counts.compactions += 1,
            StorageEvent::CompactionFinished => counts.compactions_finished += 1,
            // The simulated directories are all written by this build.
            StorageEvent::Upgraded => {}
            _ => {}
        }
    }
}

/// The 512-byte-aligned pieces (by file offset) of `len` bytes at `offset`.
fn sectors(offset: u64, len: u64) -> impl Iterator<Item = (u64, u64)> {
    let end = offset + len;
    let mut at = offset;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let next = ((at / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
        let piece = (at, next);
        at = next;
        Some(piece)
    })
}

/// The file system one process sees on its disk.
#[derive(Debug, Clone)]
pub struct SimFs {
    disk: SimDisk,
    boot: u64,
    /// Syncs complete at once (formatting the disk before the run).
    instant: bool,
}

impl SimFs {
    /// Waits out the syncs made so far, one `sync_time` each, completing each as its
    /// time ends.
    async fn settle(&self) {
        loop {
            let sync_time = {
                let mut disk = self.disk.lock();
                if disk.boot != self.boot || !disk.pending_sync() {
                    return;
                }
                if self.instant {
                    disk.complete_sync();
                    continue;
                }
                disk.sync_time
            };
            // The crash point: a process dropped here never completes this sync.
            tokio::time::sleep(sync_time).await;
            let mut disk = self.disk.lock();
            if disk.boot == self.boot {
                disk.complete_sync();
            }
        }
    }

    /// Runs `op` on the disk if this process is still the running one.
    fn with<T>(&self, op: impl FnOnce(&mut Disk) -> io::Result<T>) -> io::Result<T> {
        let mut disk = self.disk.lock();
        disk.check_boot(self.boot)?;
        op(&mut disk)
    }

    fn handle(&self, disk: &mut Disk, ino: Ino) -> SimFile {
        *disk.open.entry(ino).or_default() += 1;
        SimFile {
            fs: self.clone(),
            ino,
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl Fs for SimFs {
    type File = SimFile;
    type Lock = SimLock;

    async fn run<T, W>(&self, work: W) -> io::Result<T>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        let out = work();
        self.settle().await;
        Ok(out)
    }

    async fn run_here<T, W>(&self, work: W) -> T
    where
        T: Send,
        W: FnOnce() -> T + Send,
    {
        let out = work();
        self.settle().await;
        out
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.with(|disk| Ok(disk.live.dirs.contains(path) || disk.live.names.contains_key(path)))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.with(|disk| {
            for dir in dir.ancestors() {
                disk.live.dirs.insert(dir.to_path_buf());
                disk.durable.dirs.insert(dir.to_path_buf());
            }
            Ok(())
        })
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<SimLock>> {
        self.with(|disk| {
            if disk.locked {
                return Ok(None);
            }
            if !disk.live.names.contains_key(path) {
                let ino = disk.new_ino();
                let path = path.to_path_buf();
                disk.push(Op::Name(NameOp::Create { path, ino }));
            }
            disk.locked = true;
            Ok(Some(SimLock { fs: self.clone() }))
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.with(|disk| {
            let ino = disk.live.names.get(path).ok_or_else(|| not_found(path))?;
            Ok(disk.live.files.get(ino).cloned().unwrap_or_default())
        })
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        self.with(|disk| {
            let ino = match disk.live.names.get(path) {
                Some(&ino) => {
                    disk.push(Op::SetLen { ino, len: 0 });
                    ino
                }
                None => {
                    let ino = disk.new_ino();
                    let path = path.to_path_buf();
                    disk.push(Op::Name(NameOp::Create { path, ino }));
                    ino
                }
            };
            Ok(self.handle(disk, ino))
        })
    }

    fn open_write(&self, path: &Path) -> io::Result<SimFile> {
        self.with(|disk| {
            let ino = *disk.live.names.get(path).ok_or_else(|| not_found(path))?;
            Ok(self.handle(disk, ino))
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with(|disk| {
            if !disk.live.names.contains_key(from) {
                return Err(not_found(from));
            }
            let replaced = disk.live.names.get(to).copied();
            let (from, to) = (from.to_path_buf(), to.to_path_buf());
            disk.push(Op::Name(NameOp::Rename { from, to }));
            // A replaced file lives on while open, as on a real file system.
            if let Some(ino) = replaced
                && disk.open.get(&ino).is_none_or(|&n| n == 0)
                && !disk.live.names.values().any(|&named| named == ino)
            {
                disk.live.files.remove(&ino);
            }
            Ok(())
        })
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.with(|disk| {
            disk.journal.push(Op::Sync {
                what: Synced::Names,
                done: false,
            });
            Ok(())
        })
    }

    fn observe(&self, event: StorageEvent) {
        self.disk.lock().observe(event);
    }
}

/// A file open for writing on a [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    ino: Ino,
}

impl SimFile {
    fn sync(&mut self) -> io::Result<()> {
        let ino = self.ino;
        self.fs.with(|disk| {
            disk.journal.push(Op::Sync {
                what: Synced::File(ino),
                done: false,
            });
            Ok(())
        })
    }
}

impl FsFile for SimFile {
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let ino = self.ino;
        self.fs.with(|disk| {
            let bytes = bytes.to_vec();
            disk.push(Op::Write { ino, offset, bytes });
            Ok(())
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let ino = self.ino;
        self.fs.with(|disk| {
            disk.push(Op::SetLen { ino, len });
            Ok(())
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut disk = self.fs.disk.lock();
        if disk.boot != self.fs.boot {
            return;
        }
        let ino = self.ino;
        let left = disk.open.get_mut(&ino).map_or(0, |n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == 0 {
            disk.open.remove(&ino);
            if !disk.live.names.values().any(|&named| named == ino) {
                disk.live.files.remove(&ino);
            }
        }
    }
}

/// The lock on a [`SimFs`]'s data directory.
#[derive(Debug)]
pub struct SimLock {
    fs: SimFs,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut disk = self.fs.disk.lock();
        if disk.boot == self.fs.boot {
            disk.locked = false;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed step is a failed test

    use std::collections::BTreeSet;

    use super::*;

    const FILE: &str = "/d/f";

    /// A disk on its first boot, and the file system its process sees.
    fn booted(seed: u64) -> (SimDisk, SimFs) {
        let disk = SimDisk::blank(seed, Duration::from_millis(1));
        let fs = disk.boot();
        fs.create_dir_all(Path::new("/d")).unwrap();
        (disk, fs)
    }

    /// Completes every sync the running process has queued, as its sleeps would.
    fn settle(disk: &SimDisk) {
        let mut disk = disk.lock();
        while disk.pending_sync() {
            disk.complete_sync();
        }
    }

    /// `FILE` created, its name synced, and empty.
    fn empty_file(seed: u64) -> (SimDisk, SimFs, SimFile) {
        let (disk, fs) = booted(seed);
        let file = fs.create(Path::new(FILE)).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        settle(&disk);
        (disk, fs, file)
    }

    fn content(disk: &SimDisk) -> Vec<u8> {
        disk.durable_file(Path::new(FILE)).unwrap()
    }

    #[test]
    fn synced_data_survives_a_crash() {
        for seed in 0..20 {
            let (disk, _fs, mut file) = empty_file(seed);
            file.write_all_at(&[7; 1000], 0).unwrap();
            file.sync_data().unwrap();
            settle(&disk);
            drop(file);
            let fs = disk.boot();
            assert_eq!(
                fs.read(Path::new(FILE)).unwrap(),
                vec![7; 1000],
                "seed {seed}"
            );
        }
    }

    #[test]
    fn unsynced_writes_keep_a_prefix_the_first_lost_one_possibly_torn() {
        let mut kept = BTreeSet::new();
        for seed in 0..200 {
            let (disk, _fs, mut file) = empty_file(seed);
            // Four writes of 100 bytes, each of its own value, one after the other.
            for n in 0..4u8 {
                file.write_all_at(&[n + 1; 100], u64::from(n) * 100)
                    .unwrap();
            }
            drop(file);
            disk.boot();
            let got = content(&disk);
            // Whole writes, then a torn one: a prefix of its bytes or of its sectors
            // (all in the file's first sector here, so none), then nothing.
            let whole = got
                .chunks(100)
                .take_while(|c| c.len() == 100 && c.iter().all(|&b| b == c[0] && b != 0))
                .count();
            for (at, &b) in got.iter().enumerate() {
                let n = at / 100;
                assert_eq!(b, n as u8 + 1, "seed {seed}: byte {at} of {got:?}");
                assert!(n <= whole, "seed {seed}: nothing after the torn write");
            }
            kept.insert(got.len());
        }
        assert!(kept.contains(&0) && kept.contains(&400), "{kept:?}");
        assert!(
            kept.iter().any(|len| len % 100 != 0),
            "a torn write: {kept:?}"
        );
    }

    #[test]
    fn a_torn_write_over_the_file_keeps_whole_sectors() {
        let mut shapes = BTreeSet::new();
        for seed in 0..200 {
            let (disk, _fs, mut file) = empty_file(seed);
            file.write_all_at(&[0; 2048], 0).unwrap();
            file.sync_data().unwrap();
            settle(&disk);
            file.write_all_at(&[9; 1500], 100).unwrap();
            drop(file);
            disk.boot();
            let got = content(&disk);
            assert_eq!(got.len(), 2048, "seed {seed}");
            // Each sector (by file offset) of the write is written whole or not at all.
            let pieces: Vec<bool> = sectors(100, 1500)
                .map(|(start, end)| {
                    let piece = &got[start as usize..end as usize];
                    assert!(
                        piece.iter().all(|&b| b == 9) || piece.iter().all(|&b| b == 0),
                        "seed {seed}: sector at {start} written in part"
                    );
                    piece[0] == 9
                })
                .collect();
            shapes.insert(pieces);
        }
        // Some prefix, and some with a gap (a sector unwritten before a written one).
        assert!(
            shapes.contains(&vec![true, true, false, false]),
            "{shapes:?}"
        );
        assert!(
            shapes.iter().any(|s| s.windows(2).any(|w| !w[0] && w[1])),
            "{shapes:?}"
        );
    }

    #[test]
    fn a_rename_without_a_directory_sync_may_be_lost() {
        let mut outcomes = BTreeSet::new();
        for seed in 0..40 {
            for dir_sync in [false, true] {
                let (disk, fs) = booted(seed);
                let mut tmp = fs.create(Path::new("/d/f.tmp")).unwrap();
                tmp.write_all_at(b"new", 0).unwrap();
                tmp.sync_all().unwrap();
                fs.rename(Path::new("/d/f.tmp"), Path::new(FILE)).unwrap();
                if dir_sync {
                    fs.sync_dir(Path::new("/d")).unwrap();
                }
                settle(&disk);
                drop(tmp);
                let fs = disk.boot();
                let renamed = fs.read(Path::new(FILE)).ok();
                if dir_sync {
                    assert_eq!(renamed.as_deref(), Some(&b"new"[..]), "seed {seed}");
                }
                // Renamed, the data is the synced data: never torn.
                assert!(renamed.is_none() || renamed.as_deref() == Some(b"new"));
                outcomes.insert((dir_sync, renamed.is_some()));
            }
        }
        assert!(outcomes.contains(&(false, false)), "{outcomes:?}");
        assert!(outcomes.contains(&(false, true)), "{outcomes:?}");
    }

    #[test]
    fn nothing_after_the_running_sync_was_issued() {
        for seed in 0..40 {
            let (disk, fs, mut file) = empty_file(seed);
            file.write_all_at(b"a", 0).unwrap();
            file.sync_data().unwrap();
            file.write_all_at(b"b", 1).unwrap();
            fs.rename(Path::new(FILE), Path::new("/d/g")).unwrap();
            // The first sync is running when the process dies.
            drop(file);
            let fs = disk.boot();
            assert!(fs.read(Path::new("/d/g")).is_err(), "seed {seed}");
            let got = fs.read(Path::new(FILE)).unwrap();
            assert!(got.is_empty() || got == b"a", "seed {seed}: {got:?}");
        }
    }

    #[test]
    fn a_disk_that_loses_syncs_keeps_only_a_prefix_of_what_it_synced() {
        let mut lens = BTreeSet::new();
        for seed in 0..40 {
            let disk = SimDisk::blank(seed, Duration::from_millis(1));
            disk.lock().lose_syncs = true;
            let fs = disk.boot();
            fs.create_dir_all(Path::new("/d")).unwrap();
            let mut file = fs.create(Path::new(FILE)).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            for n in 0..4 {
                file.write_all_at(&[1; 100], n * 100).unwrap();
                file.sync_data().unwrap();
                settle(&disk);
            }
            drop(file);
            disk.boot();
            lens.insert(disk.durable_file(Path::new(FILE)).map(|f| f.len()));
        }
        assert!(lens.len() > 2, "{lens:?}");
    }

    #[test]
    fn the_dead_process_cannot_write() {
        let (disk, _fs, mut file) = empty_file(1);
        disk.boot();
        assert!(file.write_all_at(b"x", 0).is_err());
        drop(file);
        assert_eq!(content(&disk), b"");
    }

    /// FileStorage over the simulated disk, crashed at random points of its syncs.
    mod recovery {
        use std::pin::pin;
        use std::sync::Arc;

        use futures_util::FutureExt;
        use hal_core::ServerId;
        use hal_core::protocol::{ClientId, Entry, LogIndex, RequestSeq, Snapshot, Term};
        use hal_core::seats::{Command, Seats};
        use hal_core::server::{Durable, Persist};
        use hal_net::storage::{FileStorage, Storage};

        use super::*;

        fn grant(n: u64, user_len: usize) -> Command {
            Command::Grant {
                client: ClientId(n),
                seq: RequestSeq(1),
                feature: "cad".into(),
                user: "u".repeat(user_len).into(),
                host: "host".into(),
                borrow_end: None,
                by: ServerId::PRIMARY,
                at: hal_core::time::WallTime(1_800_000_000_000),
            }
        }

        /// Batches a server might write: entries of growing terms (some replacing a
        /// suffix), votes, and now and then a snapshot of the log so far.
        fn batches(rng: &mut ChaCha8Rng, count: usize) -> Vec<Vec<Persist>> {
            let (mut term, mut last) = (1u64, 0u64);
            let mut out = Vec::new();
            for _ in 0..count {
                let mut batch = Vec::new();
                if rng.random_bool(0.1) {
                    term += 1;
                    batch.push(Persist::HardState {
                        term: Term(term),
                        voted_for: Some(ServerId::SECONDARY),
                    });
                    last = last.saturating_sub(rng.random_range(0..3));
                }
                let first = last + 1;
                let entries: Vec<_> = (0..rng.random_range(1..6))
                    .map(|n| {
                        Arc::new(Entry {
                            term: Term(term),
                            command: grant(first + n, rng.random_range(0..200)),
                        })
                    })
                    .collect();
                last += entries.len() as u64;
                batch.push(Persist::Entries {
                    first: LogIndex(first),
                    entries,
                });
                if rng.random_bool(0.15) && last > 2 {
                    batch.push(Persist::Snapshot(Arc::new(Snapshot {
                        last_index: LogIndex(last - 1),
                        last_term: Term(term),
                        seats: Seats::new(),
                    })));
                }
                out.push(batch);
            }
            out
        }

        fn model(batches: &[Vec<Persist>]) -> Durable {
            let mut durable = Durable::default();
            batches.iter().flatten().for_each(|w| durable.apply(w));
            durable
        }

        fn config(disk: &SimDisk) -> FileConfig {
            FileConfig {
                log_rewrite_min_bytes: 2 << 10,
                ..disk.file_config(Plants::NONE)
            }
        }

        /// Runs `call` (a storage call) to its first wait: its IO is issued and its syncs
        /// queued. Then, with odds `odds`, the process crashes after a random number of
        /// those syncs (`None`); else the call runs to its end.
        async fn call_or_crash<T>(
            rng: &mut ChaCha8Rng,
            disk: &SimDisk,
            call: impl Future<Output = T>,
            odds: f64,
        ) -> Option<T> {
            let mut call = pin!(call);
            if let Some(done) = (&mut call).now_or_never() {
                return Some(done);
            }
            if !rng.random_bool(odds) {
                return Some(call.await);
            }
            let mut disk = disk.lock();
            for _ in 0..rng.random_range(0..=disk.syncs_queued_here()) {
                disk.complete_sync();
            }
            None
        }

        /// Boots the disk and loads it, crashing during the load now and then; the
        /// storage and what it loaded.
        async fn restart(rng: &mut ChaCha8Rng, disk: &SimDisk) -> (FileStorage<SimFs>, Durable) {
            loop {
                let fs = disk.boot();
                let dir = Path::new(DATA_DIR);
                let config = config(disk);
                let mut storage = FileStorage::open_in(fs, dir, IfBlank::Refuse, config)
                    .unwrap_or_else(|e| panic!("open: {e}"));
                if let Some(loaded) = call_or_crash(rng, disk, storage.load(), 0.2).await {
                    let loaded = loaded.unwrap_or_else(|e| panic!("load: {e}"));
                    return (storage, loaded);
                }
            }
        }

        #[tokio::test]
        async fn file_storage_recovers_what_it_acknowledged_after_random_crashes() {
            for seed in 0..12 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let disk = SimDisk::new(seed, Duration::from_millis(1), false);
                let all = batches(&mut rng, 150);
                // Batches acknowledged, then one whose persist was cut by a crash.
                let mut acked: Vec<Vec<Persist>> = Vec::new();
                let mut cut: Option<Vec<Persist>> = None;
                let (mut storage, mut loaded) = restart(&mut rng, &disk).await;
                for batch in &all {
                    let with_cut: Vec<_> = acked.iter().chain(&cut).cloned().collect();
                    assert!(
                        loaded == model(&acked) || loaded == model(&with_cut),
                        "seed {seed}: loaded neither the acked batches nor those and the cut one"
                    );
                    if loaded == model(&with_cut) {
                        acked = with_cut;
                    }
                    cut = None;
                    let persist = storage.persist(batch.clone());
                    match call_or_crash(&mut rng, &disk, persist, 0.15).await {
                        Some(done) => {
                            done.unwrap();
                            acked.push(batch.clone());
                            loaded = model(&acked);
                        }
                        None => {
                            cut = Some(batch.clone());
                            drop(storage);
                            (storage, loaded) = restart(&mut rng, &disk).await;
                        }
                    }
                }
                let counts = disk.counts();
                assert!(counts.boots > 10, "seed {seed}: {counts:?}");
            }
        }

        #[tokio::test]
        async fn the_crashes_exercise_recovery() {
            let mut total = DiskCounts::default();
            for seed in 0..12 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let disk = SimDisk::new(seed, Duration::from_millis(1), false);
                let (mut storage, _) = restart(&mut rng, &disk).await;
                for batch in batches(&mut rng, 150) {
                    let persist = storage.persist(batch);
                    if call_or_crash(&mut rng, &disk, persist, 0.15)
                        .await
                        .is_none()
                    {
                        drop(storage);
                        storage = restart(&mut rng, &disk).await.0;
                    }
                }
                total = total.plus(disk.counts());
            }
            assert!(total.torn_tails_truncated > 0, "{total:?}");
            assert!(total.compactions > 0, "{total:?}");
            assert!(total.compactions_finished > 0, "{total:?}");
            assert!(total.writes_torn > 0 && total.names_lost > 0, "{total:?}");
        }
    }
}
