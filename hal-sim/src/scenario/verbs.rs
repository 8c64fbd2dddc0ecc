//! The verbs of a scenario's steps, one row each in [`VERBS`]: its name, the keys it
//! takes besides it, the expectations it allows, who does it, how it is read from a
//! `[[steps]]` table, how it is written back, and how it is run: what the driver does at
//! the step's time (a fault of the servers, a client machine cut off) and what each
//! client of the step does ([`super::run`]). A new verb is a row here and, if it does
//! something new, a variant of [`Action`]. (The impostor's steps are played by its own
//! machine, which dials the servers as a peer would.)

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hal_core::ServerId;
use rand_chacha::ChaCha8Rng;
use toml::de::{DeTable, DeValue};

use super::load::Doc;
use super::run::{Member, plan_disconnect, plan_fault, plan_flap};
use super::write::{duration, quoted, signed};
use super::{Action, ClientAct, ScenarioError, Step};
use crate::faults::{Fault, servers};
use crate::world::{Planned, SimSession};
use hal_net::toml_doc::Value;

/// Who does a step: the faults of the servers, the impostor and the operator take no
/// `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Actor {
    Servers,
    Client,
    Impostor,
    /// The operator's machine (administrative verbs, with the admin certificate).
    Operator,
}

/// A verb's row.
pub(super) struct Verb {
    pub name: &'static str,
    /// The other keys it takes.
    pub params: &'static [&'static str],
    pub expectations: &'static [&'static str],
    pub actor: Actor,
    /// Reads the step's action.
    pub read: fn(&StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError>,
    /// The verb (given its name) and its keys, one a line, if `action` is this verb's.
    pub write: fn(&'static str, &Action) -> Option<String>,
    /// What the driver does for the step, at their times, if anything.
    pub plan: Option<Plan>,
    /// What each client of the step (a client, or each member of a group) does, if
    /// anything.
    pub play: Option<Play>,
}

/// What the driver does for a step (its random choices drawn from the run's generator):
/// faults and their heals, at their times.
pub(super) type Plan = fn(&Step, &mut ChaCha8Rng) -> Vec<(Duration, Planned)>;

/// What a client does for a step, in its session.
pub(super) type Play = for<'m> fn(
    &'m mut Member,
    &'m mut SimSession,
    &'m Step,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'm>>;

/// The verb of `action`: the row that writes it.
pub(super) fn of(action: &Action) -> Option<&'static Verb> {
    VERBS
        .iter()
        .find(|verb| (verb.write)(verb.name, action).is_some())
}

/// The expectations on a request's answer.
const ANSWERS: &[&str] = &[
    "granted_by",
    "denied",
    "unknown",
    "within",
    "attempts_max",
    "lost",
];

/// Whether `key` is an expectation of some verb.
pub(super) fn is_expectation(key: &str) -> bool {
    VERBS.iter().any(|verb| verb.expectations.contains(&key))
}

/// Every verb.
pub(super) const VERBS: &[Verb] = &[
    server_verb("crash", &["for"], |s| s.server_fault(Fault::Crash), one),
    server_verb("stop", &["for"], |s| s.server_fault(Fault::Stop), one),
    server_verb("restart", &[], |s| s.server_fault(Fault::Restart), one),
    server_verb("isolate", &["for"], |s| s.server_fault(Fault::Isolate), one),
    server_verb("rejoin", &[], |s| s.server_fault(Fault::Rejoin), one),
    server_verb("cut", &["for"], |s| s.pair_fault(Fault::Cut), two),
    server_verb("mend", &[], |s| s.pair_fault(Fault::Mend), two),
    server_verb("cut_oneway", &["for"], |s| s.pair_fault(Fault::OneWay), two),
    server_verb("mend_oneway", &[], |s| s.pair_fault(Fault::MendOneWay), two),
    server_verb("hold", &["for"], |s| s.pair_fault(Fault::Hold), two),
    server_verb("release", &[], |s| s.pair_fault(Fault::Release), two),
    server_verb("slow", &["latency", "for"], read_slow, write_slow),
    server_verb("fast", &[], |s| s.pair_fault(Fault::Fast), two),
    Verb {
        plan: Some(plan_flap),
        ..server_verb("flap", &["for", "down", "up"], read_flap, write_flap)
    },
    server_verb("clock", &["offset", "drift_ppm"], read_clock, write_clock),
    client_verb(
        "checkout",
        &["unless_held", "wait"],
        ANSWERS,
        read_checkout,
        |_, a| {
            act(a, |act| match act {
                ClientAct::Checkout(f) => Some(format!("checkout = {}", quoted(f))),
                ClientAct::Wait(f, wait) => Some(format!(
                    "checkout = {}\nwait = {}",
                    quoted(f),
                    duration(*wait)
                )),
                _ => None,
            })
        },
        Some(|m, s, step| Box::pin(m.request(s, step))),
    ),
    client_verb(
        "borrow",
        &["hours", "unless_held"],
        ANSWERS,
        read_borrow,
        |_, a| {
            act(a, |act| match act {
                ClientAct::Borrow(f, hours) => {
                    Some(format!("borrow = {}\nhours = {hours}", quoted(f)))
                }
                _ => None,
            })
        },
        Some(|m, s, step| Box::pin(m.request(s, step))),
    ),
    client_verb(
        "checkin",
        &["if_held"],
        &["within", "attempts_max"],
        |s| Ok(s.client(ClientAct::Checkin(s.feature()?))),
        |_, a| {
            act(a, |act| match act {
                ClientAct::Checkin(f) => Some(format!("checkin = {}", quoted(f))),
                _ => None,
            })
        },
        Some(|m, s, step| Box::pin(m.give_back(s, step))),
    ),
    client_verb(
        "return",
        &["if_held"],
        &["within", "attempts_max"],
        |s| Ok(s.client(ClientAct::Return(s.feature()?))),
        |_, a| {
            act(a, |act| match act {
                ClientAct::Return(f) => Some(format!("return = {}", quoted(f))),
                _ => None,
            })
        },
        Some(|m, s, step| Box::pin(m.give_back(s, step))),
    ),
    client_verb(
        "busy",
        &["until", "hold"],
        &["lost"],
        read_busy,
        write_busy,
        Some(|m, s, step| Box::pin(m.busy_spell(s, step))),
    ),
    client_verb(
        "work",
        &["until", "chaos"],
        &["lost"],
        read_work,
        write_work,
        Some(|m, s, step| Box::pin(m.work_spell(s, step))),
    ),
    client_verb(
        "freeze",
        &[],
        &["lost", "within"],
        |s| Ok(s.client(ClientAct::Freeze(s.doc.duration(s.name, s.value)?))),
        |_, a| {
            act(a, |act| match act {
                ClientAct::Freeze(d) => Some(format!("freeze = {}", duration(*d))),
                _ => None,
            })
        },
        Some(|m, s, step| Box::pin(m.freeze(s, step))),
    ),
    // The driver cuts the client's machine off; its losses are judged at the end.
    Verb {
        plan: Some(plan_disconnect),
        ..client_verb(
            "disconnect",
            &["from", "held"],
            &["lost", "within"],
            read_disconnect,
            write_disconnect,
            None,
        )
    },
    client_verb(
        "kill",
        &[],
        &[],
        read_kill,
        |_, a| {
            act(a, |act| {
                matches!(act, ClientAct::Kill).then(|| "kill = true".to_string())
            })
        },
        Some(|m, s, _| {
            m.kill(s);
            Box::pin(std::future::ready(()))
        }),
    ),
    Verb {
        name: "impostor",
        params: &["target"],
        expectations: &["refused"],
        actor: Actor::Impostor,
        read: read_impostor,
        write: write_impostor,
        // Its own machine plays it ([`super::run`]'s `Impostor`).
        plan: None,
        play: None,
    },
    Verb {
        name: "remove",
        params: &["host", "feature"],
        expectations: &["removed", "within"],
        actor: Actor::Operator,
        read: read_remove,
        write: write_remove,
        // The operator's machine plays it ([`super::run`]'s `Operator`).
        plan: None,
        play: None,
    },
    Verb {
        name: "options",
        params: &[],
        expectations: &["pushed", "within"],
        actor: Actor::Operator,
        read: read_options,
        write: write_options,
        // The operator's machine plays it ([`super::run`]'s `Operator`).
        plan: None,
        play: None,
    },
    Verb {
        name: "set_count",
        params: &["feature"],
        expectations: &["pushed", "within"],
        actor: Actor::Operator,
        read: read_set_count,
        write: write_set_count,
        // The operator's machine plays it ([`super::run`]'s `Operator`).
        plan: None,
        play: None,
    },
];

/// A fault of the servers: the driver applies it at the step's time, and heals it after
/// `for`.
const fn server_verb(
    name: &'static str,
    params: &'static [&'static str],
    read: fn(&StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError>,
    write: fn(&'static str, &Action) -> Option<String>,
) -> Verb {
    Verb {
        name,
        params,
        expectations: &[],
        actor: Actor::Servers,
        read,
        write,
        plan: Some(plan_fault),
        play: None,
    }
}

/// Something a client does: `play` is what each client of the step does.
const fn client_verb(
    name: &'static str,
    params: &'static [&'static str],
    expectations: &'static [&'static str],
    read: fn(&StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError>,
    write: fn(&'static str, &Action) -> Option<String>,
    play: Option<Play>,
) -> Verb {
    Verb {
        name,
        params,
        expectations,
        actor: Actor::Client,
        read,
        write,
        plan: None,
        play,
    }
}

/// The verb and keys of `action`, one a line (the step's `at`, `client` and
/// expectations are written around them).
pub(super) fn write_action(action: &Action) -> String {
    VERBS
        .iter()
        .find_map(|verb| (verb.write)(verb.name, action))
        .unwrap_or_default()
}

/// What a verb's reader has: the step's table, the verb's value, who does it, and when.
pub(super) struct StepKeys<'r, 'a, 'i> {
    pub doc: &'r Doc<'a>,
    pub name: &'static str,
    pub value: &'r Value<'i>,
    pub table: &'r DeTable<'i>,
    /// The client (or group) of a client's action.
    pub who: Option<String>,
    pub at: Duration,
}

impl StepKeys<'_, '_, '_> {
    fn error(&self, key: &str, problem: impl Into<String>) -> ScenarioError {
        self.doc.at(self.value.span(), key, problem)
    }

    /// A key the verb needs, or what to write.
    fn required(&self, key: &str, example: &str) -> Result<&Value<'_>, ScenarioError> {
        self.table
            .get(key)
            .ok_or_else(|| self.error(self.name, example.to_string()))
    }

    /// `for`, how long a fault lasts (not zero), if given.
    fn lasting(&self) -> Result<Option<Duration>, ScenarioError> {
        let Some(value) = self.table.get("for") else {
            return Ok(None);
        };
        let lasting = self.doc.duration("for", value)?;
        if lasting.is_zero() {
            return Err(self
                .doc
                .at(value.span(), "for", "a fault that lasts no time"));
        }
        Ok(Some(lasting))
    }

    fn server_fault(&self, fault: fn(ServerId) -> Fault) -> Result<Action, ScenarioError> {
        Ok(Action::Server {
            fault: fault(self.doc.server(self.name, self.value)?),
            lasting: self.lasting()?,
        })
    }

    fn pair_fault(&self, fault: fn(ServerId, ServerId) -> Fault) -> Result<Action, ScenarioError> {
        let (a, b) = self.doc.pair(self.name, self.value)?;
        Ok(Action::Server {
            fault: fault(a, b),
            lasting: self.lasting()?,
        })
    }

    /// `until`, when a client's spell of `who`'s ("a busy client") ends: after the step.
    fn until(&self, who: &str) -> Result<Duration, ScenarioError> {
        let until = self.required(
            "until",
            &format!("{who} needs until = \"<when it stops>\", e.g. until = \"60s\""),
        )?;
        let until_at = self.doc.duration("until", until)?;
        if until_at <= self.at {
            return Err(self
                .doc
                .at(until.span(), "until", "the spell ends before it starts"));
        }
        Ok(until_at)
    }

    fn feature(&self) -> Result<String, ScenarioError> {
        self.doc
            .string(
                self.name,
                self.value,
                "a feature name in quotes, e.g. \"cad\"",
            )
            .map(str::to_string)
    }

    fn client(&self, act: ClientAct) -> Action {
        Action::Client {
            who: self.who.clone().unwrap_or_default(),
            act,
        }
    }
}

/// `crash = 1` (and `for`), if `action` is a fault of one server that verb `name` writes.
fn one(name: &'static str, action: &Action) -> Option<String> {
    let Action::Server { fault, lasting } = action else {
        return None;
    };
    let (verb, s) = match *fault {
        Fault::Crash(s) => ("crash", s),
        Fault::Stop(s) => ("stop", s),
        Fault::Restart(s) => ("restart", s),
        Fault::Isolate(s) => ("isolate", s),
        Fault::Rejoin(s) => ("rejoin", s),
        _ => return None,
    };
    (verb == name).then(|| format!("{name} = {}{}", s.get(), for_line(*lasting)))
}

/// `cut = [1, 2]` (and `for`), if `action` is a fault of a link that verb `name` writes.
/// A flap's own down and up phases are cuts and mends of the link; its start and end
/// alone say nothing (flapping is written as `flap`), so they are written as mends.
fn two(name: &'static str, action: &Action) -> Option<String> {
    let Action::Server { fault, lasting } = action else {
        return None;
    };
    let (a, b) = link(fault)?;
    let verb = match fault {
        Fault::Cut(..) | Fault::FlapDown(..) => "cut",
        Fault::Mend(..) | Fault::FlapUp(..) | Fault::Flap(..) | Fault::Steady(..) => "mend",
        Fault::OneWay(..) => "cut_oneway",
        Fault::MendOneWay(..) => "mend_oneway",
        Fault::Hold(..) => "hold",
        Fault::Release(..) => "release",
        Fault::Fast(..) => "fast",
        _ => return None,
    };
    (verb == name).then(|| format!("{name} = {}{}", pair(a, b), for_line(*lasting)))
}

/// The link a fault is on.
fn link(fault: &Fault) -> Option<(ServerId, ServerId)> {
    match *fault {
        Fault::Cut(a, b)
        | Fault::Mend(a, b)
        | Fault::OneWay(a, b)
        | Fault::MendOneWay(a, b)
        | Fault::Hold(a, b)
        | Fault::Release(a, b)
        | Fault::Slow(a, b, _)
        | Fault::Fast(a, b)
        | Fault::Flap(a, b)
        | Fault::FlapDown(a, b)
        | Fault::FlapUp(a, b)
        | Fault::Steady(a, b) => Some((a, b)),
        _ => None,
    }
}

/// A client's action as its verb's keys, if `write` knows it.
fn act(action: &Action, write: impl Fn(&ClientAct) -> Option<String>) -> Option<String> {
    match action {
        Action::Client { act, .. } => write(act),
        _ => None,
    }
}

fn for_line(lasting: Option<Duration>) -> String {
    lasting.map_or(String::new(), |d| format!("\nfor = {}", duration(d)))
}

fn pair(a: ServerId, b: ServerId) -> String {
    format!("[{}, {}]", a.get(), b.get())
}

fn read_slow(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let (a, b) = s.doc.pair(s.name, s.value)?;
    let latency = s.required(
        "latency",
        "a slow link needs latency = \"<most a message takes>\", e.g. latency = \"300ms\"",
    )?;
    let latency_ms = s.doc.duration("latency", latency)?;
    if latency_ms < Duration::from_millis(4) || latency_ms > Duration::from_secs(30) {
        return Err(s.doc.at(
            latency.span(),
            "latency",
            "a slow link's latency is from 4ms to 30s",
        ));
    }
    Ok(Action::Server {
        fault: Fault::Slow(a, b, latency_ms),
        lasting: s.lasting()?,
    })
}

fn write_slow(_: &str, action: &Action) -> Option<String> {
    match action {
        Action::Server {
            fault: Fault::Slow(a, b, latency),
            lasting,
        } => Some(format!(
            "slow = {}\nlatency = {}{}",
            pair(*a, *b),
            duration(*latency),
            for_line(*lasting)
        )),
        _ => None,
    }
}

fn read_flap(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let (a, b) = s.doc.pair(s.name, s.value)?;
    let lasting = s.lasting()?.ok_or_else(|| {
        s.error(
            s.name,
            "a flapping link needs for = \"<how long it flaps>\", e.g. for = \"30s\"",
        )
    })?;
    let phase = |key: &str| -> Result<Option<Duration>, ScenarioError> {
        let Some(v) = s.table.get(key) else {
            return Ok(None);
        };
        let d = s.doc.duration(key, v)?;
        if d < Duration::from_millis(100) {
            return Err(s.doc.at(
                v.span(),
                key,
                "a phase of a flapping link lasts at least 100ms",
            ));
        }
        Ok(Some(d))
    };
    Ok(Action::Flap {
        a,
        b,
        lasting,
        down: phase("down")?,
        up: phase("up")?,
    })
}

fn write_flap(_: &str, action: &Action) -> Option<String> {
    let Action::Flap {
        a,
        b,
        lasting,
        down,
        up,
    } = action
    else {
        return None;
    };
    let mut text = format!("flap = {}\nfor = {}", pair(*a, *b), duration(*lasting));
    if let Some(down) = down {
        text.push_str(&format!("\ndown = {}", duration(*down)));
    }
    if let Some(up) = up {
        text.push_str(&format!("\nup = {}", duration(*up)));
    }
    Some(text)
}

fn read_clock(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let server = s.doc.server(s.name, s.value)?;
    let offset = s
        .table
        .get("offset")
        .map(|v| s.doc.signed_ms("offset", v))
        .transpose()?;
    let drift = s
        .table
        .get("drift_ppm")
        .map(|v| s.doc.integer("drift_ppm", v))
        .transpose()?;
    if offset.is_none() && drift.is_none() {
        return Err(s.error(
            s.name,
            "a clock step needs offset = \"-3s\" (a step of the clock) or drift_ppm = 200 (a clock running fast), or both",
        ));
    }
    if drift.is_some_and(|d| d.abs() > 100_000) {
        return Err(s.error("drift_ppm", "more than 10 %: no quartz drifts so far"));
    }
    Ok(Action::Server {
        fault: Fault::Clock(server, offset.unwrap_or(0), drift.unwrap_or(0)),
        lasting: None,
    })
}

fn write_clock(_: &str, action: &Action) -> Option<String> {
    match action {
        Action::Server {
            fault: Fault::Clock(s, offset, drift),
            ..
        } => Some(format!(
            "clock = {}\noffset = {}\ndrift_ppm = {drift}",
            s.get(),
            signed(*offset)
        )),
        _ => None,
    }
}

fn read_checkout(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let feature = s.feature()?;
    match s.table.get("wait") {
        Some(wait) => Ok(s.client(ClientAct::Wait(feature, s.doc.duration("wait", wait)?))),
        None => Ok(s.client(ClientAct::Checkout(feature))),
    }
}

fn read_borrow(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let hours = s.required(
        "hours",
        "a borrow needs hours = <how long>, e.g. hours = 24",
    )?;
    let n = s.doc.integer("hours", hours)?;
    let n = u32::try_from(n)
        .ok()
        .filter(|n| (1..=24 * 366).contains(n))
        .ok_or_else(|| {
            s.doc.at(
                hours.span(),
                "hours",
                format!("{n} is not from 1 to a year of hours"),
            )
        })?;
    Ok(s.client(ClientAct::Borrow(s.feature()?, n)))
}

fn read_busy(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let until_at = s.until("a busy client")?;
    let hold = s
        .table
        .get("hold")
        .map(|v| s.doc.duration("hold", v))
        .transpose()?;
    Ok(s.client(ClientAct::Busy {
        feature: s.feature()?,
        until: until_at,
        hold,
    }))
}

fn write_busy(name: &str, action: &Action) -> Option<String> {
    act(action, |act| match act {
        ClientAct::Busy {
            feature,
            until,
            hold,
        } => Some(spell(name, feature, *until, ("hold", *hold))),
        _ => None,
    })
}

/// A client's spell of work as its verb's keys: `busy = "cad"`, `until`, and the one
/// optional key it has.
fn spell(
    name: &str,
    feature: &str,
    until: Duration,
    (key, value): (&str, Option<Duration>),
) -> String {
    let optional = value.map_or(String::new(), |v| format!("\n{key} = {}", duration(v)));
    format!(
        "{name} = {}\nuntil = {}{optional}",
        quoted(feature),
        duration(until)
    )
}

fn read_work(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let until_at = s.until("a working client")?;
    let chaos = match s.table.get("chaos") {
        None => None,
        Some(value) => {
            let chaos = s.doc.duration("chaos", value)?;
            if chaos <= s.at || chaos > until_at {
                return Err(s.doc.at(
                    value.span(),
                    "chaos",
                    "the processes may crash and freeze until a time between the step's and until",
                ));
            }
            Some(chaos)
        }
    };
    Ok(s.client(ClientAct::Work {
        feature: s.feature()?,
        until: until_at,
        chaos,
    }))
}

fn write_work(name: &str, action: &Action) -> Option<String> {
    act(action, |act| match act {
        ClientAct::Work {
            feature,
            until,
            chaos,
        } => Some(spell(name, feature, *until, ("chaos", *chaos))),
        _ => None,
    })
}

fn read_disconnect(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let lasting = s.doc.duration(s.name, s.value)?;
    let from = match s.table.get("from") {
        None => servers().to_vec(),
        Some(v) => {
            let from = s.doc.servers_list("from", v, "[1]")?;
            if from.is_empty() {
                return Err(s.doc.at(
                    v.span(),
                    "from",
                    "cut off from no server: list at least one",
                ));
            }
            from
        }
    };
    let held = s
        .table
        .get("held")
        .map(|v| s.doc.boolean("held", v))
        .transpose()?
        .unwrap_or(false);
    Ok(s.client(ClientAct::Disconnect {
        lasting,
        from,
        held,
    }))
}

fn write_disconnect(_: &str, action: &Action) -> Option<String> {
    act(action, |act| match act {
        ClientAct::Disconnect {
            lasting,
            from,
            held,
        } => {
            let from: Vec<String> = from.iter().map(|s| s.get().to_string()).collect();
            Some(format!(
                "disconnect = {}\nfrom = [{}]{}",
                duration(*lasting),
                from.join(", "),
                if *held { "\nheld = true" } else { "" }
            ))
        }
        _ => None,
    })
}

fn read_kill(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    if !s.doc.boolean(s.name, s.value)? {
        return Err(s.error(s.name, "kill = false does nothing: leave the step out"));
    }
    Ok(s.client(ClientAct::Kill))
}

/// An impostor step: the slot it claims, and the servers it dials (`target`, one or a
/// list; default: every other server).
fn read_impostor(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let claimed = s.doc.server("impostor", s.value)?;
    let Some(target) = s.table.get("target") else {
        return Ok(Action::Impostor {
            claimed,
            targets: crate::faults::peers(claimed),
        });
    };
    let targets = match target.get_ref() {
        DeValue::Array(_) => s.doc.servers_list("target", target, "[1, 3]")?,
        _ => vec![s.doc.server("target", target)?],
    };
    if targets.is_empty() {
        return Err(s.doc.at(
            target.span(),
            "target",
            "dials no server: name one (target = 1) or a list (target = [1, 3]), or leave target out for every other server",
        ));
    }
    if targets.contains(&claimed) {
        let others: Vec<String> = crate::faults::peers(claimed)
            .iter()
            .map(|s| s.get().to_string())
            .collect();
        return Err(s.doc.at(
            target.span(),
            "target",
            format!(
                "the impostor claims to be #{c}, and #{c} takes no link from itself: target {} (the default is both)",
                others.join(" or "),
                c = claimed.get()
            ),
        ));
    }
    Ok(Action::Impostor { claimed, targets })
}

fn read_remove(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let name = |key: &str, value| -> Result<String, ScenarioError> {
        let text = s
            .doc
            .string(key, value, "a name in quotes, e.g. \"alice\"")?;
        hal_core::names::check(text)
            .map_err(|problem| s.doc.at(value.span(), key, format!("the name {problem}")))?;
        Ok(text.to_string())
    };
    let user = name("remove", s.value)?;
    let host = s.table.get("host").map(|v| name("host", v)).transpose()?;
    let feature = s
        .table
        .get("feature")
        .map(|v| name("feature", v))
        .transpose()?;
    Ok(Action::Remove {
        user,
        host,
        feature,
    })
}

/// The most seats a `set_count` step gives a feature (as a license's COUNT may).
const COUNT_MAX: i64 = 1_000_000;

fn read_set_count(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let count = s.doc.integer("set_count", s.value)?;
    if !(1..=COUNT_MAX).contains(&count) {
        return Err(s.error(
            "set_count",
            format!("{count} is not a COUNT to push: 1 to {COUNT_MAX}"),
        ));
    }
    let Some(value) = s.table.get("feature") else {
        return Err(s.error(
            "set_count",
            "say which feature's COUNT the pushed license changes: feature = \"cad\"",
        ));
    };
    let feature = s
        .doc
        .string("feature", value, "a feature name in quotes, e.g. \"cad\"")?;
    Ok(Action::SetCount {
        feature: feature.to_string(),
        count: u32::try_from(count).unwrap_or(1),
    })
}

fn write_set_count(_: &str, action: &Action) -> Option<String> {
    let Action::SetCount { feature, count } = action else {
        return None;
    };
    Some(format!(
        "set_count = {count}\nfeature = {}",
        quoted(feature)
    ))
}

fn read_options(s: &StepKeys<'_, '_, '_>) -> Result<Action, ScenarioError> {
    let text = s
        .doc
        .string("options", s.value, "an options file in triple quotes")?;
    if let Err(errors) = hal_core::options::parse_in_force("options", text) {
        let problems: Vec<String> = errors
            .iter()
            .map(|e| format!("its line {}: {}", e.line, e.problem))
            .collect();
        return Err(s.error("options", problems.join("; ")));
    }
    Ok(Action::PushOptions {
        text: text.to_string(),
    })
}

fn write_options(_: &str, action: &Action) -> Option<String> {
    let Action::PushOptions { text } = action else {
        return None;
    };
    Some(format!("options = \"\"\"\n{text}\"\"\""))
}

fn write_remove(_: &str, action: &Action) -> Option<String> {
    let Action::Remove {
        user,
        host,
        feature,
    } = action
    else {
        return None;
    };
    let mut text = format!("remove = {}", quoted(user));
    if let Some(host) = host {
        text.push_str(&format!("\nhost = {}", quoted(host)));
    }
    if let Some(feature) = feature {
        text.push_str(&format!("\nfeature = {}", quoted(feature)));
    }
    Some(text)
}

fn write_impostor(_: &str, action: &Action) -> Option<String> {
    let Action::Impostor { claimed, targets } = action else {
        return None;
    };
    let targets: Vec<String> = targets.iter().map(|s| s.get().to_string()).collect();
    Some(format!(
        "impostor = {}\ntarget = [{}]",
        claimed.get(),
        targets.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action a verb reads is written back by the same verb, and by no other.
    #[test]
    fn each_verb_writes_what_it_reads_and_only_that() {
        let [s1, s2, _] = servers();
        let actions = [
            Action::Server {
                fault: Fault::Crash(s1),
                lasting: Some(Duration::from_secs(3)),
            },
            Action::Server {
                fault: Fault::OneWay(s1, s2),
                lasting: None,
            },
            Action::Server {
                fault: Fault::Slow(s1, s2, Duration::from_millis(300)),
                lasting: None,
            },
            Action::Server {
                fault: Fault::Clock(s2, -3_000, 200),
                lasting: None,
            },
            Action::Client {
                who: "alice".into(),
                act: ClientAct::Borrow("cad".into(), 24),
            },
            Action::Client {
                who: "alice".into(),
                act: ClientAct::Kill,
            },
        ];
        let names = ["crash", "cut_oneway", "slow", "clock", "borrow", "kill"];
        for (action, name) in actions.iter().zip(names) {
            let writers: Vec<&str> = VERBS
                .iter()
                .filter(|v| (v.write)(v.name, action).is_some())
                .map(|v| v.name)
                .collect();
            assert_eq!(writers, [name], "{action:?}");
            assert_eq!(of(action).map(|v| v.name), Some(name), "{action:?}");
            let text = write_action(action);
            assert!(text.starts_with(&format!("{name} = ")), "{text}");
        }
        assert_eq!(
            write_action(&actions[0]),
            "crash = 1\nfor = \"3s\"",
            "the fault's `for` is the verb's"
        );
    }

    /// Every verb is run: a fault of the servers by the driver, a client's verb by the
    /// client (a disconnect by the driver, which cuts the machine off), the impostor by
    /// its own machine; and a fault's row plans it with its heal.
    #[test]
    fn every_verb_has_its_runner() {
        for verb in VERBS {
            let runs = match verb.actor {
                Actor::Servers => verb.plan.is_some() && verb.play.is_none(),
                Actor::Client => verb.plan.is_some() != verb.play.is_some(),
                Actor::Impostor | Actor::Operator => verb.plan.is_none() && verb.play.is_none(),
            };
            assert!(runs, "{}", verb.name);
        }
        let [s1, s2, _] = servers();
        let step = |action| Step {
            at: Duration::from_secs(2),
            line: 7,
            action,
            expect: super::super::Expect::default(),
        };
        let mut rng = rand::SeedableRng::seed_from_u64(0);
        let crash = step(Action::Server {
            fault: Fault::Crash(s1),
            lasting: Some(Duration::from_secs(3)),
        });
        let plan = of(&crash.action)
            .and_then(|v| v.plan)
            .unwrap_or(|_, _| Vec::new());
        assert_eq!(
            plan(&crash, &mut rng),
            [
                (Duration::from_secs(2), Planned::Fault(Fault::Crash(s1))),
                (Duration::from_secs(5), Planned::Recover(s1)),
            ]
        );
        let cut = step(Action::Server {
            fault: Fault::Cut(s1, s2),
            lasting: Some(Duration::from_secs(1)),
        });
        let plan = of(&cut.action)
            .and_then(|v| v.plan)
            .unwrap_or(|_, _| Vec::new());
        assert_eq!(
            plan(&cut, &mut rng),
            [
                (Duration::from_secs(2), Planned::Fault(Fault::Cut(s1, s2))),
                (Duration::from_secs(3), Planned::Fault(Fault::Mend(s1, s2))),
            ]
        );
    }

    #[test]
    fn verb_names_are_unique_and_every_key_list_is_too() {
        let mut names: Vec<&str> = VERBS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VERBS.len());
        for verb in VERBS {
            let mut keys: Vec<&str> = verb
                .params
                .iter()
                .chain(verb.expectations)
                .copied()
                .collect();
            keys.sort_unstable();
            let before = keys.len();
            keys.dedup();
            assert_eq!(keys.len(), before, "{}", verb.name);
        }
    }
}
