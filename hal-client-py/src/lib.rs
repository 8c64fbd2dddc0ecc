//! The HAL license client for Python applications: the extension module `hal_client`,
//! built by maturin from `pyproject.toml` into the `hal-client` package.
//!
//! A thin layer over `hal_net::client::Client`, shaped like the C API of `hal-client-c`:
//! a [`client::Client`] that checks seats out and borrows them, a [`seat::Seat`] guard
//! (a context manager) that the library heartbeats in the background, events for what
//! happens to held seats ([`events`]), and one exception class per kind of
//! `hal_net::client::Error` ([`errors`]), carrying the same names as `Error::name()`,
//! `hal_status_name()` and the command-line verbs' JSON.
//!
//! Every blocking call releases the GIL while it waits, so other Python threads run; the
//! classes are shareable between threads. No Rust panic reaches Python as a crash: pyo3
//! turns one into `pyo3_runtime.PanicException`, and this crate's code does not panic on
//! anything a caller or a server can do.
//!
//! What it does not do: asyncio (a coroutine API would wrap `AsyncClient`; an asyncio
//! application can call these methods through `asyncio.to_thread`).

mod borrow;
mod client;
mod errors;
mod events;
mod seat;

use pyo3::prelude::*;

/// The HAL license client: take a license seat while your application runs.
///
/// ```python
/// import hal_client
/// client = hal_client.Client("6200@lic1;6200@lic2;6200@lic3", ca="/etc/hal/tls/ca.pem")
/// with client.checkout("cad") as seat:   # heartbeated in the background
///     work()                             # seat.lost turns True if the lease ran out
/// ```
///
/// Failed requests raise a subclass of HalError: Denied (with .reason, e.g. "all_in_use"),
/// Unreachable, NoAnswer, ConfigError, RecordError or Stopped.
#[pymodule]
fn hal_client(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add(
        "DENIAL_REASONS",
        pyo3::types::PyTuple::new(module.py(), hal_net::client::Denial::NAMES)?,
    )?;
    module.add_class::<client::Client>()?;
    module.add_class::<seat::Seat>()?;
    module.add_class::<borrow::BorrowRecord>()?;
    module.add_class::<borrow::Borrowed>()?;
    events::register(module)?;
    errors::register(module)?;
    Ok(())
}
