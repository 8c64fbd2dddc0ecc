//! The triad's certificates and the TLS configurations built from them (DESIGN §9).
//!
//! A triad has its own certificate authority. Each server's certificate names its slot
//! (`urn:hal:server:N`, N the position in the triad list) and its host; the admin
//! certificate names `urn:hal:admin`. Peers prove their slot with mutual TLS, clients
//! check the server's slot against their license path, administrative verbs need the
//! admin certificate.
//!
//! - [`identity`]: the roles a certificate can name ([`CertRole`], [`role_of`]) and
//!   [`server_name`] for a host;
//! - [`issue`]: making the CA and the leaf certificates (rcgen);
//! - [`triad_dir`]: the directory `hal-net tls init` writes and `tls renew` re-issues;
//! - [`inspect`]: what `hal-net tls show` prints about a certificate;
//! - [`server`]: [`ServerTls`], a server's certificate checked at load, its acceptor and
//!   the connector it dials its peers with;
//! - [`client`]: [`client_connector`] for license clients and operators, [`peer_role`]
//!   after a handshake;
//! - [`files`]: reading PEM files (bounded) and writing key files (0600).
//!
//! This module builds configurations and checks certificates. It opens no sockets and
//! decides nothing about connections: whether a peer's role fits what it asks for is
//! the caller's decision, made with [`peer_role`]. Every configuration uses the ring
//! provider explicitly, never a process-wide default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hal_core::ServerId;
use rustls::crypto::CryptoProvider;

pub mod client;
pub mod files;
pub mod identity;
pub mod inspect;
pub mod issue;
pub mod server;
pub mod triad_dir;
mod verify;

#[cfg(test)]
mod testing;

pub use client::{client_connector, peer_role};
pub use identity::{CertRole, IdentityError, role_of, server_name};
pub use server::ServerTls;

/// The application protocol both sides offer (ALPN): a client or peer of another
/// protocol, or another version of this one, fails the handshake instead of talking
/// past the server.
pub const ALPN_HAL: &[u8] = b"hal/1";

/// The environment variable a client reads the triad CA file from (`ca.pem`, or a
/// bundle of several CA certificates while a CA is being replaced).
pub const TRIAD_CA_VAR: &str = "HAL_TRIAD_CA";

/// A server whose certificate has this many days left or fewer should be renewed:
/// [`ServerTls::expires_soon`].
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The ring provider every configuration here is built with.
///
/// rustls 0.23.48 deprecates it because ring has no post-quantum key exchange (only
/// X25519 and the NIST curves). The alternative, aws-lc-rs, is a large C build; ring is
/// what this project chose. Revisit when ring or rustls offers a hybrid group.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What can go wrong with the triad's certificates and keys. Every message that is about
/// a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{}: cannot {action}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the file is far too large to be a certificate or a key", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: not a certificate in PEM form (-----BEGIN CERTIFICATE-----){hint}", path.display())]
    NotCertificate { path: PathBuf, hint: &'static str },
    #[error("{}: not a private key in PEM form (-----BEGIN PRIVATE KEY-----){hint}", path.display())]
    NotKey { path: PathBuf, hint: &'static str },
    #[error("{}: the certificate cannot be read: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{}: the private key cannot be used: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    /// A certificate given as bytes (no file) names no single HAL identity.
    #[error("the certificate {0}")]
    Identity(#[from] IdentityError),
    #[error("{} {source}", path.display())]
    FileIdentity {
        path: PathBuf,
        #[source]
        source: IdentityError,
    },
    #[error(
        "{} is the certificate of slot {slot}, but this server is {me} in the triad list",
        path.display()
    )]
    WrongSlot {
        path: PathBuf,
        slot: ServerId,
        me: ServerId,
    },
    #[error("{} is the {role} certificate, not {wanted}", path.display())]
    WrongRole {
        path: PathBuf,
        role: CertRole,
        wanted: &'static str,
    },
    #[error(
        "{} expired on {not_after} (it is now {now}); renew it with `hal-net tls renew`",
        path.display()
    )]
    Expired {
        path: PathBuf,
        not_after: String,
        now: String,
    },
    #[error(
        "{} is not valid before {not_before} (it is now {now}); is this machine's clock right?",
        path.display()
    )]
    NotYetValid {
        path: PathBuf,
        not_before: String,
        now: String,
    },
    #[error(
        "{} is not signed by the CA in {} (a certificate of another triad's CA?)",
        path.display(),
        ca.display()
    )]
    NotSignedByCa { path: PathBuf, ca: PathBuf },
    #[error("{} does not verify against the CA in {}: {reason}", path.display(), ca.display())]
    DoesNotVerify {
        path: PathBuf,
        ca: PathBuf,
        reason: String,
    },
    #[error("{} is not the private key of {}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error(
        "refusing to overwrite {}; nothing was written. Pass --force to replace the files \
         (certificates of the old CA stop verifying against a new one)",
        files::list(paths)
    )]
    Exists { paths: Vec<PathBuf> },
    #[error(
        "give the address of one server, or of the three servers of a triad in the triad \
         list's order; got {count}"
    )]
    ServerCount { count: usize },
    #[error("'{host}' is neither a DNS name nor an IP address a certificate can name")]
    BadHost { host: String },
    #[error(
        "{}: no server certificate to read the hosts from; pass --servers",
        dir.display()
    )]
    NoServerCerts { dir: PathBuf },
    #[error("cannot make {what}: {reason}")]
    Generate { what: String, reason: String },
    #[error("the TLS configuration: {0}")]
    Config(String),
}

impl TlsError {
    fn io<'a>(
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> TlsError + 'a {
        move |source| TlsError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}
