//! hal-net's [`Transport`] over turmoil's simulated TCP: the node driver and the client
//! session run unchanged on top of it.

use std::io;

use hal_net::transport::{Listener, Transport};

/// turmoil's TCP. Addresses are `host:port`, with turmoil host names (`server1:6200`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimTransport;

/// `host:port` as turmoil wants it.
fn split(addr: &str) -> io::Result<(&str, u16)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not host:port: {addr}"),
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((host, port))
}

impl Transport for SimTransport {
    type Stream = turmoil::net::TcpStream;
    type Listener = SimListener;

    async fn bind(&self, addr: &str) -> io::Result<SimListener> {
        turmoil::net::TcpListener::bind(split(addr)?)
            .await
            .map(SimListener)
    }

    async fn connect(&self, addr: &str) -> io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect(split(addr)?).await
    }
}

/// turmoil's listener, as a hal-net [`Listener`].
pub struct SimListener(turmoil::net::TcpListener);

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(turmoil::net::TcpStream, String)> {
        let (stream, from) = self.0.accept().await?;
        Ok((stream, from.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        self.0.local_addr().map(|a| a.to_string())
    }
}
