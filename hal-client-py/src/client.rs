//! `Client`: the license client of a Python process, over `hal_net::client::Client`.
//! Every call that waits for the servers releases the GIL while it waits.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hal_net::client::{BorrowStore, Events, Options, Returned, parse_handle};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::borrow::{BorrowRecord, Borrowed};
use crate::errors::{self, record_error};
use crate::events;
use crate::seat::Seat;

/// How long next_event waits at a time without looking for Ctrl-C.
const EVENT_SLICE: Duration = Duration::from_millis(100);

/// A license client: one background thread, one connection per server and one heartbeat
/// for all its seats.
///
/// license_path lists the triad's servers in order, "port@host" entries separated by ";"
/// or "," ("6200@lic1;6200@lic2;6200@lic3"); None takes HAL_LICENSE_PATH, and without it
/// finds the triad on the LAN (discovery: up to half a second; HAL_DISCOVERY_PORT,
/// HAL_DISCOVERY_GROUP and HAL_DISCOVERY_TO shape the search). The servers are
/// verified against the triad's CA certificate ca (ca.pem from hal-net tls init; None
/// takes HAL_TRIAD_CA), or not at all with insecure=True (plaintext, for servers run with
/// insecure_plaintext = true on a closed test network). profile is the servers' timing
/// profile, "lan" (the default) or "wan"; user and host are what the servers record for
/// this client's seats (default: $USER and this machine's name). Nothing is sent until
/// the first request. Raises ConfigError if the options are not usable.
///
/// A Client may be shared by threads. Events are kept from when it was made.
#[pyclass(module = "hal_client", frozen)]
#[derive(Debug)]
pub(crate) struct Client {
    /// Always there but while the object is dropped.
    inner: Option<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: hal_net::client::Client,
    events: Mutex<Events>,
}

impl Client {
    fn inner(&self) -> Result<&Inner, hal_net::client::Error> {
        self.inner.as_ref().ok_or(hal_net::client::Error::Stopped)
    }

    fn client(&self) -> Result<&hal_net::client::Client, hal_net::client::Error> {
        self.inner().map(|inner| &inner.client)
    }

    fn events(&self) -> Result<MutexGuard<'_, Events>, hal_net::client::Error> {
        // A panic while the lock was held left the receiver as it was.
        Ok(self
            .inner()?
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Drop for Client {
    /// The last reference to the client's engine (this, or a seat's) waits for the
    /// checkins in flight to be heard, up to the give-up time when no server answers:
    /// it waits with the GIL released, so that the other threads run meanwhile.
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            Python::attach(|py| py.detach(move || drop(inner)));
        }
    }
}

/// What `Client(...)` was given.
#[derive(Default)]
struct Given {
    license_path: Option<String>,
    ca: Option<PathBuf>,
    insecure: bool,
    profile: Option<String>,
    user: Option<String>,
    host: Option<String>,
}

impl Given {
    /// The options: the environment's for what was not given, as `hal_client_new` in C.
    fn options(self) -> Result<Options, hal_net::client::Error> {
        use hal_net::client::Error;
        if self.insecure && self.ca.is_some() {
            return Err(Error::Config(
                "both a triad CA and insecure=True were given: choose one".to_string(),
            ));
        }
        let mut options = match &self.license_path {
            Some(path) => Options::new(path)?,
            None => Options::from_env()?,
        };
        if let Some(ca) = self.ca {
            options = options.ca(ca);
        } else if self.insecure {
            options = options.insecure();
        } else if self.license_path.is_some()
            && let Some(ca) = std::env::var_os("HAL_TRIAD_CA")
        {
            options = options.ca(ca);
        }
        if let Some(profile) = &self.profile {
            options = options.profile(profile)?;
        }
        if let Some(user) = &self.user {
            options = options.user(user);
        }
        if let Some(host) = &self.host {
            options = options.host(host);
        }
        Ok(options)
    }
}

fn new_client(py: Python<'_>, given: Given) -> PyResult<Client> {
    let made = py.detach(|| {
        let client = hal_net::client::Client::new(given.options()?)?;
        let events = Mutex::new(client.events());
        let inner = Some(Inner { client, events });
        Ok::<_, hal_net::client::Error>(Client { inner })
    });
    made.map_err(|error| errors::to_py(py, &error))
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (license_path=None, *, ca=None, insecure=false, profile=None, user=None, host=None))]
    fn new(
        py: Python<'_>,
        license_path: Option<String>,
        ca: Option<PathBuf>,
        insecure: bool,
        profile: Option<String>,
        user: Option<String>,
        host: Option<String>,
    ) -> PyResult<Client> {
        let given = Given {
            license_path,
            ca,
            insecure,
            profile,
            user,
            host,
        };
        new_client(py, given)
    }

    /// A client made from the environment alone: HAL_LICENSE_PATH (the servers; without
    /// it the triad is discovered on the LAN), HAL_TRIAD_CA (the triad's CA certificate)
    /// and optionally HAL_PROFILE ("lan" or "wan"). Raises ConfigError if one is not
    /// usable, the CA is missing, or discovery found no triad (or several).
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Client> {
        new_client(py, Given::default())
    }

    /// The license path the client uses, as written ("6200@lic1;6200@lic2;6200@lic3").
    #[getter]
    fn license_path(&self, py: Python<'_>) -> PyResult<String> {
        self.client()
            .map(|client| client.options().license_path())
            .map_err(|error| errors::to_py(py, &error))
    }

    /// Checks a seat of feature out, waiting for the servers' answer (through a
    /// failover, up to the time the timing profile allows: about 6 s on a LAN) with the
    /// GIL released. Returns the Seat, heartbeated in the background until checked in.
    /// With wait (seconds), a checkout that finds every seat in use waits up to that long
    /// in the feature's queue (first come, first served; kept through a failover; a
    /// Queued event says where it stands) and is granted as a seat comes back. Raises
    /// Denied (reason "all_in_use" also when the wait is over, "unknown_feature", ...),
    /// Unreachable or NoAnswer.
    #[pyo3(signature = (feature, *, wait=None))]
    fn checkout(&self, py: Python<'_>, feature: &str, wait: Option<f64>) -> PyResult<Seat> {
        let wait = match wait {
            None => None,
            Some(seconds) => Some(std::time::Duration::try_from_secs_f64(seconds).map_err(
                |_| PyValueError::new_err(format!("wait must be seconds from 0 on, not {seconds}")),
            )?),
        };
        py.detach(|| match wait {
            Some(wait) => self.client()?.checkout_wait(feature, wait),
            None => self.client()?.checkout(feature),
        })
        .map(Seat::new)
        .map_err(|error| errors::to_py(py, &error))
    }

    /// Borrows a seat of feature for hours (at most the license's BORROW; only while
    /// server #1 is active, else Denied with reason "borrow_unavailable"), and keeps its
    /// record on this machine ($HAL_HOME/borrows.json, default ~/.hal). Returns the
    /// BorrowRecord. Raises Denied, Unreachable, NoAnswer or RecordError.
    fn borrow(&self, py: Python<'_>, feature: &str, hours: i64) -> PyResult<BorrowRecord> {
        let hours = u32::try_from(hours).map_err(|_| {
            PyValueError::new_err(format!(
                "hours must be between 0 and {}, not {hours}",
                u32::MAX
            ))
        })?;
        let borrowed = py.detach(|| {
            let store = BorrowStore::default_location()?;
            let record = self.client()?.borrow(feature, hours)?;
            store.add(record.clone())?;
            Ok::<_, hal_net::client::Error>(record)
        });
        borrowed
            .map(|record| BorrowRecord { record })
            .map_err(|error| errors::to_py(py, &error))
    }

    /// The current borrow of feature on this machine, answered offline (no server is
    /// asked) from its record, which must prove itself against the client's triad CA:
    /// signed by a server the CA certified, unchanged since, made on this host. Returns
    /// the Borrowed ending last, or None if no record of the feature is current. Raises
    /// RecordError if a record of it does not prove itself (edited, unsigned, another
    /// machine's: the message says which and why), ConfigError if the client has no CA.
    fn borrowed(&self, py: Python<'_>, feature: &str) -> PyResult<Option<Borrowed>> {
        py.detach(|| self.client()?.borrowed(feature))
            .map(|found| found.map(|borrowed| Borrowed { borrowed }))
            .map_err(|error| errors::to_py(py, &error))
    }

    /// Gives a borrowed seat back before its end: handle is the BorrowRecord or its
    /// handle ("h17"), borrowed from this machine (its record is looked up in this
    /// machine's records, as hal-net return does). Returns True if the seat was given
    /// back, False if the servers no longer had it (the borrow had ended); either way
    /// its record is dropped. Raises RecordError if this machine has no record of the
    /// handle (never borrowed here, or returned already), else as borrow().
    fn return_borrow(&self, py: Python<'_>, handle: Bound<'_, PyAny>) -> PyResult<bool> {
        let text = if let Ok(record) = handle.cast::<BorrowRecord>() {
            record.get().record.handle.clone()
        } else if let Ok(text) = handle.extract::<String>() {
            text
        } else {
            return Err(PyTypeError::new_err(format!(
                "return_borrow takes a BorrowRecord or a handle such as \"h17\", not {}",
                handle.get_type().name()?
            )));
        };
        let handle = parse_handle(&text).map_err(|e| record_error(py, e))?;
        let returned = py.detach(|| {
            let store = BorrowStore::default_location()?;
            let record = store.find(handle)?.ok_or_else(|| {
                hal_net::client::Error::Record(format!(
                    "no borrow {handle} was made from this machine (records: {})",
                    store.path().display()
                ))
            })?;
            let returned = self.client()?.return_borrow(&record)?;
            store.remove(handle)?;
            Ok::<_, hal_net::client::Error>(returned)
        });
        match returned {
            Ok(Returned::Returned) => Ok(true),
            Ok(Returned::AlreadyEnded) => Ok(false),
            Err(error) => Err(errors::to_py(py, &error)),
        }
    }

    /// The next event of this client's seats: Lost, Removed, FailedOver, BorrowEnded,
    /// Settled or Missed. Waits up to timeout seconds (0: only one already there; None: until one
    /// comes) with the GIL released, and returns None if none came. Ctrl-C interrupts the
    /// wait. Threads that call it share the events: each goes to one caller.
    #[pyo3(signature = (timeout=None))]
    fn next_event(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let deadline = match timeout {
            None => None,
            Some(seconds) => {
                let limit = Duration::try_from_secs_f64(seconds).map_err(|_| {
                    PyValueError::new_err(format!(
                        "timeout must be a number of seconds, 0 or more, not {seconds}"
                    ))
                })?;
                Some(Instant::now() + limit)
            }
        };
        loop {
            let slice = match deadline {
                None => EVENT_SLICE,
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .min(EVENT_SLICE),
            };
            let started = Instant::now();
            let event = py
                .detach(|| self.events()?.wait(slice))
                .map_err(|error| errors::to_py(py, &error))?;
            match event {
                Some(event) => {
                    if let Some(event) = events::to_py(py, event)? {
                        return Ok(Some(event));
                    }
                }
                // Only a stopped client answers "none" before the time is up.
                None if started.elapsed() < slice => return Ok(None),
                None => {}
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    fn __repr__(&self) -> String {
        match self.client() {
            Ok(client) => format!("<hal_client.Client {}>", client.options().license_path()),
            Err(_) => "<hal_client.Client stopped>".to_string(),
        }
    }
}
