//! The system under test: three `hal-net serve` processes with TLS on, as deployed, one
//! in each namespace of a [`Network`], each under a steppable wall clock ([`Clocks`]),
//! and what is needed to ask them how they are. Dropping the lab stops the servers and
//! then removes the network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use hal_core::ServerId;
use hal_core::server::Role;
use hal_net::addr::ServerAddr;
use hal_net::client::Options;
use hal_net::tls_transport::ClientTransport;
use hal_net::wire::StatusReport;
use tokio::time::Instant;

use super::clock::Clocks;
use crate::netns::Network;
use crate::servers::{Launcher, Servers};
use crate::triad::{self, Placement, ServerSettings, TLS_DIR};

/// The port every server listens on, each at its own address.
pub const PORT: u16 = 6200;

/// How long one status question may take.
const STATUS_LIMIT: Duration = Duration::from_secs(2);

/// The running servers and their network.
#[derive(Debug)]
pub struct Lab {
    // Dropped in this order: the servers stop before their network goes.
    pub servers: Servers,
    pub network: Network,
    pub clocks: Clocks,
    pub dir: PathBuf,
    pub license: PathBuf,
    transport: ClientTransport,
    timing: hal_core::timing::Timing,
}

impl Lab {
    /// Builds the network of run `run`, makes the triad's files in `dir` (which exists)
    /// and starts the servers from `hal_net`.
    pub async fn start(
        run: u32,
        dir: &Path,
        hal_net: &Path,
        settings: &ServerSettings,
    ) -> Result<Lab> {
        let network = Network::build(run).await?;
        let placement = Placement {
            named: ServerId::ALL
                .map(|id| ServerAddr::parse(&format!("{PORT}@{}", network.server_ip(id))))
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?
                .try_into()
                .map_err(|_| anyhow::anyhow!("a triad has three servers"))?,
            listen: ServerId::ALL.map(|id| SocketAddr::from((network.server_ip(id), PORT))),
        };
        let files = triad::make_files(dir, &placement, settings)?;
        let clocks = Clocks::make(dir)?;
        let launchers = ServerId::ALL
            .iter()
            .map(|&id| Launcher {
                program: "ip".into(),
                args: network
                    .exec_args(id)
                    .into_iter()
                    .map(Into::into)
                    .chain([hal_net.as_os_str().to_owned()])
                    .collect(),
                env: clocks.env(id),
            })
            .collect();
        let mut lab = Lab {
            servers: Servers::new(dir, files.configs, launchers),
            network,
            clocks,
            dir: dir.to_path_buf(),
            license: files.license,
            transport: files.transport,
            timing: settings.timing,
        };
        for id in ServerId::ALL {
            lab.servers.spawn(id, true)?;
        }
        Ok(lab)
    }

    /// `host:port` of each server, in slot order.
    pub fn addrs(&self) -> Vec<String> {
        ServerId::ALL
            .iter()
            .map(|&id| format!("{}:{PORT}", self.network.server_ip(id)))
            .collect()
    }

    /// The client library's options for this triad: its license path, its CA, its timers.
    pub fn client_options(&self) -> Result<Options> {
        let path = ServerId::ALL
            .iter()
            .map(|&id| format!("{PORT}@{}", self.network.server_ip(id)))
            .collect::<Vec<_>>()
            .join(";");
        let ca = self
            .dir
            .join(TLS_DIR)
            .join(hal_net::tls::triad_dir::CA_CERT_FILE);
        Ok(Options::new(&path)?
            .ca(ca)
            .timing(self.timing)
            .user("nemesis"))
    }

    /// Where server `id` keeps its journal.
    pub fn journal_dir(&self, id: ServerId) -> PathBuf {
        self.dir.join(format!("data{}", id.get())).join("journal")
    }

    /// Server `id`'s status report, or why there is none.
    pub async fn status(&self, id: ServerId) -> Result<StatusReport, String> {
        let addr = &self.addrs()[id.index()];
        hal_net::admin::status(&self.transport, addr, id, STATUS_LIMIT).await
    }

    /// Whether `a` or `b` reports its link to the other down.
    pub async fn link_down(&self, a: ServerId, b: ServerId) -> bool {
        let down = |report: Result<StatusReport, String>, peer: ServerId| {
            report.is_ok_and(|r| r.peers.iter().any(|p| p.id == peer && !p.connected))
        };
        down(self.status(a).await, b) || down(self.status(b).await, a)
    }

    /// Waits until every server runs, answers, is connected to both peers, and one is
    /// active; returns which.
    pub async fn wait_whole(&mut self, limit: Duration) -> Result<ServerId> {
        let deadline = Instant::now() + limit;
        loop {
            self.servers.check_running()?;
            let why = match self.whole().await {
                Ok(active) => return Ok(active),
                Err(why) => why,
            };
            if Instant::now() > deadline {
                bail!("the triad was not whole within {limit:?}: {why}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The active server if the triad is whole, else what is missing.
    async fn whole(&self) -> Result<ServerId, String> {
        let mut active = None;
        for id in ServerId::ALL {
            let report = self.status(id).await.map_err(|e| format!("{id}: {e}"))?;
            if let Some(peer) = report.peers.iter().find(|p| !p.connected) {
                return Err(format!("{id} is not connected to {}", peer.id));
            }
            if report.role == Role::Active {
                active = Some(id);
            }
        }
        active.ok_or_else(|| "no server is active".to_string())
    }

    /// Undoes whatever fault may be in force: every rule gone, every clock true, every
    /// server running.
    pub async fn heal_all(&mut self) -> Result<()> {
        for id in ServerId::ALL {
            self.network.heal(id).await?;
            self.clocks.set(id, 0)?;
            if !self.servers.is_started(id) {
                self.servers.spawn(id, false)?;
            }
        }
        Ok(())
    }

    /// Stops the servers (SIGTERM, so that they finish their journals).
    pub fn stop_servers(&mut self) {
        self.servers.stop();
    }
}
