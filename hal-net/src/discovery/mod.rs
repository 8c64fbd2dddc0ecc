//! Automatic server discovery: a client that is given no license path finds its triad on
//! the LAN. It sends one small UDP request to the broadcast address of the servers' port
//! (and to a multicast group, if the site uses one); each server answers with its triad
//! list (a ready license path), its slot and its role; the client takes the one triad
//! the answers agree on. `hal-net discover` shows what answered.
//!
//! - [`codec`]: the datagrams, and the pure decisions: [`answer`] and [`parse_answer`];
//! - [`limit`]: how many answers a server sends per second, in total and per source;
//! - [`responder`]: the server's task beside its node, over any [`DatagramSocket`];
//! - [`client`]: the search, over any [`DatagramSocket`], and what it found;
//! - [`socket`]: the socket trait and the production sockets (socket2, tokio).
//!
//! # Trust
//!
//! Discovery finds addresses; it proves nothing. Anyone on the LAN can answer, so the
//! client treats an answer as a license path typed by a stranger: it connects over TLS and
//! verifies every server against the triad's CA and its slot (DESIGN §9), exactly as with
//! a path it was given. A forged answer gets a client no further than a refused
//! handshake; it can deny service (several triads are refused, not guessed between), as
//! anyone on a LAN can. What a server reveals to anyone on its LAN is its triad's host
//! names and ports, its slot, its role and its version (`discovery = false` in its
//! config turns this off).
//!
//! # What it does not do
//!
//! IPv4 only (IPv6 has no broadcast; a multicast group over IPv6 would be a later step).
//! Discovery does not cross routers unless a multicast group is routed, or the client
//! names a remote subnet's broadcast address; it never replaces the license path a client
//! is given.

pub mod client;
pub mod codec;
pub mod limit;
pub mod responder;
pub mod socket;

pub use client::{Discovered, DiscoveryError, Found, Search, search_with};
pub use codec::{Answer, Facts, Ignored, Role, answer, parse_answer};
pub use responder::Responder;
pub use socket::DatagramSocket;
