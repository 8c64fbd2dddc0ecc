//! Making certificates with rcgen: the triad's CA (self-signed, CA with path length 0,
//! keyCertSign and cRLSign), a server's certificate (its slot as `urn:hal:server:N`, its
//! host, serverAuth and clientAuth because servers dial each other) and the admin
//! certificate (`urn:hal:admin`, clientAuth). Keys are ECDSA P-256.
//!
//! This makes certificates in memory, with the dates it is given; it reads and writes no
//! files ([`super::triad_dir`] does) and does not check what it makes
//! ([`super::verify`] does).

use std::time::{Duration, SystemTime};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::TlsError;
use super::identity::{CertRole, host_san};

/// How long the triad CA is valid: ten years.
pub const CA_DAYS: u32 = 3650;
/// How long server and admin certificates are valid unless told otherwise (the most
/// that browsers accepted for a while, and a common default).
pub const LEAF_DAYS_DEFAULT: u32 = 825;
/// A certificate is valid from this long before it is made, so that a machine whose
/// clock is a little behind the one that made it accepts it at once.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// The span a certificate is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first moment it is valid.
    pub not_before: OffsetDateTime,
    /// The last moment it is valid.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour before `now` to `days` days after it.
    pub fn days_from(now: SystemTime, days: u32) -> Validity {
        let now = OffsetDateTime::from(now);
        Validity {
            not_before: now - BACKDATE,
            not_after: now + Duration::from_secs(u64::from(days) * SECONDS_PER_DAY),
        }
    }

    /// This span, ending no later than `end` (a leaf cannot outlive its CA).
    pub fn ending_by(self, end: OffsetDateTime) -> Validity {
        Validity {
            not_before: self.not_before,
            not_after: self.not_after.min(end),
        }
    }
}

/// A certificate and its new private key, both in PEM.
#[derive(Debug)]
pub struct Issued {
    /// The certificate in PEM, as written to `*.pem`.
    pub cert_pem: String,
    /// Its private key in PKCS#8 PEM, as written to `*.key`.
    pub key_pem: String,
    /// The certificate in DER.
    pub der: CertificateDer<'static>,
}

/// The triad CA: its certificate and the issuer that signs with its key.
#[derive(Debug)]
pub struct Ca {
    /// The CA's certificate and key.
    pub issued: Issued,
    /// What [`leaf`] signs with.
    pub issuer: Issuer<'static, KeyPair>,
}

fn generate(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> TlsError {
    let what = what.into();
    move |e| TlsError::Generate {
        what,
        reason: e.to_string(),
    }
}

/// A new CA named "HAL triad CA <id>" (a short random id, so that two triads' CAs can be
/// told apart by name), valid for [`CA_DAYS`] from `now`.
pub fn new_ca(now: SystemTime) -> Result<Ca, TlsError> {
    let key = KeyPair::generate().map_err(generate("the CA key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&format!("HAL triad CA {}", short_id()?));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let validity = Validity::days_from(now, CA_DAYS);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params
        .self_signed(&key)
        .map_err(generate("the CA certificate"))?;
    let issued = Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    };
    Ok(Ca {
        issued,
        issuer: Issuer::new(params, key),
    })
}

/// The issuer of an existing CA, from its certificate and key (PEM text). The caller
/// checks that the key is the certificate's.
pub fn ca_issuer(
    ca_cert: &CertificateDer<'_>,
    ca_key_pem: &str,
) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let key = KeyPair::from_pem(ca_key_pem).map_err(generate("an issuer from the CA key"))?;
    Issuer::from_ca_cert_der(ca_cert, key).map_err(generate("an issuer from the CA certificate"))
}

/// A certificate for `role`, signed by `issuer`, with a new key. A server's names
/// `host` (its host in the triad list); an admin's names no host.
pub fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    role: CertRole,
    host: Option<&str>,
    validity: Validity,
) -> Result<Issued, TlsError> {
    let what = format!("the {role} certificate");
    let key = KeyPair::generate().map_err(generate(what.clone()))?;
    let mut params = CertificateParams::default();
    let uri = Ia5String::try_from(role.uri()).map_err(generate(what.clone()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    if let Some(host) = host {
        params.subject_alt_names.push(host_san(host)?);
    }
    params.distinguished_name = name(&match (role, host) {
        (CertRole::Server(id), Some(host)) => format!("HAL server {id} ({host})"),
        (CertRole::Server(id), None) => format!("HAL server {id}"),
        (CertRole::Admin, _) => "HAL admin".to_owned(),
    });
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        CertRole::Server(_) => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        CertRole::Admin => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, issuer).map_err(generate(what))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Eight hex digits from the operating system's random generator.
fn short_id() -> Result<String, TlsError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| TlsError::Generate {
        what: "the CA's name".into(),
        reason: format!("the operating system's random generator failed: {e}"),
    })?;
    Ok(hex::encode(bytes))
}
