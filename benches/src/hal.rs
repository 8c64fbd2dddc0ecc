//! HAL under the load and failover measurements: a client is hal-net's own [`Session`]
//! (what `hal-net checkout` and an application's license library run), the cluster a
//! [`Triad`] of real `hal-net serve` processes.

use anyhow::Result;
use hal_core::ServerId;
use hal_core::client::ClientConfig;
use hal_core::protocol::{ClientId, Handle, RequestSeq};
use hal_core::timing::Timing;
use hal_net::clock::SystemClock;
use hal_net::session::{Answered, Session};
use hal_net::tls_transport::ClientTransport;

use crate::failover::{Cluster, Fault};
use crate::load::Seats;
use crate::triad::{FEATURE, Triad};

/// One license client of the triad.
#[derive(Debug)]
pub struct HalSeats {
    session: Session<ClientTransport, SystemClock>,
    /// A checkout whose wait was given up (a timeout around `checkout`): the session
    /// still asks, so the next checkout waits for that one rather than ask twice.
    unanswered: Option<RequestSeq>,
}

impl HalSeats {
    /// Client `id` (unique per run) for the servers at `addrs` (`host:port`, path order)
    /// running with `timing`, over `transport`.
    pub fn new(
        transport: ClientTransport,
        addrs: Vec<String>,
        id: u64,
        timing: Timing,
    ) -> HalSeats {
        let session = Session::new(
            transport,
            SystemClock::new(),
            addrs,
            ClientId(id),
            "bench",
            "bench",
            ClientConfig::new(timing),
        );
        HalSeats {
            session,
            unanswered: None,
        }
    }

    /// The session, for what the soak checks.
    pub fn session(&mut self) -> &mut Session<ClientTransport, SystemClock> {
        &mut self.session
    }

    /// Waits for the answer to `seq`: the handle granted or released, or the denial.
    async fn answer(&mut self, seq: RequestSeq) -> Result<Handle, String> {
        match self.session.answer(seq, |_| {}).await {
            Answered::Granted { handle, .. } | Answered::Released { handle, .. } => Ok(handle),
            Answered::Denied { reason, .. } => Err(reason.to_string()),
            Answered::Unknown { .. } => Err("no answer (outcome unknown)".to_string()),
        }
    }
}

impl Seats for HalSeats {
    type Held = Handle;

    async fn checkout(&mut self) -> Result<Handle, String> {
        // A seat held now was granted to a checkout whose wait was given up: give it
        // back (the answer is not waited for), so abandoned waits do not use up COUNT.
        // (Not while a given-up checkout is outstanding: a seat held may be its grant,
        // whose event is still queued, and is handed to the caller below.)
        if self.unanswered.is_none() {
            let strays: Vec<Handle> = self.session.client().seats().keys().copied().collect();
            for handle in strays {
                self.session.checkin(handle);
            }
        }
        let seq = match self.unanswered {
            Some(seq) => seq,
            None => self.session.checkout(FEATURE),
        };
        // Cancelled mid-wait, the request stays outstanding until answered here.
        self.unanswered = Some(seq);
        let answer = self.answer(seq).await;
        self.unanswered = None;
        answer
    }

    async fn checkin(&mut self, handle: Handle) -> Result<(), String> {
        let seq = self.session.checkin(handle);
        self.answer(seq).await.map(|_| ())
    }
}

/// Client ids of one process, apart from those of other runs on the same triad.
pub fn client_id_base() -> u64 {
    u64::from(std::process::id()) << 24
}

impl Cluster for Triad {
    type Client = HalSeats;

    async fn client(&mut self, n: u64) -> Result<HalSeats> {
        Ok(HalSeats::new(
            self.transport(),
            self.addrs(),
            client_id_base() + n + 1,
            self.timing(),
        ))
    }

    async fn ready(&mut self) -> Result<usize> {
        // #1 serves when all are well: wait for it (after a failover, #2 hands back once
        // #1 has been back for the failback hold).
        let limit = std::time::Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let reports = self.statuses().await;
            let whole = reports.iter().all(|r| {
                r.as_ref()
                    .is_ok_and(|r| r.peers.iter().all(|p| p.connected))
            });
            let first_active = reports.first().is_some_and(|r| {
                r.as_ref()
                    .is_ok_and(|r| r.role == hal_core::server::Role::Active)
            });
            if whole && first_active {
                return Ok(0);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the triad was not whole with #1 active within {limit:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    fn inject(&mut self, fault: Fault, member: usize) -> Result<()> {
        let id = ServerId::ALL[member];
        match fault {
            Fault::Kill => self.kill(id),
            Fault::Partition => self.partition(id),
        }
    }

    async fn repair(&mut self, fault: Fault, member: usize) -> Result<()> {
        match fault {
            Fault::Kill => self.restart(ServerId::ALL[member]),
            Fault::Partition => self.heal(),
        }
    }
}
