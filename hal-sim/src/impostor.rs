//! An impostor on the LAN: a machine of its own that dials a server exactly as a peer
//! does (hal-net's `links::dial`), claims a slot in its hello with the triad's real
//! identity (the triad list and the license digests are no secret), and reads the
//! answer. Welcomed, it does what the field attack did: it sends a forged snapshot of an
//! empty seat table and an append, both at a term far ahead of any a run reaches.
//!
//! The simulated network vouches for hosts as a certificate would ([`crate::net`]), and
//! this host is none of the servers, so the server must refuse it; only a planted bug
//! (`--plant trust-hello`) lets it in. What it does not do: judge or record. It says what
//! it was told ([`Reception`]); the scenario runner writes the `impostor` record and
//! judges the step's expectation.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::protocol::{LogIndex, PeerBody, PeerMessage, Snapshot, Term};
use hal_core::seats::Seats;
use hal_net::transport::Transport;
use hal_net::wire::{FRAME_BYTES_MAX_PEER, Hello, Identity, Message, WireCodec};
use tokio_util::codec::Framed;

use crate::net::SimTransport;
use crate::world::address;

/// The impostor's machine.
pub const IMPOSTOR_HOST: &str = "impostor";

/// How long the impostor waits to connect and hear an answer to its hello (as long as a
/// server waits for a hello).
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The term of the forged messages: far ahead of any term a run reaches, yet plausible
/// to the core (less than 2^32 ahead), so that a server that let the impostor in adopts
/// it.
pub const FORGED_TERM: Term = Term(1_000_000);

/// The index the forged snapshot claims: ahead of any commit index a run reaches, so
/// that a server that let the impostor in installs it.
pub const FORGED_INDEX: LogIndex = LogIndex(1_000_000);

/// An open link to a server, as the impostor holds it.
pub type Link = Framed<turmoil::net::TcpStream, WireCodec>;

/// What the server answered to the impostor's hello.
#[derive(Debug)]
pub enum Reception {
    /// Refused, with the server's reason.
    Refused(String),
    /// Welcomed as the slot it claimed; the link is open.
    Welcomed(Box<Link>),
    /// No answer: the server could not be reached, closed, or said something else.
    Unanswered(String),
}

impl Reception {
    /// The `result` of the history record.
    pub fn result(&self) -> &'static str {
        match self {
            Reception::Refused(_) => "refused",
            Reception::Welcomed(_) => "welcomed",
            Reception::Unanswered(_) => "unanswered",
        }
    }
}

/// Dials server `target`, says hello as server `claimed` with `identity`, and reads the
/// answer (at most [`PATIENCE`]).
pub async fn knock(claimed: ServerId, target: ServerId, identity: Identity) -> Reception {
    let attempt = async {
        let stream = SimTransport::new()
            .connect(&address(target), target)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
        let hello = Hello::Peer {
            from: claimed,
            to: target,
            identity,
        };
        link.send(Message::Hello(hello))
            .await
            .map_err(|e| format!("cannot send its hello: {e}"))?;
        Ok(match link.next().await {
            Some(Ok(Message::Welcome { .. })) => Reception::Welcomed(Box::new(link)),
            Some(Ok(Message::Refused { reason })) => Reception::Refused(reason),
            Some(Ok(_)) => {
                Reception::Unanswered("an answer that is neither welcome nor refusal".into())
            }
            Some(Err(e)) => Reception::Unanswered(format!("a bad answer: {e}")),
            None => Reception::Unanswered("closed without an answer".into()),
        })
    };
    match tokio::time::timeout(PATIENCE, attempt).await {
        Ok(Ok(reception)) => reception,
        Ok(Err(why)) => Reception::Unanswered(why),
        Err(_) => Reception::Unanswered(format!("no answer within {} s", PATIENCE.as_secs())),
    }
}

/// What the field attack sent once in: a snapshot of an empty seat table, then an
/// append, both at [`FORGED_TERM`], from `claimed` to `target`.
pub fn forgeries(claimed: ServerId, target: ServerId) -> [PeerMessage; 2] {
    let snapshot = Snapshot {
        last_index: FORGED_INDEX,
        last_term: FORGED_TERM,
        seats: Seats::new(),
    };
    let message = |body| PeerMessage {
        from: claimed,
        to: target,
        term: FORGED_TERM,
        body,
    };
    [
        message(PeerBody::InstallSnapshot {
            snapshot: Arc::new(snapshot),
            round: 1,
        }),
        message(PeerBody::Append {
            prev_index: FORGED_INDEX,
            prev_term: FORGED_TERM,
            entries: Vec::new(),
            commit: FORGED_INDEX,
            round: 2,
        }),
    ]
}

/// Sends the [`forgeries`] over a link a server welcomed the impostor on.
pub async fn forge(link: &mut Link, claimed: ServerId, target: ServerId) -> Result<(), String> {
    for message in forgeries(claimed, target) {
        link.feed(Message::Peer(message))
            .await
            .map_err(|e| e.to_string())?;
    }
    let flushed = tokio::time::timeout(PATIENCE, link.flush()).await;
    match flushed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("not sent within {} s", PATIENCE.as_secs())),
    }
}
