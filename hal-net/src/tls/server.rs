//! A server's TLS identity: its certificate and key, checked once at load against the
//! triad CA and its slot, and the two configurations built from them: the acceptor for
//! every incoming connection (peers, clients, operators) and the connector it dials its
//! peers with.
//!
//! This does not decide who may do what: the acceptor lets a client without a
//! certificate in (license clients have none) and verifies one that is presented; the
//! caller asks [`peer_role`](super::peer_role) after the handshake and refuses a peer
//! whose slot is not the one it claims, or an administrative verb without the admin
//! role.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use hal_core::ServerId;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::borrow_proof::BorrowSigner;
use super::identity::CertRole;
use super::verify::{self, Leaf};
use super::{ALPN_HAL, EXPIRY_WARNING_DAYS, TlsError, files, provider};

/// A triad server's certificate and key, verified against the triad CA for its slot.
///
/// Build it with [`ServerTls::load`] at start; hand out [`ServerTls::acceptor`] and
/// [`ServerTls::peer_connector`] to the listener and the peer links. Check
/// [`ServerTls::expires_soon`] now and then and warn the operator.
#[derive(Clone)]
pub struct ServerTls {
    me: ServerId,
    not_after: i64,
    acceptor_config: Arc<ServerConfig>,
    connector_config: Arc<ClientConfig>,
    certified: Arc<CertifiedKey>,
}

impl fmt::Debug for ServerTls {
    /// The slot and the expiry; never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("me", &self.me)
            .field("not_after", &verify::format_time(self.not_after))
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate `cert` and key `key` of server `me` (its position in the
    /// triad list) and the triad CA file `ca` (one CA certificate or a bundle).
    ///
    /// Refuses, with an error naming the file and what is wrong: an unreadable file, or
    /// one that holds no certificate or key; a certificate that names another slot or the
    /// admin role; one that is expired or not yet valid at `now` (saying the dates); one
    /// not signed by a CA in `ca`; a key that is not the certificate's.
    pub fn load(
        ca: &Path,
        cert: &Path,
        key: &Path,
        me: ServerId,
        now: SystemTime,
    ) -> Result<ServerTls, TlsError> {
        let leaf = verify::read_leaf(cert)?;
        check_slot(&leaf, me)?;
        verify::check_dates(&leaf, now)?;
        let roots = verify::read_roots(ca)?;
        verify::check_chain(&leaf, &roots, ca, now)?;
        let (key_der, _) = files::read_key(key)?;
        let certified = verify::certified_key(&leaf, key, key_der)?;
        Ok(ServerTls {
            me,
            not_after: leaf.not_after,
            acceptor_config: Arc::new(acceptor_config(&roots, certified.clone())?),
            connector_config: Arc::new(connector_config(&roots, certified.clone())?),
            certified,
        })
    }

    /// The slot this identity is for.
    pub fn me(&self) -> ServerId {
        self.me
    }

    /// When the certificate expires, in wall-clock ms since the UNIX epoch (0 for a date
    /// before it).
    pub fn not_after_ms(&self) -> u64 {
        u64::try_from(self.not_after)
            .unwrap_or(0)
            .saturating_mul(1000)
    }

    /// Whole days until the certificate expires (0 on its last day, negative once it has).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        verify::days_left(self.not_after, now)
    }

    /// Whether the certificate expires within [`EXPIRY_WARNING_DAYS`] (or has): time to
    /// run `hal-net tls renew`.
    pub fn expires_soon(&self, now: SystemTime) -> bool {
        self.days_left(now) < EXPIRY_WARNING_DAYS
    }

    /// The signer of this server's borrow records (its certificate and key).
    pub fn borrow_signer(&self) -> BorrowSigner {
        BorrowSigner::new(self.me, self.certified.clone())
    }

    /// The acceptor for every incoming connection: it presents this server's certificate,
    /// offers ALPN `hal/1`, and verifies a client certificate against the triad CA when
    /// one is presented; a client without one is let in (license clients have none), and
    /// [`peer_role`](super::peer_role) is then `None`.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.acceptor_config.clone())
    }

    /// The connector for dialling a peer server: it verifies the peer's certificate
    /// against the triad CA and the host dialled ([`server_name`](super::server_name)),
    /// presents this server's certificate, and offers ALPN `hal/1`. The caller checks the
    /// peer's slot with [`peer_role`](super::peer_role).
    pub fn peer_connector(&self) -> TlsConnector {
        TlsConnector::from(self.connector_config.clone())
    }
}

fn check_slot(leaf: &Leaf, me: ServerId) -> Result<(), TlsError> {
    match leaf.role {
        CertRole::Server(slot) if slot == me => Ok(()),
        CertRole::Server(slot) => Err(TlsError::WrongSlot {
            path: leaf.path.clone(),
            slot,
            me,
        }),
        role @ CertRole::Admin => Err(TlsError::WrongRole {
            path: leaf.path.clone(),
            role,
            wanted: "a server's (serverN.pem)",
        }),
    }
}

fn acceptor_config(
    roots: &Arc<RootCertStore>,
    certified: Arc<CertifiedKey>,
) -> Result<ServerConfig, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_HAL.to_vec()];
    Ok(config)
}

fn connector_config(
    roots: &Arc<RootCertStore>,
    certified: Arc<CertifiedKey>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots.clone())
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_HAL.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::tls::peer_role;
    use crate::tls::testing::{Triad, days, handshake, names};

    fn load(triad: &Triad, cert: &str, key: &str, me: u8) -> Result<ServerTls, TlsError> {
        ServerTls::load(
            &triad.ca(),
            &triad.path(cert),
            &triad.path(key),
            ServerId::new(me).unwrap(),
            SystemTime::now(),
        )
    }

    #[test]
    fn a_server_loads_its_own_certificate() {
        let triad = Triad::new();
        let tls = load(&triad, "server2.pem", "server2.key", 2).unwrap();
        let now = SystemTime::now();
        assert_eq!(tls.me(), ServerId::SECONDARY);
        // 825 days from the second it was made, which may be this one.
        assert!((824..=825).contains(&tls.days_left(now)));
        assert!(!tls.expires_soon(now));
        assert!(tls.expires_soon(now + days(800)));
        assert!(tls.days_left(now + days(826)) < 0);
    }

    #[test]
    fn the_certificate_of_another_slot_is_refused() {
        let triad = Triad::new();
        let error = load(&triad, "server2.pem", "server2.key", 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(
                "server2.pem is the certificate of slot #2, but this server is #1 in the \
                 triad list"
            ),
            "{error}"
        );
        let error = load(&triad, "admin.pem", "admin.key", 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("admin.pem is the admin certificate"),
            "{error}"
        );
    }

    #[test]
    fn a_certificate_of_another_ca_is_refused() {
        let ours = Triad::new();
        let theirs = Triad::new();
        let cert = theirs.path("server1.pem");
        let error = ServerTls::load(
            &ours.ca(),
            &cert,
            &theirs.path("server1.key"),
            ServerId::PRIMARY,
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(error, TlsError::NotSignedByCa { .. }), "{error}");
        let error = error.to_string();
        assert!(names(&error, &cert), "{error}");
        assert!(names(&error, &ours.ca()), "{error}");
        assert!(error.contains("is not signed by the CA in"), "{error}");
    }

    #[test]
    fn an_expired_or_early_certificate_is_refused_with_its_dates() {
        let triad = Triad::new();
        let now = SystemTime::now();
        let role = CertRole::Server(ServerId::PRIMARY);
        let (cert, key) = triad.leaf_with_dates("old", role, now - days(400), now - days(35));
        let error = ServerTls::load(&triad.ca(), &cert, &key, ServerId::PRIMARY, now)
            .unwrap_err()
            .to_string();
        assert!(names(&error, &cert), "{error}");
        assert!(error.contains(" expired on "), "{error}");
        let expiry = time::OffsetDateTime::from(now - days(35))
            .date()
            .to_string();
        assert!(error.contains(&expiry), "{error} lacks {expiry}");

        let (cert, key) = triad.leaf_with_dates("new", role, now + days(2), now + days(90));
        let error = ServerTls::load(&triad.ca(), &cert, &key, ServerId::PRIMARY, now)
            .unwrap_err()
            .to_string();
        assert!(names(&error, &cert), "{error}");
        assert!(error.contains("is not valid before"), "{error}");
        // The same certificate loads once its time has come.
        ServerTls::load(&triad.ca(), &cert, &key, ServerId::PRIMARY, now + days(3)).unwrap();
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let triad = Triad::new();
        let error = load(&triad, "server1.pem", "server2.key", 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(&format!(
                "{} is not the private key of {}",
                triad.path("server2.key").display(),
                triad.path("server1.pem").display()
            )),
            "{error}"
        );
    }

    #[test]
    fn unreadable_and_garbage_files_are_named() {
        let triad = Triad::new();
        let error = load(&triad, "missing.pem", "server1.key", 1)
            .unwrap_err()
            .to_string();
        assert!(names(&error, &triad.path("missing.pem")), "{error}");
        assert!(error.contains("cannot read"), "{error}");
        std::fs::write(triad.path("junk"), "junk").unwrap();
        let error = load(&triad, "server1.pem", "junk", 1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("junk: not a private key"), "{error}");
        let error = load(&triad, "server1.key", "server1.key", 1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("server1.key: not a certificate"), "{error}");
        assert!(error.contains("this is a private key"), "{error}");
        let error = ServerTls::load(
            &triad.path("server1.pem"),
            &triad.path("server1.pem"),
            &triad.path("server1.key"),
            ServerId::PRIMARY,
            SystemTime::now(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("is not a CA certificate"), "{error}");
    }

    #[tokio::test]
    async fn peers_see_each_others_slot() {
        let triad = Triad::new();
        let one = load(&triad, "server1.pem", "server1.key", 1).unwrap();
        let two = load(&triad, "server2.pem", "server2.key", 2).unwrap();
        let (accepted, connected) =
            handshake(one.acceptor(), two.peer_connector(), "127.0.0.1").await;
        let accepted = accepted.unwrap();
        let connected = connected.unwrap();
        assert_eq!(
            peer_role(accepted.get_ref().1),
            Some(CertRole::Server(ServerId::SECONDARY))
        );
        assert_eq!(
            peer_role(connected.get_ref().1),
            Some(CertRole::Server(ServerId::PRIMARY))
        );
        assert_eq!(accepted.get_ref().1.alpn_protocol(), Some(ALPN_HAL));
    }

    #[tokio::test]
    async fn a_peer_of_another_ca_is_refused() {
        let ours = Triad::new();
        let theirs = Triad::new();
        let one = load(&ours, "server1.pem", "server1.key", 1).unwrap();
        // The intruder trusts our CA, so that only our side can refuse it, and presents
        // their certificate for slot #2.
        let leaf = verify::read_leaf(&theirs.path("server2.pem")).unwrap();
        let (key, _) = files::read_key(&theirs.path("server2.key")).unwrap();
        let certified = verify::certified_key(&leaf, &theirs.path("server2.key"), key).unwrap();
        let roots = verify::read_roots(&ours.ca()).unwrap();
        let intruder = TlsConnector::from(Arc::new(connector_config(&roots, certified).unwrap()));
        let (accepted, _) = handshake(one.acceptor(), intruder, "127.0.0.1").await;
        let error = accepted.unwrap_err().to_string();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }

    #[tokio::test]
    async fn a_client_without_a_certificate_is_let_in_without_a_role() {
        let triad = Triad::new();
        let one = load(&triad, "server1.pem", "server1.key", 1).unwrap();
        let client = crate::tls::client_connector(&triad.ca(), None).unwrap();
        let (accepted, connected) = handshake(one.acceptor(), client, "127.0.0.1").await;
        let accepted = accepted.unwrap();
        assert_eq!(peer_role(accepted.get_ref().1), None);
        assert_eq!(
            peer_role(connected.unwrap().get_ref().1),
            Some(CertRole::Server(ServerId::PRIMARY))
        );
    }
}
