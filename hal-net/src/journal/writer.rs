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
/// How long the writer lets entries gather once one has come. Meanwhile it waits on
/// nothing, so the node's sends wake no thread (a wake-up per entry cost the node more
/// than writing it), and one write to the file carries the whole batch.
const GATHER: Duration = Duration::from_millis(20);
/// The file buffer: a batch of a busy server's records in few writes.
const BUFFER_BYTES: usize = 64 << 10;
/// The line buffer kept between records (a longer record grows it for a while).
const LINE_KEEP: usize = 4 << 10;
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
            line: Vec::with_capacity(LINE_KEEP),
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
    /// The line being written (kept, so that a record costs no allocation of its own).
    line: Vec<u8>,
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
            // What comes in meanwhile, without waiting; then one flush for the batch.
            std::thread::sleep(GATHER);
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
                self.failed(&path, &e);
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
        self.line.clear();
        self.line.shrink_to(LINE_KEEP);
        if let Err(e) = serde_json::to_writer(&mut self.line, entry) {
            tracing::error!("journal: a record could not be written as JSON: {e}");
            return false;
        }
        self.line.push(b'\n');
        if self.file.is_none()
            && let Err((path, e)) = self.start_file(t_ms)
        {
            self.failed(&path, &e);
            return false;
        }
        let Some(current) = self.file.as_mut() else {
            return false;
        };
        if let Err(e) = current.out.write_all(&self.line) {
            let path = current.path.clone();
            self.file = None;
            self.failed(&path, &e);
            return false;
        }
        current.bytes = current.bytes.saturating_add(self.line.len() as u64);
        if current.bytes >= self.limits.file_bytes
            && let Some(full) = self.file.take()
        {
            let path = full.path.clone();
            if let Err(e) = finish(full) {
                self.failed(&path, &e);
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
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
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
            self.failed(&path, &e);
        }
    }

    /// Counts a disk error and logs it, at most once a minute (the entry it cost is
    /// counted by [`Writer::write`]).
    fn failed(&mut self, path: &Path, error: &io::Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
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
                self.failed(&dir, &e);
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
                Err(e) => self.failed(&path, &e),
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

#[cfg(test)]
mod tests {
    use hal_core::record::{End, FeatureMeta};

    use super::*;
    use crate::journal::read::read;

    fn meta() -> Meta {
        let features = [(
            "cad".to_string(),
            FeatureMeta {
                count: 2,
                hal: true,
            },
        )]
        .into();
        Meta {
            server: Some(2),
            ..Meta::new(&hal_core::timing::Timing::lan(), features)
        }
    }

    fn entry(t_ms: u64) -> Entry {
        Entry {
            record: Record::End(End { t_ms }),
            mono_ms: Some(t_ms),
        }
    }

    #[test]
    fn files_rotate_at_their_size_and_the_oldest_are_removed_past_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let limits = JournalLimits {
            file_bytes: 2_000,
            keep_bytes: 6_000,
            keep_age: Duration::from_secs(3600),
        };
        let journal = FileJournal::open(dir.path(), meta(), limits).unwrap();
        let sink = journal.sink();
        for t in 0..400 {
            sink.write(entry(t));
        }
        let stats = journal.stats();
        journal.close();
        assert_eq!(stats.written.load(Ordering::Relaxed), 400);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        let files = journal_files(dir.path()).unwrap();
        let total: u64 = files.iter().map(|(_, m)| m.len()).sum();
        // Each closed file is about 2 kB; the kept ones stay under the total plus the one
        // being written.
        assert!(files.len() >= 3, "{files:?}");
        assert!(total <= 6_000 + 2_200, "{total} bytes kept");
        // The oldest files went: the first kept one is not number 1.
        let first = file_number(&files[0].0.file_name().unwrap().to_string_lossy()).unwrap();
        assert!(first > 1, "{files:?}");
        // What is kept reads back: every file starts with the meta record, and the
        // entries are the newest, in order, ending with the last one written.
        let journals = read(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(journals.len(), 1);
        let times: Vec<u64> = journals[0]
            .entries
            .iter()
            .map(|l| l.entry.record.t_ms().unwrap())
            .collect();
        assert_eq!(times.last(), Some(&399));
        assert!(times.windows(2).all(|w| w[0] + 1 == w[1]), "{times:?}");
        // A restarted writer goes on numbering after the highest file.
        let journal = FileJournal::open(dir.path(), meta(), limits).unwrap();
        journal.sink().write(entry(1_000));
        journal.close();
        let last = journal_files(dir.path()).unwrap().pop().unwrap().0;
        let n = file_number(&last.file_name().unwrap().to_string_lossy()).unwrap();
        assert!(n > first, "{last:?}");
    }

    #[test]
    fn a_disk_that_fails_drops_and_counts_and_says_so_once_it_works_again() {
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        // One record per file: every write starts a file, so every write meets the disk.
        let limits = JournalLimits {
            file_bytes: 1,
            ..JournalLimits::default()
        };
        let journal = FileJournal::open(&journal_dir, meta(), limits).unwrap();
        let sink = journal.sink();
        let stats = journal.stats();
        let settle = || std::thread::sleep(Duration::from_millis(300));
        sink.write(entry(1));
        settle();
        // The directory becomes a file: no journal file can be made.
        std::fs::rename(&journal_dir, dir.path().join("kept")).unwrap();
        std::fs::write(&journal_dir, b"in the way").unwrap();
        for t in 2..5 {
            sink.write(entry(t));
        }
        settle();
        assert_eq!(stats.written.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert!(stats.errors.load(Ordering::Relaxed) >= 3);
        // The disk is back: the next record goes in, after one that counts the lost ones.
        std::fs::remove_file(&journal_dir).unwrap();
        sink.write(entry(5));
        journal.close();
        assert_eq!(stats.written.load(Ordering::Relaxed), 2);
        let journals = read(&[journal_dir]).unwrap();
        let records: Vec<&Record> = journals[0]
            .entries
            .iter()
            .map(|l| &l.entry.record)
            .collect();
        assert!(
            matches!(records[..], [Record::Dropped(d), Record::End(e)] if d.records == 3 && e.t_ms == 5),
            "{records:?}"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // A sink whose writer never reads: its queue fills, and writes still return.
        let (queue, _entries) = mpsc::sync_channel(2);
        let stats = Arc::new(JournalStats::default());
        let sink = QueueSink {
            queue,
            stats: stats.clone(),
        };
        for t in 0..10 {
            sink.write(entry(t));
        }
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn dropped_records_are_reported_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path(), meta(), JournalLimits::default()).unwrap();
        let stats = journal.stats();
        stats.dropped.fetch_add(5, Ordering::Relaxed);
        journal.sink().write(entry(7));
        journal.close();
        let journals = read(&[dir.path().to_path_buf()]).unwrap();
        let records: Vec<&Record> = journals[0]
            .entries
            .iter()
            .map(|l| &l.entry.record)
            .collect();
        assert!(
            matches!(records[0], Record::Dropped(d) if d.records == 5 && d.server == 2 && d.t_ms == 7),
            "{records:?}"
        );
        assert!(matches!(records[1], Record::End(_)));
    }
}
