//! hal-core: the pure heart of HAL ("high availability licensing").
//!
//! Three license servers with fixed roles serve floating licenses under majority rule.
//! This crate holds what every part of the project shares and what must be
//! deterministic: the license model and its parser ([`license`]), the protocol messages
//! ([`protocol`]), the replicated seat table ([`seats`]), the server state machine
//! ([`server`]) and the client state machine ([`client`]).
//!
//! It does no IO at all: it reads no file, socket, clock or random generator and never
//! touches tokio. Callers pass bytes, times and random values in, and take plain data out.
//! `clippy.toml` beside this crate's manifest enforces that with `disallowed-methods` and
//! `disallowed-types`, and CI runs clippy with `-D warnings`.

#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
// Nothing a peer or a client sends may wrap a counter: arithmetic is checked or saturating
// (`Term::next`, `LogIndex::plus`, `saturating_add`), and clippy refuses the rest.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod catalog;
pub mod client;
pub mod ids;
pub mod license;
mod log;
pub mod names;
pub mod options;
pub mod plant;
pub mod protocol;
pub mod record;
pub mod seats;
pub mod server;
pub mod time;
pub mod timing;

pub use ids::{HostId, ServerId};
pub use server::ServerEvent;
