//! The byte streams a node talks over, as a trait: tokio TCP in production
//! ([`TcpTransport`]), turmoil's simulated TCP in the simulator. The node driver and the
//! client session are generic over it, so the simulator runs the production code.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// How a node opens and accepts connections. Addresses are `host:port` strings.
pub trait Transport: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Listener: Listener<Stream = Self::Stream>;

    /// Listens on `addr`.
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Connects to `addr`.
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// A bound listener.
pub trait Listener: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection and the address it came from.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;

    /// The address listened on (with the real port when bound to port 0).
    fn local_addr(&self) -> io::Result<String>;
}

/// Real TCP through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: &str) -> io::Result<tokio::net::TcpStream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        // Small frames, latency matters: no Nagle.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(tokio::net::TcpStream, String)> {
        let (stream, from) = tokio::net::TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok((stream, from.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        tokio::net::TcpListener::local_addr(self).map(|a| a.to_string())
    }
}
