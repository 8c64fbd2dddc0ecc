//! The server's side: a task beside the node ([`crate::node::Node::beside`]) that reads
//! discovery requests from its socket and answers each with what the server knows
//! ([`super::answer`]), within the limits of [`super::limit`]. Generic over the socket,
//! so that the simulator runs this very loop over turmoil's UDP.
//!
//! The role in an answer comes from the node's status ([`NodeView::status`]), asked at
//! most every [`ROLE_FRESH_FOR`] and never waited on for long: discovery cannot slow the
//! node's clients or peers, and an answer from a busy node says its role is unknown.

use std::net::SocketAddr;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::server::Role as CoreRole;
use tracing::{debug, info};

use super::codec::{self, DATAGRAM_BYTES_MAX, Facts, Ignored, Role};
use super::limit::Limit;
use super::socket::DatagramSocket;
use crate::addr::ServerAddr;
use crate::node::NodeView;
use crate::wire::StatusReport;

/// How long a role read from the node is used before it is asked again.
pub const ROLE_FRESH_FOR: Duration = Duration::from_millis(250);
/// How long the responder waits for the node's status before answering "unknown".
const STATUS_WAIT_MAX: Duration = Duration::from_millis(100);
/// After a failed receive, a pause, so that a socket in error cannot spin the task.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The role and leader a status report shows, as discovery tells them: a standby
/// connected to neither peer has no majority.
pub fn role_of(report: &StatusReport) -> (Role, Option<ServerId>) {
    let role = match report.role {
        CoreRole::Active => Role::Active,
        CoreRole::Standby if report.triad && !report.peers.iter().any(|p| p.connected) => {
            Role::NoMajority
        }
        CoreRole::Standby => Role::Standby,
    };
    (role, report.leader)
}

/// What happened to the datagrams received, for the log when the responder stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub answered: u64,
    pub ignored: u64,
    pub rate_limited: u64,
    pub send_failed: u64,
}

/// A server's discovery responder: what it tells about itself besides its role.
#[derive(Debug, Clone)]
pub struct Responder {
    facts: Facts,
}

impl Responder {
    /// The responder of the server in `slot` (`None`: a single server) of `triad` (as
    /// configured), reporting this build's version.
    pub fn new(triad: Vec<ServerAddr>, slot: Option<ServerId>) -> Responder {
        Responder {
            facts: Facts {
                triad,
                slot,
                role: Role::Unknown,
                leader: None,
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
        }
    }

    /// Answers requests on `socket` until the node stops.
    pub async fn run<S: DatagramSocket>(mut self, socket: S, node: NodeView) -> Counts {
        let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
        let mut limit = Limit::default();
        let mut counts = Counts::default();
        let start = tokio::time::Instant::now();
        let mut role_read: Option<tokio::time::Instant> = None;
        info!(slot = ?self.facts.slot.map(ServerId::get), "discovery: answering requests");
        loop {
            let received = tokio::select! {
                received = socket.recv_from(&mut buffer) => received,
                () = node.stopped() => break,
            };
            let (length, from) = match received {
                Ok(received) => received,
                Err(error) => {
                    debug!("discovery: receive failed: {error}");
                    tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                    continue;
                }
            };
            let request = buffer.get(..length).unwrap_or_default();
            // Junk is dropped before it can use up the answers of the second.
            if let Err(why) = codec::parse_request(request) {
                ignored(&mut counts, from, why);
                continue;
            }
            let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            if !limit.admit(from.ip(), now_ms) {
                counts.rate_limited += 1;
                debug!(%from, "discovery: not answered: {}", Ignored::RateLimited);
                continue;
            }
            if role_read.is_none_or(|at| at.elapsed() >= ROLE_FRESH_FOR) {
                self.read_role(&node).await;
                role_read = Some(tokio::time::Instant::now());
            }
            match codec::answer(request, &self.facts) {
                Ok(bytes) => match socket.send_to(&bytes, from).await {
                    Ok(_) => counts.answered += 1,
                    Err(error) => {
                        counts.send_failed += 1;
                        debug!(%from, "discovery: cannot answer: {error}");
                    }
                },
                Err(why) => ignored(&mut counts, from, why),
            }
        }
        info!(?counts, "discovery: stopped");
        counts
    }

    async fn read_role(&mut self, node: &NodeView) {
        let (role, leader) = match node.status(STATUS_WAIT_MAX).await {
            Some(report) => role_of(&report),
            None => {
                debug!("discovery: the node did not report its role in time; answering unknown");
                (Role::Unknown, None)
            }
        };
        self.facts.role = role;
        self.facts.leader = leader;
    }
}

fn ignored(counts: &mut Counts, from: SocketAddr, why: Ignored) {
    counts.ignored += 1;
    debug!(%from, "discovery: ignored a datagram: {why}");
}
