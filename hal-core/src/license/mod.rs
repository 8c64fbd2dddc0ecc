//! The license file (DESIGN §4): its model, parser, printer, signatures and the rules for
//! what one server may serve.
//!
//! A license file is LM-X-style text: `FEATURE name { ... }` blocks of `KEY = value`
//! directives, with `#` comments. [`parse`] turns bytes into a [`License`] or a list of
//! [`LicenseError`]s, each naming the file, line, column and feature and saying what would be
//! right. [`License::to_text`] prints a license back in the standard layout, and
//! [`sign_text`] fills in the `KEY` values of an existing file without disturbing its
//! comments or layout.
//!
//! Nothing here reads a file or a clock: the caller passes the bytes, the source name used
//! in messages, and (for date checks) today's date.

mod error;
mod model;
mod parse;
mod print;
mod serve;
mod signature;

pub use error::{LicenseError, LicenseErrorKind, LicenseErrors};
pub use model::{
    Directive, Feature, FeatureName, License, LicenseKey, Origin, Validity, ValueSpan, Vendor,
    Version, limits,
};
pub use parse::parse;
pub use serve::{HostIdError, ServeError, ServeMode, ServerPosition};
pub use signature::{SignatureError, canonical_bytes, sign_text};
