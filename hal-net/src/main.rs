//! The `hal-net` binary: the HAL license server and its operator and vendor tools.
//!
//! Exit codes: 0 success; 1 the operation failed (an invalid license, a bad signature, an
//! unreadable file); 2 the command line was wrong.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod license_cmd;

/// HAL: a high-availability license server triad and its tools.
#[derive(Debug, Parser)]
#[command(name = "hal-net", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Vendor tools for license files: make keys, sign, verify, show.
    #[command(subcommand)]
    License(license_cmd::LicenseCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::License(command) => license_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` adds the causes (`: No such file or directory`); a license with several
            // errors gives one line each.
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
