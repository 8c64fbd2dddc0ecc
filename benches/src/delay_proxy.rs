//! A TCP proxy that delays every byte by a fixed time in each direction: the nemesis's
//! latency between two servers, since the kernel it was written on has no netem. The
//! servers' peer connections are sent to it by an nftables DNAT rule
//! ([`crate::netns::Network::redirect`]); it forwards from the root namespace, and copies
//! bytes unchanged (TLS included), in order, each chunk written `delay` after it was read.
//! A connection's delay is that of the proxy it goes through, so a connection lives and
//! dies with its proxy: dropping the proxy closes them all, and the servers dial again.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Chunks read and not yet written, per direction: the most a proxy buffers is this many
/// reads.
const CHUNKS_QUEUED_MAX: usize = 256;

/// The most bytes read at once.
const CHUNK_BYTES_MAX: usize = 16 * 1024;

/// A running proxy.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddrV4,
    bytes: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on `listen_ip` (a port of its own) and forwards each connection to
    /// `target`, every byte `delay` late in each direction.
    pub async fn start(
        listen_ip: Ipv4Addr,
        target: SocketAddrV4,
        delay: Duration,
    ) -> Result<DelayProxy> {
        let listener = TcpListener::bind((listen_ip, 0))
            .await
            .with_context(|| format!("delay proxy: cannot listen on {listen_ip}"))?;
        let addr = match listener.local_addr()? {
            SocketAddr::V4(addr) => addr,
            SocketAddr::V6(addr) => bail!("delay proxy: listening on IPv6 {addr}"),
        };
        let bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (counted, accepted) = (Arc::clone(&bytes), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            // Owned here: aborting this task drops the set, which aborts every connection.
            let mut open = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::Relaxed);
                let counted = Arc::clone(&counted);
                open.spawn(async move {
                    let _ = forward(inbound, target, delay, counted).await;
                });
                while open.try_join_next().is_some() {}
            }
        });
        Ok(DelayProxy {
            addr,
            bytes,
            connections,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes_forwarded(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    inbound: TcpStream,
    target: SocketAddrV4,
    delay: Duration,
    bytes: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let outbound = TcpStream::connect(target).await?;
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::try_join!(
        delayed_copy(in_read, out_write, delay, Arc::clone(&bytes)),
        delayed_copy(out_read, in_write, delay, bytes),
    )?;
    Ok(())
}

/// Copies `from` to `to`, each chunk `delay` after it was read, until `from` ends.
async fn delayed_copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
    bytes: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_QUEUED_MAX);
    let reading = async move {
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES_MAX];
            let n = from.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            chunk.truncate(n);
            if queue.send((Instant::now() + delay, chunk)).await.is_err() {
                return Ok(());
            }
        }
    };
    let writing = async {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            to.write_all(&chunk).await?;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        to.shutdown().await
    };
    tokio::try_join!(reading, writing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_arrive_in_order_and_no_sooner_than_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let SocketAddr::V4(target) = echo.local_addr().expect("addr") else {
            panic!("IPv4 expected");
        };
        tokio::spawn(async move {
            let (mut stream, _) = echo.accept().await.expect("accept");
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let delay = Duration::from_millis(100);
        let proxy = DelayProxy::start(Ipv4Addr::LOCALHOST, target, delay)
            .await
            .expect("proxy");
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
        let sent: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let started = Instant::now();
        client.write_all(&sent).await.expect("write");
        let mut back = vec![0u8; sent.len()];
        client.read_exact(&mut back).await.expect("read");
        // Through the proxy twice (there and back): two delays at least.
        assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
        assert_eq!(back, sent);
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.bytes_forwarded(), 2 * sent.len() as u64);
        drop(proxy);
        // The connection closes with its proxy.
        let mut rest = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest));
        assert!(matches!(end.await, Ok(Ok(0)) | Ok(Err(_))));
    }
}
