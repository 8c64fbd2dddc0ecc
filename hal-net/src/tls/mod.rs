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
//! - [`borrow_proof`]: a server's signature over a borrow it granted, checked offline
//!   against the CA;
//! - [`files`]: reading PEM files (bounded) and writing key files (0600).
//!
//! This module builds configurations and checks certificates. It opens no sockets and
//! decides nothing about connections: whether a peer's role fits what it asks for is
//! the caller's decision, made with [`peer_role`]. Every configuration uses the ring
//! provider explicitly, never a process-wide default.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hal_core::ServerId;
use rustls::crypto::CryptoProvider;

pub mod borrow_proof;
pub mod client;
pub mod files;
pub mod identity;
pub mod inspect;
pub mod issue;
pub mod server;
pub mod triad_dir;
mod verify;

#[cfg(test)]
pub(crate) mod testing;

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
/// a file names it; the fields are what the message says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written, or a directory created.
    #[error("{}: cannot {action}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// `read the file`, `write the file`, `create the directory`.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file far larger than any certificate, key or CA bundle (read no further).
    #[error("{}: the file is far too large to be a certificate or a key", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A file with no PEM certificate in it.
    #[error("{}: not a certificate in PEM form (-----BEGIN CERTIFICATE-----){hint}", path.display())]
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// What it seems to be instead (`; this is a private key: …`), or empty.
        hint: &'static str,
    },
    /// A file with no PEM private key in it.
    #[error("{}: not a private key in PEM form (-----BEGIN PRIVATE KEY-----){hint}", path.display())]
    NotKey {
        /// The file.
        path: PathBuf,
        /// What it seems to be instead, or empty.
        hint: &'static str,
    },
    /// A certificate that cannot be parsed or used as it is.
    #[error("{}: the certificate cannot be read: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A private key the crypto provider cannot use.
    #[error("{}: the private key cannot be used: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate given as bytes (no file) names no single HAL identity.
    #[error("the certificate {0}")]
    Identity(#[from] IdentityError),
    /// A certificate file names no single HAL identity.
    #[error("{} {source}", path.display())]
    FileIdentity {
        /// The file.
        path: PathBuf,
        /// What is wrong with its identity.
        #[source]
        source: IdentityError,
    },
    /// A server certificate of another slot than the server loading it.
    #[error(
        "{} is the certificate of slot {slot}, but this server is {me} in the triad list",
        path.display()
    )]
    WrongSlot {
        /// The certificate file.
        path: PathBuf,
        /// The slot it names.
        slot: ServerId,
        /// The slot of the server loading it.
        me: ServerId,
    },
    /// A certificate of the wrong kind: an admin's for a server, a server's for an admin.
    #[error("{} is the {role} certificate, not {wanted}", path.display())]
    WrongRole {
        /// The certificate file.
        path: PathBuf,
        /// The role it names.
        role: CertRole,
        /// The kind of certificate wanted, as the message says it.
        wanted: &'static str,
    },
    /// A certificate past its end.
    #[error(
        "{} expired on {not_after} (it is now {now}); renew it with `hal-net tls renew`",
        path.display()
    )]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Its end, `2027-03-01 12:00:00 UTC`.
        not_after: String,
        /// The time it was checked at.
        now: String,
    },
    /// A certificate before its start.
    #[error(
        "{} is not valid before {not_before} (it is now {now}); is this machine's clock right?",
        path.display()
    )]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// Its start.
        not_before: String,
        /// The time it was checked at.
        now: String,
    },
    /// A certificate that no CA in the CA file signed.
    #[error(
        "{} is not signed by the CA in {} (a certificate of another triad's CA?)",
        path.display(),
        ca.display()
    )]
    NotSignedByCa {
        /// The certificate file.
        path: PathBuf,
        /// The CA file.
        ca: PathBuf,
    },
    /// A certificate the CA signed that a handshake would still refuse.
    #[error("{} does not verify against the CA in {}: {reason}", path.display(), ca.display())]
    DoesNotVerify {
        /// The certificate file.
        path: PathBuf,
        /// The CA file.
        ca: PathBuf,
        /// Why, as rustls says it.
        reason: String,
    },
    /// A key that is not the certificate's.
    #[error("{} is not the private key of {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// Files `tls init` would overwrite without `--force`; none was written.
    #[error(
        "refusing to overwrite {}; nothing was written. Pass --force to replace the files \
         (certificates of the old CA stop verifying against a new one)",
        files::list(paths)
    )]
    Exists {
        /// Every file in the way.
        paths: Vec<PathBuf>,
    },
    /// Neither one server nor three.
    #[error(
        "give the address of one server, or of the three servers of a triad in the triad \
         list's order; got {count}"
    )]
    ServerCount {
        /// How many were given (or found).
        count: usize,
    },
    /// A host that cannot be named in a certificate or asked for by a client.
    #[error("'{host}' is neither a DNS name nor an IP address a certificate can name")]
    BadHost {
        /// The host as given.
        host: String,
    },
    /// `tls renew` without `--servers` in a directory with no server certificate.
    #[error(
        "{}: no server certificate to read the hosts from; pass --servers",
        dir.display()
    )]
    NoServerCerts {
        /// The directory.
        dir: PathBuf,
    },
    /// rcgen or the random generator failed to make a key or certificate.
    #[error("cannot make {what}: {reason}")]
    Generate {
        /// What was being made.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// rustls refused to build a configuration (a bug, or an unusable CA file).
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
