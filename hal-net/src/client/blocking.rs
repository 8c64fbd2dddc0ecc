//! The blocking client: [`Client`] and its seat guard [`Seat`], for applications that do
//! not run tokio. The engine runs on a background thread of the client's own.

use std::sync::Arc;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::protocol::Handle;

use super::async_client::{AsyncClient, AsyncSeat};
use super::borrow::{BorrowRecord, Borrowed, Returned};
use super::{Error, Events, Granted, Options};

/// A license client that blocks the calling thread for each request. Thread-safe and
/// cheap to clone: clones share one engine, which runs on a background thread until the
/// client, its clones, its seats and its event subscribers are all dropped; the last
/// drop waits (up to the time one request may take) for the last checkins to be heard.
///
/// Not for a thread that runs a tokio runtime: there, use [`AsyncClient`] (a blocking
/// call returns [`Error::InAsyncContext`]).
#[derive(Debug, Clone)]
pub struct Client {
    inner: AsyncClient,
    background: Arc<Background>,
}

/// The client's runtime, shut down when the last user is gone.
#[derive(Debug)]
pub(super) struct Background {
    runtime: Option<tokio::runtime::Runtime>,
    /// Closed when the engine task ends (in a mutex only to be shareable).
    engine_done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    finish_within: Duration,
}

impl Drop for Background {
    fn drop(&mut self) {
        // Every command sender is gone by now, so the engine is finishing its last
        // checkins; give it the time it takes.
        let limit = self.finish_within + Duration::from_secs(1);
        if let Ok(engine_done) = self.engine_done.get_mut() {
            let _ = engine_done.recv_timeout(limit);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Client {
    /// A client for the servers of `options`. Nothing is sent until the first request.
    pub fn new(options: Options) -> Result<Client, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hal-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the client's thread: {e}")))?;
        let finish_within = options.config().give_up_after;
        let (inner, task) = AsyncClient::on(options, runtime.handle())?;
        let (done, engine_done) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = task.await;
            drop(done);
        });
        let background = Background {
            runtime: Some(runtime),
            engine_done: std::sync::Mutex::new(engine_done),
            finish_within,
        };
        Ok(Client {
            inner,
            background: Arc::new(background),
        })
    }

    /// Runs `work` on the client's runtime and waits for it.
    fn block<F: std::future::Future>(&self, work: F) -> Result<F::Output, Error> {
        block(&self.background, work)
    }

    /// Checks a seat of `feature` out, waiting for the servers' answer (through a
    /// failover, up to the time the timing profile allows). The seat is kept alive by
    /// heartbeats until the guard is checked in or dropped, or until it is lost.
    pub fn checkout(&self, feature: &str) -> Result<Seat, Error> {
        let seat = self.block(self.inner.checkout(feature))??;
        Ok(Seat {
            inner: seat,
            background: self.background.clone(),
        })
    }

    /// Checks a seat of `feature` out, waiting up to `wait` in the feature's queue when
    /// every seat is in use ([`AsyncClient::checkout_wait`]).
    pub fn checkout_wait(&self, feature: &str, wait: std::time::Duration) -> Result<Seat, Error> {
        let seat = self.block(self.inner.checkout_wait(feature, wait))??;
        Ok(Seat {
            inner: seat,
            background: self.background.clone(),
        })
    }

    /// Borrows a seat of `feature` for `hours` (at most the license's BORROW). Keep the
    /// record (in a [`BorrowStore`](super::BorrowStore), say) to use the seat offline
    /// and to return it early.
    pub fn borrow(&self, feature: &str, hours: u32) -> Result<BorrowRecord, Error> {
        self.block(self.inner.borrow(feature, hours))?
    }

    /// Gives a borrowed seat back before its end.
    pub fn return_borrow(&self, record: &BorrowRecord) -> Result<Returned, Error> {
        self.block(self.inner.return_borrow(record))?
    }

    /// The current borrow of `feature` on this machine, proved offline by its record in
    /// the [`BorrowStore`](super::BorrowStore) of this user against the options' CA
    /// ([`BorrowStore::borrowed`](super::BorrowStore::borrowed)). No server is asked: an
    /// application that cannot reach its servers asks this to run on a borrowed seat.
    pub fn borrowed(&self, feature: &str) -> Result<Option<Borrowed>, Error> {
        self.inner.borrowed(feature)
    }

    /// What happens to this client's seats from now on: poll with
    /// [`Events::try_next`] or wait with [`Events::wait`].
    pub fn events(&self) -> Events {
        let mut events = self.inner.events();
        events.keep = Some(self.background.clone());
        events
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }
}

fn block<F: std::future::Future>(background: &Background, work: F) -> Result<F::Output, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InAsyncContext);
    }
    let runtime = background.runtime.as_ref().ok_or(Error::Stopped)?;
    Ok(runtime.block_on(work))
}

/// A checked-out seat. Dropping it checks it in without waiting for the answer (a seat
/// whose checkin goes unheard is freed by its lease); [`Seat::checkin`] waits.
#[derive(Debug)]
pub struct Seat {
    inner: AsyncSeat,
    background: Arc<Background>,
}

impl Seat {
    /// The seat's handle.
    pub fn handle(&self) -> Handle {
        self.inner.handle()
    }

    /// The feature.
    pub fn feature(&self) -> &str {
        self.inner.feature()
    }

    /// The server that answered the checkout.
    pub fn server(&self) -> ServerId {
        self.inner.server()
    }

    /// The grant as the servers gave it.
    pub fn granted(&self) -> &Granted {
        self.inner.granted()
    }

    /// Whether the seat is lost: its lease ran out with no heartbeat acknowledged, so
    /// the servers may have given it to someone else.
    pub fn is_lost(&self) -> bool {
        self.inner.is_lost()
    }

    /// Checks the seat in and waits for the servers to confirm. An error says the
    /// checkin was not confirmed (the seat is then freed when its lease runs out);
    /// `Denied(UnknownHandle)` that the seat was lost already.
    pub fn checkin(mut self) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InAsyncContext);
        }
        match self.inner.send_checkin() {
            None => Ok(()),
            Some(sent) => {
                let answer = sent?;
                block(&self.background, answer)?.map_err(|_| Error::Stopped)?
            }
        }
    }
}
