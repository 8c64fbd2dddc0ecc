//! The journals as one incident: every record on true time (the reference clock of
//! [`hal_net::journal::clocks`]), in time order, and each server's lives — from a `start` record
//! (or the journal's beginning) to a `stop` record, a crash (no stop, and either a later
//! start or peers that saw it go), or the journal's end.
//!
//! Journals are checked as they are taken in: a record of another server, a link to
//! itself, a file read twice or one server's journal from two directories is refused
//! with the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hal_core::record::{Meta, Record, Recovery};
use hal_net::journal::clocks::Clocks;
use hal_net::journal::read::ServerJournal;

use super::ImportError;

/// Where a record was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl Place {
    /// `journal-3.jsonl:17`, for comments (the directory is in the file's header).
    pub fn short(&self) -> String {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        format!("{name}:{}", self.line)
    }
}

/// A record of a server's journal, at true time.
#[derive(Debug, Clone)]
pub struct Event {
    pub t_ms: u64,
    pub server: u8,
    pub record: Record,
    pub place: Place,
}

/// How a life of a server ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A `stop` record.
    Stopped {
        t_ms: u64,
        reason: String,
        place: Place,
    },
    /// No `stop`: killed, or the machine lost power. `t_ms`: when the first peer saw its
    /// link go down after the server's last record (that record's time if none did);
    /// `seen`: each peer that saw it, and when.
    Crashed { t_ms: u64, seen: Vec<(u8, u64)> },
    /// Still running when its journal ends.
    Running,
}

/// One process of a server: from its start to its end.
#[derive(Debug, Clone)]
pub struct Life {
    pub server: u8,
    /// Its `start` record: when, where, what it recovered; `None`: it was running when
    /// its journal begins.
    pub start: Option<(u64, Place, Recovery)>,
    /// Its first and last records' times.
    pub first_ms: u64,
    pub last_ms: u64,
    pub end: End,
}

impl Life {
    /// When it began: its start, or its first record.
    pub fn began_ms(&self) -> u64 {
        self.start.as_ref().map_or(self.first_ms, |(t, _, _)| *t)
    }

    /// When it ended, if it did.
    pub fn end_ms(&self) -> Option<u64> {
        match &self.end {
            End::Stopped { t_ms, .. } | End::Crashed { t_ms, .. } => Some(*t_ms),
            End::Running => None,
        }
    }

    /// Whether the process ran at `t_ms`.
    pub fn runs_at(&self, t_ms: u64) -> bool {
        let begun = self.start.is_none() || self.began_ms() <= t_ms;
        begun && self.end_ms().is_none_or(|end| t_ms < end)
    }
}

/// The incident as the journals tell it.
#[derive(Debug, Clone)]
pub struct Field {
    /// The servers that have a journal, and the meta record of each one's first file.
    pub metas: BTreeMap<u8, Meta>,
    /// The directory (or file) each server's journal was read from.
    pub sources: BTreeMap<u8, PathBuf>,
    pub clocks: Clocks,
    /// Every record but the meta records, in true time order.
    pub events: Vec<Event>,
    pub lives: BTreeMap<u8, Vec<Life>>,
    /// What the reader skipped (a torn last line).
    pub notes: Vec<String>,
}

impl Field {
    /// The incident of `journals`, as read by [`hal_net::journal::read::read`].
    pub fn new(journals: &[ServerJournal]) -> Result<Field, ImportError> {
        let mut sources = BTreeMap::new();
        for journal in journals {
            sources.insert(journal.server, check(journal)?);
        }
        let clocks = Clocks::estimate(journals);
        let mut events = Vec::new();
        for journal in journals {
            let times = clocks.true_times(journal);
            for (located, t_ms) in journal.entries.iter().zip(times) {
                let record = &located.entry.record;
                let Some(t_ms) = t_ms else {
                    continue;
                };
                events.push(Event {
                    t_ms,
                    server: journal.server,
                    record: record.clone(),
                    place: Place {
                        file: located.file.clone(),
                        line: located.line,
                    },
                });
            }
        }
        // Stable: one server's records at one time keep the journal's order.
        events.sort_by_key(|e| e.t_ms);
        let mut lives = BTreeMap::new();
        for journal in journals {
            lives.insert(journal.server, lives_of(journal.server, &events));
        }
        Ok(Field {
            metas: journals
                .iter()
                .map(|j| (j.server, j.meta.clone()))
                .collect(),
            sources,
            clocks,
            events,
            lives,
            notes: journals.iter().flat_map(|j| j.notes.clone()).collect(),
        })
    }

    /// The servers that have a journal.
    pub fn servers(&self) -> impl Iterator<Item = u8> + '_ {
        self.metas.keys().copied()
    }

    /// Whether server `server` ran at `t_ms` (as far as its journal tells; a server
    /// without a journal is taken to have run all along).
    pub fn runs_at(&self, server: u8, t_ms: u64) -> bool {
        match self.lives.get(&server) {
            None => true,
            Some(lives) => lives.iter().any(|l| l.runs_at(t_ms)),
        }
    }

    /// When server `server` was down, as `[from, to)` spans (`u64::MAX`: to the end).
    pub fn down_spans(&self, server: u8) -> Vec<(u64, u64)> {
        let Some(lives) = self.lives.get(&server) else {
            return Vec::new();
        };
        let mut spans = Vec::new();
        let mut down_from = Some(0);
        for life in lives {
            if let (Some(from), Some((start, _, _))) = (down_from, &life.start) {
                spans.push((from, *start));
            }
            down_from = life.end_ms();
        }
        if let Some(from) = down_from {
            spans.push((from, u64::MAX));
        }
        spans.retain(|(a, b)| a < b);
        spans
    }
}

/// Checks that every record of `journal` is its server's, and that its files come from
/// one place, each once; returns that place.
fn check(journal: &ServerJournal) -> Result<PathBuf, ImportError> {
    let server = journal.server;
    let mut seen: BTreeSet<(&Path, usize)> = BTreeSet::new();
    let mut dir: Option<&Path> = None;
    for located in &journal.entries {
        let place = || Place {
            file: located.file.clone(),
            line: located.line,
        };
        if !seen.insert((&located.file, located.line)) {
            return Err(ImportError::Record {
                place: place().to_string(),
                problem: "this file was given twice (a directory and a file in it?)".into(),
            });
        }
        let parent = located.file.parent().unwrap_or(Path::new(""));
        match dir {
            None => dir = Some(parent),
            Some(d) if d != parent => {
                return Err(ImportError::Record {
                    place: place().to_string(),
                    problem: format!(
                        "a second journal of server #{server} (the first is in {}): give one journal per server",
                        d.display()
                    ),
                });
            }
            Some(_) => {}
        }
        let (writer, peer) = record_servers(&located.entry.record);
        if writer.is_some_and(|w| w != server) {
            return Err(ImportError::Record {
                place: place().to_string(),
                problem: format!(
                    "a {} record of server #{} in the journal of server #{server}",
                    located.entry.record.kind(),
                    writer.unwrap_or_default()
                ),
            });
        }
        if let Some(peer) = peer
            && (peer == server || !(1..=3).contains(&peer))
        {
            return Err(ImportError::Record {
                place: place().to_string(),
                problem: format!(
                    "a {} record about peer #{peer}: server #{server}'s peers are the other two of 1, 2, 3",
                    located.entry.record.kind()
                ),
            });
        }
    }
    Ok(dir.map_or_else(PathBuf::new, Path::to_path_buf))
}

/// The server that wrote a record (if it says), and the peer it is about (links, clocks).
fn record_servers(record: &Record) -> (Option<u8>, Option<u8>) {
    match record {
        Record::Role(r) => (Some(r.server), None),
        Record::Start(r) => (Some(r.server), None),
        Record::Stop(r) => (Some(r.server), None),
        Record::Link(r) => (Some(r.server), Some(r.peer)),
        Record::PeerClock(r) => (Some(r.server), Some(r.peer)),
        Record::Served(r) => (Some(r.server), None),
        Record::Seat(r) => (Some(r.server), None),
        Record::Checkpoint(r) => (Some(r.server), None),
        Record::Dropped(r) => (Some(r.server), None),
        _ => (None, None),
    }
}

/// Server `server`'s lives, from `events` (every server's, in time order).
fn lives_of(server: u8, events: &[Event]) -> Vec<Life> {
    let mut lives: Vec<Life> = Vec::new();
    for event in events.iter().filter(|e| e.server == server) {
        let starts = match &event.record {
            Record::Start(start) => {
                Some((event.t_ms, event.place.clone(), start.recovered.clone()))
            }
            _ => None,
        };
        let ended = lives.last().is_none_or(|l| l.end != End::Running);
        if starts.is_some() || ended {
            lives.push(Life {
                server,
                start: starts,
                first_ms: event.t_ms,
                last_ms: event.t_ms,
                end: End::Running,
            });
        }
        let Some(life) = lives.last_mut() else {
            continue;
        };
        life.last_ms = event.t_ms;
        if let Record::Stop(stop) = &event.record {
            life.end = End::Stopped {
                t_ms: event.t_ms,
                reason: stop.reason.clone(),
                place: event.place.clone(),
            };
        }
    }
    // A life that ran on without a stop while a later one started, or that its peers saw
    // go for good, crashed.
    let next_starts: Vec<Option<u64>> = (0..lives.len())
        .map(|i| lives.get(i + 1).map(Life::began_ms))
        .collect();
    for (life, next) in lives.iter_mut().zip(next_starts) {
        if life.end != End::Running {
            continue;
        }
        let seen = seen_down(server, events, life.last_ms, next.unwrap_or(u64::MAX));
        let t_ms = seen.iter().map(|(_, t)| *t).min();
        match (next, t_ms) {
            (Some(_), _) => {
                life.end = End::Crashed {
                    t_ms: t_ms.unwrap_or(life.last_ms),
                    seen,
                }
            }
            (None, Some(t)) if !seen_up(server, events, t) => {
                life.end = End::Crashed { t_ms: t, seen }
            }
            (None, _) => {}
        }
    }
    lives
}

/// The peers that saw their link to `server` go down in `(after, before]`: the first
/// time each did.
fn seen_down(server: u8, events: &[Event], after: u64, before: u64) -> Vec<(u8, u64)> {
    let mut seen: BTreeMap<u8, u64> = BTreeMap::new();
    for event in events {
        if let Record::Link(link) = &event.record
            && link.peer == server
            && !link.up
            && event.t_ms > after
            && event.t_ms <= before
        {
            seen.entry(link.server).or_insert(event.t_ms);
        }
    }
    seen.into_iter().collect()
}

/// Whether a peer saw its link to `server` up after `t_ms`.
fn seen_up(server: u8, events: &[Event], t_ms: u64) -> bool {
    events.iter().any(|e| {
        matches!(&e.record, Record::Link(link) if link.peer == server && link.up) && e.t_ms > t_ms
    })
}
