//! Probes: how the harness sees that its faults took effect (DESIGN §6.2: a fault that
//! did nothing is a harness bug).
//!
//! Beside its node, every server runs a prober that sends a small UDP datagram to each
//! peer every [`PROBE_EVERY`], over the same simulated links as the node's traffic (so
//! through the same partitions, holds and latencies), carrying how far the sender's own
//! wall clock is from true time. Each probe is logged when sent and when received; the
//! fault checks of [`crate::faults`] read the log. The probes are the harness's own, so
//! they do not depend on what the servers happen to send.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::ServerId;
use hal_net::clock::Clock;

use crate::clock::SimClock;
use crate::faults::{host, peers};
use crate::history::now_ms;

/// The UDP port every prober listens on.
pub const PROBE_PORT: u16 = 6201;
/// How often a prober sends to each peer.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// One probe from one server to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Simulated ms when it was sent.
    pub sent_ms: u64,
    /// The sender's wall clock minus true wall time, when it was sent.
    pub clock_error_ms: i64,
    /// Simulated ms when it arrived (None: not, or not yet).
    pub received_ms: Option<u64>,
}

/// Every probe of a run, per directed link `[from][to]`, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    log: Arc<Mutex<[[Vec<Probe>; 3]; 3]>>,
}

impl Probes {
    fn lock(&self) -> std::sync::MutexGuard<'_, [[Vec<Probe>; 3]; 3]> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a probe sent now; returns its sequence number on that link.
    fn sent(&self, from: ServerId, to: ServerId, clock_error_ms: i64) -> u32 {
        let mut log = self.lock();
        let link = &mut log[from.index()][to.index()];
        link.push(Probe {
            sent_ms: now_ms(),
            clock_error_ms,
            received_ms: None,
        });
        u32::try_from(link.len() - 1).unwrap_or(u32::MAX)
    }

    fn received(&self, from: ServerId, to: ServerId, seq: u32) {
        let mut log = self.lock();
        if let Some(probe) = log[from.index()][to.index()].get_mut(seq as usize)
            && probe.received_ms.is_none()
        {
            probe.received_ms = Some(now_ms());
        }
    }

    /// Logs a probe directly (for the checks' own tests).
    #[cfg(test)]
    pub(crate) fn record(&self, from: ServerId, to: ServerId, probe: Probe) {
        self.lock()[from.index()][to.index()].push(probe);
    }

    /// The probes `from` sent to `to` at simulated times in `[start_ms, end_ms]`.
    pub fn sent_between(
        &self,
        from: ServerId,
        to: ServerId,
        start_ms: u64,
        end_ms: u64,
    ) -> Vec<Probe> {
        self.lock()[from.index()][to.index()]
            .iter()
            .filter(|p| (start_ms..=end_ms).contains(&p.sent_ms))
            .copied()
            .collect()
    }
}

/// A datagram: the sender's id, then the probe's sequence number.
fn encode(from: ServerId, seq: u32) -> [u8; 5] {
    let [a, b, c, d] = seq.to_be_bytes();
    [from.get(), a, b, c, d]
}

fn decode(datagram: &[u8]) -> Option<(ServerId, u32)> {
    let [from, a, b, c, d] = *datagram else {
        return None;
    };
    Some((ServerId::new(from)?, u32::from_be_bytes([a, b, c, d])))
}

/// Server `me`'s prober: runs as long as the server's host does.
pub async fn run(me: ServerId, clock: SimClock, epoch_ms: u64, probes: Probes) -> io::Result<()> {
    let socket = turmoil::net::UdpSocket::bind(("0.0.0.0", PROBE_PORT)).await?;
    let peers = peers(me);
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buffer = [0u8; 16];
    loop {
        tokio::select! {
            _ = every.tick() => {
                let truth = epoch_ms as i64 + now_ms() as i64;
                let clock_error_ms = clock.now().wall.0 as i64 - truth;
                for &peer in &peers {
                    let seq = probes.sent(me, peer, clock_error_ms);
                    // A datagram the network refuses is a probe lost, as a cut would.
                    let _ = socket.send_to(&encode(me, seq), (host(peer), PROBE_PORT)).await;
                }
            }
            received = socket.recv_from(&mut buffer) => {
                let (len, _) = received?;
                if let Some((from, seq)) = decode(&buffer[..len]) {
                    probes.received(from, me, seq);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_round_trips_and_junk_is_refused() {
        let id = ServerId::new(2).unwrap_or(ServerId::PRIMARY);
        assert_eq!(decode(&encode(id, 70_000)), Some((id, 70_000)));
        assert_eq!(decode(&[9, 0, 0, 0, 1]), None, "no server #9");
        assert_eq!(decode(&[1, 0, 0]), None, "too short");
    }
}
