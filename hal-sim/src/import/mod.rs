//! `hal-sim import`: a scenario file that replays a field incident, written from the
//! servers' journals (DESIGN §10) and the license they served.
//!
//! The journals are read as one incident on one clock ([`field`],
//! [`hal_net::journal::clocks`]): server #1's, or the majority's when #1's was the odd one. From it come the scenario's
//! `[timing]` ([`timing`]), each server's clock offset and clock steps, the servers'
//! crashes and restarts ([`servers`]), the links' cuts, one-way cuts and slow spells
//! ([`links`]), the clients and their requests ([`clients`]), and who was active when
//! ([`roles`]) as `[[checks]]` ([`checks`]). Times are simulated times from the window's start
//! ([`window`]); every step says in comments what the field's journals showed.
//!
//! Expectations are written only where the simulator can be expected to reproduce the
//! field: the active server in stretches well away from any change, grants and denials
//! away from role changes and faults ([`checks::Quiet`]). The generated text is loaded by the
//! scenario loader before it is handed back, so a file the importer writes always loads.
//!
//! What it does not do: drift (a drifting clock is a staircase of steps), HostIDs (the
//! journals do not carry them), the servers' triad lists (taken to agree), seats granted
//! before the journals began, client license paths (each client asks #1 first).

mod checks;
pub mod cli;
mod clients;
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

use hal_core::license::{Feature, License, ServeMode};
use hal_core::record::Record;
use hal_core::{HostId, ServerId};
use hal_net::journal::read::{ReadError, ServerJournal};

use crate::scenario::Action;
use crate::world::EPOCH_MS;
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
pub(crate) const DURATION_MAX_MS: u64 = 24 * 60 * 60 * 1000;
/// The simulated run goes on this long after the window's end, for answers in flight.
const TAIL_MS: u64 = 2_000;

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
    let (offsets, clock_steps) = servers::clocks(&field, &window);
    steps.extend(clock_steps);
    let quiet = checks::quiet(&window, &periods, &steps, &timers.timing);
    let in_force = in_force(license, &window);
    let features: BTreeSet<String> = license
        .license
        .features
        .iter()
        .map(|f| f.name.as_str().to_string())
        .collect();
    let per_feature = |value: fn(&Feature) -> Option<u32>| -> BTreeMap<String, u32> {
        license
            .license
            .features
            .iter()
            .filter_map(|f| Some((f.name.as_str().to_string(), value(f)?)))
            .collect()
    };
    let borrow_max = per_feature(|f| f.borrow_hours_max);
    let counts = per_feature(|f| f.count);
    let clients = clients::infer(
        &field,
        &clients::Context {
            window: &window,
            timing: &timers.timing,
            quiet: &quiet,
            features: &features,
            in_force: &in_force,
            borrow_max: &borrow_max,
            counts: &counts,
        },
    )?;
    steps.extend(clients.steps);
    // Stable: at one time, servers' faults, then links, clocks and clients.
    steps.sort_by_key(|s| s.item.at);
    let checks = checks::checks(&field, &window, &periods, &quiet, &timers.timing);
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
        header: render::header(&field, &window, &field_actives),
        name: format!(
            "Incident of {} UTC (imported from the journals)",
            rfc3339(window.from_ms)
                .get(..16)
                .unwrap_or("")
                .replace('T', " ")
        ),
        story: render::story(&field, &window, &field_actives, &steps),
        duration_ms,
        license: license.clone(),
        timers,
        network: links
            .network
            .unwrap_or((render::LAN_LATENCY, Duration::ZERO)),
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

pub(crate) fn ms(d: Duration) -> u64 {
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
    if !checks::seats_known(field) {
        notes.push("the journals begin with servers that had a log already: seats granted before them are not known, and the replay starts without them".into());
    }
    for server in 1..=3u8 {
        if !field.metas.contains_key(&server) {
            notes.push(format!(
                "no journal of #{server}: its own view (its links, crashes and clock) is not known"
            ));
        } else if !field.clocks.measured(server)
            && !field.clocks.is_reference(server)
            && field.metas.len() > 1
        {
            notes.push(format!(
                "#{server}'s clock was never measured against the reference: its times are taken as they are"
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests;
