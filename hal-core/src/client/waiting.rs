//! A checkout waiting in its feature's queue ([`Client::checkout_wait`]): asked again
//! every heartbeat with the same number, which keeps its place on the servers; answered
//! with its position, or with the seat once its turn comes (the active server sends that
//! answer unasked as soon as the seat is granted). When its wait is over it asks to
//! leave the queue; a seat granted in the meantime is taken all the same.

use std::time::Duration;

use super::{Client, ClientEvent, Endpoint, HeldSeat, Transmit, UNRESOLVED_MAX, Unresolved};
use crate::protocol::{ClientRequest, Denial, Op, ReplyResult, ServerReply};

impl Client {
    /// Sends the waiting request's ask (or its request to leave) if one is due.
    pub(super) fn ask_waiting(&mut self) {
        let now = self.now.mono;
        let to = self.preferred();
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        if waiting.asked.is_some() || waiting.next_ask > now {
            return;
        }
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
            waiting.asked = None;
            waiting.next_ask = now;
            self.demote(endpoint);
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

    /// A server's answer to the waiting request.
    pub(super) fn on_wait_reply(&mut self, from: Endpoint, reply: ServerReply) {
        let now = self.now.mono;
        let retry_pause = self.config.retry_pause;
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        let answered_ask = waiting.asked.is_some_and(|(e, _)| e == from);
        if answered_ask {
            waiting.asked = None;
            waiting.misses = 0;
        }
        match reply.result {
            ReplyResult::Queued {
                position,
                used,
                count,
                lease_ms,
            } => {
                self.lease_ms_last = Some(lease_ms);
                let every = self.heartbeat_every();
                let Some(waiting) = self.waiting.as_mut() else {
                    return;
                };
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
                self.look_elsewhere(from, &denial);
                let hinted = self.preferred() != from;
                if let Some(waiting) = self.waiting.as_mut() {
                    waiting.asked = None;
                    waiting.next_ask = if hinted { now } else { now + retry_pause };
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
