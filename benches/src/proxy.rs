//! A TCP proxy in front of one server that can play a network partition without root:
//! it reads each connection's hello to learn who is on the other end (a peer server, a
//! client or an operator tool), then copies bytes both ways. It needs a plaintext triad
//! (`insecure_plaintext`): under TLS it cannot read the hello. While a server is isolated,
//! every connection to or from it turns into a black hole: bytes are read and dropped,
//! nothing is closed, as when a network silently loses packets, so the servers find out
//! by their own timeouts. A connection that lost bytes stays a black hole after the heal
//! (its stream is no longer whole); new connections then work again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use anyhow::{Context, Result};
use bytes::BytesMut;
use hal_core::ServerId;
use hal_net::wire::{FRAME_BYTES_MAX_UNIDENTIFIED, Hello, Message, WireCodec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;

/// No server isolated.
const NONE: u8 = 0;

/// The proxy in front of one server.
#[derive(Debug)]
pub struct Proxy {
    isolated: Arc<AtomicU8>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`front` and forwards to 127.0.0.1:`back`, where server `id`
    /// listens.
    pub async fn start(id: ServerId, front: u16, back: u16) -> Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", front))
            .await
            .with_context(|| format!("proxy for server #{id}: cannot listen on port {front}"))?;
        let isolated = Arc::new(AtomicU8::new(NONE));
        let shared = Arc::clone(&isolated);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let isolated = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = forward(stream, id, back, isolated).await;
                });
            }
        });
        Ok(Proxy { isolated, task })
    }

    /// Isolates server `id` (every proxy of a triad is told the same).
    pub fn isolate(&self, id: ServerId) {
        self.isolated.store(id.get(), Ordering::SeqCst);
    }

    /// Ends the isolation.
    pub fn heal(&self) {
        self.isolated.store(NONE, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection's fate: which servers it joins and whether it has lost bytes.
struct Route {
    ends: [Option<u8>; 2],
    isolated: Arc<AtomicU8>,
    broken: AtomicBool,
}

impl Route {
    /// Whether bytes on this connection are dropped now (sticky once true).
    fn dropping(&self) -> bool {
        if self.broken.load(Ordering::SeqCst) {
            return true;
        }
        let isolated = self.isolated.load(Ordering::SeqCst);
        if isolated != NONE && self.ends.contains(&Some(isolated)) {
            self.broken.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }
}

async fn forward(
    mut inbound: TcpStream,
    to: ServerId,
    back: u16,
    isolated: Arc<AtomicU8>,
) -> Result<()> {
    inbound.set_nodelay(true)?;
    // Read until the hello decodes, to learn whether a peer server is dialling.
    let mut first = BytesMut::new();
    let mut codec = WireCodec::new(FRAME_BYTES_MAX_UNIDENTIFIED);
    let from = loop {
        if inbound.read_buf(&mut first).await? == 0 {
            return Ok(());
        }
        let mut probe = first.clone();
        match codec.decode(&mut probe) {
            Ok(Some(Message::Hello(Hello::Peer { from, .. }))) => break Some(from.get()),
            Ok(Some(_)) | Err(_) => break None,
            Ok(None) => {}
        }
    };
    let route = Arc::new(Route {
        ends: [Some(to.get()), from],
        isolated,
        broken: AtomicBool::new(false),
    });
    let mut outbound = if route.dropping() {
        // The server is unreachable: hold the connection open and drop what it sends.
        return drain(inbound).await;
    } else {
        TcpStream::connect(("127.0.0.1", back)).await?
    };
    outbound.set_nodelay(true)?;
    outbound.write_all(&first).await?;
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = tokio::spawn(copy(in_read, out_write, Arc::clone(&route)));
    let down = copy(out_read, in_write, route).await;
    up.abort();
    down
}

async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    route: Arc<Route>,
) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            if route.dropping() {
                // A close is a packet too: it does not cross a partition.
                std::future::pending::<()>().await;
            }
            return Ok(());
        }
        if !route.dropping() {
            to.write_all(&buf[..n]).await?;
        }
    }
}

async fn drain(mut stream: TcpStream) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while stream.read(&mut buf).await? > 0 {}
    std::future::pending::<()>().await;
    Ok(())
}
