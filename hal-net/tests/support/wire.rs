//! Talking to real servers as a program on the LAN would: TLS connections with any
//! certificate (or none) from any loopback address, and the wire protocol on top.

#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test support: a failed step is a failed test

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hal_net::wire::{FRAME_BYTES_MAX_PEER, Hello, Message, WireCodec};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

/// A TLS connection with the wire codec on top.
pub type Link = Framed<TlsStream<TcpStream>, WireCodec>;

/// A runtime for a test's network side (its servers run as processes).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A TLS connector that trusts the CA at `ca` and presents `client` (a certificate and
/// its key), built with rustls directly so that it can present anything.
pub fn connector(ca: &Path, client: Option<(&Path, &Path)>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in hal_net::tls::files::read_certs(ca).unwrap() {
        roots.add(cert).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = hal_net::tls::files::read_certs(cert).unwrap();
            let (key, _) = hal_net::tls::files::read_key(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![hal_net::tls::ALPN_HAL.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A TCP connection to `port` on 127.0.0.1 from the address `source`.
pub async fn tcp_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

/// A TLS link to `port` from `source`, with the wire codec on top.
pub async fn link(tls: &TlsConnector, source: Ipv4Addr, port: u16) -> std::io::Result<Link> {
    let tcp = tcp_from(source, port).await?;
    let name = hal_net::tls::server_name("127.0.0.1").unwrap();
    let stream = tls.connect(name, tcp).await?;
    Ok(Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER)))
}

/// Says `hello` and returns the answer (`None`: the connection closed or failed).
pub async fn hello(link: &mut Link, hello: Hello) -> Option<Message> {
    link.send(Message::Hello(hello)).await.ok()?;
    tokio::time::timeout(Duration::from_secs(5), link.next())
        .await
        .ok()
        .flatten()
        .and_then(Result::ok)
}
