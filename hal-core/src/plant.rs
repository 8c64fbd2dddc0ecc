//! Bugs planted on purpose, to measure how well the simulator finds bugs: each [`Plant`]
//! breaks one rule of the protocol the way a plausible mistake would, and the simulator's
//! sweep must catch it (`hal-sim plants`, README "Planted bugs").
//!
//! A bug is switched on per server or client through [`Plants`], carried in their
//! configs. Only a build with the `plant` feature can switch one on: without it, `Plants`
//! is empty and [`Plants::has`] is the constant `false`, so every planted branch is dead
//! code the compiler removes. A release build with the feature does not compile.

#[cfg(all(feature = "plant", not(debug_assertions)))]
compile_error!(
    "hal-core's `plant` feature plants bugs on purpose: it is for the simulator's measurement \
     (a debug build), never for a release build"
);

/// One planted bug of hal-core, or of hal-net's storage (which takes the same [`Plants`]
/// in its config). (The simulator plants others of its own: a license with twice the
/// COUNT, a disk whose sync does nothing, servers that believe a hello.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plant {
    /// #2 hands the role back to #1 as soon as #1 has caught up, without waiting out
    /// `failback_hold`.
    FailbackBeforeHold,
    /// The client counts its lease from the reply that renewed it, not from the send of
    /// the request.
    LeaseFromReply,
    /// COUNT is checked only when a grant is proposed, against the seats already applied:
    /// grants in flight are not counted, and apply does not check again.
    CountAtProposeOnly,
    /// A retried request is served afresh: neither the session table nor the proposals in
    /// flight are consulted.
    RetriesNotDeduplicated,
    /// A server whose log is more up to date than a candidate's never donates it.
    NoDonation,
    /// A vote is granted without Raft's vote restriction (the candidate's log at least as
    /// up to date).
    NoVoteRestriction,
    /// #2 grants borrows too.
    BorrowBy2,
    /// A borrowed seat expires at its end, without the `max_clock_skew` margin.
    ExpiryWithoutSkewMargin,
    /// A leader that has not heard from a majority keeps leading (no check-quorum step
    /// down): it goes on answering requests and renewing leases as if it held its
    /// leader lease.
    NoStepDown,
    /// An installed snapshot's seat table is taken without its client sessions (each
    /// client's last request and its answer).
    SnapshotWithoutSessions,
    /// A heartbeat renews the lease of every checked-out seat, whoever holds it.
    LeaseRenewedByAnyHeartbeat,
    /// hal-net's storage: recovery takes a log record that a crash tore for corruption,
    /// and refuses to start, as if a crash could not cut an append short.
    TornTailIsCorruption,
}

impl Plant {
    /// Every planted bug of hal-core.
    pub const ALL: [Plant; 12] = [
        Plant::FailbackBeforeHold,
        Plant::LeaseFromReply,
        Plant::CountAtProposeOnly,
        Plant::RetriesNotDeduplicated,
        Plant::NoDonation,
        Plant::NoVoteRestriction,
        Plant::BorrowBy2,
        Plant::ExpiryWithoutSkewMargin,
        Plant::NoStepDown,
        Plant::SnapshotWithoutSessions,
        Plant::LeaseRenewedByAnyHeartbeat,
        Plant::TornTailIsCorruption,
    ];

    /// The name `hal-sim --plant` takes.
    pub fn name(self) -> &'static str {
        match self {
            Plant::FailbackBeforeHold => "failback-before-hold",
            Plant::LeaseFromReply => "lease-from-reply",
            Plant::CountAtProposeOnly => "count-at-propose-only",
            Plant::RetriesNotDeduplicated => "retries-not-deduplicated",
            Plant::NoDonation => "no-donation",
            Plant::NoVoteRestriction => "no-vote-restriction",
            Plant::BorrowBy2 => "borrow-by-2",
            Plant::ExpiryWithoutSkewMargin => "expiry-without-skew-margin",
            Plant::NoStepDown => "no-step-down",
            Plant::SnapshotWithoutSessions => "snapshot-without-sessions",
            Plant::LeaseRenewedByAnyHeartbeat => "lease-renewed-by-any-heartbeat",
            Plant::TornTailIsCorruption => "torn-tail-is-corruption",
        }
    }
}

/// The bugs planted in one server or client: none, unless built with the `plant` feature
/// and [`Plants::only`] says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plants {
    #[cfg(feature = "plant")]
    planted: Option<Plant>,
}

impl Plants {
    /// No bug.
    pub const NONE: Plants = Plants {
        #[cfg(feature = "plant")]
        planted: None,
    };

    /// Exactly the bug `plant`.
    #[cfg(feature = "plant")]
    pub fn only(plant: Plant) -> Plants {
        Plants {
            planted: Some(plant),
        }
    }

    /// Whether `plant` is planted: always `false` without the `plant` feature.
    #[inline(always)]
    pub fn has(self, plant: Plant) -> bool {
        #[cfg(feature = "plant")]
        {
            self.planted == Some(plant)
        }
        #[cfg(not(feature = "plant"))]
        {
            let _ = plant;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<&str> = Plant::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Plant::ALL.len());
    }

    #[test]
    fn nothing_is_planted_by_default() {
        for plant in Plant::ALL {
            assert!(!Plants::NONE.has(plant));
            assert!(!Plants::default().has(plant));
        }
    }

    #[cfg(feature = "plant")]
    #[test]
    fn only_plants_one() {
        let plants = Plants::only(Plant::BorrowBy2);
        for plant in Plant::ALL {
            assert_eq!(plants.has(plant), plant == Plant::BorrowBy2);
        }
    }
}
