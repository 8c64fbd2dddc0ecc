//! What `hal-net tls show` says about a certificate: subject, issuer, the role it gives
//! (server slot, admin, or CA), its names, its dates and days left, and its SHA-256
//! fingerprint in the colon-separated hex that `openssl x509 -fingerprint -sha256`
//! prints, so an operator can compare the two.
//!
//! This describes; it does not verify. A certificate of another CA is described all the
//! same.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::identity::{self, CertRole};
use super::{TlsError, files, verify};

/// One certificate as `show` prints it. With `--json`, the field names are a stable
/// interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// The subject's distinguished name, `CN=HAL server #1 (lic1)`.
    pub subject: String,
    /// The issuer's distinguished name, `CN=HAL triad CA 1a2b3c4d`.
    pub issuer: String,
    /// `server #N`, `admin`, `CA`, or `none` for a certificate not made by `hal-net tls`.
    pub role: String,
    /// The slot of a server certificate, else `None`.
    pub slot: Option<u8>,
    /// `URI:urn:hal:server:1`, `DNS:lic1.example.com`, `IP:127.0.0.1`.
    pub sans: Vec<String>,
    /// The start of its validity, `2027-03-01 12:00:00 UTC`.
    pub not_before: String,
    /// The end of its validity, in the same form.
    pub not_after: String,
    /// Whole days until `not_after`, negative once expired.
    pub days_left: i64,
    /// SHA-256 of the DER, upper-case hex bytes joined by `:`.
    pub sha256_fingerprint: String,
}

/// Every certificate in a PEM file (a CA bundle holds several), described at `now`.
pub fn describe_file(path: &Path, now: SystemTime) -> Result<Vec<CertInfo>, TlsError> {
    files::read_certs(path)?
        .iter()
        .map(|der| {
            describe(der, now).map_err(|reason| TlsError::BadCertificate {
                path: path.to_path_buf(),
                reason,
            })
        })
        .collect()
}

/// One DER certificate, described at `now`.
pub fn describe(der: &[u8], now: SystemTime) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let (role, slot) = if cert.is_ca() {
        ("CA".to_owned(), None)
    } else {
        match identity::role_in(&cert) {
            Ok(role @ CertRole::Server(id)) => (role.to_string(), Some(id.get())),
            Ok(role @ CertRole::Admin) => (role.to_string(), None),
            Err(_) => ("none".to_owned(), None),
        }
    };
    let sans = identity::san_names(&cert)
        .map_err(|e| e.to_string())?
        .iter()
        .map(identity::describe_san)
        .collect();
    let validity = cert.validity();
    let not_after = validity.not_after.timestamp();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        role,
        slot,
        sans,
        not_before: verify::format_time(validity.not_before.timestamp()),
        not_after: verify::format_time(not_after),
        days_left: verify::days_left(not_after, now),
        sha256_fingerprint: fingerprint(der),
    })
}

/// SHA-256 of `der` as `AB:CD:…`, as openssl prints it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|byte| format!("{byte:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_colon_separated_upper_case_hex() {
        let print = fingerprint(b"");
        assert_eq!(
            print,
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
             27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
