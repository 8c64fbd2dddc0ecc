//! The client for applications on tokio: [`AsyncClient`] and its seat guard [`AsyncSeat`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hal_core::ServerId;
use hal_core::protocol::Handle;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::borrow::{self, BorrowRecord, Borrowed, Returned};
use super::engine::{Command, Engine, SeatGrant};
use super::options::random_client_id;
use super::{EVENTS_QUEUED_MAX, Error, Event, Events, Granted, Options};

/// A license client for an application on tokio. Cheap to clone: clones share one
/// engine (one set of connections, one heartbeat for all seats). The engine runs as a
/// task on the runtime the client was made on, until the client, its clones and its
/// seats are all dropped; it then checks in what the last seats left.
#[derive(Debug, Clone)]
pub struct AsyncClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    options: Options,
    runtime: tokio::runtime::Handle,
    /// Turns true when the engine has stopped.
    stopped: watch::Receiver<bool>,
}

impl AsyncClient {
    /// A client for the servers of `options`, its engine spawned on the current tokio
    /// runtime. Nothing is sent until the first request.
    pub fn new(options: Options) -> Result<AsyncClient, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "AsyncClient::new needs a tokio runtime (outside one, use Client)".to_string(),
            )
        })?;
        Self::on(options, &runtime).map(|(client, _)| client)
    }

    /// A client whose engine runs on `runtime`, and the engine's task.
    pub(super) fn on(
        options: Options,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(AsyncClient, tokio::task::JoinHandle<()>), Error> {
        let id = random_client_id()?;
        let config = options.config();
        // The clock's origin is a tokio instant: made inside the runtime.
        let _entered = runtime.enter();
        let session = options.session(id)?;
        let (events, _) = broadcast::channel(EVENTS_QUEUED_MAX);
        let (commands, queue) = mpsc::unbounded_channel();
        let finish_within = config.give_up_after;
        let engine = Engine::new(session, events.clone(), finish_within);
        let (stop, stopped) = watch::channel(false);
        let task = runtime.spawn(async move {
            engine.run(queue).await;
            let _ = stop.send(true);
        });
        let inner = Inner {
            commands,
            events,
            options,
            runtime: runtime.clone(),
            stopped,
        };
        Ok((
            AsyncClient {
                inner: Arc::new(inner),
            },
            task,
        ))
    }

    /// Checks a seat of `feature` out. The seat is kept alive with heartbeats until the
    /// guard is checked in or dropped, or until it is lost ([`Event::Lost`]).
    pub async fn checkout(&self, feature: &str) -> Result<AsyncSeat, Error> {
        self.checkout_command(feature, None).await
    }

    /// Checks a seat of `feature` out, waiting up to `wait` for one when every seat is in
    /// use: the request waits its turn in the feature's queue, which the servers keep
    /// through a failover ([`Event::Queued`] says where it stands), and is granted as
    /// seats come back. When `wait` is over it is refused
    /// [`Denial::AllInUse`](super::Denial::AllInUse). One request of a client waits at a
    /// time; its other requests go on meanwhile.
    pub async fn checkout_wait(
        &self,
        feature: &str,
        wait: std::time::Duration,
    ) -> Result<AsyncSeat, Error> {
        self.checkout_command(feature, Some(wait)).await
    }

    async fn checkout_command(
        &self,
        feature: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<AsyncSeat, Error> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Checkout {
            feature: feature.to_string(),
            wait,
            reply,
        };
        self.inner
            .commands
            .send(command)
            .map_err(|_| Error::Stopped)?;
        let grant = answer.await.map_err(|_| Error::Stopped)??;
        Ok(AsyncSeat::new(grant, self.inner.commands.clone()))
    }

    /// Borrows a seat of `feature` for `hours` (at most the license's BORROW): the seat
    /// stays this machine's until it ends or is returned, with no server in reach.
    /// Keep the record (in a [`BorrowStore`](super::borrow::BorrowStore), say) to use it
    /// offline and to return it early.
    pub async fn borrow(&self, feature: &str, hours: u32) -> Result<BorrowRecord, Error> {
        borrow::borrow(&self.inner.options, feature, hours, &self.inner.events).await
    }

    /// Gives a borrowed seat back before its end.
    pub async fn return_borrow(&self, record: &BorrowRecord) -> Result<Returned, Error> {
        borrow::return_borrow(&self.inner.options, record, &self.inner.events).await
    }

    /// The current borrow of `feature` on this machine, proved offline by its record in
    /// the [`BorrowStore`](super::BorrowStore) of this user against the options' CA
    /// ([`BorrowStore::borrowed`](super::BorrowStore::borrowed)). No server is asked.
    pub fn borrowed(&self, feature: &str) -> Result<Option<Borrowed>, Error> {
        borrow::borrowed_here(&self.inner.options, feature)
    }

    /// What happens to this client's seats from now on.
    pub fn events(&self) -> Events {
        Events {
            receiver: self.inner.events.subscribe(),
            runtime: self.inner.runtime.clone(),
            keep: None,
        }
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Drops this handle and waits for the engine to stop: once the client's other
    /// clones and its seats are gone too, it finishes the checkins in flight (up to the
    /// time one request may take) and stops. Call it before the runtime ends, so that
    /// the last checkins are heard.
    pub async fn close(self) {
        let mut stopped = self.inner.stopped.clone();
        drop(self);
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}

/// A checked-out seat. Dropping it checks it in without waiting for the answer (a seat
/// whose checkin goes unheard is freed by its lease); [`AsyncSeat::checkin`] waits.
#[derive(Debug)]
pub struct AsyncSeat {
    granted: Granted,
    lost: Arc<AtomicBool>,
    /// `None` once checked in.
    commands: Option<mpsc::UnboundedSender<Command>>,
}

impl AsyncSeat {
    fn new(grant: SeatGrant, commands: mpsc::UnboundedSender<Command>) -> AsyncSeat {
        AsyncSeat {
            granted: grant.granted,
            lost: grant.lost,
            commands: Some(commands),
        }
    }

    /// The seat's handle.
    pub fn handle(&self) -> Handle {
        self.granted.handle
    }

    /// The feature.
    pub fn feature(&self) -> &str {
        &self.granted.feature
    }

    /// The server that answered the checkout.
    pub fn server(&self) -> ServerId {
        self.granted.server
    }

    /// The grant as the servers gave it.
    pub fn granted(&self) -> &Granted {
        &self.granted
    }

    /// Whether the seat is lost: its lease ran out with no heartbeat acknowledged, so
    /// the servers may have given it to someone else.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Checks the seat in and waits for the servers to confirm. An error says the
    /// checkin was not confirmed (the seat is then freed when its lease runs out);
    /// `Denied(UnknownHandle)` that the seat was lost already.
    pub async fn checkin(mut self) -> Result<(), Error> {
        match self.send_checkin() {
            None => Ok(()),
            Some(sent) => sent?.await.map_err(|_| Error::Stopped)?,
        }
    }

    /// Sends the checkin, once: the answer to wait for (`None` if it was sent already).
    pub(super) fn send_checkin(
        &mut self,
    ) -> Option<Result<oneshot::Receiver<Result<(), Error>>, Error>> {
        let commands = self.commands.take()?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Checkin {
            handle: self.granted.handle,
            reply: Some(reply),
        };
        Some(
            commands
                .send(command)
                .map(|()| answer)
                .map_err(|_| Error::Stopped),
        )
    }
}

impl Drop for AsyncSeat {
    fn drop(&mut self) {
        if let Some(commands) = self.commands.take() {
            let _ = commands.send(Command::Checkin {
                handle: self.granted.handle,
                reply: None,
            });
        }
    }
}
