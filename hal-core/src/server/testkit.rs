//! A driver for one [`Server`] in unit tests: it feeds inputs at chosen times and hands
//! back the drained outputs, so a test states a protocol rule as "given this state and
//! this message, the server sends (or does not send) that".

use std::sync::Arc;

use super::{Config, Durable, Output, Server, ServerEvent};
use crate::ServerId;
use crate::catalog::{Catalog, FeatureRules};
use crate::protocol::{
    ClientId, ClientRequest, Entry, LogIndex, Op, PeerBody, PeerMessage, RequestSeq, Term,
};
use crate::seats::Command;
use crate::time::{Now, Time, WallTime};
use crate::timing::Timing;

/// The instant `ms` after the start of a test.
pub(crate) fn at(ms: u64) -> Now {
    Now {
        mono: Time(ms),
        wall: WallTime(1_800_000_000_000 + ms),
    }
}

/// The license of every test: feature `cad`, five seats, borrows up to a day.
pub(crate) fn catalog() -> Catalog {
    let rules = FeatureRules {
        count: 5,
        borrow_hours_max: Some(24),
        start: None,
        end: None,
        hostid_ok: true,
    };
    Catalog::from_rules([("cad".to_string(), rules)])
}

/// One server under test, and the time it has reached.
pub(crate) struct Driver {
    pub server: Server,
    pub now_ms: u64,
}

impl Driver {
    /// Server `id` of a LAN triad, fresh, its first outputs drained.
    pub fn new(id: ServerId) -> Driver {
        Driver::with_config(Config::triad(id, Timing::lan()))
    }

    /// A fresh server set up by `config`, its first outputs drained (a single server
    /// leads at once).
    pub fn with_config(config: Config) -> Driver {
        let mut server = Server::new(config, catalog(), Durable::default(), at(0));
        while server.poll_output().is_some() {}
        Driver { server, now_ms: 0 }
    }

    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.server.poll_output()).collect()
    }

    /// Moves time on to `ms` (timeouts fire) and returns the outputs.
    pub fn tick_to(&mut self, ms: u64) -> Vec<Output> {
        self.now_ms = self.now_ms.max(ms);
        self.server.handle_timeout(at(self.now_ms));
        self.drain()
    }

    /// Moves time on to `ms` without firing timeouts: the next input comes before the
    /// shell's timer does.
    pub fn skip_to(&mut self, ms: u64) {
        self.now_ms = self.now_ms.max(ms);
    }

    /// Delivers `body` from `from` in the server's current term; returns the outputs.
    pub fn hear(&mut self, from: ServerId, body: PeerBody) -> Vec<Output> {
        let term = self.server.term();
        self.hear_in(from, term, body)
    }

    /// Delivers `body` from `from` in `term`; returns the outputs.
    pub fn hear_in(&mut self, from: ServerId, term: Term, body: PeerBody) -> Vec<Output> {
        let message = PeerMessage {
            from,
            to: self.server.id(),
            term,
            body,
        };
        self.server.handle_peer(at(self.now_ms), message);
        self.drain()
    }

    /// Delivers request `seq` of `client`; returns the outputs.
    pub fn ask(&mut self, client: u64, seq: u64, op: Op) -> Vec<Output> {
        let request = ClientRequest {
            client: ClientId(client),
            seq: RequestSeq(seq),
            op,
        };
        self.server.handle_client(at(self.now_ms), request);
        self.drain()
    }

    /// Runs timeouts, granting every (pre-)vote asked, until the server leads; returns
    /// the outputs of the last step.
    pub fn elect(&mut self) -> Vec<Output> {
        let mut last = Vec::new();
        while !self.server.is_leader() {
            assert!(self.now_ms < 60_000, "never elected");
            let mut queue = self.tick_to(self.now_ms + 50);
            while !queue.is_empty() {
                last = std::mem::take(&mut queue);
                for asked in peer_messages(&last) {
                    let granted = match asked.body {
                        PeerBody::PreVote { .. } => PeerBody::PreVoteReply { granted: true },
                        PeerBody::RequestVote { .. } => PeerBody::VoteReply { granted: true },
                        _ => continue,
                    };
                    queue.extend(self.hear_in(asked.to, asked.term, granted));
                }
            }
        }
        last
    }
}

/// The peer messages among `outputs`.
pub(crate) fn peer_messages(outputs: &[Output]) -> Vec<PeerMessage> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Peer(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The state digests `outputs` report: (index, digest, installed).
pub(crate) fn checkpoints(outputs: &[Output]) -> Vec<(LogIndex, u64, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(ServerEvent::Checkpoint {
                index,
                digest,
                installed,
            }) => Some((*index, *digest, *installed)),
            _ => None,
        })
        .collect()
}

/// The bodies of the messages to `to` among `outputs`.
pub(crate) fn sent_to(outputs: &[Output], to: ServerId) -> Vec<PeerBody> {
    peer_messages(outputs)
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect()
}

/// The one append reply among `outputs` to `to`: (success, match index).
pub(crate) fn append_reply_to(outputs: &[Output], to: ServerId) -> (bool, LogIndex) {
    match sent_to(outputs, to).as_slice() {
        [
            PeerBody::AppendReply {
                success,
                match_index,
                ..
            },
        ] => (*success, *match_index),
        other => panic!("expected one append reply to {to}, got {other:?}"),
    }
}

/// A log entry of `term` (a no-op).
pub(crate) fn noop(term: u64) -> Arc<Entry> {
    Arc::new(Entry {
        term: Term(term),
        command: Command::Noop,
    })
}

/// A checkout of `cad`.
pub(crate) fn checkout() -> Op {
    Op::Checkout {
        feature: "cad".into(),
        user: "ann".into(),
        host: "ws1".into(),
    }
}

/// A log entry of `term` granting a `cad` seat to request `seq` of `client`.
pub(crate) fn grant(term: u64, client: u64, seq: u64) -> Arc<Entry> {
    Arc::new(Entry {
        term: Term(term),
        command: Command::Grant {
            client: ClientId(client),
            seq: RequestSeq(seq),
            feature: "cad".into(),
            user: "ann".into(),
            host: "ws1".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: WallTime(1_800_000_000_000),
        },
    })
}

/// An append from a leader holding `entries` after `prev`.
pub(crate) fn append(prev: (u64, u64), entries: Vec<Arc<Entry>>, commit: u64) -> PeerBody {
    PeerBody::Append {
        prev_index: LogIndex(prev.0),
        prev_term: Term(prev.1),
        entries,
        commit: LogIndex(commit),
        round: 1,
    }
}
