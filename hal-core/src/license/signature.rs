//! Signatures: each feature is signed by the vendor with ed25519 over its canonical form,
//! every directive but KEY with normalised values in a fixed order. Reformatting or
//! reordering a block, or changing its comments, keeps it valid; changing any value breaks
//! it.
//!
//! Keys come in as `ed25519_dalek` keys; making them (which needs randomness) and storing
//! them is the shell's job.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::model::{Feature, License, LicenseKey};
use super::print::values;

/// The first line of every canonical form, so a signature over a license feature can never
/// be mistaken for a signature over anything else.
const DOMAIN: &str = "hal-license-v1";

/// Why a feature's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("it has no KEY; sign it with `hal-net license sign`")]
    Missing,
    #[error(
        "its KEY does not match: the feature was changed after it was signed, or it was \
         signed with another vendor key"
    )]
    Mismatch,
}

/// The bytes that are signed for `feature`: a domain line, `FEATURE <name>`, then one
/// `NAME=value` line per directive present, KEY excluded, in [`super::Directive::ALL`]
/// order. Values are normalised and hold no newline, so the form is unambiguous.
pub fn canonical_bytes(feature: &Feature) -> Vec<u8> {
    let mut out = format!("{DOMAIN}\nFEATURE {}\n", feature.name);
    for (directive, value) in values(feature) {
        out.push_str(directive.keyword());
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    }
    out.into_bytes()
}

impl Feature {
    /// Signs the feature with the vendor's key, replacing any KEY it had.
    pub fn sign(&mut self, vendor_key: &SigningKey) {
        let signature = vendor_key.sign(&canonical_bytes(self));
        self.key = Some(LicenseKey(signature.to_bytes()));
    }

    /// Checks the feature's KEY against the vendor's public key.
    pub fn verify(&self, vendor_public: &VerifyingKey) -> Result<(), SignatureError> {
        let key = self.key.as_ref().ok_or(SignatureError::Missing)?;
        let signature = Signature::from_bytes(&key.0);
        vendor_public
            .verify_strict(&canonical_bytes(self), &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl License {
    /// Signs every feature.
    pub fn sign(&mut self, vendor_key: &SigningKey) {
        for feature in &mut self.features {
            feature.sign(vendor_key);
        }
    }

    /// Each feature's name and verdict, in file order.
    pub fn verify(
        &self,
        vendor_public: &VerifyingKey,
    ) -> Vec<(&Feature, Result<(), SignatureError>)> {
        self.features
            .iter()
            .map(|f| (f, f.verify(vendor_public)))
            .collect()
    }
}

/// `text` with each feature's KEY line set from `license`, keeping comments and layout.
///
/// `license` must have been parsed from `text` (its [`super::Origin`]s point into it) and
/// then signed. A KEY line that exists is replaced; otherwise one is added before the
/// block's `}` with the block's indentation. Line endings (`\n` or `\r\n`) are kept.
pub fn sign_text(text: &str, license: &License) -> String {
    let mut replace: BTreeMap<u32, &Feature> = BTreeMap::new();
    let mut insert_before: BTreeMap<u32, &Feature> = BTreeMap::new();
    for feature in license.features.iter().filter(|f| f.key.is_some()) {
        match feature.origin.key_line {
            Some(line) => replace.insert(line, feature),
            None => insert_before.insert(feature.origin.close_line, feature),
        };
    }
    let key_line = |indent: &str, feature: &Feature, eol: &str| match &feature.key {
        Some(key) => format!("{indent}KEY = {key}{eol}"),
        None => String::new(),
    };
    let mut out = String::with_capacity(text.len() + 160 * license.features.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let eol = if line.ends_with("\r\n") {
            "\r\n"
        } else if line.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        if let Some(feature) = insert_before.get(&line_no) {
            out.push_str(&key_line(
                &feature.origin.indent,
                feature,
                eol_or_newline(eol),
            ));
        }
        match replace.get(&line_no) {
            Some(feature) => {
                let body = line.trim_start();
                let indent = &line[..line.len() - body.len()];
                out.push_str(&key_line(indent, feature, eol));
            }
            None => out.push_str(line),
        }
    }
    out
}

fn eol_or_newline(eol: &str) -> &str {
    if eol.is_empty() { "\n" } else { eol }
}
