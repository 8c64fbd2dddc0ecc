//! The HAL triad in the pure harness: one named test per row of the table in DESIGN §2,
//! and one per protocol rule of DESIGN §3 that a user would notice.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use hal_core::ServerId;
use hal_core::client::ClientEvent;
use hal_core::protocol::{Denial, ReplyResult};
use harness::{FeatureSpec, Node, World, WorldConfig};

const ONE: ServerId = ServerId::PRIMARY;
const TWO: ServerId = ServerId::SECONDARY;
const THREE: ServerId = ServerId::TIEBREAKER;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A LAN world that has elected its leader.
fn started(seed: u64) -> World {
    let mut w = World::new(WorldConfig::lan(seed));
    w.run_for(secs(3));
    w
}

fn denial(answer: Option<ReplyResult>) -> Option<Denial> {
    match answer {
        Some(ReplyResult::Denied(d)) => Some(d),
        _ => None,
    }
}

/// What `id` answers at once to a checkout and to a borrow.
fn probe_both(w: &mut World, id: ServerId) -> (Option<Denial>, Option<Denial>) {
    let checkout = denial(w.probe(id, World::checkout_op("cad")));
    let borrow = denial(w.probe(id, World::borrow_op("cad", 24)));
    (checkout, borrow)
}

fn pointing_to(id: ServerId) -> Option<Denial> {
    Some(Denial::NotActive { active: Some(id) })
}

/// Checks out with client `i` and runs until answered; returns the granting server.
fn checkout_by(w: &mut World, i: usize) -> Option<ServerId> {
    let seq = w.checkout(i, "cad");
    w.run_for(secs(8));
    w.granted(i, seq).map(|(_, server)| server)
}

fn borrow_answer(w: &mut World, i: usize) -> ClientEvent {
    let seq = w.borrow(i, "cad", 24);
    w.run_for(secs(8));
    w.answer(i, seq).cloned().unwrap()
}

// ----- the rows of DESIGN §2 -----

#[test]
fn row_1_2_3_primary_serves_and_the_others_point_to_it() {
    let mut w = started(1);
    assert_eq!(w.active(), Some(ONE));
    assert_eq!(checkout_by(&mut w, 0), Some(ONE));
    assert!(matches!(
        borrow_answer(&mut w, 1),
        ClientEvent::Granted { server: ONE, .. }
    ));
    assert_eq!(
        probe_both(&mut w, TWO),
        (pointing_to(ONE), pointing_to(ONE))
    );
    assert_eq!(
        probe_both(&mut w, THREE),
        (pointing_to(ONE), pointing_to(ONE))
    );
    w.assert_no_violations();
}

#[test]
fn row_1_2_with_3_down_primary_serves() {
    let mut w = started(2);
    w.crash(THREE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(ONE));
    assert_eq!(checkout_by(&mut w, 0), Some(ONE));
    assert!(matches!(
        borrow_answer(&mut w, 1),
        ClientEvent::Granted { server: ONE, .. }
    ));
    assert_eq!(
        probe_both(&mut w, TWO),
        (pointing_to(ONE), pointing_to(ONE))
    );
    w.assert_no_violations();
}

#[test]
fn row_1_3_with_2_down_primary_serves() {
    let mut w = started(3);
    w.crash(TWO);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(ONE));
    assert_eq!(checkout_by(&mut w, 0), Some(ONE));
    assert!(matches!(
        borrow_answer(&mut w, 1),
        ClientEvent::Granted { server: ONE, .. }
    ));
    assert_eq!(
        probe_both(&mut w, THREE),
        (pointing_to(ONE), pointing_to(ONE))
    );
    w.assert_no_violations();
}

#[test]
fn row_2_3_with_1_down_secondary_serves_checkouts_but_not_borrows() {
    let mut w = started(4);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    assert_eq!(checkout_by(&mut w, 0), Some(TWO));
    let borrow = borrow_answer(&mut w, 1);
    assert!(
        matches!(
            borrow,
            ClientEvent::Denied {
                reason: Denial::BorrowUnavailable,
                ..
            }
        ),
        "{borrow:?}"
    );
    assert_eq!(
        probe_both(&mut w, THREE),
        (pointing_to(TWO), pointing_to(TWO))
    );
    w.assert_no_violations();
}

#[test]
fn row_2_3_with_1_cut_off_primary_stops_serving() {
    let mut w = started(5);
    w.isolate(ONE);
    w.run_for(secs(5));
    assert_eq!(w.leaders(), vec![TWO], "#1 stepped down, #2 took over");
    let (checkout, borrow) = probe_both(&mut w, ONE);
    assert_eq!(checkout, Some(Denial::NoMajority));
    assert_eq!(borrow, Some(Denial::NoMajority));
    assert_eq!(checkout_by(&mut w, 0), Some(TWO));
    w.assert_no_violations();
}

#[test]
fn any_server_alone_denies_with_no_majority() {
    for alone in ServerId::ALL {
        let mut w = started(6 + u64::from(alone.get()));
        for other in ServerId::ALL.into_iter().filter(|s| *s != alone) {
            w.crash(other);
        }
        w.run_for(secs(5));
        assert_eq!(w.leaders(), vec![], "{alone} alone does not lead");
        assert_eq!(
            probe_both(&mut w, alone),
            (Some(Denial::NoMajority), Some(Denial::NoMajority)),
            "{alone}"
        );
        let seq = w.checkout(0, "cad");
        w.run_for(secs(30));
        let answer = w.answer(0, seq).cloned();
        // The two crashed servers never answered: for all the client knows, one of
        // them acted on the request, so its outcome is unknown (not a denial).
        assert!(
            matches!(answer, Some(ClientEvent::OutcomeUnknown { .. })),
            "{alone}: {answer:?}"
        );
        w.assert_no_violations();
    }
}

// ----- protocol rules -----

#[test]
fn an_asymmetric_cut_does_not_move_the_active_role() {
    let mut w = started(10);
    let before = w.role_changes().len();
    w.cut(ONE, TWO);
    w.run_for(secs(60));
    assert_eq!(w.leaders(), vec![ONE]);
    assert_eq!(
        w.role_changes().len(),
        before,
        "no role change: {:?}",
        w.role_changes()
    );
    assert_eq!(checkout_by(&mut w, 0), Some(ONE));
    w.assert_no_violations();
}

#[test]
fn failback_to_primary_only_after_the_hold() {
    let mut w = started(11);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    w.start_server(ONE);
    let hold = w.config.timing.failback_hold;
    w.run_for(hold - secs(1));
    assert_eq!(w.active(), Some(TWO), "#2 keeps the role during the hold");
    w.run_for(secs(3));
    assert_eq!(
        w.active(),
        Some(ONE),
        "#1 took the role back: {:?}",
        w.role_changes()
    );
    assert!(matches!(
        borrow_answer(&mut w, 1),
        ClientEvent::Granted { server: ONE, .. }
    ));
    w.assert_no_violations();
}

#[test]
fn a_flapping_link_does_not_flap_the_active_role_back() {
    let mut w = started(12);
    w.isolate(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    // #1's link comes and goes every 3 s: never up for the whole hold.
    for _ in 0..10 {
        w.heal_all();
        w.run_for(secs(3));
        w.isolate(ONE);
        w.run_for(secs(3));
    }
    assert_eq!(w.leaders(), vec![TWO]);
    let changes = w
        .role_changes()
        .into_iter()
        .filter(|l| l.contains("#2") || l.contains("#1: RoleChanged { role: Active"))
        .count();
    assert!(changes <= 3, "{:?}", w.role_changes());
    w.assert_no_violations();
}

#[test]
fn a_retried_request_after_failover_gets_its_first_answer() {
    let mut w = started(13);
    // The grant happens on #1, but its reply never reaches the client.
    w.cut_one_way(Node::Server(ONE), Node::Client(0));
    let seq = w.checkout(0, "cad");
    w.run_for(ms(300));
    let granted_on_one: Vec<_> = w
        .server(ONE)
        .unwrap()
        .seats()
        .iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(granted_on_one.len(), 1);
    w.crash(ONE);
    w.run_for(secs(10));
    let (handle, server) = w.granted(0, seq).unwrap();
    assert_eq!(server, TWO);
    assert_eq!(handle, granted_on_one[0], "the retry got the original seat");
    assert_eq!(w.server(TWO).unwrap().seats().len(), 1, "no second seat");
    w.assert_no_violations();
}

#[test]
fn a_leader_change_keeps_every_seat() {
    let mut w = started(14);
    for i in 0..3 {
        assert_eq!(checkout_by(&mut w, i), Some(ONE));
    }
    w.crash(ONE);
    w.run_for(secs(90));
    for i in 0..3 {
        assert_eq!(
            w.clients[i].client.seats().len(),
            1,
            "client {i} keeps its seat"
        );
        let lost = w
            .notices(i)
            .into_iter()
            .any(|(_, e)| matches!(e, ClientEvent::Lost { .. }));
        assert!(!lost, "client {i}: {:?}", w.notices(i));
        let failed_over = w
            .notices(i)
            .into_iter()
            .any(|(_, e)| e == ClientEvent::FailedOver { from: ONE, to: TWO });
        assert!(failed_over, "client {i}: {:?}", w.notices(i));
    }
    assert_eq!(w.server(TWO).unwrap().seats().len(), 3);
    w.assert_no_violations();
}

#[test]
fn a_partitioned_client_stops_before_its_seat_is_reused() {
    let mut config = WorldConfig::lan(15);
    config.features = vec![FeatureSpec::new("cad", 1, None)];
    let mut w = World::new(config);
    w.run_for(secs(3));
    assert_eq!(checkout_by(&mut w, 0), Some(ONE));
    for s in ServerId::ALL {
        w.cut_one_way(Node::Client(0), Node::Server(s));
        w.cut_one_way(Node::Server(s), Node::Client(0));
    }
    // Client 1 asks again and again until the seat frees up.
    let mut granted_at = None;
    for _ in 0..40 {
        let seq = w.checkout(1, "cad");
        w.run_for(secs(5));
        if w.granted(1, seq).is_some() {
            granted_at = Some(w.t);
            break;
        }
    }
    let granted_at = granted_at.expect("the seat is reused once the lease is over");
    let lost_at = w
        .notices(0)
        .into_iter()
        .find(|(_, e)| matches!(e, ClientEvent::Lost { .. }))
        .map(|(t, _)| t);
    let lost_at = lost_at.expect("client 0 saw its seat lost");
    assert!(
        lost_at < granted_at,
        "lost at {lost_at} before reuse at {granted_at}"
    );
    w.assert_no_violations();
}

#[test]
fn borrowing_goes_only_through_the_primary() {
    let mut w = started(16);
    w.crash(ONE);
    w.run_for(secs(5));
    let denied = borrow_answer(&mut w, 0);
    assert!(
        matches!(
            denied,
            ClientEvent::Denied {
                reason: Denial::BorrowUnavailable,
                ..
            }
        ),
        "{denied:?}"
    );
    w.start_server(ONE);
    w.run_for(w.config.timing.failback_hold + secs(5));
    assert_eq!(w.active(), Some(ONE));
    assert!(matches!(
        borrow_answer(&mut w, 0),
        ClientEvent::Granted { server: ONE, .. }
    ));
    w.assert_no_violations();
}

#[test]
fn a_borrow_is_not_released_early_by_a_clock_four_minutes_ahead() {
    let mut config = WorldConfig::lan(17);
    config.features = vec![FeatureSpec::new("cad", 1, Some(24))];
    let mut w = World::new(config);
    w.run_for(secs(3));
    let seq = w.borrow(0, "cad", 1);
    w.run_for(secs(1));
    assert!(w.granted(0, seq).is_some());
    w.move_clock(TWO, 4 * 60 * 1000);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    // One hour later (true time) the borrow ends for the client; #2's clock reads +4 min.
    w.run_for(secs(3600 - 10));
    let early = w.checkout(1, "cad");
    w.run_for(secs(30));
    let answer = w.answer(1, early).cloned();
    assert!(
        matches!(
            answer,
            Some(ClientEvent::Denied {
                reason: Denial::AllInUse { .. },
                ..
            })
        ),
        "{answer:?}"
    );
    let ended = w
        .notices(0)
        .into_iter()
        .any(|(_, e)| matches!(e, ClientEvent::BorrowEnded { .. }));
    assert!(ended, "the borrower saw its borrow end");
    // The seat frees at end + max_clock_skew on #2's clock: one minute after the end.
    w.run_for(secs(90));
    assert_eq!(checkout_by(&mut w, 1), Some(TWO));
    w.assert_no_violations();
}

#[test]
fn a_full_restart_keeps_every_seat() {
    let mut w = started(18);
    for i in 0..3 {
        assert_eq!(checkout_by(&mut w, i), Some(ONE));
    }
    for s in ServerId::ALL {
        w.crash(s);
    }
    w.run_for(secs(2));
    for s in ServerId::ALL {
        w.start_server(s);
    }
    w.run_for(secs(10));
    for s in ServerId::ALL {
        assert_eq!(
            w.server(s).unwrap().seats().len(),
            3,
            "{s} restored every seat"
        );
    }
    for i in 0..3 {
        assert_eq!(w.clients[i].client.seats().len(), 1);
    }
    w.assert_no_violations();
}

#[test]
fn a_lagging_server_catches_up_from_a_snapshot() {
    let mut config = WorldConfig::lan(19);
    config.log_entries_max = 20;
    let mut w = World::new(config);
    w.run_for(secs(3));
    w.crash(THREE);
    for _ in 0..20 {
        let seq = w.checkout(0, "cad");
        w.run_for(ms(100));
        let (handle, _) = w.granted(0, seq).unwrap();
        w.checkin(0, handle);
        w.run_for(ms(100));
    }
    assert_eq!(checkout_by(&mut w, 1), Some(ONE));
    w.start_server(THREE);
    w.run_for(secs(3));
    let three = w.server(THREE).unwrap();
    let one = w.server(ONE).unwrap();
    assert_eq!(three.commit_index(), one.commit_index());
    assert_eq!(three.seats(), one.seats());
    assert!(w.trace.iter().any(|l| l.contains("start #3")));
    w.assert_no_violations();
}

#[test]
fn one_seed_gives_one_history() {
    let run = |seed| {
        let mut w = started(seed);
        let _ = checkout_by(&mut w, 0);
        w.crash(ONE);
        w.run_for(secs(10));
        w.trace.join("\n")
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn primary_with_tiebreaker_serves_even_when_only_the_tiebreaker_has_the_newest_seats() {
    // #1 is cut off from the start, so #2 leads with #3 and grants seats #1 never saw.
    let mut w = World::new(WorldConfig::lan(20));
    w.isolate(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    assert_eq!(checkout_by(&mut w, 0), Some(TWO));
    // #2 dies; #1 comes back. #1 + #3 are a majority and #1 must serve again, with the
    // seat #2 granted: #3 donates its log to #1, which can then win the election.
    w.crash(TWO);
    w.heal_all();
    w.run_for(secs(10));
    assert_eq!(w.active(), Some(ONE), "{:?}", w.role_changes());
    assert_eq!(w.server(ONE).unwrap().seats().len(), 1);
    assert_eq!(checkout_by(&mut w, 1), Some(ONE));
    w.start_server(TWO);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(ONE), "{:?}", w.role_changes());
    w.assert_no_violations();
}

#[test]
fn license_rules_each_get_their_own_denial() {
    let mut config = WorldConfig::lan(21);
    let past = time::Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
    config.features = vec![
        FeatureSpec::new("cad", 3, Some(24)),
        FeatureSpec::new("viewer", 3, None),
        FeatureSpec {
            end: Some(past),
            ..FeatureSpec::new("old", 3, Some(24))
        },
        FeatureSpec {
            hostid_ok: false,
            ..FeatureSpec::new("locked", 3, Some(24))
        },
    ];
    let mut w = World::new(config);
    w.run_for(secs(3));
    let cases = [
        (World::checkout_op("nosuch"), Denial::UnknownFeature),
        (World::checkout_op("old"), Denial::LicenseExpired),
        (World::checkout_op("locked"), Denial::HostIdMismatch),
        (World::borrow_op("viewer", 1), Denial::BorrowNotAllowed),
        (World::borrow_op("cad", 25), Denial::BorrowNotAllowed),
    ];
    for (op, expected) in cases {
        let answer = denial(w.probe(ONE, op.clone()));
        assert_eq!(answer, Some(expected), "{op:?}");
    }
    assert_eq!(
        checkout_by(&mut w, 0),
        Some(ONE),
        "the valid feature still serves"
    );
    w.assert_no_violations();
}

#[test]
fn a_borrow_made_on_the_primary_is_returned_early_on_the_secondary() {
    let mut w = started(22);
    let seq = w.borrow(0, "cad", 24);
    w.run_for(secs(1));
    let (handle, _) = w.granted(0, seq).unwrap();
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    assert_eq!(
        w.server(TWO).unwrap().seats().len(),
        1,
        "the borrow survived #1's crash"
    );
    let back = w.return_borrow(0, handle);
    w.run_for(secs(5));
    assert!(
        matches!(w.answer(0, back), Some(ClientEvent::Released { .. })),
        "{:?}",
        w.answer(0, back)
    );
    assert_eq!(w.server(TWO).unwrap().seats().len(), 0);
    w.assert_no_violations();
}

#[test]
fn a_server_restarted_from_disk_answers_a_retry_with_the_first_answer() {
    let mut w = started(23);
    // Every reply to client 0 is lost while the grant is made.
    for s in ServerId::ALL {
        w.cut_one_way(Node::Server(s), Node::Client(0));
    }
    let seq = w.checkout(0, "cad");
    w.run_for(ms(300));
    for s in ServerId::ALL {
        w.crash(s);
    }
    for s in ServerId::ALL {
        w.start_server(s);
    }
    w.heal_all();
    w.run_for(secs(10));
    let (handle, _) = w.granted(0, seq).expect("the retry was answered");
    let seats: Vec<_> = w
        .server(ONE)
        .unwrap()
        .seats()
        .iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(
        seats,
        vec![handle],
        "one request, one seat, across a full restart"
    );
    w.assert_no_violations();
}

#[test]
fn the_wan_profile_fails_over_and_back_on_its_own_timers() {
    let mut config = WorldConfig::lan(24);
    config.timing = hal_core::timing::Timing::wan();
    config.net.delay_ms_min = 20;
    config.net.delay_ms_max = 80;
    let mut w = World::new(config);
    w.run_for(secs(10));
    assert_eq!(w.active(), Some(ONE));
    w.crash(ONE);
    // #2 campaigns after election_timeout + failover_delay (5 s + 2 s).
    w.run_for(secs(6));
    assert_eq!(w.active(), None, "#2 waits out its failover delay");
    w.run_for(secs(4));
    assert_eq!(w.active(), Some(TWO));
    w.start_server(ONE);
    w.run_for(secs(110));
    assert_eq!(w.active(), Some(TWO), "the WAN hold is 120 s");
    w.run_for(secs(20));
    assert_eq!(w.active(), Some(ONE));
    w.assert_no_violations();
}

/// A client that checked in keeps its session (its last answer, for retries) for a seat's
/// lease, then every server forgets it; one that holds a seat keeps its session. So
/// clients that come and go do not fill the servers' memory and snapshots.
#[test]
fn sessions_without_seats_are_forgotten_after_a_lease_everywhere() {
    let mut w = started(11);
    let seq = w.checkout(0, "cad");
    w.run_for(secs(2));
    let (handle, _) = w.granted(0, seq).unwrap();
    w.checkin(0, handle);
    assert_eq!(checkout_by(&mut w, 1), Some(ONE));
    let sessions = |w: &World| -> Vec<usize> {
        ServerId::ALL
            .iter()
            .map(|id| w.server(*id).unwrap().seats().sessions_len())
            .collect()
    };
    assert_eq!(sessions(&w), vec![2, 2, 2]);
    // Once idle past every retry and a lease (plus a heartbeat round to commit it).
    let timing = w.config.timing;
    assert!(timing.session_idle_max() >= timing.seat_lease());
    assert!(timing.session_idle_max() > timing.client_give_up_after());
    w.run_for(timing.session_idle_max() + secs(1));
    assert_eq!(
        sessions(&w),
        vec![1, 1, 1],
        "only the holder's session is left"
    );
    let client0 = w.clients[0].client.id();
    let client1 = w.clients[1].client.id();
    let one = w.server(ONE).unwrap().seats();
    assert_eq!(one.seats_held(client0), None);
    assert_eq!(one.seats_held(client1), Some(1));
    w.assert_no_violations();
}

/// #2 took over while #1 was away; #1 comes back with its link to #2 down (`cut` says
/// which directions), in contact with #3 only. DESIGN §6.3 rule 2: that is not "#1
/// down", so #1 and #3 take the role back after the hold, and keep it.
fn failback_through_three(seed: u64, cut: &[(ServerId, ServerId)]) -> World {
    let mut w = started(seed);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    for &(a, b) in cut {
        w.cut_one_way(Node::Server(a), Node::Server(b));
    }
    w.start_server(ONE);
    let hold = w.config.timing.failback_hold;
    w.run_for(hold - secs(1));
    assert_eq!(w.active(), Some(TWO), "#2 keeps the role during the hold");
    w.run_for(secs(4));
    assert_eq!(
        w.active(),
        Some(ONE),
        "#1 took the role back through #3: {:?}",
        w.role_changes()
    );
    // The link stays down: #2 does not take the role back, and they do not fight.
    let changes = w.role_changes().len();
    w.run_for(secs(30));
    assert_eq!(w.leaders(), vec![ONE], "{:?}", w.role_changes());
    assert_eq!(w.role_changes().len(), changes, "{:?}", w.role_changes());
    assert!(matches!(
        borrow_answer(&mut w, 1),
        ClientEvent::Granted { server: ONE, .. }
    ));
    w.assert_no_violations();
    w
}

#[test]
fn failback_through_three_while_the_link_between_one_and_two_is_cut() {
    failback_through_three(31, &[(ONE, TWO), (TWO, ONE)]);
}

#[test]
fn failback_through_three_while_two_cannot_hear_one() {
    failback_through_three(32, &[(ONE, TWO)]);
}

#[test]
fn failback_through_three_while_one_cannot_hear_two() {
    failback_through_three(33, &[(TWO, ONE)]);
}

/// #3 hears #1 but #1 does not hear #3, and #1–#2 is cut: #1 could not win an election,
/// so it is not handed the role, and #2 serves on without the role flapping.
#[test]
fn no_failback_over_a_link_that_works_one_way_only() {
    let mut w = started(34);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    w.cut(ONE, TWO);
    w.cut_one_way(Node::Server(THREE), Node::Server(ONE));
    w.start_server(ONE);
    w.run_for(w.config.timing.failback_hold * 4);
    assert_eq!(w.leaders(), vec![TWO], "{:?}", w.role_changes());
    assert_eq!(checkout_by(&mut w, 0), Some(TWO));
    w.assert_no_violations();
}

/// #1 back, then connected first through #2 only (a short #1–#3 cut), then through #3
/// only (#2 cut off from both for a moment): #1 was connected to a peer all along, and
/// the hold counts from its return although neither #2 nor #3 saw all of it (found by
/// the 10-minute WAN sweep, seed 41008).
#[test]
fn failback_counts_from_the_return_when_the_contact_moves_between_peers() {
    let mut w = started(35);
    w.crash(ONE);
    w.run_for(secs(5));
    assert_eq!(w.active(), Some(TWO));
    w.start_server(ONE);
    w.run_for(secs(2));
    w.cut(ONE, THREE);
    w.run_for(ms(800));
    w.repair(ONE, THREE);
    w.run_for(ms(1_200));
    w.cut(TWO, ONE);
    w.cut(TWO, THREE);
    w.run_for(ms(800));
    w.heal_all();
    // Back at 0, so the hold (10 s) is over at 10 s: #1 leads by 11.5 s.
    w.run_for(ms(11_500 - 4_800));
    assert_eq!(
        w.active(),
        Some(ONE),
        "failback one hold after #1's return: {:?}",
        w.role_changes()
    );
    w.assert_no_violations();
}
