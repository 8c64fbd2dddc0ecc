//! Server discovery in the simulator: the production responder beside the production
//! node on three simulated hosts, the production search on a client host, over turmoil's
//! UDP (which carries broadcast to `255.255.255.255` and multicast groups). A server that
//! does not answer (crashed, cut off from the client, or running without the responder)
//! leaves the triad found by the others; none answering is the clear error. Fixed seeds;
//! each world runs twice and must find the same, answer for answer.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_core::ServerId;
use hal_sim::discovery::{DiscoveryWorld, Outcome, Silence, Via, run, triad_path};

const SEEDS: [u64; 2] = [7, 2026];

/// Runs `world` twice; the outcome, the same both times.
fn outcome(world: &DiscoveryWorld) -> Outcome {
    let first = run(world).unwrap();
    let second = run(world).unwrap();
    assert_eq!(first, second, "seed {} is not deterministic", world.seed);
    first
}

fn world(seed: u64, via: Via, silent: &[(u8, Silence)]) -> DiscoveryWorld {
    DiscoveryWorld {
        seed,
        via,
        silent: silent
            .iter()
            .map(|&(id, why)| (ServerId::new(id).unwrap(), why))
            .collect(),
        isolated: Vec::new(),
    }
}

/// (slot, role, leader) of each answer, by slot.
fn roles(outcome: &Outcome) -> Vec<(u8, &'static str, Option<u8>)> {
    let mut roles: Vec<_> = outcome
        .heard
        .iter()
        .map(|h| (h.slot.unwrap().get(), h.role, h.leader.map(ServerId::get)))
        .collect();
    roles.sort_unstable();
    roles
}

#[test]
fn every_server_answers_a_broadcast_and_a_multicast_with_its_slot_and_role() {
    for seed in SEEDS {
        for via in [Via::Broadcast, Via::Multicast] {
            let found = outcome(&world(seed, via, &[]));
            assert_eq!(
                roles(&found),
                [
                    (1, "active", Some(1)),
                    (2, "standby", Some(1)),
                    (3, "standby", Some(1))
                ],
                "seed {seed} {via:?}: {found:?}"
            );
            assert!(found.heard.iter().all(|h| h.path == triad_path()));
            assert_eq!(found.license_path, Ok(triad_path()));
            // The path found serves: #1 grants.
            assert_eq!(found.checkout, Some(Ok(ServerId::PRIMARY)), "{found:?}");
        }
    }
}

#[test]
fn a_server_that_does_not_answer_leaves_the_triad_found_by_the_others() {
    for seed in SEEDS {
        for (id, why) in [
            (3, Silence::Crashed),
            (2, Silence::Partitioned),
            (1, Silence::ResponderOff),
        ] {
            let found = outcome(&world(seed, Via::Broadcast, &[(id, why)]));
            let slots: Vec<u8> = roles(&found).iter().map(|r| r.0).collect();
            let others: Vec<u8> = (1..=3).filter(|s| *s != id).collect();
            assert_eq!(slots, others, "seed {seed}, #{id} {why:?}: {found:?}");
            assert_eq!(found.license_path, Ok(triad_path()), "{found:?}");
            // Two of three are up and connected, #1 among them (a silent #1 here only has
            // its responder off): the triad found grants.
            assert_eq!(found.checkout, Some(Ok(ServerId::PRIMARY)), "{found:?}");
        }
    }
}

#[test]
fn no_server_answering_is_the_clear_error() {
    for seed in SEEDS {
        let silent = [
            (1, Silence::Crashed),
            (2, Silence::Partitioned),
            (3, Silence::ResponderOff),
        ];
        let found = outcome(&world(seed, Via::Broadcast, &silent));
        assert!(found.heard.is_empty(), "{found:?}");
        assert_eq!(found.checkout, None);
        let error = found.license_path.unwrap_err();
        assert!(
            error.starts_with("no license server answered discovery on 255.255.255.255:6200"),
            "{error}"
        );
    }
}

#[test]
fn a_server_cut_off_from_both_peers_answers_that_it_has_no_majority() {
    for seed in SEEDS {
        let cut_off = DiscoveryWorld {
            isolated: vec![ServerId::TIEBREAKER],
            ..world(seed, Via::Broadcast, &[])
        };
        let found = outcome(&cut_off);
        assert_eq!(
            roles(&found),
            [
                (1, "active", Some(1)),
                (2, "standby", Some(1)),
                (3, "no_majority", None)
            ],
            "seed {seed}: {found:?}"
        );
        assert_eq!(found.license_path, Ok(triad_path()));
        assert_eq!(found.checkout, Some(Ok(ServerId::PRIMARY)), "{found:?}");
    }
}
