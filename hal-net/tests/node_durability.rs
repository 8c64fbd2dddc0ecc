//! The node driver in-process, over real TCP on 127.0.0.1 and a storage whose syncs are
//! slow and observable: no client hears "granted" before the grant is durable on a
//! majority, a burst of requests shares syncs (group commit) instead of taking one each,
//! and a leader's slow disk does not hold answers its followers have made durable.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::ServerId;
use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::client::{ClientConfig, ClientEvent};
use hal_core::protocol::ClientId;
use hal_core::server::{Config, Durable, Persist};
use hal_core::timing::Timing;
use hal_net::clock::SystemClock;
use hal_net::node::{LinkTiming, Node, NodeConfig};
use hal_net::session::Session;
use hal_net::storage::{Storage, StorageError};
use hal_net::transport::TcpTransport;
use hal_net::wire::Identity;

/// Storage in memory whose every sync takes `sync_ms` (which a test may change while it
/// runs); a write counts as durable only once its sync is over.
#[derive(Clone, Default)]
struct SlowStorage {
    durable: Arc<Mutex<Durable>>,
    /// Syncs finished.
    syncs: Arc<AtomicUsize>,
    /// Syncs asked for (finished or not) on another thread (`persist`) and on the node's
    /// own (`persist_here`): counted as they start, so a sync under way is counted once.
    asked_elsewhere: Arc<AtomicUsize>,
    asked_here: Arc<AtomicUsize>,
    sync_ms: Arc<AtomicU64>,
}

impl SlowStorage {
    fn new(sync_time: Duration) -> SlowStorage {
        let storage = SlowStorage::default();
        storage.set_sync_time(sync_time);
        storage
    }

    fn set_sync_time(&self, sync_time: Duration) {
        let ms = u64::try_from(sync_time.as_millis()).unwrap();
        self.sync_ms.store(ms, Ordering::SeqCst);
    }

    /// How many log entries are durable.
    fn entries(&self) -> u64 {
        self.durable.lock().unwrap().entries.len() as u64
    }

    /// Syncs asked for so far: on another thread, and on the node's own.
    fn syncs_by_thread(&self) -> (usize, usize) {
        (
            self.asked_elsewhere.load(Ordering::SeqCst),
            self.asked_here.load(Ordering::SeqCst),
        )
    }

    async fn sync(&self, batch: Vec<Persist>) {
        let sync_ms = self.sync_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(sync_ms)).await;
        let mut durable = self.durable.lock().unwrap();
        for write in &batch {
            durable.apply(write);
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
    }
}

impl Storage for SlowStorage {
    async fn load(&mut self) -> Result<Durable, StorageError> {
        Ok(self.durable.lock().unwrap().clone())
    }

    async fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        self.asked_elsewhere.fetch_add(1, Ordering::SeqCst);
        self.sync(batch).await;
        Ok(())
    }

    async fn persist_here(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        self.asked_here.fetch_add(1, Ordering::SeqCst);
        self.sync(batch).await;
        Ok(())
    }
}

const CLIENTS: u64 = 64;

fn node_config(timing: Timing) -> NodeConfig {
    NodeConfig {
        core: Config::single(timing),
        listen: "127.0.0.1:0".to_string(),
        peers: BTreeMap::new(),
        identity: Identity {
            vendor_key: String::new(),
            triad: vec![],
            license_digest: String::new(),
            features: vec![],
        },
        client_connections_max: 256,
        client_connections_per_address_max: 256,
        certificate_expires_ms: None,
        borrow_signer: None,
        journal: hal_net::journal::Journal::off(),
        license_file: None,
        links: LinkTiming::for_timing(&timing),
    }
}

fn catalog() -> Catalog {
    let rules = FeatureRules {
        count: 1000,
        borrow_hours_max: None,
        start: None,
        end: None,
        hostid_ok: true,
    };
    Catalog::from_rules([("cad".to_string(), rules)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_durable_before_they_are_answered_and_share_syncs() {
    let storage = SlowStorage::new(Duration::from_millis(20));
    let timing = Timing::lan();
    let (config, catalog) = (node_config(timing), catalog());
    let node = Node::bind(
        config,
        catalog,
        TcpTransport,
        storage.clone(),
        SystemClock::new(),
    )
    .await
    .unwrap();
    let addr = node.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(node.run(async {
        let _ = stop_rx.await;
    }));
    // A single server is active once its first no-op is durable.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let syncs_before = storage.syncs.load(Ordering::SeqCst);

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let addr = addr.clone();
        let durable = storage.durable.clone();
        clients.push(tokio::spawn(async move {
            let config = ClientConfig::new(timing);
            let id = ClientId(i + 1);
            let mut session = Session::new(
                TcpTransport,
                SystemClock::new(),
                vec![addr],
                id,
                "u",
                "h",
                config,
            );
            let seq = session.checkout("cad");
            loop {
                match session.next_event().await {
                    ClientEvent::Granted { seq: s, handle, .. } if s == seq => {
                        // The grant is the log entry at index `handle`: it must be stored.
                        let stored = durable.lock().unwrap().entries.len() as u64;
                        assert!(
                            stored >= handle.0,
                            "{handle} answered before it was durable ({stored} entries stored)"
                        );
                        return handle;
                    }
                    ClientEvent::Denied { reason, .. } => panic!("denied: {reason}"),
                    ClientEvent::OutcomeUnknown { .. } => panic!("no answer"),
                    _ => {}
                }
            }
        }));
    }
    let mut handles = Vec::new();
    for client in clients {
        handles.push(client.await.unwrap());
    }
    handles.sort();
    handles.dedup();
    assert_eq!(
        handles.len() as u64,
        CLIENTS,
        "every client got its own seat"
    );

    let syncs = storage.syncs.load(Ordering::SeqCst) - syncs_before;
    eprintln!("{CLIENTS} grants took {syncs} syncs");
    assert!(syncs >= 1);
    assert!(
        syncs as u64 * 2 <= CLIENTS,
        "{syncs} syncs for {CLIENTS} concurrent grants: no group commit"
    );
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Starts the triad, server #n with `storages[n - 1]`, on free ports of 127.0.0.1;
/// returns their addresses in path order.
async fn start_triad(timing: Timing, storages: &[SlowStorage; 3]) -> Vec<String> {
    let addrs: Vec<String> = support::cluster::free_ports::<3>()
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    for (id, storage) in ServerId::ALL.into_iter().zip(storages) {
        let peers = ServerId::ALL
            .into_iter()
            .filter(|&peer| peer != id)
            .map(|peer| (peer, addrs[peer.index()].clone()))
            .collect();
        let config = NodeConfig {
            core: Config::triad(id, timing),
            listen: addrs[id.index()].clone(),
            peers,
            identity: Identity {
                vendor_key: String::new(),
                triad: addrs.clone(),
                license_digest: "d".into(),
                features: vec![],
            },
            ..node_config(timing)
        };
        let clock = SystemClock::new();
        let node = Node::bind(config, catalog(), TcpTransport, storage.clone(), clock)
            .await
            .unwrap();
        tokio::spawn(node.run(std::future::pending()));
    }
    addrs
}

/// Checks out one seat as client `id`; returns the handle (its log index) and how long
/// the answer took, or why it was denied.
async fn checkout(addrs: &[String], id: u64, timing: Timing) -> Result<(u64, Duration), String> {
    let mut session = Session::new(
        TcpTransport,
        SystemClock::new(),
        addrs.to_vec(),
        ClientId(id),
        "u",
        "h",
        ClientConfig::new(timing),
    );
    let asked = std::time::Instant::now();
    let seq = session.checkout("cad");
    loop {
        match session.next_event().await {
            ClientEvent::Granted { seq: s, handle, .. } if s == seq => {
                return Ok((handle.0, asked.elapsed()));
            }
            ClientEvent::Denied { seq: s, reason, .. } if s == seq => {
                return Err(reason.to_string());
            }
            ClientEvent::OutcomeUnknown { seq: s, .. } if s == seq => {
                return Err("no answer (outcome unknown)".to_string());
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaders_slow_disk_does_not_hold_answers_its_followers_made_durable() {
    let timing = Timing::lan();
    let storages: [SlowStorage; 3] =
        std::array::from_fn(|_| SlowStorage::new(Duration::from_millis(2)));
    let addrs = start_triad(timing, &storages).await;
    // Wait for #1 to serve.
    let started = std::time::Instant::now();
    while let Err(why) = checkout(&addrs, 1, timing).await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no leader: {why}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The active server syncs on another thread, to keep serving meanwhile; followers
    // sync on their own.
    let before: Vec<(usize, usize)> = storages.iter().map(SlowStorage::syncs_by_thread).collect();
    checkout(&addrs, 3, timing).await.unwrap();
    // The grant needed two of the three syncs: give the third time to be asked for.
    let asked = std::time::Instant::now();
    let after = loop {
        let after: Vec<(usize, usize)> =
            storages.iter().map(SlowStorage::syncs_by_thread).collect();
        let all = after
            .iter()
            .zip(&before)
            .all(|(a, b)| a.0 + a.1 > b.0 + b.1);
        if all || asked.elapsed() > Duration::from_secs(5) {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (elsewhere, here): (Vec<usize>, Vec<usize>) = after
        .iter()
        .zip(&before)
        .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
        .unzip();
    assert!(
        elsewhere[0] > 0 && here[0] == 0,
        "#1: {elsewhere:?} {here:?}"
    );
    assert!(
        here[1] > 0 && elsewhere[1] == 0,
        "#2: {elsewhere:?} {here:?}"
    );
    assert!(
        here[2] > 0 && elsewhere[2] == 0,
        "#3: {elsewhere:?} {here:?}"
    );

    // #1's disk now takes far longer than the client's whole retry budget.
    let leader_sync = Duration::from_secs(4);
    storages[0].set_sync_time(leader_sync);
    tokio::time::sleep(Duration::from_millis(100)).await; // a sync under way ends
    let (handle, took) = checkout(&addrs, 2, timing).await.unwrap();
    let durable: Vec<u64> = storages.iter().map(SlowStorage::entries).collect();
    // Answered by #1 once both followers had the grant on disk (#1's own copy does not
    // count before it is synced), without waiting for #1's disk.
    assert!(
        durable[1] >= handle && durable[2] >= handle,
        "grant {handle} answered before a majority had it: durable {durable:?}"
    );
    assert!(
        durable[0] < handle,
        "#1's slow sync finished first? durable {durable:?}"
    );
    assert!(
        took < leader_sync / 2,
        "the answer took {took:?}: it waited for #1's disk ({leader_sync:?} a sync)"
    );
}

/// Storage whose sync panics (a bug, or a `resume_unwind` from a blocking thread).
struct PanickingStorage;

impl Storage for PanickingStorage {
    async fn load(&mut self) -> Result<Durable, StorageError> {
        Ok(Durable::default())
    }

    async fn persist(&mut self, _batch: Vec<Persist>) -> Result<(), StorageError> {
        panic!("planted: storage panics");
    }
}

#[tokio::test]
async fn a_storage_that_dies_stops_the_node_with_an_error() {
    let timing = Timing::lan();
    let node = Node::bind(
        node_config(timing),
        catalog(),
        TcpTransport,
        PanickingStorage,
        SystemClock::new(),
    )
    .await
    .unwrap();
    // The first write (the single server's term) kills storage; the node must say so
    // rather than stop "cleanly" (exit 0) with answers held forever.
    let result = tokio::time::timeout(Duration::from_secs(10), node.run(std::future::pending()))
        .await
        .expect("the node kept running without storage");
    let error = result.unwrap_err();
    assert!(
        matches!(error, hal_net::node::NodeError::StorageGone),
        "{error}"
    );
}
