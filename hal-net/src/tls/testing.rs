//! Test helpers: a triad directory made by [`triad_dir::init`], certificates with chosen
//! dates signed by its CA, and a TLS handshake over an in-memory pipe.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::io::DuplexStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::identity::CertRole;
use super::issue::{self, Validity};
use super::triad_dir::{self, CA_CERT_FILE, CA_KEY_FILE};
use super::{files, server_name};
use crate::addr::ServerAddr;

/// A triad's certificates in a temporary directory: three servers on 127.0.0.1.
pub(crate) struct Triad {
    pub dir: TempDir,
}

impl Triad {
    pub fn new() -> Triad {
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<ServerAddr> = (6201..=6203).map(ServerAddr::loopback).collect();
        triad_dir::init(dir.path(), &servers, 825, false, SystemTime::now()).unwrap();
        Triad { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path(CA_CERT_FILE)
    }

    /// Writes `name.pem` and `name.key`: a certificate for `role` on 127.0.0.1 signed by
    /// this triad's CA, valid from `not_before` to `not_after`. Returns the two paths.
    pub fn leaf_with_dates(
        &self,
        name: &str,
        role: CertRole,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> (PathBuf, PathBuf) {
        let ca_der = files::read_cert(&self.ca()).unwrap();
        let (_, ca_key) = files::read_key(&self.path(CA_KEY_FILE)).unwrap();
        let issuer = issue::ca_issuer(&ca_der, &ca_key).unwrap();
        let validity = Validity {
            not_before: OffsetDateTime::from(not_before),
            not_after: OffsetDateTime::from(not_after),
        };
        let issued = issue::leaf(&issuer, role, Some("127.0.0.1"), validity).unwrap();
        let cert = self.path(&format!("{name}.pem"));
        let key = self.path(&format!("{name}.key"));
        std::fs::write(&cert, issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem).unwrap();
        (cert, key)
    }
}

pub(crate) fn days(count: u64) -> Duration {
    Duration::from_secs(count * 24 * 60 * 60)
}

/// Whether `text` names the file `path` (its full path, as the errors print it).
pub(crate) fn names(text: &str, path: &Path) -> bool {
    text.contains(&path.display().to_string())
}

/// Both ends of one handshake, server first, over an in-memory pipe; the client asks
/// for `host`.
pub(crate) async fn handshake(
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    host: &str,
) -> (
    std::io::Result<server::TlsStream<DuplexStream>>,
    std::io::Result<client::TlsStream<DuplexStream>>,
) {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let name = server_name(host).unwrap();
    let accept = acceptor.accept(server_end);
    let connect = connector.connect(name, client_end);
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(accept, connect)
    })
    .await
    .expect("the handshake finishes")
}
