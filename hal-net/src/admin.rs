//! An operator's questions to a running server over the wire: its status report (what
//! `hal-net status` prints), over any [`Transport`] so that the simulator's scenario
//! checks ask exactly what an operator would.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::server::Role;
use tokio_util::codec::Framed;

use crate::transport::Transport;
use crate::wire::{FRAME_BYTES_MAX_PEER, Hello, Message, StatusReport, WireCodec};

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
        let stream = transport
            .connect(addr, server)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
        let hello = Message::Hello(Hello::Admin);
        link.send(hello).await.map_err(|e| e.to_string())?;
        match link.next().await {
            Some(Ok(Message::Welcome { .. })) => {}
            Some(Ok(Message::Refused { reason })) => return Err(format!("refused: {reason}")),
            Some(Ok(_)) => return Err("not a HAL server's answer to hello".to_string()),
            Some(Err(e)) => return Err(format!("handshake: {e}")),
            None => return Err("closed during the handshake".to_string()),
        }
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
