//! A byte stream that remembers when bytes last moved each way, so that a link is judged
//! stalled by progress rather than by whole frames: a snapshot of many megabytes takes
//! longer than a stall timeout to cross a slow link, but its bytes keep moving.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When bytes last moved, shared between a stream and whoever watches it.
#[derive(Debug)]
pub(super) struct Moved {
    origin: Instant,
    read_ms: AtomicU64,
    written_ms: AtomicU64,
}

impl Moved {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long since bytes last arrived.
    pub(super) fn read_idle(&self) -> Duration {
        let last = self.read_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    /// How long since bytes were last accepted for sending.
    pub(super) fn write_idle(&self) -> Duration {
        let last = self.written_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

/// `S`, recording progress in a shared [`Moved`].
#[derive(Debug)]
pub(super) struct Progress<S> {
    inner: S,
    moved: Arc<Moved>,
}

impl<S> Progress<S> {
    pub(super) fn new(inner: S) -> Progress<S> {
        let moved = Moved {
            origin: Instant::now(),
            read_ms: AtomicU64::new(0),
            written_ms: AtomicU64::new(0),
        };
        Progress {
            inner,
            moved: Arc::new(moved),
        }
    }

    pub(super) fn moved(&self) -> Arc<Moved> {
        self.moved.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Progress<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.moved.now_ms();
            self.moved.read_ms.store(now, Ordering::Relaxed);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Progress<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll
            && *n > 0
        {
            let now = self.moved.now_ms();
            self.moved.written_ms.store(now, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
