//! The `hal-net` binary: the HAL license server, its client verbs, and its operator and
//! vendor tools.
//!
//! Every verb takes `--json` (one JSON object on standard output, errors included) and
//! exits with the codes of [`output`]: 0 done, 1 failed, 2 denied, 3 no server answered,
//! 4 and 5 a degraded or not serving triad (`status`), 64 a wrong command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

mod admin_args;
mod client_cmd;
mod dev_cluster;
mod discover_cmd;
mod license_cmd;
mod license_push_cmd;
mod options_cmd;
mod output;
mod remove_cmd;
mod report_cmd;
mod serve_cmd;
mod signals;
mod status_cmd;
mod tls_cmd;

/// HAL: a high-availability license server triad and its tools.
#[derive(Debug, Parser)]
#[command(name = "hal-net", version, about, long_about = None)]
struct Cli {
    /// Print one JSON object on standard output instead of text, errors included
    /// (`{"error": "...", "exit_code": N}`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a license server (one member of a triad, or a single server).
    Serve(serve_cmd::ServeArgs),
    /// Show each server of a triad and the seats in use.
    Status(status_cmd::StatusArgs),
    /// List the license servers that answer discovery on this LAN (UDP broadcast or
    /// multicast), and the license path they make.
    Discover(discover_cmd::DiscoverArgs),
    /// Check out a seat and hold it (heartbeating) until the hold ends or Ctrl-C.
    Checkout(client_cmd::CheckoutArgs),
    /// Borrow a seat for some hours (from server #1 only).
    Borrow(client_cmd::BorrowArgs),
    /// Return a borrowed seat early.
    Return(client_cmd::ReturnArgs),
    /// Free seats as an administrator: one by its handle, or every seat of a user (on a
    /// host, of a feature). Needs the admin certificate. The holder is told.
    Remove(remove_cmd::RemoveArgs),
    /// List this machine's borrowed seats, each proved offline with the triad's CA.
    Borrowed(client_cmd::BorrowedArgs),
    /// Print this machine's HostID (for HOSTID lines in a license).
    Hostid,
    /// Start a demo triad on 127.0.0.1 with a fresh key and license (the quickstart).
    DevCluster(dev_cluster::DevClusterArgs),
    /// Usage accounting from the servers' journals: peak seats, seat-hours per user and
    /// host, borrows, denials, failovers and time without an active server.
    ///
    /// Give the journal directories (or data directories) of one, two or all three
    /// servers: each seat change is journaled by every server and counted once. A seat
    /// still held at the window's end counts up to it; a request retried on several
    /// servers counts once; a server that ended without a `stop` record (kill -9) is
    /// dated by its peers' links going down, else by its own last record.
    ///
    /// Times are on one clock, as `hal-sim check` aligns them: #1's, or the other two
    /// servers' when they agree and #1's does not. Each server's records are moved onto
    /// it with the clock offsets the servers journaled to each other; the output names
    /// the clock and each server's offset from it.
    Report(report_cmd::ReportArgs),
    /// License files: make keys, sign, verify, show (vendor tools); push one to a running
    /// triad (administrators).
    #[command(subcommand)]
    License(license_cmd::LicenseCommand),
    /// The options file: who may use which feature (INCLUDE, EXCLUDE, RESERVE, MAX, ...):
    /// check one, push one to a running triad (administrators).
    #[command(subcommand)]
    Options(options_cmd::OptionsCommand),
    /// The triad's certificates: make a CA and certificates, renew them, show one.
    #[command(subcommand)]
    Tls(tls_cmd::TlsCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    let json = cli.json;
    let result = match cli.command {
        Command::License(command) => license_cmd::run(command, json),
        Command::Options(command) => options_cmd::run(command, json),
        Command::Tls(command) => tls_cmd::run(command, json),
        Command::Hostid => hostid(json),
        Command::Serve(args) => serve_cmd::run(args),
        Command::DevCluster(args) => dev_cluster::run(args, json),
        Command::Report(args) => report_cmd::run(args, json),
        Command::Status(args) => runtime().and_then(|rt| rt.block_on(status_cmd::run(args, json))),
        Command::Discover(args) => {
            runtime().and_then(|rt| rt.block_on(discover_cmd::run(args, json)))
        }
        Command::Checkout(args) => {
            runtime().and_then(|rt| rt.block_on(client_cmd::checkout(args, json)))
        }
        Command::Borrow(args) => {
            runtime().and_then(|rt| rt.block_on(client_cmd::borrow(args, json)))
        }
        Command::Borrowed(args) => client_cmd::borrowed(&args, json),
        Command::Remove(args) => runtime().and_then(|rt| rt.block_on(remove_cmd::run(args, json))),
        Command::Return(args) => {
            runtime().and_then(|rt| rt.block_on(client_cmd::return_borrow(args, json)))
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let code = if error.downcast_ref::<output::Usage>().is_some() {
                output::USAGE
            } else {
                output::FAILED
            };
            // With its causes (`: No such file or directory`); a license with several
            // errors gives one line each.
            output::fail(json, code, &with_causes(&error), json!({}))
        }
    }
}

/// A command line clap could not take: help and `--version` print and exit 0; anything
/// else is a usage error, exit 64 (EX_USAGE), with `--json` as one object.
fn usage(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    // The line did not parse, so whether it asked for JSON is read off it directly.
    let json = std::env::args_os().skip(1).any(|arg| arg == "--json");
    if json {
        let message = error.render().to_string();
        let first = message.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        return output::fail(true, output::USAGE, first, json!({"usage": message}));
    }
    let _ = error.print();
    ExitCode::from(output::USAGE)
}

/// `error: cause: cause ...`, leaving out a cause whose text the message before it already
/// ends with (an error that says its source in its own message, as most of ours do).
fn with_causes(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// A runtime for the client verbs: one thread is plenty.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn hostid(json: bool) -> anyhow::Result<ExitCode> {
    let id = hal_net::hostid::this_machine()?;
    output::print(json, &format!("{id}\n"), &json!({"hostid": id.to_string()}));
    Ok(ExitCode::SUCCESS)
}
