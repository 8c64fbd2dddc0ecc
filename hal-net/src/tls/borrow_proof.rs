//! Signed borrow records (DESIGN §9: "a borrow record is signed by the server that
//! granted it").
//!
//! A borrowed seat is used offline, so the borrowing machine keeps a record of it; this
//! module lets that record prove itself. The server that answers a borrow signs a
//! [`BorrowClaim`] (what was granted, to whom, until when) with its TLS key and sends the
//! [`BorrowProof`] (the signature and the server's certificate) with the reply. Offline,
//! anyone with the triad's CA certificate checks the proof ([`BorrowProof::verify`]): the
//! certificate was issued by the CA to a server slot, it was valid when it signed, and the
//! signature covers exactly the claim. A record edited afterwards (a later end, another
//! feature, another host) no longer verifies.
//!
//! The signed bytes begin with [`DOMAIN`], so a borrow signature can never be taken for a
//! TLS handshake signature or the other way round (TLS 1.3 signs 64 spaces and a context
//! string first; TLS 1.2 signs two 32-byte randoms, one the server's own, first).
//!
//! What it does not prove: that the borrowing machine's clock is right (a clock set back
//! keeps a borrow alive longer offline; the servers still take the seat back at its end),
//! or that the seat was not returned early since (the record of a returned borrow is
//! deleted by the library that returned it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hal_core::ServerId;
use rustls::SignatureScheme;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use super::identity::{self, CertRole};
use super::verify;
use super::{TlsError, provider};

/// The first bytes of every signed claim.
pub const DOMAIN: &[u8] = b"HAL borrow record v1\0";

/// The schemes a server signs with, best first (a `hal-net tls` key is ECDSA P-256).
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
];

/// The most bytes of a certificate a proof may carry (a HAL certificate is under 1 KiB).
pub const CERTIFICATE_BYTES_MAX: usize = 16 * 1024;
/// The most bytes of a signature (an RSA-4096 signature is 512).
pub const SIGNATURE_BYTES_MAX: usize = 1024;

/// What a server states when it signs a borrow: the grant, everything the record keeps
/// that a borrower could want to change, and who signed it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BorrowClaim<'a> {
    /// The borrow granted.
    pub grant: Grant<'a>,
    /// The server that signs (the one that answered: the granting server, or after a
    /// failover the one that answered the retried request with the replicated grant).
    pub signer: u8,
    /// The signer's wall clock when it signed, ms since the Unix epoch.
    pub signed_ms: u64,
}

impl BorrowClaim<'_> {
    /// The bytes signed: [`DOMAIN`] then the claim in postcard (a deterministic
    /// encoding: the same claim always gives the same bytes).
    pub fn signed_bytes(&self) -> Vec<u8> {
        // A claim of strings and integers always encodes.
        postcard::to_extend(self, DOMAIN.to_vec()).unwrap_or_default()
    }
}

/// A server's signature over a [`BorrowClaim`], with what the claim holds beyond the
/// record's own fields, and the certificate to check it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BorrowProof {
    /// The user the seat was granted to.
    pub user: String,
    /// The host the seat was granted to.
    pub host: String,
    /// The server that decided the grant.
    pub granted_by: u8,
    /// The server that signed.
    pub signer: u8,
    /// The signer's wall clock when it signed, ms since the Unix epoch.
    pub signed_ms: u64,
    /// The TLS signature scheme (its IANA number: 0x0403 is ECDSA P-256 SHA-256).
    pub scheme: u16,
    /// The signature, in hex.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
    /// The signer's certificate (DER), in hex.
    #[serde(with = "hex_bytes")]
    pub certificate: Vec<u8>,
}

/// Why a proof does not prove its record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The certificate is not one the triad's CA issued to a server.
    #[error("the signing certificate is not the triad's: {0}")]
    Certificate(String),
    /// The certificate names another slot than the proof's signer.
    #[error("the proof says server #{signer} signed it, but its certificate is {cert}'s")]
    WrongSigner {
        /// The signer the proof names.
        signer: u8,
        /// Whose the certificate is.
        cert: String,
    },
    /// The signature does not cover the record as it is: it was changed after it was
    /// signed (or the signature is not the certificate's).
    #[error("the signature does not match the record: it was changed after the server signed it")]
    BadSignature,
    /// A scheme this build does not verify.
    #[error("signature scheme {0:#06x} is not one this build verifies")]
    UnknownScheme(u16),
    /// Larger than any real proof.
    #[error("the proof's {what} is {len} bytes, more than the {max} a proof may have")]
    TooLarge {
        /// `certificate` or `signature`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl BorrowProof {
    /// The claim this proof signs for a record of `handle`, `feature`, `client` and
    /// `end_ms`.
    pub fn claim<'a>(
        &'a self,
        handle: u64,
        feature: &'a str,
        client: u64,
        end_ms: u64,
    ) -> BorrowClaim<'a> {
        BorrowClaim {
            grant: Grant {
                handle,
                feature,
                client,
                user: &self.user,
                host: &self.host,
                end_ms,
                granted_by: self.granted_by,
            },
            signer: self.signer,
            signed_ms: self.signed_ms,
        }
    }

    /// Checks that this proof signs `claim`, made by a server certificate that the CA in
    /// `ca` (the triad's `ca.pem`) issued, for the slot the proof names, and that was
    /// valid when it signed. Reads the CA file; needs nothing else (no network).
    pub fn verify(&self, claim: &BorrowClaim<'_>, ca: &Path) -> Result<(), VerifyError> {
        self.check_sizes()?;
        let roots = verify::read_roots(ca)?;
        let der = CertificateDer::from(self.certificate.clone());
        let role = identity::role_of(&der).map_err(|e| ProofError::Certificate(e.to_string()))?;
        let signer = ServerId::new(self.signer);
        if signer.map(CertRole::Server) != Some(role) {
            return Err(ProofError::WrongSigner {
                signer: self.signer,
                cert: role.to_string(),
            }
            .into());
        }
        let leaf = verify::parse_leaf(ca, der.clone())
            .map_err(|e| ProofError::Certificate(e.to_string()))?;
        let signed_at = SystemTime::UNIX_EPOCH + Duration::from_millis(self.signed_ms);
        verify::check_chain(&leaf, &roots, ca, signed_at)
            .map_err(|e| ProofError::Certificate(e.to_string()))?;
        let scheme = SignatureScheme::from(self.scheme);
        let algorithm = provider()
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(s, _)| *s == scheme)
            .and_then(|(_, algs)| algs.first().copied())
            .ok_or(ProofError::UnknownScheme(self.scheme))?;
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| ProofError::Certificate(format!("{e:?}")))?;
        cert.verify_signature(algorithm, &claim.signed_bytes(), &self.signature)
            .map_err(|_| ProofError::BadSignature)?;
        Ok(())
    }

    fn check_sizes(&self) -> Result<(), ProofError> {
        for (what, len, max) in [
            ("certificate", self.certificate.len(), CERTIFICATE_BYTES_MAX),
            ("signature", self.signature.len(), SIGNATURE_BYTES_MAX),
        ] {
            if len > max {
                return Err(ProofError::TooLarge { what, len, max });
            }
        }
        Ok(())
    }
}

/// Why a proof could not be verified: the CA file, or the proof.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The CA file cannot be used.
    #[error(transparent)]
    Ca(#[from] TlsError),
    /// The proof does not prove the record.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// A borrow as the replicated seat table holds it: what a server signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant<'a> {
    /// The seat's handle.
    pub handle: u64,
    /// The feature borrowed.
    pub feature: &'a str,
    /// The client id that borrowed it.
    pub client: u64,
    /// The user it was granted to.
    pub user: &'a str,
    /// The host it was granted to.
    pub host: &'a str,
    /// When the borrow ends, ms since the Unix epoch on the granting server's clock.
    pub end_ms: u64,
    /// The server that decided the grant (1, 2 or 3).
    pub granted_by: u8,
}

/// A server's key for signing borrows: its TLS key and certificate.
#[derive(Clone)]
pub struct BorrowSigner {
    me: ServerId,
    key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for BorrowSigner {
    /// The slot only; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BorrowSigner")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl BorrowSigner {
    pub(crate) fn new(me: ServerId, key: Arc<CertifiedKey>) -> BorrowSigner {
        BorrowSigner { me, key }
    }

    /// The slot that signs.
    pub fn me(&self) -> ServerId {
        self.me
    }

    /// Signs `grant` at wall time `now_ms` (ms since the Unix epoch).
    pub fn sign(&self, grant: &Grant<'_>, now_ms: u64) -> Result<BorrowProof, String> {
        let claim = BorrowClaim {
            grant: *grant,
            signer: self.me.get(),
            signed_ms: now_ms,
        };
        let signer = self
            .key
            .key
            .choose_scheme(SCHEMES)
            .ok_or_else(|| "the server's key signs with no scheme HAL uses".to_string())?;
        let signature = signer
            .sign(&claim.signed_bytes())
            .map_err(|e| format!("signing failed: {e}"))?;
        let certificate = self
            .key
            .end_entity_cert()
            .map_err(|e| format!("no certificate: {e}"))?
            .to_vec();
        Ok(BorrowProof {
            user: grant.user.to_string(),
            host: grant.host.to_string(),
            granted_by: grant.granted_by,
            signer: claim.signer,
            signed_ms: now_ms,
            scheme: u16::from(signer.scheme()),
            signature,
            certificate,
        })
    }
}

/// Bytes as a hex string in JSON (and in postcard: a record and a frame share the type).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testing::Triad;

    fn signer(triad: &Triad, slot: u8) -> BorrowSigner {
        let id = ServerId::new(slot).expect("a slot");
        let tls = crate::tls::ServerTls::load(
            &triad.ca(),
            &triad.path(&crate::tls::triad_dir::server_cert_file(id)),
            &triad.path(&crate::tls::triad_dir::server_key_file(id)),
            id,
            SystemTime::now(),
        )
        .expect("the test triad's server loads");
        tls.borrow_signer()
    }

    fn now_ms() -> u64 {
        u64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits")
    }

    fn grant(feature: &str, granted_by: u8) -> Grant<'_> {
        Grant {
            handle: 17,
            feature,
            client: 99,
            user: "ann",
            host: "ws1",
            end_ms: 5_000_000,
            granted_by,
        }
    }

    fn proof(triad: &Triad) -> BorrowProof {
        signer(triad, 1)
            .sign(&grant("cad", 1), now_ms())
            .expect("signs")
    }

    /// `proof` checked for the claim it was made for, against `ca`.
    fn checked(proof: &BorrowProof, ca: &std::path::Path) -> Result<(), VerifyError> {
        proof.verify(&proof.claim(17, "cad", 99, 5_000_000), ca)
    }

    fn assert_not_the_triads(error: &VerifyError) {
        assert!(
            error
                .to_string()
                .starts_with("the signing certificate is not the triad's"),
            "{error}"
        );
    }

    #[test]
    fn a_proof_verifies_against_the_ca_for_the_claim_signed() {
        let triad = Triad::new();
        let proof = proof(&triad);
        assert_eq!(
            proof.scheme,
            u16::from(SignatureScheme::ECDSA_NISTP256_SHA256)
        );
        checked(&proof, &triad.ca()).expect("verifies");
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let triad = Triad::new();
        let proof = proof(&triad);
        let ca = triad.ca();
        let bad = |p: &BorrowProof, claim: BorrowClaim<'_>| {
            matches!(
                p.verify(&claim, &ca),
                Err(VerifyError::Proof(ProofError::BadSignature))
            )
        };
        assert!(bad(&proof, proof.claim(18, "cad", 99, 5_000_000)));
        assert!(bad(&proof, proof.claim(17, "cae", 99, 5_000_000)));
        assert!(bad(&proof, proof.claim(17, "cad", 98, 5_000_000)));
        assert!(bad(&proof, proof.claim(17, "cad", 99, 5_000_001)));
        let mut edited = proof.clone();
        edited.host = "ws2".into();
        assert!(bad(&edited, edited.claim(17, "cad", 99, 5_000_000)));
        let mut edited = proof.clone();
        edited.user = "bob".into();
        assert!(bad(&edited, edited.claim(17, "cad", 99, 5_000_000)));
        let mut edited = proof.clone();
        edited.granted_by = 2;
        assert!(bad(&edited, edited.claim(17, "cad", 99, 5_000_000)));
        let mut edited = proof.clone();
        edited.signed_ms += 1;
        assert!(bad(&edited, edited.claim(17, "cad", 99, 5_000_000)));
        let mut edited = proof.clone();
        if let Some(byte) = edited.signature.last_mut() {
            *byte ^= 1;
        }
        assert!(bad(&edited, edited.claim(17, "cad", 99, 5_000_000)));
    }

    #[test]
    fn a_proof_names_its_signer_truthfully() {
        let triad = Triad::new();
        let mut proof = proof(&triad);
        proof.signer = 2;
        let error =
            checked(&proof, &triad.ca()).expect_err("server 1's certificate is not server 2's");
        assert_eq!(
            error.to_string(),
            "the proof says server #2 signed it, but its certificate is server #1's"
        );
    }

    #[test]
    fn another_triads_ca_does_not_verify_it() {
        let triad = Triad::new();
        let other = Triad::new();
        let proof = proof(&triad);
        let error = checked(&proof, &other.ca()).expect_err("another CA");
        assert_not_the_triads(&error);
    }

    #[test]
    fn a_certificate_swapped_for_a_peers_does_not_verify() {
        let triad = Triad::new();
        let mut proof = proof(&triad);
        let two = signer(&triad, 2)
            .sign(&grant("x", 2), now_ms())
            .expect("signs");
        proof.certificate = two.certificate;
        proof.signer = 2;
        assert!(matches!(
            checked(&proof, &triad.ca()),
            Err(VerifyError::Proof(ProofError::BadSignature))
        ));
    }

    #[test]
    fn a_certificate_outside_its_dates_when_it_signed_does_not_verify() {
        let triad = Triad::new();
        let mut proof = proof(&triad);
        // Signed (it says) long before the certificate was made.
        proof.signed_ms = 1_000;
        let error = checked(&proof, &triad.ca()).expect_err("not yet valid then");
        assert_not_the_triads(&error);
    }

    #[test]
    fn oversized_and_unknown_parts_are_refused_with_what() {
        let triad = Triad::new();
        let mut proof = proof(&triad);
        proof.scheme = 0x9999;
        assert!(matches!(
            checked(&proof, &triad.ca()),
            Err(VerifyError::Proof(ProofError::UnknownScheme(0x9999)))
        ));
        proof.signature = vec![0; SIGNATURE_BYTES_MAX + 1];
        let error = checked(&proof, &triad.ca()).expect_err("too large");
        assert_eq!(
            error.to_string(),
            "the proof's signature is 1025 bytes, more than the 1024 a proof may have"
        );
        proof.certificate = b"not a certificate".to_vec();
        proof.signature.clear();
        assert!(matches!(
            checked(&proof, &triad.ca()),
            Err(VerifyError::Proof(ProofError::Certificate(_)))
        ));
    }

    #[test]
    fn a_proof_round_trips_through_json_with_hex_bytes() {
        let triad = Triad::new();
        let proof = proof(&triad);
        let json = serde_json::to_string(&proof).expect("encodes");
        assert!(json.contains(&format!(
            "\"signature\":\"{}\"",
            hex::encode(&proof.signature)
        )));
        let back: BorrowProof = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, proof);
        let frame = postcard::to_stdvec(&proof).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<BorrowProof>(&frame).expect("decodes"),
            proof
        );
        let broken = json.replace("\"signature\":\"", "\"signature\":\"zz");
        assert!(serde_json::from_str::<BorrowProof>(&broken).is_err());
    }
}
