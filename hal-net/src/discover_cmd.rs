//! `hal-net discover`: sends one discovery request (to the broadcast address of the port,
//! or the addresses given, and a multicast group) and lists every server that answered:
//! where it answered from, its slot, its role, the active server it knows of, its version
//! and its triad list. With one triad it prints the license path a client would use.
//!
//! Exit status 3 when nothing answered (as when no server can be reached); several triads
//! are listed, with a warning that a client would refuse to choose.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hal_net::discovery::client::{GROUP_VAR, PORT_VAR, TO_VAR, parse_group, parse_target};
use hal_net::discovery::{Discovered, DiscoveryError, Found, Search};
use serde_json::{Value, json};

use crate::output;
use crate::status_cmd::shown;

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The port the servers listen on.
    #[arg(long, env = PORT_VAR, default_value_t = hal_net::config::DEFAULT_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Send to this address instead of 255.255.255.255: a subnet's broadcast address
    /// (192.168.1.255), or a server's address; `ip` or `ip:port`. Repeat for several
    /// (or set HAL_DISCOVERY_TO, separated by `,`).
    #[arg(long = "to", value_name = "ADDR", value_parser = parse_target)]
    to: Vec<SocketAddr>,
    /// Also send to this IPv4 multicast group (the servers' `discovery_multicast`).
    #[arg(long, env = GROUP_VAR, value_name = "GROUP", value_parser = parse_group)]
    group: Option<Ipv4Addr>,
    /// The local IPv4 address multicast leaves from (default: the routing table's choice).
    #[arg(long, value_name = "IP")]
    interface: Option<Ipv4Addr>,
    /// How long to collect answers.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn run(args: DiscoverArgs, json: bool) -> Result<ExitCode> {
    let mut to = args.to;
    if to.is_empty()
        && let Some(var) = std::env::var_os(TO_VAR)
    {
        let var = var.to_string_lossy().into_owned();
        for item in var.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            to.push(parse_target(item).map_err(|e| anyhow::anyhow!("{TO_VAR}: {e}"))?);
        }
    }
    let search = Search {
        port: args.port,
        to,
        group: args.group,
        interface: args.interface,
        wait: args.timeout,
    };
    let found = match search.run().await {
        Ok(found) => found,
        Err(nothing @ DiscoveryError::NothingAnswered { .. }) => {
            let fields = json!({"servers": [], "license_path": null, "triads": 0});
            return Ok(output::fail(
                json,
                output::UNREACHABLE,
                &nothing.to_string(),
                fields,
            ));
        }
        Err(error) => return Err(error.into()),
    };
    if json {
        println!("{}", as_json(&found));
    } else {
        print!("{}", as_table(&found));
    }
    if let Err(several @ DiscoveryError::SeveralTriads { .. }) = found.license_path() {
        eprintln!("warning: {several}");
    }
    Ok(ExitCode::SUCCESS)
}

fn slot(found: &Discovered) -> String {
    found
        .answer
        .slot
        .map_or("single".to_string(), |s| s.get().to_string())
}

fn as_json(found: &Found) -> Value {
    let servers: Vec<Value> = found
        .answers
        .iter()
        .map(|d| {
            let triad: Vec<String> = d
                .answer
                .path
                .addrs()
                .iter()
                .map(ToString::to_string)
                .collect();
            json!({
                "from": d.from.to_string(),
                "slot": d.answer.slot.map(|s| s.get()),
                "role": d.answer.role.name(),
                "leader": d.answer.leader.map(|s| s.get()),
                "version": d.answer.version,
                "triad": triad,
            })
        })
        .collect();
    json!({
        "servers": servers,
        "license_path": found.license_path().ok().map(|p| p.to_string()),
        "triads": found.triads().len(),
    })
}

fn as_table(found: &Found) -> String {
    let mut out = format!(
        "{:<22} {:<6} {:<12} {:<6} {:<10} TRIAD\n",
        "FROM", "SLOT", "ROLE", "LEADER", "VERSION"
    );
    for d in &found.answers {
        out.push_str(&format!(
            "{:<22} {:<6} {:<12} {:<6} {:<10} {}\n",
            d.from.to_string(),
            slot(d),
            d.answer.role.name(),
            d.answer
                .leader
                .map_or("-".to_string(), |s| format!("#{}", s.get())),
            shown(&d.answer.version),
            d.answer.path
        ));
    }
    if let Ok(path) = found.license_path() {
        out.push_str(&format!("license path: {path}\n"));
    }
    out
}
