//! `hal-net status`: asks every server of the license path for its view and prints the
//! triad (reachable, role, term, log lag) and the seats (used/count, holders, borrows),
//! like LM-X's `lmxendutil -licstat`.
//!
//! The seat table shown is the active server's; without an active server, that of the
//! reachable server with the most applied log (and the output says so).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hal_core::ServerId;
use hal_core::server::Role;
use hal_net::addr::LicensePath;
use hal_net::admin;
use hal_net::tls_transport::ClientTransport;
use hal_net::transport::slot_in_path;
use hal_net::wire::StatusReport;
use serde_json::{Value, json};

use crate::output::{self, Usage};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The license servers: `port@host` entries separated by `;` or `,`, in triad order.
    /// Without it, the servers are discovered on the LAN (as `hal-net discover`, the
    /// search as HAL_DISCOVERY_PORT, HAL_DISCOVERY_GROUP and HAL_DISCOVERY_TO say).
    #[arg(long = "license-path", env = "HAL_LICENSE_PATH", value_name = "PATH")]
    license_path: Option<String>,
    /// How long to wait for each server.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    security: crate::client_cmd::SecurityArgs,
}

/// One server's answer, or why there is none.
struct Probe {
    addr: String,
    report: Result<StatusReport, String>,
}

async fn ask(
    transport: &ClientTransport,
    addr: String,
    server: ServerId,
    limit: Duration,
) -> Probe {
    let report = admin::status(transport, &addr, server, limit).await;
    Probe { addr, report }
}

pub async fn run(args: StatusArgs, json: bool) -> Result<ExitCode> {
    let path =
        match &args.license_path {
            Some(text) => LicensePath::parse(text)
                .map_err(|e| Usage(format!("--license-path '{text}': {e}")))?,
            None => {
                let search = hal_net::discovery::Search::from_env()?;
                let found = search.run().await.context(
                    "no --license-path or HAL_LICENSE_PATH, and discovery found no triad",
                )?;
                found.license_path()?
            }
        };
    let transport = args.security.transport()?;
    let count = path.addrs().len();
    let asks = path.addrs().iter().enumerate().map(|(i, entry)| {
        let server = slot_in_path(count, i);
        ask(&transport, entry.connect_string(), server, args.timeout)
    });
    let probes = futures_util::future::join_all(asks).await;
    let view = View::new(&probes);
    let health = Health::of(&probes);
    if json {
        let mut value = view.json(&probes);
        value["health"] = json!(health.name());
        value["exit_code"] = json!(health.code());
        value["problems"] = json!(health.problems());
        if let Health::Unreachable = health {
            value["error"] = json!("no license server answered");
        }
        println!("{value}");
    } else {
        print!("{}", view.text(&probes));
        println!("{}", health.line());
    }
    Ok(ExitCode::from(health.code()))
}

/// The triad's health as `status` judges it, for its exit code and its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
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
    fn of(probes: &[Probe]) -> Health {
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

    fn name(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded(_) => "degraded",
            Health::NotServing(_) => "not_serving",
            Health::Unreachable => "unreachable",
        }
    }

    fn code(&self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Degraded(_) => output::DEGRADED,
            Health::NotServing(_) => output::NOT_SERVING,
            Health::Unreachable => output::UNREACHABLE,
        }
    }

    fn problems(&self) -> &[String] {
        match self {
            Health::Degraded(problems) | Health::NotServing(problems) => problems,
            Health::Ok | Health::Unreachable => &[],
        }
    }

    /// The verdict as the text output's last line(s).
    fn line(&self) -> String {
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

/// The probes, with the source of the seat table picked.
struct View<'a> {
    source: Option<&'a StatusReport>,
    newest_index: u64,
}

impl<'a> View<'a> {
    fn new(probes: &'a [Probe]) -> View<'a> {
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

    fn json(&self, probes: &[Probe]) -> Value {
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
        let features: Vec<Value> =
            self.source
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
                            .map(|(i, w)| json!({
                                "position": i + 1, "user": w.user, "host": w.host,
                                "since": format_wall(w.since_ms), "since_ms": w.since_ms,
                            }))
                            .collect();
                        json!({"feature": f.name, "count": f.count, "used": f.used, "holders": holders,
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

    fn text(&self, probes: &[Probe]) -> String {
        let mut out = String::from("servers:\n");
        for (i, probe) in probes.iter().enumerate() {
            let line = match &probe.report {
                Ok(r) => format!(
                    "  #{} {:<24} up    {:<8} term {:<4} log lag {}{}{}{}\n",
                    r.server.get(),
                    probe.addr,
                    r.role.name(),
                    r.term,
                    self.newest_index.saturating_sub(r.last_index),
                    certificate(r),
                    refusals(r),
                    license(r)
                ),
                Err(why) => format!("  #{} {:<24} DOWN  ({})\n", i + 1, probe.addr, shown(why)),
            };
            out.push_str(&line);
        }
        let Some(source) = self.source else {
            out.push_str("features: unknown (no server reachable)\n");
            return out;
        };
        if source.role == Role::Active {
            out.push_str(&format!(
                "features (from the active server #{}):\n",
                source.server.get()
            ));
        } else {
            out.push_str(&format!(
                "features (NO ACTIVE SERVER: licenses are not being served; seats as server #{} last knew them):\n",
                source.server.get()
            ));
        }
        for f in &source.features {
            let name = shown(&f.name);
            out.push_str(&format!("  {name}: {} of {} in use\n", f.used, f.count));
            for h in &f.holders {
                let since = format_wall(h.granted_ms);
                let what = match h.borrow_end_ms {
                    Some(end) => format!("borrowed {since} until {}", format_wall(end)),
                    None => format!("checked out {since}"),
                };
                out.push_str(&format!(
                    "    h{:<8} {}@{}  {what}\n",
                    h.handle,
                    shown(&h.user),
                    shown(&h.host)
                ));
            }
            if !f.waiting.is_empty() {
                out.push_str(&format!("    {} waiting:\n", f.waiting.len()));
            }
            for (place, w) in f.waiting.iter().enumerate() {
                out.push_str(&format!(
                    "    {:>3}.      {}@{}  waiting since {}\n",
                    place + 1,
                    shown(&w.user),
                    shown(&w.host),
                    format_wall(w.since_ms)
                ));
            }
        }
        out
    }
}

/// Whole days the server's certificate has left, by the server's own clock (`None`: it
/// runs in plaintext).
fn certificate_days_left(report: &StatusReport) -> Option<i64> {
    let expires = i128::from(report.certificate_expires_ms?);
    let left_ms = expires - i128::from(report.wall_ms);
    i64::try_from(left_ms.div_euclid(86_400_000)).ok()
}

/// The certificate's days left as the status line shows them.
fn certificate(report: &StatusReport) -> String {
    match certificate_days_left(report) {
        None => "  PLAINTEXT".to_string(),
        Some(days) if days < 0 => "  certificate EXPIRED".to_string(),
        Some(days) if days < hal_net::tls::EXPIRY_WARNING_DAYS => {
            format!("  certificate expires in {days} days: RENEW")
        }
        Some(days) => format!("  certificate {days} days left"),
    }
}

/// The license a server serves: its digest and where it came from, what the server
/// cannot serve of it, and a license file that differs.
fn license(report: &StatusReport) -> String {
    let l = &report.license;
    let digest = l.digest.get(..12).unwrap_or(&l.digest);
    let mut out = match &l.by {
        Some(by) => format!(
            "\n      license {digest} in force since log index {} (by {})",
            l.index,
            shown(by)
        ),
        None => format!("\n      license {digest} from its license file"),
    };
    for problem in &l.problems {
        out.push_str(&format!("\n      CANNOT SERVE: {}", shown(problem)));
    }
    if let Some(note) = &l.file_differs {
        out.push_str(&format!("\n      {}", shown(note)));
    }
    if let Some(o) = &report.options {
        let digest = o.digest.get(..12).unwrap_or(&o.digest);
        out.push_str(&format!(
            "\n      options {digest}: {} rule(s) in force since log index {} (by {})",
            o.rules,
            o.index,
            shown(&o.by)
        ));
    }
    out
}

fn refusals(report: &StatusReport) -> String {
    report
        .peers
        .iter()
        .filter_map(|p| {
            p.refused
                .as_ref()
                .map(|why| format!("\n      link to {} refused: {}", p.id, shown(why)))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(shown("ann"), "ann");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("x\u{202e}y\n"), "x\\u{202e}y\\u{a}");
    }
}
