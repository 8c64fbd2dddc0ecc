//! `Seat`: a checked-out seat, heartbeated by the client's background thread until it is
//! checked in. A context manager: leaving the `with` block checks it in.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::errors;

/// A checked-out license seat. The client's background thread heartbeats it (through a
/// failover, to whichever server is active) until it is checked in.
///
/// Use it as a context manager: leaving the with block checks the seat in, waiting for
/// the servers to confirm; if the block raised, a failed checkin is added to that
/// exception as a note instead of replacing it. Or call checkin() yourself. A seat that
/// is garbage-collected unchecked is checked in without waiting (the servers free one
/// whose checkin goes unheard when its lease runs out).
///
/// A Seat may be shared by threads.
#[pyclass(module = "hal_client", frozen)]
#[derive(Debug)]
pub(crate) struct Seat {
    handle: String,
    feature: String,
    server: u8,
    granted_by: u8,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Held(hal_net::client::Seat),
    /// Checked in; whether it was lost by then.
    CheckedIn {
        lost: bool,
    },
}

impl Seat {
    pub(crate) fn new(seat: hal_net::client::Seat) -> Seat {
        let granted = seat.granted();
        Seat {
            handle: granted.handle.to_string(),
            feature: granted.feature.clone(),
            server: granted.server.get(),
            granted_by: granted.granted_by.get(),
            state: Mutex::new(State::Held(seat)),
        }
    }

    /// The state; a panic elsewhere while it was locked leaves nothing half-changed
    /// (every change is one assignment), so a poisoned lock is taken as it is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Seat {
    /// A seat still held is checked in without waiting; if it held the last reference to
    /// its client's engine, that waits for the checkins in flight to be heard (up to the
    /// give-up time when no server answers): with the GIL released, so that the other
    /// threads run meanwhile.
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = std::mem::replace(state, State::CheckedIn { lost: false });
        if let State::Held(seat) = state {
            Python::attach(|py| py.detach(move || drop(seat)));
        }
    }
}

#[pymethods]
impl Seat {
    /// The seat's handle, as hal-net status shows it ("h17").
    #[getter]
    fn handle(&self) -> &str {
        &self.handle
    }

    /// The feature the seat is of.
    #[getter]
    fn feature(&self) -> &str {
        &self.feature
    }

    /// The server that answered the checkout (1, 2 or 3).
    #[getter]
    fn server(&self) -> u8 {
        self.server
    }

    /// The server that decided the grant: differs from server when a retry was answered
    /// after a failover.
    #[getter]
    fn granted_by(&self) -> u8 {
        self.granted_by
    }

    /// Whether the seat is lost: its lease ran out with no heartbeat acknowledged, so the
    /// servers may have given it to someone else (a Lost event says so too). Stays as it
    /// was at checkin once checked in.
    #[getter]
    fn lost(&self) -> bool {
        match &*self.state() {
            State::Held(seat) => seat.is_lost(),
            State::CheckedIn { lost } => *lost,
        }
    }

    /// Whether the seat has been checked in (by checkin() or by leaving its with block).
    #[getter]
    fn checked_in(&self) -> bool {
        matches!(*self.state(), State::CheckedIn { .. })
    }

    /// Checks the seat in and waits for the servers to confirm, releasing the GIL
    /// meanwhile. Raises a HalError if the checkin was not confirmed (the seat is then
    /// freed when its lease runs out): Denied with reason "unknown_handle" if the seat
    /// was lost already, Unreachable or NoAnswer if no server answered. Heartbeats stop
    /// either way. Does nothing on a seat already checked in.
    fn checkin(&self, py: Python<'_>) -> PyResult<()> {
        let seat = {
            let mut state = self.state();
            let lost = match &*state {
                State::Held(seat) => seat.is_lost(),
                State::CheckedIn { .. } => return Ok(()),
            };
            match std::mem::replace(&mut *state, State::CheckedIn { lost }) {
                State::Held(seat) => seat,
                State::CheckedIn { .. } => return Ok(()),
            }
        };
        py.detach(|| seat.checkin())
            .map_err(|error| errors::to_py(py, &error))
    }

    /// Returns the seat itself, held until the with block is left.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Checks the seat in, waiting for the servers to confirm. Returns False: an
    /// exception raised in the block goes on (with a note if the checkin failed too); a
    /// failed checkin after a block that raised nothing raises, as checkin() does.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyType>>,
        exc_value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let checked_in = self.checkin(py);
        match (exc_type, exc_value) {
            (None, _) => checked_in.map(|()| false),
            (Some(_), value) => {
                if let (Err(error), Some(value)) = (checked_in, value) {
                    let note = format!("the seat {} was not checked in: {error}", self.handle);
                    // add_note is Python 3.11's; without it the note is lost, not the
                    // exception.
                    let _ = value.call_method1("add_note", (note,));
                }
                Ok(false)
            }
        }
    }

    fn __repr__(&self) -> String {
        let state = match &*self.state() {
            State::Held(seat) if seat.is_lost() => "lost",
            State::Held(_) => "held",
            State::CheckedIn { .. } => "checked in",
        };
        format!(
            "<hal_client.Seat {} of {} from server #{}, {state}>",
            self.handle, self.feature, self.server
        )
    }
}
