//! `hal-net options check | push`: an administrator's rules for who may use which
//! feature (FlexNet's options file: INCLUDE, EXCLUDE, RESERVE, MAX, MAX_BORROW_HOURS,
//! GROUP, HOST_GROUP). `check` reads a file and reports every mistake with its line;
//! `push` sends it through the active server, which checks it against the license and
//! puts it in the log: every server applies the same rules from the same log index, so a
//! failover changes nothing. An empty file clears the options.
//!
//! Exit codes of `push`: 0 in force (or no change); 1 the file or the server refused it;
//! 3 no active server could be reached.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hal_core::options::{self, Options};
use hal_net::admin::{self, Push};
use serde_json::json;

use crate::admin_args::{AdminArgs, PushFailed};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum OptionsCommand {
    /// Read an options file and report every mistake with its line (against the
    /// license's features with --license).
    Check {
        /// The options file.
        #[arg(value_name = "FILE.opt")]
        file: PathBuf,
        /// The license whose features the rules must name.
        #[arg(long, value_name = "FILE.lic")]
        license: Option<PathBuf>,
    },
    /// Apply an options file on a running triad, without a restart: the active server
    /// checks it against the license and puts it in the log; every server applies it at
    /// once. An empty file clears the options.
    ///
    /// Needs the admin certificate (--cert/--key, or HAL_ADMIN_CERT/HAL_ADMIN_KEY). Exit
    /// codes: 0 in force (or no change), 1 refused, 3 no active server reached.
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The options file.
    #[arg(value_name = "FILE.opt")]
    file: PathBuf,
    #[command(flatten)]
    admin: crate::admin_args::AdminArgs,
}

pub fn run(command: OptionsCommand, json: bool) -> Result<ExitCode> {
    match command {
        OptionsCommand::Check { file, license } => check(&file, license.as_deref(), json),
        OptionsCommand::Push(args) => crate::runtime().and_then(|rt| rt.block_on(push(args, json))),
    }
}

/// The text of the options file at `path`, within its size limit.
fn read(path: &Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("options file {}", path.display()))?
        .len();
    if size > options::FILE_BYTES_MAX as u64 {
        bail!(
            "{}: the file is {size} bytes; an options file may have at most {}",
            path.display(),
            options::FILE_BYTES_MAX
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("options file {}", path.display()))
}

/// The file read, or every mistake of it, one a line.
fn parse(path: &Path, text: &str, features: Option<&[&str]>) -> Result<Options> {
    let name = path.display().to_string();
    let parsed = match features {
        Some(features) => options::parse(&name, text, features),
        None => options::parse_in_force(&name, text),
    };
    parsed.map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

fn check(path: &Path, license: Option<&Path>, json: bool) -> Result<ExitCode> {
    let text = read(path)?;
    let loaded = license.map(hal_net::license_file::load).transpose()?;
    let features: Option<Vec<&str>> = loaded
        .as_ref()
        .map(|l| l.license.features.iter().map(|f| f.name.as_str()).collect());
    let parsed = parse(path, &text, features.as_deref())?;
    let rules = parsed.rules().count();
    output::print(
        json,
        &format!("{}: {rules} rule(s), no mistake\n", path.display()),
        &json!({"file": path.display().to_string(), "rules": rules}),
    );
    Ok(ExitCode::SUCCESS)
}

async fn push(args: PushArgs, json: bool) -> Result<ExitCode> {
    let servers = args.admin.servers()?;
    let text = read(&args.file)?;
    // Its own mistakes first, named by this file; the server checks the features.
    parse(&args.file, &text, None)?;
    let transport = args.admin.transport()?;
    let by = AdminArgs::by();
    let id = AdminArgs::request_id()?;
    let file = args.file.display().to_string();
    let pushed = admin::push_options(
        &transport,
        &servers,
        (text.into(), by.clone()),
        id,
        args.admin.timeout,
    )
    .await;
    let (text, value) = match pushed {
        Ok(Push::Pushed {
            index,
            changed,
            by: server,
        }) => {
            let text = if changed {
                format!(
                    "pushed {file}: in force from log index {index} (#{} is active), as {by}",
                    server.get()
                )
            } else {
                format!("no change: {file} is the options file in force (since log index {index})")
            };
            let value = json!({"pushed": true, "changed": changed, "index": index, "server": server.get(), "by": &*by});
            (text, value)
        }
        Ok(Push::Refused { reason, by: server }) => {
            // The server names the file as it received it; name it as the operator did.
            let reason = reason.replace("pushed options:", &format!("{file}:"));
            let what = "the options in force are unchanged";
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
    output::print(json, &format!("{text}\n"), &value);
    Ok(ExitCode::SUCCESS)
}
