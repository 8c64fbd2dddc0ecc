//! The replicated log in memory: the entries after the last snapshot, and which of them
//! the shell has been told to make durable.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::{Entry, LogIndex, Term};

/// Entries `first_index()..=last_index()`; everything up to `snapshot_index` is compacted.
#[derive(Debug, Clone, Default)]
pub struct Log {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    /// Shared, so that sending and persisting entries copies no command.
    entries: VecDeque<Arc<Entry>>,
    /// The log from here on has changed since it was last handed to the shell to persist
    /// (new entries, or a truncation).
    unpersisted_from: Option<LogIndex>,
    /// The log up to here is known durable (the shell said so, or it was loaded).
    durable: LogIndex,
}

impl Log {
    /// A log that starts after a snapshot at (`index`, `term`), holding `entries` (already
    /// durable).
    pub fn restore(index: LogIndex, term: Term, entries: Vec<Arc<Entry>>) -> Log {
        Log {
            snapshot_index: index,
            snapshot_term: term,
            durable: index.plus(entries.len()).unwrap_or(LogIndex::MAX),
            entries: entries.into(),
            unpersisted_from: None,
        }
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    pub fn last_index(&self) -> LogIndex {
        // Every index stored was checked against `LogIndex::MAX` (trust.rs, `append`).
        self.snapshot_index
            .plus(self.entries.len())
            .unwrap_or(LogIndex::MAX)
    }

    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// The number of entries held (not compacted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The term of the entry at `index`, if known (the snapshot's last entry included).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.get(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn get(&self, index: LogIndex) -> Option<&Arc<Entry>> {
        let offset = index.0.checked_sub(self.snapshot_index.0)?.checked_sub(1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `max` entries from `from` on.
    pub fn entries_from(&self, from: LogIndex, max: usize) -> Vec<Arc<Entry>> {
        let Some(offset) = from
            .0
            .checked_sub(self.snapshot_index.0)
            .and_then(|o| o.checked_sub(1))
        else {
            return Vec::new();
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(offset)
            .take(max)
            .cloned()
            .collect()
    }

    /// Appends an entry and returns its index.
    pub fn append(&mut self, entry: Entry) -> LogIndex {
        self.append_shared(Arc::new(entry))
    }

    /// Appends an entry already shared and returns its index.
    pub fn append_shared(&mut self, entry: Arc<Entry>) -> LogIndex {
        self.entries.push_back(entry);
        let index = self.last_index();
        self.unpersisted_from.get_or_insert(index);
        index
    }

    /// Drops the entries from `index` on.
    pub fn truncate_from(&mut self, index: LogIndex) {
        let keep = index
            .0
            .saturating_sub(self.snapshot_index.0)
            .saturating_sub(1);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        let from = self.unpersisted_from.map_or(index, |i| i.min(index));
        self.unpersisted_from = Some(from);
        // What replaces the dropped entries is not durable until the shell says so.
        self.durable = self.durable.min(index.prev());
    }

    /// Drops the entries up to `index` (inclusive), which a snapshot now covers.
    pub fn compact_to(&mut self, index: LogIndex, term: Term) {
        while self.snapshot_index < index {
            if self.entries.pop_front().is_none() {
                break;
            }
            self.snapshot_index = self.snapshot_index.after();
        }
        self.snapshot_index = index;
        self.snapshot_term = term;
        let after = index.after();
        self.unpersisted_from = self.unpersisted_from.map(|i| i.max(after));
    }

    /// Replaces the whole log with an empty one after a snapshot.
    pub fn reset(&mut self, index: LogIndex, term: Term) {
        let durable = self.durable;
        *self = Log::restore(index, term, Vec::new());
        // The snapshot is not durable until the shell says so.
        self.durable = durable.min(index);
    }

    /// The entries not yet handed to the shell to persist, with the index of the first;
    /// marks them handed over.
    pub fn take_unpersisted(&mut self) -> Option<(LogIndex, Vec<Arc<Entry>>)> {
        let first = self.unpersisted_from.take()?;
        Some((first, self.entries_from(first, usize::MAX)))
    }

    /// The shell reports the log durable up to `index` (what it was handed up to then).
    pub fn mark_durable(&mut self, index: LogIndex) {
        self.durable = self.durable.max(index.min(self.persisted_index()));
    }

    /// The last index known durable.
    pub fn durable_index(&self) -> LogIndex {
        self.durable.min(self.persisted_index())
    }

    /// The last index the shell has been told to persist.
    pub fn persisted_index(&self) -> LogIndex {
        match self.unpersisted_from {
            Some(first) => first.prev().min(self.last_index()),
            None => self.last_index(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seats::Command;

    fn entry(term: u64) -> Arc<Entry> {
        Arc::new(Entry {
            term: Term(term),
            command: Command::Noop,
        })
    }

    #[test]
    fn indexes_follow_the_snapshot() {
        let mut log = Log::restore(LogIndex(10), Term(2), vec![entry(2), entry(3)]);
        assert_eq!(log.last_index(), LogIndex(12));
        assert_eq!(log.snapshot_index(), LogIndex(10));
        assert_eq!(log.len(), 2, "entries held, the snapshot's not counted");
        assert_eq!(log.term_at(LogIndex(10)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(12)), Some(Term(3)));
        assert_eq!(log.term_at(LogIndex(9)), None);
        assert_eq!(log.take_unpersisted(), None);
        log.append_shared(entry(4));
        assert_eq!(log.take_unpersisted(), Some((LogIndex(13), vec![entry(4)])));
        assert_eq!(log.persisted_index(), LogIndex(13));
    }

    #[test]
    fn truncation_marks_the_tail_for_persisting() {
        let mut log = Log::restore(LogIndex(0), Term(0), vec![entry(1), entry(1), entry(1)]);
        log.truncate_from(LogIndex(2));
        assert_eq!(log.last_index(), LogIndex(1));
        // The shell must learn that entries from 2 on are gone, even with nothing new.
        assert_eq!(log.take_unpersisted(), Some((LogIndex(2), vec![])));
        log.append_shared(entry(2));
        assert_eq!(log.take_unpersisted(), Some((LogIndex(2), vec![entry(2)])));
    }

    #[test]
    fn compaction_keeps_later_entries() {
        let mut log = Log::restore(LogIndex(0), Term(0), vec![entry(1), entry(1), entry(2)]);
        log.compact_to(LogIndex(2), Term(1));
        assert_eq!(log.len(), 1);
        assert_eq!(log.get(LogIndex(3)), Some(&entry(2)));
        assert_eq!(log.entries_from(LogIndex(1), 10), vec![]);
        assert_eq!(log.entries_from(LogIndex(3), 10), vec![entry(2)]);
    }

    #[test]
    fn only_what_the_shell_reported_synced_is_durable() {
        let mut log = Log::restore(LogIndex(0), Term(0), vec![entry(1), entry(1)]);
        // What was loaded from disk is durable.
        assert_eq!(log.durable_index(), LogIndex(2));
        log.append_shared(entry(2));
        log.append_shared(entry(2));
        // Not yet handed to the shell: a report cannot cover it.
        log.mark_durable(LogIndex(4));
        assert_eq!(log.durable_index(), LogIndex(2));
        assert!(log.take_unpersisted().is_some());
        log.mark_durable(LogIndex(3));
        assert_eq!(log.durable_index(), LogIndex(3));
        // A late report never moves it back.
        log.mark_durable(LogIndex(1));
        assert_eq!(log.durable_index(), LogIndex(3));
        // Entries that replace truncated ones are not durable until reported again.
        log.truncate_from(LogIndex(3));
        assert_eq!(log.durable_index(), LogIndex(2));
        log.append_shared(entry(3));
        assert_eq!(log.durable_index(), LogIndex(2));
        assert!(log.take_unpersisted().is_some());
        log.mark_durable(LogIndex(3));
        assert_eq!(log.durable_index(), LogIndex(3));
    }

    #[test]
    fn a_snapshot_reset_is_durable_only_once_reported() {
        let mut log = Log::restore(LogIndex(0), Term(0), vec![entry(1)]);
        log.reset(LogIndex(50), Term(4));
        assert_eq!(log.durable_index(), LogIndex(1));
        log.mark_durable(LogIndex(50));
        assert_eq!(log.durable_index(), LogIndex(50));
    }
}
