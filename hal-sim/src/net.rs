//! hal-net's [`Transport`] over turmoil's simulated TCP: the node driver and the client
//! session run unchanged on top of it.
//!
//! # Identity
//!
//! The simulator does not run TLS (its handshakes would need randomness drawn from the
//! seed, and cost time every run for nothing the invariants check). Instead the simulated
//! network vouches for its hosts, as a certificate would: a connection accepted from the
//! host `server2` has proven slot #2 ([`Proven::Server`]); any other host has proven
//! nothing, so a host that only *claims* a slot in its hello is refused as an
//! unauthenticated peer would be in production. The operator's machine
//! ([`OPERATOR_HOST`]) has proven the admin certificate ([`Proven::Admin`]), as an
//! administrator presents it. Dialling `server2:6200` reaches `server2`, as a certificate
//! check would ensure. The map from hosts to slots is fixed
//! ([`crate::faults::host`]), so histories stay deterministic.
//!
//! A planted bug ([`SimTransport::danger_believing_hellos`]) proves nothing and takes
//! every hello's word, as a triad run in plaintext would: the proof that an impostor
//! step (`hal-sim/src/impostor.rs`) is welcomed when nothing vouches for peers.

use std::io;

use hal_core::ServerId;
use hal_net::transport::{Listener, Proven, Transport};

/// The machine an operator's status queries and administrative requests come from; the
/// network vouches that it holds the admin certificate.
pub(crate) const OPERATOR_HOST: &str = "operator";

/// turmoil's TCP. Addresses are `host:port`, with turmoil host names (`server1:6200`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimTransport {
    /// A planted bug: connections accepted prove nothing, and a peer's hello is believed.
    believes_hellos: bool,
}

impl SimTransport {
    /// The simulated network, vouching for its hosts.
    pub const fn new() -> SimTransport {
        SimTransport {
            believes_hellos: false,
        }
    }

    /// DANGER, a planted bug (`--plant trust-hello`): every accepted connection has proven
    /// nothing and its hello is believed ([`Proven::Plaintext`]), so a host that claims a
    /// slot gets it. Only for proving that the impostor step catches such a hole.
    pub const fn danger_believing_hellos() -> SimTransport {
        SimTransport {
            believes_hellos: true,
        }
    }
}

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
    type Accepted = turmoil::net::TcpStream;
    type Listener = SimListener;

    async fn bind(&self, addr: &str) -> io::Result<SimListener> {
        turmoil::net::TcpListener::bind(split(addr)?)
            .await
            .map(SimListener)
    }

    /// Connects, and refuses a host that is not `server` (as a certificate for another
    /// slot is refused), so the simulated clients check slots as real ones do.
    async fn connect(&self, addr: &str, server: ServerId) -> io::Result<turmoil::net::TcpStream> {
        let (host, port) = split(addr)?;
        if host != crate::faults::host(server) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{addr} is not server {server}"),
            ));
        }
        turmoil::net::TcpStream::connect((host, port)).await
    }

    async fn secure(
        &self,
        accepted: turmoil::net::TcpStream,
    ) -> io::Result<(turmoil::net::TcpStream, Proven)> {
        if self.believes_hellos {
            return Ok((accepted, Proven::Plaintext));
        }
        let from = accepted.peer_addr()?.ip();
        let proven = crate::faults::servers()
            .into_iter()
            .find(|&id| turmoil::lookup(crate::faults::host(id)) == from)
            .map_or(Proven::Nothing, Proven::Server);
        let proven = match proven {
            Proven::Nothing if turmoil::reverse_lookup(from).as_deref() == Some(OPERATOR_HOST) => {
                Proven::Admin
            }
            proven => proven,
        };
        Ok((accepted, proven))
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
    type Accepted = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(turmoil::net::TcpStream, String)> {
        let (stream, from) = self.0.accept().await?;
        Ok((stream, from.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        self.0.local_addr().map(|a| a.to_string())
    }
}
