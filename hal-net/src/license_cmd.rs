//! `hal-net license keygen | sign | verify | show`: the vendor's tools for license files;
//! `hal-net license push`: an administrator's change of the license a triad serves.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use hal_core::license::{Feature, License, ServeMode, Validity, sign_text};
use hal_net::keys;
use hal_net::license_file::{self, LoadedLicense};
use serde::Serialize;
use serde_json::json;

use crate::output::{self, Usage};

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Make a vendor key pair: DIR/vendor.key (private, mode 0600) and DIR/vendor.pub.
    Keygen {
        /// The directory to write the keys into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace existing keys. Licenses signed with the old key stop verifying.
        #[arg(long)]
        force: bool,
    },
    /// Fill in each feature's KEY, keeping the file's comments and layout.
    ///
    /// The output replaces OUT.lic through a temporary file and a rename, keeping its
    /// permissions; a symbolic link is followed. The --key file is never written.
    Sign {
        /// The vendor's private key (vendor.key).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The license file to sign.
        #[arg(value_name = "IN.lic")]
        input: PathBuf,
        /// Where to write the signed license (`-` for standard output; may be IN.lic).
        #[arg(short, long, value_name = "OUT.lic")]
        output: PathBuf,
    },
    /// Check every feature's signature; exit 0 only if all verify and a server can serve it.
    Verify {
        /// The vendor's public key (vendor.pub).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// The license file to check.
        #[arg(value_name = "FILE.lic")]
        file: PathBuf,
    },
    /// Change the license a running triad serves, without a restart: the active server
    /// checks FILE and puts it in the log, and every server switches to it at once.
    ///
    /// Needs the admin certificate (--cert/--key, or HAL_ADMIN_CERT/HAL_ADMIN_KEY). Held
    /// seats are kept. Exit codes: 0 in force (or no change), 1 refused, 3 no active
    /// server reached.
    Push(crate::license_push_cmd::PushArgs),
    /// Print the features of a license file.
    Show {
        /// The license file to show.
        #[arg(value_name = "FILE.lic")]
        file: PathBuf,
    },
}

pub fn run(command: LicenseCommand, json: bool) -> Result<ExitCode> {
    match command {
        LicenseCommand::Keygen { out, force } => keygen(&out, force, json),
        LicenseCommand::Sign { key, input, output } => sign(&key, &input, &output, json),
        LicenseCommand::Verify { pubkey, file } => verify(&pubkey, &file, json),
        LicenseCommand::Show { file } => show(&file, json),
        LicenseCommand::Push(args) => {
            crate::runtime().and_then(|rt| rt.block_on(crate::license_push_cmd::run(args, json)))
        }
    }
}

fn keygen(out: &Path, force: bool, json: bool) -> Result<ExitCode> {
    let (private, public) = keys::generate(out, force)?;
    let text = format!(
        "wrote {} (private: keep it secret, mode 0600)\nwrote {} (public: give it to license server operators)\n",
        private.display(),
        public.display()
    );
    let value = json!({"private_key": private.display().to_string(),
        "public_key": public.display().to_string()});
    output::print(json, &text, &value);
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> Result<LoadedLicense> {
    Ok(license_file::load(path)?)
}

fn sign(key_path: &Path, input: &Path, output: &Path, json: bool) -> Result<ExitCode> {
    let to_stdout = output == Path::new("-");
    if to_stdout && json {
        return Err(Usage(
            "--json and -o - both want standard output: write the license to a file".into(),
        )
        .into());
    }
    if !to_stdout && same_file(key_path, output) {
        anyhow::bail!(
            "{} is the vendor key given with --key; sign will not write a license over it",
            output.display()
        );
    }
    let key = keys::read_signing_key(key_path)?;
    if keys::readable_by_others(key_path) {
        eprintln!(
            "warning: {} can be read by other users; `chmod 600` it",
            key_path.display()
        );
    }
    let LoadedLicense { text, mut license } = load(input)?;
    for error in license.serve_errors() {
        eprintln!("warning: {error}");
    }
    license.sign(&key);
    let signed = sign_text(&text, &license);
    let names: Vec<&str> = license.features.iter().map(|f| f.name.as_str()).collect();
    if to_stdout {
        std::io::stdout().write_all(signed.as_bytes())?;
    } else {
        license_file::save(output, signed.as_bytes())?;
    }
    let said = format!(
        "signed {} feature(s) ({}) into {}",
        names.len(),
        names.join(", "),
        output.display()
    );
    if json {
        let value = json!({"signed": names, "file": output.display().to_string()});
        println!("{value}");
    } else {
        eprintln!("{said}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `a` and `b` name one existing file, through symbolic links, `..` or hard
/// links.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(a), std::fs::canonicalize(b))
        && a == b
    {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    false
}

fn verify(pubkey: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let public = keys::read_verifying_key(pubkey)?;
    let LoadedLicense { license, .. } = load(file)?;
    let today = time::OffsetDateTime::now_utc().date();
    let mut bad = 0;
    let mut text = String::new();
    let mut features = Vec::new();
    for (feature, verdict) in license.verify(&public) {
        let place = format!("{}:{}", license.source_name, feature.origin.line);
        let error = verdict.err().map(|reason| reason.to_string());
        match &error {
            None => {
                let _ = writeln!(text, "ok   FEATURE {} ({place})", feature.name);
            }
            Some(reason) => {
                bad += 1;
                let _ = writeln!(text, "BAD  FEATURE {} ({place}): {reason}", feature.name);
            }
        }
        let note = validity_note(feature, today);
        if let Some(note) = &note {
            let _ = writeln!(text, "     note: {note}");
        }
        features.push(
            json!({"feature": feature.name.as_str(), "line": feature.origin.line,
            "verified": error.is_none(), "error": error, "note": note}),
        );
    }
    let serve_errors: Vec<String> = license
        .serve_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    for error in &serve_errors {
        let _ = writeln!(text, "BAD  {error}");
    }
    let total = license.features.len();
    let unservable = "no server can serve the file as it is (see BAD above)";
    let failed = match (bad, serve_errors.is_empty()) {
        (0, true) => None,
        (0, false) => Some(format!("all {total} feature(s) verify, but {unservable}")),
        (_, true) => Some(format!("{bad} of {total} feature(s) did not verify")),
        (_, false) => Some(format!(
            "{bad} of {total} feature(s) did not verify, and {unservable}"
        )),
    };
    let fields = json!({"file": license.source_name, "verified": failed.is_none(),
        "features": features, "serve_errors": serve_errors});
    match failed {
        None => {
            let _ = writeln!(
                text,
                "verified: all {total} feature(s) carry a valid vendor signature"
            );
            output::print(json, &text, &fields);
            Ok(ExitCode::SUCCESS)
        }
        Some(failed) if json => Ok(output::fail(true, output::FAILED, &failed, fields)),
        Some(failed) => {
            println!("{text}FAILED: {failed}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A note when a feature is not in force today.
fn validity_note(feature: &Feature, today: time::Date) -> Option<String> {
    match feature.validity_on(today) {
        Validity::InForce => None,
        Validity::Expired { end } => Some(format!("expired on {end} (END)")),
        Validity::NotYet { start } => Some(format!("not valid before {start} (START)")),
    }
}

/// One feature as `show --json` prints it. Field names are a stable interface.
#[derive(Debug, Serialize)]
struct FeatureView<'a> {
    feature: &'a str,
    line: u32,
    vendor: &'a str,
    version: Option<&'a str>,
    count: Option<u32>,
    hal: bool,
    borrow_hours_max: Option<u32>,
    start: Option<String>,
    end: Option<String>,
    hostids: Vec<&'a str>,
    licensee: Option<&'a str>,
    comment: Option<&'a str>,
    signed: bool,
}

impl<'a> From<&'a Feature> for FeatureView<'a> {
    fn from(f: &'a Feature) -> FeatureView<'a> {
        FeatureView {
            feature: f.name.as_str(),
            line: f.origin.line,
            vendor: f.vendor.as_str(),
            version: f.version.as_ref().map(|v| v.as_str()),
            count: f.count,
            hal: f.hal,
            borrow_hours_max: f.borrow_hours_max,
            start: f.start.map(|d| d.to_string()),
            end: f.end.map(|d| d.to_string()),
            hostids: f.hostids.iter().map(|h| h.as_str()).collect(),
            licensee: f.licensee.as_deref(),
            comment: f.comment.as_deref(),
            signed: f.key.is_some(),
        }
    }
}

/// The whole license as `show --json` prints it.
#[derive(Debug, Serialize)]
struct LicenseView<'a> {
    file: &'a str,
    /// "hal", "single", or null when no server can serve the file as it is.
    serve_mode: Option<&'static str>,
    serve_error: Option<String>,
    features: Vec<FeatureView<'a>>,
}

fn show(file: &Path, json: bool) -> Result<ExitCode> {
    let LoadedLicense { license, .. } = load(file)?;
    let serve = license.serve_mode();
    if json {
        let view = LicenseView {
            file: &license.source_name,
            serve_mode: serve.as_ref().ok().map(|mode| match mode {
                ServeMode::Hal => "hal",
                ServeMode::Single => "single",
            }),
            serve_error: serve.as_ref().err().map(|e| e.to_string()),
            features: license.features.iter().map(FeatureView::from).collect(),
        };
        println!("{}", serde_json::to_string(&view)?);
    } else {
        let served = match &serve {
            Ok(ServeMode::Hal) => "served by a HAL triad of three servers".to_string(),
            Ok(ServeMode::Single) => "served by a single server".to_string(),
            Err(error) => format!("no server can serve it as it is: {error}"),
        };
        println!(
            "{}: {} feature(s), {served}",
            license.source_name,
            license.features.len()
        );
        print!("{}", table(&license));
    }
    Ok(ExitCode::SUCCESS)
}

/// The features as a text table, one row each.
fn table(license: &License) -> String {
    let dash = || "-".to_string();
    let header = [
        "FEATURE", "VENDOR", "VERSION", "COUNT", "HAL", "BORROW", "START", "END", "HOSTIDS",
        "SIGNED",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for f in &license.features {
        let hostids: Vec<&str> = f.hostids.iter().map(|h| h.as_str()).collect();
        rows.push(vec![
            f.name.to_string(),
            f.vendor.to_string(),
            f.version.as_ref().map_or_else(dash, |v| v.to_string()),
            f.count.map_or("uncounted".to_string(), |n| n.to_string()),
            if f.hal { "yes" } else { "no" }.to_string(),
            f.borrow_hours_max
                .map_or("no".to_string(), |h| format!("{h}h")),
            f.start.map_or_else(dash, |d| d.to_string()),
            f.end.map_or_else(dash, |d| d.to_string()),
            if hostids.is_empty() {
                dash()
            } else {
                hostids.join(",")
            },
            if f.key.is_some() { "yes" } else { "no" }.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
