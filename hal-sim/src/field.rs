//! Judging a real triad's run from its servers' journals (`hal-sim check JOURNAL...`):
//! the journals are merged on one clock, aligned with the offsets each server estimated
//! to its peers ([`hal_net::journal::clocks`]: #1's clock, or the majority's when #1's is
//! the odd one out), and the invariants of DESIGN §6.3 that server-side records can
//! decide are checked:
//!
//! 1. **No overuse**, from the applied seat changes: every server applies the same log,
//!    so the changes merged by log index are the seat table's history; at no index may a
//!    feature have more seats than its COUNT. Two servers journaling different changes at
//!    one index is a violation too (the replicas disagree).
//! 2. **Role rule**: #3 never grants and never becomes active; borrows are decided only
//!    by #1; #2 decides a grant only when #1 has not been up and connected to a peer, as
//!    both ends of the link journal it, for longer than a failback takes.
//! 3. **Majority rule**: a server decides a grant only while its own journal shows a link
//!    up to at least one peer.
//! 5. **One request, one seat**: a request (client id and request number) is granted at
//!    most one handle.
//!
//! Invariants 4 (no lost seat) and 6 (liveness) need what the clients saw, which no
//! server journals; they are not checked here, and the report says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hal_core::record::{Meta, Record, RoleName, SeatChangeName, SeatRecord};
use hal_net::journal::clocks::{Clocks, Reference};
use hal_net::journal::read::{Located, ServerJournal};

/// How far two aligned clocks may still disagree (an estimate is off by at most half a
/// round trip; this covers LAN and WAN round trips and the drift between estimates).
pub const ALIGNMENT_SLACK_MS: u64 = 1_000;

/// A broken invariant, with the journal lines that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub invariant: &'static str,
    /// On the reference clock (ms since 1970).
    pub t_ms: u64,
    pub what: String,
    /// `file:line: record`, oldest first.
    pub evidence: Vec<String>,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invariant violated: {} at {} ({} ms): {}",
            self.invariant,
            wall(self.t_ms),
            self.t_ms,
            self.what
        )?;
        for line in &self.evidence {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// A wall-clock time as RFC 3339, for messages.
pub fn wall(t_ms: u64) -> String {
    hal_net::journal::time::rfc3339(t_ms)
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct FieldReport {
    /// The servers whose journals were read.
    pub servers: Vec<u8>,
    pub records: usize,
    /// The clock the times count on (`None`: no journal).
    pub reference: Option<Reference>,
    /// The span covered, on the reference clock.
    pub from_ms: u64,
    pub to_ms: u64,
    /// Each server's clock minus the reference, as first estimated (`None`: no estimate,
    /// its times are taken as they are; or the reference server itself).
    pub offsets: BTreeMap<u8, Option<i64>>,
    /// What the reader skipped, and what could not be decided.
    pub notes: Vec<String>,
    pub violations: Vec<FieldViolation>,
}

/// One record of the merged journals.
#[derive(Debug, Clone)]
struct Merged<'a> {
    /// On the reference clock.
    t: u64,
    server: u8,
    at: &'a Located,
}

impl Merged<'_> {
    fn record(&self) -> &Record {
        &self.at.entry.record
    }

    fn evidence(&self) -> String {
        let json = serde_json::to_string(&self.at.entry).unwrap_or_default();
        format!("{}:{}: {json}", self.at.file.display(), self.at.line)
    }
}

/// Checks the journals of one triad.
pub fn check(journals: &[ServerJournal]) -> FieldReport {
    let mut report = FieldReport {
        servers: journals.iter().map(|j| j.server).collect(),
        ..FieldReport::default()
    };
    for journal in journals {
        report.notes.extend(journal.notes.iter().cloned());
    }
    let Some(first) = journals.first() else {
        return report;
    };
    let meta = &first.meta;
    let clocks = Clocks::estimate(journals);
    report.reference = Some(clocks.reference);
    if clocks.base_stepped {
        report.notes.push(format!(
            "the times count on {}, which stepped too (no server's clock stayed steady): records near a step of a clock may be merged out of order, and a violation there may not have happened",
            clocks.reference
        ));
    }
    for journal in journals {
        let server = journal.server;
        report.offsets.insert(server, clocks.first_offset(server));
        if !clocks.measured(server) && !clocks.is_reference(server) {
            report.notes.push(format!(
                "#{server}: no clock offset to {} was journaled; its times are taken as they are",
                clocks.reference
            ));
        }
    }
    let mut merged: Vec<Merged<'_>> = journals
        .iter()
        .flat_map(|journal| {
            let times = clocks.true_times(journal);
            journal.entries.iter().zip(times).map(|(at, t)| Merged {
                t: t.unwrap_or(0),
                server: journal.server,
                at,
            })
        })
        .collect();
    // Stable: each server's records keep their order at equal times.
    merged.sort_by_key(|m| m.t);
    report.records = merged.len();
    report.from_ms = merged.first().map_or(0, |m| m.t);
    report.to_ms = merged.last().map_or(0, |m| m.t);
    report.notes.push(
        "invariants 4 (no lost seat) and 6 (liveness) need the clients' view and are not checked from journals"
            .into(),
    );
    overuse_and_replicas(meta, &merged, &mut report.violations);
    one_request_one_seat(&merged, &mut report.violations);
    queue_order(meta, &merged, &mut report.violations);
    roles_and_majority(meta, &merged, &mut report.violations);
    report.violations.sort_by_key(|v| v.t_ms);
    report
}

/// Invariant 13 (first come, first served) from the seat changes, each log index as the
/// first server journaled it, against the COUNT in force.
fn queue_order(meta: &Meta, merged: &[Merged<'_>], out: &mut Vec<FieldViolation>) {
    use crate::check::Invariant as _;
    let mut checker = crate::check::queue::QueueOrder::default();
    let _ = checker.observe(&Record::Meta(meta.clone()), "");
    for m in merged {
        if !matches!(
            m.record(),
            Record::Seat(_) | Record::License(_) | Record::Options(_)
        ) {
            continue;
        }
        if let Err((what, evidence)) = checker.observe(m.record(), &m.evidence()) {
            out.push(FieldViolation {
                invariant: checker.name(),
                t_ms: m.t,
                what,
                evidence,
            });
            return;
        }
    }
}

fn adds(change: SeatChangeName) -> bool {
    matches!(change, SeatChangeName::Granted | SeatChangeName::Borrowed)
}

/// Invariant 1 from the seat changes merged by log index, and the replicas' agreement.
fn overuse_and_replicas(meta: &Meta, merged: &[Merged<'_>], out: &mut Vec<FieldViolation>) {
    let mut by_index: BTreeMap<u64, (&SeatRecord, &Merged<'_>)> = BTreeMap::new();
    for m in merged {
        let Record::Seat(seat) = m.record() else {
            continue;
        };
        match by_index.get(&seat.index) {
            None => {
                by_index.insert(seat.index, (seat, m));
            }
            Some((known, first)) => {
                let same = known.change == seat.change
                    && known.handle == seat.handle
                    && known.feature == seat.feature
                    && known.client == seat.client;
                if !same {
                    out.push(FieldViolation {
                        invariant: "replicas agree",
                        t_ms: m.t,
                        what: format!(
                            "#{} and #{} applied different seat changes at log index {}",
                            first.server, m.server, seat.index
                        ),
                        evidence: vec![first.evidence(), m.evidence()],
                    });
                }
            }
        }
    }
    // The licenses pushed (or adopted), by the log index each is in force from: a grant
    // applies only below the COUNT in force at its index (a lowered COUNT keeps the
    // seats held, so only grants are judged).
    let licenses: BTreeMap<u64, &BTreeMap<String, u32>> = merged
        .iter()
        .filter_map(|m| match m.record() {
            Record::License(l) => Some((l.index, &l.features)),
            _ => None,
        })
        .collect();
    let count_at = |index: u64, feature: &str| match licenses.range(..=index).next_back() {
        Some((_, features)) => features.get(feature).copied().unwrap_or(0),
        None => meta.features.get(feature).map_or(0, |f| f.count),
    };
    let mut held: BTreeMap<&str, BTreeMap<&str, &Merged<'_>>> = BTreeMap::new();
    for (seat, m) in by_index.values() {
        let seats = held.entry(seat.feature.as_str()).or_default();
        if !adds(seat.change) {
            seats.remove(seat.handle.as_str());
            continue;
        }
        seats.insert(seat.handle.as_str(), m);
        let count = count_at(seat.index, &seat.feature);
        if seats.len() as u64 > u64::from(count) {
            out.push(FieldViolation {
                invariant: "1 no overuse",
                t_ms: m.t,
                what: format!(
                    "{} seats of {} held at log index {}; COUNT is {count}",
                    seats.len(),
                    seat.feature,
                    seat.index
                ),
                evidence: seats.values().map(|m| m.evidence()).collect(),
            });
            // One report per feature: the table stays over until seats are released.
            return;
        }
    }
}

/// Invariant 5: one handle per request.
fn one_request_one_seat(merged: &[Merged<'_>], out: &mut Vec<FieldViolation>) {
    let mut granted: BTreeMap<(&str, u64), (&str, &Merged<'_>)> = BTreeMap::new();
    for m in merged {
        let Record::Seat(seat) = m.record() else {
            continue;
        };
        let (true, Some(req)) = (adds(seat.change), seat.req) else {
            continue;
        };
        match granted.get(&(seat.client.as_str(), req)) {
            None => {
                granted.insert((seat.client.as_str(), req), (seat.handle.as_str(), m));
            }
            Some((handle, first)) if *handle != seat.handle => {
                out.push(FieldViolation {
                    invariant: "5 one request, one seat",
                    t_ms: m.t,
                    what: format!(
                        "request {req} of client {} got two seats, {handle} and {}",
                        seat.client, seat.handle
                    ),
                    evidence: vec![first.evidence(), m.evidence()],
                });
            }
            Some(_) => {}
        }
    }
}

/// Each server's links as its own journal shows them, and whether it is running.
#[derive(Debug, Default)]
struct Links {
    /// (server, peer) → up, by the server's own journal.
    up: BTreeMap<(u8, u8), bool>,
    /// Servers between a `start` and their next `stop` (a kill shows as a `start`
    /// without a `stop` before it).
    running: BTreeSet<u8>,
    /// Since when #1 has been running with a link whole both ways to a peer.
    one_connected_since: Option<u64>,
    /// Servers whose links are known: a `start` or a `link` record of theirs was seen
    /// (a window that begins mid-run knows nothing of links that came up before it).
    known: BTreeSet<u8>,
}

impl Links {
    fn observe(&mut self, m: &Merged<'_>) {
        match m.record() {
            Record::Start(_) => {
                // A restart: the links of the process that died are gone.
                self.known.insert(m.server);
                self.running.insert(m.server);
                self.up.retain(|(server, _), _| *server != m.server);
            }
            Record::Stop(_) => {
                self.running.remove(&m.server);
                self.up.retain(|(server, _), _| *server != m.server);
            }
            Record::Link(link) => {
                // A journal may start without a `start` record (rotated away): a server
                // journaling is running.
                self.running.insert(m.server);
                self.known.insert(m.server);
                self.up.insert((m.server, link.peer), link.up);
            }
            _ => {}
        }
        let connected =
            self.running.contains(&1) && [2, 3].into_iter().any(|peer| self.whole(1, peer));
        match (connected, self.one_connected_since) {
            (true, None) => self.one_connected_since = Some(m.t),
            (false, Some(_)) => self.one_connected_since = None,
            _ => {}
        }
    }

    /// Whether the link between `a` and `b` is up as both ends journal it.
    fn whole(&self, a: u8, b: u8) -> bool {
        self.up.get(&(a, b)) == Some(&true) && self.up.get(&(b, a)) == Some(&true)
    }

    /// Whether `server`'s own journal shows a link up to a peer.
    fn any_up(&self, server: u8) -> bool {
        self.up.iter().any(|((from, _), up)| *from == server && *up)
    }
}

/// Invariants 2 and 3, from roles, links and the grants each server decided.
fn roles_and_majority(meta: &Meta, merged: &[Merged<'_>], out: &mut Vec<FieldViolation>) {
    let handover_ms = meta.failback_hold_ms
        + 2 * meta.election_timeout_ms
        + meta.failover_delay_ms
        + 1_000
        + ALIGNMENT_SLACK_MS;
    let mut links = Links::default();
    let mut last_link: BTreeMap<u8, &Merged<'_>> = BTreeMap::new();
    for m in merged {
        links.observe(m);
        match m.record() {
            Record::Link(_) => {
                last_link.insert(m.server, m);
            }
            Record::Role(role) if role.server == 3 && role.role == RoleName::Active => {
                out.push(FieldViolation {
                    invariant: "2 role rule",
                    t_ms: m.t,
                    what: "server #3 became active".into(),
                    evidence: vec![m.evidence()],
                });
            }
            // A grant as the server that decided it journaled it (each server journals
            // every grant it applies; the decider's own record is the one that counts).
            Record::Seat(seat) if adds(seat.change) && seat.by == Some(m.server) => {
                let by = m.server;
                let mut broke = |what: String, mut evidence: Vec<String>| {
                    evidence.push(m.evidence());
                    out.push(FieldViolation {
                        invariant: if what.contains("link") {
                            "3 majority rule"
                        } else {
                            "2 role rule"
                        },
                        t_ms: m.t,
                        what,
                        evidence,
                    });
                };
                if by == 3 {
                    broke("server #3 granted a seat".into(), vec![]);
                } else if seat.change == SeatChangeName::Borrowed && by != 1 {
                    broke(format!("a borrow was granted by #{by}, not #1"), vec![]);
                } else if by == 2
                    && let Some(since) = links.one_connected_since
                    && m.t.saturating_sub(since) > handover_ms
                {
                    let what = format!(
                        "#2 granted while #1 had been up and connected to a peer since {} ({} ms, more than the {handover_ms} ms a failback takes)",
                        wall(since),
                        m.t - since
                    );
                    broke(what, vec![]);
                }
                if links.known.contains(&by) && !links.any_up(by) {
                    let evidence = last_link
                        .get(&by)
                        .map(|l| l.evidence())
                        .into_iter()
                        .collect();
                    broke(
                        format!(
                            "#{by} granted a seat while its journal shows no link up to a peer"
                        ),
                        evidence,
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use hal_core::record::{
        Entry, FeatureMeta, LinkRecord, PeerClock, RoleRecord, SeatRecord, Start, Stop,
    };
    use hal_core::timing::Timing;

    use super::*;

    /// Builds one server's journal; times are that server's own clock.
    struct Journal {
        server: u8,
        file: Arc<Path>,
        entries: Vec<Located>,
    }

    impl Journal {
        fn new(server: u8) -> Journal {
            Journal {
                server,
                file: Arc::from(Path::new(&format!("journal{server}.jsonl"))),
                entries: Vec::new(),
            }
        }

        fn push(&mut self, record: Record) -> &mut Journal {
            let line = self.entries.len() + 2;
            self.entries.push(Located {
                entry: Entry::from(record),
                file: Arc::clone(&self.file),
                line,
            });
            self
        }

        fn start(&mut self, t_ms: u64) -> &mut Journal {
            let server = self.server;
            self.push(Record::Start(Start {
                t_ms,
                server,
                version: "0".into(),
                pid: 1,
                recovered: Default::default(),
            }))
        }

        fn stop(&mut self, t_ms: u64) -> &mut Journal {
            let server = self.server;
            self.push(Record::Stop(Stop {
                t_ms,
                server,
                reason: "shutdown".into(),
            }))
        }

        fn link(&mut self, t_ms: u64, peer: u8, up: bool) -> &mut Journal {
            let server = self.server;
            self.push(Record::Link(LinkRecord {
                t_ms,
                server,
                peer,
                up,
                reason: None,
            }))
        }

        fn clock(&mut self, t_ms: u64, peer: u8, offset_ms: i64) -> &mut Journal {
            let server = self.server;
            self.push(Record::PeerClock(PeerClock {
                t_ms,
                server,
                peer,
                offset_ms,
                rtt_ms: 1,
            }))
        }

        fn active(&mut self, t_ms: u64, term: u64) -> &mut Journal {
            let server = self.server;
            self.push(Record::Role(RoleRecord {
                t_ms,
                server,
                role: RoleName::Active,
                term,
            }))
        }

        /// A seat change at `index` (`by`: the deciding leader of a grant).
        fn seat(&mut self, t_ms: u64, index: u64, change: SeatChangeName, by: u8) -> &mut Journal {
            let server = self.server;
            let grant = adds(change);
            self.push(Record::Seat(SeatRecord {
                t_ms,
                server,
                index,
                change,
                handle: format!("h{}", if grant { index } else { index - 1 }),
                feature: "cad".into(),
                client: format!("{:016x}", index),
                req: Some(1),
                user: None,
                host: None,
                by: grant.then_some(by),
                borrow_end_ms: None,
                removed_by: None,
            }))
        }

        fn done(&self) -> ServerJournal {
            let features = [(
                "cad".to_string(),
                FeatureMeta {
                    count: 2,
                    hal: true,
                },
            )]
            .into();
            ServerJournal {
                server: self.server,
                meta: Meta {
                    server: Some(self.server),
                    ..Meta::new(&Timing::lan(), features)
                },
                entries: self.entries.clone(),
                notes: Vec::new(),
            }
        }
    }

    /// Three servers started at 0 and linked both ways by 100 ms; #1 active.
    fn triad() -> [Journal; 3] {
        let mut journals = [Journal::new(1), Journal::new(2), Journal::new(3)];
        for j in &mut journals {
            j.start(0);
            for peer in 1..=3 {
                if peer != j.server {
                    j.link(100, peer, true);
                }
            }
        }
        journals[0].active(200, 1);
        journals
    }

    fn verdict(journals: &[Journal]) -> Vec<&'static str> {
        let read: Vec<ServerJournal> = journals.iter().map(Journal::done).collect();
        check(&read)
            .violations
            .iter()
            .map(|v| v.invariant)
            .collect()
    }

    /// Two seats (`done`'s COUNT), both held; two waits queue; one seat comes back and
    /// goes to `served` (the index-4 waiter is first, the index-5 one second).
    fn queue_then(served: u64) -> Vec<&'static str> {
        use SeatChangeName::{Granted, Queued, Released};
        let mut j = triad();
        for journal in &mut j {
            // (index, change, client, handle)
            for (index, change, client, handle) in [
                (2, Granted, 2, 2),
                (3, Granted, 3, 3),
                (4, Queued, 4, 4),
                (5, Queued, 5, 5),
                (6, Released, 2, 2),
                (7, Granted, served, 7),
            ] {
                journal.push(Record::Seat(SeatRecord {
                    t_ms: 1_000 + index * 100,
                    server: journal.server,
                    index,
                    change,
                    handle: format!("h{handle}"),
                    feature: "cad".into(),
                    client: format!("{client:016x}"),
                    req: Some(1),
                    user: None,
                    host: None,
                    by: Some(1),
                    borrow_end_ms: None,
                    removed_by: None,
                }));
            }
        }
        verdict(&j)
    }

    #[test]
    fn a_waiting_checkout_passed_in_the_journals_is_caught() {
        assert_eq!(queue_then(4), Vec::<&str>::new());
        assert_eq!(queue_then(5), ["13 first come, first served"]);
    }

    #[test]
    fn a_failover_after_a_kill_and_a_failback_is_clean() {
        let mut j = triad();
        let [one, two, three] = &mut j;
        for journal in [&mut *one, &mut *two, &mut *three] {
            journal.seat(1_000, 2, SeatChangeName::Granted, 1);
        }
        // #1 is killed at 5 s (no stop record): its peers see the link go down.
        two.link(5_400, 1, false);
        three.link(5_400, 1, false);
        two.active(6_600, 2);
        for journal in [&mut *two, &mut *three] {
            journal.seat(7_000, 3, SeatChangeName::Granted, 2);
        }
        // #1 is back at 20 s and takes over after the failback hold.
        one.start(20_000)
            .link(20_100, 2, true)
            .link(20_100, 3, true);
        two.link(20_100, 1, true);
        three.link(20_100, 1, true);
        // #2 still grants within the handover, #1 after it.
        for journal in [&mut *one, &mut *two, &mut *three] {
            journal.seat(21_000, 4, SeatChangeName::Released, 2);
            journal.seat(22_000, 5, SeatChangeName::Granted, 2);
        }
        one.active(30_200, 3);
        for journal in [&mut *one, &mut *two, &mut *three] {
            journal.seat(31_000, 6, SeatChangeName::Released, 1);
            journal.seat(31_000, 7, SeatChangeName::Granted, 1);
        }
        assert_eq!(verdict(&j), Vec::<&str>::new());
    }

    #[test]
    fn two_granting_while_one_is_up_and_connected_is_the_role_rule() {
        let mut j = triad();
        // Long after #1 was up and connected: #2 decides a grant.
        for journal in &mut j {
            journal.seat(30_000, 2, SeatChangeName::Granted, 2);
        }
        assert_eq!(verdict(&j), ["2 role rule"]);
        // Not if #1's link is whole on neither side: #1 counts as cut off.
        let mut j = triad();
        j[0].link(1_000, 2, false).link(1_000, 3, false);
        for journal in &mut j {
            journal.seat(30_000, 2, SeatChangeName::Granted, 2);
        }
        assert_eq!(verdict(&j), Vec::<&str>::new());
    }

    #[test]
    fn the_clocks_are_aligned_before_the_role_rule_is_judged() {
        // #2's clock is 60 s ahead of #1's: its grant at its 70 s is #1's 10 s, within
        // the handover after #1 came back at 5 s (#1 down until then).
        let mut one = Journal::new(1);
        let mut two = Journal::new(2);
        let mut three = Journal::new(3);
        one.start(5_000).link(5_100, 2, true).link(5_100, 3, true);
        one.clock(5_200, 2, 60_000);
        two.start(60_000)
            .link(60_100, 3, true)
            .link(65_100, 1, true);
        two.clock(65_200, 1, -60_000);
        three.start(0).link(100, 2, true).link(5_100, 1, true);
        for journal in [&mut two, &mut three] {
            journal.seat(70_000, 2, SeatChangeName::Granted, 2);
        }
        one.seat(10_000, 2, SeatChangeName::Granted, 2);
        let journals = [one, two, three];
        assert_eq!(verdict(&journals), Vec::<&str>::new());
        let read: Vec<ServerJournal> = journals.iter().map(Journal::done).collect();
        let report = check(&read);
        assert_eq!(report.reference, Some(Reference::Server(1)));
        // #2's clock minus #1's.
        assert_eq!(report.offsets[&2], Some(60_000));
        // Without the estimates, #2's grant would be at #1's 70 s: a violation.
        let stripped: Vec<ServerJournal> = read
            .into_iter()
            .map(|mut j| {
                j.entries
                    .retain(|l| !matches!(l.entry.record, Record::PeerClock(_)));
                j
            })
            .collect();
        let report = check(&stripped);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(report.notes.iter().any(|n| n.contains("no clock offset")));
    }

    #[test]
    fn when_1s_clock_is_the_odd_one_the_times_count_on_the_majoritys() {
        // #1's clock is 60 s behind #2's and #3's, which agree. All three start at 100 s
        // on theirs; #1 grants at 110 s, and #2 grants at 130 s, long after #1 came up
        // and connected: the role rule, at the majority's 130 s.
        let mut one = Journal::new(1);
        let mut two = Journal::new(2);
        let mut three = Journal::new(3);
        one.start(40_000)
            .link(40_100, 2, true)
            .link(40_100, 3, true)
            .active(40_200, 1);
        one.clock(40_150, 2, 60_000).clock(40_150, 3, 60_020);
        two.clock(100_150, 3, 20);
        for journal in [&mut two, &mut three] {
            let server = journal.server;
            journal.start(100_000);
            for peer in (1..=3).filter(|&p| p != server) {
                journal.link(100_100, peer, true);
            }
        }
        one.seat(50_000, 2, SeatChangeName::Granted, 1)
            .seat(70_000, 3, SeatChangeName::Granted, 2);
        for journal in [&mut two, &mut three] {
            journal.seat(110_000, 2, SeatChangeName::Granted, 1).seat(
                130_000,
                3,
                SeatChangeName::Granted,
                2,
            );
        }
        let journals = [one, two, three];
        assert_eq!(verdict(&journals), ["2 role rule"]);
        let read: Vec<ServerJournal> = journals.iter().map(Journal::done).collect();
        let report = check(&read);
        assert_eq!(report.reference, Some(Reference::Majority { odd: 1 }));
        assert_eq!(report.offsets[&1], Some(-60_010));
        assert_eq!(report.offsets[&2], Some(-10));
        assert_eq!(report.offsets[&3], Some(10));
        assert!(report.from_ms.abs_diff(100_000) <= 50, "{}", report.from_ms);
        let violation = &report.violations[0];
        assert!(violation.t_ms.abs_diff(130_000) <= 50, "{violation}");
        assert!(
            !report.notes.iter().any(|n| n.contains("no clock offset")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn when_no_clock_stayed_steady_the_report_says_so() {
        // #1 set back 114 s and #2 72 s, and no monotonic times to tell which clocks
        // stepped: each server's estimates show both others step.
        let mut j = triad();
        let [one, two, three] = &mut j;
        one.clock(1_000_006, 2, 0)
            .clock(1_000_006, 3, 0)
            .clock(889_005, 2, 114_000)
            .clock(889_005, 3, 114_000)
            .clock(900_700, 2, 42_000);
        two.clock(1_000_006, 1, 0)
            .clock(1_003_006, 1, -114_000)
            .clock(942_700, 1, -42_000)
            .clock(942_700, 3, 72_000);
        three
            .clock(1_000_005, 1, 0)
            .clock(1_000_005, 2, 0)
            .clock(1_003_005, 1, -114_000)
            .clock(1_014_605, 2, -72_000);
        let read: Vec<ServerJournal> = j.iter().map(Journal::done).collect();
        let report = check(&read);
        assert!(
            report.notes.iter().any(|n| n.contains("stepped too")),
            "{:?}",
            report.notes
        );
        // With one steady clock, nothing to say.
        let report = check(&triad().map(|j| j.done()));
        assert!(!report.notes.iter().any(|n| n.contains("stepped too")));
    }

    /// The journals' `license` records change the COUNT from their log index on: three
    /// grants under a pushed COUNT of 3 are fine; a COUNT lowered to 1 keeps them, and a
    /// later grant above it is overuse.
    #[test]
    fn a_pushed_count_is_judged_from_its_log_index() {
        let license = |index: u64, count: u32| {
            let mut record =
                hal_core::record::LicenseRecord::new(1_000 + index, 1, index, "root@a", "");
            record.features = [("cad".to_string(), count)].into();
            Record::License(record)
        };
        let mut j = triad();
        for journal in &mut j {
            journal.push(license(2, 3));
            for index in 3..=5 {
                journal.seat(1_000 + index, index, SeatChangeName::Granted, 1);
            }
            journal.push(license(6, 1));
        }
        assert!(verdict(&j).is_empty(), "{:?}", verdict(&j));
        for journal in &mut j {
            journal.seat(1_007, 7, SeatChangeName::Granted, 1);
        }
        assert_eq!(verdict(&j), ["1 no overuse"]);
    }

    #[test]
    fn overuse_disagreeing_replicas_three_and_lonely_grants_are_caught() {
        let mut j = triad();
        for journal in &mut j {
            for index in 2..=4 {
                journal.seat(1_000 + index, index, SeatChangeName::Granted, 1);
            }
        }
        assert_eq!(verdict(&j), ["1 no overuse"]);

        let mut j = triad();
        j[0].seat(1_000, 2, SeatChangeName::Granted, 1);
        j[1].seat(1_000, 2, SeatChangeName::Expired, 1);
        assert_eq!(verdict(&j), ["replicas agree"]);

        let mut j = triad();
        j[2].active(1_000, 2);
        j[2].seat(1_100, 2, SeatChangeName::Granted, 3);
        assert_eq!(verdict(&j), ["2 role rule", "2 role rule"]);

        let mut j = triad();
        j[1].seat(1_000, 2, SeatChangeName::Borrowed, 2);
        j[0].link(500, 2, false).link(500, 3, false);
        assert_eq!(verdict(&j), ["2 role rule"]);

        // #1 decides a grant after its journal shows every link down.
        let mut j = triad();
        j[0].link(900, 2, false).link(900, 3, false);
        j[0].seat(1_000, 2, SeatChangeName::Granted, 1);
        assert_eq!(verdict(&j), ["3 majority rule"]);
        // A stop and a start forget the links of the process before.
        let mut j = triad();
        j[0].stop(800)
            .start(900)
            .seat(1_000, 2, SeatChangeName::Granted, 1);
        assert_eq!(verdict(&j), ["3 majority rule"]);
    }
}
