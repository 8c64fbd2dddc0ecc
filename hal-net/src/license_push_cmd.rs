//! `hal-net license push FILE`: change the license a running triad serves, without a
//! restart or a failover (like FlexNet's `lmreread` and RLM's `rlmreread`, replicated).
//! The active server checks the file (it parses, every feature carries the vendor's
//! signature, it suits the triad) and puts it in the log; every server switches to it at
//! that log index and writes it over its license file. Held seats are kept: a COUNT
//! lowered below the seats in use grants nothing new until enough are returned.
//!
//! The command then asks each server which license it serves, and prints what a server
//! cannot serve of it (a feature locked to another machine's HostID).
//!
//! Exit codes: 0 in force (or no change); 1 the file or the server refused it; 3 no
//! active server could be reached.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use hal_core::ServerId;
use hal_net::admin::{self, Push};
use hal_net::transport::Transport;
use hal_net::wire::StatusReport;
use serde_json::json;

use crate::admin_args::{AdminArgs, PushFailed};
use crate::output;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The license file to serve (signed with `hal-net license sign`).
    #[arg(value_name = "FILE.lic")]
    file: PathBuf,
    /// The vendor's public key: check every signature here before sending (the active
    /// server checks them in any case).
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    #[command(flatten)]
    admin: crate::admin_args::AdminArgs,
}

/// How long the command waits for every server to report the new license.
const SWITCH_WAIT: Duration = Duration::from_secs(3);

pub async fn run(args: PushArgs, json: bool) -> Result<ExitCode> {
    let servers = args.admin.servers()?;
    let loaded = hal_net::license_file::load(&args.file)?;
    if let Some(pubkey) = &args.pubkey {
        let public = hal_net::keys::read_verifying_key(pubkey)?;
        let bad: Vec<String> = loaded
            .license
            .verify(&public)
            .into_iter()
            .filter_map(|(f, verdict)| {
                let why = verdict.err()?;
                Some(format!(
                    "{}:{}: FEATURE {}: {why}",
                    args.file.display(),
                    f.origin.line,
                    f.name
                ))
            })
            .collect();
        if !bad.is_empty() {
            anyhow::bail!("{}\nnothing was pushed", bad.join("\n"));
        }
    }
    let transport = args.admin.transport()?;
    let by = AdminArgs::by();
    let id = AdminArgs::request_id()?;
    let text: Arc<str> = loaded.text.as_str().into();
    let pushed = admin::push_license(
        &transport,
        &servers,
        (text, by.clone()),
        id,
        args.admin.timeout,
    )
    .await;
    let file = args.file.display().to_string();
    let (index, changed, active) = match pushed {
        Ok(Push::Pushed { index, changed, by }) => (index, changed, by),
        Ok(Push::Refused { reason, by: server }) => {
            // The server names the file as it received it; name it as the operator did.
            let reason = reason.replace("pushed license:", &format!("{file}:"));
            let what = "the license in force is unchanged";
            return Ok(PushFailed::Refused {
                server,
                reason,
                file: &file,
                what,
            }
            .report(json));
        }
        Err(error) => return Ok(PushFailed::Unreachable(error.to_string()).report(json)),
    };
    let reports = switched(&transport, &servers, index, args.admin.timeout).await;
    let mut lines = vec![if changed {
        format!(
            "pushed {file}: in force from log index {index} (#{} is active), as {by}",
            active.get()
        )
    } else {
        format!("no change: {file} has the terms of the license in force (since log index {index})")
    }];
    let mut per_server = Vec::new();
    for ((_, server), report) in servers.iter().zip(&reports) {
        let (line, value) = match report {
            Ok(report) if report.license.index >= index => {
                let counts: Vec<String> = report
                    .features
                    .iter()
                    .map(|f| format!("{}={}", f.name, f.count))
                    .collect();
                let mut line = format!("  #{}: serves it ({})", server.get(), counts.join(" "));
                for problem in &report.license.problems {
                    line.push_str(&format!("\n    cannot serve: {problem}"));
                }
                let features: serde_json::Map<String, serde_json::Value> = report
                    .features
                    .iter()
                    .map(|f| (f.name.clone(), json!(f.count)))
                    .collect();
                let value = json!({
                    "server": server.get(),
                    "serves": true,
                    "index": report.license.index,
                    "features": features,
                    "problems": report.license.problems,
                });
                (line, value)
            }
            Ok(report) => (
                format!(
                    "  #{}: not yet (at log index {}); it switches when it catches up",
                    server.get(),
                    report.applied_index
                ),
                json!({"server": server.get(), "serves": false, "index": report.license.index}),
            ),
            Err(why) => (
                format!(
                    "  #{}: unreachable ({why}); it switches when it is back",
                    server.get()
                ),
                json!({"server": server.get(), "serves": false, "error": why}),
            ),
        };
        lines.push(line);
        per_server.push(value);
    }
    let value = json!({
        "pushed": true,
        "changed": changed,
        "index": index,
        "server": active.get(),
        "by": &*by,
        "servers": per_server,
    });
    output::print(json, &format!("{}\n", lines.join("\n")), &value);
    Ok(ExitCode::SUCCESS)
}

/// Each server's status once it serves the license from `index` on, or as it is after
/// [`SWITCH_WAIT`].
async fn switched<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    index: u64,
    limit: Duration,
) -> Vec<Result<StatusReport, String>> {
    let start = Instant::now();
    loop {
        let mut reports = Vec::new();
        for (addr, server) in servers {
            reports.push(admin::status(transport, addr, *server, limit).await);
        }
        let done = reports
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.license.index >= index));
        if done || start.elapsed() >= SWITCH_WAIT {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
