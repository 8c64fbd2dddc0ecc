//! A checkout waiting in its feature's queue ([`Client::checkout_wait`]): asked again
//! every heartbeat with the same number, which keeps its place on the servers; answered
//! with its position, or with the seat once its turn comes (the active server sends that
//! answer unasked as soon as the seat is granted). When its wait is over it asks to
//! leave the queue; a seat granted in the meantime is taken all the same.

use std::time::Duration;

use super::{Client, ClientEvent, Endpoint, HeldSeat, Transmit, UNRESOLVED_MAX, Unresolved};
use crate::protocol::{ClientRequest, Denial, Op, ReplyResult, ServerReply};

impl Client {
    /// How often a waiting request asks again: as often as it would heartbeat a seat
    /// (its place lasts a lease unasked), and at least once per failover: the active
    /// server tells it of its seat over the connection it asked on, so after a failover
    /// it must have asked the new active server before it can be told at once.
    pub(super) fn wait_ask_every(&self) -> Duration {
        let timing = &self.config.timing;
        self.heartbeat_every().min(
            timing
                .election_timeout
                .saturating_add(timing.failover_delay),
        )
    }

    /// Sends the waiting request's ask (or its request to leave) if one is due.
    pub(super) fn ask_waiting(&mut self) {
        let now = self.now.mono;
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        if waiting.asked.is_some() || waiting.next_ask > now {
            return;
        }
        let passed = |e: &Endpoint| {
            waiting
                .passed_over_until
                .get(usize::from(e.0))
                .copied()
                .flatten()
                .is_some_and(|until| now < until)
        };
        let to = self
            .order
            .iter()
            .copied()
            .find(|e| !passed(e))
            .unwrap_or_else(|| self.preferred());
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        let op = match waiting.leaving {
            Some(_) => Op::StopWaiting,
            None => waiting.op.clone(),
        };
        waiting.asked = Some((to, now));
        waiting.last_sent = now;
        waiting.attempts = waiting.attempts.saturating_add(1);
        let request = ClientRequest {
            client: self.id,
            seq: waiting.wire,
            op,
        };
        self.transmits.push_back(Transmit { to, request });
    }

    /// Time for the waiting request: an ask that got no answer in time goes to the next
    /// server; a wait that is over asks to leave; one that cannot leave is given up.
    pub(super) fn wait_timeout(&mut self) {
        let now = self.now.mono;
        let timeout = self.config.request_timeout;
        let give_up = self.config.give_up_after;
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        let unanswered = waiting
            .asked
            .filter(|(_, sent)| now.since(*sent) >= timeout)
            .map(|(endpoint, _)| endpoint);
        if let Some(endpoint) = unanswered {
            self.wait_missed(endpoint, true);
        }
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        match waiting.leaving {
            None if now >= waiting.until => {
                waiting.leaving = Some(now);
                waiting.next_ask = now;
                waiting.asked = None;
            }
            Some(since) if now.since(since) >= give_up => {
                // No server answered the request to leave: the servers drop the place
                // once it is not renewed, and a seat it may have got is settled later.
                if let Some(waiting) = self.waiting.take() {
                    if self.unresolved.len() >= UNRESOLVED_MAX {
                        self.unresolved.pop_front();
                    }
                    self.unresolved.push_back(Unresolved {
                        seq: waiting.seq,
                        wire: waiting.wire,
                        op: Op::StopWaiting,
                        since: now,
                        report: true,
                    });
                    self.events.push_back(ClientEvent::OutcomeUnknown {
                        seq: waiting.seq,
                        attempts: waiting.attempts,
                        last_denial: Some(Denial::AllInUse {
                            used: waiting.used,
                            count: waiting.count,
                        }),
                    });
                }
                self.start_next();
                return;
            }
            _ => {}
        }
        self.ask_waiting();
    }

    /// The waiting request's ask at `endpoint` found no active server: it failed or got
    /// no answer (`silent`: that server is passed over for as long as a failover takes),
    /// or was refused. The next server is asked at once, and after a whole round of the
    /// path, after a pause.
    pub(super) fn wait_missed(&mut self, endpoint: Endpoint, silent: bool) {
        let now = self.now.mono;
        let timing = self.config.timing;
        let (pause, path_len) = (self.config.retry_pause, self.order.len());
        self.demote(endpoint);
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        waiting.asked = None;
        if silent && let Some(slot) = waiting.passed_over_until.get_mut(usize::from(endpoint.0)) {
            *slot = Some(now + timing.election_timeout + timing.failover_delay);
        }
        waiting.misses = waiting.misses.saturating_add(1);
        waiting.next_ask = if waiting.misses < path_len {
            now
        } else {
            waiting.misses = 0;
            now + pause
        };
        self.ask_waiting();
    }

    /// A server's answer to the waiting request.
    pub(super) fn on_wait_reply(&mut self, from: Endpoint, reply: ServerReply) {
        let now = self.now.mono;
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        if waiting.asked.is_some_and(|(e, _)| e == from) {
            waiting.asked = None;
        }
        match reply.result {
            ReplyResult::Queued {
                position,
                used,
                count,
                lease_ms,
            } => {
                self.lease_ms_last = Some(lease_ms);
                let every = self.wait_ask_every();
                let Some(waiting) = self.waiting.as_mut() else {
                    return;
                };
                waiting.misses = 0;
                waiting.next_ask = now + every;
                waiting.used = used;
                waiting.count = count;
                let moved = waiting.position != position;
                waiting.position = position;
                let (seq, leaving) = (waiting.seq, waiting.leaving.is_some());
                if leaving {
                    // An answer to an earlier ask: ask to leave again.
                    waiting.next_ask = now;
                }
                self.served_by(reply.from);
                if moved && !leaving {
                    self.events.push_back(ClientEvent::Queued {
                        seq,
                        position,
                        used,
                        count,
                    });
                }
            }
            ReplyResult::Granted {
                handle,
                lease_ms,
                borrow_end,
                granted_by,
            } => {
                let Some(waiting) = self.waiting.take() else {
                    return;
                };
                let feature = match &waiting.op {
                    Op::Wait { feature, .. } => feature.to_string(),
                    _ => String::new(),
                };
                // The server started the lease when the grant applied, after the
                // latest ask went: counting from that ask is never later.
                self.lease_ms_last = Some(lease_ms);
                self.seats.insert(
                    handle,
                    HeldSeat {
                        feature,
                        lease_until: Some(waiting.last_sent + Duration::from_millis(lease_ms)),
                        borrow_end,
                        borrow_until: None,
                    },
                );
                self.served_by(reply.from);
                self.events.push_back(ClientEvent::Granted {
                    seq: waiting.seq,
                    handle,
                    server: reply.from,
                    granted_by,
                    borrow_end,
                    attempts: waiting.attempts,
                });
                self.schedule_heartbeat();
                self.start_next();
            }
            ReplyResult::LeftQueue if waiting.leaving.is_some() => {
                if let Some(waiting) = self.waiting.take() {
                    self.events.push_back(ClientEvent::Denied {
                        seq: waiting.seq,
                        reason: Denial::AllInUse {
                            used: waiting.used,
                            count: waiting.count,
                        },
                        attempts: waiting.attempts,
                    });
                }
                self.start_next();
            }
            // Its place was dropped (not renewed for a lease: the client was cut off), or
            // the seat it got lapsed before this client heard of it: it joins again,
            // at the end.
            ReplyResult::LeftQueue | ReplyResult::Denied(Denial::UnknownHandle) => {
                let wire = self.take_seq();
                if let Some(waiting) = self.waiting.as_mut() {
                    waiting.wire = wire;
                    waiting.next_ask = now;
                    waiting.asked = None;
                }
            }
            ReplyResult::Denied(denial) if denial.try_elsewhere() => {
                // Follows a hint to a server not passed over; else the next server.
                let hinted = match denial {
                    Denial::NotActive { active: Some(id) } => self.known.get(&id).copied(),
                    _ => None,
                };
                let followed = hinted.is_some_and(|e| {
                    e != from
                        && self.waiting.as_ref().is_some_and(|w| {
                            w.passed_over_until
                                .get(usize::from(e.0))
                                .copied()
                                .flatten()
                                .is_none_or(|until| now >= until)
                        })
                });
                match hinted.filter(|_| followed) {
                    Some(_) => {
                        if let Denial::NotActive { active: Some(id) } = denial {
                            self.promote(id);
                        }
                        if let Some(waiting) = self.waiting.as_mut() {
                            waiting.next_ask = now;
                        }
                    }
                    None => self.wait_missed(from, false),
                }
            }
            ReplyResult::Denied(reason) => {
                // Refused for good (the options, a feature the license dropped).
                if let Some(waiting) = self.waiting.take() {
                    self.events.push_back(ClientEvent::Denied {
                        seq: waiting.seq,
                        reason,
                        attempts: waiting.attempts,
                    });
                }
                self.start_next();
            }
            // Not an answer to a wait (a lying server's): ignored.
            ReplyResult::Released { .. }
            | ReplyResult::HeartbeatAck { .. }
            | ReplyResult::Removed { .. }
            | ReplyResult::LicensePushed { .. }
            | ReplyResult::LicenseRefused { .. }
            | ReplyResult::OptionsPushed { .. }
            | ReplyResult::OptionsRefused { .. } => {}
        }
        self.ask_waiting();
    }
}
