//! The journal's files: the node appends each record's JSON line to a shared buffer, and
//! a writer thread takes the buffer and appends it to `<dir>/journal-<n>.jsonl`, starts a
//! new file (headed by the meta record) when the current one reaches its size, and removes
//! the oldest files beyond the total size and the age kept.
//!
//! The node never waits for it: appending a line is a short lock and a copy; a line that
//! finds the buffer full is dropped and counted. The writer takes the buffer at most
//! [`GATHER`] after a line comes, so lines reach the operating system within a second (a
//! crash of the process loses nothing written before that); a file is synced when it is
//! closed. A disk error closes the file, counts the lines lost, is logged (at most once a
//! minute), and the next batch tries a new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hal_core::record::{Dropped, Entry, Meta, Record};
use hal_core::time::Now;

use super::{Item, Sink, write_line};

/// The most bytes of lines waiting for the writer (about 40,000 records): what a busy
/// server writes in a second or more, so only a writer stalled on its disk drops any.
pub const BUFFER_BYTES_MAX: usize = 8 << 20;
/// How long the writer lets lines gather once one has come: one write to the file
/// carries the batch, and the node's appends wake no thread meanwhile.
const GATHER: Duration = Duration::from_millis(20);
/// How long an idle writer waits before looking again (for a close it was not woken for).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// The batch buffer kept between batches (a bigger batch grows it for a while).
const BATCH_KEEP: usize = 1 << 20;
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
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped: the buffer was full, or the disk failed.
    pub dropped: AtomicU64,
    /// Disk errors.
    pub errors: AtomicU64,
}

/// The lines waiting for the writer.
#[derive(Debug, Default)]
struct Batch {
    lines: Vec<u8>,
    /// How many lines `lines` holds.
    count: u64,
    /// When the first of them was journaled: a `dropped` record written ahead of them
    /// takes its times, as the losses it reports came before them.
    first: Option<Now>,
    /// The journal is closing: the writer writes what is here and stops; later lines are
    /// dropped.
    closing: bool,
}

/// What the node's sinks and the writer thread share.
#[derive(Debug)]
struct Shared {
    batch: Mutex<Batch>,
    /// Lines are taken while `batch` holds fewer bytes than this ([`BUFFER_BYTES_MAX`]).
    limit: usize,
    /// Wakes the writer when a line comes to an empty buffer, or the journal closes.
    wake: Condvar,
    stats: Arc<JournalStats>,
}

impl Shared {
    fn new(limit: usize) -> Shared {
        Shared {
            batch: Mutex::default(),
            limit,
            wake: Condvar::new(),
            stats: Arc::default(),
        }
    }

    fn batch(&self) -> MutexGuard<'_, Batch> {
        // A panic while holding the lock leaves whole lines behind (a line is appended
        // whole or truncated away): the buffer is still good.
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A journal's writer thread and its buffer.
#[derive(Debug)]
pub struct FileJournal {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

/// The node's side, as a [`Sink`].
#[derive(Debug)]
struct BufferSink {
    shared: Arc<Shared>,
}

impl Sink for BufferSink {
    fn write(&self, item: &Item<'_>, now: Now) {
        let shared = &*self.shared;
        let mut batch = shared.batch();
        if batch.closing || batch.lines.len() >= shared.limit {
            drop(batch);
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let was_empty = batch.lines.is_empty();
        match write_line(&mut batch.lines, item, now) {
            Ok(()) => {
                batch.count += 1;
                batch.first.get_or_insert(now);
            }
            Err(e) => {
                drop(batch);
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!("journal: a record could not be written as JSON: {e}");
                return;
            }
        }
        drop(batch);
        if was_empty {
            shared.wake.notify_one();
        }
    }
}
impl FileJournal {
    /// Starts a journal in `dir` (made if absent), each file headed by `meta` (its `t_ms`
    /// set to when the file starts).
    pub fn open(dir: &Path, meta: Meta, limits: JournalLimits) -> io::Result<FileJournal> {
        fs::create_dir_all(dir)?;
        let shared = Arc::new(Shared::new(BUFFER_BYTES_MAX));
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            meta,
            limits,
            shared: shared.clone(),
            file: None,
            next_number: next_number(dir)?,
            reported_dropped: 0,
            last_error_log: None,
        };
        let thread = std::thread::Builder::new()
            .name("hal-journal".into())
            .spawn(move || writer.run())?;
        Ok(FileJournal {
            shared,
            thread: Some(thread),
            dir: dir.to_path_buf(),
        })
    }

    /// The sink a node's [`super::Journal`] writes into (once the journal is closed,
    /// every record is dropped and counted).
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(BufferSink {
            shared: self.shared.clone(),
        })
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<JournalStats> {
        self.shared.stats.clone()
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes what is buffered, syncs the file and stops the thread (waiting for it: call
    /// it off the async runtime). Records sinks write later are dropped and counted.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.shared.batch().closing = true;
        self.shared.wake.notify_one();
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
    out: File,
    path: PathBuf,
    bytes: u64,
}

struct Writer {
    dir: PathBuf,
    meta: Meta,
    limits: JournalLimits,
    shared: Arc<Shared>,
    file: Option<Current>,
    next_number: u64,
    /// The dropped count already reported in the journal.
    reported_dropped: u64,
    last_error_log: Option<Instant>,
}

impl Writer {
    fn run(&mut self) {
        let mut spare = Vec::new();
        loop {
            let mut batch = self.shared.batch();
            while batch.lines.is_empty() && !batch.closing {
                batch = self
                    .shared
                    .wake
                    .wait_timeout(batch, IDLE_WAIT)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if !batch.closing {
                // What comes in meanwhile joins the batch.
                drop(batch);
                std::thread::sleep(GATHER);
                batch = self.shared.batch();
            }
            let closing = batch.closing;
            let count = std::mem::take(&mut batch.count);
            let first = batch.first.take();
            std::mem::swap(&mut batch.lines, &mut spare);
            drop(batch);
            if let Some(first) = first {
                self.write_batch(&spare, count, first);
            }
            spare.clear();
            spare.shrink_to(BATCH_KEEP);
            if closing {
                break;
            }
        }
        if let Some(current) = self.file.take() {
            let path = current.path.clone();
            if let Err(e) = finish(current) {
                self.failed(&path, &e);
            }
        }
    }

    /// Appends `count` lines, the first journaled at `first`, after a `dropped` record if
    /// records were lost since the last one; a file that reaches its size is closed after
    /// the line that took it there.
    fn write_batch(&mut self, mut lines: &[u8], mut count: u64, first: Now) {
        if lines.is_empty() {
            return;
        }
        if !self.report_dropped(first) {
            // No file could be started for it: nor for the batch.
            self.lost(count);
            return;
        }
        while !lines.is_empty() {
            if self.file.is_none()
                && let Err((path, e)) = self.start_file()
            {
                self.failed(&path, &e);
                self.lost(count);
                return;
            }
            let Some(current) = self.file.as_mut() else {
                return;
            };
            let room = usize::try_from(self.limits.file_bytes.saturating_sub(current.bytes))
                .unwrap_or(usize::MAX)
                .max(1);
            // Up to the end of the line that fills the file, or everything.
            let take = match lines.get(room - 1..) {
                Some(rest) if room < lines.len() => rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(lines.len(), |at| room + at),
                _ => lines.len(),
            };
            let (chunk, rest) = lines.split_at(take);
            let chunk_lines = if rest.is_empty() {
                count
            } else {
                newlines(chunk)
            };
            if let Err(e) = current.out.write_all(chunk) {
                let path = current.path.clone();
                self.file = None;
                self.failed(&path, &e);
                self.lost(count);
                return;
            }
            current.bytes = current.bytes.saturating_add(chunk.len() as u64);
            self.shared
                .stats
                .written
                .fetch_add(chunk_lines, Ordering::Relaxed);
            count = count.saturating_sub(chunk_lines);
            lines = rest;
            if current.bytes >= self.limits.file_bytes
                && let Some(full) = self.file.take()
            {
                let path = full.path.clone();
                if let Err(e) = finish(full) {
                    self.failed(&path, &e);
                }
                self.prune();
            }
        }
    }

    /// Counts `records` lost to a disk error.
    fn lost(&self, records: u64) {
        self.shared
            .stats
            .dropped
            .fetch_add(records, Ordering::Relaxed);
    }

    /// Writes a `dropped` record for the records lost since the last one, if any, with
    /// the times of the record it goes ahead of (`next`); whether a file could be started
    /// for it (a write error is counted, and the batch then tries a new file).
    fn report_dropped(&mut self, next: Now) -> bool {
        let dropped = self.shared.stats.dropped.load(Ordering::Relaxed);
        if dropped <= self.reported_dropped {
            return true;
        }
        let record = Record::Dropped(Dropped {
            t_ms: next.wall.0,
            server: self.meta.server.unwrap_or(0),
            records: dropped - self.reported_dropped,
            reason: "the journal fell behind or the disk failed".into(),
        });
        let mut line = Vec::new();
        let entry = Entry {
            record,
            mono_ms: Some(next.mono.0),
        };
        if let Err(e) = serde_json::to_writer(&mut line, &entry) {
            tracing::error!("journal: a record could not be written as JSON: {e}");
            return true;
        }
        line.push(b'\n');
        if self.file.is_none()
            && let Err((path, e)) = self.start_file()
        {
            self.failed(&path, &e);
            return false;
        }
        let Some(current) = self.file.as_mut() else {
            return false;
        };
        match current.out.write_all(&line) {
            Ok(()) => {
                current.bytes = current.bytes.saturating_add(line.len() as u64);
                self.reported_dropped = dropped;
            }
            Err(e) => {
                let path = current.path.clone();
                self.file = None;
                self.failed(&path, &e);
            }
        }
        true
    }

    /// Opens the next file and writes its meta record.
    fn start_file(&mut self) -> Result<(), (PathBuf, io::Error)> {
        let path = self
            .dir
            .join(format!("journal-{:08}.jsonl", self.next_number));
        self.next_number = self.next_number.saturating_add(1);
        let fail = |e| (path.clone(), e);
        fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut out = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        let meta = Entry::from(Record::Meta(Meta {
            t_ms: Some(wall_ms()),
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

    /// Counts a disk error and logs it, at most once a minute (the records it cost are
    /// counted by the caller).
    fn failed(&mut self, path: &Path, error: &io::Error) {
        self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|last| now.duration_since(last) >= ERROR_LOG_EVERY)
        {
            self.last_error_log = Some(now);
            let errors = self.shared.stats.errors.load(Ordering::Relaxed);
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

/// Syncs a file being closed.
fn finish(current: Current) -> io::Result<()> {
    current.out.sync_all()
}

/// How many lines `bytes` holds.
fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// This server's wall clock, in ms since the Unix epoch.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

    /// Writes an `end` record at `t_ms` into `sink`.
    fn end_at(sink: &dyn Sink, t_ms: u64) {
        let now = Now {
            mono: hal_core::time::Time(t_ms),
            wall: hal_core::time::WallTime(t_ms),
        };
        sink.write(&Record::End(End { t_ms: 0 }).into(), now);
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
            end_at(&*sink, t);
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
        end_at(&*journal.sink(), 1_000);
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
        end_at(&*sink, 1);
        settle();
        // The directory becomes a file: no journal file can be made.
        std::fs::rename(&journal_dir, dir.path().join("kept")).unwrap();
        std::fs::write(&journal_dir, b"in the way").unwrap();
        for t in 2..5 {
            end_at(&*sink, t);
        }
        settle();
        assert_eq!(stats.written.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert!(stats.errors.load(Ordering::Relaxed) >= 1);
        // The disk is back: the next record goes in, after one that counts the lost ones.
        std::fs::remove_file(&journal_dir).unwrap();
        end_at(&*sink, 5);
        journal.close();
        assert_eq!(stats.written.load(Ordering::Relaxed), 2);
        let journals = read(&[journal_dir]).unwrap();
        let records: Vec<&Record> = journals[0]
            .entries
            .iter()
            .map(|l| &l.entry.record)
            .collect();
        assert!(
            matches!(records[..], [Record::Dropped(d), Record::End(e)] if d.records == 3 && d.t_ms == 5 && e.t_ms == 5),
            "{records:?}"
        );
    }

    #[test]
    fn a_full_buffer_drops_and_counts_without_waiting() {
        // A buffer that no writer takes: it fills, and writes still return.
        let shared = Arc::new(Shared::new(180));
        let sink = BufferSink {
            shared: shared.clone(),
        };
        for t in 0..10 {
            end_at(&sink, t);
        }
        let batch = shared.batch();
        // `{"kind":"end","t_ms":N,"mono_ms":N}` and its newline are 36 bytes: five fill 180.
        assert_eq!(batch.count, 5, "{}", String::from_utf8_lossy(&batch.lines));
        assert_eq!(shared.stats.dropped.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn dropped_records_are_reported_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path(), meta(), JournalLimits::default()).unwrap();
        let stats = journal.stats();
        stats.dropped.fetch_add(5, Ordering::Relaxed);
        end_at(&*journal.sink(), 7);
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
        // It takes the times of the record it goes ahead of, monotonic time included.
        assert_eq!(journals[0].entries[0].entry.mono_ms, Some(7));
        assert!(matches!(records[1], Record::End(_)));
    }
}
