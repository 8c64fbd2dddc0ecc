//! The journal's files: a writer thread that appends JSON lines to
//! `<dir>/journal-<n>.jsonl`, starts a new file (headed by the meta record) when the
//! current one reaches its size, and removes the oldest files beyond the total size and
//! the age kept.
//!
//! The node never waits for it: entries go through a bounded queue, and one that finds
//! the queue full is dropped and counted. Lines reach the operating system within a
//! second (a crash of the process loses nothing written before that); a file is synced
//! when it is closed. A disk error closes the file, counts what is lost, is logged (at
//! most once a minute), and the next entry tries a new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hal_core::record::{Dropped, Entry, Meta, Record};

use super::Sink;

/// How many entries may wait for the writer.
pub const QUEUE_MAX: usize = 16 * 1024;
/// How often buffered lines are handed to the operating system, at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often a disk error is logged, at most.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// The journal's bounds (config `[journal]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// A file is closed and a new one started once it holds this many bytes.
    pub file_bytes: u64,
    /// The oldest files are removed while all of them hold more than this.
    pub keep_bytes: u64,
    /// Files last written longer ago than this are removed.
    pub keep_age: Duration,
}

impl Default for JournalLimits {
    fn default() -> JournalLimits {
        JournalLimits {
            file_bytes: 64 << 20,
            keep_bytes: 1 << 30,
            keep_age: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// What the writer has done, for status and metrics.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Entries written.
    pub written: AtomicU64,
    /// Entries dropped: the queue was full, or the disk failed.
    pub dropped: AtomicU64,
    /// Disk errors.
    pub errors: AtomicU64,
}

/// A journal's writer thread and its queue.
#[derive(Debug)]
pub struct FileJournal {
    queue: Option<SyncSender<Option<Entry>>>,
    stats: Arc<JournalStats>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

/// The queue's sending side, as a [`Sink`].
struct QueueSink {
    queue: SyncSender<Option<Entry>>,
    stats: Arc<JournalStats>,
}

impl Sink for QueueSink {
    fn write(&self, entry: Entry) {
        match self.queue.try_send(Some(entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl FileJournal {
    /// Starts a journal in `dir` (made if absent), each file headed by `meta` (its `t_ms`
    /// set to when the file starts).
    pub fn open(dir: &Path, meta: Meta, limits: JournalLimits) -> io::Result<FileJournal> {
        fs::create_dir_all(dir)?;
        let stats = Arc::new(JournalStats::default());
        let (queue, entries) = mpsc::sync_channel(QUEUE_MAX);
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            meta,
            limits,
            stats: stats.clone(),
            file: None,
            next_number: next_number(dir)?,
            reported_dropped: 0,
            last_error_log: None,
        };
        let thread = std::thread::Builder::new()
            .name("hal-journal".into())
            .spawn(move || writer.run(&entries))?;
        Ok(FileJournal {
            queue: Some(queue),
            stats,
            thread: Some(thread),
            dir: dir.to_path_buf(),
        })
    }

    /// The sink a node's [`super::Journal`] writes into.
    pub fn sink(&self) -> Arc<dyn Sink> {
        match &self.queue {
            Some(queue) => Arc::new(QueueSink {
                queue: queue.clone(),
                stats: self.stats.clone(),
            }),
            // Closed: every entry is dropped (a closed queue's sender).
            None => {
                let (queue, _) = mpsc::sync_channel(0);
                Arc::new(QueueSink {
                    queue,
                    stats: self.stats.clone(),
                })
            }
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<JournalStats> {
        self.stats.clone()
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes what is queued, syncs the file and stops the thread (waiting for it: call
    /// it off the async runtime). Entries sinks write later are dropped and counted.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(queue) = self.queue.take() {
            // Waits for room: the writer keeps taking entries until it reads this.
            let _ = queue.send(None);
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the journal's writer thread panicked");
        }
    }
}

impl Drop for FileJournal {
    fn drop(&mut self) {
        self.shut();
    }
}

/// The open file.
struct Current {
    out: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
}

struct Writer {
    dir: PathBuf,
    meta: Meta,
    limits: JournalLimits,
    stats: Arc<JournalStats>,
    file: Option<Current>,
    next_number: u64,
    /// The dropped count already reported in the journal.
    reported_dropped: u64,
    last_error_log: Option<Instant>,
}

impl Writer {
    fn run(&mut self, entries: &Receiver<Option<Entry>>) {
        'run: loop {
            match entries.recv_timeout(FLUSH_EVERY) {
                Ok(Some(entry)) => self.write(&entry),
                Err(RecvTimeoutError::Timeout) => {
                    self.flush();
                    continue;
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => break,
            }
            // What came in meanwhile, without waiting; then one flush for the burst.
            loop {
                match entries.try_recv() {
                    Ok(Some(entry)) => self.write(&entry),
                    Ok(None) | Err(mpsc::TryRecvError::Disconnected) => break 'run,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            self.flush();
        }
        if let Some(current) = self.file.take() {
            let path = current.path.clone();
            if let Err(e) = finish(current) {
                self.failed(&path, &e, 0);
            }
        }
    }

    fn write(&mut self, entry: &Entry) {
        let t_ms = entry.record.t_ms().unwrap_or(0);
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_dropped {
            let server = self.meta.server.unwrap_or(0);
            let note = Entry {
                record: Record::Dropped(Dropped {
                    t_ms,
                    server,
                    records: dropped - self.reported_dropped,
                    reason: "the journal fell behind or the disk failed".into(),
                }),
                mono_ms: entry.mono_ms,
            };
            if self.write_line(&note, t_ms) {
                self.reported_dropped = dropped;
            }
        }
        if self.write_line(entry, t_ms) {
            self.stats.written.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends one line, starting a file first if there is none; whether it was written.
    fn write_line(&mut self, entry: &Entry, t_ms: u64) -> bool {
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!("journal: a record could not be written as JSON: {e}");
                return false;
            }
        };
        line.push(b'\n');
        if self.file.is_none()
            && let Err((path, e)) = self.start_file(t_ms)
        {
            self.failed(&path, &e, 1);
            return false;
        }
        let Some(current) = self.file.as_mut() else {
            return false;
        };
        if let Err(e) = current.out.write_all(&line) {
            let path = current.path.clone();
            self.file = None;
            self.failed(&path, &e, 1);
            return false;
        }
        current.bytes = current.bytes.saturating_add(line.len() as u64);
        if current.bytes >= self.limits.file_bytes
            && let Some(full) = self.file.take()
        {
            let path = full.path.clone();
            if let Err(e) = finish(full) {
                self.failed(&path, &e, 0);
            }
            self.prune();
        }
        true
    }

    /// Opens the next file and writes its meta record.
    fn start_file(&mut self, t_ms: u64) -> Result<(), (PathBuf, io::Error)> {
        let path = self
            .dir
            .join(format!("journal-{:08}.jsonl", self.next_number));
        self.next_number = self.next_number.saturating_add(1);
        let fail = |e| (path.clone(), e);
        fs::create_dir_all(&self.dir).map_err(fail)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        let mut out = BufWriter::new(file);
        let meta = Entry::from(Record::Meta(Meta {
            t_ms: Some(t_ms),
            ..self.meta.clone()
        }));
        let mut line = serde_json::to_vec(&meta).map_err(|e| fail(io::Error::other(e)))?;
        line.push(b'\n');
        out.write_all(&line).map_err(fail)?;
        self.file = Some(Current {
            out,
            path: path.clone(),
            bytes: line.len() as u64,
        });
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(current) = self.file.as_mut()
            && let Err(e) = current.out.flush()
        {
            let path = current.path.clone();
            self.file = None;
            self.failed(&path, &e, 0);
        }
    }

    /// Counts a disk error (and `lost` entries) and logs it, at most once a minute.
    fn failed(&mut self, path: &Path, error: &io::Error, lost: u64) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|last| now.duration_since(last) >= ERROR_LOG_EVERY)
        {
            self.last_error_log = Some(now);
            let errors = self.stats.errors.load(Ordering::Relaxed);
            tracing::warn!(
                path = %path.display(),
                errors,
                "journal: cannot write ({error}); records are dropped and counted, serving goes on"
            );
        }
    }

    /// Removes the oldest files beyond the total size and the age kept (never the one
    /// being written).
    fn prune(&mut self) {
        let files = match journal_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                let dir = self.dir.clone();
                self.failed(&dir, &e, 0);
                return;
            }
        };
        let current = self.file.as_ref().map(|c| c.path.clone());
        let now = SystemTime::now();
        let mut sizes: Vec<(PathBuf, u64, bool)> = files
            .into_iter()
            .filter(|(path, _)| Some(path) != current.as_ref())
            .map(|(path, meta)| {
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age > self.limits.keep_age);
                (path, meta.len(), old)
            })
            .collect();
        let mut total: u64 = sizes.iter().map(|(_, len, _)| *len).sum();
        // Oldest first (by number).
        sizes.sort();
        for (path, len, old) in sizes {
            if total <= self.limits.keep_bytes && !old {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => total = total.saturating_sub(len),
                Err(e) => self.failed(&path, &e, 0),
            }
        }
    }
}

/// Flushes and syncs a file being closed.
fn finish(current: Current) -> io::Result<()> {
    let file = current.out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// The journal files in `dir` with their metadata, by number.
pub(crate) fn journal_files(dir: &Path) -> io::Result<Vec<(PathBuf, fs::Metadata)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if file_number(&name.to_string_lossy()).is_some() {
            files.push((entry.path(), entry.metadata()?));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The number in a journal file's name (`journal-00000042.jsonl`).
pub(crate) fn file_number(name: &str) -> Option<u64> {
    name.strip_prefix("journal-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

/// The number after the highest in `dir`.
fn next_number(dir: &Path) -> io::Result<u64> {
    let highest = journal_files(dir)?
        .iter()
        .filter_map(|(path, _)| file_number(&path.file_name()?.to_string_lossy()))
        .max();
    Ok(highest.map_or(1, |n| n.saturating_add(1)))
}
