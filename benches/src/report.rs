//! What `hal-net report` costs on a large journal (`hal-load report`): a synthetic
//! journal of a busy license, written as the servers' journal writer writes it, then read
//! back and accounted as `hal-net report` does ([`hal_net::journal::read`], then
//! [`hal_net::report`]), with the time of each step and the process's peak memory.
//!
//! The journal: one feature whose seats a few hundred users take and give back, one seat
//! change every 100 ms (a million changes are 28 hours), each server's copy of a change
//! at the same log index and a few ms after the active server's, in files of the
//! writer's size, each headed by its meta record. It holds seat records only: they are
//! what the report keeps per record and sorts. Printing the report is left out (a few
//! kilobytes, whatever the journal's size). Deterministic: the same options write the
//! same bytes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hal_core::record::{
    Entry, FeatureMeta, Meta, Record, Recovery, RoleName, RoleRecord, SeatChangeName, SeatRecord,
    Start,
};
use hal_core::timing::Timing;
use hal_net::journal::JournalLimits;
use hal_net::report::{Options, Report};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::procstat;

/// The feature the journal's seats are of.
pub const FEATURE: &str = "cad";
/// The first record's wall clock (2026-05-28).
const T0_MS: u64 = 1_780_000_000_000;
/// Between two seat changes.
const STEP_MS: u64 = 100;
/// How much later than the active server (#1) each follower journals a change.
const FOLLOWER_LAG_MS: u64 = 3;
const SEED: u64 = 0x4841_4c5f_7265_706f;

/// The journal to write.
#[derive(Debug, Clone)]
pub struct SyntheticJournal {
    /// Where the servers' journal directories go (`<dir>/1`, `<dir>/2`, ..., made if absent,
    /// emptied first).
    pub dir: PathBuf,
    /// Seat records in each server's journal.
    pub records: u64,
    /// Servers whose journals are written, 1 to 3; each holds every change, as a triad's do.
    pub servers: u8,
    /// The feature's seats: between half and all of them are held at any time.
    pub seats: u32,
    /// Users taking them, four to a host.
    pub users: u32,
    /// A file is closed and the next one started once it holds this many bytes.
    pub file_bytes: u64,
}

impl SyntheticJournal {
    /// `records` seat records in each of `servers` journals under `dir`: 500 seats, 200
    /// users, files of the writer's default size.
    pub fn new(dir: PathBuf, records: u64, servers: u8) -> SyntheticJournal {
        SyntheticJournal {
            dir,
            records,
            servers,
            seats: 500,
            users: 200,
            file_bytes: JournalLimits::default().file_bytes,
        }
    }

    fn check(&self) -> Result<()> {
        if !(1..=3).contains(&self.servers) {
            bail!("--servers must be 1, 2 or 3 (a triad's journals)");
        }
        if self.records == 0 {
            bail!("--records must be at least 1");
        }
        if self.seats == 0 || self.users == 0 {
            bail!("--seats and --users must be at least 1");
        }
        Ok(())
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Each server's journal directory, #1 first.
    pub dirs: Vec<PathBuf>,
    /// Files and bytes, all servers.
    pub files: usize,
    pub bytes: u64,
    /// Seat changes (each in every server's journal): grants, and releases.
    pub grants: u64,
    pub releases: u64,
}

/// One server's journal files being written, a new one (headed by the meta record) each
/// time one is full.
struct Files {
    dir: PathBuf,
    meta: Meta,
    limit_bytes: u64,
    /// The file being written, its number and its bytes so far.
    current: Option<(BufWriter<File>, u64)>,
    number: u64,
    line: Vec<u8>,
    written: Written,
}

impl Files {
    fn new(dir: PathBuf, meta: Meta, limit_bytes: u64) -> Files {
        Files {
            dir,
            meta,
            limit_bytes,
            current: None,
            number: 0,
            line: Vec::new(),
            written: Written::default(),
        }
    }

    /// Writes `entry`, in a new file if the current one is full (or none is open).
    fn write(&mut self, entry: &Entry) -> Result<()> {
        let full = self
            .current
            .as_ref()
            .is_none_or(|(_, bytes)| *bytes >= self.limit_bytes);
        if full {
            self.next_file(entry.record.t_ms().unwrap_or(T0_MS))?;
        }
        self.append(entry)
    }

    /// Writes `entry` in the current file.
    fn append(&mut self, entry: &Entry) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, entry).context("a record as JSON")?;
        self.line.push(b'\n');
        let Some((file, bytes)) = self.current.as_mut() else {
            bail!("no journal file open in {}", self.dir.display());
        };
        file.write_all(&self.line)
            .with_context(|| format!("writing in {}", self.dir.display()))?;
        let len = self.line.len() as u64;
        *bytes += len;
        self.written.bytes += len;
        Ok(())
    }

    /// Closes the current file and starts the next, headed by the meta record.
    fn next_file(&mut self, t_ms: u64) -> Result<()> {
        self.finish()?;
        self.number += 1;
        let path = self.dir.join(format!("journal-{:08}.jsonl", self.number));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        self.current = Some((BufWriter::new(file), 0));
        self.written.files += 1;
        let meta = Entry::from(Record::Meta(Meta {
            t_ms: Some(t_ms),
            ..self.meta.clone()
        }));
        self.append(&meta)
    }

    fn finish(&mut self) -> Result<()> {
        if let Some((mut file, _)) = self.current.take() {
            file.flush()
                .with_context(|| format!("writing in {}", self.dir.display()))?;
        }
        Ok(())
    }
}

/// The meta record of server `server`'s journal files.
fn meta(server: u8, seats: u32) -> Meta {
    let features = BTreeMap::from([(
        FEATURE.to_string(),
        FeatureMeta {
            count: seats,
            hal: true,
        },
    )]);
    Meta {
        server: Some(server),
        version: Some("synthetic".into()),
        triad: Some(vec!["27000@a".into(), "27000@b".into(), "27000@c".into()]),
        ..Meta::new(&Timing::lan(), features)
    }
}

/// A record as server `server` journals it, `mono_ms` after its start.
fn entry(record: Record, mono_ms: u64) -> Entry {
    Entry {
        record,
        mono_ms: Some(mono_ms),
    }
}

/// A seat held: its grant's index (its handle is `h<index>`), its user and client.
struct Held {
    index: u64,
    user: u32,
    client: String,
}

/// The seat changes, one per log index from 1: a grant while fewer than half the seats
/// are held, a release when all are, else either by a coin's toss.
struct Changes {
    rng: ChaCha8Rng,
    seats: usize,
    users: u32,
    held: Vec<Held>,
}

impl Changes {
    fn next(&mut self, index: u64) -> SeatRecord {
        let held = self.held.len();
        let grant = held < self.seats / 2 || (held < self.seats && self.rng.random_bool(0.5));
        let seat = |change, held: &Held, user: Option<u32>| SeatRecord {
            t_ms: T0_MS + index * STEP_MS,
            server: 1,
            index,
            change,
            handle: format!("h{}", held.index),
            feature: FEATURE.to_string(),
            client: held.client.clone(),
            req: Some(index),
            user: user.map(|u| format!("user{u}")),
            host: user.map(|u| format!("host{}", u / 4)),
            by: user.map(|_| 1),
            borrow_end_ms: None,
            removed_by: None,
        };
        if grant {
            let new = Held {
                index,
                user: self.rng.random_range(0..self.users),
                client: format!("{:016x}", self.rng.random::<u64>()),
            };
            let record = seat(SeatChangeName::Granted, &new, Some(new.user));
            self.held.push(new);
            record
        } else {
            let which = self.rng.random_range(0..held);
            let gone = self.held.swap_remove(which);
            seat(SeatChangeName::Released, &gone, None)
        }
    }
}

/// Writes the journals `options` describe.
pub fn write(options: &SyntheticJournal) -> Result<Written> {
    options.check()?;
    let mut servers = Vec::new();
    for server in 1..=options.servers {
        let dir = options.dir.join(server.to_string());
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Files::new(dir, meta(server, options.seats), options.file_bytes);
        let start = Record::Start(Start {
            t_ms: T0_MS,
            server,
            version: "synthetic".into(),
            pid: 1,
            recovered: Recovery::default(),
        });
        files.write(&entry(start, 0))?;
        let role = if server == 1 {
            RoleName::Active
        } else {
            RoleName::Standby
        };
        let role = Record::Role(RoleRecord {
            t_ms: T0_MS,
            server,
            role,
            term: 1,
        });
        files.write(&entry(role, 0))?;
        servers.push(files);
    }
    let mut changes = Changes {
        rng: ChaCha8Rng::seed_from_u64(SEED),
        seats: usize::try_from(options.seats).unwrap_or(usize::MAX),
        users: options.users,
        held: Vec::new(),
    };
    let (mut grants, mut releases) = (0, 0);
    for index in 1..=options.records {
        let seat = changes.next(index);
        match seat.change {
            SeatChangeName::Granted => grants += 1,
            _ => releases += 1,
        }
        for files in &mut servers {
            let server = files.meta.server.unwrap_or(1);
            let lag_ms = FOLLOWER_LAG_MS * u64::from(server - 1);
            let record = Record::Seat(SeatRecord {
                t_ms: seat.t_ms + lag_ms,
                server,
                ..seat.clone()
            });
            files.write(&entry(record, seat.t_ms - T0_MS + lag_ms))?;
        }
    }
    let mut written = Written {
        grants,
        releases,
        ..Written::default()
    };
    for mut files in servers {
        files.finish()?;
        written.dirs.push(files.dir);
        written.files += files.written.files;
        written.bytes += files.written.bytes;
    }
    Ok(written)
}

/// The figures of one run.
#[derive(Debug)]
pub struct ReportCost {
    pub options: SyntheticJournal,
    pub written: Written,
    /// Writing the journals, reading them back, and accounting.
    pub write: Duration,
    pub read: Duration,
    pub account: Duration,
    /// Records read, all servers (the meta lines left out).
    pub entries: usize,
    /// The process's resident memory before reading, its peak once read, its peak once
    /// accounted (the report and the journals both held), KiB.
    pub rss_before_kib: u64,
    pub peak_read_kib: u64,
    pub peak_kib: u64,
    /// What the report found.
    pub report: Report,
}

impl ReportCost {
    /// One line of `key=value` figures.
    pub fn line(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
        let grown_bytes = self.peak_kib.saturating_sub(self.rss_before_kib) * 1024;
        let feature = self.report.features.iter().find(|f| f.feature == FEATURE);
        format!(
            "report: servers={} records={} entries={} files={} journal_mib={:.1} write_s={:.2} \
             read_s={:.2} account_s={:.2} read_records_per_s={:.0} rss_before_mib={:.1} \
             peak_read_mib={:.1} peak_mib={:.1} bytes_per_record={:.0} grants={} checkouts={} \
             peak_seats={} seat_hours={:.1}",
            self.options.servers,
            self.options.records,
            self.entries,
            self.written.files,
            self.written.bytes as f64 / (1024.0 * 1024.0),
            self.write.as_secs_f64(),
            self.read.as_secs_f64(),
            self.account.as_secs_f64(),
            per_s(self.entries, self.read),
            mib(self.rss_before_kib),
            mib(self.peak_read_kib),
            mib(self.peak_kib),
            grown_bytes as f64 / self.entries.max(1) as f64,
            self.written.grants,
            feature.map_or(0, |f| f.checkouts),
            feature.map_or(0, |f| f.peak.seats),
            feature.map_or(0.0, |f| f.seat_hours),
        )
    }
}

/// This process's resident memory and its peak, KiB.
fn memory() -> Result<procstat::Memory> {
    procstat::memory(std::process::id()).context("reading /proc/self/status")
}

/// Writes the journal, then reads and accounts it as `hal-net report` does.
pub fn run(options: SyntheticJournal) -> Result<ReportCost> {
    let started = Instant::now();
    let written = write(&options)?;
    let write = started.elapsed();
    let before = memory()?;
    let started = Instant::now();
    let journals = hal_net::journal::read::read(&written.dirs)?;
    let read = started.elapsed();
    let after_read = memory()?;
    let started = Instant::now();
    let report = hal_net::report::report(&journals, &Options::default())?;
    let account = started.elapsed();
    let after = memory()?;
    let entries = journals.iter().map(|j| j.entries.len()).sum();
    drop(journals);
    Ok(ReportCost {
        options,
        written,
        write,
        read,
        account,
        entries,
        rss_before_kib: before.rss_kib,
        peak_read_kib: after_read.peak_kib,
        peak_kib: after.peak_kib,
        report,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn small(dir: &Path, servers: u8) -> SyntheticJournal {
        SyntheticJournal {
            seats: 20,
            users: 8,
            // A few files per server.
            file_bytes: 64 << 10,
            ..SyntheticJournal::new(dir.to_path_buf(), 2_000, servers)
        }
    }

    #[test]
    fn the_journal_reads_back_and_every_grant_is_one_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let options = small(dir.path(), 3);
        let written = write(&options).unwrap();
        assert_eq!(written.grants + written.releases, 2_000);
        assert!(written.files > 3, "{written:?}");
        let journals = hal_net::journal::read::read(&written.dirs).unwrap();
        assert_eq!(journals.len(), 3);
        for journal in &journals {
            // start, role, then the seat records.
            assert_eq!(journal.entries.len(), 2 + 2_000);
            assert!(journal.notes.is_empty(), "{:?}", journal.notes);
        }
        let report = hal_net::report::report(&journals, &Options::default()).unwrap();
        let cad = &report.features[0];
        assert_eq!(cad.checkouts, written.grants, "each change counted once");
        assert_eq!(cad.held_at_end, written.grants - written.releases);
        assert_eq!(cad.count, Some(20));
        assert!((10..=20).contains(&cad.peak.seats), "{:?}", cad.peak);
        assert!(cad.seat_ms > 0);
        assert!(cad.by_user.len() <= 8 && cad.by_host.len() <= 2);
        assert_eq!(report.triad.failovers, 0);
    }

    #[test]
    fn the_same_options_write_the_same_bytes() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let read = |dir: &Path| {
            let written = write(&small(dir, 1)).unwrap();
            let mut files: Vec<PathBuf> = fs::read_dir(&written.dirs[0])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            let names: Vec<_> = files
                .iter()
                .map(|f| f.file_name().unwrap().to_owned())
                .collect();
            let bytes: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
            (names, bytes)
        };
        assert_eq!(read(dirs[0].path()), read(dirs[1].path()));
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (options, says) in [
            (small(dir.path(), 0), "--servers"),
            (small(dir.path(), 4), "--servers"),
            (
                SyntheticJournal {
                    records: 0,
                    ..small(dir.path(), 1)
                },
                "--records",
            ),
            (
                SyntheticJournal {
                    seats: 0,
                    ..small(dir.path(), 1)
                },
                "--seats",
            ),
        ] {
            let error = write(&options).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn a_run_measures_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let cost = run(small(dir.path(), 1)).unwrap();
        assert_eq!(cost.entries, 2_002);
        assert!(cost.rss_before_kib > 0);
        assert!(cost.peak_kib >= cost.peak_read_kib, "{cost:?}");
        let line = cost.line();
        assert!(
            line.starts_with("report: servers=1 records=2000 entries=2002 "),
            "{line}"
        );
        assert!(
            line.contains(&format!("checkouts={}", cost.written.grants)),
            "{line}"
        );
    }
}
