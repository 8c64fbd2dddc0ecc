//! The `hal-net` binary: the HAL license server, its client verbs, and its operator and
//! vendor tools.
//!
//! Exit codes: 0 success; 1 the operation failed (an invalid license or config, a bad
//! signature, an unreadable file, a server that stopped on an error); 2 the command line
//! was wrong, or a license request was denied; 3 no license server could be reached.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin_args;
mod client_cmd;
mod dev_cluster;
mod discover_cmd;
mod license_cmd;
mod license_push_cmd;
mod options_cmd;
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::License(command) => license_cmd::run(command),
        Command::Options(command) => options_cmd::run(command),
        Command::Tls(command) => tls_cmd::run(command),
        Command::Hostid => hostid(),
        Command::Serve(args) => serve_cmd::run(args),
        Command::DevCluster(args) => dev_cluster::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Status(args) => runtime().and_then(|rt| rt.block_on(status_cmd::run(args))),
        Command::Discover(args) => runtime().and_then(|rt| rt.block_on(discover_cmd::run(args))),
        Command::Checkout(args) => runtime().and_then(|rt| rt.block_on(client_cmd::checkout(args))),
        Command::Borrow(args) => runtime().and_then(|rt| rt.block_on(client_cmd::borrow(args))),
        Command::Borrowed(args) => client_cmd::borrowed(&args),
        Command::Remove(args) => runtime().and_then(|rt| rt.block_on(remove_cmd::run(args))),
        Command::Return(args) => {
            runtime().and_then(|rt| rt.block_on(client_cmd::return_borrow(args)))
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // With its causes (`: No such file or directory`); a license with several
            // errors gives one line each.
            for line in with_causes(&error).lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
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

fn hostid() -> anyhow::Result<ExitCode> {
    let id = hal_net::hostid::this_machine()?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
