//! `hal-net dev-cluster --dir DIR [--base-port P]`: the quickstart. Makes a vendor key, a
//! signed demo license and three server configs in DIR, starts three `hal-net serve`
//! children on 127.0.0.1 ports P..P+2, and stops them on Ctrl-C or SIGTERM.
//!
//! Run again on the same DIR, it keeps the key and the servers' data (so seats survive a
//! restart of the whole demo) and rewrites the license and configs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use std::net::SocketAddr;

use hal_core::license::sign_text;
use hal_core::{HostId, ServerId};
use hal_net::addr::ServerAddr;
use hal_net::config::{ConfigFile, Security, TlsFiles};
use hal_net::keys;
use hal_net::tls::triad_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::{output, signals};
use serde_json::json;

#[derive(Debug, Args)]
pub struct DevClusterArgs {
    /// The directory for the key, license, configs, logs, pid files and data.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The first of three consecutive ports on 127.0.0.1.
    #[arg(long, default_value_t = 6200, value_parser = clap::value_parser!(u16).range(1..65534))]
    base_port: u16,
    /// The first of three consecutive ports for the servers' status pages and metrics
    /// (`[http]`); default: the base port plus 100 (6300). 0: none.
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..65534))]
    http_base_port: Option<u16>,
}

/// The demo license before signing.
const DEMO_LICENSE: &str = "\
# The dev-cluster's demo license: five floating seats of HAL, served by the triad.
FEATURE HAL
{
  VENDOR = demo
  COUNT = 5
  HAL_SERVERS = 3
  BORROW = 72          # borrowing allowed, up to three days (only while server #1 is active)
  COMMENT = \"made by hal-net dev-cluster\"
}
";

/// How long children get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: DevClusterArgs, json: bool) -> Result<ExitCode> {
    crate::serve_cmd::init_logging(crate::serve_cmd::LogFormat::Text);
    let dir = &args.dir;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let license = write_license(&dir)?;
    let ports: Vec<u16> = (0..3).map(|i| args.base_port + i).collect();
    let http_base = args
        .http_base_port
        .unwrap_or_else(|| args.base_port.saturating_add(100));
    let http: Vec<u16> = match http_base {
        0 | 65534.. => Vec::new(),
        base => (0..3).map(|i| base + i).collect(),
    };
    make_certificates(&dir, &ports)?;
    let configs = write_configs(&dir, &ports, &http)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(supervise(&dir, &configs, &ports, (&license, json, &http)))
}

/// Makes the key (unless there is one) and the signed license; returns its path.
fn write_license(dir: &Path) -> Result<PathBuf> {
    let private = dir.join(keys::PRIVATE_KEY_FILE);
    if !private.exists() {
        keys::generate(dir, false)?;
    }
    let key = keys::read_signing_key(&private)?;
    let path = dir.join("demo.lic");
    let mut license =
        hal_core::license::parse(&path.display().to_string(), DEMO_LICENSE.as_bytes())
            .map_err(|e| anyhow::anyhow!("the built-in demo license does not parse: {e}"))?;
    license.sign(&key);
    let signed = sign_text(DEMO_LICENSE, &license);
    hal_net::license_file::save(&path, signed.as_bytes())?;
    Ok(path)
}

/// The directory of the demo triad's CA and certificates.
const TLS_DIR: &str = "tls";

/// Makes the triad's CA and certificates in `dir/tls`, unless they are there from an
/// earlier run (every server is 127.0.0.1, so they fit whatever the ports).
fn make_certificates(dir: &Path, ports: &[u16]) -> Result<()> {
    let tls_dir = dir.join(TLS_DIR);
    if tls_dir.join(triad_dir::CA_CERT_FILE).exists() {
        return Ok(());
    }
    triad_dir::init_loopback(&tls_dir, ports)?;
    Ok(())
}

/// Writes `server1.toml`..`server3.toml`, with an `[http]` listener at each of `http`.
fn write_configs(dir: &Path, ports: &[u16], http: &[u16]) -> Result<Vec<PathBuf>> {
    let triad: [ServerAddr; 3] = ports
        .iter()
        .map(|&p| ServerAddr::loopback(p))
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| anyhow::anyhow!("a triad has three ports"))?;
    let mut paths = Vec::new();
    for (i, &port) in ports.iter().enumerate() {
        let id = ServerId::new(u8::try_from(i + 1)?).context("a triad has three servers")?;
        let data_dir = PathBuf::from(format!("data{}", id.get()));
        let mut file = ConfigFile::triad_member(
            triad.clone(),
            id,
            &data_dir,
            Path::new("demo.lic"),
            Path::new(keys::PUBLIC_KEY_FILE),
        );
        file.listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        file.http = http.get(i).map(|&port| hal_net::config::HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
        });
        let tls = Path::new(TLS_DIR);
        file.security = Security::Tls(TlsFiles {
            ca: tls.join(triad_dir::CA_CERT_FILE),
            cert: tls.join(triad_dir::server_cert_file(id)),
            key: tls.join(triad_dir::server_key_file(id)),
        });
        let hostid = format!("dev-server{}", id.get());
        file.hostid = Some(HostId::parse(&hostid).map_err(anyhow::Error::msg)?);
        let path = dir.join(format!("server{}.toml", id.get()));
        fs::write(&path, file.render())
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

async fn supervise(
    dir: &Path,
    configs: &[PathBuf],
    ports: &[u16],
    (license, json, http): (&Path, bool, &[u16]),
) -> Result<ExitCode> {
    // Before any child exists, so that a stop signal always stops them too.
    let stop = signals::stop();
    let exe = std::env::current_exe().context("cannot find the hal-net executable")?;
    let mut children: Vec<Child> = Vec::new();
    let mut started = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let id = i + 1;
        let log_path = dir.join(format!("server{id}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        // Always `--join-empty`: dev-cluster writes each config and its data_dir itself, so
        // there is no path to mistype, and the flag only permits emptiness: a demo run
        // again on its directory starts from the servers' data as any restart does.
        let child = Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--join-empty")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start server #{id}"))?;
        let Some(pid) = child.id() else {
            bail!("server #{id} exited at once; see {}", log_path.display());
        };
        let pid_path = dir.join(format!("server{id}.pid"));
        fs::write(&pid_path, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", pid_path.display()))?;
        children.push(child);
        let page = http.get(i).map(|port| format!("http://127.0.0.1:{port}/"));
        started.push(json!({"server": id, "address": format!("127.0.0.1:{}", ports[i]), "status_page": page,
            "pid": pid, "log": log_path.display().to_string(), "config": config.display().to_string()}));
    }
    let path: Vec<String> = ports.iter().map(|p| format!("{p}@127.0.0.1")).collect();
    let path = path.join(";");
    let logs = |id: usize| dir.join(format!("server{id}.log"));
    if json {
        let tls = dir.join(TLS_DIR);
        println!(
            "{}",
            json!({"result": "started", "dir": dir.display().to_string(),
                "license": license.display().to_string(), "license_path": path,
                "ca": tls.join(triad_dir::CA_CERT_FILE).display().to_string(),
                "admin_cert": tls.join("admin.pem").display().to_string(),
                "admin_key": tls.join("admin.key").display().to_string(),
                "servers": started})
        );
    } else {
        print_started(dir, ports, license, &path);
        if let Some(first) = http.first() {
            println!(
                "status pages: http://127.0.0.1:{first}/ (#1), :{} (#2), :{} (#3); metrics at /metrics",
                first + 1,
                first + 2
            );
        }
    }
    let died = watch(&mut children, stop, (&logs, json)).await;
    stop_all(&mut children).await;
    for id in 1..=3 {
        let _ = fs::remove_file(dir.join(format!("server{id}.pid")));
    }
    if died {
        let message = format!(
            "all three servers have exited; their logs are {}/server1.log ...",
            dir.display()
        );
        return Ok(output::fail(
            json,
            output::FAILED,
            &message,
            json!({"result": "died"}),
        ));
    }
    output::print(
        json,
        "dev-cluster: stopped\n",
        &json!({"result": "stopped"}),
    );
    Ok(ExitCode::SUCCESS)
}

/// What the demo started and what to try next, for a person.
fn print_started(dir: &Path, ports: &[u16], license: &Path, path: &str) {
    println!(
        "dev-cluster: three servers on 127.0.0.1 ports {}..{} (logs: {}/server1.log ...)",
        ports[0],
        ports[2],
        dir.display()
    );
    println!("license: {}", license.display());
    println!("license path: {path}");
    println!(
        "TLS: the triad's CA and certificates are in {}/{TLS_DIR} (admin.pem/admin.key for operators)",
        dir.display()
    );
    println!();
    println!("in another terminal:");
    println!("  export HAL_LICENSE_PATH='{path}'");
    println!(
        "  export HAL_TRIAD_CA={}/{TLS_DIR}/{}",
        dir.display(),
        triad_dir::CA_CERT_FILE
    );
    println!("  hal-net status");
    println!("  hal-net checkout HAL --hold 60s");
    println!(
        "  kill -9 $(cat {}/server1.pid)   # then check out again: #2 serves",
        dir.display()
    );
    println!();
    println!("Ctrl-C stops the three servers; dev-cluster also ends when all three have exited.");
}

/// How many lines of a server's log to show when it exits on its own.
const LOG_TAIL_LINES: usize = 5;

/// Waits for the stop signal, reporting children that exit on the way (killing one is
/// part of the demo; one that exits with an error shows its log's last lines). Returns
/// `true` when all three have exited, which ends the demo: nothing is left to serve.
async fn watch(
    children: &mut [Child],
    stop: impl std::future::Future<Output = ()>,
    (log_of, json): (&dyn Fn(usize) -> PathBuf, bool),
) -> bool {
    tokio::pin!(stop);
    let mut reported = [false; 3];
    loop {
        tokio::select! {
            () = &mut stop => return false,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        for (i, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait()
                && !reported[i]
            {
                reported[i] = true;
                let id = i + 1;
                let log = log_of(id);
                let tail = if status.code().is_some_and(|code| code != 0) {
                    log_tail(&log, LOG_TAIL_LINES)
                } else {
                    Vec::new()
                };
                if json {
                    println!(
                        "{}",
                        json!({"result": "exited", "server": id, "status": status.to_string(),
                            "log": log.display().to_string(), "log_tail": tail})
                    );
                } else {
                    println!("dev-cluster: server #{id} exited ({status})");
                    for line in &tail {
                        println!("  {}: {line}", log.display());
                    }
                }
            }
        }
        if reported.iter().all(|&r| r) {
            return true;
        }
    }
}

/// The last `lines` lines of the file at `path` (none if it cannot be read).
fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// SIGTERM to each child, then SIGKILL to any still running after the grace period.
async fn stop_all(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}
