//! A running triad fed messages no honest peer sends and requests no honest client sends,
//! every field drawn over its whole range (`u64::MAX` included), between real traffic.
//!
//! - Implausible peer messages (a term past `Term::MAX`, an index past `LogIndex::MAX`)
//!   and arbitrary client requests: each such message is refused and reported, every
//!   invariant of DESIGN §6.3 holds, and the triad serves after.
//! - Arbitrary peer messages, plausible or not: no server panics or breaks its own state's
//!   rules (debug builds check them after every input), no term passes `Term::MAX`, and
//!   once the lies stop the triad serves again within the liveness bound. The safety
//!   invariants are not asserted here: a well-formed lie from an authenticated peer (a
//!   plausible append in the current term) is believed, as in any crash-fault-tolerant
//!   protocol, which is why peers must prove their slot with a certificate (DESIGN §9).

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

#[path = "support/proptest_config.rs"]
mod proptest_config;

mod harness;

use std::sync::Arc;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::client::ClientEvent;
use hal_core::protocol::{
    ClientId, ClientRequest, Entry, Handle, INDEX_JUMP_MAX, LogIndex, Op, PeerBody, PeerMessage,
    RequestSeq, Snapshot, TERM_JUMP_MAX, Term,
};
use hal_core::seats::{Command, Seats};
use hal_core::time::WallTime;
use harness::{FeatureSpec, World, WorldConfig};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLIENTS: usize = 4;
const LIES_MS: u64 = 20_000;
/// How often the workload acts, and lies are told.
const STEP_MS: u64 = 250;

/// A number over the whole range of `u64`, with the values at the edges of what a server
/// accepts drawn often.
fn wide() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => 0u64..16,
        2 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(Term::MAX.0),
        1 => Just(Term::MAX.0 + 1),
        1 => Just(TERM_JUMP_MAX),
        1 => Just(TERM_JUMP_MAX + 1),
        1 => Just(INDEX_JUMP_MAX),
        1 => Just(INDEX_JUMP_MAX + 1),
    ]
    .boxed()
}

/// Past both `Term::MAX` and `LogIndex::MAX`.
fn implausible() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), (Term::MAX.0 + 1)..=u64::MAX]
}

fn server() -> impl Strategy<Value = ServerId> {
    (1u8..=3).prop_map(|n| ServerId::new(n).unwrap())
}

fn name() -> impl Strategy<Value = Arc<str>> {
    prop_oneof![
        4 => Just(Arc::from("cad")),
        1 => Just(Arc::from("cam")),
        1 => Just(Arc::from("x".repeat(300))),
        1 => Just(Arc::from("a\u{1b}[2J")),
        1 => "[a-z]{0,8}".prop_map(Arc::from),
    ]
}

fn command() -> BoxedStrategy<Command> {
    prop_oneof![
        Just(Command::Noop),
        (
            wide(),
            wide(),
            name(),
            name(),
            name(),
            proptest::option::of(wide()),
            server()
        )
            .prop_map(
                |(client, seq, feature, user, host, end, by)| Command::Grant {
                    client: ClientId(client),
                    seq: RequestSeq(seq),
                    feature,
                    user,
                    host,
                    borrow_end: end.map(WallTime),
                    by,
                    // Any wall time a lying peer may state: it is only shown.
                    at: WallTime(end.unwrap_or(client)),
                }
            ),
        (wide(), wide(), wide()).prop_map(|(client, seq, handle)| Command::Release {
            client: ClientId(client),
            seq: RequestSeq(seq),
            handle: Handle(handle),
        }),
        wide().prop_map(|handle| Command::Expire {
            handle: Handle(handle)
        }),
        (
            wide(),
            proptest::collection::vec(wide(), 0..4),
            name(),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(client, handles, by, many)| Command::Remove {
                client: ClientId(client),
                seq: RequestSeq(1),
                // Sometimes more seats than one removal may name.
                handles: if many {
                    (1..=2_000).map(Handle).collect()
                } else {
                    handles.into_iter().map(Handle).collect()
                },
                by,
            }),
    ]
    .boxed()
}

fn entries() -> impl Strategy<Value = Vec<Arc<Entry>>> {
    proptest::collection::vec(
        (wide(), command()).prop_map(|(term, command)| {
            Arc::new(Entry {
                term: Term(term),
                command,
            })
        }),
        0..4,
    )
}

/// A seat table built by applying arbitrary commands (so internally consistent, but of
/// any feature, client and size).
fn snapshot() -> impl Strategy<Value = Arc<Snapshot>> {
    (wide(), wide(), proptest::collection::vec(command(), 0..6)).prop_map(
        |(last_index, last_term, commands)| {
            let mut seats = Seats::new();
            for (i, command) in commands.iter().enumerate() {
                seats.apply(LogIndex(i as u64 + 1), command, |_| Some(3));
            }
            Arc::new(Snapshot {
                last_index: LogIndex(last_index),
                last_term: Term(last_term),
                seats,
            })
        },
    )
}

fn body() -> BoxedStrategy<PeerBody> {
    prop_oneof![
        (wide(), wide()).prop_map(|(i, t)| PeerBody::PreVote {
            last_index: LogIndex(i),
            last_term: Term(t)
        }),
        any::<bool>().prop_map(|granted| PeerBody::PreVoteReply { granted }),
        (wide(), wide(), any::<bool>()).prop_map(|(i, t, transfer)| PeerBody::RequestVote {
            last_index: LogIndex(i),
            last_term: Term(t),
            transfer
        }),
        any::<bool>().prop_map(|granted| PeerBody::VoteReply { granted }),
        (wide(), wide(), entries(), wide(), wide()).prop_map(|(i, t, entries, c, round)| {
            PeerBody::Append {
                prev_index: LogIndex(i),
                prev_term: Term(t),
                entries,
                commit: LogIndex(c),
                round,
            }
        }),
        (any::<bool>(), wide(), wide()).prop_map(|(success, m, round)| PeerBody::AppendReply {
            success,
            match_index: LogIndex(m),
            round
        }),
        (snapshot(), wide())
            .prop_map(|(snapshot, round)| PeerBody::InstallSnapshot { snapshot, round }),
        Just(PeerBody::TimeoutNow),
        (wide(), wide(), entries(), wide(), wide()).prop_map(|(i, t, entries, li, lt)| {
            PeerBody::Donate {
                prev_index: LogIndex(i),
                prev_term: Term(t),
                entries,
                last_index: LogIndex(li),
                last_term: Term(lt),
            }
        }),
        (snapshot(), wide(), wide()).prop_map(|(snapshot, li, lt)| PeerBody::DonateSnapshot {
            snapshot,
            last_index: LogIndex(li),
            last_term: Term(lt)
        }),
        (any::<bool>(), wide()).prop_map(|(success, m)| PeerBody::DonateReply {
            success,
            match_index: LogIndex(m)
        }),
        (wide(), wide(), any::<bool>(), wide()).prop_map(|(i, t, hears_you, for_ms)| {
            PeerBody::Presence {
                last_index: LogIndex(i),
                last_term: Term(t),
                hears_you,
                connected_for_ms: for_ms,
            }
        }),
        Just(PeerBody::PresenceAck),
        (wide(), wide(), wide()).prop_map(|(for_ms, i, t)| PeerBody::PrimaryHeard {
            for_ms,
            last_index: LogIndex(i),
            last_term: Term(t)
        }),
        Just(PeerBody::HandOver),
    ]
    .boxed()
}

fn peer_message() -> impl Strategy<Value = PeerMessage> {
    (server(), server(), wide(), body())
        .prop_filter("between two servers", |(from, to, _, _)| from != to)
        .prop_map(|(from, to, term, body)| PeerMessage {
            from,
            to,
            term: Term(term),
            body,
        })
}

/// A peer message whose term, or one of whose indices, is past what any server accepts.
fn implausible_peer_message() -> impl Strategy<Value = PeerMessage> {
    (peer_message(), implausible(), any::<bool>()).prop_map(|(mut message, bad, in_term)| {
        let index = match &mut message.body {
            PeerBody::PreVote { last_index, .. }
            | PeerBody::RequestVote { last_index, .. }
            | PeerBody::Donate { last_index, .. }
            | PeerBody::DonateSnapshot { last_index, .. }
            | PeerBody::Presence { last_index, .. }
            | PeerBody::PrimaryHeard { last_index, .. } => Some(last_index),
            PeerBody::Append { commit, .. } => Some(commit),
            PeerBody::AppendReply { match_index, .. }
            | PeerBody::DonateReply { match_index, .. } => Some(match_index),
            _ => None,
        };
        match index {
            Some(index) if !in_term => *index = LogIndex(bad),
            _ => message.term = Term(bad),
        }
        message
    })
}

fn op() -> BoxedStrategy<Op> {
    prop_oneof![
        (name(), name(), name()).prop_map(|(feature, user, host)| Op::Checkout {
            feature,
            user,
            host
        }),
        (name(), name(), name(), any::<u32>()).prop_map(|(feature, user, host, hours)| {
            Op::Borrow {
                feature,
                user,
                host,
                hours,
            }
        }),
        wide().prop_map(|h| Op::Checkin { handle: Handle(h) }),
        wide().prop_map(|h| Op::Return { handle: Handle(h) }),
        proptest::collection::vec(wide().prop_map(Handle), 0..8)
            .prop_map(|handles| Op::Heartbeat { handles }),
        Just(Op::Heartbeat {
            handles: vec![Handle(1); 1025]
        }),
    ]
    .boxed()
}

fn request() -> impl Strategy<Value = (ServerId, ClientRequest)> {
    (server(), wide(), wide(), op()).prop_map(|(to, client, seq, op)| {
        let request = ClientRequest {
            client: ClientId(client),
            seq: RequestSeq(seq),
            op,
        };
        (to, request)
    })
}

#[derive(Debug, Clone)]
enum Lie {
    Peer(PeerMessage),
    Request(ServerId, ClientRequest),
}

fn lies(peer: BoxedStrategy<PeerMessage>) -> impl Strategy<Value = Vec<(u64, Lie)>> {
    let lie = prop_oneof![
        peer.prop_map(Lie::Peer),
        request().prop_map(|(to, r)| Lie::Request(to, r)),
    ];
    proptest::collection::vec((0..LIES_MS - STEP_MS, lie), 1..24).prop_map(|mut lies| {
        lies.sort_by_key(|(t, _)| *t);
        lies
    })
}

fn workload(w: &mut World, rng: &mut ChaCha8Rng) {
    for i in 0..CLIENTS {
        let slot = &w.clients[i];
        if slot.client.is_busy() || !rng.random_bool(0.3) {
            continue;
        }
        match slot.client.seats().keys().next().copied() {
            Some(handle) if rng.random_bool(0.4) => {
                w.checkin(i, handle);
            }
            _ => {
                w.checkout(i, "cad");
            }
        }
    }
}

/// Runs a LAN triad under `lies`, then without them for the liveness phase.
fn run(seed: u64, lies: &[(u64, Lie)]) -> World {
    let mut config = WorldConfig::lan(seed);
    config.timing.client_lease = Duration::from_secs(8);
    config.timing.client_heartbeat = Duration::from_secs(2);
    config.clients = CLIENTS;
    config.features = vec![FeatureSpec::new("cad", 3, Some(24))];
    config.log_entries_max = 64;
    let mut w = World::new(config);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x11e5);
    let mut lies = lies.iter().peekable();
    while w.t < LIES_MS {
        while let Some((_, lie)) = lies.next_if(|(at, _)| *at < w.t + STEP_MS) {
            match lie.clone() {
                Lie::Peer(message) => w.inject_peer(message),
                Lie::Request(to, request) => w.inject_request(to, request),
            }
            for id in ServerId::ALL {
                if let Some(server) = w.server(id) {
                    assert!(server.term() <= Term::MAX, "{id} at term {}", server.term());
                }
            }
        }
        workload(&mut w, &mut rng);
        w.run_for(Duration::from_millis(STEP_MS));
    }
    w.checker.liveness_from = Some(w.t);
    let end = w.t + 2 * w.checker.liveness_bound_ms;
    while w.t < end {
        workload(&mut w, &mut rng);
        w.run_for(Duration::from_millis(STEP_MS));
    }
    w.run_for(Duration::from_millis(w.checker.liveness_bound_ms + 1));
    w
}

fn grants_after(w: &World, t: u64) -> usize {
    w.clients
        .iter()
        .flat_map(|c| &c.events)
        .filter(|(at, e)| *at >= t && matches!(e, ClientEvent::Granted { .. }))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..proptest_config::fixed_seed(0x11e5_0001)
    })]

    #[test]
    fn implausible_messages_are_refused_and_every_invariant_holds(
        seed in any::<u64>(),
        lies in lies(implausible_peer_message().boxed()),
    ) {
        let mut w = run(seed, &lies);
        w.assert_no_violations();
        let told = lies.iter().filter(|(_, l)| matches!(l, Lie::Peer(_))).count();
        // A message to a server that is down is not refused: it is never read.
        prop_assert_eq!(w.refused, told, "every implausible peer message is refused");
        prop_assert!(grants_after(&w, LIES_MS) > 0, "the triad serves after the lies");
    }

    #[test]
    fn arbitrary_messages_break_no_server_and_the_triad_serves_after(
        seed in any::<u64>(),
        lies in lies(peer_message().boxed()),
    ) {
        let w = run(seed, &lies);
        let stalls: Vec<&String> = w
            .checker
            .violations
            .iter()
            .filter(|v| v.starts_with("liveness"))
            .collect();
        prop_assert!(stalls.is_empty(), "the triad did not serve again: {stalls:?}");
        prop_assert!(grants_after(&w, LIES_MS) > 0, "the triad serves after the lies");
    }
}
