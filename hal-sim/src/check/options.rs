//! Invariant 12 (an addition to DESIGN §6.3), options respected: no seat is granted that
//! the options file in force refuses. A grant is judged when its client is told of it,
//! by every options file in force from the request's first send to then (the server
//! decided it at some point in between, by the file in force at that log index): it
//! breaks the rule only if each of them refuses it.
//!
//! What each file refuses: an EXCLUDE that names the user (or the host), an INCLUDE list
//! of the feature that does not, and a MAX whose holders hold more seats than it allows
//! once this one is counted. Seats are counted as the client library holds them
//! ([`super::leases`]): a seat whose lease ran out is not counted, which can only make a
//! count lower than the server's, never raise a false alarm. RESERVE is not judged here:
//! whether the free seats were kept for others depends on seats the clients may no longer
//! count but the servers still do; the servers apply it deterministically, and its tests
//! are hal-core's and the real triad's.
//!
//! In the simulator a client's user name is its name (a restarted process, `c3.1`, keeps
//! `c3`), and every client's host is `sim`.

use std::collections::BTreeMap;

use hal_core::options::{Options, Rule};
use hal_core::record::{ClientEventRecord, OpName, Record};

use super::Invariant;
use super::leases::Leases;

/// The host every simulated client reports.
const SIM_HOST: &str = "sim";

#[derive(Debug, Default)]
pub(super) struct OptionsRespected {
    /// The options files in force, in order: since when, from which log index, and the
    /// rules (`None`: no options).
    versions: Vec<(u64, u64, Option<Options>)>,
    /// When each checkout or borrow was first sent: (client, req) → t.
    sent: BTreeMap<(String, u64), u64>,
    leases: Leases,
}

/// The user a client label stands for: `c3.1` (a restarted process) is `c3`.
fn user_of(label: &str) -> &str {
    label.split('.').next().unwrap_or(label)
}

impl OptionsRespected {
    /// Why `options` refuse `user` the seat of `feature` it now holds, if they do.
    fn refusal(&self, options: &Options, feature: &str, user: &str) -> Option<String> {
        if let Err(refusal) = options.admits(feature, user, SIM_HOST) {
            return Some(format!("{refusal:?}"));
        }
        for (line, rule) in options.rules() {
            let Rule::Max {
                count,
                feature: f,
                who,
            } = rule
            else {
                continue;
            };
            if f != feature || !options.names(who, user, SIM_HOST) {
                continue;
            }
            let held = self
                .leases
                .held
                .iter()
                .filter(|((client, _), seat)| {
                    seat.feature == feature && options.names(who, user_of(client), SIM_HOST)
                })
                .count();
            if held as u64 > u64::from(*count) {
                return Some(format!(
                    "MAX {count} {feature} {who} (line {line}), and they hold {held}"
                ));
            }
        }
        None
    }
}

impl Invariant for OptionsRespected {
    fn name(&self) -> &'static str {
        "12 options respected"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = record.t_ms().unwrap_or(0);
        match record {
            Record::Options(options) => {
                let known = self.versions.iter().any(|v| v.1 == options.index);
                if !known {
                    let rules = hal_core::options::parse_in_force("options", &options.text).ok();
                    let rules = rules.filter(|_| !options.text.trim().is_empty());
                    self.versions.push((t, options.index, rules));
                }
            }
            Record::Request(request)
                if matches!(request.op, OpName::Checkout | OpName::Borrow | OpName::Wait) =>
            {
                let key = (request.client.clone(), request.req);
                self.sent.entry(key).or_insert(t);
            }
            _ => {}
        }
        let Some(feature) = self.leases.observe(record, line) else {
            return Ok(());
        };
        let Record::Client(client) = record else {
            return Ok(());
        };
        let ClientEventRecord::Granted { req, .. } = &client.event else {
            return Ok(());
        };
        if self.versions.is_empty() {
            return Ok(());
        }
        let asked = self
            .sent
            .get(&(client.client.clone(), *req))
            .copied()
            .unwrap_or(0);
        // The file in force at the first send, and every one after it; none in force
        // then refused nothing.
        let Some(first) = self.versions.iter().rposition(|v| v.0 <= asked) else {
            return Ok(());
        };
        let mut reasons = Vec::new();
        let user = user_of(&client.client);
        for (_, index, options) in &self.versions[first..] {
            let Some(options) = options else {
                return Ok(());
            };
            match self.refusal(options, &feature, user) {
                Some(why) => reasons.push(format!("the options of index {index}: {why}")),
                None => return Ok(()),
            }
        }
        let what = format!(
            "{user} was granted a seat of {feature} that the options in force refuse ({})",
            reasons.join("; ")
        );
        Err((what, vec![line.to_string()]))
    }
}
