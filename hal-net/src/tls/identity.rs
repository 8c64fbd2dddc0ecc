//! Who a certificate says its holder is: a server of the triad in slot N
//! (`urn:hal:server:N` as a SAN URI) or an operator (`urn:hal:admin`); and the names a
//! server certificate carries for its host (a DNS name or an IP address).
//!
//! This reads identities; it does not check signatures or dates. Only a certificate that
//! a handshake or [`ServerTls::load`](super::ServerTls::load) has verified against the
//! triad CA proves the identity it names.

use std::fmt;
use std::net::IpAddr;

use hal_core::ServerId;
use rcgen::SanType;
use rcgen::string::Ia5String;
use rustls_pki_types::ServerName;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::TlsError;

/// The prefix of every HAL identity URI; a URI with it that is not one of ours is an
/// error, not ignored.
const HAL_URI_PREFIX: &str = "urn:hal:";
const SERVER_URI_PREFIX: &str = "urn:hal:server:";
const ADMIN_URI: &str = "urn:hal:admin";

/// The role a triad certificate gives its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// A server of the triad, in the slot its position in the triad list gives it (a
    /// single server is slot 1).
    Server(ServerId),
    /// An operator, allowed the administrative verbs.
    Admin,
}

impl CertRole {
    /// The SAN URI that names this role: `urn:hal:server:N` or `urn:hal:admin`.
    pub fn uri(self) -> String {
        match self {
            CertRole::Server(id) => format!("{SERVER_URI_PREFIX}{}", id.get()),
            CertRole::Admin => ADMIN_URI.to_owned(),
        }
    }

    fn from_uri(uri: &str) -> Option<CertRole> {
        if uri == ADMIN_URI {
            return Some(CertRole::Admin);
        }
        let digits = uri.strip_prefix(SERVER_URI_PREFIX)?;
        // One digit exactly: `urn:hal:server:01` or `:+1` is not a slot.
        if digits.len() != 1 {
            return None;
        }
        ServerId::new(digits.parse().ok()?).map(CertRole::Server)
    }
}

impl fmt::Display for CertRole {
    /// `server #2` or `admin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRole::Server(id) => write!(f, "server {id}"),
            CertRole::Admin => f.write_str("admin"),
        }
    }
}

/// Why a certificate names no single HAL identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not a certificate (the parser's reason).
    #[error("is not an X.509 certificate: {0}")]
    NotX509(String),
    /// No `urn:hal:` URI among the SANs.
    #[error(
        "names no HAL identity (no SAN URI urn:hal:server:N or urn:hal:admin): it was not \
         made by `hal-net tls`"
    )]
    None,
    /// More than one `urn:hal:` URI (all of them).
    #[error("names several HAL identities ({}); a certificate names exactly one", .0.join(", "))]
    Several(Vec<String>),
    /// A `urn:hal:` URI that names no role (`urn:hal:server:4`).
    #[error("names an unknown HAL identity {0} (slots are 1, 2 and 3)")]
    Unknown(String),
}

/// The role named by a DER certificate's SAN URIs: exactly one HAL URI, else an error.
/// The certificate is not verified here.
pub fn role_of(cert_der: &[u8]) -> Result<CertRole, TlsError> {
    Ok(parse_role(cert_der)?)
}

/// [`role_of`] with the error before it is wrapped, for callers that add the file name.
pub(crate) fn parse_role(cert_der: &[u8]) -> Result<CertRole, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| IdentityError::NotX509(e.to_string()))?;
    role_in(&cert)
}

/// The role named by a parsed certificate.
pub(crate) fn role_in(cert: &X509Certificate<'_>) -> Result<CertRole, IdentityError> {
    let hal_uris: Vec<&str> = san_names(cert)?
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(HAL_URI_PREFIX) => Some(uri),
            _ => None,
        })
        .collect();
    match hal_uris.as_slice() {
        [] => Err(IdentityError::None),
        [uri] => CertRole::from_uri(uri).ok_or_else(|| IdentityError::Unknown((*uri).to_owned())),
        several => Err(IdentityError::Several(
            several.iter().map(|uri| (*uri).to_owned()).collect(),
        )),
    }
}

/// The certificate's subject alternative names (none if it has no such extension).
pub(crate) fn san_names<'a>(
    cert: &'a X509Certificate<'a>,
) -> Result<Vec<GeneralName<'a>>, IdentityError> {
    let extension = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::NotX509(e.to_string()))?;
    Ok(extension.map_or_else(Vec::new, |ext| ext.value.general_names.clone()))
}

/// The hosts (DNS names and IP addresses) a certificate names, as text.
pub(crate) fn hosts_in(cert: &X509Certificate<'_>) -> Result<Vec<String>, IdentityError> {
    Ok(san_names(cert)?
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect())
}

/// A SAN as `show` prints it: `URI:urn:hal:server:1`, `DNS:lic1`, `IP:127.0.0.1`.
pub(crate) fn describe_san(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => match ip_from_bytes(bytes) {
            Some(ip) => format!("IP:{ip}"),
            None => format!("IP:(invalid, {} bytes)", bytes.len()),
        },
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        other => format!("{other:?}"),
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The SAN that names `host` in a certificate: an IP address if it parses as one, else
/// a DNS name.
pub(crate) fn host_san(host: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    // The name must also be one a TLS client can ask for, or no client could connect.
    server_name(host)?;
    let name = Ia5String::try_from(host).map_err(|_| TlsError::BadHost { host: host.into() })?;
    Ok(SanType::DnsName(name))
}

/// The name a client asks for when it connects to `host` (as in a license path, an IPv6
/// address without brackets): an IP address or a DNS name. The server's certificate must
/// name it.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::BadHost { host: host.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_uris() {
        for role in [
            CertRole::Server(ServerId::PRIMARY),
            CertRole::Server(ServerId::SECONDARY),
            CertRole::Server(ServerId::TIEBREAKER),
            CertRole::Admin,
        ] {
            assert_eq!(CertRole::from_uri(&role.uri()), Some(role));
        }
        assert_eq!(
            CertRole::Server(ServerId::SECONDARY).uri(),
            "urn:hal:server:2"
        );
    }

    #[test]
    fn only_slots_one_to_three_are_servers() {
        for uri in [
            "urn:hal:server:0",
            "urn:hal:server:4",
            "urn:hal:server:01",
            "urn:hal:server:+1",
            "urn:hal:server:",
            "urn:hal:admins",
        ] {
            assert_eq!(CertRole::from_uri(uri), None, "{uri}");
        }
    }

    #[test]
    fn hosts_become_ip_or_dns_names() {
        assert!(matches!(host_san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(host_san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(
            host_san("lic1.example.com"),
            Ok(SanType::DnsName(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("lic1.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        let error = server_name("a..b").unwrap_err().to_string();
        assert!(error.contains("'a..b'"), "{error}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let error = role_of(b"hello").unwrap_err();
        assert!(
            matches!(error, TlsError::Identity(IdentityError::NotX509(_))),
            "{error}"
        );
    }
}
