//! [`TlsTransport`]: tokio TCP under TLS (rustls), the transport servers and clients use
//! unless both sides are told to run in plaintext.
//!
//! Dialling proves the other end: its certificate must chain to the triad's CA, name the
//! host dialled, and name the slot the caller expects (its place in the triad list or the
//! license path); otherwise the connection fails with an error that says which. Accepting
//! reports what the other end proved with its certificate, if it showed one (license
//! clients and `status` show none).

use std::io;

use hal_core::ServerId;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::tls::{CertRole, ServerTls, peer_role, server_name};
use crate::transport::{Proven, Transport, tcp_connect};

/// TLS over TCP: a server's (it accepts and dials its peers with its own certificate) or
/// a client's (it dials only).
#[derive(Clone)]
pub struct TlsTransport {
    acceptor: Option<TlsAcceptor>,
    connector: TlsConnector,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("accepts", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsTransport {
    /// A server's transport: it accepts with its certificate, and dials its peers with it.
    pub fn server(tls: &ServerTls) -> TlsTransport {
        TlsTransport {
            acceptor: Some(tls.acceptor()),
            connector: tls.peer_connector(),
        }
    }

    /// A client's transport (from [`crate::tls::client_connector`]): it only dials.
    pub fn client(connector: TlsConnector) -> TlsTransport {
        TlsTransport {
            acceptor: None,
            connector,
        }
    }
}

impl Transport for TlsTransport {
    type Stream = TlsStream<TcpStream>;
    type Accepted = TcpStream;
    type Listener = TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: &str, server: ServerId) -> io::Result<Self::Stream> {
        let host = host_of(addr);
        let name = server_name(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = tcp_connect(addr).await?;
        let stream = self.connector.connect(name, tcp).await.map_err(|e| {
            // A server in plaintext answers a ClientHello with a frame, or closes.
            let hint = match e.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                    " (a server running with insecure_plaintext speaks no TLS)"
                }
                _ => "",
            };
            io::Error::new(
                e.kind(),
                format!("TLS handshake with {addr} failed: {e}{hint}"),
            )
        })?;
        match peer_role(stream.get_ref().1) {
            Some(CertRole::Server(id)) if id == server => Ok(TlsStream::Client(stream)),
            other => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the server at {addr} is {} by its certificate, but server {server} is expected there (its place in the list)",
                    other.map_or_else(|| "no HAL server".to_string(), |role| role.to_string())
                ),
            )),
        }
    }

    async fn secure(&self, accepted: TcpStream) -> io::Result<(Self::Stream, Proven)> {
        let Some(acceptor) = &self.acceptor else {
            return Err(io::Error::other(
                "a client's transport accepts no connections",
            ));
        };
        let stream = acceptor.accept(accepted).await?;
        let proven = match peer_role(stream.get_ref().1) {
            None => Proven::Nothing,
            Some(CertRole::Server(id)) => Proven::Server(id),
            Some(CertRole::Admin) => Proven::Admin,
        };
        Ok((TlsStream::Server(stream), proven))
    }
}

/// The host of `host:port` (`[v6]:port` without its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_part_before_the_port() {
        assert_eq!(host_of("127.0.0.1:6200"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6200"), "::1");
        assert_eq!(host_of("lic1.example.com:6200"), "lic1.example.com");
    }
}

/// A client's transport as its operator chose it: TLS against the triad's CA (the
/// default), or plaintext when told `--insecure`.
#[derive(Debug, Clone)]
pub enum ClientTransport {
    Tls(TlsTransport),
    /// Plaintext: nothing about the servers is verified.
    Insecure(crate::transport::TcpTransport),
}

impl Transport for ClientTransport {
    type Stream = tokio_util::either::Either<TlsStream<TcpStream>, TcpStream>;
    type Accepted = TcpStream;
    type Listener = TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: &str, server: ServerId) -> io::Result<Self::Stream> {
        use tokio_util::either::Either;
        match self {
            ClientTransport::Tls(tls) => tls.connect(addr, server).await.map(Either::Left),
            ClientTransport::Insecure(tcp) => tcp.connect(addr, server).await.map(Either::Right),
        }
    }

    async fn secure(&self, _accepted: TcpStream) -> io::Result<(Self::Stream, Proven)> {
        Err(io::Error::other(
            "a client's transport accepts no connections",
        ))
    }
}
