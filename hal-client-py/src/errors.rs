//! The exceptions: one class per kind of `hal_net::client::Error`, under one base,
//! `HalError`. Each instance carries `reason`, the error's stable name as
//! `Error::name()` gives it (the denial's name for `Denied`), so Python code tells a
//! denial by the same names the C API and the command-line verbs use.

use hal_net::client::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    hal_client,
    HalError,
    PyException,
    "A license request failed. Every exception of hal_client derives from this one.\n\n\
     reason: the stable name of the error, as hal_status_name() in C and the command-line\n\
     verbs' JSON give it (\"all_in_use\", \"unreachable\", \"config\", ...)."
);
create_exception!(
    hal_client,
    Denied,
    HalError,
    "The servers refused the request. reason says why, one of DENIAL_REASONS:\n\
     \"all_in_use\" (every seat is taken), \"unknown_feature\", \"borrow_unavailable\"\n\
     (borrowing needs server #1 active), \"borrow_not_allowed\", \"unknown_handle\",\n\
     \"license_expired\", \"hostid_mismatch\", \"invalid_request\", \"no_majority\",\n\
     \"not_active\", and the options file's \"not_included\", \"excluded\", \"over_max\",\n\
     \"reserved\", \"borrow_over_max\". Asking again later may succeed; asking the same again at once will not."
);
create_exception!(
    hal_client,
    Unreachable,
    HalError,
    "No license server could be reached (the message gives the last failure). The\n\
     request was not acted on."
);
create_exception!(
    hal_client,
    NoAnswer,
    HalError,
    "Servers were reached but none answered in time, so the request may have taken\n\
     effect. The library asks again when it next reaches a server and releases a seat it\n\
     finds; a Settled event whose request equals this exception's request says what it found."
);
create_exception!(
    hal_client,
    ConfigError,
    HalError,
    "The client's options are not usable: no license path, a malformed one, an unreadable\n\
     or invalid CA file, an unknown timing profile."
);
create_exception!(
    hal_client,
    RecordError,
    HalError,
    "A borrow record could not be read, written or found (the records are in\n\
     $HAL_HOME/borrows.json, default ~/.hal)."
);
create_exception!(
    hal_client,
    Stopped,
    HalError,
    "The client's background work has stopped."
);

/// Adds the exception classes to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("HalError", py.get_type::<HalError>())?;
    module.add("Denied", py.get_type::<Denied>())?;
    module.add("Unreachable", py.get_type::<Unreachable>())?;
    module.add("NoAnswer", py.get_type::<NoAnswer>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    module.add("RecordError", py.get_type::<RecordError>())?;
    module.add("Stopped", py.get_type::<Stopped>())?;
    Ok(())
}

/// The Python exception for `error`: its class, its message (the error's text) and its
/// `reason`; a `NoAnswer` also carries `request` (`"r12"`), as `Settled` names it.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    let message = error.to_string();
    let exception = match error {
        Error::Denied(_) => Denied::new_err(message),
        Error::Unreachable(_) => Unreachable::new_err(message),
        Error::NoAnswer { .. } => NoAnswer::new_err(message),
        Error::Config(_) => ConfigError::new_err(message),
        Error::Record(_) => RecordError::new_err(message),
        Error::Stopped => Stopped::new_err(message),
        // A blocking call inside a tokio runtime cannot come from Python code; a kind of
        // error added later is still a HalError with its name.
        _ => HalError::new_err(message),
    };
    let value = exception.value(py);
    let mut attributes = vec![("reason", error.name().to_string())];
    if let Error::NoAnswer { request, .. } = error {
        attributes.push(("request", request.to_string()));
    }
    for (name, text) in attributes {
        if let Err(failed) = value.setattr(name, text) {
            return failed;
        }
    }
    exception
}

/// A `RecordError` made here (not by the library), with its reason.
pub(crate) fn record_error(py: Python<'_>, message: String) -> PyErr {
    to_py(py, &Error::Record(message))
}
