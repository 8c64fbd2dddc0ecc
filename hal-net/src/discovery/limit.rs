//! How many discovery answers a server sends: at most [`ANSWERS_PER_SECOND_MAX`] in each
//! second, and at most [`ANSWERS_PER_SOURCE_MAX`] of them to one source address, so that
//! a flood of requests (forged sources included) costs the server and its LAN a bounded
//! trickle. Pure: the caller passes the time.
//!
//! Seconds are fixed windows (`now_ms / 1000`) shared by all sources, so the table of
//! sources is emptied at each new second and holds at most the sources answered within
//! one: never more than [`ANSWERS_PER_SECOND_MAX`] entries, whatever arrives.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The most answers a server sends in one second: at most 128 datagrams no larger than
/// the requests they answer (a few hundred bytes), some 30 KB/s at worst.
pub const ANSWERS_PER_SECOND_MAX: u32 = 128;
/// The most answers it sends to one source address in one second. A client may send its
/// request twice (to the broadcast address and a multicast group) and once more when
/// nothing answered, and a terminal server starts many users' applications at once:
/// room for several searches a second from one machine.
pub const ANSWERS_PER_SOURCE_MAX: u32 = 16;

/// The answers sent in the current second.
#[derive(Debug, Clone, Default)]
pub struct Limit {
    second: u64,
    total: u32,
    per_source: BTreeMap<IpAddr, u32>,
}

impl Limit {
    /// Whether an answer to `source` may be sent at `now_ms` (ms on any monotonic
    /// scale); if so, it is counted.
    pub fn admit(&mut self, source: IpAddr, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        if second != self.second {
            self.second = second;
            self.total = 0;
            self.per_source.clear();
        }
        if self.total >= ANSWERS_PER_SECOND_MAX {
            return false;
        }
        let sent = self.per_source.entry(source).or_insert(0);
        if *sent >= ANSWERS_PER_SOURCE_MAX {
            return false;
        }
        *sent += 1;
        self.total += 1;
        debug_assert!(self.per_source.len() <= ANSWERS_PER_SECOND_MAX as usize);
        true
    }

    /// How many sources the table holds now (for tests: it stays bounded).
    pub fn sources(&self) -> usize {
        self.per_source.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn one_source_gets_a_few_answers_a_second() {
        let mut limit = Limit::default();
        let admitted = (0..100).filter(|_| limit.admit(ip(1), 5_000)).count();
        assert_eq!(admitted, ANSWERS_PER_SOURCE_MAX as usize);
        // Another source is not held back by the first.
        assert!(limit.admit(ip(2), 5_999));
        // The next second starts afresh.
        assert!(limit.admit(ip(1), 6_000));
    }

    #[test]
    fn all_sources_together_get_a_bounded_number_and_the_table_stays_small() {
        let mut limit = Limit::default();
        let admitted = (0..10_000).filter(|n| limit.admit(ip(*n), 1_000)).count();
        assert_eq!(admitted, ANSWERS_PER_SECOND_MAX as usize);
        assert_eq!(limit.sources(), ANSWERS_PER_SECOND_MAX as usize);
        assert!(limit.admit(ip(20_000), 2_000));
        assert_eq!(limit.sources(), 1);
    }

    #[test]
    fn time_going_backwards_only_starts_a_new_window() {
        let mut limit = Limit::default();
        for _ in 0..ANSWERS_PER_SOURCE_MAX {
            assert!(limit.admit(ip(1), 9_000));
        }
        assert!(!limit.admit(ip(1), 9_500));
        assert!(limit.admit(ip(1), 3_000));
    }
}
