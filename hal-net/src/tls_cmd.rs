//! `hal-net tls init | renew | show`: the administrator's tools for the triad's
//! certificates. The library behind them is `hal_net::tls`; this file parses the command
//! line and tells the operator what was written and what to do with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;
use hal_core::ServerId;
use hal_net::addr::ServerAddr;
use hal_net::tls::inspect::{self, CertInfo};
use hal_net::tls::issue::{CA_DAYS, LEAF_DAYS_DEFAULT};
use hal_net::tls::triad_dir::{self, FileRole, Written};
use hal_net::tls::{CertRole, TRIAD_CA_VAR};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a triad CA and the certificates of its servers and of the admin.
    ///
    /// Writes DIR/ca.pem and ca.key (the CA), serverN.pem and serverN.key for each
    /// server, admin.pem and admin.key. Keys are mode 0600; DIR is created 0700. One
    /// address makes a single (non-HAL) server's certificates, slot 1.
    Init {
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The triad list, in its order (server #1 first), or one server.
        #[arg(
            long,
            value_name = "ADDR1,ADDR2,ADDR3",
            value_delimiter = ',',
            required = true
        )]
        servers: Vec<ServerAddr>,
        /// How many days the server and admin certificates are valid (the CA: ten years).
        #[arg(long, value_name = "N", default_value_t = LEAF_DAYS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(CA_DAYS)))]
        days: u32,
        /// Replace existing files. Certificates of the old CA stop verifying.
        #[arg(long)]
        force: bool,
    },
    /// Re-issue the server and admin certificates from the existing CA, before they expire.
    ///
    /// Keeps ca.pem and ca.key, so clients need nothing new. Then copy each server its
    /// new serverN.pem and serverN.key and restart the servers one at a time.
    Renew {
        /// The directory `tls init` wrote.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// How many days the new certificates are valid (not past the CA's expiry).
        #[arg(long, value_name = "N", default_value_t = LEAF_DAYS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(CA_DAYS)))]
        days: u32,
        /// New hosts for the servers, in triad order (default: those of the existing
        /// server certificates).
        #[arg(long, value_name = "ADDR1,ADDR2,ADDR3", value_delimiter = ',')]
        servers: Vec<ServerAddr>,
    },
    /// Print a certificate: subject, issuer, role, names, dates, days left, fingerprint.
    Show {
        /// A certificate in PEM (a CA bundle prints each of its certificates).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(command: TlsCommand, json: bool) -> Result<ExitCode> {
    match command {
        TlsCommand::Init {
            dir,
            servers,
            days,
            force,
        } => init(&dir, &servers, days, force, json),
        TlsCommand::Renew { dir, days, servers } => renew(&dir, &servers, days, json),
        TlsCommand::Show { file } => show(&file, json),
    }
}

/// What `init` or `renew` wrote, as `--json` prints it. Field names are a stable
/// interface.
fn written_json(dir: &Path, written: &Written) -> serde_json::Value {
    let role = |role: FileRole| -> String {
        let who = |of: CertRole| match of {
            CertRole::Server(id) => format!("server{}", id.get()),
            CertRole::Admin => "admin".to_owned(),
        };
        match role {
            FileRole::CaCert => "ca_cert".to_owned(),
            FileRole::CaKey => "ca_key".to_owned(),
            FileRole::Cert(of) => format!("{}_cert", who(of)),
            FileRole::Key(of) => format!("{}_key", who(of)),
        }
    };
    let files: Vec<serde_json::Value> = written
        .files
        .iter()
        .map(|f| json!({"path": f.path.display().to_string(), "role": role(f.role)}))
        .collect();
    let servers: Vec<serde_json::Value> = written
        .servers
        .iter()
        .map(|(id, host)| json!({"server": id.get(), "host": host}))
        .collect();
    json!({"dir": dir.display().to_string(), "files": files, "servers": servers,
        "not_after": written.leaf_not_after, "notes": written.notes})
}

fn init(
    dir: &Path,
    servers: &[ServerAddr],
    days: u32,
    force: bool,
    json: bool,
) -> Result<ExitCode> {
    let written = triad_dir::init(dir, servers, days, force, SystemTime::now())?;
    if json {
        println!("{}", written_json(dir, &written));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "wrote a new triad CA and its certificates into {}:",
        dir.display()
    );
    print_files(&written);
    println!("next steps:");
    for (id, _) in &written.servers {
        let addr = &servers[id.index()];
        println!(
            "  server {id} ({addr}): copy ca.pem, {cert} and {key} to it",
            cert = triad_dir::server_cert_file(*id),
            key = triad_dir::server_key_file(*id),
        );
    }
    println!(
        "  clients: copy ca.pem to them and `export {TRIAD_CA_VAR}=/path/to/ca.pem` (here: {})",
        dir.join(triad_dir::CA_CERT_FILE).display()
    );
    println!("  operators: admin.pem and admin.key (with ca.pem) for the administrative verbs");
    println!("  keep ca.key with the administrator, off the servers: it makes certificates");
    print_rotation(dir, &written);
    Ok(ExitCode::SUCCESS)
}

fn renew(dir: &Path, servers: &[ServerAddr], days: u32, json: bool) -> Result<ExitCode> {
    let servers = (!servers.is_empty()).then_some(servers);
    let written = triad_dir::renew(dir, servers, days, SystemTime::now())?;
    if json {
        println!("{}", written_json(dir, &written));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "renewed the server and admin certificates in {} (the CA is kept):",
        dir.display()
    );
    print_files(&written);
    for note in &written.notes {
        println!("note: {note}");
    }
    println!("next steps (clients need nothing new: ca.pem is unchanged):");
    for (id, host) in &written.servers {
        println!(
            "  server {id} ({host}): copy {} and {} to it",
            triad_dir::server_cert_file(*id),
            triad_dir::server_key_file(*id)
        );
    }
    println!(
        "  restart the servers one at a time, each once the one before is back in the \
         triad (`hal-net status`), so that two of three stay up throughout"
    );
    println!("  operators: the new admin.pem and admin.key");
    print_rotation(dir, &written);
    Ok(ExitCode::SUCCESS)
}

fn print_files(written: &Written) {
    let host_of = |id: ServerId| {
        written
            .servers
            .iter()
            .find(|(slot, _)| *slot == id)
            .map_or("", |(_, host)| host.as_str())
    };
    for file in &written.files {
        let what = match file.role {
            FileRole::CaCert => "the triad CA's certificate".to_owned(),
            FileRole::CaKey => "the CA's private key (mode 0600)".to_owned(),
            FileRole::Cert(CertRole::Server(id)) => {
                format!("server {id}'s certificate ({})", host_of(id))
            }
            FileRole::Key(CertRole::Server(id)) => format!("server {id}'s private key (mode 0600)"),
            FileRole::Cert(CertRole::Admin) => "the admin certificate".to_owned(),
            FileRole::Key(CertRole::Admin) => "the admin's private key (mode 0600)".to_owned(),
        };
        println!(
            "  {:<w$}  {what}",
            file.path.display(),
            w = path_width(written)
        );
    }
}

fn path_width(written: &Written) -> usize {
    written
        .files
        .iter()
        .map(|f| f.path.display().to_string().chars().count())
        .max()
        .unwrap_or(0)
}

fn print_rotation(dir: &Path, written: &Written) {
    println!(
        "the server and admin certificates expire on {}; before then, run `hal-net tls renew \
         --dir {}`",
        written.leaf_not_after,
        dir.display()
    );
}

/// `show --json`: the file and its certificates. Field names are a stable interface.
#[derive(Debug, Serialize)]
struct ShowView<'a> {
    file: String,
    certificates: &'a [CertInfo],
}

fn show(file: &Path, json: bool) -> Result<ExitCode> {
    let certs = inspect::describe_file(file, SystemTime::now())?;
    if json {
        let view = ShowView {
            file: file.display().to_string(),
            certificates: &certs,
        };
        println!("{}", serde_json::to_string(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (index, cert) in certs.iter().enumerate() {
        if certs.len() > 1 {
            println!(
                "{} (certificate {} of {}):",
                file.display(),
                index + 1,
                certs.len()
            );
        } else {
            println!("{}:", file.display());
        }
        print_cert(cert);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_cert(cert: &CertInfo) {
    let left = match cert.days_left {
        days if days < 0 => format!("EXPIRED, {days} days left"),
        days => format!("{days} days left"),
    };
    let rows = [
        ("subject", cert.subject.clone()),
        ("issuer", cert.issuer.clone()),
        ("role", cert.role.clone()),
        ("names", cert.sans.join(", ")),
        ("not before", cert.not_before.clone()),
        ("not after", format!("{} ({left})", cert.not_after)),
        ("SHA-256", cert.sha256_fingerprint.clone()),
    ];
    for (label, value) in rows {
        println!("  {:<11} {value}", format!("{label}:"));
    }
}
