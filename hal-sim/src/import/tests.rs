//! The importer on hand-written journals: a crash and restart, a two-way and a one-way
//! cut, clients with grants and denials, clocks that differ, a window that cuts through
//! events, and inputs that are wrong. Each journal is written as the servers write them
//! (JSON Lines files with a meta record first) and read back with hal-net's reader.

use std::path::PathBuf;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::record::{
    Entry, FeatureMeta, LinkRecord, Meta, OpName, PeerClock, Record, Recovery, ResultName,
    RoleName, RoleRecord, SeatChangeName, SeatRecord, Served, Start, Stop,
};
use hal_core::timing::Timing;

use super::*;
use crate::faults::Fault;
use crate::scenario::{Answer, ClientAct, Scenario};

/// The journals' time 0: 2026-12-05T09:00:00Z.
const T0: u64 = 1_796_461_200_000;

const LICENSE: &str =
    "FEATURE cad\n{\n  VENDOR = acme\n  COUNT = 2\n  HAL_SERVERS = 3\n  BORROW = 24\n}\n";

fn s(n: u8) -> ServerId {
    ServerId::new(n).unwrap()
}

/// One server's journal being written; times are seconds after [`T0`] on its own clock.
struct J {
    server: u8,
    lines: Vec<Entry>,
}

impl J {
    fn new(server: u8) -> J {
        J {
            server,
            lines: Vec::new(),
        }
    }

    fn at(t_s: f64) -> u64 {
        (T0 as i64 + (t_s * 1000.0).round() as i64) as u64
    }

    fn push(mut self, record: Record) -> J {
        self.lines.push(Entry {
            record,
            mono_ms: Some(1),
        });
        self
    }

    fn start(self, t: f64) -> J {
        let server = self.server;
        self.push(Record::Start(Start {
            t_ms: J::at(t),
            server,
            version: "0.1.0".into(),
            pid: 7,
            recovered: Recovery::default(),
        }))
    }

    fn stop(self, t: f64) -> J {
        let server = self.server;
        self.push(Record::Stop(Stop {
            t_ms: J::at(t),
            server,
            reason: "shutdown".into(),
        }))
    }

    fn role(self, t: f64, role: RoleName, term: u64) -> J {
        let server = self.server;
        self.push(Record::Role(RoleRecord {
            t_ms: J::at(t),
            server,
            role,
            term,
        }))
    }

    fn link(self, t: f64, peer: u8, up: bool) -> J {
        let server = self.server;
        self.push(Record::Link(LinkRecord {
            t_ms: J::at(t),
            server,
            peer,
            up,
            reason: (!up).then(|| "no heartbeat for 1s".into()),
        }))
    }

    /// Links to both peers up at `t`.
    fn linked(self, t: f64) -> J {
        let peers: Vec<u8> = (1..=3).filter(|&p| p != self.server).collect();
        peers.into_iter().fold(self, |j, p| j.link(t, p, true))
    }

    fn clock(self, t: f64, peer: u8, offset_ms: i64, rtt_ms: u64) -> J {
        let server = self.server;
        self.push(Record::PeerClock(PeerClock {
            t_ms: J::at(t),
            server,
            peer,
            offset_ms,
            rtt_ms,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn served(
        self,
        t: f64,
        client: &str,
        req: u64,
        op: OpName,
        result: ResultName,
        reason: Option<&str>,
        handle: Option<&str>,
    ) -> J {
        let server = self.server;
        let asks = matches!(op, OpName::Checkout | OpName::Borrow);
        self.push(Record::Served(Served {
            t_ms: J::at(t),
            server,
            client: client.into(),
            req,
            op,
            feature: asks.then(|| "cad".into()),
            user: asks.then(|| user(client)),
            host: asks.then(|| "ws1".into()),
            handle: handle.map(String::from),
            result,
            reason: reason.map(String::from),
            granted_by: (result == ResultName::Granted).then_some(server),
            borrow_end_ms: None,
            waited_ms: None,
            received: None,
        }))
    }

    /// The last `served` record's request waited `ms` on the server for its answer.
    fn waited(self, ms: u64) -> J {
        self.last_served(|served| served.waited_ms = Some(ms))
    }

    /// The last `served` record's request was the `n`th this server received.
    fn received(self, n: u64) -> J {
        self.last_served(|served| served.received = Some(n))
    }

    fn last_served(mut self, change: impl FnOnce(&mut Served)) -> J {
        if let Some(Entry {
            record: Record::Served(served),
            ..
        }) = self.lines.last_mut()
        {
            change(served);
        }
        self
    }

    fn seat(
        self,
        t: f64,
        index: u64,
        change: SeatChangeName,
        handle: &str,
        client: &str,
        req: u64,
    ) -> J {
        let server = self.server;
        let grant = change == SeatChangeName::Granted;
        self.push(Record::Seat(SeatRecord {
            t_ms: J::at(t),
            server,
            index,
            change,
            handle: handle.into(),
            feature: "cad".into(),
            client: client.into(),
            req: Some(req),
            user: grant.then(|| user(client)),
            host: grant.then(|| "ws1".into()),
            by: grant.then_some(1),
            borrow_end_ms: None,
            removed_by: None,
        }))
    }

    fn meta(&self) -> Meta {
        let lan = Timing::lan();
        Meta {
            t_ms: Some(T0),
            server: Some(self.server),
            version: Some("0.1.0".into()),
            triad: Some(vec!["6200@a".into(), "6200@b".into(), "6200@c".into()]),
            timing_ms: Some(
                [
                    ("peer_heartbeat_ms".to_string(), 100),
                    ("client_heartbeat_ms".to_string(), 30_000),
                ]
                .into(),
            ),
            features: [(
                "cad".to_string(),
                FeatureMeta {
                    count: 2,
                    hal: true,
                },
            )]
            .into(),
            ..Meta::new(
                &Timing {
                    failback_hold: Duration::from_secs(5),
                    ..lan
                },
                Default::default(),
            )
        }
    }

    /// Writes `dir/jN/journal-1.jsonl`; its directory.
    fn write(&self, dir: &std::path::Path) -> PathBuf {
        let at = dir.join(format!("j{}", self.server));
        std::fs::create_dir_all(&at).unwrap();
        let mut text = serde_json::to_string(&Entry::from(Record::Meta(self.meta()))).unwrap();
        text.push('\n');
        for line in &self.lines {
            text.push_str(&serde_json::to_string(line).unwrap());
            text.push('\n');
        }
        std::fs::write(at.join("journal-1.jsonl"), text).unwrap();
        at
    }
}

/// The user of a hand-written client id: `alice` for `...a1`, `bob` for `...b2`.
fn user(client: &str) -> String {
    match client.chars().last() {
        Some('1') => "alice".into(),
        Some('2') => "bob".into(),
        _ => "carol".into(),
    }
}

const ALICE: &str = "00000000000000a1";
const BOB: &str = "00000000000000b2";
const CAROL: &str = "00000000000000c3";

/// Imports `journals` with `options`: the text, and the scenario it loads as.
fn import_with(journals: Vec<J>, options: Options) -> Result<(Imported, Scenario), ImportError> {
    let dir = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = journals.iter().map(|j| j.write(dir.path())).collect();
    let read = hal_net::journal::read::read(&dirs)?;
    let license = LicenseFile::parse("cad.lic", LICENSE)?;
    let imported = import(&read, &license, &options)?;
    let scenario = crate::scenario::parse("imported.toml", &imported.text, dir.path()).unwrap();
    Ok((imported, scenario))
}

/// The text with each wrapped comment on one line again.
fn flat(text: &str) -> String {
    text.replace("\n#  ", " ")
}

fn imported(journals: Vec<J>) -> (Imported, Scenario) {
    import_with(journals, Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The three servers starting at 0 s, #1 active from 1 s, links up at 0.1 s.
fn triad() -> [J; 3] {
    [
        J::new(1)
            .start(0.0)
            .linked(0.1)
            .role(1.0, RoleName::Active, 1),
        J::new(2).start(0.0).linked(0.1),
        J::new(3).start(0.0).linked(0.1),
    ]
}

/// Runs the imported scenario once: it must pass (every expectation and check met, no
/// invariant violated) and have the field's active servers.
fn replays(imported: &Imported, scenario: &Scenario) {
    let outcome = crate::scenario::run(scenario, 1, None);
    let unmet: Vec<String> = outcome.unmet().collect();
    assert!(
        outcome.passed(),
        "{:?} {unmet:?} {:?} {:?}\n{}",
        outcome.verdict(),
        outcome.violation,
        outcome.failure,
        imported.text
    );
    assert_eq!(
        roles::history_sequence(&outcome.history),
        imported.field_actives,
        "{}",
        imported.text
    );
}

fn server_steps(scenario: &Scenario) -> Vec<(u64, Fault, Option<u64>)> {
    scenario
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Server { fault, lasting } => Some((
                step.at.as_millis() as u64,
                *fault,
                lasting.map(|l| l.as_millis() as u64),
            )),
            _ => None,
        })
        .collect()
}

fn client_steps(scenario: &Scenario) -> Vec<(u64, String, ClientAct, Option<Answer>)> {
    scenario
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Client { who, act } => Some((
                step.at.as_millis() as u64,
                who.clone(),
                act.clone(),
                step.expect.answer.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn actives(scenario: &Scenario) -> Vec<(u64, Option<u8>)> {
    scenario
        .checks
        .iter()
        .filter_map(|c| Some((c.at.as_millis() as u64, c.active?.map(|s| s.get()))))
        .collect()
}

#[test]
fn a_kill_and_restart_is_a_crash_with_its_downtime_and_the_roles_follow() {
    let [one, two, three] = triad();
    let one = one
        .role(10.0, RoleName::Active, 1)
        // Killed after 10 s: no stop record; the peers see it go at 10.3 s.
        .start(20.0)
        .linked(20.1)
        .role(20.2, RoleName::Standby, 2)
        .role(25.3, RoleName::Active, 3)
        .stop(40.0);
    let two = two
        .link(10.3, 1, false)
        .role(11.8, RoleName::Active, 2)
        .link(20.1, 1, true)
        .role(25.3, RoleName::Standby, 3)
        .stop(40.1);
    let three = three.link(10.4, 1, false).link(20.1, 1, true).stop(40.2);
    let (imported, scenario) = imported(vec![one, two, three]);
    assert_eq!(imported.field_actives, [1, 2, 1]);
    assert_eq!(
        server_steps(&scenario),
        [(10_300, Fault::Crash(s(1)), Some(9_700))],
        "{}",
        imported.text
    );
    // The shutdown at 40 s ends the replay; checks in the middle of each stable stretch.
    assert_eq!(scenario.duration, Duration::from_millis(39_999 + 2_000));
    assert_eq!(
        actives(&scenario),
        [(5_700, Some(1)), (15_900, Some(2)), (32_600, Some(1))],
        "{}",
        imported.text
    );
    assert!(flat(&imported.text).contains("# #1 was killed or lost power: no stop record; its last record at 2026-12-05T09:00:10.000Z; #2 saw the link down at 2026-12-05T09:00:10.300Z; #3 saw"), "{}", imported.text);
    assert!(
        flat(&imported.text).contains("# #1 started again at 2026-12-05T09:00:20.000Z"),
        "{}",
        imported.text
    );
}

#[test]
fn a_link_both_sides_saw_down_is_a_cut_and_one_side_only_a_one_way_cut() {
    let [one, two, three] = triad();
    // 1-2 down both ways from 10 s to 20 s; 2-3: only #3 stops hearing #2, 30-35 s.
    let one = one.link(10.0, 2, false).link(20.0, 2, true);
    let two = two.link(10.05, 1, false).link(20.02, 1, true);
    let three = three.link(30.0, 2, false).link(35.0, 2, true);
    let (imported, scenario) = imported(vec![one, two, three]);
    assert_eq!(
        server_steps(&scenario),
        [
            (10_000, Fault::Cut(s(1), s(2)), Some(10_020)),
            (30_000, Fault::OneWay(s(2), s(3)), Some(5_000)),
        ],
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains("cut_oneway = [2, 3]"),
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains("# what #2 sent #3 was lost (only #3 saw the link down)"),
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains(
            "# #3 saw #2 down at 2026-12-05T09:00:30.000Z (no heartbeat for 1s) [journal-1.jsonl:"
        ),
        "{}",
        imported.text
    );
    // The simulator plays both cuts (and proves each took effect); #1 stays active.
    replays(&imported, &scenario);
}

#[test]
fn a_blip_of_a_link_and_links_down_while_the_peer_was_down_are_not_cuts() {
    let [one, two, three] = triad();
    let one = one.link(10.0, 2, false).link(10.05, 2, true).stop(15.0);
    let two = two.link(15.1, 1, false);
    let three = three.link(15.1, 1, false);
    let (imported, scenario) = imported(vec![one, two, three]);
    assert_eq!(
        server_steps(&scenario),
        // #1 stopped cleanly (its journal says "shutdown"): a stop, not a power cut.
        [(15_000, Fault::Stop(s(1)), None)],
        "{}",
        imported.text
    );
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("for only 50 ms") && n.contains("too short")),
        "{:?}",
        imported.notes
    );
}

#[test]
fn clients_get_their_requests_once_with_the_fields_answers_as_expectations() {
    let [one, two, three] = triad();
    let one = one
        .served(
            5.0,
            ALICE,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h1"),
        )
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .served(
            6.0,
            BOB,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h2"),
        )
        .seat(6.0, 4, SeatChangeName::Granted, "h2", BOB, 1)
        // A retry of bob's request 1 answered again: the same request.
        .served(
            6.5,
            BOB,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h2"),
        )
        .served(
            12.0,
            ALICE,
            2,
            OpName::Checkout,
            ResultName::Denied,
            Some("all_in_use"),
            None,
        )
        .served(
            16.0,
            ALICE,
            3,
            OpName::Checkin,
            ResultName::Ok,
            None,
            Some("h1"),
        )
        .seat(16.0, 5, SeatChangeName::Released, "h1", ALICE, 3)
        .served(
            20.0,
            BOB,
            2,
            OpName::Borrow,
            ResultName::Denied,
            Some("borrow_not_allowed"),
            None,
        );
    // Bob asked #2 first for his first checkout: redirected to #1.
    let two = two.served(
        5.9,
        BOB,
        1,
        OpName::Checkout,
        ResultName::Denied,
        Some("not_active"),
        None,
    );
    let (imported, scenario) = imported(vec![one, two, three]);
    let steps = client_steps(&scenario);
    assert_eq!(
        steps,
        [
            (
                5_000,
                "alice".into(),
                ClientAct::Checkout("cad".into()),
                Some(Answer::Granted(Some(s(1))))
            ),
            (
                5_900,
                "bob".into(),
                ClientAct::Checkout("cad".into()),
                Some(Answer::Granted(Some(s(1))))
            ),
            (
                12_000,
                "alice".into(),
                ClientAct::Checkout("cad".into()),
                Some(Answer::Denied(Some("all_in_use".into())))
            ),
            (
                16_000,
                "alice".into(),
                ClientAct::Checkin("cad".into()),
                None
            ),
            (
                20_000,
                "bob".into(),
                ClientAct::Borrow("cad".into(), 25),
                Some(Answer::Denied(Some("borrow_not_allowed".into())))
            ),
        ],
        "{}",
        imported.text
    );
    let names: Vec<&str> = scenario.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        flat(&imported.text)
            .contains("# client 00000000000000a1: alice@ws1; 3 requests in the window"),
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains("#1 answered granted seat h2 by #1 [journal-1.jsonl:")
            && flat(&imported.text).contains("after 1 redirect(s)"),
        "{}",
        imported.text
    );
    // #1's stable stretch is checked where no seat changes nearby (11 s, between the
    // grants at 6 s and alice's checkin at 16 s): both seats in use.
    let checks: Vec<(u64, Option<u32>)> = scenario
        .checks
        .iter()
        .map(|c| (c.at.as_millis() as u64, c.in_use.get("cad").copied()))
        .collect();
    assert_eq!(checks, [(11_000, Some(2))], "{}", imported.text);
    // The simulator gives the same answers (the borrow asks for more than BORROW = 24).
    replays(&imported, &scenario);
}

#[test]
fn grants_and_denials_near_a_failover_carry_no_expectation() {
    let [one, two, three] = triad();
    let one = one.role(10.0, RoleName::Active, 1).start(13.0).linked(13.1);
    let two = two
        .link(10.2, 1, false)
        .role(11.7, RoleName::Active, 2)
        .served(
            11.9,
            BOB,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h1"),
        )
        .seat(11.9, 3, SeatChangeName::Granted, "h1", BOB, 1)
        .served(
            12.0,
            ALICE,
            1,
            OpName::Borrow,
            ResultName::Denied,
            Some("borrow_unavailable"),
            None,
        )
        .served(
            30.0,
            ALICE,
            2,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h2"),
        )
        .link(13.1, 1, true);
    let three = three.link(10.2, 1, false).link(13.1, 1, true);
    let (imported, scenario) = imported(vec![one, two, three]);
    let answers: Vec<Option<Answer>> = client_steps(&scenario).into_iter().map(|s| s.3).collect();
    assert_eq!(
        answers,
        [None, None, Some(Answer::Granted(Some(s(2))))],
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text)
            .contains("# no expectation: within 2.500 s of a change of roles or a fault"),
        "{}",
        imported.text
    );
}

#[test]
fn clocks_are_set_from_the_peer_clock_records_and_times_taken_on_the_reference() {
    let [one, _, three] = triad();
    // #2's clock is 90 s behind #1's: its records say 90 s less.
    let one = one.clock(0.2, 2, -90_000, 2);
    let two = J::new(2)
        .start(-90.0)
        .linked(-89.9)
        .clock(-89.8, 1, 90_000, 2)
        .stop(-70.0);
    let (imported, scenario) = imported(vec![one, two, three]);
    assert_eq!(
        scenario.servers[1].clock_offset_ms, -90_000,
        "{}",
        imported.text
    );
    // #2 stopped (cleanly) at 20 s true time.
    assert_eq!(
        server_steps(&scenario),
        [(20_000, Fault::Stop(s(2)), None)],
        "{}",
        imported.text
    );
}

#[test]
fn a_window_that_opens_mid_incident_starts_with_a_lead_in_in_the_fields_state() {
    let [one, two, three] = triad();
    // Alice holds a seat from 5 s; #1 is killed at 8 s and back at 30 s; the 2-3 link
    // is cut from 12 s to 40 s. The window: 15 s to 25 s.
    let one = one
        .served(
            5.0,
            ALICE,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h1"),
        )
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .start(30.0);
    let two = two
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .link(8.2, 1, false)
        .role(9.7, RoleName::Active, 2)
        .link(12.0, 3, false)
        .served(
            20.0,
            ALICE,
            2,
            OpName::Checkin,
            ResultName::Ok,
            None,
            Some("h1"),
        )
        .seat(20.0, 4, SeatChangeName::Released, "h1", ALICE, 2)
        .link(30.1, 1, true)
        .link(40.0, 3, true);
    let three = three
        .link(8.2, 1, false)
        .link(12.0, 2, false)
        .link(30.1, 1, true)
        .link(40.0, 2, true);
    let options = Options {
        from_ms: Some(T0 + 15_000),
        to_ms: Some(T0 + 25_000),
    };
    let (imported, scenario) = import_with(vec![one, two, three], options).unwrap();
    assert_eq!(imported.field_actives, [2]);
    // Lead-in: election 1 s + failover 0.5 s + 0.5 s, then 1.5 s, rounded up: 4 s.
    let lead = 4_000;
    assert_eq!(
        server_steps(&scenario),
        [
            (0, Fault::Crash(s(1)), None),
            (0, Fault::Cut(s(2), s(3)), None),
        ],
        "{}",
        imported.text
    );
    assert_eq!(
        client_steps(&scenario),
        [
            (
                2_000,
                "alice".into(),
                ClientAct::Checkout("cad".into()),
                None
            ),
            (
                lead + 5_000,
                "alice".into(),
                ClientAct::Checkin("cad".into()),
                None
            ),
        ],
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text)
            .contains("held since 2026-12-05T09:00:05.000Z (seat h1, granted by #1)"),
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains("it had not healed by the window's end"),
        "{}",
        imported.text
    );
}

#[test]
fn wrong_inputs_are_refused_with_the_file_and_line_or_the_argument() {
    let error = |journals: Vec<J>, options: Options| {
        import_with(journals, options)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = error(
        triad().into(),
        Options {
            from_ms: Some(T0 + 900),
            to_ms: Some(T0 + 500),
        },
    );
    assert!(
        e.starts_with("--from: 2026-12-05T09:00:00.900Z is after --to"),
        "{e}"
    );
    let e = error(
        triad().into(),
        Options {
            from_ms: Some(T0 + 3_600_000),
            to_ms: None,
        },
    );
    assert!(
        e.contains("--from") && e.contains("after the journals' last record"),
        "{e}"
    );
    // A record of #2 in #1's journal.
    let [mut one, two, three] = triad();
    one.lines.push(Entry::from(Record::Role(RoleRecord {
        t_ms: T0,
        server: 2,
        role: RoleName::Active,
        term: 1,
    })));
    let e = error(vec![one, two, three], Options::default());
    assert!(
        e.contains("j1/journal-1.jsonl:6: a role record of server #2 in the journal of server #1"),
        "{e}"
    );
    let [one, two, three] = triad();
    let e = error(
        vec![one.link(3.0, 1, false), two, three],
        Options::default(),
    );
    assert!(
        e.contains("j1/journal-1.jsonl:6: a link record about peer #1"),
        "{e}"
    );
    // A license without the feature, or with another COUNT.
    let dir = tempfile::tempdir().unwrap();
    let journals = triad().map(|j| j.write(dir.path()));
    let read = hal_net::journal::read::read(&journals).unwrap();
    let other =
        LicenseFile::parse("other.lic", &LICENSE.replace("COUNT = 2", "COUNT = 3")).unwrap();
    let e = import(&read, &other, &Options::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--license other.lic: gives cad COUNT = 3, but server #1's journal says 2: give the license the servers ran with"
    );
    let e = LicenseFile::parse("bad.lic", "FEATURE x {\n}\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--license bad.lic: not a valid license"),
        "{e}"
    );
    let e = LicenseFile::read(std::path::Path::new("/nonexistent.lic"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--license /nonexistent.lic: cannot read"),
        "{e}"
    );
    // Journals with nothing but their meta records.
    let e = error(vec![J::new(1), J::new(2)], Options::default());
    assert!(e.contains("nothing happened to replay"), "{e}");
}

#[test]
fn a_check_goes_where_no_seat_changes_nearby() {
    assert_eq!(checks::farthest((1_000, 9_000), &[]), (5_000, u64::MAX));
    assert_eq!(
        checks::farthest((1_000, 9_000), &[(4_000, 4_000)]),
        (9_000, 5_000)
    );
    assert_eq!(
        checks::farthest((1_000, 9_000), &[(0, 2_000), (8_000, 8_000)]),
        (5_000, 3_000)
    );
}

/// #1 active, alice checks out at 5 s; #1 killed at 8 s, #2 active from 9.7 s; #1 back
/// at 20 s and active again at 25.3 s (its failback hold is 5 s); alice checks in at 28 s.
fn failover_and_failback() -> Vec<J> {
    let [one, two, three] = triad();
    let one = one
        .served(
            5.0,
            ALICE,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h1"),
        )
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .start(20.0)
        .linked(20.1)
        .role(20.2, RoleName::Standby, 2)
        .role(25.3, RoleName::Active, 3)
        .served(
            28.0,
            ALICE,
            2,
            OpName::Checkin,
            ResultName::Ok,
            None,
            Some("h1"),
        )
        .seat(28.0, 4, SeatChangeName::Released, "h1", ALICE, 2);
    let two = two
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .link(8.2, 1, false)
        .role(9.7, RoleName::Active, 2)
        .link(20.1, 1, true)
        .role(25.3, RoleName::Standby, 3)
        .seat(28.0, 4, SeatChangeName::Released, "h1", ALICE, 2);
    let three = three
        .seat(5.0, 3, SeatChangeName::Granted, "h1", ALICE, 1)
        .link(8.2, 1, false)
        .link(20.1, 1, true)
        .seat(28.0, 4, SeatChangeName::Released, "h1", ALICE, 2);
    vec![one, two, three]
}

#[test]
fn a_warm_window_is_replayed_from_the_fields_state_at_its_start() {
    // From 15 s: #1 is down (since 8.2 s, until 20 s), #2 active, alice holds a seat.
    let from = |s: u64| Options {
        from_ms: Some(T0 + s * 1_000),
        to_ms: None,
    };
    let (imported, scenario) = import_with(failover_and_failback(), from(15)).unwrap();
    assert_eq!(imported.field_actives, [2, 1]);
    let lead = 4_000;
    assert_eq!(
        server_steps(&scenario),
        [(0, Fault::Crash(s(1)), Some(lead + 5_000))],
        "{}",
        imported.text
    );
    assert_eq!(
        client_steps(&scenario),
        [
            (
                2_000,
                "alice".into(),
                ClientAct::Checkout("cad".into()),
                None
            ),
            (
                lead + 13_000,
                "alice".into(),
                ClientAct::Checkin("cad".into()),
                None
            ),
        ],
        "{}",
        imported.text
    );
    replays(&imported, &scenario);
    // From 21 s: #1 runs again but #2 is still active (#1's failback is held back): #1 is
    // kept down in the lead-in so that the replay starts with #2 active too.
    let (imported, scenario) = import_with(failover_and_failback(), from(21)).unwrap();
    assert_eq!(imported.field_actives, [2, 1]);
    assert_eq!(
        server_steps(&scenario),
        [(0, Fault::Crash(s(1)), Some(lead))],
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text).contains("#2 was active at the window's start although #1 ran"),
        "{}",
        imported.text
    );
    replays(&imported, &scenario);
}

#[test]
fn long_round_trips_are_a_slow_link_until_a_usual_one() {
    let [one, two, three] = triad();
    // Round trips 1-2 of 2 ms, 600 ms from 10 s to 20 s, then 2 ms again.
    let one = one
        .clock(0.2, 2, 0, 2)
        .clock(5.0, 2, 0, 2)
        .clock(10.0, 2, 0, 600)
        .clock(15.0, 2, 0, 580);
    let two = two.clock(0.2, 1, 0, 2).clock(20.0, 1, 0, 2);
    let (imported, scenario) = imported(vec![one, two, three]);
    assert_eq!(
        server_steps(&scenario),
        [(
            10_000,
            Fault::Slow(s(1), s(2), Duration::from_millis(400)),
            Some(10_000)
        )],
        "{}",
        imported.text
    );
    assert!(
        flat(&imported.text)
            .contains("# the link #1-#2 was slow: round trips up to 600 ms (usually 2 ms)"),
        "{}",
        imported.text
    );
    replays(&imported, &scenario);
}

/// A grant is answered once a majority synced it, a refusal at once: two checkouts that
/// raced for a seat are replayed in the order the server received them, not answered
/// them.
#[test]
fn requests_are_replayed_in_the_order_the_server_received_them() {
    let [one, two, three] = triad();
    let one = one
        .served(
            5.000,
            BOB,
            1,
            OpName::Checkout,
            ResultName::Denied,
            Some("all_in_use"),
            None,
        )
        .waited(0)
        .served(
            5.010,
            ALICE,
            1,
            OpName::Checkout,
            ResultName::Granted,
            None,
            Some("h1"),
        )
        .waited(20)
        .seat(5.010, 3, SeatChangeName::Granted, "h1", ALICE, 1);
    let (_, scenario) = imported(vec![one, two, three]);
    let order: Vec<(u64, String)> = client_steps(&scenario)
        .into_iter()
        .map(|(at, who, _, _)| (at, who))
        .collect();
    let alice = user(ALICE);
    let bob = user(BOB);
    assert_eq!(order.len(), 2, "{order:?}");
    assert_eq!(order[0].1, alice, "{order:?}");
    assert_eq!(order[1].1, bob, "{order:?}");
    assert_eq!(order[1].0 - order[0].0, 10, "{order:?}");
}

/// Three checkouts received in one millisecond for the last two seats: they keep the
/// server's order (`received`), a millisecond apart, on a network without jitter. They
/// raced, so nothing is expected of them, and each client's next steps follow what the
/// replay granted it (`unless_held`, `if_held`) until it holds nothing again; then a
/// checkout with a seat to spare is expected as in the field.
#[test]
fn a_race_for_the_last_seats_keeps_the_servers_order_and_expects_nothing_of_it() {
    use OpName::{Checkin, Checkout};
    use ResultName::{Denied, Granted, Ok};
    use SeatChangeName::{Granted as Taken, Released};
    let [one, two, three] = triad();
    let one = one
        .served(5.000, BOB, 1, Checkout, Denied, Some("all_in_use"), None)
        .waited(0)
        .received(9)
        .served(5.002, ALICE, 1, Checkout, Granted, None, Some("h1"))
        .waited(2)
        .received(7)
        .seat(5.002, 3, Taken, "h1", ALICE, 1)
        .served(5.002, CAROL, 1, Checkout, Granted, None, Some("h2"))
        .waited(2)
        .received(8)
        .seat(5.002, 4, Taken, "h2", CAROL, 1)
        .served(6.000, ALICE, 2, Checkin, Ok, None, Some("h1"))
        .seat(6.000, 5, Released, "h1", ALICE, 2)
        .served(7.000, BOB, 2, Checkout, Granted, None, Some("h3"))
        .seat(7.000, 6, Taken, "h3", BOB, 2)
        .served(8.000, BOB, 3, Checkin, Ok, None, Some("h3"))
        .seat(8.000, 7, Released, "h3", BOB, 3)
        .served(8.500, CAROL, 2, Checkin, Ok, None, Some("h2"))
        .seat(8.500, 8, Released, "h2", CAROL, 2)
        .served(9.500, BOB, 4, Checkout, Granted, None, Some("h4"))
        .seat(9.500, 9, Taken, "h4", BOB, 4);
    let (imported, scenario) = imported(vec![one, two, three]);
    let steps: Vec<(u64, String, &str, Option<Answer>, bool)> = scenario
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Client { who, act } => Some((
                step.at.as_millis() as u64,
                who.clone(),
                match act {
                    ClientAct::Checkout(_) => "checkout",
                    ClientAct::Checkin(_) => "checkin",
                    _ => "other",
                },
                step.expect.answer.clone(),
                step.expect.unless_held || step.expect.if_held,
            )),
            _ => None,
        })
        .collect();
    let (alice, bob, carol) = (user(ALICE), user(BOB), user(CAROL));
    let expected_by_1 = Some(Answer::Granted(Some(s(1))));
    assert_eq!(
        steps,
        [
            (5_000, alice.clone(), "checkout", None, false),
            (5_001, carol.clone(), "checkout", None, false),
            (5_002, bob.clone(), "checkout", None, false),
            (6_000, alice, "checkin", None, true),
            (7_000, bob.clone(), "checkout", None, true),
            (8_000, bob.clone(), "checkin", None, true),
            (8_500, carol, "checkin", None, true),
            (9_500, bob, "checkout", expected_by_1, false),
        ],
        "{}",
        imported.text
    );
    let text = flat(&imported.text);
    assert!(text.contains("jitter = \"0"), "{}", imported.text);
    assert!(
        text.contains("it raced for the last seat of cad"),
        "{}",
        imported.text
    );
    replays(&imported, &scenario);
}
