//! hal-net: the production shell around hal-core.
//!
//! For now this holds what the license tools need from the outside world: the vendor's
//! key files ([`keys`]) and reading a license file from disk with its size limit
//! ([`license_file`]); and the server's durable storage on disk ([`storage`]). The node
//! driver and TCP transport come with the server (see the project's issues).

pub mod addr;
pub mod config;
pub mod hostid;
pub mod keys;
pub mod license_file;
pub mod storage;
