//! The invariants of DESIGN §6.3, checked while the world runs, plus Raft's election
//! safety (one leader per term). A violation is recorded with the time and what shows it;
//! tests assert there are none.

use std::collections::BTreeMap;

use hal_core::ServerId;
use hal_core::client::ClientEvent;
use hal_core::protocol::{Denial, Handle, ReplyResult, RequestSeq, ServerReply, Term};
use hal_core::server::Role;

use super::{Node, World, WorldConfig};

#[derive(Debug, Default)]
pub struct Checker {
    counts: BTreeMap<String, u32>,
    election_timeout_ms: u64,
    failover_delay_ms: u64,
    up: [bool; 3],
    /// The last time #1 was down or had no healthy connection to a live peer.
    primary_last_impaired: u64,
    /// The last time each server received a message from a peer.
    last_peer_message: [Option<u64>; 3],
    leaders: BTreeMap<Term, ServerId>,
    /// (client, seq) -> the handle granted for it.
    grants: BTreeMap<(usize, RequestSeq), Handle>,
    /// From when requests must be answered within `liveness_bound_ms`.
    pub liveness_from: Option<u64>,
    pub liveness_bound_ms: u64,
    pub violations: Vec<String>,
}

impl Checker {
    pub fn new(config: &WorldConfig) -> Checker {
        let t = config.timing;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Checker {
            counts: config
                .features
                .iter()
                .map(|f| (f.name.to_string(), f.count))
                .collect(),
            election_timeout_ms: ms(t.election_timeout),
            failover_delay_ms: ms(t.failover_delay),
            up: [false; 3],
            primary_last_impaired: 0,
            last_peer_message: [None; 3],
            leaders: BTreeMap::new(),
            grants: BTreeMap::new(),
            liveness_from: None,
            liveness_bound_ms: ms(t.failback_hold) + 6 * ms(t.election_timeout + t.failover_delay),
            violations: Vec::new(),
        }
    }

    fn violation(&mut self, t: u64, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(format!("t={t}ms: {what}"));
        }
    }

    pub fn server_up(&mut self, id: ServerId, t: u64) {
        self.up[id.index()] = true;
        if id == ServerId::PRIMARY {
            self.primary_last_impaired = t;
        }
    }

    pub fn server_down(&mut self, id: ServerId, t: u64) {
        self.up[id.index()] = false;
        if id == ServerId::PRIMARY {
            self.primary_last_impaired = t;
        }
    }

    pub fn dropped(&mut self, from: Node, to: Node, t: u64) {
        let primary = Node::Server(ServerId::PRIMARY);
        if from == primary || to == primary {
            self.primary_last_impaired = t;
        }
    }

    pub fn peer_message(&mut self, to: ServerId, _from: ServerId, t: u64) {
        self.last_peer_message[to.index()] = Some(t);
    }

    /// Invariant 2 (role rule, for #2 taking over) and election safety.
    pub fn role_changed(&mut self, id: ServerId, role: Role, term: Term, t: u64) {
        if role != Role::Active {
            return;
        }
        if let Some(other) = self.leaders.insert(term, id)
            && other != id
        {
            self.violation(
                t,
                format!("election safety: {other} and {id} both led term {term}"),
            );
        }
        let window = 2 * (self.election_timeout_ms + self.failover_delay_ms);
        if id == ServerId::SECONDARY && self.primary_last_impaired + window < t {
            let since = self.primary_last_impaired;
            self.violation(t, format!("role rule: #2 became active in term {term} though #1 was up and connected since t={since}ms"));
        }
        if id == ServerId::TIEBREAKER {
            self.violation(t, "role rule: #3 became active".to_string());
        }
    }

    /// Invariants 2, 3, 4 and 5, at the moment a server sends a reply.
    pub fn server_reply(
        &mut self,
        world: &World,
        from: ServerId,
        client: usize,
        reply: &ServerReply,
    ) {
        let t = world.t;
        match &reply.result {
            ReplyResult::Granted {
                handle,
                borrow_end,
                granted_by,
                ..
            } => {
                if from == ServerId::TIEBREAKER || *granted_by == ServerId::TIEBREAKER {
                    self.violation(t, format!("role rule: #3 granted {handle}"));
                }
                // A retry after a failover repeats the original answer: the grant was
                // decided by `granted_by`.
                if borrow_end.is_some() && *granted_by != ServerId::PRIMARY {
                    self.violation(
                        t,
                        format!("role rule: {granted_by} granted borrow {handle}"),
                    );
                }
                let heard = self.last_peer_message[from.index()];
                if heard.is_none_or(|h| t.saturating_sub(h) > self.election_timeout_ms) {
                    self.violation(t, format!("majority rule: {from} granted {handle} without a live peer (last heard {heard:?})"));
                }
                let key = (client, reply.seq);
                match self.grants.get(&key) {
                    Some(first) if first != handle => {
                        self.violation(t, format!("one request, one seat: client {client} seq {:?} got {first} and {handle}", reply.seq));
                    }
                    _ => {
                        self.grants.insert(key, *handle);
                    }
                }
            }
            ReplyResult::HeartbeatAck { unknown, .. } => {
                for handle in unknown {
                    self.check_not_lost(world, client, *handle, from);
                }
            }
            _ => {}
        }
    }

    /// Invariant 4: "unknown handle" only for a seat whose lease is over.
    fn check_not_lost(&mut self, world: &World, client: usize, handle: Handle, from: ServerId) {
        let slot = &world.clients[client];
        if slot.released.contains(&handle) {
            return;
        }
        let Some(seat) = slot.client.seats().get(&handle) else {
            return;
        };
        let alive = seat.lease_until.is_some_and(|until| until.0 > world.t)
            || seat.borrow_end.is_some_and(|end| end > world.wall_now());
        if alive {
            self.violation(world.t, format!("lost seat: {from} says {handle} of client {client} is unknown while its lease runs until {:?}", seat.lease_until));
        }
    }

    /// Invariant 1: at no instant do clients hold more seats of a feature than COUNT, and
    /// no seat is held by two clients.
    pub fn check_holdings(&mut self, world: &World) {
        if world.primary_impaired() {
            self.primary_last_impaired = world.t;
        }
        let mut used: BTreeMap<&str, u32> = BTreeMap::new();
        let mut holders: BTreeMap<Handle, usize> = BTreeMap::new();
        let mut found = Vec::new();
        for (i, slot) in world.clients.iter().enumerate() {
            for (handle, seat) in slot.client.seats() {
                let alive = seat.lease_until.is_some_and(|until| until.0 > world.t)
                    || seat.borrow_end.is_some_and(|end| end > world.wall_now());
                if !alive || slot.released.contains(handle) {
                    continue;
                }
                *used.entry(seat.feature.as_str()).or_default() += 1;
                if let Some(other) = holders.insert(*handle, i) {
                    found.push(format!("seat {handle} held by clients {other} and {i}"));
                }
            }
        }
        for (feature, n) in used {
            let count = self.counts.get(feature).copied().unwrap_or(0);
            if n > count {
                found.push(format!(
                    "overuse: {n} seats of {feature} held, COUNT {count}"
                ));
            }
        }
        for what in found {
            self.violation(world.t, what);
        }
    }

    /// Invariant 6, at each answer the application sees.
    pub fn client_event(
        &mut self,
        client: usize,
        event: &ClientEvent,
        t: u64,
        asked_at: Option<u64>,
    ) {
        let Some(from) = self.liveness_from else {
            return;
        };
        let Some(asked) = asked_at.filter(|a| *a >= from) else {
            return;
        };
        let acceptable = match event {
            ClientEvent::Granted { .. } | ClientEvent::Released { .. } => true,
            ClientEvent::OutcomeUnknown { .. } => false,
            ClientEvent::Denied { reason, .. } => matches!(
                reason,
                Denial::AllInUse { .. } | Denial::UnknownHandle | Denial::BorrowUnavailable
            ),
            _ => return,
        };
        if !acceptable {
            self.violation(
                t,
                format!("liveness: client {client} was told {event:?} in the liveness phase"),
            );
        } else if t - asked > self.liveness_bound_ms {
            self.violation(
                t,
                format!(
                    "liveness: client {client} waited {}ms (bound {}ms)",
                    t - asked,
                    self.liveness_bound_ms
                ),
            );
        }
    }

    /// Invariant 6 at the end: no request of the liveness phase is left unanswered.
    pub fn check_unanswered(&mut self, world: &World) {
        let Some(from) = self.liveness_from else {
            return;
        };
        for (i, slot) in world.clients.iter().enumerate() {
            for (seq, asked) in &slot.asked {
                if *asked < from || world.t - asked <= self.liveness_bound_ms {
                    continue;
                }
                if world.answer(i, *seq).is_none() {
                    self.violation(
                        world.t,
                        format!(
                            "liveness: client {i} request {seq:?} asked at {asked}ms unanswered"
                        ),
                    );
                }
            }
        }
    }
}
