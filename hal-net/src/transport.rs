//! The byte streams a node talks over, as a trait: tokio TCP in production (TLS,
//! [`crate::tls_transport::TlsTransport`], or plaintext when both sides are told so,
//! [`TcpTransport`]), turmoil's simulated TCP in the simulator. The node driver and the
//! client session are generic over it, so the simulator runs the production code.
//!
//! A transport also says who is at the other end: a connection is dialled to a given
//! server slot and fails unless the other end proves to be that server, and an accepted
//! connection comes with what its other end proved ([`Proven`]). Over TLS the proof is a
//! certificate from the triad's CA; in the simulator, the simulated network vouches for
//! its hosts; over plaintext nothing is proven, and a peer's word is taken.

use std::future::Future;
use std::io;

use hal_core::ServerId;
use tokio::io::{AsyncRead, AsyncWrite};

/// What the other end of an accepted connection proved about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proven {
    /// Nothing: a license client or an operator's status query, which need no certificate.
    Nothing,
    /// It is the server in this slot of the triad (a certificate from the triad's CA).
    Server(ServerId),
    /// It holds the triad's admin certificate.
    Admin,
    /// Nothing can be proven: the triad runs in plaintext (`insecure_plaintext`), and the
    /// other end's word is taken.
    Plaintext,
}

impl Proven {
    /// Whether the other end may speak as server `id` on a peer link.
    pub fn may_be_server(self, id: ServerId) -> bool {
        self == Proven::Server(id) || self == Proven::Plaintext
    }
}

/// How a node opens and accepts connections. Addresses are `host:port` strings.
pub trait Transport: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A connection as the listener hands it over, before [`Transport::secure`].
    type Accepted: Send + 'static;
    type Listener: Listener<Accepted = Self::Accepted>;

    /// Listens on `addr`.
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Connects to `addr`, the address of server `server` (its position in the triad list
    /// or license path), and fails unless the other end proves to be that server.
    fn connect(
        &self,
        addr: &str,
        server: ServerId,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Completes an accepted connection (the TLS handshake) and says what the other end
    /// proved. Called on the connection's own task, under the handshake timeout.
    fn secure(
        &self,
        accepted: Self::Accepted,
    ) -> impl Future<Output = io::Result<(Self::Stream, Proven)>> + Send;
}

/// A bound listener.
pub trait Listener: Send + 'static {
    type Accepted: Send + 'static;

    /// The next connection and the address it came from.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Accepted, String)>> + Send;

    /// The address listened on (with the real port when bound to port 0).
    fn local_addr(&self) -> io::Result<String>;
}

/// The slot of the server at `index` of a license path of `len` entries: the position in
/// a triad's path, #1 for a single server's.
pub fn slot_in_path(len: usize, index: usize) -> ServerId {
    let position = if len == 1 { 1 } else { index.saturating_add(1) };
    u8::try_from(position)
        .ok()
        .and_then(ServerId::new)
        .unwrap_or(ServerId::PRIMARY)
}

/// Plaintext TCP through tokio: nothing is proven either way. Only for a triad whose
/// servers and clients were all told so (`insecure_plaintext`, `--insecure`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Stream = tokio::net::TcpStream;
    type Accepted = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: &str, _server: ServerId) -> io::Result<tokio::net::TcpStream> {
        tcp_connect(addr).await
    }

    async fn secure(
        &self,
        accepted: tokio::net::TcpStream,
    ) -> io::Result<(tokio::net::TcpStream, Proven)> {
        Ok((accepted, Proven::Plaintext))
    }
}

/// A TCP connection to `addr`, without Nagle (small frames, latency matters).
pub async fn tcp_connect(addr: &str) -> io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Listener for tokio::net::TcpListener {
    type Accepted = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(tokio::net::TcpStream, String)> {
        let (stream, from) = tokio::net::TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok((stream, from.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        tokio::net::TcpListener::local_addr(self).map(|a| a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_position_is_a_slot() {
        assert_eq!(slot_in_path(3, 0), ServerId::PRIMARY);
        assert_eq!(slot_in_path(3, 2), ServerId::TIEBREAKER);
        assert_eq!(slot_in_path(1, 0), ServerId::PRIMARY);
    }

    #[test]
    fn only_a_proof_or_plaintext_lets_a_connection_speak_as_a_server() {
        assert!(Proven::Server(ServerId::SECONDARY).may_be_server(ServerId::SECONDARY));
        assert!(!Proven::Server(ServerId::TIEBREAKER).may_be_server(ServerId::SECONDARY));
        assert!(!Proven::Nothing.may_be_server(ServerId::SECONDARY));
        assert!(!Proven::Admin.may_be_server(ServerId::PRIMARY));
        assert!(Proven::Plaintext.may_be_server(ServerId::PRIMARY));
    }
}
