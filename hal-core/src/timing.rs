//! The protocol's timing settings, as data (DESIGN §8), with the LAN and WAN presets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every timer of the server triad and the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// How often the leader sends to each peer when it has nothing else to say.
    pub peer_heartbeat: Duration,
    /// How long without a leader before #1 campaigns; also how long a leader may go
    /// without hearing from a majority before it steps down.
    pub election_timeout: Duration,
    /// How much longer than #1 server #2 waits before it campaigns.
    pub failover_delay: Duration,
    /// How long #1 must have been reachable without interruption before it takes the
    /// active role back from #2.
    pub failback_hold: Duration,
    /// How long a client's seat lives without an acknowledged heartbeat.
    pub client_lease: Duration,
    /// How often a client heartbeats.
    pub client_heartbeat: Duration,
    /// The most two servers' wall clocks may differ; borrowed seats are kept this much
    /// past their end.
    pub max_clock_skew: Duration,
}

impl Timing {
    /// Servers on one LAN.
    pub const fn lan() -> Timing {
        Timing {
            peer_heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_secs(1),
            failover_delay: Duration::from_millis(500),
            failback_hold: Duration::from_secs(10),
            client_lease: Duration::from_secs(120),
            client_heartbeat: Duration::from_secs(30),
            max_clock_skew: Duration::from_secs(300),
        }
    }

    /// Servers spread over a WAN.
    pub const fn wan() -> Timing {
        Timing {
            peer_heartbeat: Duration::from_millis(500),
            election_timeout: Duration::from_secs(5),
            failover_delay: Duration::from_secs(2),
            failback_hold: Duration::from_secs(120),
            client_lease: Duration::from_secs(300),
            client_heartbeat: Duration::from_secs(60),
            max_clock_skew: Duration::from_secs(300),
        }
    }

    /// How long a leader may serve after the send time of the newest heartbeat round a
    /// majority acknowledged. Followers refuse to vote for anyone else for
    /// `election_timeout` after they last heard the leader; a tenth is kept back for
    /// clocks that run at slightly different rates.
    pub fn leader_lease(&self) -> Duration {
        let timeout = self.election_timeout;
        timeout.saturating_sub(fraction(timeout, 10))
    }

    /// How long after last hearing the leader a server still refuses to vote for anyone
    /// else. A little shorter than the election timeout, so that a candidate whose own
    /// timer ran out is not turned down by a voter whose clock runs a little slow; still
    /// longer than the leader lease, so no new leader can exist while the old one serves.
    pub fn leader_stickiness(&self) -> Duration {
        let timeout = self.election_timeout;
        timeout.saturating_sub(fraction(timeout, 20))
    }

    /// How long past a client's lease a server waits before it expires the seat: covers
    /// clock rate differences between client and server.
    pub fn expiry_margin(&self) -> Duration {
        self.election_timeout
    }

    /// How long a server keeps a seat after its last heartbeat: the client's lease plus
    /// the [`Timing::expiry_margin`].
    pub fn seat_lease(&self) -> Duration {
        self.client_lease.saturating_add(self.expiry_margin())
    }

    /// How long a client keeps retrying one request before it gives up: long enough to
    /// ride out a failover (four of them).
    pub fn client_give_up_after(&self) -> Duration {
        self.election_timeout
            .saturating_add(self.failover_delay)
            .saturating_mul(4)
    }

    /// How long a client keeps asking while every server that answers says it has no
    /// majority (and none is electing a leader, or may have acted on the request): one
    /// failover's time and half an election more (2 s on a LAN). A majority that has not
    /// formed by then is not forming, and the application hears so instead of waiting
    /// out [`Timing::client_give_up_after`].
    pub fn client_no_majority_give_up(&self) -> Duration {
        self.election_timeout
            .saturating_add(self.failover_delay)
            .saturating_add(self.election_timeout.checked_div(2).unwrap_or_default())
    }

    /// How long a session without a seat is kept before it is forgotten: past both a
    /// seat's lease and every retry its client may still send (so a retry always meets
    /// the session that remembers its answer), plus the expiry margin for clock rates.
    pub fn session_idle_max(&self) -> Duration {
        self.seat_lease()
            .max(self.client_give_up_after())
            .saturating_add(self.expiry_margin())
    }

    /// How long a gap in contact with a peer counts as an interruption (for failback).
    pub fn contact_gap_max(&self) -> Duration {
        fraction(self.election_timeout, 2)
    }

    /// How soon a campaigning server asks again after a round that failed.
    pub fn election_retry(&self) -> Duration {
        fraction(self.election_timeout, 4)
    }

    /// Checks the relations the protocol relies on; returns what is wrong.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.peer_heartbeat.is_zero() || self.client_heartbeat.is_zero() {
            return Err("heartbeat intervals must be more than zero");
        }
        if self.election_timeout < self.peer_heartbeat.saturating_mul(3) {
            return Err("election_timeout must be at least three peer heartbeats");
        }
        if self.client_lease < self.client_heartbeat.saturating_mul(2) {
            return Err("client_lease must be at least two client heartbeats");
        }
        Ok(())
    }
}

/// `d` divided by `parts` (which is never zero here).
pub(crate) fn fraction(d: Duration, parts: u32) -> Duration {
    d.checked_div(parts).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_follow_design_section_8() {
        assert_eq!(Timing::lan().validate(), Ok(()));
        assert_eq!(Timing::wan().validate(), Ok(()));
        assert_eq!(Timing::lan().election_timeout, Duration::from_secs(1));
        assert_eq!(Timing::wan().failback_hold, Duration::from_secs(120));
    }

    #[test]
    fn voters_stay_loyal_longer_than_a_leader_serves_but_not_past_a_timeout() {
        for t in [Timing::lan(), Timing::wan()] {
            assert!(t.leader_lease() < t.leader_stickiness());
            assert!(t.leader_stickiness() < t.election_timeout);
            assert!(t.expiry_margin() >= t.leader_stickiness() - t.leader_lease());
        }
    }

    #[test]
    fn bad_relations_are_refused() {
        let mut t = Timing::lan();
        t.election_timeout = Duration::from_millis(200);
        assert!(t.validate().is_err());
        let mut t = Timing::lan();
        t.client_lease = Duration::from_secs(40);
        assert!(t.validate().is_err());
    }
}
