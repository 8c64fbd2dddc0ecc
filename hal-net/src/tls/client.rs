//! The client side: the connector license clients and operators use (it trusts the
//! triad CA, or a bundle of CAs while one replaces another, and presents the admin
//! certificate when given one), and reading the verified role of the other side after a
//! handshake.
//!
//! A connector checks the certificate chain and the host dialled; it cannot know which
//! slot the host should be. The caller compares [`peer_role`] with the server's position
//! in its license path after the handshake, and drops the connection if they differ (in
//! a development triad all three servers are 127.0.0.1, so the host alone proves
//! nothing).

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, CommonState};
use tokio_rustls::TlsConnector;

use super::identity::{CertRole, parse_role};
use super::{ALPN_HAL, TlsError, files, provider, verify};

/// The connector for a license client or an operator: it verifies the server's
/// certificate against the CA certificates in `ca` and the host dialled, and offers
/// ALPN `hal/1`.
///
/// With `admin = Some((cert, key))` it presents that certificate, which must be an admin
/// certificate of a CA in `ca` whose key is `key` (checked here, against the system
/// clock, so that a wrong file is named now rather than refused by the server later).
pub fn client_connector(
    ca: &Path,
    admin: Option<(&Path, &Path)>,
) -> Result<TlsConnector, TlsError> {
    let roots = verify::read_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots.clone());
    let mut config = match admin {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let leaf = verify::read_leaf(cert)?;
            if leaf.role != CertRole::Admin {
                return Err(TlsError::WrongRole {
                    path: cert.to_path_buf(),
                    role: leaf.role,
                    wanted: "the admin certificate (admin.pem)",
                });
            }
            let now = SystemTime::now();
            verify::check_dates(&leaf, now)?;
            verify::check_chain(&leaf, &roots, ca, now)?;
            let (key_der, _) = files::read_key(key)?;
            let certified = verify::certified_key(&leaf, key, key_der)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
    };
    config.alpn_protocols = vec![ALPN_HAL.to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The role named by the certificate the other side presented and the handshake
/// verified against the triad CA; `None` if it presented none (a license client) or
/// its certificate names no single HAL role.
///
/// Takes a connection's state: from a `tokio_rustls` stream, `peer_role(stream.get_ref().1)`.
pub fn peer_role(conn: &CommonState) -> Option<CertRole> {
    let cert = conn.peer_certificates()?.first()?;
    parse_role(cert).ok()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use hal_core::ServerId;

    use super::*;
    use crate::tls::ServerTls;
    use crate::tls::testing::{Triad, handshake, names};

    fn server(triad: &Triad) -> ServerTls {
        ServerTls::load(
            &triad.ca(),
            &triad.path("server1.pem"),
            &triad.path("server1.key"),
            ServerId::PRIMARY,
            SystemTime::now(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_client_of_another_ca_refuses_the_server() {
        let ours = Triad::new();
        let theirs = Triad::new();
        let client = client_connector(&theirs.ca(), None).unwrap();
        let (_, connected) = handshake(server(&ours).acceptor(), client, "127.0.0.1").await;
        let error = connected.unwrap_err().to_string();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }

    #[tokio::test]
    async fn a_client_refuses_a_server_that_does_not_name_the_host_dialled() {
        let triad = Triad::new();
        let client = client_connector(&triad.ca(), None).unwrap();
        let (_, connected) = handshake(server(&triad).acceptor(), client, "lic1.example.com").await;
        let error = connected.unwrap_err().to_string();
        assert!(error.contains("not valid for name"), "{error}");
    }

    #[tokio::test]
    async fn an_operator_presents_the_admin_certificate() {
        let triad = Triad::new();
        let admin = (triad.path("admin.pem"), triad.path("admin.key"));
        let client = client_connector(&triad.ca(), Some((&admin.0, &admin.1))).unwrap();
        let (accepted, connected) = handshake(server(&triad).acceptor(), client, "127.0.0.1").await;
        connected.unwrap();
        assert_eq!(
            peer_role(accepted.unwrap().get_ref().1),
            Some(CertRole::Admin)
        );
    }

    fn error_of(result: Result<TlsConnector, TlsError>) -> String {
        match result {
            Ok(_) => panic!("the connector was made"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_admin_files_are_checked_when_the_connector_is_made() {
        let triad = Triad::new();
        let ca = triad.ca();
        let (pem, key) = (triad.path("admin.pem"), triad.path("admin.key"));
        let server_pem = triad.path("server1.pem");
        let error = error_of(client_connector(&ca, Some((&server_pem, &key))));
        assert!(
            error.contains("server1.pem is the server #1 certificate"),
            "{error}"
        );
        let error = error_of(client_connector(
            &ca,
            Some((&pem, &triad.path("server1.key"))),
        ));
        assert!(error.contains("is not the private key of"), "{error}");
        let other = Triad::new();
        let error = error_of(client_connector(&other.ca(), Some((&pem, &key))));
        assert!(names(&error, &pem) && names(&error, &other.ca()), "{error}");
        assert!(error.contains("is not signed by the CA"), "{error}");
    }

    #[tokio::test]
    async fn a_bundle_of_cas_trusts_each_of_them() {
        let old = Triad::new();
        let new = Triad::new();
        let bundle = new.path("bundle.pem");
        let text = std::fs::read_to_string(old.ca()).unwrap()
            + &std::fs::read_to_string(new.ca()).unwrap();
        std::fs::write(&bundle, text).unwrap();
        for triad in [&old, &new] {
            let client = client_connector(&bundle, None).unwrap();
            let (_, connected) = handshake(server(triad).acceptor(), client, "127.0.0.1").await;
            connected.unwrap();
        }
    }
}
