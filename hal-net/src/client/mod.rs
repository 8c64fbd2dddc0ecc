//! The client library an application embeds to take a license seat when it starts and give
//! it back when it ends.
//!
//! Two faces over one engine: [`Client`] blocks the calling thread (it runs its own
//! background thread), [`AsyncClient`] is for applications on tokio. Both check a seat
//! out and hand back a guard that keeps the seat alive with heartbeats and checks it in
//! when dropped; both borrow seats for hours (the record to keep is a [`BorrowRecord`])
//! and report what happens to held seats as [`Event`]s.
//!
//! ```no_run
//! use hal_net::client::{Client, Options};
//!
//! # fn main() -> Result<(), hal_net::client::Error> {
//! // HAL_LICENSE_PATH="27000@lic1;27000@lic2;27000@lic3", HAL_TRIAD_CA=/etc/hal/ca.pem
//! let client = Client::new(Options::from_env()?)?;
//! let seat = client.checkout("cad")?;
//! println!("working with seat {} of cad", seat.handle());
//! // ... the application runs; the seat is heartbeated in the background ...
//! seat.checkin()?; // or just drop it
//! # Ok(())
//! # }
//! ```
//!
//! Without `HAL_LICENSE_PATH`, [`Options::from_env`] discovers the triad on the LAN
//! ([`Options::discover`], [`crate::discovery`]); the servers found are verified against
//! the triad's CA like any others.
//!
//! What a failed request means is in [`Error`]: a denial says why the servers refused
//! (every seat taken, no such feature, ...); [`Error::Unreachable`] that no server could
//! be reached; [`Error::NoAnswer`] that servers were reached but none answered in time,
//! so the request may have been granted: the library finds out and releases such a
//! seat on its own ([`Event::Settled`]).

mod async_client;
mod blocking;
mod borrow;
mod engine;
mod options;

/// Where and how long [`Options::discover`] searches for the triad on the LAN.
pub use crate::discovery::Search;
pub use crate::tls::borrow_proof::BorrowProof;
pub use async_client::{AsyncClient, AsyncSeat};
pub use blocking::{Client, Seat};
pub use borrow::{BORROW_RECORDS_MAX, BorrowRecord, BorrowStore, Borrowed, Returned, parse_handle};
pub use hal_core::ServerId;
pub use hal_core::protocol::{Denial, Handle};
pub use options::{Options, this_host, this_user};

use std::fmt;

/// Why a request did not get what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The servers refused: [`Denial`] says why (every seat in use, no such feature,
    /// borrowing needs server #1, ...). Asking again later may succeed; asking the
    /// same again at once will not.
    #[error("denied: {0}")]
    Denied(Denial),
    /// No license server could be reached: each connection failed (the last failure is
    /// given). The request was not acted on.
    #[error("no license server could be reached ({0})")]
    Unreachable(String),
    /// Servers were reached but none answered in time, so the request may have taken
    /// effect. The library asks again when it next reaches a server and releases a
    /// seat it finds; [`Event::Settled`] with this `request` says what it found.
    #[error(
        "the license servers did not answer in time ({why}); a seat the request may have produced is released when a server answers"
    )]
    NoAnswer {
        /// What went wrong on the way.
        why: String,
        /// The request, as [`Event::Settled`] names it.
        request: RequestId,
    },
    /// The options are not usable: no license path, an unreadable CA, a bad entry.
    #[error("{0}")]
    Config(String),
    /// A borrow record could not be read, written or trusted.
    #[error("borrow record: {0}")]
    Record(String),
    /// The client's background work has stopped (its runtime shut down).
    #[error("the license client has stopped")]
    Stopped,
    /// A blocking call was made on a thread that runs a tokio runtime, where it would
    /// stall the runtime: use [`AsyncClient`] there.
    #[error(
        "a blocking license call was made inside a tokio runtime; use hal_net::client::AsyncClient there"
    )]
    InAsyncContext,
}

impl Error {
    /// A stable name for the kind of error: the denial's name for [`Error::Denied`]
    /// (`all_in_use`, `unknown_feature`, ...), else `unreachable`, `no_answer`,
    /// `config`, `record`, `stopped` or `in_async_context`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Denied(denial) => denial.name(),
            Error::Unreachable(_) => "unreachable",
            Error::NoAnswer { .. } => "no_answer",
            Error::Config(_) => "config",
            Error::Record(_) => "record",
            Error::Stopped => "stopped",
            Error::InAsyncContext => "in_async_context",
        }
    }
}

/// A request of this client, as [`Error::NoAnswer`] and [`Event::Settled`] name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// What happened to this client's seats, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A checked-out seat is gone: no server acknowledged its heartbeats before its
    /// lease ran out (the servers may have handed it to someone else). The
    /// application should stop using the feature or check out again.
    Lost {
        /// The seat.
        handle: Handle,
        /// Its feature.
        feature: String,
    },
    /// An administrator removed a checked-out seat (`hal-net remove`): the servers no
    /// longer count it as this client's. The application should stop using the feature
    /// or check out again (which all-in-use may refuse).
    Removed {
        /// The seat.
        handle: Handle,
        /// Its feature.
        feature: String,
    },
    /// Another server answers as the active one now (a failover or a failback); held
    /// seats are kept.
    FailedOver {
        /// The server that was active.
        from: ServerId,
        /// The server that is.
        to: ServerId,
    },
    /// A [`Client::checkout_wait`] found every seat of `feature` in use and waits in its
    /// queue at `position` (1: next), `used` of `count` seats held; reported when it
    /// joins and when its position changes.
    Queued {
        /// The feature.
        feature: String,
        /// Its place in the queue (1: next).
        position: u32,
        /// Seats held.
        used: u32,
        /// Seats the license has.
        count: u32,
    },
    /// A borrowed seat reached its end.
    BorrowEnded {
        /// The seat.
        handle: Handle,
    },
    /// A request that ended in [`Error::NoAnswer`] is settled: `released` is the seat it
    /// had produced, now checked in, or `None` if it produced none.
    Settled {
        /// The request.
        request: RequestId,
        /// The seat found and released.
        released: Option<Handle>,
    },
    /// This subscriber fell behind and `missed` events were dropped for it.
    Missed {
        /// How many.
        missed: u64,
    },
}

/// A seat granted by the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The seat's handle, unique in the triad.
    pub handle: Handle,
    /// The feature.
    pub feature: String,
    /// The server that answered.
    pub server: ServerId,
    /// The server that decided the grant (differs from `server` when a retry was
    /// answered after a failover).
    pub granted_by: ServerId,
}

/// The events of one client, for one subscriber: each subscriber gets every event from
/// when it subscribed on (up to [`EVENTS_QUEUED_MAX`] not yet taken; past that the
/// oldest are dropped and [`Event::Missed`] says how many).
#[derive(Debug)]
pub struct Events {
    receiver: tokio::sync::broadcast::Receiver<Event>,
    /// The runtime the client's engine runs on, for [`Events::wait`].
    runtime: tokio::runtime::Handle,
    /// For a blocking client: its runtime, kept running while a subscriber waits.
    keep: Option<std::sync::Arc<blocking::Background>>,
}

/// The most events kept for a subscriber that has not taken them.
pub const EVENTS_QUEUED_MAX: usize = 256;

impl Events {
    /// The next event; `None` once the client has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        use tokio::sync::broadcast::error::RecvError;
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(missed)) => Some(Event::Missed { missed }),
            Err(RecvError::Closed) => None,
        }
    }

    /// The next event if there is one now, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        use tokio::sync::broadcast::error::TryRecvError;
        match self.receiver.try_recv() {
            Ok(event) => Some(event),
            Err(TryRecvError::Lagged(missed)) => Some(Event::Missed { missed }),
            Err(TryRecvError::Empty | TryRecvError::Closed) => None,
        }
    }

    /// Waits up to `limit` for the next event, blocking the thread; `Ok(None)` if none
    /// came or the client stopped. Not for a thread that runs a tokio runtime (there,
    /// use [`Events::next`]).
    pub fn wait(&mut self, limit: std::time::Duration) -> Result<Option<Event>, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InAsyncContext);
        }
        let runtime = self.runtime.clone();
        // The timer is made inside the runtime: it needs the runtime's time driver.
        let next = async { tokio::time::timeout(limit, self.next()).await };
        Ok(runtime.block_on(next).ok().flatten())
    }
}
