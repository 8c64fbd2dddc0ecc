//! A triad as its servers describe it: each server's status report (or why there is
//! none), the seat table to show, and the triad's health. What `hal-net status` prints and
//! exits with, and what a server's status page and readiness check show, come from here.

use std::time::Duration;

use hal_core::ServerId;
use hal_core::server::Role;
use serde_json::{Value, json};

use crate::admin;
use crate::transport::Transport;
use crate::wire::StatusReport;

/// One server's answer, or why there is none.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where it was asked (`host:port`).
    pub addr: String,
    pub report: Result<StatusReport, String>,
}

/// Asks every server of `servers` (address and slot, in path order) for its status at
/// once, each for at most `limit`.
pub async fn probe_all<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    limit: Duration,
) -> Vec<Probe> {
    let asks = servers.iter().map(|(addr, server)| async move {
        let report = admin::status(transport, addr, *server, limit).await;
        Probe {
            addr: addr.clone(),
            report,
        }
    });
    futures_util::future::join_all(asks).await
}

/// The triad as `status --json` prints it and the status page shows it: each server, the
/// seat table, and the health (`health`, `exit_code`, `problems`).
pub fn json(probes: &[Probe]) -> Value {
    let health = Health::of(probes);
    let mut value = View::new(probes).json(probes);
    value["health"] = json!(health.name());
    value["exit_code"] = json!(health.code());
    value["problems"] = json!(health.problems());
    if let Health::Unreachable = health {
        value["error"] = json!("no license server answered");
    }
    value
}

/// The probes, with the source of the seat table picked.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The report whose seat table is shown: the active server's, else the one with the
    /// most applied log.
    pub source: Option<&'a StatusReport>,
    /// The newest log index any server reported.
    pub newest_index: u64,
}

impl<'a> View<'a> {
    pub fn new(probes: &'a [Probe]) -> View<'a> {
        let reports: Vec<&StatusReport> = probes
            .iter()
            .filter_map(|p| p.report.as_ref().ok())
            .collect();
        let newest_index = reports.iter().map(|r| r.last_index).max().unwrap_or(0);
        let source = admin::seat_table_source(reports.iter().copied());
        View {
            source,
            newest_index,
        }
    }

    pub fn json(&self, probes: &[Probe]) -> Value {
        let servers: Vec<Value> = probes
            .iter()
            .enumerate()
            .map(|(i, probe)| match &probe.report {
                Ok(r) => json!({
                    "server": r.server.get(), "address": probe.addr, "up": true,
                    "role": r.role.name(), "term": r.term,
                    "leader": r.leader.map(|l| l.get()),
                    "last_index": r.last_index, "commit_index": r.commit_index,
                    "certificate_days_left": certificate_days_left(r),
                    "version": r.software.as_ref().map(|s| s.version.clone()),
                    "protocol": r.software.as_ref().map(|s| [s.protocol.0, s.protocol.1]),
                    "storage_format": r.software.as_ref().map(|s| s.storage_format),
                    "log_lag": self.newest_index.saturating_sub(r.last_index),
                    "peers": r.peers.iter().map(|p| json!({
                        "server": p.id.get(), "connected": p.connected, "refused": p.refused,
                    })).collect::<Vec<_>>(),
                    "license": {
                        "digest": r.license.digest, "index": r.license.index,
                        "by": r.license.by, "problems": r.license.problems,
                        "file_differs": r.license.file_differs,
                    },
                    "options": r.options.as_ref().map(|o| json!({
                        "digest": o.digest, "index": o.index, "by": o.by, "rules": o.rules,
                    })),
                }),
                Err(why) => json!({
                    "server": i + 1, "address": probe.addr, "up": false, "error": why,
                }),
            })
            .collect();
        let features: Vec<Value> = self
            .source
            .map(|r| {
                r.features
                    .iter()
                    .map(|f| {
                        let holders: Vec<Value> = f
                            .holders
                            .iter()
                            .map(|h| json!({
                                "handle": format!("h{}", h.handle), "user": h.user, "host": h.host,
                                "borrow_end": h.borrow_end_ms.map(format_wall),
                                "borrow_end_ms": h.borrow_end_ms,
                                "granted": format_wall(h.granted_ms),
                                "granted_ms": h.granted_ms,
                            }))
                            .collect();
                        let waiting: Vec<Value> = f
                            .waiting
                            .iter()
                            .enumerate()
                            .map(|(i, w)| {
                                json!({
                                    "position": i + 1, "user": w.user, "host": w.host,
                                    "since": format_wall(w.since_ms), "since_ms": w.since_ms,
                                })
                            })
                            .collect();
                        json!({"feature": f.name, "count": f.count, "used": f.used,
                            "borrow_hours_max": f.borrow_hours_max, "holders": holders,
                            "waiting": waiting})
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "servers": servers,
            "features": features,
            "seats_from": self.source.map(|r| r.server.get()),
            "active": self.source.filter(|r| r.role == Role::Active).map(|r| r.server.get()),
        })
    }
}

/// `status`'s exit code when no server answered.
pub const UNREACHABLE: u8 = 3;
/// `status`'s exit code when a server is active with a majority, but a server is down or
/// a link down or refused.
pub const DEGRADED: u8 = 4;
/// `status`'s exit code when no server is active with a majority: nothing is issued.
pub const NOT_SERVING: u8 = 5;

/// The triad's health as `status` judges it, for its exit code and its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A server is active with a majority; every server is up and every link is up.
    Ok,
    /// A server is active with a majority, but something is wrong (each listed).
    Degraded(Vec<String>),
    /// No server is active with a majority: no license is being issued.
    NotServing(Vec<String>),
    /// No server answered.
    Unreachable,
}

impl Health {
    pub fn of(probes: &[Probe]) -> Health {
        let reports: Vec<&StatusReport> = probes
            .iter()
            .filter_map(|p| p.report.as_ref().ok())
            .collect();
        if reports.is_empty() {
            return Health::Unreachable;
        }
        let mut problems = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            if probe.report.is_err() {
                problems.push(format!(
                    "server #{} ({}) does not answer",
                    i + 1,
                    probe.addr
                ));
            }
        }
        for report in &reports {
            for peer in &report.peers {
                // A link is reported by both ends; each end's view counts once.
                match &peer.refused {
                    Some(why) => problems.push(format!(
                        "server #{} refuses its link to #{}: {}",
                        report.server.get(),
                        peer.id.get(),
                        shown(why)
                    )),
                    None if !peer.connected => problems.push(format!(
                        "server #{} has no link to #{}",
                        report.server.get(),
                        peer.id.get()
                    )),
                    None => {}
                }
            }
        }
        // Active with a majority: a single server alone, or a triad member linked to a
        // peer (a leader that loses its majority steps down).
        let serving = reports
            .iter()
            .any(|r| r.role == Role::Active && (!r.triad || r.peers.iter().any(|p| p.connected)));
        match (serving, problems.is_empty()) {
            (true, true) => Health::Ok,
            (true, false) => Health::Degraded(problems),
            (false, _) => {
                problems.insert(0, "no server is active with a majority".to_string());
                Health::NotServing(problems)
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded(_) => "degraded",
            Health::NotServing(_) => "not_serving",
            Health::Unreachable => "unreachable",
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Degraded(_) => DEGRADED,
            Health::NotServing(_) => NOT_SERVING,
            Health::Unreachable => UNREACHABLE,
        }
    }

    pub fn problems(&self) -> &[String] {
        match self {
            Health::Degraded(problems) | Health::NotServing(problems) => problems,
            Health::Ok | Health::Unreachable => &[],
        }
    }

    /// The verdict as the text output's last line(s).
    pub fn line(&self) -> String {
        let list = |head: &str, problems: &[String]| {
            let mut out = head.to_string();
            for p in problems {
                out.push_str(&format!("\n  {p}"));
            }
            out
        };
        match self {
            Health::Ok => {
                "health: ok (a server is active with a majority; every server up and linked)"
                    .to_string()
            }
            Health::Degraded(p) => list("health: DEGRADED (still serving):", p),
            Health::NotServing(p) => list("health: NOT SERVING:", p),
            Health::Unreachable => "health: UNREACHABLE: no license server answered".to_string(),
        }
    }
}

/// Whole days the server's certificate has left, by the server's own clock (`None`: it
/// runs in plaintext).
pub fn certificate_days_left(report: &StatusReport) -> Option<i64> {
    let expires = i128::from(report.certificate_expires_ms?);
    let left_ms = expires - i128::from(report.wall_ms);
    i64::try_from(left_ms.div_euclid(86_400_000)).ok()
}

/// A wall-clock time in ms as RFC 3339 UTC (`2026-11-28T10:00:00Z`).
pub fn format_wall(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms since the epoch"))
}

/// Text from a server as it may be printed on a terminal: control characters and the
/// Unicode controls that reorder text are shown as escapes (`\u{1b}`), so a name cannot
/// clear the operator's screen or disguise itself. (Servers refuse such names; an older
/// or hostile server may still send them.)
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hal_core::names::is_forbidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hal_core::names::is_forbidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
