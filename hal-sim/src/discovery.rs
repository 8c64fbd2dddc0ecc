//! Automatic server discovery in the simulated world: three servers run hal-net's node
//! with hal-net's discovery responder beside it ([`hal_net::node::Node::beside`]), over
//! turmoil's UDP; a client host runs hal-net's search ([`hal_net::discovery::search_with`])
//! and takes the license path the answers agree on, then checks a seat out through it
//! with hal-net's client session. Only the socket differs from production ([`SimUdp`]).
//!
//! turmoil 0.7 carries both: a datagram to `255.255.255.255` (from a socket with
//! broadcast on) goes to every host with a socket on that port, and one to a multicast
//! group to every socket that joined it. Partitions and crashes stop both, as on a LAN.
//!
//! One seed fixes the run (turmoil's `rng_seed` and the pinned epoch); the request's
//! nonce is fixed too, so two runs of a seed give the same [`Outcome`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hal_core::ServerId;
use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::client::ClientConfig;
use hal_core::plant::Plants;
use hal_core::protocol::ClientId;
use hal_core::server::Config;
use hal_core::timing::Timing;
use hal_net::addr::LicensePath;
use hal_net::discovery::{DatagramSocket, Responder, search_with};
use hal_net::node::{LinkTiming, Node, NodeConfig};
use hal_net::session::{Answered, Session};
use hal_net::storage::{FileStorage, IfBlank};
use hal_net::wire::Identity;

use crate::clock::SimClock;
use crate::error::HarnessError;
use crate::faults::{host, peers, servers};
use crate::net::SimTransport;
use crate::storage::{DATA_DIR, SimDisk};
use crate::world::{EPOCH_MS, FEATURE, address, triad_entry};

/// The port the servers listen on, TCP and discovery's UDP.
pub const PORT: u16 = 6200;
/// The multicast group of [`Via::Multicast`].
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 62, 62);
/// The host the discovering client runs on.
pub const CLIENT_HOST: &str = "client";
/// When the client searches: the triad has elected #1 long before.
pub const SEARCH_AT: Duration = Duration::from_secs(4);
/// How long it collects answers.
pub const SEARCH_WAIT: Duration = Duration::from_millis(500);
/// The nonce of the client's request (fixed: the run is a function of the seed).
const NONCE: u64 = 0x4841_4c64;

/// turmoil's UDP socket, as discovery's [`DatagramSocket`].
#[derive(Debug)]
pub struct SimUdp(pub turmoil::net::UdpSocket);

impl DatagramSocket for SimUdp {
    async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.0.send_to(bytes, to).await
    }

    async fn recv_from(&self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buffer).await
    }
}

/// How the client sends its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// To `255.255.255.255:6200`.
    Broadcast,
    /// To [`GROUP`], which the servers joined.
    Multicast,
}

/// Why a server does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Its host crashed before the search (power cut: nothing it sends gets out).
    Crashed,
    /// The network between it and the client is cut; it runs on and serves.
    Partitioned,
    /// It runs without the responder (`discovery = false`).
    ResponderOff,
}

/// A discovery world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryWorld {
    pub seed: u64,
    pub via: Via,
    /// The servers that do not answer, and why.
    pub silent: Vec<(ServerId, Silence)>,
    /// Servers cut off from both peers from the start (but not from the client): they
    /// answer that they have no majority.
    pub isolated: Vec<ServerId>,
}

/// One answer as the client got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub from: SocketAddr,
    pub slot: Option<ServerId>,
    pub role: &'static str,
    pub leader: Option<ServerId>,
    pub path: String,
}

/// What the client found: the answers in arrival order, and the license path or the
/// error a client would get; with a path, what a checkout over it got (the grant's
/// server, or the event that ended it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub heard: Vec<Heard>,
    pub license_path: Result<String, String>,
    pub checkout: Option<Result<ServerId, String>>,
}

/// How long the client's checkout over the path found may take.
const CHECKOUT_WAIT: Duration = Duration::from_secs(5);

/// The license path of the simulated triad (`6200@server1;6200@server2;6200@server3`).
pub fn triad_path() -> String {
    let entries: Vec<String> = servers().into_iter().map(triad_entry).collect();
    entries.join(";")
}

fn node_config(id: ServerId) -> NodeConfig {
    let timing = Timing::lan();
    NodeConfig {
        core: Config::triad(id, timing),
        listen: format!("0.0.0.0:{PORT}"),
        peers: peers(id).into_iter().map(|p| (p, address(p))).collect(),
        identity: Identity {
            vendor_key: String::new(),
            triad: servers().into_iter().map(triad_entry).collect(),
            license_digest: "simulated".into(),
            features: vec![],
        },
        client_connections_max: 64,
        client_connections_per_address_max: 64,
        certificate_expires_ms: None,
        borrow_signer: None,
        journal: hal_net::journal::Journal::off(),
        license_file: None,
        links: LinkTiming::for_timing(&timing),
    }
}

fn catalog() -> Catalog {
    let rules = FeatureRules {
        count: 1,
        borrow_hours_max: None,
        start: None,
        end: None,
        hostid_ok: true,
    };
    Catalog::from_rules([(FEATURE.to_string(), rules)])
}

/// Server `id`'s host: the node, and (unless `answers` is false) the responder beside
/// it on UDP `0.0.0.0:6200`, in [`GROUP`] too.
fn spawn_server(sim: &mut turmoil::Sim<'_>, id: ServerId, answers: bool) {
    let disk = SimDisk::new(u64::from(id.get()), Duration::from_millis(1), false);
    sim.host(host(id), move || {
        let fs = disk.boot();
        let files = disk.file_config(Plants::NONE);
        async move {
            let dir = std::path::Path::new(DATA_DIR);
            let storage = FileStorage::open_in(fs, dir, IfBlank::Refuse, files)?;
            let clock = SimClock::new(EPOCH_MS);
            let node = Node::bind(
                node_config(id),
                catalog(),
                SimTransport::new(),
                storage,
                clock,
            )
            .await?;
            let node = if answers {
                let socket = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
                socket.join_multicast_v4(GROUP, Ipv4Addr::UNSPECIFIED)?;
                let triad = servers()
                    .into_iter()
                    .map(|s| triad_entry(s).parse())
                    .collect::<Result<Vec<_>, _>>()?;
                let responder = Responder::new(triad, Some(id));
                node.beside(move |view| async move {
                    responder.run(SimUdp(socket), view).await;
                })
            } else {
                node
            };
            node.run(std::future::pending()).await?;
            Ok(())
        }
    });
}

/// The client's search at [`SEARCH_AT`].
async fn search(via: Via) -> std::io::Result<Outcome> {
    tokio::time::sleep(SEARCH_AT).await;
    let socket = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.set_broadcast(true)?;
    let to = match via {
        Via::Broadcast => SocketAddr::from((Ipv4Addr::BROADCAST, PORT)),
        Via::Multicast => SocketAddr::from((GROUP, PORT)),
    };
    let found = search_with(&SimUdp(socket), &[to], NONCE, SEARCH_WAIT)
        .await
        .map_err(std::io::Error::other)?;
    let heard = found
        .answers
        .iter()
        .map(|d| Heard {
            from: d.from,
            slot: d.answer.slot,
            role: d.answer.role.name(),
            leader: d.answer.leader,
            path: d.answer.path.to_string(),
        })
        .collect();
    let path = found.license_path();
    let checkout = match &path {
        Ok(path) => Some(checkout(path).await),
        Err(_) => None,
    };
    Ok(Outcome {
        heard,
        license_path: path.map(|p| p.to_string()).map_err(|e| e.to_string()),
        checkout,
    })
}

/// A checkout of the feature through the servers of `path`, as hal-net's client session
/// makes it: the server that granted it, or what happened instead.
async fn checkout(path: &LicensePath) -> Result<ServerId, String> {
    let addrs = path.addrs().iter().map(|a| a.connect_string()).collect();
    let mut session = Session::new(
        SimTransport::new(),
        SimClock::new(EPOCH_MS),
        addrs,
        ClientId(NONCE),
        "sim",
        CLIENT_HOST,
        ClientConfig::new(Timing::lan()),
    );
    let seq = session.checkout(FEATURE);
    match tokio::time::timeout(CHECKOUT_WAIT, session.answer(seq, |_| {})).await {
        Ok(Answered::Granted { granted_by, .. }) => Ok(granted_by),
        Ok(other) => Err(format!("{other:?}")),
        Err(_) => Err("no answer in time".into()),
    }
}

/// Silences the servers `world` names, just before the search.
fn silence(sim: &mut turmoil::Sim<'_>, world: &DiscoveryWorld) {
    for &(id, why) in &world.silent {
        match why {
            Silence::Crashed => {
                // A power cut: cut its links first, so nothing it sends while dying
                // gets out (and the run stays deterministic), then crash it.
                let others: Vec<String> = peers(id)
                    .into_iter()
                    .map(host)
                    .chain([CLIENT_HOST.to_string()])
                    .collect();
                for other in &others {
                    sim.partition_oneway(host(id), other.as_str());
                }
                sim.crash(host(id));
                for other in &others {
                    sim.repair_oneway(host(id), other.as_str());
                }
            }
            Silence::Partitioned => sim.partition(host(id), CLIENT_HOST),
            Silence::ResponderOff => {}
        }
    }
}

/// Runs `world`: the triad, then the client's search; what it found.
pub fn run(world: &DiscoveryWorld) -> Result<Outcome, HarnessError> {
    let mut sim = crate::world::simulation(world.seed, SEARCH_AT, crate::faults::NORMAL_LATENCY);
    for id in servers() {
        let off = world
            .silent
            .iter()
            .any(|&(s, why)| s == id && why == Silence::ResponderOff);
        spawn_server(&mut sim, id, !off);
    }
    for &id in &world.isolated {
        for peer in peers(id) {
            sim.partition(host(id), host(peer));
        }
    }
    let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = outcome.clone();
    let via = world.via;
    sim.client(CLIENT_HOST, async move {
        let found = search(via).await?;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
        Ok(())
    });
    let before = SEARCH_AT - Duration::from_millis(100);
    while sim.elapsed() < before {
        sim.step()
            .map_err(|e| HarnessError::Simulation(e.to_string()))?;
    }
    silence(&mut sim, world);
    sim.run()
        .map_err(|e| HarnessError::Simulation(e.to_string()))?;
    let found = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
    found.ok_or(HarnessError::Broken(crate::error::Broken::SearchUnfinished))
}
