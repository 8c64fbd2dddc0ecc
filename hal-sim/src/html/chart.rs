//! What the page draws, taken from a history's typed records: a lane per server (its
//! role bands), a row per fault (its bars), a step chart per feature (seats in use against
//! COUNT), a lane per client or group of clients (seats held as bars; requests, resends,
//! denials and what else its application was told as marks), the expectations judged and
//! the violation. It draws nothing; [`super::page`] serialises it for the page's script.
//!
//! Every bar and mark names the record behind it by its index in [`Chart::records`]
//! (the record as JSON), for the tooltip. Everything is bounded: the limits below say how
//! much, and [`Chart::notes`] what was left out.

use std::collections::BTreeMap;

use hal_core::record::{
    ClientEventRecord, Expect, Fault, FaultKind, LinkState, Meta, OpName, Party, Record,
    ResultName, RoleName, RoleRecord,
};
use serde::Serialize;

use crate::check::Violation;
use crate::check::leases::Leases;
use crate::resend::{Resends, Why};

/// The most records kept for tooltips; a bar or mark past it has none.
pub const RECORDS_MAX: usize = 20_000;
/// The most marks in one lane (a client's, or the expectations); later ones are dropped.
pub const MARKS_PER_LANE_MAX: usize = 2_000;
/// The most bars in one lane (role bands, one fault's bars, seats held).
pub const BARS_PER_LANE_MAX: usize = 1_000;
/// The most client lanes: past it clients share a lane per group (`eng1`..`eng10` are
/// `eng`), and groups past it are not drawn.
pub const CLIENT_LANES_MAX: usize = 40;
/// The most fault rows (one per fault and the parties it is between).
pub const FAULT_ROWS_MAX: usize = 24;
/// The most steps of one feature's seat chart; it stops there.
pub const SEAT_STEPS_MAX: usize = 10_000;

/// Everything the page draws.
#[derive(Debug, Default, Serialize)]
pub struct Chart {
    pub title: String,
    /// The last record's time: the time axis runs from 0 to it.
    pub end_ms: u64,
    /// When the liveness phase starts (every fault healed), if the run has one.
    pub liveness_from_ms: Option<u64>,
    pub servers: Vec<Lane>,
    pub faults: Vec<Lane>,
    pub seats: Vec<Seats>,
    pub clients: Vec<Lane>,
    /// The `expect` records: `met` and `unmet` marks.
    pub expects: Lane,
    pub violation: Option<ViolationMark>,
    /// The records behind bars and marks, as JSON lines.
    pub records: Vec<String>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

/// A lane (or a row): bars and marks under one name.
#[derive(Debug, Default, Serialize)]
pub struct Lane {
    pub name: String,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
    /// Bars and marks past the limits, not drawn.
    pub dropped: usize,
}

/// Something that lasted: a role, a fault, a seat held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub from_ms: u64,
    pub to_ms: u64,
    /// What it is, the page's style for it: `active`, `standby`, `down`, `cut`, `oneway`,
    /// `slow`, `flapping`, `clock`, `crash`, `hold`, `seat`.
    pub kind: &'static str,
    pub label: String,
    /// The record that started it.
    pub r: Option<usize>,
}

/// Something that happened at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub t_ms: u64,
    /// `request`, `retry`, `redirect`, `denied`, `unknown`, `unknown_handle`, `lost`,
    /// `crashed`, `stopped`, `frozen`, `thawed`, `met`, `unmet`, ...
    pub kind: &'static str,
    pub label: String,
    pub r: Option<usize>,
}

/// Seats in use of one feature: `(t_ms, seats)` from each change on.
#[derive(Debug, Serialize)]
pub struct Seats {
    pub feature: String,
    pub count: u32,
    pub steps: Vec<(u64, usize)>,
}

/// The invariant the run broke, where.
#[derive(Debug, Serialize)]
pub struct ViolationMark {
    pub t_ms: u64,
    pub invariant: String,
    pub what: String,
    /// The records that show it (JSON lines), the breaking one last.
    pub evidence: Vec<String>,
}

impl Lane {
    fn named(name: impl Into<String>) -> Lane {
        Lane {
            name: name.into(),
            ..Lane::default()
        }
    }

    fn bar(&mut self, bar: Bar) {
        if bar.to_ms <= bar.from_ms {
            // Ended as it began (a band replaced in the same millisecond): nothing to draw.
            return;
        }
        if self.bars.len() < BARS_PER_LANE_MAX {
            self.bars.push(bar);
        } else {
            self.dropped += 1;
        }
    }

    /// Whether one more mark is drawn.
    fn has_room(&self) -> bool {
        self.marks.len() < MARKS_PER_LANE_MAX
    }

    fn mark(&mut self, mark: Mark) {
        if self.marks.len() < MARKS_PER_LANE_MAX {
            self.marks.push(mark);
        } else {
            self.dropped += 1;
        }
    }
}

impl Chart {
    /// The chart of a history's records (the meta record first), and of the violation the
    /// run stopped at, if any.
    pub fn new(records: &[Record], violation: Option<&Violation>) -> Chart {
        let mut builder = Builder::new(records);
        for record in records {
            builder.record(record);
        }
        builder.finish(violation)
    }

    /// Keeps `record` for a tooltip; its index, or `None` past [`RECORDS_MAX`].
    fn keep(&mut self, record: &Record) -> Option<usize> {
        if self.records.len() >= RECORDS_MAX {
            return None;
        }
        let json = serde_json::to_string(record).ok()?;
        self.records.push(json);
        Some(self.records.len() - 1)
    }
}

/// A bar begun and not yet ended.
#[derive(Debug)]
struct Open {
    from_ms: u64,
    kind: &'static str,
    label: String,
    r: Option<usize>,
}

impl Open {
    fn until(self, to_ms: u64) -> Bar {
        Bar {
            from_ms: self.from_ms,
            to_ms,
            kind: self.kind,
            label: self.label,
            r: self.r,
        }
    }
}

/// Builds a [`Chart`] record by record.
struct Builder {
    chart: Chart,
    /// Each server's role band so far.
    roles: BTreeMap<u8, Open>,
    /// Fault bars begun, by their row's name.
    faults: BTreeMap<String, Open>,
    /// Fault rows by name → index in `chart.faults`.
    fault_rows: BTreeMap<String, usize>,
    /// Seats held, by (client, handle): the bar begun, and its lane.
    held: BTreeMap<(String, String), (Open, usize)>,
    /// Each client's lane (index in `chart.clients`), `None` past the limit.
    client_lane: BTreeMap<String, Option<usize>>,
    leases: Leases,
    /// Seats in use per feature: index in `chart.seats`.
    seat_chart: BTreeMap<String, usize>,
    resends: Resends,
    heartbeats: u64,
    /// Faults past [`FAULT_ROWS_MAX`] rows, not drawn.
    faults_left_out: u64,
}

impl Builder {
    fn new(records: &[Record]) -> Builder {
        let mut chart = Chart {
            servers: (1..=3).map(|s| Lane::named(format!("#{s}"))).collect(),
            expects: Lane::named("expectations"),
            ..Chart::default()
        };
        let client_lane = client_lanes(records, &mut chart);
        Builder {
            chart,
            roles: BTreeMap::new(),
            faults: BTreeMap::new(),
            fault_rows: BTreeMap::new(),
            held: BTreeMap::new(),
            client_lane,
            leases: Leases::default(),
            seat_chart: BTreeMap::new(),
            resends: Resends::default(),
            heartbeats: 0,
            faults_left_out: 0,
        }
    }

    fn record(&mut self, record: &Record) {
        let t = record.t_ms().unwrap_or(0);
        self.chart.end_ms = self.chart.end_ms.max(t);
        match record {
            Record::Meta(meta) => self.meta(meta),
            Record::Role(role) => self.role(record, role),
            Record::Fault(fault) => self.fault(record, fault),
            Record::Expect(expect) => self.expect(record, expect),
            Record::Request(_) | Record::Reply(_) | Record::Client(_) => self.client(record),
            _ => {}
        }
        self.seats(record);
    }

    fn meta(&mut self, meta: &Meta) {
        self.chart.title = match (&meta.scenario, meta.seed) {
            (Some(name), Some(seed)) => format!("{name} (seed {seed})"),
            (Some(name), None) => name.clone(),
            (None, Some(seed)) => format!("seed {seed}"),
            (None, None) => "a history".to_string(),
        };
        self.chart.liveness_from_ms = meta.liveness_from_ms;
        // Every server starts as a standby (a follower) until a role record says
        // otherwise: the history writes none for the start.
        for server in 1..=3u8 {
            let open = Open {
                from_ms: 0,
                kind: "standby",
                label: "starting".to_string(),
                r: None,
            };
            self.roles.entry(server).or_insert(open);
        }
        for (name, feature) in &meta.features {
            self.seat_chart.insert(name.clone(), self.chart.seats.len());
            self.chart.seats.push(Seats {
                feature: name.clone(),
                count: feature.count,
                steps: vec![(0, 0)],
            });
        }
    }

    fn role(&mut self, record: &Record, role: &RoleRecord) {
        let Some(lane) = usize::from(role.server)
            .checked_sub(1)
            .filter(|i| *i < self.chart.servers.len())
        else {
            return;
        };
        if let Some(open) = self.roles.remove(&role.server) {
            self.chart.servers[lane].bar(open.until(role.t_ms));
        }
        let (kind, label) = match role.role {
            RoleName::Active => ("active", format!("active (term {})", role.term)),
            RoleName::Standby => ("standby", format!("standby (term {})", role.term)),
            RoleName::Down => ("down", "down".to_string()),
        };
        let r = self.chart.keep(record);
        let open = Open {
            from_ms: role.t_ms,
            kind,
            label,
            r,
        };
        self.roles.insert(role.server, open);
    }

    /// A server restarted after a crash or a stop runs again as a standby (every server
    /// starts as one) until a role record says otherwise: the history writes none for it.
    fn restarted(&mut self, record: &Record, server: u8, t: u64) {
        let Some(lane) = usize::from(server)
            .checked_sub(1)
            .filter(|i| *i < self.chart.servers.len())
        else {
            return;
        };
        if self
            .roles
            .get(&server)
            .is_some_and(|open| open.kind != "down")
        {
            return;
        }
        if let Some(open) = self.roles.remove(&server) {
            self.chart.servers[lane].bar(open.until(t));
        }
        let r = self.chart.keep(record);
        let open = Open {
            from_ms: t,
            kind: "standby",
            label: "restarted".to_string(),
            r,
        };
        self.roles.insert(server, open);
    }

    fn fault(&mut self, record: &Record, fault: &Fault) {
        let t = fault.t_ms;
        if fault.fault == FaultKind::Restart {
            let restarted: Vec<u8> = fault.servers_a().collect();
            for server in restarted {
                self.restarted(record, server, t);
            }
        }
        let (start, end) = fault_rows(fault);
        for row in end {
            if let Some(open) = self.faults.remove(&row)
                && let Some(lane) = self.fault_row(&row)
            {
                self.chart.faults[lane].bar(open.until(t));
            }
        }
        if let Some((row, kind)) = start {
            // Already open (a crash written twice): the first start stands. Rows come in
            // the order their faults first start.
            if self.faults.contains_key(&row) {
                return;
            }
            if self.fault_row(&row).is_none() {
                self.faults_left_out += 1;
                return;
            }
            let mut label = crate::timeline::fault_text(fault);
            if let Some(cause) = &fault.cause {
                label = format!("{label} ({cause})");
            }
            let r = self.chart.keep(record);
            let open = Open {
                from_ms: t,
                kind,
                label,
                r,
            };
            self.faults.insert(row, open);
        }
    }

    /// The index of fault row `row`, made on first use; `None` past [`FAULT_ROWS_MAX`].
    fn fault_row(&mut self, row: &str) -> Option<usize> {
        if let Some(index) = self.fault_rows.get(row) {
            return Some(*index);
        }
        if self.chart.faults.len() >= FAULT_ROWS_MAX {
            return None;
        }
        self.chart.faults.push(Lane::named(row));
        let index = self.chart.faults.len() - 1;
        self.fault_rows.insert(row.to_string(), index);
        Some(index)
    }

    fn expect(&mut self, record: &Record, expect: &Expect) {
        if !self.chart.expects.has_room() {
            self.chart.expects.dropped += 1;
            return;
        }
        let r = self.chart.keep(record);
        let (kind, verdict) = if expect.met {
            ("met", "met")
        } else {
            ("unmet", "NOT MET")
        };
        self.chart.expects.mark(Mark {
            t_ms: expect.t_ms,
            kind,
            label: format!(
                "{verdict}: line {}: {} — {}",
                expect.line, expect.expected, expect.saw
            ),
            r,
        });
    }

    /// A request, reply or client record: a mark or a bar in its client's lane.
    fn client(&mut self, record: &Record) {
        let resend = self.resends.observe(record);
        let (client, t) = match record {
            Record::Request(r) => (&r.client, r.t_ms),
            Record::Reply(r) => (&r.client, r.t_ms),
            Record::Client(r) => (&r.client, r.t_ms),
            _ => return,
        };
        if let Some(resend) = resend {
            let kind = match resend.why {
                Why::Redirected { .. } => "redirect",
                Why::Unanswered { .. } | Why::Refused { .. } => "retry",
            };
            self.client_mark(record, client, t, kind, resend.describe());
            return;
        }
        match record {
            Record::Request(request) if request.op == OpName::Heartbeat => self.heartbeats += 1,
            Record::Request(request) => {
                if let (OpName::Checkin | OpName::Return, Some(handle)) =
                    (request.op, &request.handle)
                {
                    self.release(client, handle, t);
                }
                let what = request
                    .feature
                    .as_deref()
                    .or(request.handle.as_deref())
                    .unwrap_or("");
                let to = request
                    .server
                    .map_or_else(|| "a server not yet known".to_string(), |s| format!("#{s}"));
                let label = format!(
                    "{} {what} (request {}) to {to}",
                    crate::resend::op_name(request.op),
                    request.req
                );
                self.client_mark(record, client, t, "request", label);
            }
            Record::Reply(reply) if reply.result() == ResultName::UnknownHandle => {
                let label = format!("#{} answered unknown handle", reply.server);
                self.client_mark(record, client, t, "unknown_handle", label);
            }
            Record::Client(event) => self.client_event(record, client, t, &event.event),
            _ => {}
        }
    }

    fn client_event(&mut self, record: &Record, client: &str, t: u64, event: &ClientEventRecord) {
        let (kind, label) = match event {
            ClientEventRecord::Granted {
                req,
                feature,
                handle,
                server,
                attempts,
                ..
            } => {
                let label = format!(
                    "{handle} {feature} granted by #{server} (request {req}, {attempts} sends)"
                );
                let r = self.chart.keep(record);
                if let Some(Some(lane)) = self.client_lane.get(client).copied() {
                    let open = Open {
                        from_ms: t,
                        kind: "seat",
                        label,
                        r,
                    };
                    let key = (client.to_string(), handle.clone());
                    self.held.entry(key).or_insert((open, lane));
                }
                return;
            }
            ClientEventRecord::Denied { req, reason, .. } => {
                ("denied", format!("denied: {reason} (request {req})"))
            }
            ClientEventRecord::Unknown { req, reason, .. } => (
                "unknown",
                format!(
                    "outcome unknown (request {req}){}",
                    reason
                        .as_deref()
                        .map(|r| format!(", the last a refusal: {r}"))
                        .unwrap_or_default()
                ),
            ),
            ClientEventRecord::Lost { handle } => ("lost", self.ended(client, handle, t, "lost")),
            ClientEventRecord::Removed { handle } => (
                "removed",
                self.ended(client, handle, t, "removed by an administrator"),
            ),
            ClientEventRecord::BorrowEnd { handle } => {
                ("borrow_end", self.ended(client, handle, t, "borrow ended"))
            }
            ClientEventRecord::Stopped { handle } => {
                ("stopped", self.ended(client, handle, t, "stopped"))
            }
            ClientEventRecord::Crashed { handle } => {
                ("crashed", self.ended(client, handle, t, "crashed"))
            }
            ClientEventRecord::Frozen { .. } => ("frozen", "frozen".to_string()),
            ClientEventRecord::Thawed { .. } => ("thawed", "thawed".to_string()),
            ClientEventRecord::Resolved { req, handle } => (
                "resolved",
                format!(
                    "settled request {req}: {}",
                    handle.as_deref().unwrap_or("nothing to release")
                ),
            ),
            ClientEventRecord::Skipped { .. } | ClientEventRecord::Released { .. } => return,
        };
        self.client_mark(record, client, t, kind, label);
    }

    /// Ends the seat `handle` of `client` (if named and held); the mark's label.
    fn ended(&mut self, client: &str, handle: &Option<String>, t: u64, what: &str) -> String {
        match handle {
            Some(handle) => {
                self.release(client, handle, t);
                format!("{what} {handle}")
            }
            None => what.to_string(),
        }
    }

    fn release(&mut self, client: &str, handle: &str, t: u64) {
        if let Some((open, lane)) = self.held.remove(&(client.to_string(), handle.to_string())) {
            self.chart.clients[lane].bar(open.until(t));
        }
    }

    fn client_mark(
        &mut self,
        record: &Record,
        client: &str,
        t: u64,
        kind: &'static str,
        label: String,
    ) {
        let Some(Some(lane)) = self.client_lane.get(client).copied() else {
            return;
        };
        // A mark past the lane's limit keeps no record: the tooltips' records go to marks
        // that are drawn.
        if !self.chart.clients[lane].has_room() {
            self.chart.clients[lane].dropped += 1;
            return;
        }
        let label = format!("{client} {label}");
        let r = self.chart.keep(record);
        self.chart.clients[lane].mark(Mark {
            t_ms: t,
            kind,
            label,
            r,
        });
    }

    /// Seats in use as the overuse checker counts them, after `record`.
    fn seats(&mut self, record: &Record) {
        let t = record.t_ms().unwrap_or(0);
        self.leases.observe(record, "");
        let mut in_use: BTreeMap<&str, usize> = BTreeMap::new();
        for seat in self.leases.held.values() {
            *in_use.entry(seat.feature.as_str()).or_default() += 1;
        }
        for (feature, index) in &self.seat_chart {
            let n = in_use.get(feature.as_str()).copied().unwrap_or(0);
            let steps = &mut self.chart.seats[*index].steps;
            let last = steps.last().map(|s| s.1);
            if last != Some(n) && steps.len() < SEAT_STEPS_MAX {
                steps.push((t, n));
            }
        }
    }

    fn finish(mut self, violation: Option<&Violation>) -> Chart {
        let end = self.chart.end_ms;
        for (server, open) in std::mem::take(&mut self.roles) {
            self.chart.servers[usize::from(server) - 1].bar(open.until(end));
        }
        for (row, open) in std::mem::take(&mut self.faults) {
            if let Some(lane) = self.fault_row(&row) {
                self.chart.faults[lane].bar(open.until(end));
            }
        }
        for ((_, _), (open, lane)) in std::mem::take(&mut self.held) {
            self.chart.clients[lane].bar(open.until(end));
        }
        for lane in &mut self.chart.clients {
            lane.bars.sort_by_key(|b| b.from_ms);
        }
        for lane in &mut self.chart.faults {
            lane.bars.sort_by_key(|b| b.from_ms);
        }
        self.chart.violation = violation.map(|v| ViolationMark {
            t_ms: v.t_ms,
            invariant: v.invariant.to_string(),
            what: v.what.clone(),
            evidence: v.evidence.clone(),
        });
        self.notes();
        self.chart
    }

    fn notes(&mut self) {
        let chart = &mut self.chart;
        if self.heartbeats > 0 {
            chart.notes.push(format!(
                "{} heartbeats are not drawn (a seat's bar is its lease kept alive)",
                self.heartbeats
            ));
        }
        let lanes = chart
            .servers
            .iter()
            .chain(&chart.faults)
            .chain(&chart.clients)
            .chain(std::iter::once(&chart.expects));
        for lane in lanes {
            if lane.dropped > 0 {
                chart.notes.push(format!(
                    "lane {}: {} more bars or marks not drawn (at most {BARS_PER_LANE_MAX} bars and {MARKS_PER_LANE_MAX} marks a lane)",
                    lane.name, lane.dropped
                ));
            }
        }
        if self.faults_left_out > 0 {
            chart.notes.push(format!(
                "{} faults are not drawn (at most {FAULT_ROWS_MAX} fault rows)",
                self.faults_left_out
            ));
        }
        if chart.records.len() >= RECORDS_MAX {
            chart.notes.push(format!(
                "only the first {RECORDS_MAX} records drawn are kept for the tooltips"
            ));
        }
        for seats in &chart.seats {
            if seats.steps.len() >= SEAT_STEPS_MAX {
                chart.notes.push(format!(
                    "the seats of {} are drawn for their first {SEAT_STEPS_MAX} changes only",
                    seats.feature
                ));
            }
        }
    }
}

/// The fault row in which `fault` starts a bar, with the bar's kind, and the rows in
/// which it ends bars: a repair ends its cut's bar, a link back to normal ends a slow or
/// flapping link's.
fn fault_rows(fault: &Fault) -> (Option<(String, &'static str)>, Vec<String>) {
    let (a, b) = (parties(&fault.a), parties(&fault.b));
    let between = if b.is_empty() {
        a.clone()
    } else {
        format!("{a} | {b}")
    };
    match fault.fault {
        FaultKind::Partition => (Some((format!("cut {between}"), "cut")), vec![]),
        FaultKind::Repair => (None, vec![format!("cut {between}")]),
        FaultKind::PartitionOneway => (Some((format!("one-way {a} → {b}"), "oneway")), vec![]),
        FaultKind::RepairOneway => (None, vec![format!("one-way {a} → {b}")]),
        FaultKind::Crash => (Some((format!("crash {between}"), "crash")), vec![]),
        // A clean stop is drawn as a crash is: the server is down until its restart.
        FaultKind::Stop => (Some((format!("stop {between}"), "crash")), vec![]),
        FaultKind::Restart => (
            None,
            vec![format!("crash {between}"), format!("stop {between}")],
        ),
        FaultKind::Hold => (Some((format!("hold {between}"), "hold")), vec![]),
        FaultKind::Release => (None, vec![format!("hold {between}")]),
        FaultKind::Link => match fault.state {
            Some(LinkState::Slow) => (Some((format!("slow {between}"), "slow")), vec![]),
            Some(LinkState::Flapping) => {
                (Some((format!("flapping {between}"), "flapping")), vec![])
            }
            // A link back to normal ends whichever of the two it was.
            Some(LinkState::Normal) | None => (
                None,
                vec![format!("slow {between}"), format!("flapping {between}")],
            ),
        },
        // A clock stays off until the next clock fault of the server sets it again.
        FaultKind::Clock => {
            let back = fault.offset_ms.unwrap_or(0) == 0 && fault.drift_ppm.unwrap_or(0) == 0;
            let row = format!("clock {between}");
            let start = (!back).then(|| (row.clone(), "clock"));
            (start, vec![row])
        }
    }
}

/// Servers as `#1 #2`, a client machine by its name.
fn parties(side: &[Party]) -> String {
    side.iter()
        .map(|party| match party {
            Party::Server(id) => format!("#{id}"),
            Party::Client(name) => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lane of each client named in `records`, and the lanes made in `chart`: a lane per
/// client (a restarted client, `c4.1`, in the first's), or past [`CLIENT_LANES_MAX`] a
/// lane per group (`eng1`..`eng10` in `eng`), and none for groups past it.
fn client_lanes(records: &[Record], chart: &mut Chart) -> BTreeMap<String, Option<usize>> {
    let mut names: Vec<&str> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for record in records {
        let name = match record {
            Record::Request(r) => &r.client,
            Record::Reply(r) => &r.client,
            Record::Client(r) => &r.client,
            _ => continue,
        };
        if seen.insert(name.as_str()) {
            names.push(name.as_str());
        }
    }
    let distinct = |key: fn(&str) -> &str| {
        names
            .iter()
            .map(|n| key(n))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let key: fn(&str) -> &str = if distinct(process_of) <= CLIENT_LANES_MAX {
        process_of
    } else {
        group_of
    };
    let mut lanes: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut by_key: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    let mut left_out = 0;
    for name in names {
        let lane = *by_key.entry(key(name)).or_insert_with(|| {
            if chart.clients.len() < CLIENT_LANES_MAX {
                chart.clients.push(Lane::named(key(name)));
                Some(chart.clients.len() - 1)
            } else {
                left_out += 1;
                None
            }
        });
        lanes.insert(name.to_string(), lane);
    }
    if left_out > 0 {
        chart.notes.push(format!(
            "{left_out} groups of clients are not drawn (at most {CLIENT_LANES_MAX} client lanes)"
        ));
    }
    lanes
}

/// A client's first process: `c4` for `c4.1` (the process started after `c4` crashed).
fn process_of(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((first, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => first,
        _ => name,
    }
}

/// A client's group: its name without the number at its end (`eng` for `eng10.1`).
fn group_of(name: &str) -> &str {
    let name = process_of(name);
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.is_empty() { name } else { trimmed }
}
