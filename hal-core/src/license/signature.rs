//! Signatures: each feature is signed by the vendor with ed25519 over its canonical form,
//! every directive but KEY with normalised values in a fixed order. Reformatting or
//! reordering a block, or changing its comments, keeps it valid; changing any value breaks
//! it.
//!
//! Keys come in as `ed25519_dalek` keys; making them (which needs randomness) and storing
//! them is the shell's job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

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

/// `text` with each feature's KEY set from `license`, keeping comments and layout.
///
/// `license` must have been parsed from `text` (its [`super::Origin`]s point into it) and
/// then signed. An existing KEY keeps its line: only the value is replaced, so the
/// indentation and a trailing comment stay. A missing KEY gets a line of its own before the
/// block's `}`, with the block's indentation and the file's line ending (the first one in
/// the file, `\r\n` or `\n`). A leading byte-order mark is kept. A span that does not fit
/// `text` (a different text was passed) leaves its line as it is.
pub fn sign_text(text: &str, license: &License) -> String {
    // The parser reads the text without its byte-order mark, and counts spans so.
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(body) => ("\u{feff}", body),
        None => ("", text),
    };
    let eol = first_line_ending(body);
    let mut replace: BTreeMap<u32, (&Range<usize>, &LicenseKey)> = BTreeMap::new();
    let mut insert_before: BTreeMap<u32, (&str, &LicenseKey)> = BTreeMap::new();
    for feature in &license.features {
        let (Some(key), origin) = (&feature.key, &feature.origin) else {
            continue;
        };
        match &origin.key_span {
            Some(span) => {
                replace.insert(span.line, (&span.bytes, key));
            }
            None => {
                insert_before.insert(origin.close_line, (&origin.indent, key));
            }
        }
    }
    let extra = license.features.len().saturating_mul(160);
    let mut out = String::with_capacity(text.len().saturating_add(extra));
    out.push_str(bom);
    for (index, line) in body.split_inclusive('\n').enumerate() {
        let line_no = u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX);
        if let Some((indent, key)) = insert_before.get(&line_no) {
            let _ = write!(out, "{indent}KEY = {key}{eol}");
        }
        match replace.get(&line_no) {
            Some((bytes, key)) => splice(&mut out, line, bytes, key),
            None => out.push_str(line),
        }
    }
    out
}

/// The first line ending in `text`, or `\n` if it has none.
fn first_line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(at) if text[..at].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// Appends `line` to `out` with the bytes in `bytes` replaced by `key`.
fn splice(out: &mut String, line: &str, bytes: &Range<usize>, key: &LicenseKey) {
    match (line.get(..bytes.start), line.get(bytes.end..)) {
        (Some(before), Some(after)) if bytes.start <= bytes.end => {
            let _ = write!(out, "{before}{key}{after}");
        }
        _ => out.push_str(line),
    }
}
