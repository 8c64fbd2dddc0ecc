//! `BorrowRecord`: what Python sees of a borrowed seat. The full record (with the client
//! id and request number a return needs) is kept inside it and in this machine's
//! borrow store, as `hal-net borrow` and `hal_borrow` in C keep it.

use std::time::UNIX_EPOCH;

use pyo3::prelude::*;

/// `ms` since the Unix epoch as an aware datetime in UTC.
fn utc_datetime(py: Python<'_>, ms: u64) -> PyResult<Bound<'_, PyAny>> {
    let datetime = py.import("datetime")?;
    let utc = datetime.getattr("timezone")?.getattr("utc")?;
    let epoch = datetime
        .getattr("datetime")?
        .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("milliseconds", ms)?;
    let after = datetime.getattr("timedelta")?.call((), Some(&kwargs))?;
    epoch.add(after)
}

/// A seat borrowed with Client.borrow(): usable offline until end, and given back early
/// with Client.return_borrow(). Its record is also kept on this machine
/// ($HAL_HOME/borrows.json, default ~/.hal), so another process can return it by handle.
#[pyclass(module = "hal_client", frozen)]
#[derive(Debug)]
pub(crate) struct BorrowRecord {
    pub(crate) record: hal_net::client::BorrowRecord,
}

#[pymethods]
impl BorrowRecord {
    /// The seat's handle ("h17"): give it to Client.return_borrow() to return the seat.
    #[getter]
    fn handle(&self) -> &str {
        &self.record.handle
    }

    /// The feature borrowed.
    #[getter]
    fn feature(&self) -> &str {
        &self.record.feature
    }

    /// The server that granted the borrow (1, 2 or 3; 0 in records from before servers
    /// were recorded).
    #[getter]
    fn server(&self) -> u8 {
        self.record.server
    }

    /// When the borrow ends, in ms since the Unix epoch on the granting server's clock.
    #[getter]
    fn end_ms(&self) -> u64 {
        self.record.end_ms
    }

    /// When the borrow ends, as an aware datetime in UTC.
    #[getter]
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(py, self.record.end_ms)
    }

    /// The license path the seat was borrowed from.
    #[getter]
    fn license_path(&self) -> &str {
        &self.record.license_path
    }

    /// Whether the granting server signed the record (every TLS triad does; a plaintext
    /// one cannot), so that Client.borrowed() can prove it offline.
    #[getter]
    fn signed(&self) -> bool {
        self.record.proof.is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "<hal_client.BorrowRecord {} of {} from server #{}, ends at {} ms>",
            self.record.handle, self.record.feature, self.record.server, self.record.end_ms
        )
    }
}

/// A borrow proved offline by its record (Client.borrowed()): signed by a server of the
/// triad's CA, unchanged since, made on this host, and not ended.
#[pyclass(module = "hal_client", frozen)]
#[derive(Debug)]
pub(crate) struct Borrowed {
    pub(crate) borrowed: hal_net::client::Borrowed,
}

impl Borrowed {
    fn end_ms_of(&self) -> u64 {
        self.borrowed
            .end
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[pymethods]
impl Borrowed {
    /// The seat's handle ("h17").
    #[getter]
    fn handle(&self) -> String {
        self.borrowed.handle.to_string()
    }

    /// The feature borrowed.
    #[getter]
    fn feature(&self) -> &str {
        &self.borrowed.feature
    }

    /// When the borrow ends, in ms since the Unix epoch on the granting server's clock.
    #[getter]
    fn end_ms(&self) -> u64 {
        self.end_ms_of()
    }

    /// When the borrow ends, as an aware datetime in UTC.
    #[getter]
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(py, self.end_ms_of())
    }

    /// The user the seat was granted to.
    #[getter]
    fn user(&self) -> &str {
        &self.borrowed.user
    }

    /// The host the seat was granted to (this one).
    #[getter]
    fn host(&self) -> &str {
        &self.borrowed.host
    }

    /// The server that signed the record (1, 2 or 3).
    #[getter]
    fn signer(&self) -> u8 {
        self.borrowed.signer.get()
    }

    fn __repr__(&self) -> String {
        format!(
            "<hal_client.Borrowed {} of {}, signed by server #{}, ends at {} ms>",
            self.borrowed.handle,
            self.borrowed.feature,
            self.borrowed.signer.get(),
            self.end_ms_of()
        )
    }
}
