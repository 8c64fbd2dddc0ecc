//! Three real `etcd` members on 127.0.0.1 for the load and failover measurements: each
//! with its own data directory, client port (`base_port + i`) and peer port
//! (`base_port + 3 + i`), etcd's default timing (heartbeat 100 ms, election timeout
//! 1000 ms) and its default durability (every write synced to disk before it is
//! acknowledged: no `--unsafe-no-fsync`), as a team would run it. A member can be killed
//! with SIGKILL and started again on its data (`--initial-cluster-state existing`).
//!
//! It does not configure anything else (no TLS, no auth, no compaction): nothing on
//! the path of a checkout.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use etcd_client::{Client, ConnectOptions, StatusResponse};
use hal_benches::failover::{Cluster, Fault};
use tokio::time::Instant;

use crate::seats::{EtcdSeats, SemaphoreConfig};

/// Members of the cluster.
pub const MEMBERS: usize = 3;

/// How the cluster is made.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// The `etcd` executable.
    pub etcd: PathBuf,
    /// A directory of its own (made if absent; its old data is removed).
    pub dir: PathBuf,
    /// The first of six ports: three client ports, then three peer ports.
    pub base_port: u16,
}

/// A running three-member cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    options: EtcdOptions,
    children: Vec<Option<Child>>,
    /// Unique per run, so members of another run's cluster cannot join this one.
    token: String,
}

impl EtcdCluster {
    /// Makes the directory, starts the three members and waits for a leader.
    pub async fn start(options: EtcdOptions) -> Result<EtcdCluster> {
        let dir = &options.dir;
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut cluster = EtcdCluster {
            options,
            children: (0..MEMBERS).map(|_| None).collect(),
            token: format!("etcd-load-{}", std::process::id()),
        };
        for member in 0..MEMBERS {
            cluster.spawn(member, "new")?;
        }
        cluster
            .wait_ready(Duration::from_secs(30))
            .await
            .context("the etcd cluster did not elect a leader")?;
        Ok(cluster)
    }

    /// `http://127.0.0.1:port` of each member's client port.
    pub fn endpoints(&self) -> Vec<String> {
        (0..MEMBERS).map(|m| self.client_url(m)).collect()
    }

    fn client_url(&self, member: usize) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.options.base_port + member as u16
        )
    }

    fn peer_url(&self, member: usize) -> String {
        let port = self.options.base_port + (MEMBERS + member) as u16;
        format!("http://127.0.0.1:{port}")
    }

    fn name(member: usize) -> String {
        format!("m{}", member + 1)
    }

    /// Starts `member` with `--initial-cluster-state state` (`new` or `existing`).
    fn spawn(&mut self, member: usize, state: &str) -> Result<()> {
        let dir = &self.options.dir;
        let name = Self::name(member);
        let log_path = dir.join(format!("{name}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let initial_cluster = (0..MEMBERS)
            .map(|m| format!("{}={}", Self::name(m), self.peer_url(m)))
            .collect::<Vec<_>>()
            .join(",");
        let client_url = self.client_url(member);
        let peer_url = self.peer_url(member);
        let child = Command::new(&self.options.etcd)
            .arg("--name")
            .arg(&name)
            .arg("--data-dir")
            .arg(dir.join(format!("{name}.etcd")))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            // etcd's defaults, spelled out: they set how fast a failover can be.
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.options.etcd.display()))?;
        // For a script that must clean up after a tool it had to kill.
        fs::write(dir.join(format!("{name}.pid")), format!("{}\n", child.id()))?;
        self.children[member] = Some(child);
        Ok(())
    }

    /// SIGKILL to `member`, and waits for it to be gone.
    pub fn kill(&mut self, member: usize) -> Result<()> {
        if let Some(mut child) = self.children[member].take() {
            child
                .kill()
                .with_context(|| format!("cannot kill member {}", member + 1))?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts `member` again on its data (stopping it first with SIGKILL if it runs).
    pub fn restart(&mut self, member: usize) -> Result<()> {
        self.kill(member)?;
        self.spawn(member, "existing")
    }

    /// The maintenance status of `member`, asked on its own client port.
    pub async fn status(&self, member: usize) -> Result<StatusResponse> {
        let limit = Duration::from_secs(1);
        let options = ConnectOptions::new()
            .with_timeout(limit)
            .with_connect_timeout(limit);
        let ask = async {
            let mut client = Client::connect([self.client_url(member)], Some(options)).await?;
            client.status().await
        };
        Ok(tokio::time::timeout(limit, ask).await??)
    }

    /// Waits until every member answers and all name the same leader, one of them;
    /// returns the leader's index.
    pub async fn wait_ready(&self, limit: Duration) -> Result<usize> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(leader) = self.leader_if_whole().await {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!(
                    "the members were not all up under one leader within {limit:?} (logs in {})",
                    self.options.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn leader_if_whole(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for member in 0..MEMBERS {
            let status = self.status(member).await.ok()?;
            if !status.errors().is_empty() {
                return None;
            }
            ids.push(status.header()?.member_id());
            leaders.push(status.leader());
        }
        let leader = *leaders.first()?;
        if leader == 0 || leaders.iter().any(|&l| l != leader) {
            return None;
        }
        ids.iter().position(|&id| id == leader)
    }

    /// SIGTERM to every member, then waits (SIGKILL after 5 s).
    pub fn stop(&mut self) {
        hal_benches::cli::stop_children(&mut self.children);
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The cluster with the semaphore its clients use: what the failover measurement drives.
#[derive(Debug)]
pub struct EtcdBench {
    pub cluster: EtcdCluster,
    pub semaphore: SemaphoreConfig,
}

impl Cluster for EtcdBench {
    type Client = EtcdSeats;

    async fn client(&mut self, n: u64) -> Result<EtcdSeats> {
        EtcdSeats::connect(&self.semaphore, n).await
    }

    /// All three members up under one leader; the leader is the member that serves.
    async fn ready(&mut self) -> Result<usize> {
        self.cluster.wait_ready(Duration::from_secs(60)).await
    }

    fn inject(&mut self, fault: Fault, member: usize) -> Result<()> {
        match fault {
            Fault::Kill => self.cluster.kill(member),
            Fault::Partition => bail!("etcd-load measures only kill -9"),
        }
    }

    async fn repair(&mut self, fault: Fault, member: usize) -> Result<()> {
        match fault {
            Fault::Kill => self.cluster.restart(member),
            Fault::Partition => bail!("etcd-load measures only kill -9"),
        }
    }
}
