//! A waiting checkout's turn: with the one seat of the license held, a second client
//! checks out with `--wait` and is queued; the holder checks in, and the time is taken
//! from sending that checkin until the waiting client holds the seat. The active server
//! tells the waiter as soon as the grant is committed, so what it measures is two commits
//! (the checkin's and the turn's) and a message, not the waiter's next ask.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hal_core::client::ClientEvent;
use hal_core::protocol::{ClientId, Handle};
use hal_net::clock::SystemClock;
use hal_net::session::{Answered, Session};
use hal_net::tls_transport::ClientTransport;
use tokio::sync::oneshot;

use crate::triad::{FEATURE, Triad};

/// What the rounds came to.
#[derive(Debug)]
pub struct QueueRun {
    /// Each round's time from the checkin sent to the waiter's grant, in ms.
    pub turn_ms: Vec<f64>,
}

impl QueueRun {
    /// The figures as one line: `queue: rounds=… turn_p50_ms=… turn_min_ms=… turn_max_ms=…`.
    pub fn line(&self) -> String {
        let mut sorted = self.turn_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(i).copied().unwrap_or(f64::NAN)
        };
        format!(
            "queue: rounds={} turn_p50_ms={:.1} turn_min_ms={:.1} turn_max_ms={:.1}",
            sorted.len(),
            at(0.5),
            at(0.0),
            at(1.0)
        )
    }
}

type Client = Session<ClientTransport, SystemClock>;

/// How long one step of a round may take.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// A client of the triad, `id` apart from every other.
fn client(triad: &Triad, id: u64) -> Client {
    Session::new(
        triad.transport(),
        SystemClock::new(),
        triad.addrs(),
        ClientId(id),
        "bench",
        "bench",
        hal_core::client::ClientConfig::new(triad.timing()),
    )
}

/// Waits for `seq`'s answer: the seat granted (or released), else an error.
async fn seat(session: &mut Client, seq: hal_core::protocol::RequestSeq) -> Result<Handle> {
    let answered = tokio::time::timeout(STEP_LIMIT, session.answer(seq, |_| {}))
        .await
        .context("no answer in time")?;
    match answered {
        Answered::Granted { handle, .. } | Answered::Released { handle, .. } => Ok(handle),
        other => bail!("{other:?}"),
    }
}

/// Runs `rounds` rounds against `triad`, whose license has one seat.
pub async fn measure(triad: &Triad, rounds: usize) -> Result<QueueRun> {
    let base = crate::hal::client_id_base() + (1 << 22);
    let mut holder = client(triad, base);
    let mut waiter = Some(client(triad, base + 1));
    let mut turn_ms = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let seq = holder.checkout(FEATURE);
        let held = seat(&mut holder, seq)
            .await
            .with_context(|| format!("round {round}: the holder's checkout"))?;
        let mut session = waiter.take().context("the waiter's session")?;
        let (queued_tx, queued) = oneshot::channel();
        let waiting = tokio::spawn(async move {
            let seq = session.checkout_wait(FEATURE, Duration::from_secs(60));
            let mut queued_tx = Some(queued_tx);
            let answered = session
                .answer(seq, |event| {
                    if let ClientEvent::Queued { .. } = event
                        && let Some(tx) = queued_tx.take()
                    {
                        let _ = tx.send(());
                    }
                })
                .await;
            (session, answered, Instant::now())
        });
        tokio::time::timeout(STEP_LIMIT, queued)
            .await
            .with_context(|| format!("round {round}: the waiter was not queued in time"))?
            .with_context(|| format!("round {round}: the waiter stopped before it was queued"))?;
        let sent = Instant::now();
        let seq = holder.checkin(held);
        seat(&mut holder, seq)
            .await
            .with_context(|| format!("round {round}: the holder's checkin"))?;
        let (mut session, answered, granted) = tokio::time::timeout(STEP_LIMIT, waiting)
            .await
            .with_context(|| format!("round {round}: the waiter got no seat in time"))?
            .context("the waiter's task failed")?;
        let Answered::Granted { handle, .. } = answered else {
            bail!("round {round}: the waiter was answered {answered:?}");
        };
        turn_ms.push(granted.duration_since(sent).as_secs_f64() * 1000.0);
        let seq = session.checkin(handle);
        seat(&mut session, seq)
            .await
            .with_context(|| format!("round {round}: the waiter's checkin"))?;
        waiter = Some(session);
    }
    Ok(QueueRun { turn_ms })
}
