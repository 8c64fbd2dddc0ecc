//! The datagram sockets discovery runs over, as a trait ([`DatagramSocket`]): tokio's UDP
//! in production, turmoil's in the simulator (hal-sim wraps it), so that both run the
//! same responder and the same search. And the production sockets themselves, set up
//! with socket2: the server's on the wildcard address of its own port, shared
//! (`SO_REUSEADDR`) and optionally in a multicast group; the client's on an ephemeral
//! port, allowed to broadcast.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

/// A UDP socket, as discovery uses one.
pub trait DatagramSocket: Send + Sync + 'static {
    /// Sends `bytes` to `to`.
    fn send_to(
        &self,
        bytes: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Waits for a datagram; its length (at most `buffer.len()`, the rest cut off) and
    /// its source.
    fn recv_from(
        &self,
        buffer: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
}

impl DatagramSocket for tokio::net::UdpSocket {
    fn send_to(
        &self,
        bytes: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        tokio::net::UdpSocket::send_to(self, bytes, to)
    }

    fn recv_from(
        &self,
        buffer: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        tokio::net::UdpSocket::recv_from(self, buffer)
    }
}

/// A server's discovery socket: bound to `0.0.0.0:port` (the port the server takes
/// clients on), so that datagrams broadcast to that port on any interface arrive. With
/// `SO_REUSEADDR`, so that several servers on one machine (tests, a development triad)
/// can all bind it, and each receives every broadcast and multicast datagram.
///
/// With `multicast`, it joins that group on the interface with that address
/// (`0.0.0.0`: the one the routing table picks). A failed join does not fail the
/// socket: it is returned beside it, for the caller to report, as the broadcasts still
/// arrive. Must be called inside a tokio runtime.
pub fn server_socket(
    port: u16,
    multicast: Option<(Ipv4Addr, Ipv4Addr)>,
) -> io::Result<(tokio::net::UdpSocket, Option<io::Error>)> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    let join_error =
        multicast.and_then(|(group, interface)| socket.join_multicast_v4(&group, &interface).err());
    let socket = tokio::net::UdpSocket::from_std(socket.into())?;
    Ok((socket, join_error))
}

/// A client's socket for one search: an ephemeral port on all interfaces, allowed to
/// send to broadcast addresses; multicast leaves from `interface` when given (else the
/// routing table's choice) and goes no further than the local network (TTL 1). Must be
/// called inside a tokio runtime.
pub fn client_socket(interface: Option<Ipv4Addr>) -> io::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_broadcast(true)?;
    socket.set_multicast_ttl_v4(1)?;
    if let Some(interface) = interface {
        socket.set_multicast_if_v4(&interface)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}
