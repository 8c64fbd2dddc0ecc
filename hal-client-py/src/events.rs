//! The events `Client.next_event` returns: one class per `hal_net::client::Event`, all
//! derived from `Event`, immutable, comparable, and usable in a `match` statement
//! (`case hal_client.Lost(handle=h): ...`). Their `kind` is the C API's event kind in
//! lower case (`HAL_EVENT_FAILED_OVER` is `"failed_over"`).

use hal_net::client::Event as RustEvent;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Something that happened to a client's seats. One of Lost, Removed, FailedOver,
/// BorrowEnded, Settled, Missed or Queued; kind names which ("lost", "removed",
/// "failed_over", "borrow_ended", "settled", "missed", "queued").
#[pyclass(module = "hal_client", subclass, frozen)]
#[derive(Debug)]
pub(crate) struct Event {
    kind: &'static str,
}

#[pymethods]
impl Event {
    /// Which event this is: "lost", "removed", "failed_over", "borrow_ended", "settled" or
    /// "missed".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// A checked-out seat is gone: no server acknowledged its heartbeats before its lease
/// ran out, so the servers may have handed it to someone else. Stop using the feature,
/// or check out again. Seat.lost is True for it from now on.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct Lost {
    /// The seat's handle ("h17").
    #[pyo3(get)]
    handle: String,
    /// Its feature.
    #[pyo3(get)]
    feature: String,
}

#[pymethods]
impl Lost {
    /// A Lost event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(handle: String, feature: String) -> PyClassInitializer<Self> {
        initializer("lost", Lost { handle, feature })
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["handle", "feature"])
    }

    fn __repr__(&self) -> String {
        format!("Lost(handle={:?}, feature={:?})", self.handle, self.feature)
    }
}

/// An administrator removed a checked-out seat (`hal-net remove`): the servers no longer
/// count it as this client's. Stop using the feature, or check out again. Seat.lost is
/// True for it from now on.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct Removed {
    /// The seat's handle ("h17").
    #[pyo3(get)]
    handle: String,
    /// Its feature.
    #[pyo3(get)]
    feature: String,
}

#[pymethods]
impl Removed {
    /// A Removed event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(handle: String, feature: String) -> PyClassInitializer<Self> {
        initializer("removed", Removed { handle, feature })
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["handle", "feature"])
    }

    fn __repr__(&self) -> String {
        format!(
            "Removed(handle={:?}, feature={:?})",
            self.handle, self.feature
        )
    }
}

/// Another server answers as the active one now (a failover, or a failback to #1).
/// Held seats are kept: nothing needs doing.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct FailedOver {
    /// The server that was active (1, 2 or 3).
    #[pyo3(get)]
    from_server: u8,
    /// The server that is active now.
    #[pyo3(get)]
    to_server: u8,
}

#[pymethods]
impl FailedOver {
    /// A FailedOver event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(from_server: u8, to_server: u8) -> PyClassInitializer<Self> {
        let event = FailedOver {
            from_server,
            to_server,
        };
        initializer("failed_over", event)
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["from_server", "to_server"])
    }

    fn __repr__(&self) -> String {
        format!(
            "FailedOver(from_server={}, to_server={})",
            self.from_server, self.to_server
        )
    }
}

/// A borrowed seat reached its end.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct BorrowEnded {
    /// The seat's handle ("h17").
    #[pyo3(get)]
    handle: String,
}

#[pymethods]
impl BorrowEnded {
    /// A BorrowEnded event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(handle: String) -> PyClassInitializer<Self> {
        initializer("borrow_ended", BorrowEnded { handle })
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["handle"])
    }

    fn __repr__(&self) -> String {
        format!("BorrowEnded(handle={:?})", self.handle)
    }
}

/// A request that raised NoAnswer is settled: released is the handle of the seat it had
/// produced, now checked in, or None if it produced none.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct Settled {
    /// The request, as NoAnswer.request named it ("r12").
    #[pyo3(get)]
    request: String,
    /// The seat found and released, or None.
    #[pyo3(get)]
    released: Option<String>,
}

#[pymethods]
impl Settled {
    /// A Settled event (the library makes them; this is for tests and comparisons).
    #[new]
    #[pyo3(signature = (request, released=None))]
    fn new(request: String, released: Option<String>) -> PyClassInitializer<Self> {
        initializer("settled", Settled { request, released })
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["request", "released"])
    }

    fn __repr__(&self) -> String {
        format!(
            "Settled(request={:?}, released={})",
            self.request,
            self.released
                .as_ref()
                .map_or("None".to_string(), |h| format!("{h:?}"))
        )
    }
}

/// This client fell behind in taking events (more than 256 waited), and missed of them
/// were dropped.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct Missed {
    /// How many events were dropped.
    #[pyo3(get)]
    missed: u64,
}

#[pymethods]
impl Missed {
    /// A Missed event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(missed: u64) -> PyClassInitializer<Self> {
        initializer("missed", Missed { missed })
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["missed"])
    }

    fn __repr__(&self) -> String {
        format!("Missed(missed={})", self.missed)
    }
}

/// A checkout with wait found every seat of feature in use and waits in its queue at
/// position (1: next), used of count seats held; reported when it joins and when its
/// position changes.
#[pyclass(module = "hal_client", extends = Event, frozen, eq)]
#[derive(Debug, PartialEq)]
pub(crate) struct Queued {
    /// The feature.
    #[pyo3(get)]
    feature: String,
    /// The place in the queue (1: next).
    #[pyo3(get)]
    position: u32,
    /// Seats held.
    #[pyo3(get)]
    used: u32,
    /// Seats the license has.
    #[pyo3(get)]
    count: u32,
}

#[pymethods]
impl Queued {
    /// A Queued event (the library makes them; this is for tests and comparisons).
    #[new]
    fn new(feature: String, position: u32, used: u32, count: u32) -> PyClassInitializer<Self> {
        initializer(
            "queued",
            Queued {
                feature,
                position,
                used,
                count,
            },
        )
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["feature", "position", "used", "count"])
    }

    fn __repr__(&self) -> String {
        format!(
            "Queued(feature={:?}, position={}, used={}, count={})",
            self.feature, self.position, self.used, self.count
        )
    }
}

/// How an event of class `T` and kind `kind` is made.
fn initializer<T: pyo3::PyClass<BaseType = Event>>(
    kind: &'static str,
    value: T,
) -> PyClassInitializer<T> {
    PyClassInitializer::from(Event { kind }).add_subclass(value)
}

/// Adds the event classes to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Event>()?;
    module.add_class::<Lost>()?;
    module.add_class::<Removed>()?;
    module.add_class::<FailedOver>()?;
    module.add_class::<BorrowEnded>()?;
    module.add_class::<Settled>()?;
    module.add_class::<Missed>()?;
    module.add_class::<Queued>()?;
    Ok(())
}

/// The Python object for `event`; `None` for a kind of event this module does not know
/// (one added to the library later), which is passed over.
pub(crate) fn to_py(py: Python<'_>, event: RustEvent) -> PyResult<Option<Py<PyAny>>> {
    fn made<T: pyo3::PyClass<BaseType = Event>>(
        py: Python<'_>,
        kind: &'static str,
        value: T,
    ) -> PyResult<Option<Py<PyAny>>> {
        Ok(Some(
            Bound::new(py, initializer(kind, value))?
                .into_any()
                .unbind(),
        ))
    }
    match event {
        RustEvent::Lost { handle, feature } => made(
            py,
            "lost",
            Lost {
                handle: handle.to_string(),
                feature,
            },
        ),
        RustEvent::Removed { handle, feature } => made(
            py,
            "removed",
            Removed {
                handle: handle.to_string(),
                feature,
            },
        ),
        RustEvent::Queued {
            feature,
            position,
            used,
            count,
        } => made(
            py,
            "queued",
            Queued {
                feature,
                position,
                used,
                count,
            },
        ),
        RustEvent::FailedOver { from, to } => made(
            py,
            "failed_over",
            FailedOver {
                from_server: from.get(),
                to_server: to.get(),
            },
        ),
        RustEvent::BorrowEnded { handle } => made(
            py,
            "borrow_ended",
            BorrowEnded {
                handle: handle.to_string(),
            },
        ),
        RustEvent::Settled { request, released } => made(
            py,
            "settled",
            Settled {
                request: request.to_string(),
                released: released.map(|h| h.to_string()),
            },
        ),
        RustEvent::Missed { missed } => made(py, "missed", Missed { missed }),
        _ => Ok(None),
    }
}
