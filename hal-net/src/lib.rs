//! hal-net: the production shell around hal-core.
//!
//! - [`node`]: the node driver, generic over [`transport`], [`storage`] and [`clock`],
//!   which production runs over tokio TCP, files and the system clock, and the simulator
//!   over turmoil;
//! - [`wire`]: the frame codec and the messages between processes;
//! - [`client`]: the client library applications embed (blocking and async);
//! - [`session`]: the client side, driving hal-core's client over the same transport;
//! - [`config`] (the server's TOML config), [`addr`] (`port@host` addresses, license
//!   paths), [`hostid`] (this machine's HostID);
//! - [`keys`] and [`license_file`]: the vendor's key files and reading a license file;
//! - [`admin`]: an operator's status query to a running server;
//! - [`discovery`]: clients finding the triad on their LAN (UDP broadcast and multicast);
//! - [`tls`]: the triad's CA and certificates, and the TLS configurations built from them;
//! - [`journal`]: each server's flight recorder, and [`report`]: usage accounting from it.

pub mod addr;
pub mod admin;
#[warn(missing_docs)]
pub mod client;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod hostid;
pub mod http;
pub mod journal;
pub mod keys;
pub mod license_file;
pub mod metrics;
pub mod node;
pub mod report;
pub mod session;
pub mod storage;
pub mod tls;
pub mod tls_transport;
pub mod toml_doc;
pub mod transport;
pub mod triad_view;
pub mod wire;
