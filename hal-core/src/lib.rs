//! hal-core: the pure heart of HAL ("high availability licensing").
//!
//! Three license servers with fixed roles serve floating licenses under majority rule.
//! This crate holds what every part of the project shares and what must be
//! deterministic: the license model and its parser, and (in later modules) the protocol,
//! the replicated server state machine and the client state machine.
//!
//! It does no IO at all: it reads no file, socket, clock or random generator and never
//! touches tokio. Callers pass bytes, times and random values in, and take plain data out.
//! `clippy.toml` beside this crate's manifest enforces that with `disallowed-methods` and
//! `disallowed-types`, and CI runs clippy with `-D warnings`.

#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod ids;
pub mod license;

pub use ids::{HostId, ServerId};
