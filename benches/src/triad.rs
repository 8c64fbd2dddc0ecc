//! Three real `hal-net serve` processes on 127.0.0.1 for the load, failover and soak
//! tools: a fresh directory with a vendor key, a signed license of one feature with the
//! seats asked for, three configs (LAN timing, data synced to disk as in production),
//! and the processes ([`crate::servers`]), which can be killed with SIGKILL and started
//! again. The files are made by [`make_files`], which the nemesis shares for a triad on
//! addresses of its own.
//!
//! With `proxied`, every server is reached through a [`crate::proxy`] port (peers and
//! clients alike: the triad list names the proxy ports), so a server can be cut off from
//! everything without root.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use hal_core::server::Role;
use hal_core::timing::Timing;
use hal_net::addr::ServerAddr;
use hal_net::config::{ConfigFile, Security, TlsFiles};
use hal_net::tls::triad_dir;
use hal_net::tls_transport::{ClientTransport, TlsTransport};
use hal_net::transport::TcpTransport;
use hal_net::wire::StatusReport;

use crate::proxy::Proxy;
use crate::servers::{Launcher, Servers};

/// The feature the triad serves.
pub const FEATURE: &str = "bench";

/// How a triad is made.
#[derive(Debug, Clone)]
pub struct TriadOptions {
    /// The `hal-net` executable.
    pub hal_net: PathBuf,
    /// A directory of its own (made if absent; its old data is removed).
    pub dir: PathBuf,
    /// The first of three ports the servers listen on (the proxies take the next three).
    pub base_port: u16,
    /// Seats of [`FEATURE`].
    pub count: u32,
    /// Whether clients and peers reach each server through a proxy.
    pub proxied: bool,
    /// The servers' limit of client connections (hal-net's default if `None`).
    pub client_connections_max: Option<usize>,
    /// The servers' timers (written as overrides of the LAN profile).
    pub timing: Timing,
    /// TLS on every connection, as deployed (`false`: `insecure_plaintext`, to measure
    /// what TLS costs).
    pub tls: bool,
    /// Whether the servers keep their journal, as deployed (`false`: `[journal] enabled
    /// = false`, to measure what the journal costs).
    pub journal: bool,
}

/// What the three servers' journals hold on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalUsage {
    /// Bytes of every journal file.
    pub bytes: u64,
    /// Records in them.
    pub records: u64,
    /// Of those, answers to clients (`served`): the requests the triad answered.
    pub served: u64,
}

impl TriadOptions {
    /// What the servers are made with, beyond where they are.
    pub fn settings(&self) -> ServerSettings {
        ServerSettings {
            count: self.count,
            client_connections_max: self.client_connections_max,
            timing: self.timing,
            tls: self.tls,
            journal: self.journal,
        }
    }
}

/// What the servers of a test triad are made with, beyond where they are.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// Seats of [`FEATURE`].
    pub count: u32,
    /// The servers' limit of client connections (hal-net's default if `None`), also
    /// their limit per client address (every client of a measurement comes from one).
    pub client_connections_max: Option<usize>,
    /// The servers' timers (written as overrides of the LAN profile).
    pub timing: Timing,
    /// TLS on every connection, as deployed (`false`: `insecure_plaintext`).
    pub tls: bool,
    /// Whether the servers keep their journal, as deployed (`false`: `[journal] enabled
    /// = false`).
    pub journal: bool,
}

/// Where each server of a triad is, in slot order.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The triad list: what peers and clients dial (and the certificates name).
    pub named: [ServerAddr; 3],
    /// What each server listens on.
    pub listen: [SocketAddr; 3],
}

/// The files [`make_files`] made.
#[derive(Debug)]
pub struct TriadFiles {
    /// The transport the triad's clients use (TLS against its CA, or plaintext).
    pub transport: ClientTransport,
    /// Each server's config file, in slot order.
    pub configs: Vec<PathBuf>,
    /// The signed license the servers serve.
    pub license: PathBuf,
}

/// Makes the files of a triad placed at `placement` in `dir`: a vendor key, a signed
/// license of [`FEATURE`], the certificates (with `tls`) and three configs, each server
/// with its data in `dir/dataN`.
pub fn make_files(
    dir: &Path,
    placement: &Placement,
    settings: &ServerSettings,
) -> Result<TriadFiles> {
    let license = write_license(dir, settings.count)?;
    let transport = make_certificates(dir, &placement.named, settings.tls)?;
    let configs = write_configs(dir, placement, settings)?;
    Ok(TriadFiles {
        transport,
        configs,
        license,
    })
}

/// The status report of each server at `addrs` (`host:port`), or why there is none.
pub async fn statuses_at(
    transport: &ClientTransport,
    addrs: &[String],
) -> Vec<Result<StatusReport, String>> {
    let mut out = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let server = hal_net::transport::slot_in_path(addrs.len(), i);
        let limit = Duration::from_secs(2);
        out.push(hal_net::admin::status(transport, addr, server, limit).await);
    }
    out
}

/// The `hal-net` beside the running executable (`target/release/hal-net` for
/// `target/release/hal-load`).
pub fn sibling_hal_net() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let path = exe.with_file_name("hal-net");
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p hal-net) or pass --hal-net",
            path.display()
        );
    }
    Ok(path)
}

/// A running triad.
#[derive(Debug)]
pub struct Triad {
    options: TriadOptions,
    transport: ClientTransport,
    servers: Servers,
    proxies: Vec<Proxy>,
}

impl Triad {
    /// Makes the files and starts the three servers (and proxies), then waits for an
    /// active server.
    pub async fn start(options: TriadOptions) -> Result<Triad> {
        let dir = &options.dir;
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let listen = ServerId::ALL.map(|id| options.base_port + id.index() as u16);
        let mut proxies = Vec::new();
        let named = if options.proxied {
            for id in ServerId::ALL {
                let front = options.base_port + 3 + id.index() as u16;
                proxies.push(Proxy::start(id, front, listen[id.index()]).await?);
            }
            listen.map(|port| port + 3)
        } else {
            listen
        };
        let placement = Placement {
            named: named.map(ServerAddr::loopback),
            listen: listen.map(|port| SocketAddr::from(([127, 0, 0, 1], port))),
        };
        let files = make_files(dir, &placement, &options.settings())?;
        let launchers = vec![Launcher::direct(&options.hal_net); 3];
        let mut triad = Triad {
            servers: Servers::new(dir, files.configs, launchers),
            options,
            transport: files.transport,
            proxies,
        };
        for id in ServerId::ALL {
            triad.servers.spawn(id, true)?;
        }
        triad
            .wait_active(Duration::from_secs(20))
            .await
            .context("the triad did not elect an active server")?;
        // Two servers elect one without the third: a server that could not start (its
        // port taken, say) must not leave a measurement of two.
        triad.check_running()?;
        Ok(triad)
    }

    /// The directory of the triad's files (its license, vendor key, certificates).
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// The transport an administrator uses: TLS with the admin certificate, or
    /// plaintext.
    pub fn admin_transport(&self) -> Result<ClientTransport> {
        let Some(ca) = self.ca() else {
            return Ok(ClientTransport::Insecure(TcpTransport));
        };
        let tls = self.options.dir.join(TLS_DIR);
        let admin = (
            tls.join(triad_dir::ADMIN_CERT_FILE),
            tls.join(triad_dir::ADMIN_KEY_FILE),
        );
        let connector = hal_net::tls::client_connector(&ca, Some((&admin.0, &admin.1)))?;
        Ok(ClientTransport::Tls(TlsTransport::client(connector)))
    }

    /// The triad's CA certificate, if it runs TLS.
    pub fn ca(&self) -> Option<PathBuf> {
        self.options
            .tls
            .then(|| self.options.dir.join(TLS_DIR).join(triad_dir::CA_CERT_FILE))
    }

    /// The transport the triad's clients use (TLS against its CA, or plaintext).
    pub fn transport(&self) -> ClientTransport {
        self.transport.clone()
    }

    /// The servers' timers, which their clients should also use.
    pub fn timing(&self) -> Timing {
        self.options.timing
    }

    /// The license path clients use (`port@127.0.0.1;...`).
    pub fn license_path(&self) -> String {
        self.addrs()
            .iter()
            .map(|a| a.replace("127.0.0.1:", "") + "@127.0.0.1")
            .collect::<Vec<_>>()
            .join(";")
    }

    /// `host:port` of each server as clients dial it.
    pub fn addrs(&self) -> Vec<String> {
        let first = if self.options.proxied {
            self.options.base_port + 3
        } else {
            self.options.base_port
        };
        (0..3).map(|i| format!("127.0.0.1:{}", first + i)).collect()
    }

    /// The process id of a running server.
    pub fn pid(&self, id: ServerId) -> Option<u32> {
        self.servers.pid(id)
    }

    /// SIGKILL to server `id`, and waits for it to be gone.
    pub fn kill(&mut self, id: ServerId) -> Result<()> {
        self.servers.kill(id)
    }

    /// Starts server `id` (stopping it first with SIGKILL if it runs) from its data.
    pub fn restart(&mut self, id: ServerId) -> Result<()> {
        self.servers.restart(id)
    }

    /// SIGTERM to server `id`, waiting for it to exit; how long that took.
    pub fn terminate(&mut self, id: ServerId) -> Result<Duration> {
        self.servers.terminate(id)
    }

    /// Cuts server `id` off from its peers and clients (needs `proxied`): every byte to
    /// or from it is dropped, as a network partition would, until [`Triad::heal`].
    pub fn partition(&self, id: ServerId) -> Result<()> {
        self.proxy_set(|p| p.isolate(id))
    }

    /// Ends a [`Triad::partition`].
    pub fn heal(&self) -> Result<()> {
        self.proxy_set(Proxy::heal)
    }

    fn proxy_set(&self, f: impl Fn(&Proxy)) -> Result<()> {
        if self.proxies.is_empty() {
            bail!("the triad was started without proxies, so it cannot be partitioned");
        }
        self.proxies.iter().for_each(f);
        Ok(())
    }

    /// Each server's status report (or why there is none), asked directly (not through
    /// a proxy, so a cut-off server still answers).
    pub async fn statuses(&self) -> Vec<Result<StatusReport, String>> {
        let addrs: Vec<String> = (0..ServerId::ALL.len())
            .map(|i| format!("127.0.0.1:{}", self.options.base_port + i as u16))
            .collect();
        statuses_at(&self.transport, &addrs).await
    }

    /// Waits until a server reports itself active; returns which.
    pub async fn wait_active(&mut self, limit: Duration) -> Result<ServerId> {
        let deadline = Instant::now() + limit;
        loop {
            self.check_running()?;
            for report in self.statuses().await.into_iter().flatten() {
                if report.role == Role::Active {
                    return Ok(report.server);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no server became active within {limit:?} (logs in {})",
                    self.options.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails if a server that should run has exited (a bad config, a port in use), with
    /// the end of its log.
    pub fn check_running(&mut self) -> Result<()> {
        self.servers.check_running()
    }

    /// Resident memory (KiB) and CPU time used so far (user + system) of server `id`.
    pub fn usage(&self, id: ServerId) -> Option<crate::procstat::Usage> {
        crate::procstat::usage(self.pid(id)?)
    }

    /// The servers' journals on disk. Call it after [`Triad::stop`]: a running server
    /// may still hold records in its queue.
    pub fn journal_usage(&self) -> Result<JournalUsage> {
        let dirs: Vec<PathBuf> = ServerId::ALL
            .iter()
            .map(|id| {
                self.options
                    .dir
                    .join(format!("data{}", id.get()))
                    .join("journal")
            })
            .collect();
        let mut bytes = 0;
        for dir in &dirs {
            for file in fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
                bytes += file?.metadata()?.len();
            }
        }
        let journals = hal_net::journal::read::read(&dirs).map_err(anyhow::Error::msg)?;
        let entries = journals.iter().flat_map(|journal| &journal.entries);
        let (mut records, mut served) = (0, 0);
        for at in entries {
            records += 1;
            if matches!(at.entry.record, hal_core::record::Record::Served(_)) {
                served += 1;
            }
        }
        Ok(JournalUsage {
            bytes,
            records,
            served,
        })
    }

    /// SIGTERM to every server, then waits (SIGKILL after 5 s). Dropping the triad does
    /// the same.
    pub fn stop(&mut self) {
        self.servers.stop();
    }
}

/// The license file's name in a triad's directory.
pub const LICENSE_FILE: &str = "bench.lic";

/// Makes a vendor key in `dir` and the license of [`FEATURE`] it signs; returns the
/// license's path.
fn write_license(dir: &Path, count: u32) -> Result<PathBuf> {
    hal_net::keys::generate(dir, false)?;
    let signed = license_text(dir, count)?;
    let path = dir.join(LICENSE_FILE);
    hal_net::license_file::save(&path, signed.as_bytes())?;
    Ok(path)
}

/// The license of [`FEATURE`] with `count` seats, signed with the vendor key in `dir`.
pub fn license_text(dir: &Path, count: u32) -> Result<String> {
    let key = hal_net::keys::read_signing_key(&dir.join(hal_net::keys::PRIVATE_KEY_FILE))?;
    let text = format!(
        "FEATURE {FEATURE}\n{{\n  VENDOR = bench\n  COUNT = {count}\n  HAL_SERVERS = 3\n  \
         BORROW = 72\n}}\n"
    );
    let mut license = hal_core::license::parse("bench.lic", text.as_bytes())
        .map_err(|e| anyhow::anyhow!("the bench license does not parse: {e}"))?;
    license.sign(&key);
    Ok(hal_core::license::sign_text(&text, &license))
}

/// With `tls`, makes the triad's CA and certificates in `dir/tls` (for the addresses
/// clients dial, `named`) and returns the transport that trusts them; without, plaintext.
fn make_certificates(dir: &Path, named: &[ServerAddr], tls: bool) -> Result<ClientTransport> {
    if !tls {
        return Ok(ClientTransport::Insecure(TcpTransport));
    }
    let tls_dir = dir.join(TLS_DIR);
    let days = hal_net::tls::issue::LEAF_DAYS_DEFAULT;
    triad_dir::init(&tls_dir, named, days, false, SystemTime::now())?;
    let connector = hal_net::tls::client_connector(&tls_dir.join(triad_dir::CA_CERT_FILE), None)?;
    Ok(ClientTransport::Tls(TlsTransport::client(connector)))
}

/// Where a TLS triad's certificates are, in its directory.
pub const TLS_DIR: &str = "tls";

fn write_configs(
    dir: &Path,
    placement: &Placement,
    settings: &ServerSettings,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for id in ServerId::ALL {
        let mut file = ConfigFile::triad_member(
            placement.named.clone(),
            id,
            &dir.join(format!("data{}", id.get())),
            &dir.join(LICENSE_FILE),
            &dir.join(hal_net::keys::PUBLIC_KEY_FILE),
        );
        file.listen = Some(placement.listen[id.index()]);
        file.hostid = Some(
            hal_core::HostId::parse(&format!("bench-server{}", id.get()))
                .map_err(anyhow::Error::msg)?,
        );
        let path = dir.join(format!("server{}.toml", id.get()));
        file.client_connections_max = settings.client_connections_max;
        // Every client of a measurement comes from one address.
        file.client_connections_per_address_max = Some(
            settings
                .client_connections_max
                .unwrap_or(hal_net::config::CLIENT_CONNECTIONS_MAX_DEFAULT),
        );
        if settings.tls {
            let tls = dir.join(TLS_DIR);
            file.security = Security::Tls(TlsFiles {
                ca: tls.join(triad_dir::CA_CERT_FILE),
                cert: tls.join(triad_dir::server_cert_file(id)),
                key: tls.join(triad_dir::server_key_file(id)),
            });
        }
        file.timing = settings.timing;
        if !settings.journal {
            file.journal = Some(hal_net::config::JournalConfig {
                enabled: false,
                ..Default::default()
            });
        }
        fs::write(&path, file.render())
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}
