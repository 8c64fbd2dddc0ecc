//! The checkers fire on histories that break their rule (a checker that never fires
//! proves nothing), and a few seeds of the standard world break none. The histories are
//! built from the typed records ([`hal_core::record`]) and checked as the JSON lines they
//! write, so a field a checker needs cannot be left out by mistake.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_core::record::{
    Answer, Applied, Audit, Checkpoint, ClientEventRecord, ClientRecord, End, Entry, Fault,
    FaultKind, FeatureMeta, Grant, HeartbeatAnswer, Holder, LinkState, Meta, OpName, Party, Record,
    ReplyRecord, RequestRecord, RoleName, RoleRecord, SeatChangeName, SeatRecord, SnapshotHow,
};
use hal_core::timing::Timing;
use hal_sim::check::{Checkers, Violation};
use hal_sim::world::{WorldConfig, run};

/// The first violation in the history `records`, checked as the lines they write.
fn check(records: &[Record]) -> Option<Violation> {
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    Checkers::check(&lines).unwrap()
}

/// The LAN profile's timers, and one feature `cad` of `count` seats.
fn meta(count: u32) -> Record {
    let cad = FeatureMeta { count, hal: true };
    Record::Meta(Meta {
        seed: Some(0),
        ..Meta::new(&Timing::lan(), [("cad".to_string(), cad)].into())
    })
}

/// The application of `client` was told "granted" `handle` for request 1.
fn granted(t: u64, client: &str, handle: &str) -> Record {
    app_granted(t, client, 1, handle)
}

fn app_granted(t: u64, client: &str, req: u64, handle: &str) -> Record {
    client_event(
        t,
        client,
        ClientEventRecord::Granted {
            req,
            feature: "cad".to_string(),
            handle: handle.to_string(),
            server: 1,
            attempts: 1,
            borrow_end_ms: None,
        },
    )
}

fn client_event(t: u64, client: &str, event: ClientEventRecord) -> Record {
    Record::Client(ClientRecord {
        t_ms: t,
        client: client.to_string(),
        event,
    })
}

/// A request of `client` sent to #1.
fn request(t: u64, client: &str, req: u64, op: OpName) -> RequestRecord {
    RequestRecord {
        t_ms: t,
        client: client.to_string(),
        req,
        op,
        server: Some(1),
        feature: None,
        handle: None,
    }
}

fn checkout(t: u64, client: &str, req: u64) -> Record {
    Record::Request(RequestRecord {
        feature: Some("cad".to_string()),
        ..request(t, client, req, OpName::Checkout)
    })
}

/// Request 2 of `client`: a checkin of `handle`.
fn checkin(t: u64, client: &str, handle: &str) -> Record {
    Record::Request(RequestRecord {
        handle: Some(handle.to_string()),
        ..request(t, client, 2, OpName::Checkin)
    })
}

/// A reply of #`server` to request `req` of `client`, saying `answer`.
fn reply_of(t: u64, client: &str, req: u64, server: u8, answer: Answer) -> ReplyRecord {
    ReplyRecord {
        t_ms: t,
        client: client.to_string(),
        req,
        server,
        answer,
    }
}

/// #`by` granted `handle` (a lease of `lease_ms`) for request `req` of `client`.
fn grant(t: u64, client: &str, req: u64, handle: &str, by: u8, lease_ms: u64) -> ReplyRecord {
    let grant = Grant {
        handle: handle.to_string(),
        lease_ms,
        granted_by: by,
        borrow_end_ms: None,
    };
    reply_of(t, client, req, by, Answer::Granted(grant))
}

/// `reply`, a grant, made a borrow that ends at `end_ms`.
fn borrowed_until(end_ms: u64, mut reply: ReplyRecord) -> ReplyRecord {
    if let Answer::Granted(grant) = &mut reply.answer {
        grant.borrow_end_ms = Some(end_ms);
    }
    reply
}

/// #`by` granted `handle` (a lease of 2 min) for request `req` of `client`.
fn reply(t: u64, client: &str, req: u64, handle: &str, by: u8) -> Record {
    Record::Reply(grant(t, client, req, handle, by, 120_000))
}

/// A heartbeat's acknowledgement by #`server`: the seats it keeps and those it does not
/// know.
fn heartbeat_ack(t: u64, req: u64, server: u8, held: &[&str], unknown: &[&str]) -> Record {
    let names = |handles: &[&str]| handles.iter().map(|h| h.to_string()).collect();
    let beat = HeartbeatAnswer {
        lease_ms: 100,
        held: names(held),
        unknown: names(unknown),
        removed: Vec::new(),
    };
    Record::Reply(reply_of(t, "c1", req, server, Answer::Heartbeat(beat)))
}

fn end(t: u64) -> Record {
    Record::End(End { t_ms: t })
}

/// Server #`server` switched to a license with `count` seats of `cad`, in force from
/// `index`.
fn license(t: u64, server: u8, index: u64, count: u32) -> Record {
    Record::License(hal_core::record::LicenseRecord {
        t_ms: t,
        server,
        index,
        by: "admin@operator".to_string(),
        features: [("cad".to_string(), count)].into(),
    })
}

/// Server #`server` applied the options file `text`, in force from `index`.
fn options(t: u64, server: u8, index: u64, text: &str) -> Record {
    Record::Options(hal_core::record::OptionsRecord {
        t_ms: t,
        server,
        index,
        by: "admin@operator".to_string(),
        text: text.to_string(),
    })
}

#[test]
fn a_grant_the_options_in_force_refuse_is_caught() {
    let max = || {
        vec![
            meta(5),
            options(1, 1, 4, "MAX 1 cad USER c1\nEXCLUDE cad USER c9\n"),
            checkout(2, "c1", 1),
            app_granted(3, "c1", 1, "h5"),
            checkout(4, "c1", 2),
        ]
    };
    // A second seat for c1, over its MAX.
    let mut over = max();
    over.push(app_granted(5, "c1", 2, "h6"));
    let violation = check(&over).unwrap();
    assert_eq!(violation.invariant, "12 options respected");
    assert_eq!(violation.t_ms, 5);
    assert!(violation.what.contains("MAX 1 cad USER c1"), "{violation}");
    // Another user is not held to c1's MAX; c1 again once its seat is back.
    let mut fine = max();
    fine.push(checkout(5, "c2", 1));
    fine.push(app_granted(6, "c2", 1, "h7"));
    fine.push(checkin(7, "c1", "h5"));
    fine.push(app_granted(8, "c1", 2, "h8"));
    assert_eq!(check(&fine), None);
    // An excluded user (a restarted process keeps its user's name).
    let excluded = [
        meta(5),
        options(1, 1, 4, "EXCLUDE cad USER c9\n"),
        checkout(2, "c9.1", 1),
        app_granted(3, "c9.1", 1, "h5"),
    ];
    assert_eq!(check(&excluded).unwrap().invariant, "12 options respected");
    // Asked before the options came: the server may have granted it by the file before.
    let raced = [
        meta(5),
        checkout(1, "c9", 1),
        options(2, 1, 4, "EXCLUDE cad USER c9\n"),
        app_granted(3, "c9", 1, "h5"),
    ];
    assert_eq!(check(&raced), None);
    // Cleared options refuse nothing.
    let cleared = [
        meta(5),
        options(1, 1, 4, "EXCLUDE cad USER c9\n"),
        options(2, 1, 6, ""),
        checkout(3, "c9", 1),
        app_granted(4, "c9", 1, "h7"),
    ];
    assert_eq!(check(&cleared), None);
}

/// A `seat` record: server `server` applied `change` at `index` for `client`'s `req`.
fn seat(server: u8, index: u64, change: SeatChangeName, client: &str, req: u64) -> Record {
    Record::Seat(SeatRecord {
        t_ms: index * 10,
        server,
        index,
        change,
        handle: format!("h{index}"),
        feature: "cad".to_string(),
        client: client.to_string(),
        req: Some(req),
        user: None,
        host: None,
        by: None,
        borrow_end_ms: None,
        removed_by: None,
    })
}

#[test]
fn a_waiting_checkout_passed_by_a_later_request_is_caught() {
    use SeatChangeName::{Granted, Queued, Released};
    // One seat, held by c1; c2 then c3 wait; c1 checks in.
    let waiting = || {
        vec![
            meta(1),
            seat(1, 1, Granted, "c1", 1),
            seat(1, 2, Queued, "c2", 1),
            seat(1, 3, Queued, "c3", 1),
            seat(1, 4, Released, "c1", 2),
        ]
    };
    let mut in_turn = waiting();
    in_turn.push(seat(1, 5, Granted, "c2", 1));
    // #2 applies the same entries later: followed once.
    in_turn.push(seat(2, 5, Granted, "c2", 1));
    assert_eq!(check(&in_turn), None);
    let mut passed = waiting();
    passed.push(seat(1, 5, Granted, "c3", 1));
    let violation = check(&passed).unwrap();
    assert_eq!(violation.invariant, "13 first come, first served");
    assert!(
        violation.what.contains("c2's waiting request 1"),
        "{violation}"
    );
    let mut newcomer = waiting();
    newcomer.push(seat(2, 5, Granted, "c9", 1));
    assert_eq!(
        check(&newcomer).unwrap().invariant,
        "13 first come, first served"
    );
}

#[test]
fn a_raised_count_is_in_force_from_the_first_server_that_switches() {
    let raised = [
        meta(1),
        granted(1, "c1", "h2"),
        license(2, 2, 5, 2),
        // The same license applied by another server later changes nothing.
        license(3, 1, 5, 2),
        granted(4, "c2", "h6"),
    ];
    assert_eq!(check(&raised), None);
    let early = [
        meta(1),
        granted(1, "c1", "h2"),
        granted(2, "c2", "h6"),
        license(3, 2, 5, 2),
    ];
    let violation = check(&early).unwrap();
    assert_eq!(violation.invariant, "1 no overuse");
    assert_eq!(violation.t_ms, 2);
}

#[test]
fn a_lowered_count_keeps_the_seats_held_and_under_way_and_no_more() {
    let held = || {
        vec![
            meta(3),
            granted(1, "c1", "h2"),
            granted(1, "c2", "h3"),
            granted(1, "c3", "h4"),
            // Asked before the license changed: decided under the old COUNT.
            checkout(4, "c4", 1),
            license(5, 1, 6, 1),
        ]
    };
    // The request under way is granted: four seats, all kept.
    let mut kept = held();
    kept.push(app_granted(6, "c4", 1, "h5"));
    assert_eq!(check(&kept), None);
    // One seat is given back, and another granted above the new COUNT: overuse.
    let mut over = kept.clone();
    over.push(checkin(7, "c1", "h2"));
    over.push(app_granted(8, "c5", 1, "h9"));
    let violation = check(&over).unwrap();
    assert_eq!(violation.invariant, "1 no overuse");
    assert_eq!(violation.t_ms, 8);
    assert!(
        violation.what.contains("lowered by a license push"),
        "{violation}"
    );
    // The request under way refused: its place is not anyone else's.
    let mut refused = held();
    refused.push(denied(6, "c4", 1, "all_in_use"));
    refused.push(app_granted(7, "c5", 1, "h9"));
    assert_eq!(check(&refused).unwrap().t_ms, 7);
    // Once enough seats are back, grants up to the new COUNT are fine.
    let mut below = held();
    below.push(denied(6, "c4", 1, "all_in_use"));
    for (t, (client, handle)) in [(7, ("c1", "h2")), (8, ("c2", "h3")), (9, ("c3", "h4"))] {
        below.push(checkin(t, client, handle));
    }
    below.push(app_granted(10, "c5", 1, "h9"));
    assert_eq!(check(&below), None);
    below.push(app_granted(11, "c6", 1, "h10"));
    assert_eq!(check(&below).unwrap().t_ms, 11);
}

/// A COUNT lowered, then raised again but still below what was held: the request under
/// way since before the first push is still the old COUNT's. And above a lowered COUNT
/// only such a request may be granted: a request made after the push may not, even while
/// one under way is still unanswered.
#[test]
fn a_lowered_counts_allowance_is_for_the_requests_under_way_only() {
    let mut raised = vec![meta(5)];
    for (client, handle) in [("c1", "h1"), ("c2", "h2"), ("c3", "h3"), ("c4", "h4")] {
        raised.push(granted(1, client, handle));
    }
    raised.push(checkout(2, "c5", 1));
    raised.push(license(3, 1, 7, 2));
    raised.push(license(4, 1, 8, 3));
    raised.push(app_granted(5, "c5", 1, "h6"));
    assert_eq!(check(&raised), None);
    let mut after = vec![meta(3)];
    for (client, handle) in [("c1", "h1"), ("c2", "h2"), ("c3", "h3")] {
        after.push(granted(1, client, handle));
    }
    after.push(checkout(2, "c4", 1));
    after.push(license(3, 1, 7, 1));
    after.push(checkout(4, "c5", 1));
    after.push(app_granted(5, "c5", 1, "h9"));
    let violation = check(&after).unwrap();
    assert_eq!(violation.invariant, "1 no overuse");
    assert_eq!(violation.t_ms, 5);
}

#[test]
fn overuse_is_caught_and_a_released_seat_is_not_counted() {
    let fine = [
        meta(1),
        granted(1, "c1", "h2"),
        checkin(2, "c1", "h2"),
        granted(3, "c2", "h4"),
    ];
    assert_eq!(check(&fine), None);
    let over = [meta(1), granted(1, "c1", "h2"), granted(3, "c2", "h4")];
    let violation = check(&over).unwrap();
    assert_eq!(violation.invariant, "1 no overuse");
    assert_eq!(violation.t_ms, 3);
    assert_eq!(violation.evidence.len(), 2, "{violation}");
    // A lost lease frees the seat too; the same seat granted twice is one seat.
    let lost = client_event(
        2,
        "c1",
        ClientEventRecord::Lost {
            handle: Some("h2".to_string()),
        },
    );
    let again = [
        meta(1),
        granted(1, "c1", "h2"),
        granted(1, "c1", "h2"),
        lost,
        granted(3, "c2", "h4"),
    ];
    assert_eq!(check(&again), None);
}

#[test]
fn a_grant_by_3_or_a_borrow_not_by_1_is_caught() {
    let by3 = [meta(5), reply(1, "c1", 1, "h2", 3)];
    assert_eq!(check(&by3).unwrap().invariant, "2 role rule");
    let borrow = Record::Reply(borrowed_until(5, grant(1, "c1", 1, "h2", 2, 120_000)));
    let violation = check(&[meta(5), borrow]).unwrap();
    assert_eq!(violation.what, "a borrow was granted by #2, not #1");
}

#[test]
fn a_request_granted_two_handles_is_caught() {
    let retried = [
        meta(5),
        reply(1, "c1", 7, "h2", 1),
        reply(9, "c1", 7, "h2", 2),
    ];
    assert_eq!(
        check(&retried),
        None,
        "a retry answered with the first handle"
    );
    let twice = [
        meta(5),
        reply(1, "c1", 7, "h2", 1),
        reply(9, "c1", 7, "h5", 2),
    ];
    let violation = check(&twice).unwrap();
    assert_eq!(violation.invariant, "5 one request, one seat");
    assert_eq!(
        violation.what,
        "request 7 of c1 was granted twice: h2, then h5"
    );
    // The first grant's reply was lost: the servers' applied grants show the second seat.
    let applied = |t: u64, server: u8, handle: &str| {
        Record::Applied(Applied {
            t_ms: t,
            server,
            client: "c1".to_string(),
            req: 7,
            handle: handle.to_string(),
        })
    };
    let once_everywhere = [
        meta(5),
        applied(1, 1, "h2"),
        applied(1, 3, "h2"),
        applied(2, 2, "h2"),
        reply(9, "c1", 7, "h2", 2),
    ];
    assert_eq!(check(&once_everywhere), None);
    let lost_reply = [
        meta(5),
        applied(1, 1, "h2"),
        applied(8, 2, "h5"),
        reply(9, "c1", 7, "h5", 2),
    ];
    let violation = check(&lost_reply).unwrap();
    assert_eq!(violation.invariant, "5 one request, one seat");
    assert_eq!(
        violation.what,
        "request 7 of c1 was granted twice: h2, then h5 (applied by #2)"
    );
}

#[test]
fn a_line_that_is_not_a_record_is_an_error_not_a_pass() {
    let lines = |second: &str| {
        vec![
            serde_json::to_string(&meta(1)).unwrap(),
            second.to_string(),
            serde_json::to_string(&granted(3, "c2", "h4")).unwrap(),
        ]
    };
    // A record every checker reads (a grant, at the end) is still a record.
    let fine = serde_json::to_string(&granted(1, "c1", "h2")).unwrap();
    assert_eq!(
        Checkers::check(&lines(&fine)).unwrap().map(|v| v.invariant),
        Some("1 no overuse")
    );
    // The same grant with a misspelt key, an unknown kind, or no JSON at all: the
    // history is not judged (a grant whose `event` key was misspelt once passed as no
    // grant at all).
    let misspelt = fine.replace(r#""event""#, r#""evnet""#);
    for bad in [
        misspelt.as_str(),
        r#"{"kind":"granted","t_ms":1}"#,
        "granted",
    ] {
        let error = Checkers::check(&lines(bad)).unwrap_err();
        assert_eq!(error.number, 2, "{error}");
        assert!(error.to_string().starts_with("history line 2: "), "{error}");
    }
    let error = Checkers::check(&lines(&misspelt)).unwrap_err();
    assert!(
        error.to_string().contains("missing field `event`"),
        "{error}"
    );
    // A line of an older writer that left out a field the checkers need.
    let old_meta = r#"{"kind":"meta","seed":0,"features":{"cad":{"count":1,"hal":true}}}"#;
    let error = Checkers::check(&[old_meta.to_string()]).unwrap_err();
    assert_eq!(error.number, 1, "{error}");
    // Journal lines carry the writer's monotonic time beside the record.
    let mut journal = lines(&fine);
    journal[1] = fine.replacen('{', r#"{"mono_ms":17,"#, 1);
    let entry: Entry = serde_json::from_str(&journal[1]).unwrap();
    assert_eq!(entry.mono_ms, Some(17));
    assert_eq!(
        Checkers::check(&journal).unwrap().map(|v| v.invariant),
        Some("1 no overuse")
    );
}

/// Application-level grants in a history, with their time and the server that answered.
fn grants_by(history: &[String]) -> Vec<(u64, u8)> {
    records(history)
        .into_iter()
        .filter_map(|record| match record {
            Record::Client(ClientRecord {
                t_ms,
                event: ClientEventRecord::Granted { server, .. },
                ..
            }) => Some((t_ms, server)),
            _ => None,
        })
        .collect()
}

/// A history's records.
fn records(history: &[String]) -> Vec<Record> {
    history
        .iter()
        .map(|line| serde_json::from_str::<Entry>(line).unwrap().record)
        .collect()
}

#[test]
fn the_standard_world_keeps_every_invariant_over_a_few_seeds() {
    for seed in 10..14 {
        let outcome = run(&WorldConfig::lan(seed, 5)).unwrap();
        if let Some(violation) = outcome.violation {
            panic!("seed {seed}: {violation}");
        }
        let grants = grants_by(&outcome.history).len();
        assert!(grants > 10, "seed {seed}: only {grants} grants");
        // The lease checkers follow heartbeat acknowledgements, so the replies must say
        // which seats they keep (histories without it once left "no lost seat" blind).
        let acks = records(&outcome.history)
            .iter()
            .filter(|r| matches!(r, Record::Reply(ReplyRecord { answer: Answer::Heartbeat(beat), .. }) if !beat.held.is_empty()))
            .count();
        assert!(
            acks > 10,
            "seed {seed}: {acks} heartbeat replies name seats"
        );
    }
}

#[test]
fn a_planted_bug_is_caught_in_the_running_world() {
    let mut config = WorldConfig::lan(3, 12);
    config.planted = Some(hal_sim::world::Planted::DoubleCount);
    let outcome = run(&config).unwrap();
    let violation = outcome
        .violation
        .expect("servers serving twice COUNT went unnoticed");
    assert_eq!(violation.invariant, "1 no overuse");
    assert!(violation.what.contains("COUNT is 5"), "{violation}");
    // The run stopped at the violation: nothing after its instant (the client task whose
    // grant broke it may finish its turn, e.g. by freezing, at the same instant).
    let last = records(&outcome.history).pop().unwrap();
    assert_eq!(last.t_ms(), Some(violation.t_ms), "{last:?}");
    let breaking = records(&violation.evidence).pop().unwrap();
    assert!(
        matches!(
            &breaking,
            Record::Client(ClientRecord {
                event: ClientEventRecord::Granted { .. },
                ..
            })
        ),
        "{breaking:?}"
    );
}

#[test]
fn a_planted_role_bug_is_caught_in_the_running_world() {
    use std::time::Duration;

    use hal_core::ServerId;
    use hal_sim::faults::Fault;
    // #1 is down from 3 s to 6 s: #2 serves meanwhile, and must hand back to #1 once #1
    // has been back for the failback hold (10 s).
    let mut config = WorldConfig::lan(5, 8);
    config.faults = Some(vec![
        (Duration::from_secs(3), Fault::Crash(ServerId::PRIMARY)),
        (Duration::from_secs(6), Fault::Restart(ServerId::PRIMARY)),
    ]);
    let fine = run(&config).unwrap();
    assert_eq!(fine.violation, None);
    let grants = grants_by(&fine.history);
    assert!(
        grants
            .iter()
            .any(|&(t, by)| by == 2 && (3_000..6_000).contains(&t)),
        "#2 did not serve while #1 was down: {grants:?}"
    );
    let last_by_2 = grants.iter().filter(|g| g.1 == 2).map(|g| g.0).max();
    assert!(
        last_by_2 < Some(19_500),
        "#2 still granted at {last_by_2:?} ms"
    );
    assert!(grants.iter().any(|&(t, by)| by == 1 && t > 19_500));

    // The same world with servers that never fail back.
    config.planted = Some(hal_sim::world::Planted::NoFailback);
    let violation = run(&config)
        .unwrap()
        .violation
        .expect("#2 serving long after #1 was healthy went unnoticed");
    assert_eq!(violation.invariant, "2 role rule", "{violation}");
    assert!(
        violation
            .what
            .contains("#2 granted while #1 had been up and connected to a peer"),
        "{violation}"
    );
}

fn meta_live(from: u64, bound: u64) -> Record {
    let Record::Meta(meta) = meta(5) else {
        unreachable!()
    };
    Record::Meta(Meta {
        liveness_from_ms: Some(from),
        liveness_bound_ms: Some(bound),
        ..meta
    })
}

fn denied(t: u64, client: &str, req: u64, reason: &str) -> Record {
    let reason = reason.to_string();
    client_event(
        t,
        client,
        ClientEventRecord::Denied {
            req,
            reason,
            attempts: 1,
        },
    )
}

/// The application of `client` was told request `req` has an unknown outcome.
fn gave_up(t: u64, client: &str, req: u64) -> Record {
    let event = ClientEventRecord::Unknown {
        req,
        attempts: 9,
        reason: None,
    };
    client_event(t, client, event)
}

fn resolved(t: u64, client: &str, req: u64, handle: &str) -> Record {
    let handle = Some(handle.to_string());
    client_event(t, client, ClientEventRecord::Resolved { req, handle })
}

#[test]
fn liveness_judges_only_the_liveness_phase() {
    // Before the phase, a long wait and a no_majority are fine.
    let chaos = [
        meta_live(1000, 100),
        checkout(10, "c1", 1),
        denied(900, "c1", 1, "no_majority"),
    ];
    assert_eq!(check(&chaos), None);
    // In the phase, all_in_use is an answer; no_majority is not.
    let busy = [
        meta_live(1000, 100),
        checkout(1010, "c1", 1),
        denied(1020, "c1", 1, "all_in_use"),
    ];
    assert_eq!(check(&busy), None);
    let stuck = [
        meta_live(1000, 100),
        checkout(1010, "c1", 1),
        denied(1090, "c1", 1, "no_majority"),
    ];
    let violation = check(&stuck).unwrap();
    assert_eq!(violation.invariant, "6 liveness");
    assert_eq!(
        violation.what,
        "checkout 1 of c1 denied with \"no_majority\" in the liveness phase"
    );
    // Silence past the bound is caught at the next record, or at the end.
    let silent = [meta_live(1000, 100), checkout(1010, "c1", 1), end(1200)];
    let violation = check(&silent).unwrap();
    assert_eq!(violation.invariant, "6 liveness");
    assert!(
        violation
            .what
            .contains("unanswered after 190 ms (bound 100 ms)"),
        "{violation}"
    );
    // A checkout given up before the phase is settled in it: what the client sends for
    // it then is no new checkout, and nobody waits on it (seed 488 of the standard world).
    let settled = [
        meta_live(1000, 100),
        checkout(10, "c1", 1),
        gave_up(900, "c1", 1),
        checkout(1010, "c1", 1),
        resolved(1500, "c1", 1, "h2"),
        checkout(1510, "c1", 2),
        end(1700),
    ];
    let violation = check(&settled).unwrap();
    assert!(
        violation.what.starts_with("checkout 2 of c1"),
        "{violation}"
    );
}

#[test]
fn a_seat_is_held_until_the_lease_the_client_counts_runs_out() {
    let request =
        |t: u64, client: &str, req: u64, op: OpName| Record::Request(request(t, client, req, op));
    let grant_reply = |t: u64, client: &str, req: u64, handle: &str| {
        Record::Reply(grant(t, client, req, handle, 1, 100))
    };
    let c1 = [
        meta(1),
        request(0, "c1", 1, OpName::Checkout),
        grant_reply(5, "c1", 1, "h2"),
        app_granted(5, "c1", 1, "h2"),
    ];
    // c1's lease (from its send at 0, 100 ms) is over at 100: c2 may have the seat at 150.
    let mut later = c1.to_vec();
    later.extend([
        request(140, "c2", 1, OpName::Checkout),
        grant_reply(150, "c2", 1, "h3"),
        app_granted(150, "c2", 1, "h3"),
    ]);
    assert_eq!(check(&later), None);
    // A heartbeat sent at 50 and acknowledged keeps c1's seat until 150: overuse at 120.
    let mut kept = c1.to_vec();
    kept.extend([
        request(50, "c1", 2, OpName::Heartbeat),
        heartbeat_ack(55, 2, 1, &["h2"], &[]),
        request(110, "c2", 1, OpName::Checkout),
        grant_reply(120, "c2", 1, "h3"),
        app_granted(120, "c2", 1, "h3"),
    ]);
    let violation = check(&kept).unwrap();
    assert_eq!(violation.invariant, "1 no overuse");
}

#[test]
fn unknown_handle_for_a_seat_whose_lease_is_intact_is_caught() {
    let lines = |unknown_at: u64| {
        vec![
            meta(5),
            checkout(0, "c1", 1),
            Record::Reply(grant(5, "c1", 1, "h2", 1, 100)),
            app_granted(5, "c1", 1, "h2"),
            Record::Request(RequestRecord {
                server: Some(2),
                ..request(unknown_at, "c1", 2, OpName::Heartbeat)
            }),
            heartbeat_ack(unknown_at, 2, 2, &[], &["h2"]),
        ]
    };
    // After the lease ran out (at 100), "unknown" is the truth.
    assert_eq!(check(&lines(120)), None);
    let violation = check(&lines(60)).unwrap();
    assert_eq!(violation.invariant, "4 no lost seat");
    assert_eq!(
        violation.what,
        "server #2 said h2 of c1 is unknown while its lease runs until 100 ms"
    );
}

/// The LAN profile's timers: a 2 min lease, a 1 s election timeout, a 500 ms failover
/// delay and a 10 s failback hold.
fn meta_timing() -> Record {
    meta(5)
}

fn fault(t: u64, kind: FaultKind, a: &[u8], b: &[u8]) -> Record {
    let servers = |ids: &[u8]| ids.iter().map(|&id| Party::Server(id)).collect();
    Record::Fault(Fault::new(t, kind, servers(a), servers(b)))
}

/// A `link` fault record: the link between `a` and `b` goes to `state`.
fn link(t: u64, a: &[u8], b: &[u8], state: LinkState) -> Record {
    let Record::Fault(fault) = fault(t, FaultKind::Link, a, b) else {
        unreachable!()
    };
    Record::Fault(Fault {
        state: Some(state),
        ..fault
    })
}

#[test]
fn a_grant_from_a_server_cut_off_from_every_peer_is_caught() {
    let request = checkout(500, "c1", 1);
    // Cut off before the request came: a violation.
    let cut_first = [
        meta_timing(),
        fault(100, FaultKind::Partition, &[1], &[2, 3]),
        request.clone(),
        reply(600, "c1", 1, "h2", 1),
    ];
    assert_eq!(check(&cut_first).unwrap().invariant, "3 majority rule");
    // Cut off after the request came (the ack may have arrived before): fine.
    let cut_later = [
        meta_timing(),
        request.clone(),
        fault(550, FaultKind::Partition, &[1], &[2, 3]),
        reply(600, "c1", 1, "h2", 1),
    ];
    assert_eq!(check(&cut_later), None);
    // One peer left (3 down, 2 connected): fine; 2 down and 3 cut one way: a violation.
    let one_peer = [
        meta_timing(),
        fault(100, FaultKind::Crash, &[3], &[]),
        request.clone(),
        reply(600, "c1", 1, "h2", 1),
    ];
    assert_eq!(check(&one_peer), None);
    let none = [
        meta_timing(),
        fault(100, FaultKind::Crash, &[2], &[]),
        fault(110, FaultKind::PartitionOneway, &[3], &[1]),
        request,
        reply(600, "c1", 1, "h2", 1),
    ];
    assert_eq!(check(&none).unwrap().invariant, "3 majority rule");
}

#[test]
fn a_grant_by_2_long_after_1_is_healthy_again_is_caught() {
    // #1 crashed at 100, back at 1000: #2 may serve until 1000 + 10 s hold + 2.5 s + 1 s.
    let base = [
        meta_timing(),
        fault(100, FaultKind::Crash, &[1], &[]),
        fault(1000, FaultKind::Restart, &[1], &[]),
    ];
    let mut soon = base.to_vec();
    soon.push(reply(12_000, "c1", 1, "h2", 2));
    assert_eq!(check(&soon), None);
    let mut late = base.to_vec();
    late.push(reply(20_000, "c1", 1, "h2", 2));
    let violation = check(&late).unwrap();
    assert_eq!(violation.invariant, "2 role rule");
    // A cut between #1 and #2 alone leaves #1 connected to #3: not "#1 down" (DESIGN
    // §6.3, rule 2), so #2 must have handed the role back all the same.
    let mut cut = base.to_vec();
    cut.push(fault(1500, FaultKind::Partition, &[1], &[2]));
    cut.push(reply(20_000, "c1", 1, "h2", 2));
    let violation = check(&cut).unwrap();
    assert_eq!(violation.invariant, "2 role rule");
    assert!(
        violation.what.contains("since 1000 ms"),
        "contact through #3 counts from #1's restart: {violation}"
    );
    // Cut off from both peers, #1 is "down": #2 may stay active.
    let mut isolated = base.to_vec();
    isolated.push(fault(1500, FaultKind::Partition, &[1], &[2, 3]));
    isolated.push(reply(20_000, "c1", 1, "h2", 2));
    assert_eq!(check(&isolated), None);
    // Connected first to #3, then only to #2 (never a break): the hold is not restarted.
    let mut handed = base.to_vec();
    handed.push(fault(1500, FaultKind::Partition, &[1], &[2]));
    handed.push(fault(5000, FaultKind::Repair, &[1], &[2]));
    handed.push(fault(5000, FaultKind::Partition, &[1], &[3]));
    handed.push(reply(16_000, "c1", 1, "h2", 2));
    let violation = check(&handed).unwrap();
    assert!(violation.what.contains("since 1000 ms"), "{violation}");
    // Over a flapping link #1's contact cannot be told: the hold restarts at each break.
    let mut flapping = base.to_vec();
    flapping.push(fault(1500, FaultKind::Partition, &[1], &[3]));
    flapping.push(link(1500, &[1], &[2], LinkState::Flapping));
    flapping.push(reply(20_000, "c1", 1, "h2", 2));
    assert_eq!(check(&flapping), None);
}

fn active(t: u64, server: u8) -> Record {
    Record::Role(RoleRecord {
        t_ms: t,
        server,
        role: RoleName::Active,
        term: t,
    })
}

/// Invariant 8: #1 takes the role back from a serving #2 only after the failback hold.
#[test]
fn a_failback_before_the_hold_is_caught() {
    // #1 crashed at 100 and is back at 1000; #2 has been active since 2000; the hold
    // is 10 s.
    let base = [
        meta_timing(),
        active(10, 1),
        fault(100, FaultKind::Crash, &[1], &[]),
        fault(1_000, FaultKind::Restart, &[1], &[]),
        active(2_000, 2),
    ];
    let mut early = base.to_vec();
    early.push(active(4_000, 1));
    let violation = check(&early).unwrap();
    assert_eq!(violation.invariant, "8 failback hold");
    assert!(violation.what.contains("3000 ms after"), "{violation}");
    let mut held = base.to_vec();
    held.push(active(11_500, 1));
    assert_eq!(check(&held), None);
    // #2 crashed meanwhile: #1 and #3 elect #1 at once, rightly.
    let mut lost = base.to_vec();
    lost.push(fault(3_500, FaultKind::Crash, &[2], &[]));
    lost.push(active(4_000, 1));
    assert_eq!(check(&lost), None);
    // #2's links went slow: it may have stepped down; not judged.
    let mut shaky = base.to_vec();
    shaky.push(link(3_500, &[2], &[3], LinkState::Slow));
    shaky.push(link(3_500, &[2], &[1], LinkState::Slow));
    shaky.push(active(4_000, 1));
    assert_eq!(check(&shaky), None);
    // Found by the long sweep (seed 100892 of two minutes): #1 took the role back after
    // the hold, was then cut off for a second while active, and won an ordinary election
    // once back. #2 was never active in between: not a failback.
    let mut again = held.clone();
    again.push(fault(12_000, FaultKind::Partition, &[1], &[2, 3]));
    again.push(fault(13_000, FaultKind::Repair, &[1], &[2, 3]));
    again.push(active(14_300, 1));
    assert_eq!(check(&again), None);
    // A cut of #1 shorter than the gap the servers tolerate (half the 1 s election
    // timeout) need not restart the hold; a longer one, or a restart however quick, must
    // (the first: seed 300073 of the WAN sweep of ten minutes, a 2.4 s isolation).
    let after_break = |break_faults: [Record; 2]| {
        let mut lines = base.to_vec();
        lines.extend(break_faults);
        lines.push(active(11_500, 1));
        check(&lines).map(|v| v.invariant)
    };
    let isolated = |ms: u64| {
        [
            fault(5_000, FaultKind::Partition, &[1], &[2, 3]),
            fault(5_000 + ms, FaultKind::Repair, &[1], &[2, 3]),
        ]
    };
    assert_eq!(after_break(isolated(400)), None);
    assert_eq!(after_break(isolated(600)), Some("8 failback hold"));
    let restarted = [
        fault(5_000, FaultKind::Crash, &[1], &[]),
        fault(5_100, FaultKind::Restart, &[1], &[]),
    ];
    assert_eq!(after_break(restarted), Some("8 failback hold"));
}

fn audit(t: u64, holders: &[(&str, &str)]) -> Record {
    let holders = holders
        .iter()
        .map(|(handle, user)| Holder {
            handle: handle.to_string(),
            user: user.to_string(),
        })
        .collect();
    Record::Audit(Audit {
        t_ms: t,
        server: 1,
        holders,
    })
}

#[test]
fn a_seat_held_by_nobody_at_the_audit_is_caught() {
    let base = vec![
        meta_live(20_000, 4_500),
        checkout(1_000, "c1", 1),
        app_granted(1_010, "c1", 1, "h2"),
    ];
    // Held by the client that knows it: fine.
    let mut known = base.clone();
    known.push(audit(29_000, &[("h2", "c1")]));
    assert_eq!(check(&known), None);
    // A seat the server keeps for c1, which was told its request's outcome is unknown
    // long ago and never settled it: caught.
    let mut orphan = base.clone();
    orphan.push(checkout(2_000, "c1", 2));
    orphan.push(gave_up(8_000, "c1", 2));
    orphan.push(audit(29_000, &[("h2", "c1"), ("h5", "c1")]));
    let violation = check(&orphan).unwrap();
    assert_eq!(violation.invariant, "7 no orphan seat");
    assert!(violation.what.contains("seat h5"), "{violation}");
    // Settled since: fine.
    let mut settled = orphan.clone();
    settled.insert(settled.len() - 1, resolved(9_000, "c1", 2, "h5"));
    settled.pop();
    settled.push(audit(29_000, &[("h2", "c1")]));
    assert_eq!(check(&settled), None);
    // Given up moments before the audit, or with a request on its way: not yet judged.
    let mut recent = base.clone();
    recent.push(checkout(19_000, "c1", 2));
    recent.push(gave_up(25_000, "c1", 2));
    recent.push(audit(29_000, &[("h2", "c1"), ("h5", "c1")]));
    assert_eq!(check(&recent), None);
    let mut asking = base.clone();
    asking.push(checkout(28_990, "c1", 2));
    asking.push(audit(29_000, &[("h2", "c1"), ("h5", "c1")]));
    assert_eq!(check(&asking), None);
    // A seat lost and still listed: caught.
    let mut lost = base.clone();
    let handle = Some("h2".to_string());
    lost.push(client_event(
        9_000,
        "c1",
        ClientEventRecord::Lost { handle },
    ));
    lost.push(audit(29_000, &[("h2", "c1")]));
    assert_eq!(check(&lost).map(|v| v.invariant), Some("7 no orphan seat"));
    // A crashed process's seats run out with their lease (2 min here): not judged before.
    let mut crashed = base;
    let handle = Some("h2".to_string());
    crashed.push(client_event(
        9_000,
        "c1",
        ClientEventRecord::Crashed { handle },
    ));
    crashed.push(audit(29_000, &[("h2", "c1")]));
    assert_eq!(check(&crashed), None);
    // With an 8 s lease and a 1 s margin, a seat of a client dead since 9 s must be gone
    // by 9 + 8 + 1 + 4.5 (the liveness bound, for the expiry to commit) = 22.5 s.
    let Record::Meta(meta) = meta_live(20_000, 4_500) else {
        unreachable!()
    };
    let mut outlived = crashed.clone();
    outlived[0] = Record::Meta(Meta {
        lease_ms: 8_000,
        ..meta
    });
    let violation = check(&outlived).unwrap();
    assert_eq!(violation.invariant, "7 no orphan seat");
    assert!(violation.what.contains("crashed at 9000 ms"), "{violation}");
    assert!(violation.what.contains("expire by 22500 ms"), "{violation}");
    // A new leader at 20 s restarted every lease: not yet.
    let mut restarted = outlived.clone();
    let new_leader = Record::Role(RoleRecord {
        t_ms: 20_000,
        server: 2,
        role: RoleName::Active,
        term: 3,
    });
    restarted.insert(restarted.len() - 1, new_leader);
    assert_eq!(check(&restarted), None);
    // A borrow outlives its client until it ends.
    let mut borrowed = outlived.clone();
    let borrow = borrowed_until(1_800_003_601_034, grant(1_005, "c1", 1, "h2", 1, 8_000));
    borrowed.insert(2, Record::Reply(borrow));
    assert_eq!(check(&borrowed), None);
}

/// A seat table names the user, not the process: the seat of a user's restarted process
/// (`c1.1`, which the servers know as `c1`, like the process that crashed) is its own,
/// found by the grant the servers applied, and is not judged by the crashed process's
/// lease (found by the seed sweep once its clients restarted as scenario members do).
#[test]
fn a_restarted_process_holds_its_own_seats_under_its_users_name() {
    let Record::Meta(meta) = meta_live(20_000, 4_500) else {
        unreachable!()
    };
    let applied = |t, client: &str, req, handle: &str| {
        Record::Applied(Applied {
            t_ms: t,
            server: 1,
            client: client.to_string(),
            req,
            handle: handle.to_string(),
        })
    };
    let crashed = ClientEventRecord::Crashed {
        handle: Some("h2".to_string()),
    };
    let mut history = vec![
        Record::Meta(Meta {
            lease_ms: 8_000,
            ..meta
        }),
        checkout(1_000, "c1", 1),
        applied(1_005, "c1", 1, "h2"),
        app_granted(1_010, "c1", 1, "h2"),
        client_event(1_010, "c1", crashed),
        checkout(13_000, "c1.1", 1),
        applied(13_005, "c1.1", 1, "h28"),
        app_granted(13_010, "c1.1", 1, "h28"),
    ];
    history.push(audit(29_000, &[("h28", "c1")]));
    assert_eq!(check(&history), None);
    // The crashed process's own seat, still listed, is caught as before.
    history.pop();
    history.push(audit(29_000, &[("h2", "c1"), ("h28", "c1")]));
    let violation = check(&history).unwrap();
    assert_eq!(violation.invariant, "7 no orphan seat");
    assert!(violation.what.contains("seat h2 of c1"), "{violation}");
    // And a seat the restarted process gave up on and no longer holds.
    history.pop();
    let released = ClientEventRecord::Lost {
        handle: Some("h28".to_string()),
    };
    history.push(client_event(20_000, "c1.1", released));
    history.push(audit(29_000, &[("h28", "c1")]));
    let violation = check(&history).unwrap();
    assert!(violation.what.contains("seat h28"), "{violation}");
}

/// A client's seat whose lease (8 s, counted from the send at 1033 ms) runs out at
/// 9033 ms, its library reporting the loss at `lost` ms, frozen from `frozen` if given.
fn lease_run_out(lost: u64, frozen: Option<(u64, u64)>) -> Vec<Record> {
    let mut lines = vec![
        meta(5),
        checkout(1033, "c2", 1),
        Record::Reply(grant(1039, "c2", 1, "h3", 1, 8000)),
        app_granted(1039, "c2", 1, "h3"),
        Record::Request(request(3039, "c2", 2, OpName::Heartbeat)),
    ];
    if let Some((from, to)) = frozen {
        let (frozen, thawed) = (
            ClientEventRecord::Frozen { handle: None },
            ClientEventRecord::Thawed { handle: None },
        );
        lines.push(client_event(from, "c2", frozen));
        lines.push(client_event(to, "c2", thawed));
    }
    let handle = Some("h3".to_string());
    lines.push(client_event(lost, "c2", ClientEventRecord::Lost { handle }));
    lines
}

#[test]
fn a_lease_loss_reported_late_is_caught() {
    assert_eq!(check(&lease_run_out(9033, None)), None, "on time");
    assert_eq!(check(&lease_run_out(9034, None)), None, "rounding");
    let late = check(&lease_run_out(9039, None)).unwrap();
    assert_eq!(late.invariant, "9 lease lost on time");
    assert!(
        late.what
            .contains("6 ms after its lease ran out at 9033 ms"),
        "{late}"
    );
    assert_eq!(late.evidence.len(), 2, "{late}");
    // A checkin sent after the lease ran out, the loss not reported: held past it.
    let mut checked_in = lease_run_out(9_040, None);
    checked_in.insert(
        5,
        Record::Request(RequestRecord {
            handle: Some("h3".to_string()),
            ..request(9039, "c2", 3, OpName::Checkin)
        }),
    );
    let late = check(&checked_in).unwrap();
    assert!(
        late.what
            .contains("c2 sent a checkin of seat h3 at 9039 ms"),
        "{late}"
    );
    // Frozen when the lease ran out: it reports the loss as it thaws.
    let thawed = lease_run_out(12_000, Some((5_000, 12_000)));
    assert_eq!(check(&thawed), None);
    // Frozen, but thawed before the lease ran out: late all the same.
    let thawed_before = lease_run_out(9_500, Some((5_000, 6_000)));
    assert!(check(&thawed_before).is_some());
}

fn checkpoint(t: u64, server: u8, index: u64, digest: &str, how: SnapshotHow) -> Record {
    Record::Checkpoint(Checkpoint {
        t_ms: t,
        server,
        index,
        digest: digest.to_string(),
        snapshot: how,
    })
}

#[test]
fn replicas_that_disagree_at_one_index_are_caught() {
    use SnapshotHow::{Installed, Taken};
    let agree = [
        meta(5),
        checkpoint(10, 1, 64, "00000000000000aa", Taken),
        checkpoint(12, 3, 64, "00000000000000aa", Installed),
        checkpoint(20, 2, 70, "00000000000000bb", Taken),
    ];
    assert_eq!(check(&agree), None);
    let differ = [
        meta(5),
        checkpoint(10, 1, 64, "00000000000000aa", Taken),
        checkpoint(12, 3, 64, "00000000000000ab", Installed),
    ];
    let violation = check(&differ).unwrap();
    assert_eq!(violation.invariant, "10 replicas agree");
    assert_eq!(violation.t_ms, 12);
    assert_eq!(
        violation.what,
        "server #3 holds state 00000000000000ab at log index 64 (installed snapshot), \
         another server 00000000000000aa there"
    );
    assert_eq!(violation.evidence.len(), 2);
}
