//! An operator's questions and requests to a running triad over the wire: a server's
//! status report (what `hal-net status` prints), an administrator's removal of seats
//! (`hal-net remove`) and license push (`hal-net license push`, a server's SIGHUP), over
//! any [`Transport`] so that the simulator's scenarios ask exactly what an operator would.

use std::time::Duration;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::protocol::{
    ClientId, ClientRequest, Denial, Handle, Op, RemoveTarget, ReplyResult, RequestSeq, ServerReply,
};
use hal_core::server::Role;
use tokio_util::codec::Framed;

use crate::transport::Transport;
use crate::wire::{FRAME_BYTES_MAX_PEER, Hello, Message, StatusReport, WireCodec};

/// An operator's connection to one server, welcomed.
type Link<T> = Framed<<T as Transport>::Stream, WireCodec>;

/// Connects to server `server` at `addr` as an operator; the error says why not.
async fn operator_link<T: Transport>(
    transport: &T,
    addr: &str,
    server: ServerId,
) -> Result<Link<T>, String> {
    let stream = transport
        .connect(addr, server)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
    let hello = Message::Hello(Hello::Admin);
    link.send(hello).await.map_err(|e| e.to_string())?;
    match link.next().await {
        Some(Ok(Message::Welcome { .. })) => Ok(link),
        Some(Ok(Message::Refused { reason })) => Err(format!("refused: {reason}")),
        Some(Ok(_)) => Err("not a HAL server's answer to hello".to_string()),
        Some(Err(e)) => Err(format!("handshake: {e}")),
        None => Err("closed during the handshake".to_string()),
    }
}

/// Asks server `server` at `addr` (`host:port`) for its status report, giving up after
/// `limit`; the error says why there is no report (a server that cannot prove it is
/// `server` included).
pub async fn status<T: Transport>(
    transport: &T,
    addr: &str,
    server: ServerId,
    limit: Duration,
) -> Result<StatusReport, String> {
    let query = async {
        let mut link = operator_link(transport, addr, server).await?;
        link.send(Message::StatusRequest)
            .await
            .map_err(|e| e.to_string())?;
        let answer = link.next().await;
        // Closed politely (TLS close_notify), so the server sees a close, not a fault.
        let _ = link.close().await;
        match answer {
            Some(Ok(Message::Status(report))) => Ok(*report),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(_)) => Err("not a status answer".to_string()),
            None => Err("closed before answering".to_string()),
        }
    };
    tokio::time::timeout(limit, query)
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}

/// The report whose seat table an operator should read: the active server's, else that
/// of the reachable server with the most applied log.
pub fn seat_table_source<'a>(
    reports: impl IntoIterator<Item = &'a StatusReport>,
) -> Option<&'a StatusReport> {
    let reports: Vec<&StatusReport> = reports.into_iter().collect();
    reports
        .iter()
        .copied()
        .find(|r| r.role == Role::Active)
        .or_else(|| reports.iter().copied().max_by_key(|r| r.applied_index))
}

/// What an administrator's removal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The seats freed, by the server that was active.
    Removed { handles: Vec<Handle>, by: ServerId },
    /// The active server found no such seat held.
    NothingHeld { by: ServerId },
}

/// Why an administrator's request (a removal, a push) was not taken: no server was
/// active and reachable. `did` says what none did; each server's answer or failure in
/// path order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no server {did}: {}", .failures.iter().map(|(s, why)| format!("#{}: {why}", s.get())).collect::<Vec<_>>().join("; "))]
pub struct AdminError {
    pub did: &'static str,
    pub failures: Vec<(ServerId, String)>,
}

/// Removes the seats `target` names, as `by` (`user@host`), through the active server of
/// `servers` (each server's address and slot, in path order): the request goes to each
/// server in turn, straight to the one a server names as active; each server waits up to
/// `limit` for its answer. `id` numbers the operator's request (a fresh random id per
/// removal, so that a server answers a retry of it, not a new one).
pub async fn remove<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    (target, by): (RemoveTarget, Arc<str>),
    id: ClientId,
    limit: Duration,
) -> Result<Removal, AdminError> {
    let request = ClientRequest {
        client: id,
        seq: RequestSeq(1),
        op: Op::Remove { target, by },
    };
    let settled = to_active(
        transport,
        servers,
        request,
        limit,
        |result, server| match result {
            ReplyResult::Removed { handles } => Some(Removal::Removed {
                handles,
                by: server,
            }),
            ReplyResult::Denied(Denial::UnknownHandle) => Some(Removal::NothingHeld { by: server }),
            _ => None,
        },
    );
    settled.await.map_err(|failures| AdminError {
        did: "removed it",
        failures,
    })
}

/// What a license push came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// The license is in force from log index `index` on (`changed` false: it had the
    /// terms of the one in force already), as server `by`, the active one, answered.
    Pushed {
        index: u64,
        changed: bool,
        by: ServerId,
    },
    /// The active server refused the license, and why.
    Refused { reason: String, by: ServerId },
}

/// Pushes the license file `text` as `by` through the active server of `servers`, as
/// [`remove`] sends a removal: every server switches to it at the same log index.
pub async fn push_license<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    (text, by): (Arc<str>, Arc<str>),
    id: ClientId,
    limit: Duration,
) -> Result<Push, AdminError> {
    push(transport, servers, Op::PushLicense { text, by }, id, limit).await
}

/// Pushes the options file `text` as `by` through the active server of `servers`: every
/// server applies its rules from the same log index.
pub async fn push_options<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    (text, by): (Arc<str>, Arc<str>),
    id: ClientId,
    limit: Duration,
) -> Result<Push, AdminError> {
    push(transport, servers, Op::PushOptions { text, by }, id, limit).await
}

/// Sends a push (`op`) through the active server.
async fn push<T: Transport>(
    transport: &T,
    servers: &[(String, ServerId)],
    op: Op,
    id: ClientId,
    limit: Duration,
) -> Result<Push, AdminError> {
    let request = ClientRequest {
        client: id,
        seq: RequestSeq(1),
        op,
    };
    let settle = |result, server| match result {
        ReplyResult::LicensePushed { index, changed }
        | ReplyResult::OptionsPushed { index, changed } => Some(Push::Pushed {
            index: index.0,
            changed,
            by: server,
        }),
        ReplyResult::LicenseRefused { reason } | ReplyResult::OptionsRefused { reason } => {
            Some(Push::Refused { reason, by: server })
        }
        _ => None,
    };
    let settled = to_active(transport, servers, request, limit, settle);
    settled.await.map_err(|failures| AdminError {
        did: "took the file",
        failures,
    })
}

/// Sends an operator's `request` to each of `servers` in turn, straight to the one a
/// server names as active, until `settle` makes something of an answer; each server's
/// answer or failure otherwise, in the order asked.
async fn to_active<T: Transport, R>(
    transport: &T,
    servers: &[(String, ServerId)],
    request: ClientRequest,
    limit: Duration,
    settle: impl Fn(ReplyResult, ServerId) -> Option<R>,
) -> Result<R, Vec<(ServerId, String)>> {
    let mut failures = Vec::new();
    let mut order: Vec<usize> = (0..servers.len()).collect();
    let mut at = 0;
    while let Some(&i) = order.get(at) {
        at += 1;
        let (addr, server) = &servers[i];
        let reply = ask(transport, addr, *server, request.clone(), limit).await;
        let result = match reply {
            Ok(reply) => reply.result,
            Err(why) => {
                failures.push((*server, why));
                continue;
            }
        };
        let result = match result {
            ReplyResult::Denied(Denial::NotActive {
                active: Some(active),
            }) => {
                failures.push((*server, format!("not active; #{} is", active.get())));
                // Ask the active one next, if it has not been asked yet.
                if let Some(j) = servers.iter().position(|(_, s)| *s == active)
                    && !order[..at].contains(&j)
                {
                    order.retain(|&k| k != j);
                    order.insert(at, j);
                }
                continue;
            }
            other => other,
        };
        let described = match &result {
            ReplyResult::Denied(denial) => denial.to_string(),
            other => format!("answered {other:?}"),
        };
        match settle(result, *server) {
            Some(settled) => return Ok(settled),
            None => failures.push((*server, described)),
        }
    }
    Err(failures)
}

/// Sends `request` to server `server` at `addr` on an operator's connection and waits up
/// to `limit` for the answer.
async fn ask<T: Transport>(
    transport: &T,
    addr: &str,
    server: ServerId,
    request: ClientRequest,
    limit: Duration,
) -> Result<ServerReply, String> {
    let asked = async {
        let mut link = operator_link(transport, addr, server).await?;
        link.send(Message::Request(request))
            .await
            .map_err(|e| e.to_string())?;
        let answer = link.next().await;
        let _ = link.close().await;
        match answer {
            Some(Ok(Message::Reply(reply))) => Ok(reply),
            Some(Ok(Message::Refused { reason })) => Err(format!("refused: {reason}")),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(_)) => Err("not an answer to the request".to_string()),
            None => Err("closed before answering".to_string()),
        }
    };
    tokio::time::timeout(limit, asked)
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}
