//! The seats each client holds and until when, as the client library counts them: from
//! the application's "granted" until the checkin (or return) is sent, the borrow ends (a
//! borrowed seat has no lease), an administrator's removal applies, or the lease runs out, the lease
//! running from the first send (to the server that answered) of the request or heartbeat
//! that the server acknowledged, for the `lease_ms` it gave. Shared by the checkers that
//! need "does this client hold this seat now?".

use std::collections::BTreeMap;

use hal_core::record::{Answer, ClientEventRecord, OpName, Record, ReplyRecord};

/// Who holds a seat: (client, handle).
pub(crate) type Holder = (String, String);

/// A held seat.
#[derive(Debug)]
pub(crate) struct Held {
    pub feature: String,
    pub lease_until: u64,
    /// The record that granted it.
    pub granted: String,
}

#[derive(Debug, Default)]
pub(crate) struct Leases {
    pub held: BTreeMap<Holder, Held>,
    /// Seats whose lease ran out, not yet reported lost by their client: when it ran out,
    /// and the record that granted the seat.
    pub ended: BTreeMap<Holder, (u64, String)>,
    /// (client, req, server) → when the request first went to that server.
    first_sent: BTreeMap<(String, u64, u8), u64>,
    /// (client, req) → the lease of its granted reply.
    lease_ms: BTreeMap<(String, u64), u64>,
}

impl Leases {
    /// Follows one record. Returns the feature of a seat the record granted.
    pub fn observe(&mut self, record: &Record, line: &str) -> Option<String> {
        // A history's meta record has no time: it is the start of the run.
        let t = record.t_ms().unwrap_or(0);
        let ended = &mut self.ended;
        self.held.retain(|holder, seat| {
            let live = seat.lease_until > t;
            if !live {
                let granted = std::mem::take(&mut seat.granted);
                ended.insert(holder.clone(), (seat.lease_until, granted));
            }
            live
        });
        match record {
            Record::Request(request) => {
                // A send to no known server is not one a server can have acknowledged.
                if let Some(server) = request.server {
                    let key = (request.client.clone(), request.req, server);
                    self.first_sent.entry(key).or_insert(t);
                }
                if matches!(request.op, OpName::Checkin | OpName::Return)
                    && let Some(handle) = &request.handle
                {
                    self.release(&request.client, handle);
                }
            }
            Record::Reply(reply) => self.reply(reply),
            Record::Client(client) => match &client.event {
                ClientEventRecord::Granted {
                    req,
                    feature,
                    handle,
                    server,
                    borrow_end_ms,
                    ..
                } => {
                    let lease = self.lease_ms.get(&(client.client.clone(), *req)).copied();
                    let key = (client.client.clone(), *req, *server);
                    let sent = self.first_sent.get(&key).copied();
                    // A borrowed seat has no lease: it is held until it is returned or its
                    // client says the borrow ended.
                    let lease_until = if borrow_end_ms.is_some() {
                        u64::MAX
                    } else {
                        // A history the simulator writes has both the send and the
                        // granted reply. Without the send, the lease counts from the
                        // start of the run; without the reply, it has no end.
                        sent.unwrap_or(0)
                            .saturating_add(lease.unwrap_or(u64::MAX / 2))
                    };
                    let seat = Held {
                        feature: feature.clone(),
                        lease_until,
                        granted: line.to_string(),
                    };
                    self.held
                        .entry((client.client.clone(), handle.clone()))
                        .or_insert(seat);
                    return Some(feature.clone());
                }
                ClientEventRecord::Lost {
                    handle: Some(handle),
                }
                | ClientEventRecord::BorrowEnd {
                    handle: Some(handle),
                }
                | ClientEventRecord::Removed {
                    handle: Some(handle),
                } => self.release(&client.client, handle),
                _ => {}
            },
            // An administrator's removal takes the seat from its holder when the first
            // server applies it: from then on the seat may be someone else's, though
            // its holder hears of it only at its next heartbeat.
            Record::Removed(removed) => self.release(&removed.client, &removed.handle),
            _ => {}
        }
        None
    }

    /// A granted reply gives the request's lease; a heartbeat's acknowledgement extends
    /// the leases of the seats it names, from the heartbeat's first send to that server.
    fn reply(&mut self, reply: &ReplyRecord) {
        let beat = match &reply.answer {
            Answer::Granted(grant) => {
                let key = (reply.client.clone(), reply.req);
                self.lease_ms.entry(key).or_insert(grant.lease_ms);
                return;
            }
            Answer::Heartbeat(beat) => beat,
            _ => return,
        };
        let key = (reply.client.clone(), reply.req, reply.server);
        if let Some(sent) = self.first_sent.get(&key).copied() {
            let lease = beat.lease_ms;
            for handle in &beat.held {
                let holder = (reply.client.clone(), handle.clone());
                if let Some(seat) = self.held.get_mut(&holder) {
                    seat.lease_until = seat.lease_until.max(sent + lease);
                }
            }
        }
    }

    /// `client` no longer holds `handle`: it checked it in or returned it, its lease was
    /// lost, or its borrow ended.
    fn release(&mut self, client: &str, handle: &str) {
        let holder = (client.to_string(), handle.to_string());
        self.ended.remove(&holder);
        self.held.remove(&holder);
    }
}
