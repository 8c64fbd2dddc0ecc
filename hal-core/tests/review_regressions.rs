//! Regression tests for bugs a review of the server and client found, each replayed
//! through the harness or by feeding a server a message directly.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use hal_core::ServerId;
use hal_core::protocol::{
    ClientId, ClientRequest, Denial, Handle, LogIndex, Op, PeerBody, PeerMessage, ReplyResult,
    RequestSeq,
};
use hal_core::server::Output;
use hal_core::time::{Now, Time, WallTime};
use harness::{EPOCH_WALL_MS, FeatureSpec, Node, World, WorldConfig};

const ONE: ServerId = ServerId::PRIMARY;
const TWO: ServerId = ServerId::SECONDARY;
const THREE: ServerId = ServerId::TIEBREAKER;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn world(count: u32) -> World {
    let mut c = WorldConfig::lan(7);
    c.timing.client_lease = Duration::from_secs(8);
    c.timing.client_heartbeat = Duration::from_secs(2);
    c.features = vec![FeatureSpec::new("cad", count, Some(24))];
    c.clients = 2;
    let mut w = World::new(c);
    w.run_for(ms(3000));
    assert_eq!(w.active(), Some(ONE));
    w
}

fn now(w: &World) -> Now {
    Now {
        mono: Time(w.t),
        wall: WallTime(EPOCH_WALL_MS + w.t),
    }
}

/// Sends `op` to server `id` as client `client` and returns the immediate reply.
fn inject(
    w: &mut World,
    id: ServerId,
    client: ClientId,
    seq: RequestSeq,
    op: Op,
) -> Option<ReplyResult> {
    let n = now(w);
    let s = w.servers[id.index()].server.as_mut().unwrap();
    s.handle_client(n, ClientRequest { client, seq, op });
    let mut out = None;
    while let Some(o) = s.poll_output() {
        if let Output::Reply(r) = o
            && r.client == client
            && r.seq == seq
        {
            out = Some(r.result);
        }
    }
    out
}

fn checkout(c: usize) -> Op {
    Op::Checkout {
        feature: "cad".into(),
        user: format!("user{c}").into(),
        host: format!("host{c}").into(),
    }
}

fn cut_client(w: &mut World, c: usize) {
    for s in ServerId::ALL {
        w.cut_one_way(Node::Client(c), Node::Server(s));
        w.cut_one_way(Node::Server(s), Node::Client(c));
    }
}

fn granted_handle(w: &World, c: usize, seq: RequestSeq) -> Option<Handle> {
    w.granted(c, seq).map(|(h, _)| h)
}

/// A retried checkout answered from the session table: the client counts the lease from
/// the retry's send time, the server still expires the seat from the original apply.
#[test]
fn retry_answered_from_session_outlives_the_server_deadline() {
    let mut w = world(1);
    w.cut_one_way(Node::Server(ONE), Node::Client(0)); // the grant reply is lost
    let seq = w.checkout(0, "cad");
    // Retries for two thirds of the client's give-up time, all unanswered.
    let give_up = hal_core::client::ClientConfig::new(w.config.timing).give_up_after;
    w.run_for(give_up * 2 / 3);
    w.heal_all();
    let mut waited = 0;
    while granted_handle(&w, 0, seq).is_none() && waited < 10_000 {
        w.run_for(ms(10));
        waited += 10;
    }
    let handle = granted_handle(&w, 0, seq).expect("the retry is answered");
    let until = w.clients[0].client.seats()[&handle].lease_until.unwrap();
    cut_client(&mut w, 0); // no heartbeat reaches a server from now on
    let mut got = None;
    while w.t < until.0 {
        if !w.clients[1].client.is_busy() {
            let s = w.checkout(1, "cad");
            got = Some(s);
        }
        w.run_for(ms(100));
        if let Some(s) = got
            && granted_handle(&w, 1, s).is_some()
        {
            break;
        }
    }
    w.assert_no_violations();
}

/// A retry of a checkout whose seat has since expired is answered "Granted" with the dead
/// handle.
#[test]
fn retry_after_expiry_returns_a_dead_handle() {
    let mut w = world(1);
    let seq = w.checkout(0, "cad");
    w.run_for(ms(500));
    let handle = granted_handle(&w, 0, seq).unwrap();
    cut_client(&mut w, 0);
    w.run_for(ms(15_000));
    assert!(
        w.server(ONE).unwrap().seats().seat(handle).is_none(),
        "expired on the server"
    );
    let id = w.clients[0].client.id();
    let r = inject(&mut w, ONE, id, seq, checkout(0));
    assert!(
        !matches!(r, Some(ReplyResult::Granted { .. })),
        "granted a seat that is gone: {r:?}"
    );
}

/// A leader that has not applied its no-op answers from a stale table.
#[test]
fn new_leader_answers_before_its_noop_applied() {
    let mut w = world(1);
    let seq = w.checkout(0, "cad");
    while w.server(TWO).unwrap().last_index() < LogIndex(2) {
        w.run_for(ms(1));
    }
    w.cut_one_way(Node::Server(ONE), Node::Server(TWO)); // #2 never hears the commit
    let mut handle = None;
    while handle.is_none() {
        w.run_for(ms(1));
        handle = granted_handle(&w, 0, seq);
    }
    let handle = handle.unwrap();
    w.isolate(ONE);
    w.crash(ONE);
    assert!(
        w.server(TWO).unwrap().applied_index() < LogIndex(handle.0),
        "#2 has not applied the grant"
    );
    while !w.server(TWO).is_some_and(|s| s.is_leader()) {
        w.run_for(ms(1));
    }
    let id = w.clients[0].client.id();
    let checkin = inject(&mut w, TWO, id, RequestSeq(100), Op::Checkin { handle });
    let retry = inject(&mut w, TWO, id, seq, checkout(0));
    assert!(
        !matches!(checkin, Some(ReplyResult::Denied(Denial::UnknownHandle))),
        "{checkin:?}"
    );
    assert!(
        !matches!(retry, Some(ReplyResult::Denied(Denial::AllInUse { .. }))),
        "{retry:?}"
    );
    w.run_for(ms(500));
    assert!(
        w.server(TWO).unwrap().seats().seat(handle).is_some(),
        "the grant survived"
    );
}

/// A heartbeat for a seat whose Expire is proposed but not applied is acked as held.
#[test]
fn heartbeat_acks_a_seat_being_expired() {
    let mut w = world(1);
    let seq = w.checkout(0, "cad");
    w.run_for(ms(500));
    let handle = granted_handle(&w, 0, seq).unwrap();
    cut_client(&mut w, 0);
    let needle = format!("SeatExpiring {{ handle: {handle:?} }}");
    while !w.trace.iter().any(|l| l.contains(&needle)) {
        w.run_for(ms(1));
    }
    assert!(
        w.server(ONE).unwrap().seats().seat(handle).is_some(),
        "Expire not applied yet"
    );
    let id = w.clients[0].client.id();
    let r = inject(
        &mut w,
        ONE,
        id,
        RequestSeq(1000),
        Op::Heartbeat {
            handles: vec![handle],
        },
    );
    assert!(
        !matches!(r, Some(ReplyResult::HeartbeatAck { ref held, .. }) if held.contains(&handle)),
        "{r:?}"
    );
}

/// A malformed AppendReply overflows `match_index + 1` on the leader.
#[test]
fn an_append_reply_with_a_huge_match_index_is_clamped() {
    let mut w = world(1);
    let term = w.server(ONE).unwrap().term();
    let n = now(&w);
    let msg = PeerMessage {
        from: THREE,
        to: ONE,
        term,
        body: PeerBody::AppendReply {
            success: false,
            match_index: LogIndex(u64::MAX),
            round: 1,
        },
    };
    w.servers[0].server.as_mut().unwrap().handle_peer(n, msg);
    w.servers[0].server.as_ref().unwrap().check_invariants();
    w.run_for(ms(1000));
    assert_eq!(w.active(), Some(ONE), "the leader carries on");
}

/// A Donate whose claims are inconsistent with its entries trips the store_entries assert.
#[test]
fn a_donation_that_would_replace_a_committed_entry_is_ignored() {
    use hal_core::protocol::{Entry, Term};
    use hal_core::seats::Command;
    use std::sync::Arc;
    let mut w = world(1);
    let commit = w.server(TWO).unwrap().commit_index();
    assert!(commit >= LogIndex(1));
    let n = now(&w);
    let msg = PeerMessage {
        from: THREE,
        to: TWO,
        term: Term(1),
        body: PeerBody::Donate {
            prev_index: LogIndex(0),
            prev_term: Term(0),
            entries: vec![Arc::new(Entry {
                term: Term(9),
                command: Command::Noop,
            })],
            last_index: LogIndex(1),
            last_term: Term(9),
        },
    };
    let before = w.server(TWO).unwrap().last_index();
    w.servers[1].server.as_mut().unwrap().handle_peer(n, msg);
    w.servers[1].server.as_ref().unwrap().check_invariants();
    assert_eq!(
        w.server(TWO).unwrap().last_index(),
        before,
        "the committed log is untouched"
    );
}
