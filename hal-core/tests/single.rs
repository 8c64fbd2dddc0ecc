//! Single-server mode: normal network licenses, served by a cluster of one, with the same
//! state machine and the same output contract.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::protocol::{ClientId, ClientRequest, Denial, Op, ReplyResult, RequestSeq};
use hal_core::server::{Config, Durable, Output, Server};
use hal_core::time::{Now, Time, WallTime};
use hal_core::timing::Timing;

fn now(ms: u64) -> Now {
    Now {
        mono: Time(ms),
        wall: WallTime(1_800_000_000_000 + ms),
    }
}

fn catalog() -> Catalog {
    let rules = FeatureRules {
        count: 1,
        borrow_hours_max: Some(24),
        start: None,
        end: None,
        hostid_ok: true,
    };
    Catalog::from_rules([("viewer".to_string(), rules)])
}

fn checkout(client: u64, seq: u64) -> ClientRequest {
    ClientRequest {
        client: ClientId(client),
        seq: RequestSeq(seq),
        op: Op::Checkout {
            feature: "viewer".into(),
            user: "u".into(),
            host: "h".into(),
        },
    }
}

/// A single server starting with an empty disk at time 0.
fn fresh_server() -> Server {
    Server::new(
        Config::single(Timing::lan()),
        catalog(),
        Durable::default(),
        now(0),
    )
}

/// Drains `server`, applying persist writes to `disk`; returns the outputs.
fn drain(server: &mut Server, disk: &mut Durable) -> Vec<Output> {
    let mut outputs = Vec::new();
    while let Some(output) = server.poll_output() {
        if let Output::Persist(write) = &output {
            disk.apply(write);
        }
        outputs.push(output);
    }
    outputs
}

#[test]
fn a_single_server_leads_at_once_and_persists_before_it_replies() {
    let mut disk = Durable::default();
    let mut server = fresh_server();
    assert!(server.is_leader());
    drain(&mut server, &mut disk);
    server.handle_client(now(5), checkout(7, 1));
    let outputs = drain(&mut server, &mut disk);
    let persist = outputs
        .iter()
        .position(|o| matches!(o, Output::Persist(_)))
        .unwrap();
    let reply = outputs
        .iter()
        .position(|o| matches!(o, Output::Reply(_)))
        .unwrap();
    assert!(
        persist < reply,
        "the grant is written before it is announced: {outputs:?}"
    );
    let Output::Reply(reply) = &outputs[reply] else {
        unreachable!()
    };
    assert!(
        matches!(reply.result, ReplyResult::Granted { .. }),
        "{reply:?}"
    );
    assert!(
        outputs.iter().all(|o| !matches!(o, Output::Peer(_))),
        "no peers to talk to"
    );

    // A second client finds the one seat taken.
    server.handle_client(now(6), checkout(8, 1));
    let outputs = drain(&mut server, &mut disk);
    let denied = outputs.iter().any(|o| {
        matches!(o, Output::Reply(r) if r.result == ReplyResult::Denied(Denial::AllInUse { used: 1, count: 1 }))
    });
    assert!(denied, "{outputs:?}");
}

#[test]
fn a_single_server_restarts_from_disk_with_its_seats_and_answers_retries() {
    let mut disk = Durable::default();
    let mut server = fresh_server();
    drain(&mut server, &mut disk);
    server.handle_client(now(5), checkout(7, 1));
    let first = drain(&mut server, &mut disk);
    let handle = first.iter().find_map(|o| match o {
        Output::Reply(r) => match r.result {
            ReplyResult::Granted { handle, .. } => Some(handle),
            _ => None,
        },
        _ => None,
    });
    let handle = handle.unwrap();

    let mut restarted = Server::new(
        Config::single(Timing::lan()),
        catalog(),
        disk.clone(),
        now(10_000),
    );
    drain(&mut restarted, &mut disk);
    assert!(restarted.is_leader());
    assert_eq!(restarted.seats().len(), 1);
    restarted.handle_client(now(10_005), checkout(7, 1));
    let outputs = drain(&mut restarted, &mut disk);
    let again = outputs.iter().find_map(|o| match o {
        Output::Reply(r) => Some(r.result.clone()),
        _ => None,
    });
    assert!(
        matches!(again, Some(ReplyResult::Granted { handle: h, .. }) if h == handle),
        "{again:?}"
    );
    assert_eq!(restarted.seats().len(), 1, "the retry took no second seat");
}

#[test]
fn with_durable_reports_a_grant_waits_for_the_report_of_its_write() {
    let mut config = Config::single(Timing::lan());
    config.reports_durable = true;
    let mut disk = Durable::default();
    let mut server = Server::new(config, catalog(), Durable::default(), now(0));
    drain(&mut server, &mut disk);
    server.handle_durable(now(1), server.last_index());
    drain(&mut server, &mut disk);

    server.handle_client(now(5), checkout(7, 1));
    let written = drain(&mut server, &mut disk);
    assert!(
        written.iter().any(|o| matches!(o, Output::Persist(_))),
        "{written:?}"
    );
    assert!(
        written.iter().all(|o| !matches!(o, Output::Reply(_))),
        "no answer before the write is reported durable: {written:?}"
    );
    // A report that stops short of the grant's entry answers nothing either.
    server.handle_durable(
        now(6),
        hal_core::protocol::LogIndex(server.last_index().0 - 1),
    );
    let early = drain(&mut server, &mut disk);
    assert!(
        early.iter().all(|o| !matches!(o, Output::Reply(_))),
        "{early:?}"
    );

    server.handle_durable(now(7), server.last_index());
    let answered = drain(&mut server, &mut disk);
    let granted = answered
        .iter()
        .any(|o| matches!(o, Output::Reply(r) if matches!(r.result, ReplyResult::Granted { .. })));
    assert!(granted, "{answered:?}");
}
