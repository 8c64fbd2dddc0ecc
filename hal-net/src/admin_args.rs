//! What every administrative verb (`remove`, `license push`, `options push`) is given:
//! where the servers are, the admin certificate, and how long to wait.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hal_core::ServerId;
use hal_core::protocol::ClientId;
use hal_net::addr::LicensePath;
use hal_net::client::{this_host, this_user};
use hal_net::tls_transport::ClientTransport;
use hal_net::transport::slot_in_path;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The license servers: `port@host` entries separated by `;` or `,`, in triad order.
    #[arg(long = "license-path", env = "HAL_LICENSE_PATH", value_name = "PATH")]
    license_path: String,
    /// The admin certificate (`admin.pem` from `hal-net tls init`).
    #[arg(long, env = "HAL_ADMIN_CERT", value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The admin certificate's key (`admin.key`).
    #[arg(long, env = "HAL_ADMIN_KEY", value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// How long to wait for each server's answer.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    security: crate::client_cmd::SecurityArgs,
}

impl AdminArgs {
    /// Each server's address and slot, in path order.
    pub fn servers(&self) -> Result<Vec<(String, ServerId)>> {
        let path = LicensePath::parse(&self.license_path).map_err(|e| {
            crate::output::Usage(format!("--license-path '{}': {e}", self.license_path))
        })?;
        let count = path.addrs().len();
        Ok(path
            .addrs()
            .iter()
            .enumerate()
            .map(|(i, entry)| (entry.connect_string(), slot_in_path(count, i)))
            .collect())
    }

    /// The connection that presents the admin certificate (plaintext with --insecure).
    pub fn transport(&self) -> Result<ClientTransport> {
        let admin = self.cert.as_deref().zip(self.key.as_deref());
        self.security.admin_transport(admin)
    }

    /// Who asks, as the servers record it: `user@host` of this machine.
    pub fn by() -> Arc<str> {
        format!("{}@{}", this_user(), this_host()).into()
    }

    /// A fresh number for the request, so that a server answers a retry of it, not a new
    /// one.
    pub fn request_id() -> Result<ClientId> {
        Ok(ClientId(
            getrandom::u64().context("no random number for the request's id")?,
        ))
    }
}

/// What an administrator's push (a license, an options file) failed with, printed as
/// `output` prints failures: refused by the active server `server` (its `reason`,
/// naming the file as the operator did; `what` says what is unchanged), or no active
/// server reached.
pub enum PushFailed<'a> {
    Refused {
        server: ServerId,
        reason: String,
        file: &'a str,
        what: &'a str,
    },
    Unreachable(String),
}

impl PushFailed<'_> {
    /// Prints the failure and gives its exit code (1 refused, 3 unreachable).
    pub fn report(self, json: bool) -> std::process::ExitCode {
        use crate::output;
        match self {
            PushFailed::Refused {
                server,
                reason,
                file,
                what,
            } => {
                let (message, fields) = if json {
                    (
                        reason,
                        serde_json::json!({"pushed": false, "server": server.get()}),
                    )
                } else {
                    let text = format!("#{} refused {file}:\n{reason}\n{what}", server.get());
                    (text, serde_json::json!({}))
                };
                output::fail(json, output::FAILED, &message, fields)
            }
            PushFailed::Unreachable(error) => output::fail(
                json,
                output::UNREACHABLE,
                &error,
                serde_json::json!({"pushed": false}),
            ),
        }
    }
}
