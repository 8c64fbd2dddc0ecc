//! `hal-net remove`: an administrator frees seats — one by its handle, or every seat of a
//! user (on a host, of a feature) — like FlexNet's `lmremove` and RLM's `rlmremove`. The
//! removal is a replicated log entry, so a failover keeps it; the holder's client is told
//! its seat was removed by an administrator at its next heartbeat; the servers' journals
//! record who removed what.
//!
//! Exit codes: 0 removed; 1 no such seat is held; 3 no active server could be reached.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use hal_core::protocol::RemoveTarget;
use hal_net::admin::{self, Removal};
use hal_net::client::parse_handle;
use serde_json::json;

use crate::admin_args::AdminArgs;
use crate::output;

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The seat to remove, by its handle as `hal-net status` shows it (`h17`).
    #[arg(required_unless_present = "user", conflicts_with = "user")]
    handle: Option<String>,
    /// Remove every seat (checked out or borrowed) of this user.
    #[arg(long)]
    user: Option<String>,
    /// Only the user's seats on this host.
    #[arg(long, requires = "user")]
    host: Option<String>,
    /// Only the user's seats of this feature.
    #[arg(long, requires = "user")]
    feature: Option<String>,
    #[command(flatten)]
    admin: crate::admin_args::AdminArgs,
}

pub async fn run(args: RemoveArgs, json: bool) -> Result<ExitCode> {
    let servers = args.admin.servers()?;
    let transport = args.admin.transport()?;
    let target = match (&args.handle, &args.user) {
        (Some(handle), _) => RemoveTarget::Handle(
            parse_handle(handle).map_err(|e| crate::output::Usage(e.to_string()))?,
        ),
        (None, Some(user)) => RemoveTarget::Holder {
            user: user.as_str().into(),
            host: args.host.as_deref().map(Arc::from),
            feature: args.feature.as_deref().map(Arc::from),
        },
        (None, None) => unreachable!("clap requires a handle or --user"),
    };
    let what = describe(&target);
    let by = AdminArgs::by();
    let id = AdminArgs::request_id()?;
    let limit = args.admin.timeout;
    let removal = admin::remove(&transport, &servers, (target, by.clone()), id, limit).await;
    let (code, text, value) = match removal {
        Ok(Removal::Removed {
            handles,
            by: server,
        }) => {
            let list: Vec<String> = handles.iter().map(ToString::to_string).collect();
            (
                ExitCode::SUCCESS,
                format!(
                    "removed {} ({what}) on #{}, as {by}",
                    list.join(" "),
                    server.get()
                ),
                json!({"removed": list, "server": server.get(), "by": &*by}),
            )
        }
        Ok(Removal::NothingHeld { by: server }) => {
            let message = format!(
                "nothing to remove: no seat is held by {what} (#{} is active)",
                server.get()
            );
            let fields = json!({"removed": [], "server": server.get()});
            return Ok(output::fail(json, output::FAILED, &message, fields));
        }
        Err(error) => {
            let fields = json!({"removed": []});
            return Ok(output::fail(
                json,
                output::UNREACHABLE,
                &error.to_string(),
                fields,
            ));
        }
    };
    output::print(json, &format!("{text}\n"), &value);
    Ok(code)
}

/// The seats a target names, for messages: `h17`, or `user ann on ws1 of cad`.
fn describe(target: &RemoveTarget) -> String {
    match target {
        RemoveTarget::Handle(handle) => format!("seat {handle}"),
        RemoveTarget::Holder {
            user,
            host,
            feature,
        } => {
            let mut text = format!("user {user}");
            if let Some(host) = host {
                text.push_str(&format!(" on {host}"));
            }
            if let Some(feature) = feature {
                text.push_str(&format!(" of {feature}"));
            }
            text
        }
    }
}
