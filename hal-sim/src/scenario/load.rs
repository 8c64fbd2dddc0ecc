//! Reading a scenario file with hal-net's TOML reader ([`hal_net::toml_doc`], the one the
//! server's config file uses), so that every message names the file, the line and
//! column, and the key, and a misspelt key or verb gets the nearest valid one suggested.
//! A file is read to its end: every mistake in it is reported at once (one per key, step,
//! client or check), not only the first.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use hal_core::HostId;
use hal_core::ServerId;
use hal_core::license::{License, ServeMode, parse as parse_license};
use hal_core::protocol::Denial;
use hal_net::config::{TimingProfile, timing_keys, timing_section};
use hal_net::toml_doc::{self, Location, Problem, Value, hint};
use toml::de::{DeTable, DeValue};

use super::verbs::{Actor, StepKeys, VERBS, Verb, is_expectation};
use super::{
    Action, Answer, Check, ClientAct, ClientGroup, Expect, LivenessFrom, Scenario, ServerSpec,
    Step, Window,
};
use crate::faults::servers;

/// The largest scenario file read.
const FILE_BYTES_MAX: u64 = 1024 * 1024;
/// The most bytes read from a license file named by `license.path`: the license parser's
/// own limit.
const LICENSE_BYTES_MAX: u64 = hal_core::license::limits::FILE_BYTES_MAX as u64;
/// The longest simulated run a scenario may ask for.
const DURATION_MAX: Duration = Duration::from_secs(24 * 60 * 60);
/// The most clients in one scenario.
const CLIENTS_MAX: u32 = 1_000;

const TOP_KEYS: &[&str] = &[
    "name",
    "story",
    "seed",
    "duration",
    "liveness_from",
    "audit",
    "aim_crashes",
    "license",
    "timing",
    "network",
    "servers",
    "clients",
    "steps",
    "checks",
];
const LICENSE_KEYS: &[&str] = &["text", "path", "vendor_key"];
const NETWORK_KEYS: &[&str] = &["latency", "jitter"];
const SERVER_KEYS: &[&str] = &[
    "hostid",
    "clock_offset",
    "clock_drift_ppm",
    "triad",
    "sync_time",
    "log_entries_max",
];
/// The range of `log_entries_max`: a few entries (a snapshot every few requests) to a
/// million.
const LOG_ENTRIES: (i64, i64) = (4, 1_000_000);
const CLIENT_KEYS: &[&str] = &["name", "count", "path"];
/// The keys of a check at an instant.
const INSTANT_KEYS: &[&str] = &["at", "active", "in_use", "holds", "holders"];
/// The keys of a check over a window.
const WINDOW_KEYS: &[&str] = &[
    "from",
    "until",
    "active_max",
    "active_changes_max",
    "client",
    "denied_only",
    "answered_within",
];
/// The most of anything a window check counts (servers active, changes).
const WINDOW_COUNT_MAX: i64 = 1_000;
/// Keys of a step besides its verb.
const STEP_COMMON: &[&str] = &["at", "client"];
/// The largest `attempts_max` that means anything (a request is given up long before).
const ATTEMPTS_MAX: i64 = 1_000;

/// Every key a step may have, for suggestions.
fn step_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = STEP_COMMON.to_vec();
    keys.extend(VERBS.iter().map(|v| v.name));
    for verb in VERBS {
        for key in verb.params.iter().chain(verb.expectations) {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file cannot be read at all.
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    /// A key or value at one place of the file.
    #[error(transparent)]
    At(#[from] Problem),
    /// The file as a whole (a missing section, a license that cannot be served).
    #[error("{source_name}: {problem}")]
    Whole {
        source_name: String,
        problem: String,
    },
}

impl ScenarioError {
    /// Where in the file, if at one place.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::At(problem) => Some(&problem.at),
            ScenarioError::File { .. } | ScenarioError::Whole { .. } => None,
        }
    }
}

/// Everything wrong with a scenario file: the problems of the file as a whole first,
/// then the others in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(Vec<ScenarioError>);

impl ScenarioErrors {
    fn new(mut errors: Vec<ScenarioError>) -> ScenarioErrors {
        assert!(!errors.is_empty(), "a refused scenario says why");
        // Stable: problems at the same place keep the order they were found in.
        errors.sort_by(|a, b| {
            let line = |e: &ScenarioError| e.location().map(|at| (at.line, at.column));
            line(a).cmp(&line(b))
        });
        ScenarioErrors(errors)
    }

    /// The problems, as described above.
    pub fn all(&self) -> &[ScenarioError] {
        &self.0
    }
}

impl From<ScenarioError> for ScenarioErrors {
    fn from(error: ScenarioError) -> ScenarioErrors {
        ScenarioErrors(vec![error])
    }
}

/// One problem a line.
impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// Reads and checks the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let name = path.display().to_string();
    let bytes = read_capped(path, FILE_BYTES_MAX, "a scenario file").map_err(|problem| {
        ScenarioError::File {
            path: name.clone(),
            problem,
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        ScenarioError::At(Problem {
            at: Location::at_byte(&name, &text, at),
            key: "file".into(),
            problem: "not UTF-8 text".into(),
        })
    })?;
    parse(&name, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Reads the file at `path`, or says why not: it cannot be opened or read, or it holds
/// more than `max` bytes (`what` names the kind of file). Reads at most one byte past
/// `max`, so a huge file, a growing one or a device such as `/dev/zero` costs no more.
fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(format!("more than {max} bytes; {what} is at most {max}"));
    }
    Ok(bytes)
}

/// Reads scenario `text`, named `source_name` in messages; a license `path` is read
/// relative to `base_dir`. Every problem of the file is reported.
pub fn parse(source_name: &str, text: &str, base_dir: &Path) -> Result<Scenario, ScenarioErrors> {
    let doc = Doc::new(source_name, text);
    let root = doc.toml.parse().map_err(ScenarioError::from)?;
    let root = root.get_ref();
    let read = doc.read(root, base_dir);
    let errors = doc.errors.into_inner();
    match read {
        Some(scenario) if errors.is_empty() => Ok(scenario),
        _ => Err(ScenarioErrors::new(errors)),
    }
}

impl Doc<'_> {
    /// The scenario of `root`, if every part of it reads; what does not is in
    /// `self.errors`, and the rest is read all the same, for its own problems.
    fn read(&self, root: &DeTable<'_>, base_dir: &Path) -> Option<Scenario> {
        self.keep(self.check_keys(root, TOP_KEYS, "at the top level"));
        let name = self.keep(self.required_string(
            root,
            "name",
            "the incident's title, e.g. name = \"Primary crash during the busy hour\"",
        ));
        let story = self.keep(self.required_string(
            root,
            "story",
            "the incident as the customer told it, in a few sentences",
        ));
        let seed = self.keep(self.seed(root));
        let license = self.keep(self.license(root, base_dir));
        let timing = self.keep(self.timing(root));
        let network = self.keep(self.network(root));
        let servers = self.keep(self.servers(root));
        let clients = self.clients(root);
        let steps = self.steps(root, &clients);
        let checks = self.checks(root, &clients);
        let liveness = self.keep(self.liveness(root));
        let audit = self.keep(
            root.get("audit")
                .map(|value| self.duration("audit", value))
                .transpose(),
        );
        let aim_crashes = self.keep(
            root.get("aim_crashes")
                .map(|value| self.boolean("aim_crashes", value))
                .transpose(),
        );
        let needed = steps
            .iter()
            .map(step_end)
            .chain(checks.iter().map(Check::judged_at))
            .chain(audit.flatten())
            .max()
            .unwrap_or_default();
        let duration = self.keep(self.duration_of_run(root, needed));
        if let Some((license, _)) = &license {
            self.features_known(license, &steps, &checks);
        }
        let (license, license_text) = license?;
        let (profile, timing, timing_overrides) = timing?;
        let (latency, jitter) = network?;
        let (duration, duration_given) = duration?;
        let scenario = Scenario {
            source_name: self.toml.source_name.to_string(),
            name: name?,
            story: story?,
            seed: seed?,
            license,
            license_text,
            profile,
            timing,
            timing_overrides,
            latency,
            jitter,
            servers: servers?,
            clients,
            steps,
            checks,
            duration,
            duration_given,
            liveness: liveness?,
            audit: audit?,
            aim_crashes: aim_crashes?.unwrap_or(false),
            warnings: self.timing_warnings(root, &timing),
        };
        Some(scenario)
    }

    /// A `client_lease` shorter than the time a client keeps retrying one request: a
    /// client cut off from the servers is told its seat is lost before it gives up a
    /// request, which surprises whoever wrote the expectations.
    fn timing_warnings(
        &self,
        root: &DeTable<'_>,
        timing: &hal_core::timing::Timing,
    ) -> Vec<String> {
        let give_up = timing.client_give_up_after();
        if timing.client_lease >= give_up {
            return Vec::new();
        }
        let span = root
            .get("timing")
            .and_then(|t| t.get_ref().as_table())
            .and_then(|t| t.get("client_lease"))
            .or(root.get("timing"))
            .map_or(0..0, |v| v.span());
        let at = self.toml.location(span);
        vec![format!(
            "{at}: timing.client_lease: {} is shorter than the {} a client keeps retrying one request before it gives up (4 × (election_timeout + failover_delay)): a client cut off from the servers is told its seat is lost before it is told a request's outcome is unknown",
            humantime::format_duration(timing.client_lease),
            humantime::format_duration(give_up),
        )]
    }

    fn seed(&self, root: &DeTable<'_>) -> Result<Option<u64>, ScenarioError> {
        let Some(value) = root.get("seed") else {
            return Ok(None);
        };
        let seed = self.integer("seed", value)?;
        u64::try_from(seed)
            .map(Some)
            .map_err(|_| self.at(value.span(), "seed", "a seed is a whole number from 0 up"))
    }

    fn liveness(&self, root: &DeTable<'_>) -> Result<LivenessFrom, ScenarioError> {
        Ok(match root.get("liveness_from") {
            None => LivenessFrom::Auto,
            Some(value) if value.get_ref().as_str() == Some("never") => LivenessFrom::Never,
            Some(value) => LivenessFrom::At(self.duration("liveness_from", value)?),
        })
    }

    /// How long the run lasts (`duration`, or what the timeline `needed` and a little
    /// more), and whether the file said.
    fn duration_of_run(
        &self,
        root: &DeTable<'_>,
        needed: Duration,
    ) -> Result<(Duration, bool), ScenarioError> {
        let (duration, given) = match root.get("duration") {
            None => (needed + Duration::from_secs(5), false),
            Some(value) => {
                let duration = self.duration("duration", value)?;
                if duration < needed {
                    let problem = format!(
                        "{} ends the run before the timeline does (its last step or check needs {})",
                        humantime::format_duration(duration),
                        humantime::format_duration(needed)
                    );
                    return Err(self.at(value.span(), "duration", problem));
                }
                (duration, true)
            }
        };
        if duration > DURATION_MAX {
            return Err(self.whole(format!(
                "the run would last {}; a scenario lasts at most a day of simulated time",
                humantime::format_duration(duration)
            )));
        }
        Ok((duration, given))
    }
}

/// When everything a step starts is over (its faults healed, its client's action done);
/// at least a moment after it starts, so that a run never ends on a step.
fn step_end(step: &Step) -> Duration {
    let lasting = match &step.action {
        Action::Server { lasting, .. } => lasting.unwrap_or_default(),
        Action::Flap { lasting, .. } => *lasting,
        Action::Client { act, .. } => match act {
            ClientAct::Busy { until, .. } | ClientAct::Work { until, .. } => {
                until.saturating_sub(step.at)
            }
            ClientAct::Freeze(d) => *d,
            ClientAct::Disconnect { lasting, .. } => *lasting,
            _ => Duration::ZERO,
        },
        // The impostor waits this long for an answer before the step is judged.
        Action::Impostor { .. } => crate::impostor::PATIENCE,
        // The operator asks again until the active server answers.
        Action::Remove { .. } | Action::SetCount { .. } | Action::PushOptions { .. } => {
            super::run::REMOVE_PATIENCE
        }
    };
    step.at
        + lasting
            .max(step.expect.within.unwrap_or_default())
            .max(Duration::from_millis(1))
}

/// `[timing]`: the profile, the timers, and the overrides the file made.
type TimingSection = (
    TimingProfile,
    hal_core::timing::Timing,
    Vec<(String, Duration)>,
);

/// The text being read, and what is wrong with it so far.
pub(super) struct Doc<'a> {
    toml: toml_doc::Doc<'a>,
    errors: RefCell<Vec<ScenarioError>>,
    /// The names of clients whose entry has a mistake: steps naming them are read as if
    /// the entry were right, so that one mistake gives one message.
    broken_clients: RefCell<BTreeSet<String>>,
}

impl<'a> Doc<'a> {
    fn new(source_name: &'a str, text: &'a str) -> Doc<'a> {
        Doc {
            toml: toml_doc::Doc::new(source_name, text),
            errors: RefCell::new(Vec::new()),
            broken_clients: RefCell::new(BTreeSet::new()),
        }
    }
}

impl Doc<'_> {
    /// The value, or `None` with the error kept for the report.
    fn keep<T>(&self, result: Result<T, ScenarioError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.borrow_mut().push(error);
                None
            }
        }
    }

    pub(super) fn at(
        &self,
        span: Range<usize>,
        key: &str,
        problem: impl Into<String>,
    ) -> ScenarioError {
        self.toml.problem(span, key, problem).into()
    }

    fn whole(&self, problem: impl Into<String>) -> ScenarioError {
        ScenarioError::Whole {
            source_name: self.toml.source_name.to_string(),
            problem: problem.into(),
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        self.toml.line(span)
    }

    /// Reports every key of `table` that is not `allowed`, with the nearest allowed key
    /// suggested: the first (in file order) as the error, the others kept. The caller
    /// stops reading the table at an unknown key, so that a misspelt key gives one
    /// message, not one more for each thing the misspelling left out.
    fn check_keys(
        &self,
        table: &DeTable<'_>,
        allowed: &[&str],
        place: &str,
    ) -> Result<(), ScenarioError> {
        let mut unknown = self
            .toml
            .unknown_keys(table, allowed)
            .into_iter()
            .map(|unknown| {
                let mut problem = format!("unknown key {place}; {}", unknown.hint);
                if place != "at the top level" && TOP_KEYS.contains(&unknown.key.as_str()) {
                    problem.push_str(&format!(
                        " ('{}' is a top-level key: top-level keys go before the first [table])",
                        unknown.key
                    ));
                }
                ScenarioError::At(Problem {
                    at: unknown.at,
                    key: unknown.key,
                    problem,
                })
            });
        let Some(first) = unknown.next() else {
            return Ok(());
        };
        for other in unknown {
            self.keep::<()>(Err(other));
        }
        Err(first)
    }

    pub(super) fn string<'v>(
        &self,
        key: &str,
        value: &'v Value<'_>,
        expected: &str,
    ) -> Result<&'v str, ScenarioError> {
        Ok(self.toml.string(key, value, expected)?)
    }

    fn required_string(
        &self,
        table: &DeTable<'_>,
        key: &str,
        what: &str,
    ) -> Result<String, ScenarioError> {
        let value = table
            .get(key)
            .ok_or_else(|| self.whole(format!("missing key '{key}': {what}")))?;
        Ok(self.toml.nonblank(key, value, what)?)
    }

    pub(super) fn integer(&self, key: &str, value: &Value<'_>) -> Result<i64, ScenarioError> {
        Ok(self.toml.integer(key, value)?)
    }

    pub(super) fn boolean(&self, key: &str, value: &Value<'_>) -> Result<bool, ScenarioError> {
        Ok(self.toml.boolean(key, value)?)
    }

    pub(super) fn duration(&self, key: &str, value: &Value<'_>) -> Result<Duration, ScenarioError> {
        Ok(self.toml.duration(key, value, DURATION_MAX, "a day")?)
    }

    /// A duration that may start with `-` (a clock behind true time), in ms.
    pub(super) fn signed_ms(&self, key: &str, value: &Value<'_>) -> Result<i64, ScenarioError> {
        let text = self.string(
            key,
            value,
            "a duration in quotes such as \"-3s\" or \"250ms\"",
        )?;
        let (sign, rest) = match text.trim().strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.trim().strip_prefix('+').unwrap_or(text.trim())),
        };
        let duration = humantime::parse_duration(rest).map_err(|error| {
            self.at(
                value.span(),
                key,
                format!("'{text}' is not a duration ({error}); write e.g. \"-3s\" or \"250ms\""),
            )
        })?;
        if duration > DURATION_MAX {
            return Err(self.at(value.span(), key, format!("'{text}' is more than a day")));
        }
        Ok(sign * i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
    }

    pub(super) fn server(&self, key: &str, value: &Value<'_>) -> Result<ServerId, ScenarioError> {
        let number = self.integer(key, value).map_err(|_| {
            let found = value.get_ref().type_str();
            self.at(
                value.span(),
                key,
                format!("expected a server number (1, 2 or 3), found {found}"),
            )
        })?;
        u8::try_from(number)
            .ok()
            .and_then(ServerId::new)
            .ok_or_else(|| {
                self.at(
                    value.span(),
                    key,
                    format!("{number} is not a server; the servers are 1, 2 and 3"),
                )
            })
    }

    pub(super) fn servers_list(
        &self,
        key: &str,
        value: &Value<'_>,
        example: &str,
    ) -> Result<Vec<ServerId>, ScenarioError> {
        let DeValue::Array(items) = value.get_ref() else {
            let found = value.get_ref().type_str();
            return Err(self.at(
                value.span(),
                key,
                format!("expected a list of servers such as {example}, found {found}"),
            ));
        };
        let mut ids = Vec::new();
        for item in items.iter() {
            let id = self.server(key, item)?;
            if ids.contains(&id) {
                return Err(self.at(
                    item.span(),
                    key,
                    format!("server {} is listed twice", id.get()),
                ));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    pub(super) fn pair(
        &self,
        key: &str,
        value: &Value<'_>,
    ) -> Result<(ServerId, ServerId), ScenarioError> {
        let ids = self.servers_list(key, value, "[1, 2]")?;
        match ids[..] {
            [a, b] => Ok((a, b)),
            _ => Err(self.at(
                value.span(),
                key,
                format!("expected two servers such as [1, 2], found {}", ids.len()),
            )),
        }
    }

    fn table<'v, 'i>(
        &self,
        key: &str,
        value: &'v Value<'i>,
        example: &str,
    ) -> Result<&'v DeTable<'i>, ScenarioError> {
        Ok(self.toml.table(key, value, example)?)
    }

    /// The tables of an array of tables (`[[steps]]`, or `steps = [{...}, ...]`); none,
    /// with the error kept, if it is not one.
    fn tables<'v, 'i>(
        &self,
        root: &'v DeTable<'i>,
        key: &str,
    ) -> Vec<(&'v DeTable<'i>, Range<usize>)> {
        self.keep(self.toml.tables(root, key).map_err(ScenarioError::from))
            .unwrap_or_default()
    }

    fn license(
        &self,
        root: &DeTable<'_>,
        base_dir: &Path,
    ) -> Result<(hal_core::license::License, String), ScenarioError> {
        let value = root.get("license").ok_or_else(|| {
            self.whole("missing [license]: the license the servers serve, as text = \"\"\"...\"\"\" or path = \"file.lic\"")
        })?;
        let table = self.table("license", value, "[license] with text or path")?;
        self.check_keys(table, LICENSE_KEYS, "in [license]")?;
        let (text, source_name, pad) = match (table.get("text"), table.get("path")) {
            (Some(_), Some(path)) => {
                return Err(self.at(
                    path.span(),
                    "license.path",
                    "give the license as text or as a path, not both",
                ));
            }
            (None, None) => {
                return Err(self.at(
                    value.span(),
                    "license",
                    "needs text = \"\"\"...\"\"\" (the license inline) or path = \"file.lic\"",
                ));
            }
            (Some(text), None) => {
                let body =
                    self.string("license.text", text, "the license text, in triple quotes")?;
                // Pad with the lines before it, so that the parser's line numbers are the
                // scenario file's.
                let opening = &self.toml.text[text.span().start..];
                let mut line = self.line(text.span());
                if opening.starts_with("\"\"\"\n")
                    || opening.starts_with("'''\n")
                    || opening.starts_with("\"\"\"\r\n")
                    || opening.starts_with("'''\r\n")
                {
                    line += 1;
                }
                (
                    body.to_string(),
                    self.toml.source_name.to_string(),
                    line - 1,
                )
            }
            (None, Some(path)) => {
                let name = self.string("license.path", path, "a path in quotes")?;
                let full = base_dir.join(name);
                let at_path = |problem: String| {
                    self.at(
                        path.span(),
                        "license.path",
                        format!("{}: {problem}", full.display()),
                    )
                };
                let bytes =
                    read_capped(&full, LICENSE_BYTES_MAX, "a license file").map_err(at_path)?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    at_path(format!(
                        "not UTF-8 text (byte {})",
                        e.utf8_error().valid_up_to()
                    ))
                })?;
                (text, full.display().to_string(), 0)
            }
        };
        let padded = format!("{}{text}", "\n".repeat(pad));
        let license = parse_license(&source_name, padded.as_bytes())
            .map_err(|errors| self.whole(format!("the license is not valid:\n{errors}")))?;
        match license.serve_mode() {
            Ok(ServeMode::Hal) => {}
            Ok(ServeMode::Single) => {
                return Err(self.whole("the license has no HAL feature (HAL_SERVERS = 3): the simulator runs a HAL triad"));
            }
            Err(error) => return Err(self.whole(format!("the license cannot be served: {error}"))),
        }
        if let Some(key_path) = table.get("vendor_key") {
            let name = self.string("license.vendor_key", key_path, "a path in quotes")?;
            let full = base_dir.join(name);
            let key = hal_net::keys::read_verifying_key(&full)
                .map_err(|e| self.at(key_path.span(), "license.vendor_key", e.to_string()))?;
            for (feature, verdict) in license.verify(&key) {
                if let Err(why) = verdict {
                    return Err(self.whole(format!(
                        "{source_name}:{}: FEATURE {}: {why} (leave out vendor_key to run unsigned licenses)",
                        feature.origin.line, feature.name
                    )));
                }
            }
        }
        Ok((license, text))
    }

    fn timing(&self, root: &DeTable<'_>) -> Result<TimingSection, ScenarioError> {
        let Some(value) = root.get("timing") else {
            return Ok((TimingProfile::Lan, TimingProfile::Lan.timing(), Vec::new()));
        };
        let table = self.table("timing", value, "[timing]")?;
        self.check_keys(table, &timing_keys(), "in [timing]")?;
        let section = timing_section(&self.toml, value, table)?;
        Ok((section.profile, section.timing, section.overrides))
    }

    fn network(&self, root: &DeTable<'_>) -> Result<(Duration, Duration), ScenarioError> {
        let mut latency = Duration::from_micros(200);
        let mut jitter = Duration::from_micros(1_800);
        if let Some(value) = root.get("network") {
            let table = self.table("network", value, "[network]")?;
            self.check_keys(table, NETWORK_KEYS, "in [network]")?;
            if let Some(value) = table.get("latency") {
                latency = self.duration("network.latency", value)?;
            }
            if let Some(value) = table.get("jitter") {
                jitter = self.duration("network.jitter", value)?;
            }
            if latency + jitter > Duration::from_secs(60) {
                return Err(self.at(
                    value.span(),
                    "network",
                    "latency plus jitter over a minute: no link is that slow",
                ));
            }
        }
        Ok((latency, jitter))
    }

    fn servers(&self, root: &DeTable<'_>) -> Result<[ServerSpec; 3], ScenarioError> {
        let mut specs: [ServerSpec; 3] = Default::default();
        let Some(value) = root.get("servers") else {
            return Ok(specs);
        };
        let table = self.table("servers", value, "[servers.1], [servers.2], [servers.3]")?;
        self.check_keys(
            table,
            &["1", "2", "3"],
            "in [servers] (the servers are [servers.1], [servers.2] and [servers.3])",
        )?;
        for id in servers() {
            let Some(value) = table.get(id.get().to_string().as_str()) else {
                continue;
            };
            let place = format!("servers.{}", id.get());
            let server = self.table(&place, value, &format!("[{place}]"))?;
            self.check_keys(server, SERVER_KEYS, &format!("in [{place}]"))?;
            let spec = &mut specs[id.index()];
            if let Some(value) = server.get("hostid") {
                let key = format!("{place}.hostid");
                let text =
                    self.string(&key, value, "a HostID in quotes such as \"0a1b2c3d4e5f\"")?;
                spec.hostid = Some(
                    HostId::parse(text)
                        .map_err(|why| self.at(value.span(), &key, format!("'{text}': {why}")))?,
                );
            }
            if let Some(value) = server.get("clock_offset") {
                spec.clock_offset_ms = self.signed_ms(&format!("{place}.clock_offset"), value)?;
            }
            if let Some(value) = server.get("clock_drift_ppm") {
                let key = format!("{place}.clock_drift_ppm");
                let drift = self.integer(&key, value)?;
                if drift.abs() > 100_000 {
                    return Err(self.at(
                        value.span(),
                        &key,
                        format!("{drift} ppm is more than 10 %: no quartz drifts so far"),
                    ));
                }
                spec.clock_drift_ppm = drift;
            }
            if let Some(value) = server.get("triad") {
                spec.triad = self.triad(&format!("{place}.triad"), value)?;
            }
            if let Some(value) = server.get("log_entries_max") {
                let key = format!("{place}.log_entries_max");
                let (min, max) = LOG_ENTRIES;
                let n = self.toml.integer_in(&key, value, min, max)?;
                spec.log_entries_max = usize::try_from(n).ok();
            }
            if let Some(value) = server.get("sync_time") {
                spec.sync_time = self.duration(&format!("{place}.sync_time"), value)?;
                if spec.sync_time > Duration::from_secs(10) {
                    return Err(self.at(
                        value.span(),
                        &format!("{place}.sync_time"),
                        "a sync of more than 10 s: the disk is dead, crash the server instead",
                    ));
                }
            }
        }
        Ok(specs)
    }

    /// A triad list as a server's config has it: three `6200@serverN` entries.
    fn triad(&self, key: &str, value: &Value<'_>) -> Result<[ServerId; 3], ScenarioError> {
        let example = "[\"6200@server1\", \"6200@server2\", \"6200@server3\"]";
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.at(
                value.span(),
                key,
                format!("expected a list such as {example}"),
            ));
        };
        if items.len() != 3 {
            return Err(self.at(
                value.span(),
                key,
                format!(
                    "has {} entries; a HAL triad has 3, e.g. {example}",
                    items.len()
                ),
            ));
        }
        let mut ids = Vec::new();
        for item in items.iter() {
            let text = self.string(key, item, "an entry such as \"6200@server1\"")?;
            let id = text
                .strip_prefix("6200@server")
                .and_then(|n| n.parse::<u8>().ok())
                .and_then(ServerId::new)
                .ok_or_else(|| {
                    self.at(item.span(), key, format!("'{text}' is not a machine of the simulation: the servers run on 6200@server1, 6200@server2 and 6200@server3"))
                })?;
            if ids.contains(&id) {
                return Err(self.at(item.span(), key, format!("'{text}' is listed twice")));
            }
            ids.push(id);
        }
        Ok([ids[0], ids[1], ids[2]])
    }

    /// The `[[clients]]` groups that read; the others' errors are kept.
    fn clients(&self, root: &DeTable<'_>) -> Vec<ClientGroup> {
        let mut groups: Vec<ClientGroup> = Vec::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut total = 0u32;
        for (table, span) in self.tables(root, "clients") {
            match self.client_group(table, span, &mut names, &mut total) {
                Ok(group) => groups.push(group),
                Err(error) => {
                    if let Some(name) = table.get("name").and_then(|v| v.get_ref().as_str()) {
                        self.broken_clients.borrow_mut().insert(name.to_string());
                    }
                    self.keep::<()>(Err(error));
                }
            }
        }
        groups
    }

    /// One `[[clients]]` entry; `names` are the clients named so far, `total` how many
    /// there are.
    fn client_group(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        names: &mut BTreeSet<String>,
        total: &mut u32,
    ) -> Result<ClientGroup, ScenarioError> {
        self.check_keys(table, CLIENT_KEYS, "in [[clients]]")?;
        let line = self.line(span.clone());
        let value = table.get("name").ok_or_else(|| {
            self.at(
                span.clone(),
                "clients",
                "a [[clients]] entry needs a name, e.g. name = \"alice\"",
            )
        })?;
        let name = self.string("clients.name", value, "a name in quotes")?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.at(
                value.span(),
                "clients.name",
                format!("'{name}': a client's name is letters, digits, '_' and '-'"),
            ));
        }
        let count = match table.get("count") {
            None => None,
            Some(value) => {
                let count = self.integer("clients.count", value)?;
                Some(
                    u32::try_from(count)
                        .ok()
                        .filter(|c| (1..=CLIENTS_MAX).contains(c))
                        .ok_or_else(|| {
                            self.at(
                                value.span(),
                                "clients.count",
                                format!("{count} is not from 1 to {CLIENTS_MAX}"),
                            )
                        })?,
                )
            }
        };
        let path = match table.get("path") {
            None => servers().to_vec(),
            Some(value) => {
                let path = self.servers_list("clients.path", value, "[1, 2, 3]")?;
                if path.is_empty() {
                    return Err(self.at(
                        value.span(),
                        "clients.path",
                        "an empty license path: list the servers, e.g. [1, 2, 3]",
                    ));
                }
                path
            }
        };
        let group = ClientGroup {
            name: name.to_string(),
            count,
            path,
            line,
        };
        let mut taken = group.members();
        if group.count.is_some() {
            taken.push(group.name.clone());
        }
        for member in taken {
            if !names.insert(member.clone()) {
                return Err(self.at(
                    value.span(),
                    "clients.name",
                    format!("a client called '{member}' is already defined"),
                ));
            }
        }
        *total += count.unwrap_or(1);
        if *total > CLIENTS_MAX {
            return Err(self.at(
                span,
                "clients",
                format!("more than {CLIENTS_MAX} clients in all"),
            ));
        }
        Ok(group)
    }

    /// The steps that read, in time order; the others' errors are kept.
    fn steps(&self, root: &DeTable<'_>, clients: &[ClientGroup]) -> Vec<Step> {
        let allowed = step_keys();
        let mut steps: Vec<Step> = self
            .tables(root, "steps")
            .into_iter()
            .filter_map(|(table, span)| self.keep(self.step(table, span, &allowed, clients)))
            .collect();
        // Stable: steps at the same time keep their file order.
        steps.sort_by_key(|s| s.at);
        steps
    }

    /// One `[[steps]]` entry; `allowed` are the keys a step may have.
    fn step(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        allowed: &[&str],
        clients: &[ClientGroup],
    ) -> Result<Step, ScenarioError> {
        self.check_keys(table, allowed, "in a step")?;
        let line = self.line(span.clone());
        let at = table.get("at").ok_or_else(|| {
            self.at(
                span.clone(),
                "at",
                "a step needs at = \"<simulated time>\", e.g. at = \"10s\"",
            )
        })?;
        let at = self.duration("at", at)?;
        let found: Vec<(&Verb, &Value<'_>)> = VERBS
            .iter()
            .filter_map(|verb| table.get(verb.name).map(|value| (verb, value)))
            .collect();
        // A verb's name can be another verb's parameter (`hold` of `busy`).
        let verbs: Vec<(&Verb, &Value<'_>)> = found
            .iter()
            .filter(|(verb, _)| {
                !found
                    .iter()
                    .any(|(other, _)| other.params.contains(&verb.name))
            })
            .copied()
            .collect();
        let (verb, value) = match verbs[..] {
            [one] => one,
            [] => {
                let names: Vec<&str> = VERBS.iter().map(|v| v.name).collect();
                return Err(self.at(
                    span,
                    "steps",
                    format!("a step needs one verb: {}", names.join(", ")),
                ));
            }
            [(first, _), (second, value), ..] => {
                return Err(self.at(value.span(), second.name, format!("a step does one thing, and this one also has '{}': split it into two steps at the same time", first.name)));
            }
        };
        for key in table.keys() {
            let key_name: &str = key.get_ref();
            let fits = STEP_COMMON.contains(&key_name)
                || key_name == verb.name
                || verb.params.contains(&key_name)
                || verb.expectations.contains(&key_name);
            if !fits {
                let problem = if is_expectation(key_name) {
                    let takes = if verb.expectations.is_empty() {
                        "no expectation (use [[checks]] to check what it led to)".to_string()
                    } else {
                        format!("only {}", verb.expectations.join(", "))
                    };
                    format!("'{}' takes {takes}", verb.name)
                } else {
                    let mut takes: Vec<&str> = verb.params.to_vec();
                    takes.extend(verb.expectations);
                    let list = if takes.is_empty() {
                        "nothing else".to_string()
                    } else {
                        takes.join(", ")
                    };
                    format!(
                        "'{}' does not take '{key_name}'; it takes {list}",
                        verb.name
                    )
                };
                return Err(self.at(key.span(), key_name, problem));
            }
        }
        let who = match (verb.actor, table.get("client")) {
            (Actor::Client, None) => {
                return Err(self.at(
                    value.span(),
                    verb.name,
                    format!(
                        "'{}' is a client's action: say whose, e.g. client = \"alice\"",
                        verb.name
                    ),
                ));
            }
            (Actor::Client, Some(client)) => Some(self.client_name(client, clients, verb.name)?),
            (actor, Some(client)) => {
                let what = match actor {
                    Actor::Impostor => "done by a machine of its own (the impostor)",
                    Actor::Operator => "done by the operator's machine",
                    _ => "a fault of the servers",
                };
                return Err(self.at(
                    client.span(),
                    "client",
                    format!("'{}' is {what}; it takes no client", verb.name),
                ));
            }
            (_, None) => None,
        };
        let action = (verb.read)(&StepKeys {
            doc: self,
            name: verb.name,
            value,
            table,
            who,
            at,
        })?;
        let mut expect = self.expect(table)?;
        if verb.actor == Actor::Impostor && expect.refused.is_none() {
            // What an impostor step is for: it must be refused.
            expect.refused = Some(true);
        }
        Ok(Step {
            at,
            line,
            action,
            expect,
        })
    }

    fn client_name(
        &self,
        value: &Value<'_>,
        clients: &[ClientGroup],
        verb: &str,
    ) -> Result<String, ScenarioError> {
        let name = self.string("client", value, "a client's name in quotes")?;
        let group = clients.iter().find(|g| g.name == name);
        let member = clients
            .iter()
            .find(|g| g.count.is_some() && g.members().iter().any(|m| m == name));
        match (group, member) {
            (Some(_), _) => Ok(name.to_string()),
            (None, Some(group)) if verb == "disconnect" => Err(self.at(value.span(), "client", format!(
                "'{name}' shares a machine with the other clients of '{}': a disconnect cuts the machine off, so name the group, client = \"{}\"",
                group.name, group.name
            ))),
            (None, Some(_)) => Ok(name.to_string()),
            // Its entry's mistake is reported already.
            (None, None) if self.broken_clients.borrow().contains(name) => Ok(name.to_string()),
            (None, None) => {
                let known: Vec<&str> = clients.iter().map(|g| g.name.as_str()).collect();
                let problem = if known.is_empty() {
                    format!("no client '{name}': define it first in a [[clients]] entry")
                } else {
                    format!("no client '{name}'; {}", hint(name, &known))
                };
                Err(self.at(value.span(), "client", problem))
            }
        }
    }

    fn expect(&self, table: &DeTable<'_>) -> Result<Expect, ScenarioError> {
        let mut expect = Expect::default();
        if let Some(value) = table.get("granted_by") {
            let by = if value.get_ref().as_str() == Some("any") {
                None
            } else {
                let id = self.server("granted_by", value)?;
                if id == ServerId::TIEBREAKER {
                    return Err(self.at(
                        value.span(),
                        "granted_by",
                        "#3 never grants (DESIGN §2): expect 1, 2 or \"any\"",
                    ));
                }
                Some(id)
            };
            expect.answer = Some(Answer::Granted(by));
        }
        if let Some(value) = table.get("denied") {
            if expect.answer.is_some() {
                return Err(self.at(
                    value.span(),
                    "denied",
                    "a request is granted or denied, not both",
                ));
            }
            let reason = self.string(
                "denied",
                value,
                "a reason in quotes, e.g. \"borrow_unavailable\", or \"any\"",
            )?;
            let reason = if reason == "any" {
                None
            } else {
                let known = Denial::NAMES;
                if !known.contains(&reason) {
                    return Err(self.at(
                        value.span(),
                        "denied",
                        format!(
                            "'{reason}' is not a reason a server gives; {}",
                            hint(reason, known)
                        ),
                    ));
                }
                Some(reason.to_string())
            };
            expect.answer = Some(Answer::Denied(reason));
        }
        if let Some(value) = table.get("unknown") {
            if expect.answer.is_some() {
                return Err(self.at(
                    value.span(),
                    "unknown",
                    "a request is granted, denied or of unknown outcome: one of them",
                ));
            }
            if !self.boolean("unknown", value)? {
                return Err(self.at(
                    value.span(),
                    "unknown",
                    "only 'unknown = true' says something; leave it out otherwise",
                ));
            }
            expect.answer = Some(Answer::Unknown);
        }
        if let Some(value) = table.get("within") {
            expect.within = Some(self.duration("within", value)?);
        }
        if let Some(value) = table.get("attempts_max") {
            let attempts = self.integer("attempts_max", value)?;
            if !(1..=ATTEMPTS_MAX).contains(&attempts) {
                return Err(self.at(
                    value.span(),
                    "attempts_max",
                    format!("{attempts} is not a number of sends: 1 to {ATTEMPTS_MAX} (1: the first server asked answers)"),
                ));
            }
            expect.attempts_max = u32::try_from(attempts).ok();
        }
        if let Some(value) = table.get("lost") {
            expect.lost = Some(self.boolean("lost", value)?);
        }
        if let Some(value) = table.get("refused") {
            expect.refused = Some(self.boolean("refused", value)?);
        }
        if let Some(value) = table.get("removed") {
            let most = hal_core::protocol::REMOVE_HANDLES_MAX as i64;
            let removed = self.integer("removed", value)?;
            if !(0..=most).contains(&removed) {
                return Err(self.at(
                    value.span(),
                    "removed",
                    format!("{removed} is not a number of seats one removal frees: 0 to {most}"),
                ));
            }
            expect.removed = u32::try_from(removed).ok();
        }
        if let Some(value) = table.get("pushed") {
            expect.pushed = Some(self.boolean("pushed", value)?);
        }
        for key in ["unless_held", "if_held"] {
            let Some(value) = table.get(key) else {
                continue;
            };
            if !self.boolean(key, value)? {
                return Err(self.at(
                    value.span(),
                    key,
                    format!("only '{key} = true' says something; leave it out otherwise"),
                ));
            }
            match key {
                "unless_held" => expect.unless_held = true,
                _ => expect.if_held = true,
            }
        }
        if expect.within.is_some()
            && table.get("lost").is_none()
            && table.get("freeze").or(table.get("disconnect")).is_some()
        {
            let span = table.get("within").map_or(0..0, |v| v.span());
            return Err(self.at(
                span,
                "within",
                "within on a freeze or disconnect bounds lost = ...: say whether the seat is lost",
            ));
        }
        Ok(expect)
    }

    /// The checks that read, in time order; the others' errors are kept.
    fn checks(&self, root: &DeTable<'_>, clients: &[ClientGroup]) -> Vec<Check> {
        let mut checks: Vec<Check> = self
            .tables(root, "checks")
            .into_iter()
            .filter_map(|(table, span)| self.keep(self.check(table, span, clients)))
            .collect();
        checks.sort_by_key(|c| c.at);
        checks
    }

    /// One `[[checks]]` entry.
    fn check(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        clients: &[ClientGroup],
    ) -> Result<Check, ScenarioError> {
        let mut keys = INSTANT_KEYS.to_vec();
        keys.extend(WINDOW_KEYS);
        self.check_keys(table, &keys, "in a check")?;
        let line = self.line(span.clone());
        match (table.get("at"), table.get("from"), table.get("until")) {
            (Some(at), None, None) => {
                self.only_keys(table, INSTANT_KEYS, "at an instant (at)", WINDOW_KEYS)?;
                let at = self.duration("at", at)?;
                self.instant_check(table, span, line, at, clients)
            }
            (None, Some(from), Some(until)) => {
                self.only_keys(table, WINDOW_KEYS, "over a window (from, until)", INSTANT_KEYS)?;
                self.window_check(table, span, line, (from, until), clients)
            }
            (Some(_), Some(value), _) | (Some(_), _, Some(value)) => Err(self.at(
                value.span(),
                "checks",
                "a check is at an instant (at) or over a window (from and until), not both: split it in two",
            )),
            (None, Some(value), None) => Err(self.at(
                value.span(),
                "from",
                "a window needs until = \"<its end>\" too, e.g. until = \"30s\"",
            )),
            (None, None, Some(value)) => Err(self.at(
                value.span(),
                "until",
                "a window needs from = \"<its start>\" too, e.g. from = \"10s\"",
            )),
            (None, None, None) => Err(self.at(
                span,
                "at",
                "a check needs at = \"<simulated time>\", e.g. at = \"10s\", or a window: from = \"10s\" and until = \"30s\"",
            )),
        }
    }

    /// Refuses a key of `table` that belongs to the other kind of check (`others`).
    fn only_keys(
        &self,
        table: &DeTable<'_>,
        allowed: &[&str],
        kind: &str,
        others: &[&str],
    ) -> Result<(), ScenarioError> {
        let misplaced = table
            .keys()
            .filter(|k| others.contains(&k.get_ref().as_ref()))
            .min_by_key(|k| k.span().start);
        match misplaced {
            None => Ok(()),
            Some(key) => Err(self.at(
                key.span(),
                key.get_ref(),
                format!(
                    "a check {kind} takes {}; '{}' belongs to the other kind",
                    allowed.join(", "),
                    key.get_ref()
                ),
            )),
        }
    }

    /// `holders = { eng = 3 }`: how many clients of a group (or a client: 0 or 1) hold a
    /// seat.
    fn holders(
        &self,
        value: &Value<'_>,
        clients: &[ClientGroup],
    ) -> Result<BTreeMap<String, u32>, ScenarioError> {
        let table = self.table("holders", value, "holders = { eng = 3 }")?;
        let mut holders = BTreeMap::new();
        for (name, count) in table.iter() {
            let name: &str = name.get_ref();
            let key = format!("holders.{name}");
            let size = match clients.iter().find(|g| g.name == name) {
                Some(group) => group.count.unwrap_or(1),
                None if self.broken_clients.borrow().contains(name) => CLIENTS_MAX,
                None => {
                    let known: Vec<&str> = clients.iter().map(|g| g.name.as_str()).collect();
                    return Err(self.at(
                        count.span(),
                        &key,
                        format!("no client or group '{name}'; {}", hint(name, &known)),
                    ));
                }
            };
            let n = self.toml.integer_in(&key, count, 0, i64::from(size))?;
            holders.insert(name.to_string(), u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(holders)
    }

    /// A check over the window `from`..`until`.
    fn window_check(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        line: usize,
        (from, until): (&Value<'_>, &Value<'_>),
        clients: &[ClientGroup],
    ) -> Result<Check, ScenarioError> {
        let from_at = self.duration("from", from)?;
        let until_at = self.duration("until", until)?;
        if until_at <= from_at {
            return Err(self.at(until.span(), "until", "the window ends before it starts"));
        }
        let count = |key: &str| -> Result<Option<u32>, ScenarioError> {
            let Some(value) = table.get(key) else {
                return Ok(None);
            };
            let n = self.toml.integer_in(key, value, 0, WINDOW_COUNT_MAX)?;
            Ok(u32::try_from(n).ok())
        };
        let mut window = Window {
            from: from_at,
            active_max: count("active_max")?,
            active_changes_max: count("active_changes_max")?,
            ..Window::default()
        };
        if let Some(value) = table.get("client") {
            window.client = Some(self.client_name(value, clients, "checks")?);
        }
        if let Some(value) = table.get("denied_only") {
            let items = self.toml.array("denied_only", value, "[\"all_in_use\"]")?;
            let mut reasons = Vec::new();
            for item in items.iter() {
                let reason = self.string("denied_only", item, "a reason in quotes")?;
                let mut known = Denial::NAMES.to_vec();
                known.push("unknown");
                if !known.contains(&reason) {
                    return Err(self.at(
                        item.span(),
                        "denied_only",
                        format!(
                            "'{reason}' is not a reason a server gives (or \"unknown\"); {}",
                            hint(reason, &known)
                        ),
                    ));
                }
                reasons.push(reason.to_string());
            }
            window.denied_only = Some(reasons);
        }
        if let Some(value) = table.get("answered_within") {
            window.answered_within = Some(self.duration("answered_within", value)?);
        }
        let of_requests = window.denied_only.is_some() || window.answered_within.is_some();
        match (&window.client, of_requests) {
            (None, true) => {
                return Err(self.at(
                    span,
                    "client",
                    "denied_only and answered_within judge a client's requests: say whose, e.g. client = \"eng\"",
                ));
            }
            (Some(_), false) => {
                let value = table.get("client").map_or(span.clone(), |v| v.span());
                return Err(self.at(
                    value,
                    "client",
                    "a window's client is judged by denied_only or answered_within: give one",
                ));
            }
            _ => {}
        }
        if window.active_max.is_none() && window.active_changes_max.is_none() && !of_requests {
            return Err(self.at(
                span,
                "checks",
                "a window needs at least one of active_max, active_changes_max, denied_only, answered_within",
            ));
        }
        Ok(Check {
            at: until_at,
            line,
            window: Some(window),
            ..Check::default()
        })
    }

    /// A check at the instant `at`.
    fn instant_check(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        line: usize,
        at: Duration,
        clients: &[ClientGroup],
    ) -> Result<Check, ScenarioError> {
        let active = match table.get("active") {
            None => None,
            Some(value) if value.get_ref().as_str() == Some("none") => Some(None),
            Some(value) => {
                let wrong = || {
                    self.at(
                        value.span(),
                        "active",
                        "expected the active server, 1 or 2, or \"none\" (#3 is never active)",
                    )
                };
                let id = self.server("active", value).map_err(|_| wrong())?;
                if id == ServerId::TIEBREAKER {
                    return Err(wrong());
                }
                Some(Some(id))
            }
        };
        let mut in_use = BTreeMap::new();
        if let Some(value) = table.get("in_use") {
            let seats = self.table("in_use", value, "in_use = { cad = 3 }")?;
            for (feature, count) in seats.iter() {
                let key = format!("in_use.{}", feature.get_ref());
                let n = self.integer(&key, count)?;
                let n = u32::try_from(n)
                    .map_err(|_| self.at(count.span(), &key, format!("{n} seats")))?;
                in_use.insert(feature.get_ref().to_string(), n);
            }
        }
        let mut holds = BTreeMap::new();
        if let Some(value) = table.get("holds") {
            let who = self.table("holds", value, "holds = { alice = [\"cad\"], bob = [] }")?;
            for (client, seats) in who.iter() {
                let name: &str = client.get_ref();
                let known = clients
                    .iter()
                    .any(|g| g.members().iter().any(|m| m == name))
                    || self.broken_clients.borrow().contains(name);
                if !known {
                    let all: Vec<String> = clients.iter().flat_map(|g| g.members()).collect();
                    let all: Vec<&str> = all.iter().map(String::as_str).collect();
                    return Err(self.at(
                        client.span(),
                        &format!("holds.{name}"),
                        format!(
                            "no client '{name}' (a group's clients are checked one by one); {}",
                            hint(name, &all)
                        ),
                    ));
                }
                let key = format!("holds.{name}");
                let DeValue::Array(items) = seats.get_ref() else {
                    return Err(self.at(
                        seats.span(),
                        &key,
                        "expected a list of features, one per seat, e.g. [\"cad\"] or []",
                    ));
                };
                let mut features = Vec::new();
                for item in items.iter() {
                    features.push(
                        self.string(&key, item, "a feature name in quotes")?
                            .to_string(),
                    );
                }
                features.sort();
                holds.insert(name.to_string(), features);
            }
        }
        let holders = match table.get("holders") {
            None => BTreeMap::new(),
            Some(value) => self.holders(value, clients)?,
        };
        if active.is_none() && in_use.is_empty() && holds.is_empty() && holders.is_empty() {
            return Err(self.at(
                span,
                "checks",
                "a check needs at least one of active, in_use, holds, holders",
            ));
        }
        Ok(Check {
            at,
            line,
            active,
            in_use,
            holds,
            holders,
            window: None,
        })
    }

    /// Every feature a step or check names is in the license.
    /// Reports every feature a step or check names that the license lacks.
    fn features_known(&self, license: &License, steps: &[Step], checks: &[Check]) {
        let features: BTreeSet<&str> = license.features.iter().map(|f| f.name.as_str()).collect();
        let known: Vec<&str> = features.iter().copied().collect();
        let unknown = |feature: &str, line: usize| {
            self.keep::<()>(Err(ScenarioError::At(Problem {
                at: Location {
                    source_name: self.toml.source_name.to_string(),
                    line,
                    column: 1,
                },
                key: "feature".to_string(),
                problem: format!(
                    "the license has no feature '{feature}'; {}",
                    hint(feature, &known)
                ),
            })));
        };
        for step in steps {
            if let Action::SetCount { feature, .. } = &step.action
                && !features.contains(feature.as_str())
            {
                unknown(feature, step.line);
            }
            if let Action::PushOptions { text } = &step.action
                && let Ok(options) = hal_core::options::parse_in_force("options", text)
            {
                for (_, rule) in options.rules() {
                    let feature = match rule {
                        hal_core::options::Rule::Include { feature, .. }
                        | hal_core::options::Rule::Exclude { feature, .. }
                        | hal_core::options::Rule::Reserve { feature, .. }
                        | hal_core::options::Rule::Max { feature, .. }
                        | hal_core::options::Rule::MaxBorrowHours { feature, .. } => feature,
                    };
                    if !features.contains(feature.as_str()) {
                        unknown(feature, step.line);
                    }
                }
            }
            if let Action::Client { act, .. } = &step.action {
                let feature = match act {
                    ClientAct::Checkout(f)
                    | ClientAct::Wait(f, _)
                    | ClientAct::Borrow(f, _)
                    | ClientAct::Checkin(f)
                    | ClientAct::Return(f) => f,
                    ClientAct::Busy { feature, .. } | ClientAct::Work { feature, .. } => feature,
                    _ => continue,
                };
                // A request for a feature the license lacks is a scenario of its own
                // (denied unknown_feature): allowed when that is what it expects.
                let expects_unknown =
                    step.expect.answer == Some(Answer::Denied(Some("unknown_feature".into())));
                if !features.contains(feature.as_str()) && !expects_unknown {
                    unknown(feature, step.line);
                }
            }
        }
        for check in checks {
            for feature in check.in_use.keys().chain(check.holds.values().flatten()) {
                if !features.contains(feature.as_str()) {
                    unknown(feature, check.line);
                }
            }
        }
    }
}
