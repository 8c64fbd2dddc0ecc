//! The counting semaphore on etcd, one [`EtcdSeats`] per client: the recipe teams use
//! instead of a license server, in its cheapest form that still never lets more than
//! COUNT clients hold a seat.
//!
//! - A client grants itself a lease at start and keeps it alive from a task of its own
//!   (etcd's `LeaseKeepAlive` stream, every third of the TTL): that is the heartbeat. A
//!   client that dies stops renewing, and its seat goes when the lease expires.
//! - Seat `k` of COUNT is the key `/sem/bench/slot/{k}`. A checkout is one transaction
//!   `if create_revision(slot k) == 0 then put(slot k, me, lease) else get(slot k)`,
//!   trying the client's own slot (`n % COUNT`) first, then the next ones, and is denied
//!   after COUNT tries. A key exists only while someone holds it, so at most COUNT
//!   clients hold one: this is "fewer than COUNT holder keys, then put mine", with the
//!   count kept by the key space instead of a range read in every transaction.
//! - A checkin is one transaction `if value(slot k) == me then delete(slot k)`, so a
//!   client whose lease lapsed cannot free a seat someone else has taken since.
//!
//! With COUNT ≥ clients every client finds its own slot free: a checkout is one round
//! trip with no conflicts and no retries, which is etcd at its best. The textbook form
//! (one range count over a prefix of holder keys compared in the same transaction) reads
//! every holder in every checkout and conflicts as soon as two clients race, so it could
//! only be slower.
//!
//! A checkout or checkin whose answer was lost (a timeout, the member died) may still
//! have been applied. The `else get` makes that harmless: a slot found holding this
//! client's own name is the seat it already took, and is taken again (a client holds at
//! most one seat at a time, so it can only be that one).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use hal_benches::load::Seats;
use tokio::task::JoinHandle;

/// The prefix of the slot keys.
pub const SLOT_PREFIX: &str = "/sem/bench/slot/";

/// What every client of one semaphore shares.
#[derive(Debug, Clone)]
pub struct SemaphoreConfig {
    /// `host:port` or `http://host:port` of every member.
    pub endpoints: Vec<String>,
    /// Seats (slot keys).
    pub count: u64,
    /// Lease time-to-live: a client that stops heartbeating loses its seat after this.
    pub lease_ttl: Duration,
    /// Limit of one request (a member that died or lost its leader fails it then).
    pub request_timeout: Duration,
    /// Told apart from other runs' clients by this (the process id).
    pub run: String,
}

impl SemaphoreConfig {
    /// Client options: a request that gets no answer fails after `request_timeout`,
    /// HTTP/2 pings notice a silent connection, and the pings stay slower than etcd's
    /// default `--grpc-keepalive-min-time` (5 s), below which the member drops us.
    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
    }
}

/// One semaphore client of etcd, connected to every member (requests are spread over
/// them and the members forward writes to the leader, as etcd's own clients do).
pub struct EtcdSeats {
    client: Client,
    /// Written in the slot it holds: who holds it.
    name: String,
    /// The slot tried first.
    first_slot: u64,
    count: u64,
    /// The current lease (the keep-alive task replaces it if it ever expires).
    lease: Arc<AtomicI64>,
    keep_alive: JoinHandle<()>,
}

impl std::fmt::Debug for EtcdSeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // etcd_client::Client has no Debug.
        f.debug_struct("EtcdSeats")
            .field("name", &self.name)
            .field("first_slot", &self.first_slot)
            .field("count", &self.count)
            .field("lease", &self.lease.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A slot held, to give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub u64);

fn slot_key(slot: u64) -> String {
    format!("{SLOT_PREFIX}{slot}")
}

impl EtcdSeats {
    /// Client number `n` of the run: connects, grants its lease and starts the heartbeat.
    pub async fn connect(config: &SemaphoreConfig, n: u64) -> Result<EtcdSeats> {
        let client = Client::connect(&config.endpoints, Some(config.connect_options()))
            .await
            .with_context(|| format!("cannot connect to {}", config.endpoints.join(",")))?;
        let ttl_s = i64::try_from(config.lease_ttl.as_secs().max(2))?;
        let granted = grant(&client, ttl_s, config.request_timeout * 20)
            .await
            .context("cannot grant a lease")?;
        let lease = Arc::new(AtomicI64::new(granted));
        let keep_alive = tokio::spawn(heartbeat(
            client.clone(),
            Arc::clone(&lease),
            ttl_s,
            config.request_timeout,
        ));
        Ok(EtcdSeats {
            client,
            name: format!("etcd-load-{}-{n}", config.run),
            first_slot: n % config.count.max(1),
            count: config.count.max(1),
            lease,
            keep_alive,
        })
    }

    /// One transaction on slot `k`: taken (by us now, or earlier by a checkout whose
    /// answer was lost) or held by someone else.
    async fn try_slot(&mut self, slot: u64) -> Result<bool, String> {
        let key = slot_key(slot);
        let lease = self.lease.load(Ordering::Relaxed);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                self.name.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.client.txn(txn).await.map_err(|e| e.to_string())?;
        if response.succeeded() {
            return Ok(true);
        }
        let ours = response.op_responses().iter().any(|op| match op {
            TxnOpResponse::Get(get) => get
                .kvs()
                .iter()
                .any(|kv| kv.value() == self.name.as_bytes()),
            _ => false,
        });
        Ok(ours)
    }
}

impl Seats for EtcdSeats {
    type Held = Slot;

    async fn checkout(&mut self) -> Result<Slot, String> {
        for i in 0..self.count {
            let slot = (self.first_slot + i) % self.count;
            if self.try_slot(slot).await? {
                return Ok(Slot(slot));
            }
        }
        Err(format!("denied: all {} slots are held", self.count))
    }

    async fn checkin(&mut self, held: Slot) -> Result<(), String> {
        let key = slot_key(held.0);
        let txn = Txn::new()
            .when([Compare::value(
                key.clone(),
                CompareOp::Equal,
                self.name.clone(),
            )])
            .and_then([TxnOp::delete(key, None)]);
        let response = self.client.txn(txn).await.map_err(|e| e.to_string())?;
        if response.succeeded() {
            Ok(())
        } else {
            Err(format!("slot {} was no longer ours at checkin", held.0))
        }
    }
}

impl Drop for EtcdSeats {
    /// Stops the heartbeat and revokes the lease (best effort: if the runtime or the
    /// cluster is gone, the lease expires by itself).
    fn drop(&mut self) {
        self.keep_alive.abort();
        let lease = self.lease.load(Ordering::Relaxed);
        let mut client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.lease_revoke(lease).await;
            });
        }
    }
}

/// Grants a lease of `ttl_s`, retrying until `limit` (a leader may be being elected).
async fn grant(client: &Client, ttl_s: i64, limit: Duration) -> Result<i64> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match client.lease_client().grant(ttl_s, None).await {
            Ok(granted) => return Ok(granted.id()),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// How a keep-alive stream ended.
enum Lapse {
    /// The stream broke (its member died, a timeout): open another on the same lease.
    Broken,
    /// etcd says the lease is gone (TTL 0): grant a new one.
    Expired,
}

/// The heartbeat: renews the lease every third of its TTL for as long as the client
/// lives, reopening the stream when it breaks and granting a new lease if it expired.
async fn heartbeat(client: Client, lease: Arc<AtomicI64>, ttl_s: i64, request_timeout: Duration) {
    let interval = Duration::from_millis(u64::try_from(ttl_s).unwrap_or(3) * 1000 / 3);
    loop {
        let id = lease.load(Ordering::Relaxed);
        match renew_until_lapse(&client, id, interval, request_timeout).await {
            Lapse::Broken => tokio::time::sleep(Duration::from_millis(100)).await,
            Lapse::Expired => {
                if let Ok(new) = grant(&client, ttl_s, Duration::from_secs(3600)).await {
                    lease.store(new, Ordering::Relaxed);
                }
            }
        }
    }
}

async fn renew_until_lapse(
    client: &Client,
    id: i64,
    interval: Duration,
    request_timeout: Duration,
) -> Lapse {
    // Opening the stream renews once and reads the answer.
    let opened = tokio::time::timeout(request_timeout, client.lease_client().keep_alive(id)).await;
    let (mut keeper, mut stream) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) if e == "lease not found" => {
            return Lapse::Expired;
        }
        _ => return Lapse::Broken,
    };
    loop {
        tokio::time::sleep(interval).await;
        if keeper.keep_alive().await.is_err() {
            return Lapse::Broken;
        }
        match tokio::time::timeout(request_timeout, stream.message()).await {
            Ok(Ok(Some(answer))) if answer.ttl() <= 0 => return Lapse::Expired,
            Ok(Ok(Some(_))) => {}
            _ => return Lapse::Broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{EtcdCluster, EtcdOptions};

    /// Three real members (needs `etcd` on PATH; skipped without it).
    async fn cluster(base_port: u16) -> Option<EtcdCluster> {
        if std::process::Command::new("etcd")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("etcd not on PATH: skipped");
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("etcd-load-test-{}-{base_port}", std::process::id()));
        Some(
            EtcdCluster::start(EtcdOptions {
                etcd: "etcd".into(),
                dir,
                base_port,
            })
            .await
            .unwrap(),
        )
    }

    fn config(cluster: &EtcdCluster, count: u64) -> SemaphoreConfig {
        SemaphoreConfig {
            endpoints: cluster.endpoints(),
            count,
            lease_ttl: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            run: "test".to_string(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_holders_than_count() {
        let Some(cluster) = cluster(17440).await else {
            return;
        };
        let config = config(&cluster, 3);
        let mut clients = Vec::new();
        for n in 0..5 {
            clients.push(EtcdSeats::connect(&config, n).await.unwrap());
        }
        let mut held = Vec::new();
        for client in &mut clients {
            held.push(client.checkout().await);
        }
        let granted: Vec<_> = held.iter().filter_map(|h| h.as_ref().ok()).collect();
        assert_eq!(granted.len(), 3, "{held:?}");
        assert!(held[3].is_err() && held[4].is_err(), "{held:?}");
        let mut slots: Vec<_> = granted.iter().map(|s| s.0).collect();
        slots.sort_unstable();
        assert_eq!(slots, vec![0, 1, 2]);
        // A checkin frees the seat for a client that was denied.
        let first = held[0].clone().unwrap();
        clients[0].checkin(first).await.unwrap();
        assert_eq!(clients[4].checkout().await, Ok(Slot(0)));
        // A client whose checkout answer was lost takes its own seat again.
        assert_eq!(clients[4].checkout().await, Ok(Slot(0)));
        // Someone else's seat cannot be checked in.
        assert!(clients[1].checkin(Slot(0)).await.is_err());
    }
}
