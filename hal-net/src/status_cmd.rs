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
use hal_net::transport::slot_in_path;
use hal_net::triad_view::{self, Health, Probe, View, certificate_days_left, probe_all};
pub use hal_net::triad_view::{format_wall, shown};
use hal_net::wire::StatusReport;

use crate::output::Usage;

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
    let servers: Vec<(String, ServerId)> = path
        .addrs()
        .iter()
        .enumerate()
        .map(|(i, entry)| (entry.connect_string(), slot_in_path(count, i)))
        .collect();
    let probes = probe_all(&transport, &servers, args.timeout).await;
    let health = Health::of(&probes);
    if json {
        println!("{}", triad_view::json(&probes));
    } else {
        print!("{}", text(&View::new(&probes), &probes));
        println!("{}", health.line());
    }
    Ok(ExitCode::from(health.code()))
}

/// The text `status` prints, but for its health.
fn text(view: &View<'_>, probes: &[Probe]) -> String {
    let mut out = String::from("servers:\n");
    for (i, probe) in probes.iter().enumerate() {
        let line = match &probe.report {
            Ok(r) => format!(
                "  #{} {:<24} up    {:<8} term {:<4} log lag {}{}  {}{}{}\n",
                r.server.get(),
                probe.addr,
                r.role.name(),
                r.term,
                view.newest_index.saturating_sub(r.last_index),
                certificate(r),
                software(r),
                refusals(r),
                license(r)
            ),
            Err(why) => format!("  #{} {:<24} DOWN  ({})\n", i + 1, probe.addr, shown(why)),
        };
        out.push_str(&line);
    }
    let Some(source) = view.source else {
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

/// The software a server runs, as the status line shows it.
fn software(report: &StatusReport) -> String {
    match &report.software {
        Some(s) => format!("hal-net {}", shown(&s.version)),
        // Protocol version 8 did not say.
        None => "hal-net 0.1.0 or older (protocol 8)".to_string(),
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
