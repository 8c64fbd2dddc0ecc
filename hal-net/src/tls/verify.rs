//! Checking a certificate file before it is used, so that a server or an operator hears
//! at start what is wrong with it (which file, which dates, which slot) rather than a
//! peer's handshake failing later with "unknown issuer".
//!
//! The checks are those a handshake makes (webpki, through rustls's verifiers, with
//! the ring provider) and a few it cannot name as plainly: the dates, the role, whether
//! the key is the certificate's. Time is passed in. Nothing here builds a configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use time::OffsetDateTime;
use time::macros::format_description;

use super::identity::{self, CertRole};
use super::{TlsError, files, provider, server_name};

/// A certificate file, parsed: what it says, not yet whether to believe it.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub path: PathBuf,
    pub der: CertificateDer<'static>,
    pub role: CertRole,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub hosts: Vec<String>,
}

/// Reads the one certificate in `path` and the HAL identity it names.
pub(crate) fn read_leaf(path: &Path) -> Result<Leaf, TlsError> {
    parse_leaf(path, files::read_cert(path)?)
}

/// The HAL identity, dates and hosts of `der`, the certificate of file `path`.
pub(crate) fn parse_leaf(path: &Path, der: CertificateDer<'static>) -> Result<Leaf, TlsError> {
    let (role, hosts, not_before, not_after) = {
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| TlsError::BadCertificate {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let in_file = |source| TlsError::FileIdentity {
            path: path.to_path_buf(),
            source,
        };
        let validity = cert.validity();
        (
            identity::role_in(&cert).map_err(in_file)?,
            identity::hosts_in(&cert).map_err(in_file)?,
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        )
    };
    Ok(Leaf {
        path: path.to_path_buf(),
        der,
        role,
        not_before,
        not_after,
        hosts,
    })
}

/// The CA certificates in `ca` (one, or a bundle) as trust anchors. A certificate in it
/// that is not a CA's is refused: a leaf given as `--ca` by mistake would otherwise
/// trust itself alone.
pub(crate) fn read_roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for der in files::read_certs(ca)? {
        let bad = |reason: String| TlsError::BadCertificate {
            path: ca.to_path_buf(),
            reason,
        };
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
        if !cert.is_ca() {
            let what = match identity::role_in(&cert) {
                Ok(role) => format!("the {role} certificate"),
                Err(_) => format!("the certificate of {}", cert.subject()),
            };
            return Err(bad(format!(
                "{what} is not a CA certificate; pass the triad's ca.pem"
            )));
        }
        roots.add(der).map_err(|e| bad(e.to_string()))?;
    }
    Ok(Arc::new(roots))
}

/// Refuses a certificate outside its validity at `now`, saying the dates.
pub(crate) fn check_dates(leaf: &Leaf, now: SystemTime) -> Result<(), TlsError> {
    let now_secs = unix_seconds(now);
    if now_secs > leaf.not_after {
        return Err(TlsError::Expired {
            path: leaf.path.clone(),
            not_after: format_time(leaf.not_after),
            now: format_time(now_secs),
        });
    }
    if now_secs < leaf.not_before {
        return Err(TlsError::NotYetValid {
            path: leaf.path.clone(),
            not_before: format_time(leaf.not_before),
            now: format_time(now_secs),
        });
    }
    Ok(())
}

/// Verifies `leaf` against the CA in `ca_path` as a handshake will: as a client
/// certificate (every HAL leaf), and a server's also as a server certificate for its own
/// host.
pub(crate) fn check_chain(
    leaf: &Leaf,
    roots: &Arc<RootCertStore>,
    ca_path: &Path,
    now: SystemTime,
) -> Result<(), TlsError> {
    let time = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let as_chain_error = |error: rustls::Error| match error {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => TlsError::NotSignedByCa {
            path: leaf.path.clone(),
            ca: ca_path.to_path_buf(),
        },
        other => TlsError::DoesNotVerify {
            path: leaf.path.clone(),
            ca: ca_path.to_path_buf(),
            reason: other.to_string(),
        },
    };
    let config_error = |e: rustls::server::VerifierBuilderError| TlsError::Config(e.to_string());
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(config_error)?;
    client_verifier
        .verify_client_cert(&leaf.der, &[], time)
        .map_err(as_chain_error)?;
    if let CertRole::Server(_) = leaf.role {
        let host = leaf.hosts.first().ok_or_else(|| TlsError::BadCertificate {
            path: leaf.path.clone(),
            reason: "a server certificate names its host, and this one names none".into(),
        })?;
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(config_error)?;
        server_verifier
            .verify_server_cert(&leaf.der, &[], &server_name(host)?, &[], time)
            .map_err(as_chain_error)?;
    }
    Ok(())
}

/// The certificate with its key, refused if the key is not the certificate's.
pub(crate) fn certified_key(
    leaf: &Leaf,
    key_path: &Path,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let signing_key =
        provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadKey {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(vec![leaf.der.clone()], signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            key: key_path.to_path_buf(),
            cert: leaf.path.clone(),
        }),
        Err(e) => Err(TlsError::BadCertificate {
            path: leaf.path.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Seconds since 1970 (negative before it).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `2027-03-01 12:00:00 UTC`.
pub(crate) fn format_time(unix_seconds: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{unix_seconds} s after 1970"))
}

/// Whole days from `now` to `not_after`, rounded down: 0 on the last day, negative once
/// expired.
pub(crate) fn days_left(not_after: i64, now: SystemTime) -> i64 {
    const SECONDS_PER_DAY: i64 = 24 * 60 * 60;
    not_after
        .saturating_sub(unix_seconds(now))
        .div_euclid(SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn days_left_round_down_and_go_negative() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |secs: i64| 1_000_000_000 + secs;
        assert_eq!(days_left(at(86_400 * 3 + 5), now), 3);
        assert_eq!(days_left(at(86_399), now), 0);
        assert_eq!(days_left(at(-1), now), -1);
        assert_eq!(days_left(at(-86_400), now), -1);
        assert_eq!(days_left(at(-86_401), now), -2);
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(unix_seconds(before), -10);
    }
}
