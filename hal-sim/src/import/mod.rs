//! `hal-sim import`: a scenario file that replays a field incident, written from the
//! servers' journals (DESIGN §10) and the license they served.
//!
//! The journals are read as one incident on one clock ([`field`], [`clocks`]): server
//! #1's, or the majority's when #1's was the odd one. From it come the scenario's
//! `[timing]` ([`timing`]), each server's clock offset and clock steps, the servers'
//! crashes and restarts ([`servers`]), the links' cuts, one-way cuts and slow spells
//! ([`links`]), the clients and their requests ([`clients`]), and who was active when
//! ([`roles`]) as `[[checks]]`. Times are simulated times from the window's start
//! ([`window`]); every step says in comments what the field's journals showed.
//!
//! Expectations are written only where the simulator can be expected to reproduce the
//! field: the active server in stretches well away from any change, grants and denials
//! away from role changes and faults ([`Quiet`]). The generated text is loaded by the
//! scenario loader before it is handed back, so a file the importer writes always loads.
//!
//! What it does not do: drift (a drifting clock is a staircase of steps), HostIDs (the
//! journals do not carry them), the servers' triad lists (taken to agree), seats granted
//! before the journals began, client license paths (each client asks #1 first).

pub mod cli;
mod clients;
mod clocks;
mod field;
mod links;
mod render;
pub mod roles;
mod servers;
pub mod time;
mod timing;
mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use hal_core::license::{License, ServeMode};
use hal_core::record::{Record, SeatChangeName};
use hal_core::{HostId, ServerId};
use hal_net::journal::read::{ReadError, ServerJournal};

use crate::scenario::{Action, Check};
use crate::world::EPOCH_MS;
use clocks::Reference;
use field::Field;
use render::Plan;
use time::{rfc3339, secs};
use window::Window;

/// Why no scenario could be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A journal that cannot be read (its file and line).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A record that makes no sense where it is.
    #[error("{place}: {problem}")]
    Record { place: String, problem: String },
    /// A command-line argument (or the file it names) that is wrong.
    #[error("{argument}: {problem}")]
    Argument { argument: String, problem: String },
    /// The journals as a whole cannot be replayed.
    #[error("{0}")]
    Input(String),
    /// The scenario written does not load: a bug of the importer.
    #[error(
        "the scenario written does not load ({0}); this is a bug in hal-sim import: please report it with the journals"
    )]
    Generated(String),
}

/// The window to import, on the reference clock (Unix ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

/// The license the servers served, as given.
#[derive(Debug, Clone)]
pub struct LicenseFile {
    /// Its path, as named in messages.
    pub name: String,
    pub text: String,
    pub license: License,
}

/// The largest license file read (the license parser's own limit).
const LICENSE_BYTES_MAX: u64 = hal_core::license::limits::FILE_BYTES_MAX as u64;
/// The largest scenario file the loader reads.
const SCENARIO_BYTES_MAX: usize = 1024 * 1024;
/// The longest run a scenario may ask for.
const DURATION_MAX_MS: u64 = 24 * 60 * 60 * 1000;
/// The simulated run goes on this long after the window's end, for answers in flight.
const TAIL_MS: u64 = 2_000;
/// A check counts the seats in use only this far from any change of a seat.
const SEAT_MARGIN_MS: u64 = 1_000;
/// Clock offsets smaller than this are left out: the estimate is no better.
const CLOCK_OFFSET_MS_MIN: i64 = 100;

impl LicenseFile {
    /// Reads and checks the license at `path` (`--license`).
    pub fn read(path: &Path) -> Result<LicenseFile, ImportError> {
        use std::io::Read;
        let wrong = |problem: String| ImportError::Argument {
            argument: format!("--license {}", path.display()),
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| wrong(format!("cannot read: {e}")))?;
        let mut bytes = Vec::new();
        file.take(LICENSE_BYTES_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| wrong(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > LICENSE_BYTES_MAX {
            return Err(wrong(format!(
                "more than {LICENSE_BYTES_MAX} bytes: not a license file"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            wrong(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        LicenseFile::parse(&path.display().to_string(), &text)
    }

    /// Checks license `text`, named `name` in messages.
    pub fn parse(name: &str, text: &str) -> Result<LicenseFile, ImportError> {
        let wrong = |problem: String| ImportError::Argument {
            argument: format!("--license {name}"),
            problem,
        };
        let license = hal_core::license::parse(name, text.as_bytes())
            .map_err(|errors| wrong(format!("not a valid license:\n{errors}")))?;
        match license.serve_mode() {
            Ok(ServeMode::Hal) => {}
            Ok(ServeMode::Single) => {
                return Err(wrong(
                    "no HAL feature (HAL_SERVERS = 3): the simulator replays a HAL triad".into(),
                ));
            }
            Err(e) => return Err(wrong(format!("cannot be served: {e}"))),
        }
        Ok(LicenseFile {
            name: name.to_string(),
            text: text.to_string(),
            license,
        })
    }
}

/// A scenario file, and what the importer saw.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The scenario file's text (it loads).
    pub text: String,
    /// The servers active in the field's window, in order, each change once: what a run
    /// of the file should replay ([`roles::history_sequence`] reads a run's).
    pub field_actives: Vec<u8>,
    pub clients: usize,
    pub steps: usize,
    pub checks: usize,
    /// What could not be replayed, for the operator (also in the file's comments).
    pub notes: Vec<String>,
}

/// A step or check of the generated file, with what the field showed (its comments).
#[derive(Debug, Clone)]
pub struct Noted<T> {
    pub notes: Vec<String>,
    pub item: T,
}

/// The times (simulated ms) of changes of roles and of faults, around which the
/// simulator's timing may differ from the field's, and how far around.
#[derive(Debug, Clone, Default)]
pub struct Quiet {
    pub margin_ms: u64,
    pub busy_ms: Vec<u64>,
}

impl Quiet {
    /// Whether nothing changed within the margin of simulated `at_ms`.
    pub fn at(&self, at_ms: u64) -> bool {
        self.busy_ms
            .iter()
            .all(|b| b.abs_diff(at_ms) > self.margin_ms)
    }

    /// The quiet part of the longest stretch of `[from_ms, to_ms]` between changes: a
    /// margin away from both ends (none if the stretch is shorter than two margins).
    pub fn zone(&self, from_ms: u64, to_ms: u64) -> Option<(u64, u64)> {
        let mut edges = vec![from_ms];
        edges.extend(
            self.busy_ms
                .iter()
                .copied()
                .filter(|b| (from_ms..to_ms).contains(b)),
        );
        edges.push(to_ms);
        edges.sort_unstable();
        let (a, b) = edges
            .windows(2)
            .map(|w| (w[0], w[1]))
            .max_by_key(|(a, b)| b - a)?;
        let zone = (a + self.margin_ms + 1, b.checked_sub(self.margin_ms + 1)?);
        (zone.0 <= zone.1 && self.at(zone.0) && self.at(zone.1)).then_some(zone)
    }
}

/// The time in `zone` farthest from every span of `spans` (simulated ms, sorted by
/// start), and how far.
fn farthest(zone: (u64, u64), spans: &[(u64, u64)]) -> (u64, u64) {
    // The nearest span: the one starting next, or one of those started before (the one
    // reaching furthest).
    let mut reach: Vec<u64> = Vec::with_capacity(spans.len());
    for &(_, b) in spans {
        reach.push(reach.last().map_or(b, |r: &u64| (*r).max(b)));
    }
    let distance = |at: u64| {
        let next = spans.partition_point(|&(a, _)| a <= at);
        let after = spans.get(next).map_or(u64::MAX, |&(a, _)| a - at);
        let before = next
            .checked_sub(1)
            .map_or(u64::MAX, |i| at.saturating_sub(reach[i]));
        after.min(before)
    };
    // Candidates: the zone's ends, and the middle of each gap between spans in it.
    let mut points = vec![zone.0, zone.1];
    let mut edges: Vec<u64> = spans
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|p| (zone.0..=zone.1).contains(p))
        .collect();
    edges.extend([zone.0, zone.1]);
    edges.sort_unstable();
    points.extend(edges.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2));
    // A round time, if it stays in the zone.
    let round = |at: u64| {
        let r = (at + 50) / 100 * 100;
        if (zone.0..=zone.1).contains(&r) {
            r
        } else {
            at
        }
    };
    // The farthest; of those as far, the nearest the zone's middle.
    let middle = zone.0 + (zone.1 - zone.0) / 2;
    points
        .into_iter()
        .map(|p| (round(p), distance(round(p))))
        .max_by_key(|&(at, d)| (d, std::cmp::Reverse(at.abs_diff(middle))))
        .unwrap_or((zone.0, 0))
}

/// Text from a journal, safe for a comment or a string: one line, no control
/// characters, at most 200 characters.
pub(crate) fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// The scenario replaying `journals` (as [`hal_net::journal::read::read`] gives them)
/// with `license` in the window of `options`.
pub fn import(
    journals: &[ServerJournal],
    license: &LicenseFile,
    options: &Options,
) -> Result<Imported, ImportError> {
    let field = Field::new(journals)?;
    let timers = timing::from_field(&field)?;
    check_license(&field, license)?;
    let window = Window::resolve(&field, options, &timers.timing)?;
    let periods = roles::periods(&field);
    let field_actives = roles::field_sequence(&periods, &window);
    let active_at_start = roles::active_at(&periods, window.from_ms);
    let mut steps = servers::steps(&field, &window, active_at_start);
    let links = links::infer(&field, &window, &timers.timing);
    steps.extend(links.steps);
    let (offsets, clock_steps) = clock_plan(&field, &window);
    steps.extend(clock_steps);
    let quiet = quiet(&window, &periods, &steps, &timers.timing);
    let in_force = in_force(license, &window);
    let features: BTreeSet<String> = license
        .license
        .features
        .iter()
        .map(|f| f.name.as_str().to_string())
        .collect();
    let borrow_max: BTreeMap<String, u32> = license
        .license
        .features
        .iter()
        .filter_map(|f| Some((f.name.as_str().to_string(), f.borrow_hours_max?)))
        .collect();
    let clients = clients::infer(
        &field,
        &clients::Context {
            window: &window,
            timing: &timers.timing,
            quiet: &quiet,
            features: &features,
            in_force: &in_force,
            borrow_max: &borrow_max,
        },
    )?;
    steps.extend(clients.steps);
    // Stable: at one time, servers' faults, then links, clocks and clients.
    steps.sort_by_key(|s| s.item.at);
    let checks = checks(&field, &window, &periods, &quiet, &timers.timing);
    let mut notes: Vec<String> = field.notes.clone();
    notes.extend(timers.notes.iter().cloned());
    notes.extend(window.notes.iter().cloned());
    notes.extend(links.notes);
    notes.extend(clients.notes);
    notes.extend(field_notes(&field, &window));
    if in_force.len() < features.len() {
        let out: Vec<&String> = features.difference(&in_force).collect();
        notes.push(format!(
            "the simulator's calendar starts at {}: {out:?} are not in force then (START/END), so it denies them license_expired",
            rfc3339(EPOCH_MS)
        ));
    }
    let duration_ms = steps
        .iter()
        .map(|s| step_end_ms(&s.item))
        .chain(checks.iter().map(|c| ms(c.item.at)))
        .chain([window.end_sim_ms()])
        .max()
        .unwrap_or(0)
        + TAIL_MS;
    if duration_ms > DURATION_MAX_MS {
        return Err(ImportError::Input(format!(
            "the window lasts {}; a scenario lasts at most a day of simulated time: narrow it with --from/--to",
            secs(duration_ms)
        )));
    }
    let plan = Plan {
        header: header(&field, &window, &field_actives),
        name: format!(
            "Incident of {} UTC (imported from the journals)",
            rfc3339(window.from_ms)
                .get(..16)
                .unwrap_or("")
                .replace('T', " ")
        ),
        story: story(&field, &window, &field_actives, &steps),
        duration_ms,
        license: license.clone(),
        timers,
        network: links.network,
        offsets,
        clients: clients.groups,
        steps,
        checks,
        notes: notes.clone(),
    };
    let text = plan.render();
    if text.len() > SCENARIO_BYTES_MAX {
        return Err(ImportError::Input(format!(
            "the scenario would be {} bytes, more than a scenario file may hold ({SCENARIO_BYTES_MAX}): narrow the window with --from/--to",
            text.len()
        )));
    }
    crate::scenario::parse("the imported scenario", &text, Path::new("."))
        .map_err(|e| ImportError::Generated(e.to_string()))?;
    Ok(Imported {
        text,
        field_actives,
        clients: plan.clients.len(),
        steps: plan.steps.len(),
        checks: plan.checks.len(),
        notes,
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When a step's fault heals or its expectation's window closes.
fn step_end_ms(step: &crate::scenario::Step) -> u64 {
    let lasting = match &step.action {
        Action::Server { lasting, .. } => lasting.unwrap_or_default(),
        _ => Duration::ZERO,
    };
    ms(step.at + lasting.max(step.expect.within.unwrap_or_default()))
}

/// Each feature the servers' journals name must be in the license with the same COUNT.
fn check_license(field: &Field, license: &LicenseFile) -> Result<(), ImportError> {
    for (server, meta) in &field.metas {
        for (name, feature) in &meta.features {
            let given = license.license.feature(name);
            let problem = match given.map(|f| f.count) {
                None => format!("has no feature {name}, which server #{server}'s journal serves"),
                Some(count) if count != Some(feature.count) => format!(
                    "gives {name} COUNT = {}, but server #{server}'s journal says {}: give the license the servers ran with",
                    count.map_or("none".into(), |c| c.to_string()),
                    feature.count
                ),
                Some(_) => continue,
            };
            return Err(ImportError::Argument {
                argument: format!("--license {}", license.name),
                problem,
            });
        }
    }
    Ok(())
}

/// The features the simulator finds in force over the run (its calendar starts at
/// [`EPOCH_MS`]).
fn in_force(license: &LicenseFile, window: &Window) -> BTreeSet<String> {
    let hostid = license
        .license
        .features
        .iter()
        .find_map(|f| f.hostids.first().cloned())
        .or_else(|| HostId::parse("server1").ok());
    let Some(hostid) = hostid else {
        return BTreeSet::new();
    };
    let catalog = hal_core::catalog::Catalog::new(
        &license.license,
        hal_core::license::ServerPosition::Triad(ServerId::PRIMARY),
        &hostid,
    );
    let end = EPOCH_MS.saturating_add(window.end_sim_ms() + TAIL_MS);
    catalog
        .iter()
        .map(|(name, _)| name.to_string())
        .filter(|name| {
            [EPOCH_MS, end].iter().all(|&t| {
                catalog.check(name, hal_core::time::WallTime(t), None)
                    != Err(hal_core::protocol::Denial::LicenseExpired)
            })
        })
        .collect()
}

/// Each server's clock offset at the start (ms; 0: none), and why.
type Offsets = [(i64, Vec<String>); 3];

/// Each server's clock offset at the window's start, and its clock's steps in it.
fn clock_plan(field: &Field, window: &Window) -> (Offsets, Vec<Noted<crate::scenario::Step>>) {
    let day = i64::try_from(DURATION_MAX_MS).unwrap_or(i64::MAX);
    let mut offsets: Offsets = Default::default();
    let mut steps = Vec::new();
    for server in 1..=3u8 {
        let levels = field.clocks.of(server);
        let Some(id) = ServerId::new(server) else {
            continue;
        };
        let at_start = field.clocks.offset_at(server, window.from_ms);
        let clamp = |offset: i64, notes: &mut Vec<String>| {
            if offset.abs() > day {
                notes.push(format!(
                    "#{server}'s clock was {} s off: a scenario sets at most a day",
                    offset / 1000
                ));
            }
            offset.clamp(-day, day)
        };
        if at_start.abs() >= CLOCK_OFFSET_MS_MIN {
            let mut notes = vec![format!(
                "#{server}'s clock read {} ms {} the reference at the window's start",
                at_start.abs(),
                if at_start < 0 { "behind" } else { "ahead of" }
            )];
            let offset = clamp(at_start, &mut notes);
            offsets[usize::from(server - 1)] = (offset, notes);
        }
        // The first level holds from the start (the offset above).
        let later = levels.iter().skip(1);
        for level in later.filter(|l| l.from_ms > window.from_ms && window.holds(l.from_ms)) {
            let mut notes = vec![format!(
                "#{server}'s clock stepped to {} ms from the reference (estimated within {} ms) by {}",
                level.offset_ms,
                level.rtt_ms / 2 + 1,
                rfc3339(level.from_ms)
            )];
            let offset = clamp(level.offset_ms, &mut notes);
            steps.push(Noted {
                notes,
                item: crate::scenario::Step {
                    at: Duration::from_millis(window.sim_ms(level.from_ms)),
                    line: 0,
                    action: Action::Server {
                        fault: crate::faults::Fault::Clock(id, offset, 0),
                        lasting: None,
                    },
                    expect: crate::scenario::Expect::default(),
                },
            });
        }
    }
    (offsets, steps)
}

/// The simulated times around which the replay's timing may differ: role changes and
/// the start and end of every fault, and a warm window's start.
fn quiet(
    window: &Window,
    periods: &[roles::Period],
    steps: &[Noted<crate::scenario::Step>],
    timing: &hal_core::timing::Timing,
) -> Quiet {
    let mut busy: Vec<u64> = periods
        .iter()
        .filter(|p| window.holds(p.from_ms))
        .map(|p| window.sim_ms(p.from_ms))
        .collect();
    for step in steps {
        if let Action::Server { lasting, .. } = &step.item.action {
            busy.push(ms(step.item.at));
            if let Some(lasting) = lasting {
                busy.push(ms(step.item.at + *lasting));
            }
        }
    }
    if !window.cold() {
        busy.extend([0, window.lead_ms]);
    }
    // The first election of a cold start.
    busy.push(0);
    busy.sort_unstable();
    busy.dedup();
    Quiet {
        margin_ms: ms(timing.election_timeout + timing.failover_delay) + 1_000,
        busy_ms: busy,
    }
}

/// A check of the active server in the middle of each stable stretch long enough, with
/// the seats in use when no seat changed nearby and the journals know every seat.
fn checks(
    field: &Field,
    window: &Window,
    periods: &[roles::Period],
    quiet: &Quiet,
    timing: &hal_core::timing::Timing,
) -> Vec<Noted<Check>> {
    let seats = clients::seats(field);
    let seats_known = seats_known(field);
    let heartbeat = ms(timing.client_heartbeat);
    // When the replay's seats may change: at the field's grants and releases, and up to a
    // heartbeat before an expiry (its client's last heartbeat is not the field's).
    let seat_spans: Vec<(u64, u64)> = seats
        .values()
        .filter(|s| window.holds(s.t_ms))
        .map(|s| {
            let t = window.sim_ms(s.t_ms);
            match s.record.change {
                SeatChangeName::Expired => (t.saturating_sub(heartbeat), t),
                _ => (t, t),
            }
        })
        .collect();
    let mut seat_spans = seat_spans;
    seat_spans.sort_unstable();
    let mut checks = Vec::new();
    for period in periods {
        let from = period.from_ms.max(window.from_ms);
        let to = period.to_ms.min(window.to_ms);
        if to <= from {
            continue;
        }
        let Some(zone) = quiet.zone(window.sim_ms(from), window.sim_ms(to)) else {
            continue;
        };
        let (at, seats_far) = farthest(zone, &seat_spans);
        let active = match period.active {
            Some(s) => ServerId::new(s).map(Some),
            None => Some(None),
        };
        let Some(active) = active else {
            continue;
        };
        let who = period
            .active
            .map_or("no server".into(), |s| format!("#{s}"));
        let mut notes = vec![format!(
            "field: {who} active from {} to {}{}",
            rfc3339(period.from_ms),
            if period.to_ms == u64::MAX {
                "the end".into()
            } else {
                rfc3339(period.to_ms)
            },
            if period.active.is_some() {
                format!(" (term {})", period.term)
            } else {
                String::new()
            }
        )];
        let true_at = window.from_ms + at.saturating_sub(window.lead_ms);
        let mut in_use = BTreeMap::new();
        if seats_known && seats_far >= SEAT_MARGIN_MS {
            for seat in seats.values().filter(|s| s.t_ms <= true_at) {
                let count: &mut i64 = in_use.entry(seat.record.feature.clone()).or_insert(0);
                *count += match seat.record.change {
                    SeatChangeName::Granted | SeatChangeName::Borrowed => 1,
                    _ => -1,
                };
            }
            let used: Vec<String> = in_use.iter().map(|(f, n)| format!("{f} {n}")).collect();
            if !used.is_empty() {
                notes.push(format!("seats in use then: {}", used.join(", ")));
            }
        }
        let in_use = in_use
            .into_iter()
            .filter_map(|(f, n)| Some((f, u32::try_from(n).ok()?)))
            .collect();
        checks.push(Noted {
            notes,
            item: Check {
                at: Duration::from_millis(at),
                line: 0,
                active: Some(active),
                in_use,
                holds: BTreeMap::new(),
            },
        });
    }
    checks
}

/// Whether the journals know every seat: each server's journal begins with the start of
/// an empty server (a new triad), so no seat predates them.
fn seats_known(field: &Field) -> bool {
    field.lives.values().all(|lives| {
        lives.first().is_some_and(|l| {
            l.start
                .as_ref()
                .is_some_and(|(_, _, r)| r.last_index == 0 && r.snapshot_index.is_none())
        })
    })
}

/// What the journals say that the replay does not show: dropped records, and seats
/// recovered from disk that the journals never saw granted.
fn field_notes(field: &Field, window: &Window) -> Vec<String> {
    let mut notes = Vec::new();
    for event in &field.events {
        if let Record::Dropped(dropped) = &event.record
            && window.holds(event.t_ms)
        {
            notes.push(format!(
                "#{} dropped {} journal records before {} ({}): the replay may miss what they said",
                dropped.server,
                dropped.records,
                rfc3339(event.t_ms),
                clean(&dropped.reason)
            ));
        }
    }
    if !seats_known(field) {
        notes.push("the journals begin with servers that had a log already: seats granted before them are not known, and the replay starts without them".into());
    }
    for server in 1..=3u8 {
        if !field.metas.contains_key(&server) {
            notes.push(format!(
                "no journal of #{server}: its own view (its links, crashes and clock) is not known"
            ));
        } else if !field.clocks.measured(server) && field.metas.len() > 1 {
            if let Reference::Server(r) = field.clocks.reference
                && r == server
            {
                continue;
            }
            notes.push(format!(
                "#{server}'s clock was never measured against the reference: its times are taken as they are"
            ));
        }
    }
    notes
}

/// The file's header comment.
fn header(field: &Field, window: &Window, actives: &[u8]) -> Vec<String> {
    let mut lines = vec!["Written by `hal-sim import` from the journals of:".to_string()];
    for (server, source) in &field.sources {
        lines.push(format!("  #{server}: {}", source.display()));
    }
    let reference = match field.clocks.reference {
        Reference::Server(s) => format!("#{s}'s clock"),
        Reference::Majority { odd } => {
            format!("the clock of the two servers other than #{odd}, which agree")
        }
    };
    lines.push(format!(
        "The window: {} to {}, on {reference}.",
        rfc3339(window.from_ms),
        rfc3339(window.to_ms)
    ));
    if window.cold() {
        lines.push("Simulated 0 s is the window's start, when the servers started.".into());
    } else {
        lines.push(format!(
            "The triad ran when the window opens: a lead-in of {} starts the simulated triad in the field's state (servers down, links cut, seats held), and the window starts at {}.",
            secs(window.lead_ms),
            secs(window.lead_ms)
        ));
    }
    lines.push(format!(
        "The field's active servers, in order: {}. A run replays them: `hal-sim run FILE --history run.jsonl`, or `hal-sim import --verify`.",
        roles::show(actives)
    ));
    lines
}

/// The story: what the journals show, in a few lines.
fn story(
    field: &Field,
    window: &Window,
    actives: &[u8],
    steps: &[Noted<crate::scenario::Step>],
) -> String {
    let servers: Vec<String> = field.servers().map(|s| format!("#{s}")).collect();
    let mut story = format!(
        "Imported from the journals of {} from {} to {}.\nActive servers, in order: {}.\n",
        servers.join(", "),
        rfc3339(window.from_ms),
        rfc3339(window.to_ms),
        roles::show(actives)
    );
    let faults: Vec<&Noted<crate::scenario::Step>> = steps
        .iter()
        .filter(|s| matches!(s.item.action, Action::Server { .. }))
        .collect();
    const SHOWN_MAX: usize = 20;
    for step in faults.iter().take(SHOWN_MAX) {
        if let Some(first) = step.notes.first() {
            story.push_str(&format!("At {}: {first}.\n", secs(ms(step.item.at))));
        }
    }
    if faults.len() > SHOWN_MAX {
        story.push_str(&format!(
            "... and {} more faults.\n",
            faults.len() - SHOWN_MAX
        ));
    }
    story
}

#[cfg(test)]
mod tests;
