//! Who could talk to whom, from the fault records: which servers are up, which directed
//! links are cut (partitions, one-way cuts, holds), and which links are unreliable
//! (flapping or slow, where "connected" cannot be told from the history alone).
//! Shared by the checkers of the role and majority rules.

use hal_core::record::{Fault, FaultKind, LinkState, Record};

/// The triad's connectivity over time, as the fault records tell it.
#[derive(Debug)]
pub(super) struct Links {
    up: [bool; 3],
    /// `cut[a][b]`: what `a` sends to `b` is lost or held.
    cut: [[bool; 3]; 3],
    /// `shaky[a][b]`: the link flaps or is slow.
    shaky: [[bool; 3]; 3],
    /// Per server, since when it has been up and connected to a live peer (None: not now).
    connected_since: [Option<u64>; 3],
    /// Per server, when it last stopped being up and connected.
    disconnected_at: [Option<u64>; 3],
    /// Per server, since when it has been up with a steady link (whole both ways, not
    /// flapping or slow) to a live peer, without a break (None: not now).
    steady_since: [Option<u64>; 3],
}

impl Default for Links {
    fn default() -> Links {
        Links {
            up: [true; 3],
            cut: [[false; 3]; 3],
            shaky: [[false; 3]; 3],
            connected_since: [Some(0); 3],
            disconnected_at: [None; 3],
            steady_since: [Some(0); 3],
        }
    }
}

/// The 0-based slots of the servers 1 to 3 in `servers` (client machines are left out
/// before: they are not links of the triad).
fn slots(servers: impl Iterator<Item = u8>) -> Vec<usize> {
    servers
        .filter(|id| (1..=3).contains(id))
        .map(|id| usize::from(id) - 1)
        .collect()
}

impl Links {
    /// Server slot `s` (0-based) is up and can exchange messages with a live peer.
    fn connected_now(&self, s: usize) -> bool {
        self.up[s] && (0..3).any(|p| p != s && self.up[p] && !self.cut[s][p] && !self.cut[p][s])
    }

    /// Slot `s` is up and has a steady link to a live peer: whole both ways, neither
    /// flapping nor slow (over such a link "connected" cannot be told from the history,
    /// and the servers rightly take its gaps for interruptions).
    fn steady_now(&self, s: usize) -> bool {
        self.up[s]
            && (0..3).any(|p| {
                p != s
                    && self.up[p]
                    && !self.cut[s][p]
                    && !self.cut[p][s]
                    && !self.shaky[s][p]
                    && !self.shaky[p][s]
            })
    }

    /// Since when slot `s` has been up and steadily connected to a peer (either one, not
    /// always the same) without a break.
    pub fn steady_since(&self, s: usize) -> Option<u64> {
        self.steady_since[s]
    }

    /// Since when slot `s` has been up and connected to a live peer (over any link, steady
    /// or not) without a break: the earliest it can have been reachable.
    pub fn connected_since(&self, s: usize) -> Option<u64> {
        self.connected_since[s]
    }

    /// Whether any link of slot `s` is unreliable (then connectivity is not judged).
    pub fn shaky(&self, s: usize) -> bool {
        (0..3).any(|p| self.shaky[s][p] || self.shaky[p][s])
    }

    /// Whether slot `s` was up and connected at some time in `[from, to]`.
    pub fn connected_during(&self, s: usize, from: u64) -> bool {
        self.connected_since[s].is_some() || self.disconnected_at[s].is_some_and(|at| at >= from)
    }

    /// Follows a fault record.
    pub fn observe(&mut self, record: &Record) {
        if let Record::Fault(fault) = record {
            self.fault(fault);
        }
    }

    fn fault(&mut self, fault: &Fault) {
        let t = fault.t_ms;
        let (a, b) = (slots(fault.servers_a()), slots(fault.servers_b()));
        let both = |links: &mut [[bool; 3]; 3], value: bool| {
            for &x in &a {
                for &y in &b {
                    links[x][y] = value;
                    links[y][x] = value;
                }
            }
        };
        match fault.fault {
            FaultKind::Crash | FaultKind::Stop => a.iter().for_each(|&s| self.up[s] = false),
            FaultKind::Restart => {
                for &s in &a {
                    if self.up[s] {
                        // A running server restarted (a service restart): down and up
                        // again at once, a break all the same.
                        self.connected_since[s] = None;
                        self.steady_since[s] = None;
                        self.disconnected_at[s] = Some(t);
                    }
                    self.up[s] = true;
                }
            }
            FaultKind::Partition | FaultKind::Hold => both(&mut self.cut, true),
            FaultKind::Repair | FaultKind::Release => both(&mut self.cut, false),
            FaultKind::PartitionOneway => a
                .iter()
                .for_each(|&x| b.iter().for_each(|&y| self.cut[x][y] = true)),
            FaultKind::RepairOneway => a
                .iter()
                .for_each(|&x| b.iter().for_each(|&y| self.cut[x][y] = false)),
            // A link fault without a state is taken as unreliable, not as healed.
            FaultKind::Link => both(&mut self.shaky, fault.state != Some(LinkState::Normal)),
            FaultKind::Clock => {}
        }
        for s in 0..3 {
            match (self.steady_now(s), self.steady_since[s]) {
                (true, None) => self.steady_since[s] = Some(t),
                (false, Some(_)) => self.steady_since[s] = None,
                _ => {}
            }
            match (self.connected_now(s), self.connected_since[s]) {
                (true, None) => self.connected_since[s] = Some(t),
                (false, Some(_)) => {
                    self.connected_since[s] = None;
                    self.disconnected_at[s] = Some(t);
                }
                _ => {}
            }
        }
    }
}
