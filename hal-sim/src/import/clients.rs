//! The clients and what they asked, from the `served` and `seat` records.
//!
//! Each client id is a scenario client of its own (a machine of its own), named after
//! its user. A request is the first time any server answered it — a request retried,
//! or redirected from a server that was not active, is one request — and its answer is
//! the last one that was not a redirect. Checkouts, borrows, checkins and returns become
//! steps at their times; heartbeats are the simulated client's own business.
//!
//! What the field's answer becomes as an expectation: a grant (`granted_by`) or a
//! denial that depends on timing only where the triad was quiet around it (see
//! [`super::checks::Quiet`]); a denial that the license alone decides (`unknown_feature`,
//! `borrow_not_allowed`) always; a denial the simulator cannot reproduce
//! (`license_expired`: its calendar is its own; `hostid_mismatch`: its machines have the
//! license's HostIDs) never. The field's answer is in a comment either way.
//!
//! Seats held when a warm window opens are checked out again during the lead-in; a seat
//! that expired (its lease ran out: the client stopped heartbeating) is replayed as the
//! client's process dying a lease before.
//!
//! Races for the last seats. Requests keep the order in which the active server received
//! them (`waited_ms`, and `received` for those of one millisecond): each gets a simulated
//! time of its own, at least a millisecond after the one before, and the scenario's
//! network has no jitter, so the simulated server receives them in the same order. What
//! the order cannot fix is timing: a checkout that came within [`RACE_MS`] of another
//! client's request or seat change of its feature, while every seat of it was in use,
//! depended on which the server applied first, and a simulated majority syncs at its own
//! pace. Such a request gets no expectation, and, as after any checkout without one,
//! its client's seats of the feature are uncertain from then on: its checkouts are made `unless_held` and its checkins
//! `if_held`, so that the replay's client checks in what the replay granted it, until
//! its field client holds none of them again after a checkin. While any client's seats
//! of a feature are uncertain, the others' grants of it are expected only with a seat to
//! spare for each uncertain client, and their `all_in_use` denials not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hal_core::ServerId;
use hal_core::record::{OpName, Record, ResultName, SeatChangeName, SeatRecord, Served};
use hal_core::timing::Timing;

use super::checks::Quiet;
use super::field::{Field, Place};
use super::time::{rfc3339, secs};
use super::window::Window;
use super::{ImportError, Noted};
use crate::scenario::{Action, Answer, ClientAct, ClientGroup, Expect, Step};

/// The most clients in one scenario (the loader's limit).
pub const CLIENTS_MAX: usize = 1_000;
/// A checkout this close to another client's request or seat change of its feature, with
/// every seat in use, raced for a seat: the simulator's timing may decide it otherwise.
pub const RACE_MS: u64 = 20;
/// Requests spread further than this from their field times (to keep their order) are
/// noted.
const SPREAD_NOTE_MS: u64 = 10;
/// An `all_in_use` denial is expected only if no seat of its feature changed this close.
const SEAT_QUIET_MS: u64 = 1_000;
/// The longest client name made.
const NAME_CHARS_MAX: usize = 32;

/// The clients' part of the scenario.
#[derive(Debug, Default)]
pub struct Clients {
    pub groups: Vec<Noted<ClientGroup>>,
    pub steps: Vec<Noted<Step>>,
    pub notes: Vec<String>,
}

/// A seat change, once (every server applies the same entry at the same index).
#[derive(Debug, Clone)]
pub struct Seat {
    /// The first time a server applied it.
    pub t_ms: u64,
    pub record: SeatRecord,
}

/// Every seat change in the journals, by index.
pub fn seats(field: &Field) -> BTreeMap<u64, Seat> {
    let mut seats: BTreeMap<u64, Seat> = BTreeMap::new();
    for event in &field.events {
        if let Record::Seat(seat) = &event.record {
            seats.entry(seat.index).or_insert_with(|| Seat {
                t_ms: event.t_ms,
                record: seat.clone(),
            });
        }
    }
    seats
}

/// One request: every answer to one (client, req).
#[derive(Debug, Clone)]
struct Request {
    client: String,
    req: u64,
    /// When it was first received (`waited_ms` before its answer), or first answered.
    first_ms: u64,
    /// Which server received it first, and how many requests that server had received
    /// before it (`received`; 0 in journals without it).
    first_at: (u8, u64),
    answers: Vec<(Served, Place)>,
}

impl Request {
    /// The answer the application got: the last one that was not a redirect.
    fn outcome(&self) -> Option<&(Served, Place)> {
        self.answers
            .iter()
            .rev()
            .find(|(s, _)| s.reason.as_deref() != Some("not_active"))
            .or(self.answers.last())
    }

    fn op(&self) -> OpName {
        self.answers
            .first()
            .map_or(OpName::Heartbeat, |(s, _)| s.op)
    }
}

/// Something a client does, in its order.
#[derive(Debug, Clone)]
enum Act {
    /// A seat held when a warm window opens, checked out again in the lead-in.
    Held(Seat),
    Request(Request),
    /// A seat that expired: the client stopped heartbeating a lease before.
    Expired(Seat),
}

/// What the scenario knows about a client id.
#[derive(Debug, Default)]
struct Known {
    user: Option<String>,
    host: Option<String>,
    acts: Vec<(u64, Act)>,
}

/// What the inference of the clients needs to know besides the journals.
#[derive(Debug)]
pub struct Context<'a> {
    pub window: &'a Window,
    pub timing: &'a Timing,
    pub quiet: &'a Quiet,
    /// The license's features, and those the simulator's calendar finds in force.
    pub features: &'a BTreeSet<String>,
    pub in_force: &'a BTreeSet<String>,
    /// Each feature's longest borrow, hours.
    pub borrow_max: &'a BTreeMap<String, u32>,
    /// Each counted feature's seats.
    pub counts: &'a BTreeMap<String, u32>,
}

/// The clients and their steps in the window.
pub fn infer(field: &Field, cx: &Context<'_>) -> Result<Clients, ImportError> {
    let seats = seats(field);
    let index = SeatIndex::new(&seats, cx.window);
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    let mut out = Clients::default();
    for seat in seats.values() {
        let r = &seat.record;
        let entry = known.entry(r.client.clone()).or_default();
        entry.user = entry.user.take().or(r.user.clone());
        entry.host = entry.host.take().or(r.host.clone());
    }
    let requests = requests(field, &mut out.notes);
    let races = Races::new(&requests, &seats, &index, cx.counts);
    // Each request a millisecond of its own at least, in the order the servers received
    // them (the scenario's network has no jitter to reorder them).
    let (mut last_at, mut spread_ms) = (None::<u64>, 0);
    for request in requests {
        let entry = known.entry(request.client.clone()).or_default();
        for (served, _) in &request.answers {
            entry.user = entry.user.take().or(served.user.clone());
            entry.host = entry.host.take().or(served.host.clone());
        }
        if cx.window.holds(request.first_ms) {
            let field_at = cx.window.sim_ms(request.first_ms);
            let at = last_at.map_or(field_at, |last| field_at.max(last.saturating_add(1)));
            spread_ms = spread_ms.max(at - field_at);
            last_at = Some(at);
            entry.acts.push((at, Act::Request(request)));
        }
    }
    if spread_ms > SPREAD_NOTE_MS {
        out.notes.push(format!(
            "requests that came in the same milliseconds are replayed a millisecond apart, in the order the servers received them: up to {spread_ms} ms after their field times"
        ));
    }
    held_and_expired(&seats, cx, &mut known);
    known.retain(|_, k| !k.acts.is_empty());
    if known.len() > CLIENTS_MAX {
        return Err(ImportError::Input(format!(
            "{} clients asked for seats in the window; a scenario holds at most {CLIENTS_MAX}: narrow the window with --from/--to",
            known.len()
        )));
    }
    let mut taken = BTreeSet::new();
    let mut by_first: Vec<(&String, &mut Known)> = known.iter_mut().collect();
    by_first.sort_by_key(|(_, k)| k.acts.iter().map(|(t, _)| *t).min());
    let mut replay = Replay {
        cx,
        index: &index,
        races: &races,
        clients: Vec::new(),
        uncertain: BTreeMap::new(),
        out: &mut out,
    };
    let mut timeline: Vec<(u64, usize, Act)> = Vec::new();
    for (who, (id, client)) in by_first.into_iter().enumerate() {
        let name = name_for(client.user.as_deref(), &mut taken);
        let requests = client
            .acts
            .iter()
            .filter(|(_, a)| matches!(a, Act::Request(_)))
            .count();
        replay.out.groups.push(Noted {
            notes: vec![format!(
                "client {id}: {}@{}; {requests} requests in the window",
                super::clean(client.user.as_deref().unwrap_or("?")),
                super::clean(client.host.as_deref().unwrap_or("?"))
            )],
            item: ClientGroup {
                name: name.clone(),
                count: None,
                path: vec![ServerId::PRIMARY, ServerId::SECONDARY, ServerId::TIEBREAKER],
                line: 0,
            },
        });
        replay.clients.push(ClientState {
            name,
            held: BTreeMap::new(),
        });
        client.acts.sort_by_key(|(t, _)| *t);
        timeline.extend(client.acts.drain(..).map(|(at, act)| (at, who, act)));
    }
    // One pass in time order: whether a client's seats are uncertain depends on races
    // that other clients' requests took part in.
    timeline.sort_by_key(|(at, who, _)| (*at, *who));
    for (at, who, act) in &timeline {
        replay.act(*at, *who, act);
    }
    Ok(out)
}

/// Every request answered, by (client, req), in the order first received (answered, in
/// journals without `waited_ms`); heartbeats that found a seat unknown are noted.
fn requests(field: &Field, notes: &mut Vec<String>) -> Vec<Request> {
    let mut by_key: BTreeMap<(String, u64), Request> = BTreeMap::new();
    for event in &field.events {
        let Record::Served(served) = &event.record else {
            continue;
        };
        if served.op == OpName::Heartbeat {
            if served.result == ResultName::UnknownHandle {
                notes.push(format!(
                    "#{} told client {} at {} that its seat {} was unknown (a lost seat) [{}]",
                    served.server,
                    served.client,
                    rfc3339(event.t_ms),
                    super::clean(served.handle.as_deref().unwrap_or("?")),
                    event.place.short()
                ));
            }
            continue;
        }
        // When the server received it (a grant's answer waits for a majority's sync, a
        // refusal's does not): requests that raced for a seat keep the field's order.
        let asked_ms = event.t_ms.saturating_sub(served.waited_ms.unwrap_or(0));
        let at = (served.server, served.received.unwrap_or(0));
        let request = by_key
            .entry((served.client.clone(), served.req))
            .or_insert_with(|| Request {
                client: served.client.clone(),
                req: served.req,
                first_ms: asked_ms,
                first_at: at,
                answers: Vec::new(),
            });
        if (asked_ms, at) < (request.first_ms, request.first_at) {
            request.first_ms = asked_ms;
            request.first_at = at;
        }
        request.answers.push((served.clone(), event.place.clone()));
    }
    let mut requests: Vec<Request> = by_key.into_values().collect();
    requests.sort_by_key(|r| (r.first_ms, r.first_at));
    requests
}

/// The seats held at a warm window's start, and the seats that expired in the window.
fn held_and_expired(
    seats: &BTreeMap<u64, Seat>,
    cx: &Context<'_>,
    known: &mut BTreeMap<String, Known>,
) {
    let window = cx.window;
    // Each seat's grant, by handle.
    let mut grants: BTreeMap<&str, &Seat> = BTreeMap::new();
    let mut ended: BTreeMap<&str, u64> = BTreeMap::new();
    for seat in seats.values() {
        let r = &seat.record;
        match r.change {
            SeatChangeName::Granted | SeatChangeName::Borrowed => {
                grants.insert(&r.handle, seat);
            }
            _ => {
                ended.entry(&r.handle).or_insert(seat.t_ms);
            }
        }
        let borrowed = grants
            .get(r.handle.as_str())
            .is_some_and(|g| g.record.change == SeatChangeName::Borrowed);
        if r.change == SeatChangeName::Expired && !borrowed && window.holds(seat.t_ms) {
            let lease = u64::try_from(cx.timing.seat_lease().as_millis()).unwrap_or(u64::MAX);
            let at = window.sim_ms(seat.t_ms).saturating_sub(lease);
            let entry = known.entry(r.client.clone()).or_default();
            entry.acts.push((at, Act::Expired(seat.clone())));
        }
    }
    if window.cold() {
        return;
    }
    for (handle, grant) in grants {
        let before = grant.t_ms < window.from_ms;
        let open = ended.get(handle).is_none_or(|t| *t >= window.from_ms);
        if before && open {
            let entry = known.entry(grant.record.client.clone()).or_default();
            entry
                .acts
                .push((window.held_at_ms, Act::Held(grant.clone())));
        }
    }
}

/// A client's name: its user's, made a valid and unused name.
fn name_for(user: Option<&str>, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = user
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(NAME_CHARS_MAX)
        .collect();
    if base.trim_matches('_').is_empty() {
        base = "client".into();
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// The seat changes, indexed for what a client's steps ask of them.
#[derive(Debug, Default)]
struct SeatIndex {
    /// A checkin's or return's feature, by (client, req).
    released: BTreeMap<(String, u64), String>,
    /// Each seat's feature, by handle.
    feature: BTreeMap<String, String>,
    /// Per feature, the simulated times its seats changed in the window, in order.
    changed: BTreeMap<String, Vec<u64>>,
}

impl SeatIndex {
    fn new(seats: &BTreeMap<u64, Seat>, window: &Window) -> SeatIndex {
        let mut index = SeatIndex::default();
        for seat in seats.values() {
            let r = &seat.record;
            if let (SeatChangeName::Released | SeatChangeName::Returned, Some(req)) =
                (r.change, r.req)
            {
                index
                    .released
                    .insert((r.client.clone(), req), r.feature.clone());
            }
            index.feature.insert(r.handle.clone(), r.feature.clone());
            if window.holds(seat.t_ms) {
                let times = index.changed.entry(r.feature.clone()).or_default();
                times.push(window.sim_ms(seat.t_ms));
            }
        }
        for times in index.changed.values_mut() {
            times.sort_unstable();
        }
        index
    }
}

/// When the field's requests and seat changes of each feature were, and how many of its
/// seats were in use, to tell a race for the last seats from a request that had its
/// seat (or its denial) whatever the timing.
#[derive(Debug)]
struct Races<'a> {
    /// Per feature: (true time, client id) of every request and seat change.
    events: BTreeMap<String, Vec<(u64, String)>>,
    /// Per feature: (true time, seats in use after it) at each seat change, in time order.
    in_use: BTreeMap<String, Vec<(u64, u32)>>,
    counts: &'a BTreeMap<String, u32>,
}

impl<'a> Races<'a> {
    fn new(
        requests: &[Request],
        seats: &BTreeMap<u64, Seat>,
        index: &SeatIndex,
        counts: &'a BTreeMap<String, u32>,
    ) -> Races<'a> {
        let mut races = Races {
            events: BTreeMap::new(),
            in_use: BTreeMap::new(),
            counts,
        };
        for request in requests {
            let feature = request.answers.iter().find_map(|(s, _)| {
                s.feature.clone().or_else(|| {
                    index
                        .released
                        .get(&(request.client.clone(), request.req))
                        .or_else(|| index.feature.get(s.handle.as_deref()?))
                        .cloned()
                })
            });
            if let Some(feature) = feature {
                let times = races.events.entry(feature).or_default();
                times.push((request.first_ms, request.client.clone()));
            }
        }
        let mut used: BTreeMap<&str, u32> = BTreeMap::new();
        for seat in seats.values() {
            let r = &seat.record;
            let n = used.entry(r.feature.as_str()).or_insert(0);
            *n = match r.change {
                SeatChangeName::Granted | SeatChangeName::Borrowed => n.saturating_add(1),
                // A place in a queue, not a seat.
                SeatChangeName::Queued | SeatChangeName::LeftQueue => *n,
                _ => n.saturating_sub(1),
            };
            let changes = races.in_use.entry(r.feature.clone()).or_default();
            changes.push((seat.t_ms, *n));
            let times = races.events.entry(r.feature.clone()).or_default();
            times.push((seat.t_ms, r.client.clone()));
        }
        for times in races.events.values_mut() {
            times.sort_unstable();
        }
        for changes in races.in_use.values_mut() {
            changes.sort_by_key(|(t, _)| *t);
        }
        races
    }

    fn count(&self, feature: &str) -> Option<u32> {
        self.counts.get(feature).copied()
    }

    /// The most seats of `feature` in use from true time `from` to `to`.
    fn most_in_use(&self, feature: &str, from: u64, to: u64) -> u32 {
        let Some(changes) = self.in_use.get(feature) else {
            return 0;
        };
        let first = changes.partition_point(|(t, _)| *t < from);
        let before = first
            .checked_sub(1)
            .and_then(|i| changes.get(i))
            .map_or(0, |(_, n)| *n);
        changes[first..]
            .iter()
            .take_while(|(t, _)| *t <= to)
            .map(|(_, n)| *n)
            .fold(before, u32::max)
    }

    /// Whether `client`'s request of `feature` at true time `t` raced for a seat: another
    /// client asked or a seat changed within [`RACE_MS`], and every seat was in use.
    fn raced(&self, t: u64, client: &str, feature: &str) -> bool {
        let (Some(count), Some(events)) = (self.count(feature), self.events.get(feature)) else {
            return false;
        };
        let (from, to) = (t.saturating_sub(RACE_MS), t.saturating_add(RACE_MS));
        let first = events.partition_point(|(e, _)| *e < from);
        let others = events[first..]
            .iter()
            .take_while(|(e, _)| *e <= to)
            .any(|(_, c)| c != client);
        others && self.most_in_use(feature, from, to) >= count
    }
}

/// A client of the replay: its name and the seats its field client held.
#[derive(Debug)]
struct ClientState {
    name: String,
    /// (feature, borrowed) → seats held.
    held: BTreeMap<(String, bool), u32>,
}

/// The clients' steps, made in time order, with the seats each holds as it goes.
struct Replay<'a, 'c> {
    cx: &'a Context<'c>,
    index: &'a SeatIndex,
    races: &'a Races<'a>,
    clients: Vec<ClientState>,
    /// (feature, borrowed) → the clients whose seats of it the replay may hold
    /// otherwise than the field, since a race.
    uncertain: BTreeMap<(String, bool), BTreeSet<usize>>,
    out: &'a mut Clients,
}

impl Replay<'_, '_> {
    fn act(&mut self, at: u64, who: usize, act: &Act) {
        match act {
            Act::Held(seat) => self.held_seat(at, who, seat),
            Act::Request(request) => self.request(at, who, request),
            Act::Expired(seat) => self.expired(at, who, seat),
        }
    }

    fn push(&mut self, at_ms: u64, who: usize, act: ClientAct, expect: Expect, notes: Vec<String>) {
        let Some(client) = self.clients.get(who) else {
            return;
        };
        self.out.steps.push(Noted {
            notes,
            item: Step {
                at: Duration::from_millis(at_ms),
                line: 0,
                action: Action::Client {
                    who: client.name.clone(),
                    act,
                },
                expect,
            },
        });
    }

    fn held(&self, who: usize, feature: &str, borrowed: bool) -> u32 {
        self.clients
            .get(who)
            .and_then(|c| c.held.get(&(feature.to_string(), borrowed)))
            .copied()
            .unwrap_or(0)
    }

    fn hold(&mut self, who: usize, feature: &str, borrowed: bool, by: i32) {
        if let Some(client) = self.clients.get_mut(who) {
            let count = client
                .held
                .entry((feature.to_string(), borrowed))
                .or_insert(0);
            *count = count.saturating_add_signed(by);
        }
    }

    fn is_uncertain(&self, who: usize, feature: &str, borrowed: bool) -> bool {
        self.uncertain
            .get(&(feature.to_string(), borrowed))
            .is_some_and(|c| c.contains(&who))
    }

    /// Clients other than `who` whose seats of `feature` (either kind) are uncertain.
    fn uncertain_others(&self, who: usize, feature: &str) -> u32 {
        let n = [false, true]
            .iter()
            .filter_map(|b| self.uncertain.get(&(feature.to_string(), *b)))
            .flatten()
            .filter(|c| **c != who)
            .collect::<BTreeSet<_>>()
            .len();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn held_seat(&mut self, at: u64, who: usize, seat: &Seat) {
        let r = &seat.record;
        let borrowed = r.change == SeatChangeName::Borrowed;
        let notes = vec![format!(
            "held since {} (seat {}, granted by #{}): checked out again during the lead-in",
            rfc3339(seat.t_ms),
            super::clean(&r.handle),
            r.by.unwrap_or(0)
        )];
        let act = match r.borrow_end_ms {
            Some(end) if borrowed => {
                let hours = self.hours(&r.feature, end.saturating_sub(self.cx.window.from_ms));
                ClientAct::Borrow(r.feature.clone(), hours)
            }
            _ => ClientAct::Checkout(r.feature.clone()),
        };
        self.push(at, who, act, Expect::default(), notes);
        self.hold(who, &r.feature, borrowed, 1);
    }

    fn expired(&mut self, at: u64, who: usize, seat: &Seat) {
        let r = &seat.record;
        let notes = vec![format!(
            "seat {} of {} expired at {} (index {}): its lease ran out, so the client had stopped heartbeating (crashed, frozen or cut off); replayed as its process dying a lease before, at {}",
            super::clean(&r.handle),
            super::clean(&r.feature),
            rfc3339(seat.t_ms),
            r.index,
            secs(at)
        )];
        self.push(at, who, ClientAct::Kill, Expect::default(), notes);
        if let Some(client) = self.clients.get_mut(who) {
            client.held.clear();
        }
        // A new process holds nothing, in the field as in the replay.
        for clients in self.uncertain.values_mut() {
            clients.remove(&who);
        }
    }

    fn request(&mut self, at: u64, who: usize, request: &Request) {
        let Some((outcome, place)) = request.outcome().cloned() else {
            return;
        };
        let mut notes = vec![answered(request, &outcome, &place)];
        match request.op() {
            OpName::Checkout | OpName::Borrow => {
                self.checkout(at, who, request, &outcome, notes);
            }
            OpName::Checkin | OpName::Return => {
                let borrowed = request.op() == OpName::Return;
                let Some(feature) = self.feature_of(request, &outcome) else {
                    notes.push("its feature is not known from the journals: left out".into());
                    self.out.notes.push(notes.join("; "));
                    return;
                };
                if self.held(who, &feature, borrowed) == 0 {
                    notes.push("the client holds no such seat in the replay: left out".into());
                    self.out.notes.push(notes.join("; "));
                    return;
                }
                self.hold(who, &feature, borrowed, -1);
                let uncertain = self.is_uncertain(who, &feature, borrowed);
                if uncertain {
                    notes.push(
                        "if held: since a race, the replay's client may not hold the seat".into(),
                    );
                    if self.held(who, &feature, borrowed) == 0 {
                        // Both hold none now: in step again.
                        if let Some(clients) = self.uncertain.get_mut(&(feature.clone(), borrowed))
                        {
                            clients.remove(&who);
                        }
                    }
                }
                let act = if borrowed {
                    ClientAct::Return(feature)
                } else {
                    ClientAct::Checkin(feature)
                };
                let expect = Expect {
                    if_held: uncertain,
                    ..Expect::default()
                };
                self.push(at, who, act, expect, notes);
            }
            // An administrator's removal is no client's step.
            OpName::Heartbeat | OpName::Remove | OpName::PushLicense | OpName::PushOptions => {}
            // Not replayed yet: the queue's order depends on every other client's timing.
            OpName::Wait | OpName::StopWaiting => {
                notes.push("a checkout that waited in a queue: not replayed, left out".into());
                self.out.notes.push(notes.join("; "));
            }
        }
    }

    fn checkout(
        &mut self,
        at: u64,
        who: usize,
        request: &Request,
        outcome: &Served,
        mut notes: Vec<String>,
    ) {
        let Some(feature) = outcome
            .feature
            .clone()
            .or_else(|| request.answers.iter().find_map(|(s, _)| s.feature.clone()))
        else {
            return;
        };
        let borrow = request.op() == OpName::Borrow;
        let uncertain = self.is_uncertain(who, &feature, borrow);
        let raced = outcome.result == ResultName::Granted
            || outcome.reason.as_deref() == Some("all_in_use");
        let raced = raced
            && self
                .races
                .raced(request.first_ms, &request.client, &feature);
        let (answer, why) = if uncertain {
            (
                None,
                vec![format!(
                    "no expectation, and unless held: since a race, the replay's client may hold a seat of {} already",
                    super::clean(&feature)
                )],
            )
        } else if raced {
            (
                None,
                vec![format!(
                    "no expectation: it raced for the last seat of {} (another client's request or seat change within {RACE_MS} ms, every seat in use), which the simulator's timing may decide otherwise",
                    super::clean(&feature)
                )],
            )
        } else {
            self.expectation(at, who, request, &feature, outcome)
        };
        notes.extend(why);
        if !self.cx.features.contains(&feature)
            && answer != Some(Answer::Denied(Some("unknown_feature".into())))
        {
            notes.push("the license has no such feature: left out".into());
            self.out.notes.push(notes.join("; "));
            return;
        }
        let act = if borrow {
            let hours = match outcome.borrow_end_ms {
                Some(end) => self.hours(&feature, end.saturating_sub(request.first_ms)),
                None if outcome.reason.as_deref() == Some("borrow_not_allowed") => {
                    notes.push("the hours asked for are not journaled: the replay asks for one more than the license allows".into());
                    self.cx
                        .borrow_max
                        .get(&feature)
                        .map_or(1, |max| max.saturating_add(1).min(24 * 366))
                }
                None => 1,
            };
            ClientAct::Borrow(feature.clone(), hours)
        } else {
            ClientAct::Checkout(feature.clone())
        };
        if outcome.result == ResultName::Granted {
            self.hold(who, &feature, borrow, 1);
        }
        // Whatever the replay answers without an expectation may differ from the field's
        // answer, and so may what the client holds after it.
        if answer.is_none() {
            self.uncertain
                .entry((feature.clone(), borrow))
                .or_default()
                .insert(who);
        }
        let expect = Expect {
            answer,
            unless_held: uncertain,
            ..Expect::default()
        };
        self.push(at, who, act, expect, notes);
    }

    /// The expectation on a checkout's or borrow's answer at simulated `at`, and why
    /// there is none when there is none.
    fn expectation(
        &self,
        at: u64,
        who: usize,
        request: &Request,
        feature: &str,
        outcome: &Served,
    ) -> (Option<Answer>, Vec<String>) {
        let unquiet = || {
            vec![format!(
                "no expectation: within {} of a change of roles or a fault, where the simulator's timing may differ",
                secs(self.cx.quiet.margin_ms)
            )]
        };
        let uncertain = self.uncertain_others(who, feature);
        let unsure = |spare: u32| {
            vec![format!(
                "no expectation: {uncertain} other client(s) may hold a seat of {} in the replay that they did not in the field (since a race), and the field had {spare} seat(s) to spare",
                super::clean(feature)
            )]
        };
        match (outcome.result, outcome.reason.as_deref()) {
            (ResultName::Granted, _) => {
                let by = outcome.granted_by.unwrap_or(outcome.server);
                if !self.cx.in_force.contains(feature) {
                    return (None, vec![not_in_force(feature)]);
                }
                if uncertain > 0
                    && let Some(count) = self.races.count(feature)
                {
                    let t = request.first_ms;
                    let most = self.races.most_in_use(
                        feature,
                        t.saturating_sub(RACE_MS),
                        t.saturating_add(RACE_MS),
                    );
                    let spare = count.saturating_sub(most);
                    if spare < uncertain {
                        return (None, unsure(spare));
                    }
                }
                match ServerId::new(by).filter(|s| *s != ServerId::TIEBREAKER) {
                    Some(id) if self.cx.quiet.at(at) => (Some(Answer::Granted(Some(id))), Vec::new()),
                    Some(_) => (None, unquiet()),
                    None => (None, vec![format!("granted by #{by}?: no expectation")]),
                }
            }
            (_, Some(reason @ ("unknown_feature" | "borrow_not_allowed"))) => {
                (Some(Answer::Denied(Some(reason.to_string()))), Vec::new())
            }
            (_, Some("all_in_use")) if !self.seats_quiet(at, feature) => (
                None,
                vec!["no expectation: a seat of the feature changed hands within a second".into()],
            ),
            (_, Some("all_in_use")) if uncertain > 0 => (None, unsure(0)),
            (_, Some(reason @ ("all_in_use" | "borrow_unavailable" | "no_majority"))) => {
                if self.cx.quiet.at(at) && self.cx.in_force.contains(feature) {
                    (Some(Answer::Denied(Some(reason.to_string()))), Vec::new())
                } else if !self.cx.in_force.contains(feature) {
                    (None, vec![not_in_force(feature)])
                } else {
                    (None, unquiet())
                }
            }
            (_, Some("license_expired")) => (None, vec!["no expectation: the simulator's calendar is its own (it starts in 2027), so what is expired differs".into()]),
            (_, Some("hostid_mismatch")) => (None, vec!["no expectation: the simulated servers run on the HostIDs the license names".into()]),
            _ => (None, vec!["no expectation for this answer".into()]),
        }
    }

    /// Whether no seat of `feature` changed within [`SEAT_QUIET_MS`] of simulated `at`.
    fn seats_quiet(&self, at: u64, feature: &str) -> bool {
        let Some(times) = self.index.changed.get(feature) else {
            return true;
        };
        let next = times.partition_point(|t| *t < at);
        let near = |i: usize| {
            times
                .get(i)
                .is_some_and(|t| t.abs_diff(at) <= SEAT_QUIET_MS)
        };
        !(near(next) || next.checked_sub(1).is_some_and(near))
    }

    /// The feature a checkin or return was for: its seat change's, or its seat's grant's.
    fn feature_of(&self, request: &Request, outcome: &Served) -> Option<String> {
        let key = (request.client.clone(), request.req);
        if let Some(feature) = self.index.released.get(&key) {
            return Some(feature.clone());
        }
        self.index.feature.get(outcome.handle.as_deref()?).cloned()
    }

    /// A borrow of `length_ms`, in whole hours within the feature's limit.
    fn hours(&self, feature: &str, length_ms: u64) -> u32 {
        let hours =
            u32::try_from(length_ms.saturating_add(1_800_000) / 3_600_000).unwrap_or(u32::MAX);
        let max = self.cx.borrow_max.get(feature).copied().unwrap_or(24 * 366);
        hours.clamp(1, max.max(1))
    }
}

fn not_in_force(feature: &str) -> String {
    format!(
        "no expectation: {feature} is not in force on the simulator's calendar (START/END), so it denies license_expired"
    )
}

/// What the field's servers answered, for the comment.
fn answered(request: &Request, outcome: &Served, place: &Place) -> String {
    let op = match request.op() {
        OpName::Checkout => "checkout",
        OpName::Borrow => "borrow",
        OpName::Checkin => "checkin",
        OpName::Return => "return",
        OpName::Heartbeat => "heartbeat",
        OpName::Remove => "remove",
        OpName::PushLicense => "push_license",
        OpName::PushOptions => "push_options",
        OpName::Wait => "wait",
        OpName::StopWaiting => "stop_waiting",
    };
    let what = match outcome.result {
        ResultName::Granted => format!(
            "granted seat {} by #{}",
            super::clean(outcome.handle.as_deref().unwrap_or("?")),
            outcome.granted_by.unwrap_or(outcome.server)
        ),
        ResultName::Ok => "done".into(),
        ResultName::Queued => "queued".into(),
        ResultName::LeftQueue => "left the queue".into(),
        ResultName::Denied | ResultName::UnknownHandle => format!(
            "denied {}",
            super::clean(outcome.reason.as_deref().unwrap_or("?"))
        ),
    };
    let mut said = format!(
        "field: {op} {} at {}: #{} answered {what} [{}]",
        request.req,
        rfc3339(request.first_ms),
        outcome.server,
        place.short()
    );
    let redirects = request
        .answers
        .iter()
        .filter(|(s, _)| s.reason.as_deref() == Some("not_active"))
        .count();
    if redirects > 0 {
        said.push_str(&format!(" after {redirects} redirect(s)"));
    }
    said
}
