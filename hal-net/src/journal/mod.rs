//! The journal (flight recorder, DESIGN §10): each server appends the history records of
//! [`hal_core::record`] that it sees — starts and stops, role changes, peer links, peer
//! clock offsets, the requests it answers, the seat changes it applies — to a rotating,
//! bounded JSON Lines journal in its data directory. `hal-sim check` judges merged
//! journals with the simulator's invariants, `hal-sim import` turns one into a scenario
//! file and `hal-net report` reads usage from it.
//!
//! Writing never blocks serving: the node hands each record, or the facts of one
//! ([`Item`]), to [`Journal::record`], which appends its line to a buffer that the writer
//! thread ([`FileJournal`]) takes and writes to disk; when the buffer is full or the disk
//! fails, the record is dropped and counted, and a [`hal_core::record::Record::Dropped`]
//! record says so in the journal as soon as writing works again.

pub mod clocks;
mod facts;
pub mod read;
pub mod time;
mod writer;

use std::sync::Arc;

use hal_core::time::Now;

pub use facts::{Answered, Item, SeatApplied, entry, write_line};
pub use writer::{FileJournal, JournalLimits, JournalStats};

/// Where a journal's records go: the file writer's buffer, or (in the simulator) the run's
/// history.
pub trait Sink: Send + Sync {
    /// Takes one item, journaled at `now`; must return at once.
    fn write(&self, item: &Item<'_>, now: Now);
}

/// A node's journal: records stamped with the node's clock and handed to a [`Sink`]; or
/// nothing at all when off.
#[derive(Clone, Default)]
pub struct Journal {
    sink: Option<Arc<dyn Sink>>,
    /// Whether heartbeats answered "ok" are journaled (they are most of the traffic and
    /// say nothing a seat record does not).
    heartbeats: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("on", &self.sink.is_some())
            .field("heartbeats", &self.heartbeats)
            .finish()
    }
}

impl Journal {
    /// No journal.
    pub fn off() -> Journal {
        Journal::default()
    }

    /// A journal into `sink`.
    pub fn to(sink: Arc<dyn Sink>) -> Journal {
        Journal {
            sink: Some(sink),
            heartbeats: false,
        }
    }

    /// Also journal heartbeats that were answered "ok".
    pub fn with_heartbeats(mut self, heartbeats: bool) -> Journal {
        self.heartbeats = heartbeats;
        self
    }

    /// Whether records go anywhere (callers skip building them otherwise).
    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Whether "ok" heartbeats are journaled.
    pub fn heartbeats(&self) -> bool {
        self.heartbeats
    }

    /// Records `item` as of `now`: its record's `t_ms` is the wall clock, its `mono_ms`
    /// the monotonic clock.
    pub fn record<'a>(&self, now: Now, item: impl Into<Item<'a>>) {
        let Some(sink) = &self.sink else {
            return;
        };
        sink.write(&item.into(), now);
    }
}
